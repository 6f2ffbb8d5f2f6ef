"""alae-train for every objective of the family on tiny MLP models and the embedded MNIST digits:
each run writes its run directory and its own statistics (checked against the objectives'
formulas), loads as a model, resumes bit for bit (VAE, AAE); a style-backbone VAE trains
through a fade-in; combinations that cannot work are one-line errors before anything trains."""
import json
import math

import pytest
import torch
from PIL import Image

import alae
from alae import train
from alae.datasets import LMDBDataset, ensure_mnist_database, to_model_range
from alae.model_files.checkpoint import load_checkpoint
from alae.model_files.loading import load_networks

CONFIGS = {"alae": "mnist-alae", "vae": "mnist-vae", "aae": "mnist-aae", "wae_mmd": "mnist-wae-mmd",
           "wae_gan": "mnist-wae-gan"}
WITH_D = ("alae", "aae", "wae_gan")
# Batch 16, ticks of 32 images: --kimg 0.064 is 4 steps in 2 ticks.
TINY = ["model.mlp_width=32", "model.latent_dim=4", "train.batch_per_lod=[16]", "train.lr_per_lod=[0.001]",
        "data.holdout=20", "data.workers=0", "log.grid_size=2", "log.kimg_per_tick=0.032", "log.kimg_per_sample=1",
        "log.kimg_per_checkpoint=1"]
# Weights given here so that the formulas below are checked with values other than 1.
WEIGHTS = {"vae": ["vae.kl_weight=0.5"], "wae_mmd": ["wae_mmd.penalty_weight=3"], "wae_gan": ["wae_gan.penalty_weight=3"]}

ROW_KEYS = {"tick", "kimg", "images_seen", "step", "lod", "alpha", "lr", "batch", "img_per_s", "sec_per_kimg",
            "maintenance_s", "threads", "timestamp", "peak_gpu_mem_gib"}
TIMING_KEYS = {"img_per_s", "sec_per_kimg", "maintenance_s", "threads", "timestamp", "peak_gpu_mem_gib"}
# What each objective reports (its module docstring): the required statistics, then the diagnostics it may add.
REQUIRED = {"alae": {"loss_d", "loss_g", "loss_latent"}, "vae": {"loss_vae", "nll", "kl", "elbo"},
            "aae": {"loss_rec", "loss_d", "loss_e"}, "wae_mmd": {"loss_wae", "loss_rec", "mmd"},
            "wae_gan": {"loss_wae", "loss_rec", "loss_fool", "loss_d"}}
DIAGNOSTICS = {"alae": {"logits_real", "logits_fake", "r1"}, "aae": {"logits_prior", "logits_code"},
               "wae_gan": {"logits_prior", "logits_code"}}
CODE_NAMES = {"alae": "w", "vae": "mu", "aae": "z", "wae_mmd": "z", "wae_gan": "z"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One alae cache for the session's family tests (the tools' tests find the same database)."""
    path = tmp_path_factory.getbasetemp() / "alae-family-cache"
    ensure_mnist_database(path)
    return path


@pytest.fixture(scope="module")
def mnist(cache):
    return ensure_mnist_database(cache)


@pytest.fixture(autouse=True)
def private_cache(cache, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(cache))  # `--data lfw` and `data.path: mnist` build there


def tiny(objective):
    return [f"train.objective={objective}", *TINY, *(["model.discriminator_width=16"] if objective in WITH_D else []),
            *WEIGHTS.get(objective, [])]


def run(config, out, kimg, *overrides, data=None, resume=None):
    argv = ["--config", config, "--out", str(out), "--kimg", str(kimg), "--device", "cpu", *overrides]
    if data is not None:
        argv += ["--data", str(data)]
    if resume is not None:
        argv += ["--resume", resume]
    return train.main(argv)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def statistics(row):
    return {k: v for k, v in row.items() if k not in ROW_KEYS}


def digits(mnist, count=3):
    """The database's last `count` digits at 28 px in [−1, 1]: the central crop of the stored 32 px level."""
    images = LMDBDataset(mnist, 32)
    return to_model_range(torch.stack([images[i] for i in range(len(images) - count, len(images))]))[..., 2:30, 2:30]


