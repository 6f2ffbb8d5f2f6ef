"""Run configuration: a dataclass schema, YAML loading, `key=value` overrides, validation.

A config is data: `configs/NAME.yaml` (installed as `alae.configs`) or any YAML path. Loading
validates every field and raises `ConfigError` naming the field (`train.batch_per_lod`), never
a traceback from deep inside the training loop. Defaults that come from the paper or the
original ALAE code (podgorskiy/ALAE, configs/ffhq.yaml) say so beside them.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from alae.errors import UserError
from alae.files import save_text
from alae.lods import num_lods


class ConfigError(UserError, ValueError):
    """A config file, key or value is wrong; the message names the field."""


BACKBONES = ("style", "mlp")
MLP_RESOLUTION = 28  # the original's EncoderFC / GeneratorFC: 28x28 MNIST digits


@dataclass
class ModelConfig:
    """The networks. backbone `style`: resolutions run 4, 8, ..., `resolution` and `channels[i]`
    is the width at 4·2^i; backbone `mlp`: one 28x28 resolution, `channels` unused."""

    backbone: str = "style"  # style: StyleALAE's F, G, E, D; mlp: the original's MNIST EncoderFC / GeneratorFC
    resolution: int = 1024
    channels: list[int] = field(default_factory=lambda: [512, 512, 512, 512, 256, 128, 64, 32, 16])  # original ffhq
    image_channels: int = 3
    latent_dim: int = 512
    mapping_layers: int = 8  # original: MAPPING_LAYERS 8
    mapping_lr_mul: float = 0.1  # original F
    discriminator_layers: int = 3  # original D: 512→512→512→1024
    discriminator_outputs: int = 1024  # original emits 2·latent outputs and reads column outputs//2; 1 is the clean variant
    discriminator_activation: str = "linear"  # original: no activation between D's layers; "lrelu" adds LeakyReLU 0.2
    discriminator_lr_mul: float = 0.1  # original D
    fused_scale_resolution: int = 128  # original: G stores its upsampling convs transposed from 128 px up (the same function)
    to_rgb_gain: float = 0.03  # original ToRGB gain
    encoder_std_eps: float = 1e-8  # E's style std is sqrt(var + eps); original 0 (R1's double backward needs > 0 on constant channels)
    mlp_width: int = 1024  # mlp: the hidden width of E and G (original EncoderFC / GeneratorFC: 1024)
    discriminator_width: int = 0  # D's hidden width; 0 = latent_dim (original ALAE D); WAE-GAN's MNIST adversary: 512

    @property
    def num_lods(self) -> int:
        return 1 if self.backbone == "mlp" else num_lods(self.resolution)

    @property
    def num_style_layers(self) -> int:
        """Codes G takes: two per resolution (style), one (mlp)."""
        return 1 if self.backbone == "mlp" else 2 * self.num_lods

    def resolution_at(self, lod: int) -> int:
        """Image side at a level of detail: 4·2^lod (style); the one resolution (mlp)."""
        return self.resolution >> (self.num_lods - 1 - lod)


OBJECTIVES = ("alae", "vae", "aae", "wae_mmd", "wae_gan")  # alae.training.objectives registers one module each
POSTERIORS = ("auto", "deterministic", "gaussian", "universal")
PRIORS = ("gaussian", "mixture", "swiss_roll")  # alae.priors
LIKELIHOODS = ("bernoulli", "gaussian")
RECONSTRUCTIONS = ("squared_error", "cross_entropy")
MIXING_MODES = ("per_sample", "per_batch")
W_AVG_UPDATES = ("once", "every_step")
PRECISIONS = ("fp32", "bf16")
CATEGORY_SOURCES = ("encoder", "label")  # train.categories_from


@dataclass
class TrainConfig:
    """Schedule, losses and optimizers; schedules count images seen (kimg), never epochs."""

    total_kimg: float = 15360.0  # original: 16 epochs of 60k images per fade/stable phase, 9 lods
    seed: int = 0
    kimg_fade: float = 480.0  # original: 8 epochs × 60k images per lod fade-in
    kimg_stable: float = 480.0  # original: 8 epochs × 60k images per lod stable phase
    batch_per_lod: list[int] = field(default_factory=lambda: [512, 256, 128, 64, 32, 32, 32, 32, 32])  # original, global
    lr_per_lod: list[float] = field(default_factory=lambda: [0.0015] * 6 + [0.002, 0.003, 0.003])  # original
    batch_gpu: int = 0  # per-process micro-batch cap for gradient accumulation; 0 = no cap
    adam_beta1: float = 0.0  # original
    adam_beta2: float = 0.99  # original
    adam_eps: float = 1e-8  # original
    r1_gamma: float = 10.0  # original
    r1_interval: int = 1  # original applies R1 every D step; >1 = lazy R1 (scaled by the interval)
    style_mixing_prob: float = 0.9  # original
    # per_sample: each sample mixes with style_mixing_prob at a crossover in [1, layers); per_batch:
    # the original's one draw per batch with cutoff randint(1, layers) inclusive (effective rate
    # prob·(1 − 1/layers)). docs/TRAINING.md, "Differences from the original code".
    style_mixing: str = "per_sample"
    first_noise: str = "per_sample"  # per_batch: the original's one 4x4 first noise map per batch (its constant has batch 1)
    w_avg_updates: str = "once"  # once: after the generator step; every_step: the original's one per generate call (3)
    precision: str = "fp32"  # fp32 (original) | bf16: G's and E's convolutions and linears under bf16 autocast
    latent_step_updates_mapping: bool = True  # original steps F and G in the latent step; paper: G only (with E)
    ema_halflife_kimg: float = 10.0  # original
    w_avg_beta: float = 0.995  # original dlatent_avg_beta
    truncation_psi: float = 0.7  # original, sampling only
    truncation_cutoff: int = 8  # original: first 8 style layers (all, if the model has fewer)

    # The objective and its settings (docs/FAMILY.md). Settings of other objectives are ignored.
    objective: str = "alae"  # alae | vae | aae | wae_mmd | wae_gan
    # auto: the objective's own (vae: gaussian; the others: deterministic); aae also takes gaussian
    # (reparameterised, as a VAE's encoder) or universal (E(x, η), η one extra input channel of N(0, 1)).
    posterior: str = "auto"
    prior: str = "gaussian"  # aae, wae_*: gaussian | mixture (K Gaussians on a circle) | swiss_roll (2-D)
    prior_components: int = 10  # mixture, swiss_roll: K (AAE paper: 10)
    prior_labels: bool = False  # aae: D sees the one-hot label, whose class picks the prior's component (AAE §5)
    labelled_fraction: float = 1.0  # aae with prior_labels: share of training images whose label is used
    # aae: G takes [z, y], y a one-hot (or softmax) over K = `categories` classes (0: G takes z alone).
    # categories_from encoder: E's softmax head gives y, matched to a categorical prior by a second
    # adversary (AAE §5 semi-supervised: K 10; §6 clustering: K 16 or 30); label: the image's one-hot
    # label, so z holds the style only (AAE §4, supervised).
    categories: int = 0
    categories_from: str = "encoder"
    kl_weight: float = 1.0  # vae: β on the KL term (Kingma & Welling: 1)
    likelihood: str = "bernoulli"  # vae: p(x|z) on [0, 1] pixels: bernoulli (pytorch/examples) | gaussian
    likelihood_std: float = 0.1  # vae, gaussian likelihood: σ in [0, 1] pixel units (ours)
    reconstruction: str = "squared_error"  # aae, wae_*: c(x, y) = ‖x − y‖² (WAE) | cross_entropy, on [0, 1] pixels
    reconstruction_weight: float = 1.0  # aae, wae_*: factor on c (WAE authors' code, l2sq on MNIST: 0.05)
    wae_lambda: float = 10.0  # wae_*: λ (WAE paper and code, MNIST: 10)
    mmd_scales: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0])  # WAE code
    adversary_lr_mul: float = 1.0  # aae, wae_gan: D's learning rate over the others' (WAE MNIST: 5e-4 / 1e-3)


@dataclass
class DataConfig:
    """Training images: an alae LMDB database path, or `lfw` for the embedded demo faces."""

    path: str = ""
    mirror: bool = True
    holdout: int = 32  # images at the end of the database kept out of training, for reconstructions
    # aae with train.categories from the encoder: N training images (class-balanced, N/K per class,
    # chosen by train.seed) whose labels the semi-supervised classification phase learns from;
    # 0: none (clustering). AAE paper: 100 (1.90% error), 1000, all.
    labelled: int = 0
    workers: int = 2


@dataclass
class LogConfig:
    """What the run directory receives and how often; every interval is checked at tick ends."""

    kimg_per_tick: float = 4.0  # StyleGAN2-ADA; each tick: a status line, a stats.jsonl row, TensorBoard points
    kimg_per_sample: float = 50.0
    kimg_per_checkpoint: float = 100.0
    metrics: list[str] = field(default_factory=list)  # on the EMA networks while training; StyleGAN2-ADA: fid50k_full
    kimg_per_metrics: float = 0.0  # 0 = with every checkpoint (StyleGAN2-ADA evaluates each network snapshot)
    grid_size: int = 8  # samples grid is grid_size × grid_size; reconstructions use grid_size held-out images
    keep_checkpoints: int = 3


@dataclass
class Config:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    log: LogConfig = field(default_factory=LogConfig)


def _coerce(value, annotation, where: str):
    """Check `value` against a field annotation (int, float, bool, str, list[...]) and convert int→float."""
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation} at {where}")


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {', '.join(where + k for k in unknown)}; valid keys at this level: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, where + name)
    return cls(**kwargs)


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


# Keys renamed since configs were first saved, so that old run directories and checkpoints load:
# (section, old name) → new name.
RENAMED_KEYS = {
    ("log", "kimg_per_tb"): "kimg_per_tick",  # TensorBoard scalars every N kimg became all records once per tick
}


def _rename_old_keys(data: dict) -> dict:
    """A copy of `data` with the RENAMED_KEYS under their current names."""
    if not isinstance(data, dict):
        return data
    for (section, old), new in RENAMED_KEYS.items():
        node = data.get(section)
        if isinstance(node, dict) and old in node:
            if new in node:
                raise ConfigError(f"{section}.{old} is the old name of {section}.{new}; give only {section}.{new}")
            node = dict(node)
            node[new] = node.pop(old)
            data = {**data, section: node}
    return data


def from_dict(data: dict) -> Config:
    """Build and validate a Config from nested dicts (missing keys take the defaults; old key
    names in RENAMED_KEYS are read under their new names)."""
    cfg = _build(Config, _rename_old_keys(data), "")
    validate(cfg)
    return cfg


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _require(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{where}: {message}")


def validate(cfg: Config) -> None:
    """Check values that types alone cannot: powers of two, lengths, divisibility, ranges."""
    m, t, d, log = cfg.model, cfg.train, cfg.data, cfg.log
    _require(m.backbone in BACKBONES, "model.backbone", f"must be one of {', '.join(BACKBONES)}, got {m.backbone!r}")
    if m.backbone == "mlp":
        _require(m.resolution == MLP_RESOLUTION, "model.resolution",
                 f"backbone mlp takes {MLP_RESOLUTION}x{MLP_RESOLUTION} images (the original's MNIST networks), "
                 f"got {m.resolution}")
    else:
        _require(_is_power_of_two(m.resolution) and m.resolution >= 4, "model.resolution",
                 f"must be a power of two >= 4, got {m.resolution}")
    n = m.num_lods
    if m.backbone == "style":
        _require(len(m.channels) == n, "model.channels",
                 f"needs one width per resolution 4..{m.resolution} ({n} values), got {len(m.channels)}")
        _require(all(c > 0 for c in m.channels), "model.channels", "widths must be positive")
    _require(m.mlp_width > 0, "model.mlp_width", "must be positive")
    _require(m.discriminator_width >= 0, "model.discriminator_width", "must be >= 0 (0 = model.latent_dim)")
    _require(m.image_channels > 0, "model.image_channels", "must be positive")
    _require(m.latent_dim > 0, "model.latent_dim", "must be positive")
    _require(m.mapping_layers >= 1, "model.mapping_layers", "must be >= 1")
    _require(m.discriminator_layers >= 1, "model.discriminator_layers", "must be >= 1")
    _require(m.discriminator_outputs >= 1, "model.discriminator_outputs", "must be >= 1")
    _require(m.discriminator_activation in ("linear", "lrelu"), "model.discriminator_activation",
             f"must be 'linear' or 'lrelu', got {m.discriminator_activation!r}")
    _require(_is_power_of_two(m.fused_scale_resolution), "model.fused_scale_resolution", "must be a power of two")
    for name in ("mapping_lr_mul", "discriminator_lr_mul", "to_rgb_gain"):
        _require(getattr(m, name) > 0, f"model.{name}", "must be positive")
    _require(m.encoder_std_eps >= 0, "model.encoder_std_eps", "must be >= 0")

    _require(t.total_kimg > 0, "train.total_kimg", "must be positive")
    _require(t.kimg_fade >= 0 and t.kimg_stable > 0, "train.kimg_fade/kimg_stable",
             "fade must be >= 0 and stable > 0")
    _require(len(t.batch_per_lod) == n, "train.batch_per_lod", f"needs {n} values (one per lod), got {len(t.batch_per_lod)}")
    _require(len(t.lr_per_lod) == n, "train.lr_per_lod", f"needs {n} values (one per lod), got {len(t.lr_per_lod)}")
    _require(all(b > 0 for b in t.batch_per_lod), "train.batch_per_lod", "batches must be positive")
    _require(all(lr > 0 for lr in t.lr_per_lod), "train.lr_per_lod", "learning rates must be positive")
    _require(t.batch_gpu >= 0, "train.batch_gpu", "must be >= 0 (0 = no cap)")
    _require(0 <= t.adam_beta1 < 1 and 0 <= t.adam_beta2 < 1, "train.adam_beta1/adam_beta2", "must be in [0, 1)")
    _require(t.adam_eps > 0, "train.adam_eps", "must be positive")
    _require(t.r1_gamma >= 0, "train.r1_gamma", "must be >= 0")
    _require(t.r1_interval >= 1, "train.r1_interval", "must be >= 1")
    _require(0 <= t.style_mixing_prob <= 1, "train.style_mixing_prob", "must be in [0, 1]")
    for name, allowed in (("style_mixing", MIXING_MODES), ("first_noise", MIXING_MODES),
                          ("w_avg_updates", W_AVG_UPDATES), ("precision", PRECISIONS)):
        _require(getattr(t, name) in allowed, f"train.{name}",
                 f"must be one of {', '.join(allowed)}, got {getattr(t, name)!r}")
    _require(t.ema_halflife_kimg >= 0, "train.ema_halflife_kimg", "must be >= 0")
    _require(0 <= t.w_avg_beta < 1, "train.w_avg_beta", "must be in [0, 1)")
    _require(0 <= t.truncation_psi <= 1, "train.truncation_psi", "must be in [0, 1]")
    _require(t.truncation_cutoff >= 0, "train.truncation_cutoff", "must be >= 0 (layers past the last are ignored)")

    validate_objective(cfg)

    _require(d.holdout >= 1, "data.holdout", "must be >= 1 (held-out images feed the reconstruction grids)")
    _require(d.workers >= 0, "data.workers", "must be >= 0")

    for name in ("kimg_per_tick", "kimg_per_sample", "kimg_per_checkpoint"):
        _require(getattr(log, name) > 0, f"log.{name}", "must be positive")
    _require(log.kimg_per_metrics >= 0, "log.kimg_per_metrics", "must be >= 0 (0 = with every checkpoint)")
    _require(all(log.metrics), "log.metrics", "metric names must not be empty")
    repeated = sorted({name for name in log.metrics if log.metrics.count(name) > 1})
    _require(not repeated, "log.metrics", f"lists {', '.join(repeated)} more than once")
    _require(log.grid_size >= 1, "log.grid_size", "must be >= 1")
    _require(log.keep_checkpoints >= 1, "log.keep_checkpoints", "must be >= 1")


# The train.* fields that decide what the networks are (with the whole model section): a run
# resumes, or a model loads, only with the same values.
ARCHITECTURE_FIELDS = ("objective", "posterior", "prior", "prior_components", "prior_labels", "likelihood",
                       "reconstruction", "categories", "categories_from")


def architecture_of(cfg: Config) -> dict:
    """{'model.FIELD': value, 'train.FIELD': value} of everything that decides the networks."""
    fields = {f"model.{k}": v for k, v in to_dict(cfg)["model"].items()}
    fields.update({f"train.{k}": getattr(cfg.train, k) for k in ARCHITECTURE_FIELDS})
    fields["train.posterior"] = posterior_of(cfg.train)
    return fields


def posterior_of(train: TrainConfig) -> str:
    """The encoder's posterior: train.posterior, with `auto` resolved (vae: gaussian; else deterministic)."""
    if train.posterior != "auto":
        return train.posterior
    return "gaussian" if train.objective == "vae" else "deterministic"


