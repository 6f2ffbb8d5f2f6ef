"""What one tick reports: the status line (log.txt and the console) and the stats.jsonl row.

    tick 12  kimg 48.000  lod 2  alpha 0.40  loss_d 1.234  loss_g 0.9871  loss_latent 0.05123  ...
    time 9m 12s  img/s 123.4  sec/kimg 8.10  maintenance 0.3 s  gpumem 1.23 GiB

as StyleGAN2-ADA prints per tick. Speeds count the tick's training time only; `maintenance` is
the time spent after the previous tick's training (its status line, grids, checkpoint,
metrics; for the first tick, the start-up grids); `gpumem` is the peak memory torch allocated
on rank 0's GPU since the previous tick (absent on CPU).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from alae.progress import format_duration
from alae.training.schedule import Phase


@dataclass(frozen=True)
class TickReport:
    """One tick: where training is at its end, its mean statistics, its speed and memory."""

    tick: int
    images_seen: int  # global count at the tick's end
    step: int  # optimizer steps at the tick's end
    phase: Phase  # the schedule position of the tick's last step
    stats: dict[str, float]  # mean over the tick's steps and all ranks
    tick_images: int  # images trained in this tick (by this process: after a resume, since the resume)
    seconds: float  # training time of the tick, maintenance excluded
    maintenance_s: float
    elapsed_s: float  # since this process started training
    peak_gpu_gib: float | None  # None off GPU
    threads: int  # CPU threads torch computes with (train.threads)
    timestamp: float  # time.time() at the tick's end

    @property
    def kimg(self) -> float:
        return self.images_seen / 1000.0

    @property
    def img_per_s(self) -> float:
        return self.tick_images / max(self.seconds, 1e-9)

    @property
    def sec_per_kimg(self) -> float:
        return self.seconds / max(self.tick_images, 1) * 1000.0

    def ordered_stats(self) -> list[tuple[str, float]]:
        """The statistics, losses first (loss_d, loss_g, loss_latent), then the others by name."""
        return sorted(self.stats.items(), key=lambda item: (not item[0].startswith("loss"), item[0]))

    def progress_bar_text(self) -> str:
        """The losses alone, short: `d 1.234 g 0.987 latent 0.051`."""
        return " ".join(f"{name.removeprefix('loss_')} {value:.3f}" for name, value in self.ordered_stats()
                        if name.startswith("loss"))

    def status_line(self) -> str:
        fields = [f"tick {self.tick}", f"kimg {self.kimg:.3f}", f"lod {self.phase.lod}",
                  f"alpha {self.phase.alpha:.2f}"]
        fields += [f"{name} {value:.4g}" for name, value in self.ordered_stats()]
        fields += [f"time {format_duration(self.elapsed_s)}", f"img/s {self.img_per_s:.1f}",
                   f"sec/kimg {self.sec_per_kimg:.2f}", f"maintenance {self.maintenance_s:.1f} s"]
        if self.peak_gpu_gib is not None:
            fields.append(f"gpumem {self.peak_gpu_gib:.2f} GiB")
        return "  ".join(fields)

    def row(self) -> dict:
        """The stats.jsonl row: flat JSON values, statistics under their own names."""
        row = {"tick": self.tick, "kimg": self.kimg, "images_seen": self.images_seen, "step": self.step,
               "lod": self.phase.lod, "alpha": self.phase.alpha, "lr": self.phase.lr, "batch": self.phase.batch,
               **dict(self.ordered_stats()),
               "img_per_s": self.img_per_s, "sec_per_kimg": self.sec_per_kimg, "maintenance_s": self.maintenance_s,
               "threads": self.threads, "timestamp": self.timestamp}
        if self.peak_gpu_gib is not None:
            row["peak_gpu_mem_gib"] = self.peak_gpu_gib
        return row


def peak_gpu_memory_gib(device: torch.device) -> float | None:
    """The peak memory torch allocated on `device` since the previous call, in GiB (then reset); None off GPU."""
    if device.type != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return peak
