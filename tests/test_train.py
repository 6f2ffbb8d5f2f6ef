"""The training CLI end to end on the embedded faces: run directory, ticks and their records,
metrics, exact resume, divergence, clear failures."""
import json
import re

import pytest
import torch

from alae import train
from alae.model_files.checkpoint import load_checkpoint
from alae.tools import convert
from alae.training.objectives import alae as training_step

# 8×8 model, batch 8: lod 0 for 4 steps, then lod 1 fades in over 2 steps and trains stable.
TINY = ["model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16", "model.mapping_layers=2",
        "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.002, 0.003]", "train.kimg_fade=0.016",
        "train.kimg_stable=0.032", "data.holdout=4", "data.workers=0", "log.grid_size=2",
        "log.kimg_per_checkpoint=1", "log.kimg_per_sample=1", "log.kimg_per_tick=0.016"]


@pytest.fixture(scope="module", autouse=True)
def demo_cache(tmp_path_factory):
    """Build the embedded-face database once for this module, in a private cache directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALAE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


STAT_NAMES = {"loss_d", "loss_g", "loss_latent", "logits_real", "logits_fake", "r1"}
ROW_KEYS = {"tick", "kimg", "images_seen", "step", "lod", "alpha", "lr", "batch", "img_per_s", "sec_per_kimg",
            "maintenance_s", "threads", "timestamp"} | STAT_NAMES


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def status_lines(run_dir):
    return [line for line in (run_dir / "log.txt").read_text().splitlines() if re.search(r"\d tick \d+  kimg ", line)]


def run(out, kimg, *extra, resume=None):
    argv = ["--config", "demo", "--out", str(out), "--kimg", str(kimg), "--device", "cpu", *TINY, *extra]
    if resume:
        argv += ["--resume", resume]
    return train.main(argv)


def assert_same_state(a: dict, b: dict):
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0
        for i in sa:
            for k in sa[i]:
                assert torch.equal(sa[i][k], sb[i][k]), f"{name}.state[{i}].{k}"
    assert a["progress"] == b["progress"]


def test_resume_continues_exactly_across_a_lod_change(tmp_path):
    assert run(tmp_path / "straight", 0.064) == 0  # 8 steps: lod 0, then fade-in and stable at lod 1
    assert run(tmp_path / "split", 0.024) == 0  # 3 steps, checkpoint at the end
    latest = tmp_path / "split" / "checkpoints" / "latest.pt"
    first = load_checkpoint(latest)
    assert first["progress"]["images_seen"] == 24
    # As written before checkpoints stopped saving RNG state: the entry loads and is ignored.
    torch.save(dict(first, rng={"torch": torch.get_rng_state()}), latest)
    assert run(tmp_path / "split", 0.064, resume="auto") == 0  # 5 more steps
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    resumed = load_checkpoint(latest)
    assert straight["progress"]["images_seen"] == 64 and straight["progress"]["optimizer_lod"] == 1
    assert_same_state(straight, resumed)
    # Ticks of 16 images. The first part stopped mid-tick 2 (at 24) and wrote that partial tick;
    # the resumed run appends the rest of tick 2 under the same number, then ticks 3 and 4.
    ticks = [(r["tick"], r["images_seen"]) for r in rows(tmp_path / "split" / "stats.jsonl")]
    assert ticks == [(1, 16), (2, 24), (2, 32), (3, 48), (4, 64)]
    assert [(r["tick"], r["images_seen"]) for r in rows(tmp_path / "straight" / "stats.jsonl")] == \
        [(1, 16), (2, 32), (3, 48), (4, 64)]


def test_overrides_may_follow_options():
    args = train.parse_args(["a.b=1", "--config", "demo", "c.d=2", "--kimg", "3", "e.f=4"])
    assert args.overrides == ["a.b=1", "c.d=2", "e.f=4"] and args.kimg == 3.0


def test_run_directory_holds_config_checkpoints_grids_tensorboard_and_log(tmp_path):
    assert run(tmp_path, 0.032) == 0
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "log.txt").is_file()
    # plain data: torch's tensors-only unpickler reads the training checkpoint as it is
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert {"config", "model", "ema", "optimizers", "progress", "format_version"} <= set(saved)
    assert list((tmp_path / "samples").glob("samples-*.png")) and list((tmp_path / "samples").glob("reconstructions-*.png"))
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "stats.jsonl").is_file() and not (tmp_path / "metrics.jsonl").exists()  # no log.metrics
    log = (tmp_path / "log.txt").read_text()
    assert "held-out reconstruction MSE" in log and "-> " in log


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    assert run(tmp_path, 0.016) == 0
    good = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    real_latent_loss = training_step.latent_loss

    def exploding(*args, **kwargs):
        loss, stats = real_latent_loss(*args, **kwargs)
        return loss * float("nan"), {k: v * float("nan") for k, v in stats.items()}

    monkeypatch.setattr(training_step, "latent_loss", exploding)
    assert run(tmp_path, 0.064, resume="auto") == 1
    assert "non-finite loss_latent" in capsys.readouterr().err
    after = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert after["progress"] == good["progress"]
    assert torch.equal(after["model"]["w_avg"], good["model"]["w_avg"])


def test_a_non_finite_statistic_stops_the_run_at_its_tick_before_that_ticks_checkpoint(tmp_path, monkeypatch, capsys):
    real_latent_loss, calls = training_step.latent_loss, [0]

    def exploding_at_step_2(*args, **kwargs):  # one call per step (no micro-batches)
        loss, stats = real_latent_loss(*args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            return loss * float("nan"), {k: v * float("nan") for k, v in stats.items()}
        return loss, stats

    monkeypatch.setattr(training_step, "latent_loss", exploding_at_step_2)
    # Ticks and checkpoints every 16 images (2 steps): tick 1 = steps 0-1 is saved; step 2 is in
    # tick 2, whose end would save the next checkpoint.
    assert run(tmp_path, 0.064, "log.kimg_per_checkpoint=0.016") == 1
    err = capsys.readouterr().err
    assert "non-finite loss_latent at step 2 in tick 2 (kimg 0.016–0.032)" in err, err
    assert len([line for line in err.splitlines() if line.startswith("alae-train:")]) == 1 and "Traceback" not in err
    latest = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert latest["progress"]["images_seen"] == 16 and latest["progress"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in latest["model"].values())
    assert len(list((tmp_path / "checkpoints").glob("snapshot-*.pt"))) == 1
    assert [r["tick"] for r in rows(tmp_path / "stats.jsonl")] == [1]  # no row for the diverged tick
    assert "alae-train: error: non-finite loss_latent" in (tmp_path / "log.txt").read_text()  # why the run stopped


def record_step_statistics(monkeypatch) -> list:
    """Wrap the ALAE step to keep a copy of every step's statistics (read only after the run)."""
    seen = []

    real_step = training_step.train_step

    def recording_step(model, optimizers, reals, phase, cfg, ctx, step):
        stats = real_step(model, optimizers, reals, phase, cfg, ctx, step)
        seen.append((step, {k: v.detach().clone() for k, v in stats.items()}))
        return stats

    monkeypatch.setattr(training_step, "train_step", recording_step)
    return seen


