"""Config loading: built-ins resolve by name, overrides apply, bad input names the field, old
run directories' configs still load."""
import dataclasses
from pathlib import Path

import pytest
import yaml

from alae.config import (
    LEGACY_TRAIN_KEYS,
    ConfigError,
    LogConfig,
    builtin_config_names,
    check_world_size,
    from_dict,
    load_config,
    save_config,
    to_dict,
)


def test_builtin_configs_load_and_validate():
    assert {"demo", "ffhq", "celeba-hq256", "bedroom256", "mnist-alae", "mnist-vae", "mnist-aae", "mnist-wae-mmd",
            "mnist-wae-gan", "mnist-style"} <= set(builtin_config_names())
    for name in builtin_config_names():
        cfg = load_config(name)
        if cfg.model.backbone == "style":
            assert len(cfg.model.channels) == cfg.model.num_lods
        else:
            assert cfg.model.num_lods == 1 and cfg.model.resolution == 28
        assert len(cfg.train.batch_per_lod) == len(cfg.train.lr_per_lod) == cfg.model.num_lods


def test_ffhq_config_has_the_reference_schedule():
    cfg = load_config("ffhq")
    assert cfg.model.channels == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert cfg.train.batch_per_lod == [512, 256, 128, 64, 32, 32, 32, 32, 32]
    assert cfg.train.lr_per_lod == [0.0015] * 6 + [0.002, 0.003, 0.003]
    assert (cfg.train.kimg_fade, cfg.train.kimg_stable) == (480, 480)
    assert (cfg.train.adam_beta1, cfg.train.adam_beta2, cfg.train.adam_eps) == (0.0, 0.99, 1e-8)


def test_overrides_are_parsed_as_yaml_and_typed():
    cfg = load_config("demo", ["alae.r1_gamma=5", "data.mirror=false", "model.channels=[8, 8, 8, 8]"])
    assert cfg.objective.r1_gamma == 5.0 and isinstance(cfg.objective.r1_gamma, float)
    assert cfg.data.mirror is False
    assert cfg.model.channels == [8, 8, 8, 8]


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        load_config("demo", ["alae.r1_gama=5"])
    assert "alae.r1_gama" in str(e.value) and "r1_gamma" in str(e.value)
    with pytest.raises(ConfigError, match="valid keys at this level: name, model, train, data, log"):
        load_config("demo", ["trian.x=1"])


@pytest.mark.parametrize("override, field", [
    ("model.resolution=48", "model.resolution"),
    ("model.channels=[8, 8]", "model.channels"),
    ("train.batch_per_lod=[32, 32, 32]", "train.batch_per_lod"),
    ("alae.r1_gamma=abc", "alae.r1_gamma"),
    ("alae.r1_interval=1.5", "alae.r1_interval"),
    ("data.mirror=3", "data.mirror"),
    ("alae.style_mixing_prob=1.5", "alae.style_mixing_prob"),
    ("data.holdout=0", "data.holdout"),
    ("log.kimg_per_tick=0", "log.kimg_per_tick"),
    ("log.kimg_per_metrics=-1", "log.kimg_per_metrics"),
    ("log.metrics=mse_rec", "log.metrics"),
    ("log.metrics=[mse_rec, mse_rec]", "log.metrics"),
    ("log.metrics=['']", "log.metrics"),
])
def test_bad_values_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config("demo", [override])


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no config named 'nope'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))


def test_world_size_must_divide_every_batch():
    cfg = load_config("ffhq")
    check_world_size(cfg, 8)
    with pytest.raises(ConfigError, match=r"batch_per_lod\[0\] = 512 is not divisible by the world size 3"):
        check_world_size(cfg, 3)
    cfg.train.batch_gpu = 3
    with pytest.raises(ConfigError, match="train.batch_gpu = 3"):
        check_world_size(cfg, 8)


def test_log_defaults_follow_stylegan2_ada():
    log = LogConfig()
    assert log.kimg_per_tick == 4.0  # StyleGAN2-ADA's kimg_per_tick
    assert log.metrics == [] and log.kimg_per_metrics == 0.0  # 0: metrics with every checkpoint


def test_configs_saved_with_the_old_kimg_per_tb_still_load(tmp_path):
    """Run directories and checkpoints written before log.kimg_per_tb became log.kimg_per_tick."""
    assert from_dict({"log": {"kimg_per_tb": 0.5}}).log.kimg_per_tick == 0.5
    cfg = load_config("demo")
    saved = tmp_path / "config.yaml"
    save_config(cfg, saved)
    saved.write_text(saved.read_text().replace("kimg_per_tick:", "kimg_per_tb:"))
    assert "kimg_per_tb" in saved.read_text()
    assert load_config(str(saved)) == cfg
    with pytest.raises(ConfigError, match="log.kimg_per_tb is the old name of log.kimg_per_tick"):
        load_config("demo", ["log.kimg_per_tb=1"])  # demo.yaml already sets kimg_per_tick


