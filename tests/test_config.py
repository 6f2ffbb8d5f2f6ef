"""Config loading: built-ins resolve by name, overrides apply, bad input names the field."""
import pytest

from alae.config import (
    ConfigError,
    LogConfig,
    builtin_config_names,
    check_world_size,
    from_dict,
    load_config,
    save_config,
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
    cfg = load_config("demo", ["train.r1_gamma=5", "data.mirror=false", "model.channels=[8, 8, 8, 8]"])
    assert cfg.train.r1_gamma == 5.0 and isinstance(cfg.train.r1_gamma, float)
    assert cfg.data.mirror is False
    assert cfg.model.channels == [8, 8, 8, 8]


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        load_config("demo", ["train.r1_gama=5"])
    assert "train.r1_gama" in str(e.value) and "r1_gamma" in str(e.value)
    with pytest.raises(ConfigError, match="valid keys at this level: name, model, train, data, log"):
        load_config("demo", ["trian.x=1"])


@pytest.mark.parametrize("override, field", [
    ("model.resolution=48", "model.resolution"),
    ("model.channels=[8, 8]", "model.channels"),
    ("train.batch_per_lod=[32, 32, 32]", "train.batch_per_lod"),
    ("train.r1_gamma=abc", "train.r1_gamma"),
    ("train.r1_interval=1.5", "train.r1_interval"),
    ("data.mirror=3", "data.mirror"),
    ("train.style_mixing_prob=1.5", "train.style_mixing_prob"),
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
