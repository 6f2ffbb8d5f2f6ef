"""The training CLI end to end on the embedded faces: run directory, exact resume, clear failures."""
import pytest
import torch

from alae import train
from alae.checkpoint import load_checkpoint

# 8×8 model, batch 8: lod 0 for 4 steps, then lod 1 fades in over 2 steps and trains stable.
TINY = ["model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16", "model.mapping_layers=2",
        "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.002, 0.003]", "train.kimg_fade=0.016",
        "train.kimg_stable=0.032", "data.holdout=4", "data.workers=0", "log.grid_size=2",
        "log.kimg_per_checkpoint=1", "log.kimg_per_sample=1", "log.kimg_per_tb=0.016"]


@pytest.fixture(scope="module", autouse=True)
def demo_cache(tmp_path_factory):
    """Build the embedded-face database once for this module, in a private cache directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALAE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


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
    first = load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert first["progress"]["images_seen"] == 24
    assert run(tmp_path / "split", 0.064, resume="auto") == 0  # 5 more steps
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    resumed = load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert straight["progress"]["images_seen"] == 64 and straight["progress"]["optimizer_lod"] == 1
    assert_same_state(straight, resumed)


def test_overrides_may_follow_options():
    args = train.parse_args(["a.b=1", "--config", "demo", "c.d=2", "--kimg", "3", "e.f=4"])
    assert args.overrides == ["a.b=1", "c.d=2", "e.f=4"] and args.kimg == 3.0


def test_run_directory_holds_config_checkpoints_grids_tensorboard_and_log(tmp_path):
    assert run(tmp_path, 0.032) == 0
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "log.txt").is_file()
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()
    assert list((tmp_path / "samples").glob("samples-*.png")) and list((tmp_path / "samples").glob("reconstructions-*.png"))
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    log = (tmp_path / "log.txt").read_text()
    assert "held-out reconstruction MSE" in log and "-> " in log


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    assert run(tmp_path, 0.016) == 0
    good = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    real_latent_loss = train.latent_loss

    def exploding(*args, **kwargs):
        loss, stats = real_latent_loss(*args, **kwargs)
        return loss * float("nan"), {k: v * float("nan") for k, v in stats.items()}

    monkeypatch.setattr(train, "latent_loss", exploding)
    assert run(tmp_path, 0.064, resume="auto") == 1
    assert "non-finite loss_latent" in capsys.readouterr().err
    after = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert after["progress"] == good["progress"]
    assert torch.equal(after["model"]["w_avg"], good["model"]["w_avg"])


@pytest.mark.parametrize("argv, message", [
    (["--config", "demo", "--data", "/nonexistent/ffhq"], "data path does not exist: /nonexistent/ffhq"),
    (["--config", "nope"], "no config named 'nope'"),
    (["--config", "demo", "train.r1_gama=1"], "valid keys at this level"),
    (["--config", "demo", "--resume", "/nonexistent/latest.pt"], "checkpoint not found"),
    (["--config", "demo", "--kimg", "-1"], "--kimg must be positive"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    assert train.main([*argv, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