def validate_objective(cfg: Config) -> None:
    """The objective and the settings it reads, against each other and the model (one line naming the fields)."""
    m, t = cfg.model, cfg.train
    for name, allowed in (("objective", OBJECTIVES), ("posterior", POSTERIORS), ("prior", PRIORS),
                          ("likelihood", LIKELIHOODS), ("reconstruction", RECONSTRUCTIONS)):
        _require(getattr(t, name) in allowed, f"train.{name}",
                 f"must be one of {', '.join(allowed)}, got {getattr(t, name)!r}")
    posterior = posterior_of(t)
    allowed_posteriors = {"vae": ("gaussian",), "aae": ("deterministic", "gaussian", "universal")}.get(
        t.objective, ("deterministic",))
    _require(posterior in allowed_posteriors, "train.posterior",
             f"{t.objective} takes {' or '.join(allowed_posteriors)} posteriors, got {t.posterior!r}")
    if t.objective in ("alae", "vae"):
        _require(t.prior == "gaussian", "train.prior",
                 f"{t.objective} codes follow N(0, I) (its {'mapping F' if t.objective == 'alae' else 'KL term'} "
                 f"assumes it); got {t.prior!r}")
    _require(t.prior != "swiss_roll" or m.latent_dim == 2, "train.prior/model.latent_dim",
             f"the swiss_roll prior is 2-D; model.latent_dim is {m.latent_dim}")
    _require(t.prior != "mixture" or m.latent_dim >= 2, "train.prior/model.latent_dim",
             "the mixture prior places its components in a plane: model.latent_dim must be >= 2")
    _require(t.prior_components >= 1, "train.prior_components", "must be >= 1")
    if t.prior_labels:
        _require(t.objective == "aae", "train.prior_labels", f"only the aae objective uses labels, not {t.objective}")
        _require(t.prior in ("mixture", "swiss_roll"), "train.prior_labels/train.prior",
                 f"labels pick a component of a mixture or swiss_roll prior, not of {t.prior!r}")
    _require(0 <= t.labelled_fraction <= 1, "train.labelled_fraction", "must be in [0, 1]")
    validate_categories(cfg)
    for name in ("kl_weight", "reconstruction_weight", "wae_lambda"):
        _require(getattr(t, name) >= 0, f"train.{name}", "must be >= 0")
    for name in ("likelihood_std", "adversary_lr_mul"):
        _require(getattr(t, name) > 0, f"train.{name}", "must be positive")
    _require(len(t.mmd_scales) >= 1 and all(s > 0 for s in t.mmd_scales), "train.mmd_scales",
             "needs one or more positive scales")