@pytest.mark.parametrize("objective", list(CONFIGS))
def test_each_objective_trains_writes_its_run_directory_and_its_own_statistics(objective, mnist, tmp_path):
    out = tmp_path / objective
    assert run(CONFIGS[objective], out, 0.064, *tiny(objective), data=mnist) == 0
    saved = alae.load_config(str(out / "config.yaml"))
    assert saved.train.objective == objective and saved.model.backbone == "mlp"
    checkpoint = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert checkpoint["progress"]["images_seen"] == 64 and checkpoint["progress"]["step"] == 4
    # Grids of 28 px digits are shown 3x (84 px) with 1-pixel gaps: 2 × 2 samples; 2 originals above their reconstructions.
    for kind in ("samples", "reconstructions"):
        pictures = sorted((out / "samples").glob(f"{kind}-*.png"))
        assert len(pictures) == 2  # at the start and at the end
        with Image.open(pictures[-1]) as picture:
            assert picture.size == (2 * 85 + 1, 2 * 85 + 1)
    assert len(sorted((out / "samples").glob("latents-*.png"))) == 2 and (out / "samples" / "losses.png").is_file()

    table = rows(out / "stats.jsonl")
    assert [(r["tick"], r["images_seen"], r["step"], r["lod"], r["batch"]) for r in table] == \
        [(1, 32, 2, 0, 16), (2, 64, 4, 0, 16)]
    others = set().union(*REQUIRED.values(), *DIAGNOSTICS.values()) - REQUIRED[objective] - DIAGNOSTICS.get(objective, set())
    for r in table:
        stats = statistics(r)
        assert REQUIRED[objective] <= set(stats) <= REQUIRED[objective] | DIAGNOSTICS.get(objective, set()), stats
        assert not others & set(stats)
        assert all(math.isfinite(v) for v in stats.values())
        # Each row holds tick means of per-step values, so each objective's linear identities hold for them.
        if objective == "vae":  # β = 0.5: the loss weighs the KL by β, the ELBO does not
            assert r["elbo"] == pytest.approx(-(r["nll"] + r["kl"]), rel=1e-6)
            assert r["loss_vae"] == pytest.approx(r["nll"] + 0.5 * r["kl"], rel=1e-6)
            assert r["kl"] >= 0 and r["nll"] > 0
        elif objective == "wae_mmd":  # λ = 3
            assert r["loss_wae"] == pytest.approx(r["loss_rec"] + 3 * r["mmd"], rel=1e-5, abs=1e-6)
            assert r["loss_rec"] > 0
        elif objective == "wae_gan":
            assert r["loss_wae"] == pytest.approx(r["loss_rec"] + 3 * r["loss_fool"], rel=1e-5)
            assert r["loss_fool"] > 0 and r["loss_d"] > 0  # softplus terms
        elif objective == "aae":
            assert r["loss_rec"] > 0 and r["loss_d"] > 0 and r["loss_e"] > 0
        else:
            assert r["loss_d"] > 0 and r["loss_g"] > 0 and r["loss_latent"] >= 0

    # The run loads as a model (its EMA networks), through both public loaders.
    model = alae.load_model(out, "cpu")
    assert model.networks.objective == objective and model.networks.code_name == CODE_NAMES[objective]
    for name, value in checkpoint["ema"].items():
        assert torch.equal(model.networks.state_dict()[name], value), name
    cfg, networks = load_networks(out / "checkpoints" / "latest.pt")
    assert cfg == saved.model and (networks.D is None) == (objective not in WITH_D)
    assert (networks.F is None) == (objective != "alae")
    x = digits(mnist)
    codes = model.encode(x)
    assert codes.shape == (3, 4)
    reconstructions = model.reconstruct(x)
    assert reconstructions.shape == (3, 1, 28, 28)
    if objective == "vae":  # a Bernoulli VAE's G emits logits: its images are 2·sigmoid − 1, in [−1, 1]
        assert reconstructions.abs().max() <= 1
    assert model.sample([0, 1]).shape == (2, 1, 28, 28)


def assert_same_state(a: dict, b: dict):
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert a["optimizers"].keys() == b["optimizers"].keys()
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0, name
        for i in sa:
            for k in sa[i]:
                assert torch.equal(sa[i][k], sb[i][k]), f"{name}.state[{i}].{k}"
    assert a["progress"] == b["progress"]