OLD_CONFIGS = Path(__file__).parent / "data" / "configs-before-objective-sections"


@pytest.mark.parametrize("name", ["demo", "mnist-vae", "mnist-aae-semi", "mnist-wae-mmd"])
def test_configs_saved_before_objective_sections_load_with_the_same_options(name):
    """config.yaml files of runs made when `train` held every objective's options side by side
    (every field saved): the run's own options move into its section, the others are dropped."""
    old = yaml.safe_load((OLD_CONFIGS / f"{name}.yaml").read_text())
    cfg = from_dict(old)
    assert cfg.train.objective == old["train"]["objective"]
    legacy = {new: key for key, (_, owners) in LEGACY_TRAIN_KEYS.items() for o, new in owners.items()
              if o == cfg.train.objective}
    for field in dataclasses.fields(cfg.objective):  # the options of the run's objective that were in `train`
        if field.name in legacy:
            assert getattr(cfg.objective, field.name) == old["train"][legacy[field.name]], field.name
        else:  # an option added since: its default, which is what those runs did
            assert getattr(cfg.objective, field.name) == field.default, field.name
    saved = to_dict(cfg)
    for section in ("model", "train", "data", "log"):
        assert {k: saved[section][k] for k in old[section] if k not in LEGACY_TRAIN_KEYS} == \
            {k: v for k, v in old[section].items() if k not in LEGACY_TRAIN_KEYS}
    assert from_dict(to_dict(cfg)) == cfg


@pytest.mark.parametrize("config, overrides, fragments", [
    ("mnist-aae", ["vae.kl_weight=0.5"], ["vae: options of the vae objective", "train.objective is aae"]),
    ("mnist-vae", ["aae.prior=mixture"], ["aae: options of the aae objective", "train.objective is vae"]),
    ("mnist-vae", ["vae.prior=mixture"], ["unknown key vae.prior", "valid keys at this level: likelihood"]),
    ("mnist-aae", ["train.kl_weight=0.5"], ["train.kl_weight is an option of vae", "train.objective is aae"]),
    ("mnist-aae", ["train.objective=vae"], ["aae: options of the aae objective", "train.objective is vae"]),
    ("mnist-aae", ["train.objective=nope"], ["train.objective: no objective 'nope'", "known: aae, alae, vae"]),
])
def test_an_option_of_another_objective_is_a_one_line_error(config, overrides, fragments):
    with pytest.raises(ConfigError) as error:
        load_config(config, overrides)
    message = str(error.value)
    assert "\n" not in message and all(f in message for f in fragments), message


def test_the_old_place_of_an_option_still_sets_it(tmp_path):
    assert load_config("mnist-vae", ["train.kl_weight=0.5"]).objective.kl_weight == 0.5
    assert load_config("mnist-wae-mmd", ["train.wae_lambda=3"]).objective.penalty_weight == 3.0
    assert load_config("mnist-aae", ["train.objective=aae", "train.adversary_lr_mul=0.2"]).objective.adversary_lr_mul == 0.2
    both = tmp_path / "both.yaml"
    both.write_text("train: {objective: vae, kl_weight: 0.5}\nvae: {kl_weight: 0.25}\n")
    with pytest.raises(ConfigError, match="train.kl_weight is the old place of vae.kl_weight; give only vae.kl_weight"):
        load_config(str(both))


@pytest.mark.parametrize("override, message", [
    ("alae.r1_gamma=-1", "alae.r1_gamma: must be >= 0, got -1"),
    ("train.batch_per_lod=[16, 16, 0, 16]", "train.batch_per_lod[2]: must be positive, got 0"),
    ("train.precision=fp16", "train.precision: expected one of 'fp32' or 'bf16', got 'fp16'"),
    ("alae.latent_step_updates_mapping=1", "alae.latent_step_updates_mapping: expected true or false, got 1"),
    ("train.seed=1.5", "train.seed: expected an integer, got 1.5"),
    ("alae.w_avg_beta=1", "alae.w_avg_beta: must be < 1, got 1"),
])
def test_type_and_range_errors_are_one_line_naming_the_field(override, message):
    with pytest.raises(ConfigError) as error:
        load_config("demo", [override])
    assert str(error.value) == message