def validate_categories(cfg: Config) -> None:
    """train.categories, train.categories_from and data.labelled, against the objective (one line naming the fields)."""
    t, d = cfg.train, cfg.data
    _require(t.categories >= 0, "train.categories", "must be >= 0 (0: G takes the code alone)")
    _require(t.categories_from in CATEGORY_SOURCES, "train.categories_from",
             f"must be one of {', '.join(CATEGORY_SOURCES)}, got {t.categories_from!r}")
    _require(d.labelled >= 0, "data.labelled", "must be >= 0 (0: no labels)")
    if t.categories:
        _require(t.objective == "aae", "train.categories", f"only the aae objective has a categorical code, "
                                                           f"not {t.objective}")
        _require(not t.prior_labels, "train.categories/train.prior_labels",
                 "a categorical code and labels given to D are two different label uses: choose one")
    if t.categories and t.categories_from == "encoder":
        _require(posterior_of(t) == "deterministic", "train.posterior",
                 f"a categorical code comes with a deterministic encoder, got {t.posterior!r}")
    if d.labelled:
        _require(t.categories and t.categories_from == "encoder", "data.labelled",
                 "labels are learnt by an encoder's class head: set train.categories and train.categories_from=encoder")
        _require(d.labelled % t.categories == 0, "data.labelled",
                 f"a class-balanced subset takes N/K images per class: {d.labelled} is not a multiple of "
                 f"train.categories {t.categories}")


