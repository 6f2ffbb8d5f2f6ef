"""The training CLI end to end on the embedded faces: run directory, exact resume, clear failures."""
import pytest
import torch

from alae import train, training_step
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


def record_first_step(monkeypatch):
    """Replace the ALAE step by one that records what the loop starts from and changes nothing."""
    seen = []

    def recording_step(model, optimizers, reals, phase, cfg, ctx, step):
        seen.append({"model": {k: v.clone() for k, v in model.state_dict().items()}, "phase": phase, "cfg": cfg})
        return {}

    monkeypatch.setattr(train, "train_step", recording_step)
    return seen


def test_init_starts_a_fresh_run_from_an_alae_checkpoint(tmp_path, monkeypatch):
    assert run(tmp_path / "a", 0.024) == 0
    source = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt")
    seen = record_first_step(monkeypatch)
    assert run(tmp_path / "b", 0.016, "--init", str(tmp_path / "a")) == 0
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

    from alae.loading import read_weights

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
    from alae.checkpoint import save_networks_checkpoint

    assert run(tmp_path / "a", 0.016) == 0
    payload = load_checkpoint(tmp_path / "a" / "checkpoints" / "latest.pt")
    networks = tmp_path / "networks.pt"
    save_networks_checkpoint(networks, payload["config"], None, payload["ema"], {"format": "test"})
    assert run(tmp_path / "b", 0.032, resume=str(networks)) == 1
    assert "holds networks only" in capsys.readouterr().err
    assert run(tmp_path / "c", 0.032, "--start-kimg", "1") == 1
    assert "--start-kimg needs --init" in capsys.readouterr().err


def test_init_with_resume_auto_seeds_only_a_run_without_checkpoints(tmp_path, capsys):
    assert run(tmp_path / "a", 0.016) == 0
    assert run(tmp_path / "b", 0.016, "--init", str(tmp_path / "a"), resume="auto") == 0
    assert "initialised from" in capsys.readouterr().out
    assert run(tmp_path / "b", 0.032, "--init", str(tmp_path / "a"), resume="auto") == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "initialised from" not in out
