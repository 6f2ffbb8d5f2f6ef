"""The WAE code's encoder start: its moment loss against numpy, its stopping rule, and the loop
running it once, at the start of a new run only."""
import numpy as np
import pytest
import torch

from alae import train
from alae.config import load_config
from alae.datasets import ensure_mnist_database
from alae.distributed import Context
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import load_checkpoint
from alae.training.objectives.pretraining import moment_loss, pretrain


def test_the_moment_loss_is_the_authors_against_numpy():
    g = np.random.default_rng(0)
    q, p = g.normal(size=(50, 4)) * 2 + 1, g.normal(size=(50, 4))
    expected = np.mean((p.mean(0) - q.mean(0)) ** 2) + np.mean((np.cov(p.T, ddof=1) - np.cov(q.T, ddof=1)) ** 2)
    assert moment_loss(torch.tensor(q), torch.tensor(p)).item() == pytest.approx(expected, rel=1e-12)


def tiny_wae(*overrides):
    return load_config("mnist-wae-mmd", ["model.mlp_width=32", "model.latent_dim=4", *overrides])


def images_of(count=200):
    data = torch.randint(0, 256, (count, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return (lambda index: data[index]), count


def test_pretraining_moves_the_codes_moments_toward_the_priors_and_stops_below_its_threshold():
    images, count = images_of()
    ctx = Context(0, 0, 1, torch.device("cpu"))
    losses = {}
    for steps, stop in ((0, 0.0), (60, 0.0), (500, 0.5)):
        cfg = tiny_wae(f"wae_mmd.pretrain_steps={steps}", f"wae_mmd.pretrain_stop={stop}", "wae_mmd.pretrain_batch=100")
        torch.manual_seed(0)
        model = LatentAutoencoder(cfg)
        note = pretrain(model, cfg, ctx, images, count)
        with torch.no_grad():
            codes = model.encode(images(torch.arange(count)).float() / 127.5 - 1, 0, 1.0)
            losses[steps] = moment_loss(codes, model.prior.sample(count, torch.Generator().manual_seed(1))).item()
        if steps == 0:
            assert note is None
        elif stop:
            ran = int(note.split(": ")[1].split(" steps")[0])
            assert ran < steps and float(note.rsplit(" ", 1)[1]) < stop
        else:
            assert note.startswith("pre-trained E toward the prior's mean and covariance: 60 steps of 100 images")
    assert losses[60] < 0.5 * losses[0]


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return ensure_mnist_database(tmp_path_factory.getbasetemp() / "alae-family-cache")


def test_the_loop_pretrains_a_new_run_only_and_starts_its_ema_there(mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    common = ["--data", str(mnist), "--device", "cpu", "model.mlp_width=32", "model.latent_dim=4",
              "train.batch_per_lod=[16]", "data.holdout=20", "log.kimg_per_tick=0.016", "log.kimg_per_checkpoint=0.016",
              "train.ema_halflife_kimg=1000000", "wae_mmd.pretrain_steps=3", "wae_mmd.pretrain_batch=64"]
    out = tmp_path / "run"
    assert train.main(["--config", "mnist-wae-mmd", "--out", str(out), "--kimg", "0.016", *common]) == 0
    assert "pre-trained E toward the prior's mean and covariance: 3 steps" in (out / "log.txt").read_text()
    # An EMA that barely moves (β = 1 − 1e-8 per step) is where it started: E pre-trained, G as built.
    cfg = load_config(str(out / "config.yaml"))
    torch.manual_seed(cfg.train.seed)
    fresh = LatentAutoencoder(cfg).state_dict()
    ema = load_checkpoint(out)["ema"]
    assert all(torch.allclose(ema[k], fresh[k], rtol=1e-6, atol=1e-6) for k in fresh if k.startswith("G."))
    assert any((ema[k] - fresh[k]).abs().max() > 1e-4 for k in fresh if k.startswith("E."))
    assert train.main(["--config", "mnist-wae-mmd", "--out", str(out), "--kimg", "0.032", "--resume", "auto",
                       *common]) == 0
    assert (out / "log.txt").read_text().count("pre-trained E") == 1  # not again on resume
    assert load_checkpoint(out)["progress"]["images_seen"] == 32