def default_config_for(model: ModelConfig, name: str) -> Config:
    """A valid Config for `model` with the default train/data/log sections, their per-lod lists
    cut (or extended with their last value) to the model's number of lods."""
    cfg = Config(name=name, model=model)
    n = model.num_lods
    for attr in ("batch_per_lod", "lr_per_lod"):
        values = getattr(cfg.train, attr)
        setattr(cfg.train, attr, (values + values[-1:] * n)[:n])
    validate(cfg)
    return cfg


def check_world_size(cfg: Config, world_size: int) -> None:
    """Every lod's global batch must split evenly over the ranks (and over the micro-batches)."""
    for lod, batch in enumerate(cfg.train.batch_per_lod):
        if batch % world_size:
            raise ConfigError(
                f"train.batch_per_lod[{lod}] = {batch} is not divisible by the world size {world_size}; "
                f"use a world size that divides every batch in {cfg.train.batch_per_lod}"
            )
        per_rank = batch // world_size
        cap = cfg.train.batch_gpu
        if cap and per_rank > cap and per_rank % cap:
            raise ConfigError(
                f"train.batch_gpu = {cap} does not divide the per-process batch {per_rank} at lod {lod} "
                f"(train.batch_per_lod[{lod}] = {batch} over {world_size} processes)"
            )


def builtin_config_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("alae.configs").iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a YAML file, or the short name of a config shipped in alae.configs (`demo`, `ffhq`)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    builtin = resources.files("alae.configs") / f"{name_or_path}.yaml"
    if not builtin.is_file():
        raise ConfigError(
            f"no config named {name_or_path!r}; built-in configs: {', '.join(builtin_config_names())} (or give a .yaml path)"
        )
    return Path(str(builtin))


def parse_override(text: str) -> tuple[list[str], object]:
    """`train.r1_gamma=5` → (['train', 'r1_gamma'], 5.0); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. train.r1_gamma=5)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return data


def load_config(name_or_path: str, overrides: list[str] = (), model: dict | None = None) -> Config:
    """Load a built-in or file config, replace its model section by `model` if given (a model
    that comes from weights), apply `key=value` overrides, validate."""
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (model, train, data, log)")
    if model is not None:
        data["model"] = dict(model)
    return from_dict(apply_overrides(data, list(overrides)))


def save_config(cfg: Config, path: Path) -> None:
    save_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), path)  # atomic: whole or the previous one
