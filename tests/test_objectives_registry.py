"""The objective registry: an objective is one module of alae.training.objectives, found by its
name; its `Options` are its config section and its traits tell the model builder, validation and
the metrics what it is. A new objective built from existing parts needs no other file."""
import sys

import pytest
import yaml

import alae
import alae.training.objectives as objectives
from alae import train
from alae.config import (
    ConfigError,
    ObjectiveOptions,
    Traits,
    builtin_config_names,
    load_config,
    objective_names,
    read_config_file,
    resolve_config_path,
)
from alae.distributed import Context
from alae.datasets import ensure_mnist_database
from alae.metrics.elbo import vae_problem
from alae.metrics.evaluation import Evaluation
from alae.model import LatentAutoencoder

NEW_OBJECTIVE = '''"""β-VAE (Higgins et al. 2017): the VAE with β = 4 on its KL term."""
from alae.config import NonNegativeFloat, section
from alae.training.objectives import vae


@section
class Options(vae.Options):
    """The `beta_vae` section."""

    kl_weight: NonNegativeFloat = 4.0  # Higgins et al. 2017, MNIST-like data


make_optimizers, train_step = vae.make_optimizers, vae.train_step
'''


def test_the_known_objectives_are_the_modules_that_define_options():
    assert list(objective_names()) == ["aae", "alae", "vae", "wae_gan", "wae_mmd"]
    for name in objective_names():
        module = objectives.objective_named(name)
        assert issubclass(module.Options, ObjectiveOptions) and isinstance(module.Options().traits(), Traits)
        assert callable(module.train_step) and callable(module.make_optimizers)


@pytest.mark.parametrize("config", builtin_config_names())
def test_the_model_builder_follows_the_traits(config):
    cfg = load_config(config, ["model.channels=[8, 8, 8, 8, 8, 8, 8, 8, 8]", "model.mlp_width=8"]
                      if config in ("ffhq",) else ["model.mlp_width=8"])
    traits, model = cfg.traits, LatentAutoencoder(cfg)
    assert (model.F is not None) == traits.mapping and (model.D is not None) == traits.code_discriminator
    assert (model.Dy is not None) == (traits.class_head > 0)
    assert model.output == traits.decoder_output and model.posterior == traits.posterior
    assert model.likelihood == traits.likelihood and model.code_dim == cfg.model.latent_dim + traits.categories


@pytest.fixture
def beta_vae(tmp_path, monkeypatch):
    """The module above, dropped into the objectives package's search path (as a new file would be)."""
    folder = tmp_path / "objectives"
    folder.mkdir()
    (folder / "beta_vae.py").write_text(NEW_OBJECTIVE)
    monkeypatch.setattr(objectives, "__path__", [*objectives.__path__, str(folder)])
    objectives.objective_names.cache_clear()
    yield
    sys.modules.pop("alae.training.objectives.beta_vae", None)
    objectives.objective_names.cache_clear()


def test_a_new_objective_module_trains_loads_and_reports_an_elbo_with_no_other_file_changed(beta_vae, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    assert "beta_vae" in objective_names()
    data = read_config_file(resolve_config_path("mnist-vae"))
    data["beta_vae"] = {k: v for k, v in data.pop("vae").items() if k != "kl_weight"}
    data["train"]["objective"] = "beta_vae"
    config = tmp_path / "beta-vae.yaml"
    config.write_text(yaml.safe_dump(data))
    assert load_config(str(config)).objective.kl_weight == 4.0
    with pytest.raises(ConfigError, match="unknown key beta_vae.kl_wieght"):
        load_config(str(config), ["beta_vae.kl_wieght=1"])

    out = tmp_path / "run"
    mnist = ensure_mnist_database(tmp_path / "cache")
    assert train.main(["--config", str(config), "--data", str(mnist), "--out", str(out), "--kimg", "0.064",
                       "--device", "cpu", "model.mlp_width=32", "model.latent_dim=4", "train.batch_per_lod=[16]",
                       "data.holdout=20", "log.kimg_per_tick=0.032", "log.grid_size=2"]) == 0
    rows = [yaml.safe_load(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all({"elbo", "kl", "nll", "loss_vae"} <= set(r) for r in rows)
    # β = 4: the loss is nll + 4·kl, the ELBO −(nll + kl).
    assert rows[-1]["loss_vae"] == pytest.approx(rows[-1]["nll"] + 4 * rows[-1]["kl"], rel=1e-5)
    model = alae.load_model(out, "cpu")
    assert model.config.train.objective == "beta_vae" and model.networks.code_name == "mu"
    ev = Evaluation(model=model.networks, data=mnist, lod=0, alpha=1.0, ctx=Context(0, 0, 1, model.device), holdout=20)
    assert vae_problem(ev) is None  # its traits (a Gaussian posterior, a likelihood) give it an ELBO