@pytest.mark.parametrize("objective, extra", [
    ("vae", []),
    ("aae", []),
    ("aae", ["model.latent_dim=2", "aae.prior=mixture", "aae.prior_labels=true", "aae.labelled_fraction=0.5",
             "aae.posterior=gaussian"]),
    ("aae", ["aae.posterior=universal"]),
    ("wae_mmd", []),
    ("wae_gan", []),
    ("alae", []),
    # Every option of issue 27 at once, the learning-rate step between the two halves.
    ("wae_gan", ["model.init=normal", "model.init_std=0.05", "train.gradient_clip=0.5", "train.lr_steps=[[0.048, 0.5]]",
                 "wae_gan.adversary_input_noise=0.3", "wae_gan.encoder_input_noise=0.01", "wae_gan.pretrain_steps=3",
                 "wae_gan.pretrain_batch=16"]),
    ("aae", ["aae.categories=4", "aae.cluster_heads=learnt", "aae.shared_encoder_adam=false",
             "train.lr_steps=[[0.048, 0.5]]"]),
])
def test_resume_continues_bit_for_bit(objective, extra, mnist, tmp_path):
    overrides = [*tiny(objective), *extra]
    assert run(CONFIGS[objective], tmp_path / "straight", 0.064, *overrides, data=mnist) == 0
    assert run(CONFIGS[objective], tmp_path / "split", 0.032, *overrides, data=mnist) == 0  # 2 steps
    assert run(CONFIGS[objective], tmp_path / "split", 0.064, *overrides, data=mnist, resume="auto") == 0
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "latest.pt")
    resumed = load_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert straight["progress"]["images_seen"] == 64
    assert_same_state(straight, resumed)
    a, b = rows(tmp_path / "straight" / "stats.jsonl"), rows(tmp_path / "split" / "stats.jsonl")
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        assert {k: v for k, v in ra.items() if k not in TIMING_KEYS} == {k: v for k, v in rb.items()
                                                                          if k not in TIMING_KEYS}
        assert REQUIRED[objective] <= set(ra)
    assert "resumed from" in (tmp_path / "split" / "log.txt").read_text()


def test_a_style_backbone_vae_trains_through_a_fade_in_and_its_codes_are_posterior_means(mnist, tmp_path):
    out = tmp_path / "style-vae"
    # 8 px: lod 0 (4 px) for 32 images, then lod 1 fades in over 16 and trains stable; one step of 8 per tick.
    overrides = ["train.objective=vae", "model.backbone=style", "model.resolution=8", "model.channels=[16, 16]",
                 "model.latent_dim=4", "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.001, 0.001]",
                 "train.kimg_fade=0.016", "train.kimg_stable=0.016", "data.holdout=20", "data.workers=0",
                 "log.grid_size=2", "log.kimg_per_tick=0.008"]
    assert run("mnist-vae", out, 0.064, *overrides, data=mnist) == 0
    table = rows(out / "stats.jsonl")
    # A row carries the phase of its tick's (one) step: steps start at 0, 8, ..., 56 images; the
    # fade-in covers images 32-48 with alpha (1 − cos πt)/2, t = (images − 32)/16.
    expected = [(0, 1.0)] * 4 + [(1, 0.0), (1, (1 - math.cos(math.pi * 0.5)) / 2), (1, 1.0), (1, 1.0)]
    assert [(r["lod"], r["alpha"]) for r in table] == [(lod, pytest.approx(a, abs=1e-9)) for lod, a in expected]
    for r in table:
        assert {"loss_vae", "nll", "kl", "elbo"} <= set(r)
        assert r["elbo"] == pytest.approx(-(r["nll"] + r["kl"]), rel=1e-6)
    with Image.open(sorted((out / "samples").glob("samples-*.png"))[-1]) as picture:
        assert picture.size == (2 * 65 + 1,) * 2  # 8 px shown 8x
    model = alae.load_model(out, "cpu")
    assert model.networks.backbone == "style" and model.networks.code_name == "mu"
    x = torch.nn.functional.avg_pool2d(to_model_range(torch.stack([LMDBDataset(mnist, 32)[i] for i in range(4)])), 4)
    codes = model.encode(x)
    assert codes.shape == (4, 4)
    with torch.no_grad():
        raw = model.networks.encoder_outputs(x, 1, 1.0)  # mean and log-variance
    assert raw.shape == (4, 8)
    torch.testing.assert_close(codes, raw[:, :4], rtol=1e-6, atol=1e-6)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("alae-train: error: ") and "Traceback" not in err, err
    return lines[0]


def assert_nothing_trained(out):
    assert not (out / "checkpoints" / "latest.pt").exists() and not (out / "stats.jsonl").exists()