def test_one_status_line_and_one_stats_row_per_tick(tmp_path, monkeypatch):
    seen = record_step_statistics(monkeypatch)
    # Batch 8 at lod 0 (images 0-48), then 4 at lod 1; ticks every 20 images; 90 images in all.
    assert run(tmp_path, 0.09, "train.batch_per_lod=[8, 4]", "log.kimg_per_tick=0.02") == 0
    # By hand: steps end at 8, 16, 24 (tick 1 ends: first count >= 20), 32, 40 (tick 2: >= 40),
    # 48 (lod 1 from here: batch 4), 52, 56, 60 (tick 3: >= 60), 64 ... 80 (tick 4), 84, 88, 92
    # (>= 90: training ends, closing tick 5 early).
    table = rows(tmp_path / "stats.jsonl")
    assert [r["tick"] for r in table] == [1, 2, 3, 4, 5]
    assert [r["images_seen"] for r in table] == [24, 40, 60, 80, 92]
    assert [r["kimg"] for r in table] == [0.024, 0.040, 0.060, 0.080, 0.092]
    assert [r["step"] for r in table] == [3, 5, 9, 14, 17]
    assert [(r["lod"], r["batch"]) for r in table] == [(0, 8), (0, 8), (1, 4), (1, 4), (1, 4)]
    for r in table:
        assert set(r) == ROW_KEYS, set(r) ^ ROW_KEYS  # on CPU: no peak_gpu_mem_gib
        assert r["img_per_s"] > 0 and r["sec_per_kimg"] > 0
    # Each statistic is its mean over the tick's steps that reported it (R1 runs every 4th step).
    first_step = 0
    for r in table:
        steps = [stats for step, stats in seen if first_step <= step < r["step"]]
        for name in STAT_NAMES:
            values = [stats[name].item() for stats in steps if name in stats]
            assert r[name] == pytest.approx(sum(values) / len(values), rel=1e-5, abs=1e-7), (r["tick"], name)
        first_step = r["step"]
    # One status line per tick, with its numbers, every statistic and the speed.
    lines = status_lines(tmp_path)
    assert len(lines) == len(table)
    for line, r in zip(lines, table):
        assert f"tick {r['tick']}  kimg {r['kimg']:.3f}  lod {r['lod']}  alpha {r['alpha']:.2f}" in line
        assert all(f"  {name} " in line for name in STAT_NAMES) and "img/s" in line and "sec/kimg" in line, line
        assert f"loss_latent {r['loss_latent']:.4g}" in line


