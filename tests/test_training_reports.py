"""The per-tick status line and stats.jsonl row."""
import json

from alae.training.reports import TickReport
from alae.training.schedule import Phase


def report(peak=None) -> TickReport:
    return TickReport(tick=12, images_seen=48_000, step=1500, phase=Phase(lod=2, alpha=0.4, batch=32, lr=0.0015, resolution=16),
                      stats={"r1": 0.0123, "loss_latent": 0.05, "loss_g": 0.98765, "loss_d": 1.234},
                      tick_images=4000, seconds=32.0, maintenance_s=0.34, elapsed_s=3723, peak_gpu_gib=peak,
                      threads=2, timestamp=1.5e9)


def test_status_line_reads_like_stylegan2_ada():
    assert report().status_line() == ("tick 12  kimg 48.000  lod 2  alpha 0.40  loss_d 1.234  loss_g 0.9877  "
                                      "loss_latent 0.05  r1 0.0123  time 1h 02m 03s  img/s 125.0  sec/kimg 8.00  "
                                      "maintenance 0.3 s")
    assert report(peak=1.234).status_line().endswith("maintenance 0.3 s  gpumem 1.23 GiB")
    assert report().progress_bar_text() == "d 1.234 g 0.988 latent 0.050"


def test_stats_row_is_flat_json_with_every_statistic():
    row = json.loads(json.dumps(report().row()))
    assert row == {"tick": 12, "kimg": 48.0, "images_seen": 48000, "step": 1500, "lod": 2, "alpha": 0.4,
                   "lr": 0.0015, "batch": 32, "loss_d": 1.234, "loss_g": 0.98765, "loss_latent": 0.05, "r1": 0.0123,
                   "img_per_s": 125.0, "sec_per_kimg": 8.0, "maintenance_s": 0.34, "threads": 2,
                   "timestamp": 1.5e9}
    assert report(peak=2.0).row()["peak_gpu_mem_gib"] == 2.0