@pytest.mark.parametrize("config, overrides, data, fragments", [
    ("mnist-aae", ["train.objective=aae", "aae.prior=swiss_roll", "model.latent_dim=50"], None,
     ["aae.prior/model.latent_dim", "swiss_roll", "50"]),
    ("mnist-vae", ["model.backbone=mlp", "model.resolution=32"], None, ["model.resolution", "mlp", "28", "32"]),
    ("mnist-vae", ["model.image_channels=3"], None, ["model.image_channels", "3", "1-channel"]),
    ("mnist-vae", ["train.objective=vae", "vae.posterior=universal"], None, ["unknown key vae.posterior"]),
    ("mnist-alae", ["alae.prior=mixture"], None, ["unknown key alae.prior"]),
    ("mnist-vae", ["aae.prior=mixture"], None, ["aae", "options of the aae objective", "train.objective is vae"]),
    ("mnist-aae", ["vae.kl_weight=0.5"], None, ["vae", "train.objective is aae"]),
    ("mnist-aae", ["train.kl_weight=0.5"], None, ["train.kl_weight", "vae", "train.objective is aae"]),
    ("mnist-wae-mmd", ["train.batch_per_lod=[1]"], None, ["wae_mmd", "at least 2 images", "train.batch_per_lod[0]"]),
    ("mnist-aae", ["model.backbone=style", "model.resolution=8", "model.channels=[16, 16]", "model.image_channels=3",
                   "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.001, 0.001]", "aae.prior=mixture",
                   "aae.prior_labels=true", "data.holdout=4"], "lfw", ["aae.prior_labels", "labels"]),
    ("mnist-aae", ["aae.prior=mixture", "aae.prior_labels=true", "aae.prior_components=5"], None,
     ["aae.prior_components", "5", "10 classes"]),
    ("mnist-wae-gan", ["wae_gan.prior=mixture", "wae_gan.prior_labels=true"], None, ["unknown key wae_gan.prior_labels"]),
    ("mnist-aae", ["aae.prior_labels=true"], None, ["aae.prior_labels/aae.prior", "gaussian"]),
])
def test_combinations_that_cannot_work_are_one_line_errors_before_training(config, overrides, data, fragments, mnist,
                                                                          tmp_path, capsys):
    out = tmp_path / "run"
    tail = [o for o in TINY if not any(o.split("=")[0] == v.split("=")[0] for v in overrides)]
    assert run(config, out, 0.032, *overrides, *tail, data=data or mnist) == 1
    line = one_line_error(capsys)
    for fragment in fragments:
        assert fragment in line, line
    assert_nothing_trained(out)


def test_a_full_mnist_config_without_its_data_or_with_too_few_digits_is_one_line(mnist, tmp_path, capsys):
    """mnist60k-* name no database (the 60,000 digits are the user's to prepare) and hold out 10,000."""
    assert run("mnist60k-vae", tmp_path / "none", 0.032) == 1
    assert "no training data: give --data PATH" in one_line_error(capsys)
    assert run("mnist60k-vae", tmp_path / "small", 0.032, data=mnist) == 1  # the embedded 5,000 digits
    assert "data.holdout = 10000 leaves no training images (5000 in" in one_line_error(capsys)
    assert not (tmp_path / "none").exists() and not (tmp_path / "small").exists()


def test_resuming_an_alae_run_as_a_vae_is_refused_and_changes_nothing(mnist, tmp_path, capsys):
    out = tmp_path / "alae"
    assert run("mnist-alae", out, 0.016, *tiny("alae"), data=mnist) == 0
    before = {p: (out / p).read_bytes() for p in ("config.yaml", "stats.jsonl", "checkpoints/latest.pt")}
    capsys.readouterr()
    assert train.main(["--out", str(out), "--resume", "auto", "--kimg", "0.032", "--device", "cpu",
                       "train.objective=vae"]) == 1
    line = one_line_error(capsys)
    assert "train.objective is vae" in line, line
    assert {p: (out / p).read_bytes() for p in before} == before


def test_init_of_a_vae_checkpoint_into_an_alae_config_is_refused(mnist, tmp_path, capsys):
    source = tmp_path / "vae"
    assert run("mnist-vae", source, 0.016, *tiny("vae"), data=mnist) == 0
    capsys.readouterr()
    out = tmp_path / "alae"
    assert run("mnist-alae", out, 0.032, *tiny("alae"), "--init", str(source), data=mnist) == 1
    line = one_line_error(capsys)
    assert "--init" in line and "train.objective 'vae' there, 'alae' here" in line, line
    assert not out.exists()