class ReadCountingTensor(torch.Tensor):
    """A tensor that counts how often it, or a tensor computed from it, is read on the host."""

    reads = 0
    READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.__float__,
             torch.Tensor.__int__, torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.__format__,
             torch.Tensor.__repr__}

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls.READS or (func is torch.Tensor.to and "cpu" in map(str, [*args[1:], *(kwargs or {}).values()])):
            cls.reads += 1
        return super().__torch_function__(func, types, args, kwargs or {})


def test_the_loop_reads_the_step_statistics_on_the_host_once_per_tick(tmp_path, monkeypatch):
    real_step = training_step.train_step

    def counted_step(*args):
        return {k: v.as_subclass(ReadCountingTensor) for k, v in real_step(*args).items()}

    monkeypatch.setattr(training_step, "train_step", counted_step)
    monkeypatch.setattr(ReadCountingTensor, "reads", 0)
    assert run(tmp_path, 0.064) == 0  # 8 steps, ticks of 2 steps
    assert len(rows(tmp_path / "stats.jsonl")) == 4
    assert ReadCountingTensor.reads == 4


@pytest.mark.parametrize("options, metric_images", [
    (["log.kimg_per_metrics=0.032"], [32, 64]),
    (["log.kimg_per_metrics=0.024"], [32, 48, 64]),  # due at 24 and 48 kimg, computed at the next tick end
    (["log.kimg_per_checkpoint=0.032"], [32, 64]),  # kimg_per_metrics 0: with every checkpoint
])
def test_metrics_jsonl_gets_mse_rec_at_metric_ticks(tmp_path, options, metric_images):
    from alae.config import from_dict
    from alae.model import LatentAutoencoder
    from alae.training.data import held_out_images, open_images, resolve_data_path
    from alae.training.metrics import reconstruction_mse
    from alae.training.schedule import phase_at

    assert run(tmp_path, 0.064, "log.metrics=[mse_rec]", *options) == 0  # ticks of 16 images; ends at 64
    table = rows(tmp_path / "metrics.jsonl")
    assert [r["images_seen"] for r in table] == metric_images
    for r in table:
        assert {"metric", "value", "tick", "kimg", "images_seen", "lod", "alpha", "seconds", "timestamp"} <= set(r)
        assert r["images"] == {"reconstructed": 4}  # the run's held-out images
        assert r["metric"] == "mse_rec" and r["kimg"] == r["images_seen"] / 1000 and r["tick"] == r["images_seen"] // 16
    # The last value is the held-out reconstruction MSE of the final checkpoint's EMA networks,
    # at the schedule position of the last step (it started at 56 images: lod 1, alpha 0.5).
    final = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    cfg = from_dict(final["config"])
    ema = LatentAutoencoder(cfg).eval()
    ema.load_state_dict(final["ema"])
    held_out = held_out_images(open_images(resolve_data_path(cfg, None), cfg.model.resolution), cfg.data.holdout)
    last_step = phase_at(cfg.train, cfg.model, 56)
    assert (table[-1]["lod"], table[-1]["alpha"]) == (last_step.lod, last_step.alpha) == (1, pytest.approx(0.5))
    expected = reconstruction_mse(ema, held_out, last_step, "cpu", cfg.train.seed)[0]
    assert table[-1]["value"] == pytest.approx(expected, rel=1e-6)
    assert f"metrics at kimg 0.064: mse_rec {table[-1]['value']:.6g}" in (tmp_path / "log.txt").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--config", "demo", "--data", "/nonexistent/ffhq"], "data path does not exist: /nonexistent/ffhq"),
    (["--config", "nope"], "no config named 'nope'"),
    (["--config", "demo", "train.r1_gama=1"], "valid keys at this level"),
    (["--config", "demo", "--resume", "/nonexistent/latest.pt"], "checkpoint not found"),
    (["--config", "demo", "--kimg", "-1"], "--kimg must be positive"),
    (["--config", "demo", "log.metrics=[fid50k_fulll]"], "log.metrics: unknown metric 'fid50k_fulll'"),
    (["--config", "demo", "log.metrics=[mse_rec, fid10k]"], "log.metrics: Inception (FID, KID) weights not found"),
    (["--config", "demo", "log.kimg_per_tick=0"], "log.kimg_per_tick: must be positive"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("ALAE_INCEPTION", raising=False)
    monkeypatch.setattr("alae.metrics.weight_files.CLEANFID_FOLDER", tmp_path / "no-clean-fid-download")
    assert train.main([*argv, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("option, message", [
    ("data.holdout=100", "data.holdout = 100 leaves no training images (100 in"),
    ("train.batch_per_lod=[8, 128]", "the global batch (128) is larger than the training set (96 images"),
])
def test_data_that_cannot_train_is_refused_before_the_run_folder_exists(tmp_path, capsys, option, message):
    out = tmp_path / "run"
    assert run(out, 0.064, option) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_train_threads_sets_and_records_the_cpu_threads(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        assert run(tmp_path, 0.032, "train.threads=1") == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert [r["threads"] for r in rows(tmp_path / "stats.jsonl")] == [1, 1]
    assert "| 1 CPU threads (asked for)" in (tmp_path / "log.txt").read_text()
    out = capsys.readouterr()  # not a terminal: the progress comes as whole lines
    assert "\r" not in out.out + out.err and "32.0/32.0 img (100.0%)" in out.err


def record_first_step(monkeypatch):
    """Replace the ALAE step by one that records what the loop starts from and changes nothing."""
    seen = []

    def recording_step(model, optimizers, reals, phase, cfg, ctx, step):
        seen.append({"model": {k: v.clone() for k, v in model.state_dict().items()}, "phase": phase, "cfg": cfg})
        return {}

    monkeypatch.setattr(training_step, "train_step", recording_step)
    return seen


@pytest.mark.parametrize("as_safetensors", [False, True], ids=["run-directory", "safetensors"])
def test_init_starts_a_fresh_run_from_an_alae_checkpoint(tmp_path, monkeypatch, as_safetensors):
    assert run(tmp_path / "a", 0.024) == 0
    source = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt")
    init = tmp_path / "a"
    if as_safetensors:
        init = tmp_path / "a.safetensors"
        assert convert.main([str(tmp_path / "a"), str(init)]) == 0
    seen = record_first_step(monkeypatch)
    assert run(tmp_path / "b", 0.016, "--init", str(init)) == 0
    first = seen[0]
    for name, value in source["model"].items():
        assert torch.equal(first["model"][name], value), name
    assert first["phase"].lod == 0  # a fresh schedule position
    # The recording step leaves the networks as loaded, so two EMA updates (halflife 0.5 kimg,
    # batch 8) move the source's EMA toward its training networks by beta² in closed form.
    beta = 0.5 ** (8 / 500)
    ema = load_checkpoint(tmp_path / "b" / "checkpoints" / "latest.pt")["ema"]
    for name, m in source["model"].items():
        expected = m if name == "w_avg" else m + (source["ema"][name] - m) * beta**2
        torch.testing.assert_close(ema[name], expected, rtol=1e-5, atol=1e-6)


def test_init_from_an_original_alae_file_takes_its_model_and_can_start_at_the_final_lod(tmp_path, monkeypatch, capsys):
    from original_reference import original_file, original_shapes, random_original_state

    from alae.model_files.loading import read_weights

    nets = random_original_state(original_shapes(startf=4, maxf=16, layer_count=3, latent=16, mapping_layers=2), 0,
                                 dtype=torch.float32)
    path = tmp_path / "model_final.pth"
    torch.save(original_file(nets), path)
    converted = read_weights(path)
    seen = record_first_step(monkeypatch)
    argv = ["--config", "demo", "--out", str(tmp_path / "run"), "--kimg", "0.2", "--device", "cpu", "--init", str(path),
            "--start-kimg", "final", "train.batch_per_lod=[8, 8, 8]", "train.lr_per_lod=[0.002, 0.002, 0.002]",
            "train.kimg_fade=0.016", "train.kimg_stable=0.032", "data.holdout=4", "log.grid_size=2"]
    assert train.main(argv) == 0
    first = seen[0]
    assert first["cfg"].model == converted.config.model  # the channels come from the file, not demo.yaml
    for name, value in converted.model.items():
        assert torch.equal(first["model"][name], value), name
    assert (first["phase"].lod, first["phase"].alpha) == (2, 1.0)  # 2·48 + 16 images: lod 2 stable
    assert "initialised from" in capsys.readouterr().out


def test_resume_from_a_networks_only_checkpoint_points_to_init(tmp_path, capsys):
    from alae.model_files.checkpoint import save_networks_checkpoint

    assert run(tmp_path / "a", 0.016) == 0
    payload = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt")
    networks = tmp_path / "networks.pt"
    save_networks_checkpoint(networks, payload["config"], None, payload["ema"], {"format": "test"})
    assert run(tmp_path / "b", 0.032, resume=str(networks)) == 1
    assert "holds networks only" in capsys.readouterr().err
    assert run(tmp_path / "c", 0.032, "--start-kimg", "1") == 1
    assert "--start-kimg needs --init" in capsys.readouterr().err


def test_resume_with_another_model_is_refused_before_the_run_directory_changes(tmp_path, capsys):
    assert run(tmp_path, 0.016) == 0
    config = (tmp_path / "config.yaml").read_text()
    assert run(tmp_path, 0.032, "model.latent_dim=8", resume="auto") == 1
    assert "was trained with another model config: model.latent_dim differ" in capsys.readouterr().err
    assert (tmp_path / "config.yaml").read_text() == config  # `--resume auto` alone still continues the run


def test_init_with_resume_auto_seeds_only_a_run_without_checkpoints(tmp_path, capsys):
    assert run(tmp_path / "a", 0.016) == 0
    assert run(tmp_path / "b", 0.016, "--init", str(tmp_path / "a"), resume="auto") == 0
    assert "initialised from" in capsys.readouterr().out
    assert run(tmp_path / "b", 0.032, "--init", str(tmp_path / "a"), resume="auto") == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "initialised from" not in out
