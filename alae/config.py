"""Run configuration: typed sections, the objective's own section, YAML loading, `key=value`
overrides, validation.

A config is data: `configs/NAME.yaml` (installed as `alae.configs`) or any YAML path, with the
sections `model`, `train`, `data`, `log` and one section named after `train.objective` holding
that objective's options (`vae: {kl_weight: 1.0}`). Each section is a pydantic dataclass: the
type and range of a field are declared beside its default, which says where it comes from (the
paper, or the original ALAE code, podgorskiy/ALAE configs/ffhq.yaml). pydantic checks types
strictly (no "5" for 5, no 1 for true) and ranges; this module turns its report into one line
naming the field (`train.batch_per_lod[2]: ...`), and checks what spans fields or sections.

An objective is a module of `alae.training.objectives` named by `train.objective`; its `Options`
(a subclass of `ObjectiveOptions`) is the schema of its section, checks its values against the
rest of the config (`check`) and says what the rest of alae must know of it (`traits`: its
posterior, likelihood, adversaries, prior, categorical code). Validation, the model builder and
the metrics ask those traits; nothing outside the objective's module names it. The module is
found by name when a config is built (`objective_options`), as StyleGAN2-ADA finds its loss.

Configs saved before the objective sections existed (every objective's options side by side in
`train`) still load: `LEGACY_TRAIN_KEYS` moves the run's own into its section and drops the
others', which were ignored then.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import pydantic
import yaml
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from alae.errors import UserError
from alae.files import save_text
from alae.lods import num_lods


class ConfigError(UserError, ValueError):
    """A config file, key or value is wrong; the message names the field."""


# --- field types ---------------------------------------------------------------------------------
PositiveInt = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
PositiveFloat = Annotated[StrictFloat, Field(gt=0)]
NonNegativeFloat = Annotated[StrictFloat, Field(ge=0)]
Fraction = Annotated[StrictFloat, Field(ge=0, le=1)]  # a probability or share, in [0, 1]
Decay = Annotated[StrictFloat, Field(ge=0, lt=1)]  # an EMA or Adam β, in [0, 1)
Slope = Annotated[StrictFloat, Field(ge=0, lt=1)]  # a LeakyReLU's negative slope

section = pydantic.dataclasses.dataclass(config=pydantic.ConfigDict(extra="forbid"))
"""Decorator of a config section: a dataclass whose fields pydantic checks when it is built."""

MLP_RESOLUTION = 28  # the original's EncoderFC / GeneratorFC: 28x28 MNIST digits


@section
class ModelConfig:
    """The networks. backbone `style`: resolutions run 4, 8, ..., `resolution` and `channels[i]`
    is the width at 4·2^i; backbone `mlp`: one 28x28 resolution, `channels` unused."""

    backbone: Literal["style", "mlp"] = "style"  # style: StyleALAE's F, G, E, D; mlp: the original's MNIST EncoderFC / GeneratorFC
    resolution: PositiveInt = 1024
    channels: list[PositiveInt] = field(default_factory=lambda: [512, 512, 512, 512, 256, 128, 64, 32, 16])  # original ffhq
    image_channels: PositiveInt = 3
    latent_dim: PositiveInt = 512
    mapping_layers: NonNegativeInt = 8  # original: MAPPING_LAYERS 8; 0: F is the identity (the original's last MNIST model)
    mapping_lr_mul: PositiveFloat = 0.1  # original F
    discriminator_layers: PositiveInt = 3  # original D: 512→512→512→1024
    discriminator_outputs: PositiveInt = 1024  # original emits 2·latent outputs and reads column outputs//2; 1 is the clean variant
    discriminator_activation: Literal["linear", "lrelu", "relu"] = "linear"  # original: no activation between D's layers; lrelu: LeakyReLU 0.2
    discriminator_lr_mul: PositiveFloat = 0.1  # original D
    fused_scale_resolution: PositiveInt = 128  # original: G stores its upsampling convs transposed from 128 px up (the same function)
    to_rgb_gain: PositiveFloat = 0.03  # original ToRGB gain
    encoder_std_eps: NonNegativeFloat = 1e-8  # E's style std is sqrt(var + eps); original 0 (R1's double backward needs > 0 on constant channels)
    mlp_width: PositiveInt = 1024  # mlp: the hidden width of E and G (original EncoderFC / GeneratorFC: 1024)
    mlp_layers: PositiveInt = 2  # mlp: hidden layers of E and of G (original: 2)
    mlp_activation: Literal["lrelu", "relu"] = "lrelu"  # mlp: their activation (original: LeakyReLU)
    mlp_encoder_slope: Slope = 0.2  # lrelu: E's hidden layers (original EncoderFC: 0.2)
    mlp_generator_slope: Slope = 0.2  # lrelu: G's hidden layers (original GeneratorFC: F.leaky_relu's default 0.01)
    mlp_code_slope: Slope = 0.2  # E's last LeakyReLU, where the objective has one (ALAE; original EncoderFC: 0.01)
    discriminator_width: NonNegativeInt = 0  # D's hidden width; 0 = latent_dim (original ALAE D); WAE-GAN's MNIST adversary: 512
    # How the mlp E and G and the adversaries on codes store their weights (alae.networks.dense):
    # equalized (ALAE's: N(0, 1) scaled at run time) or ordinary (the weight is the parameter, as in the
    # VAE, AAE and WAE references), and an ordinary layer's initialisation: he (the equalized layer's
    # function), torch (nn.Linear's) or normal (N(0, init_std), bias 0).
    layers: Literal["equalized", "ordinary"] = "equalized"
    init: Literal["he", "torch", "normal"] = "he"
    init_std: PositiveFloat = 0.01  # musyoku's AAE, the WAE code: 0.01
    # The pixels E takes and a linear G gives: [-1, 1] (StyleALAE) or [0, 1] (x/255: the original's MNIST
    # model, pytorch/examples' VAE, the WAE code). Images outside the networks are [-1, 1] either way.
    pixel_range: list[StrictInt] = field(default_factory=lambda: [-1, 1])

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


@section
class TrainConfig:
    """Schedule and optimizers, the same for every objective; schedules count images seen (kimg),
    never epochs. The objective's own options are in its section."""

    total_kimg: PositiveFloat = 15360.0  # original: 16 epochs of 60k images per fade/stable phase, 9 lods
    seed: StrictInt = 0
    kimg_fade: NonNegativeFloat = 480.0  # original: 8 epochs × 60k images per lod fade-in
    kimg_stable: PositiveFloat = 480.0  # original: 8 epochs × 60k images per lod stable phase
    batch_per_lod: list[PositiveInt] = field(default_factory=lambda: [512, 256, 128, 64, 32, 32, 32, 32, 32])  # original, global
    lr_per_lod: list[PositiveFloat] = field(default_factory=lambda: [0.0015] * 6 + [0.002, 0.003, 0.003])  # original
    # [[kimg, factor], ...]: from kimg on, every learning rate is the lod's times factor (WAE code on
    # MNIST: ×0.5 from epoch 30, ×0.1 from epoch 50); [] keeps the lods' rates.
    lr_steps: list[Annotated[list[NonNegativeFloat], Field(min_length=2, max_length=2)]] = field(default_factory=list)
    gradient_clip: NonNegativeFloat = 0.0  # each optimizer's gradients clipped to this L2 norm before its step; 0: off (musyoku's AAE: 5)
    batch_gpu: NonNegativeInt = 0  # per-process micro-batch cap for gradient accumulation; 0 = no cap
    # CPU threads torch computes with in each process; 0 = automatic: OMP_NUM_THREADS if set, else the
    # cores this process may use divided by torchrun's local ranks (alae/threads.py, docs/TRAINING.md)
    threads: NonNegativeInt = 0
    adam_beta1: Decay = 0.0  # original
    adam_beta2: Decay = 0.99  # original
    adam_eps: PositiveFloat = 1e-8  # original
    first_noise: Literal["per_sample", "per_batch"] = "per_sample"  # per_batch: the original's one 4x4 first noise map per batch (its constant has batch 1)
    precision: Literal["fp32", "bf16"] = "fp32"  # fp32 (original) | bf16: G's and E's convolutions and linears under bf16 autocast
    ema_halflife_kimg: NonNegativeFloat = 10.0  # original
    truncation_psi: Fraction = 0.7  # original, sampling only
    truncation_cutoff: NonNegativeInt = 8  # original: first 8 style layers (all, if the model has fewer)
    objective: StrictStr = "alae"  # a module of alae.training.objectives; its options in the section of that name


@section
class DataConfig:
    """Training images: an alae LMDB database path, or `lfw` for the embedded demo faces."""

    path: StrictStr = ""
    mirror: StrictBool = True
    holdout: PositiveInt = 32  # images at the end of the database kept out of training, for reconstructions
    # N training images (class-balanced, N/K per class, chosen by train.seed) whose labels a
    # model with a class head learns from (the AAE's semi-supervised classification phase); 0:
    # none (clustering). AAE paper: 100 (1.90% error), 1000, all.
    labelled: NonNegativeInt = 0
    workers: NonNegativeInt = 2


@section
class LogConfig:
    """What the run directory receives and how often; every interval is checked at tick ends."""

    kimg_per_tick: PositiveFloat = 4.0  # StyleGAN2-ADA; each tick: a status line, a stats.jsonl row, TensorBoard points
    kimg_per_sample: PositiveFloat = 50.0
    kimg_per_checkpoint: PositiveFloat = 100.0
    metrics: list[Annotated[StrictStr, Field(min_length=1)]] = field(default_factory=list)  # on the EMA networks while training; StyleGAN2-ADA: fid50k_full
    kimg_per_metrics: NonNegativeFloat = 0.0  # 0 = with every checkpoint (StyleGAN2-ADA evaluates each network snapshot)
    grid_size: PositiveInt = 8  # samples grid is grid_size × grid_size; reconstructions use grid_size held-out images
    keep_checkpoints: PositiveInt = 3


# --- the objective ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Traits:
    """What the model builder, validation and the metrics must know of an objective: everything
    here decides the networks or how their outputs are read (`architecture_of`)."""

    mapping: bool = False  # F: z → w exists; codes are w and w_avg is their running mean (ALAE)
    posterior: str = "deterministic"  # deterministic E(x) | gaussian (E gives μ, log σ²) | universal E(x, η)
    likelihood: str | None = None  # the density p(x|z) it maximises: bernoulli | gaussian; None: none (no ELBO)
    likelihood_std: float = 0.0  # gaussian likelihood: σ in [0, 1] pixel units
    decoder_output: str = "linear"  # linear: G emits pixels in [−1, 1]; sigmoid: G emits the logits of [0, 1] pixels
    code_discriminator: bool = False  # D on codes (ALAE's D on w; the AAE's and WAE-GAN's adversary)
    encoder_activation: str = "linear"  # mlp E's last activation: lrelu (ALAE's, as its w = F(z)); linear for codes matched to a prior
    prior: str = "gaussian"  # the codes' prior (alae.priors): gaussian | mixture | swiss_roll
    prior_components: int = 0  # mixture, swiss_roll: K
    prior_labels: bool = False  # D also sees the one-hot label, which picks the prior's component
    categories: int = 0  # G takes [z, y], y over this many classes (0: z alone)
    categories_from: str = "encoder"  # y from E's softmax head (with a second adversary Dy) or the image's label
    # G takes [z, y] (none), or the representation y·W_c + z with W_c [K, latent] the cluster heads
    # (the AAE's dimensionality reduction): learnt, or fixed at cluster_head_scale·I (K = latent)
    cluster_heads: str = "none"
    cluster_head_scale: float = 0.0
    min_micro_batch: int = 1  # images a micro-batch needs (an MMD between two sets needs 2)

    @property
    def class_head(self) -> int:
        """K of E's softmax head (0: none)."""
        return self.categories if self.categories_from == "encoder" else 0

    @property
    def decoder_labels(self) -> bool:
        """G takes each image's one-hot label beside z."""
        return bool(self.categories) and self.categories_from == "label"


class ObjectiveOptions:
    """Base of every objective's `Options` (decorated with `section`): the fields of its config
    section, their checks against the rest of the config, and the objective's traits."""

    def traits(self) -> Traits:
        """What the rest of alae must know of the objective (with these options)."""
        raise NotImplementedError

    def check(self, cfg: "Config") -> None:
        """Check the options against the rest of `cfg` (ConfigError naming the fields); nothing by default."""


OBJECTIVES_PACKAGE = "alae.training.objectives"  # one module per objective; its name is train.objective


def objective_names() -> list[str]:
    """The objectives alae knows: the modules of OBJECTIVES_PACKAGE that define `Options`."""
    return importlib.import_module(OBJECTIVES_PACKAGE).objective_names()


def objective_options(name: str) -> type[ObjectiveOptions]:
    """The `Options` class of the objective `name`; ConfigError naming the known ones otherwise."""
    if name not in objective_names():
        raise ConfigError(f"train.objective: no objective {name!r}; known: {', '.join(objective_names())}")
    return importlib.import_module(f"{OBJECTIVES_PACKAGE}.{name}").Options


@dataclasses.dataclass
class Config:
    """A whole run's configuration; `objective` holds the options of `train.objective` (its section)."""

    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    log: LogConfig = field(default_factory=LogConfig)
    objective: ObjectiveOptions | None = None  # None: the defaults of train.objective's options

    def __post_init__(self):
        if self.objective is None:
            self.objective = objective_options(self.train.objective)()

    @property
    def traits(self) -> Traits:
        return self.objective.traits()


SECTIONS = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig, "log": LogConfig}


def to_dict(cfg: Config) -> dict:
    """The config as nested plain data, the objective's section under its name (what save_config writes)."""
    data = {"name": cfg.name, **{key: dataclasses.asdict(getattr(cfg, key)) for key in SECTIONS}}
    data[cfg.train.objective] = dataclasses.asdict(cfg.objective)
    return data


_TYPE_WORDS = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
               "string_type": "a string", "list_type": "a list", "dataclass_type": "a mapping",
               "literal_error": "one of {expected}", "too_short": "at least {min_length} value(s)"}
_BOUND_WORDS = {"greater_than": "> {gt:g}", "greater_than_equal": ">= {ge:g}", "less_than": "< {lt:g}",
                "less_than_equal": "<= {le:g}"}


def _pydantic_message(error: pydantic.ValidationError, where: str) -> str:
    """pydantic's first complaint as one line naming the field: `train.batch_per_lod[2]: must be > 0, got 0`."""
    first = error.errors()[0]
    path = where
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    kind, context, value = first["type"], first.get("ctx", {}), first.get("input")
    if kind == "unexpected_keyword_argument":
        return f"unknown key {path}"
    if kind in _BOUND_WORDS:
        bound = _BOUND_WORDS[kind].format(**context)
        return f"{path}: must be {'positive' if bound == '> 0' else bound}, got {value!r}"
    if kind in _TYPE_WORDS:
        return f"{path}: expected {_TYPE_WORDS[kind].format(**context)}, got {value!r}"
    return f"{path}: {first['msg'][0].lower()}{first['msg'][1:]}, got {value!r}"


def _build_section(cls, data, where: str):
    """A section dataclass from a mapping; ConfigError naming the field (and the valid keys) otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    try:
        return pydantic.TypeAdapter(cls).validate_python(data)
    except pydantic.ValidationError as e:
        message = _pydantic_message(e, where)
        if message.startswith("unknown key"):
            message += f"; valid keys at this level: {', '.join(f.name for f in dataclasses.fields(cls))}"
        raise ConfigError(message) from None


# Keys renamed since configs were first saved, so that old run directories and checkpoints load:
# (section, old name) → new name.
RENAMED_KEYS = {
    ("log", "kimg_per_tb"): "kimg_per_tick",  # TensorBoard scalars every N kimg became all records once per tick
}

# Objective options that `train` held before each objective had its section: old key → (its old
# default, {objective: its key in that objective's section}). A run's own move into its section;
# another objective's are dropped when they hold the old default (saved configs held every
# field) and are an error otherwise.
LEGACY_TRAIN_KEYS: dict[str, tuple[object, dict[str, str]]] = {
    "r1_gamma": (10.0, {"alae": "r1_gamma"}),
    "r1_interval": (1, {"alae": "r1_interval"}),
    "style_mixing_prob": (0.9, {"alae": "style_mixing_prob"}),
    "style_mixing": ("per_sample", {"alae": "style_mixing"}),
    "w_avg_updates": ("once", {"alae": "w_avg_updates"}),
    "w_avg_beta": (0.995, {"alae": "w_avg_beta"}),
    "latent_step_updates_mapping": (True, {"alae": "latent_step_updates_mapping"}),
    "posterior": ("auto", {"aae": "posterior"}),
    "prior": ("gaussian", {"aae": "prior", "wae_mmd": "prior", "wae_gan": "prior"}),
    "prior_components": (10, {"aae": "prior_components", "wae_mmd": "prior_components",
                              "wae_gan": "prior_components"}),
    "prior_labels": (False, {"aae": "prior_labels"}),
    "labelled_fraction": (1.0, {"aae": "labelled_fraction"}),
    "categories": (0, {"aae": "categories"}),
    "categories_from": ("encoder", {"aae": "categories_from"}),
    "kl_weight": (1.0, {"vae": "kl_weight"}),
    "likelihood": ("bernoulli", {"vae": "likelihood"}),
    "likelihood_std": (0.1, {"vae": "likelihood_std"}),
    "reconstruction": ("squared_error", {"aae": "reconstruction", "wae_mmd": "reconstruction",
                                         "wae_gan": "reconstruction"}),
    "reconstruction_weight": (1.0, {"aae": "reconstruction_weight", "wae_mmd": "reconstruction_weight",
                                    "wae_gan": "reconstruction_weight"}),
    "wae_lambda": (10.0, {"wae_mmd": "penalty_weight", "wae_gan": "penalty_weight"}),
    "mmd_scales": ([0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0], {"wae_mmd": "mmd_scales"}),
    "adversary_lr_mul": (1.0, {"aae": "adversary_lr_mul", "wae_gan": "adversary_lr_mul"}),
}
LEGACY_IMPLIED_POSTERIOR = {"vae": "gaussian"}  # train.posterior that meant the default (else deterministic)


def _legacy_place(old: str, value, objective: str) -> str | None:
    """Where the old `train.OLD = value` goes in a run of `objective`: the key in its section, or
    None when it is dropped (another objective's option at its old default); ConfigError when
    it is another objective's option set to something else."""
    old_default, owners = LEGACY_TRAIN_KEYS[old]
    if old == "posterior" and value in ("auto", LEGACY_IMPLIED_POSTERIOR.get(objective, "deterministic")):
        return owners.get(objective) if value != "auto" else None
    if objective in owners:
        return owners[objective]
    if value != old_default:
        raise ConfigError(f"train.{old} is an option of {' and '.join(owners)}, and train.objective is {objective}")
    return None


def _rename_old_keys(data: dict) -> dict:
    """A copy of `data` with the RENAMED_KEYS under their current names and the LEGACY_TRAIN_KEYS
    of `train` moved into the objective's section (or dropped, `_legacy_place`)."""
    data = dict(data)
    for (section_name, old), new in RENAMED_KEYS.items():
        node = data.get(section_name)
        if isinstance(node, dict) and old in node:
            if new in node:
                raise ConfigError(f"{section_name}.{old} is the old name of {section_name}.{new}; "
                                  f"give only {section_name}.{new}")
            data[section_name] = {**{k: v for k, v in node.items() if k != old}, new: node[old]}
    train = data.get("train")
    if not isinstance(train, dict) or not set(train) & set(LEGACY_TRAIN_KEYS):
        return data
    objective = train.get("objective", TrainConfig.objective)
    own = data.get(objective) or {}
    if not isinstance(own, dict):
        return data  # from_dict names the section that is not a mapping
    own = dict(own)
    for old in [k for k in train if k in LEGACY_TRAIN_KEYS]:
        new = _legacy_place(old, train[old], objective)
        if new is not None:
            if new in own:
                raise ConfigError(f"train.{old} is the old place of {objective}.{new}; give only {objective}.{new}")
            own[new] = train[old]
    data["train"] = {k: v for k, v in train.items() if k not in LEGACY_TRAIN_KEYS}
    if own or objective in data:
        data[objective] = own
    return data


def from_dict(data: dict) -> Config:
    """Build and validate a Config from nested dicts (missing keys take the defaults; old key
    names and places, RENAMED_KEYS and LEGACY_TRAIN_KEYS, are read as their new ones)."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping of sections (name, {', '.join(SECTIONS)}), got {data!r}")
    data = _rename_old_keys(data)
    sections = {key: _build_section(cls, data.get(key, {}), key) for key, cls in SECTIONS.items()}
    objective = sections["train"].objective
    options_cls = objective_options(objective)
    unknown = sorted(set(data) - {"name", *SECTIONS, objective})
    if unknown:
        others = [k for k in unknown if k in objective_names()]
        if others:
            raise ConfigError(f"{others[0]}: options of the {others[0]} objective, and train.objective is "
                              f"{objective} (its options go in a section named {objective})")
        raise ConfigError(f"unknown key {', '.join(unknown)}; valid keys at this level: name, "
                          f"{', '.join(SECTIONS)}, {objective} (train.objective's options)")
    name = data.get("name", Config.name)
    if not isinstance(name, str):
        raise ConfigError(f"name: expected a string, got {name!r}")
    cfg = Config(name=name, **sections, objective=_build_section(options_cls, data.get(objective) or {}, objective))
    validate(cfg)
    return cfg


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def require(ok: bool, where: str, message: str) -> None:
    """ConfigError `where: message` unless `ok` (the checks that span fields)."""
    if not ok:
        raise ConfigError(f"{where}: {message}")


def validate(cfg: Config) -> None:
    """What pydantic cannot check field by field: powers of two, lengths per lod, the objective's
    options against the rest (`ObjectiveOptions.check`), the labels the data section asks for."""
    m, t, d, log = cfg.model, cfg.train, cfg.data, cfg.log
    if m.backbone == "mlp":
        require(m.resolution == MLP_RESOLUTION, "model.resolution",
                f"backbone mlp takes {MLP_RESOLUTION}x{MLP_RESOLUTION} images (the original's MNIST networks), "
                f"got {m.resolution}")
    else:
        require(_is_power_of_two(m.resolution) and m.resolution >= 4, "model.resolution",
                f"must be a power of two >= 4, got {m.resolution}")
        require(len(m.channels) == m.num_lods, "model.channels",
                f"needs one width per resolution 4..{m.resolution} ({m.num_lods} values), got {len(m.channels)}")
    require(_is_power_of_two(m.fused_scale_resolution), "model.fused_scale_resolution", "must be a power of two")
    require(m.pixel_range in ([-1, 1], [0, 1]), "model.pixel_range", f"must be [-1, 1] or [0, 1], got {m.pixel_range}")
    require(m.layers == "ordinary" or m.init == "he", "model.init",
            f"equalized layers are N(0, 1) by definition; model.init {m.init!r} needs model.layers ordinary")
    n = m.num_lods
    for name in ("batch_per_lod", "lr_per_lod"):
        values = getattr(t, name)
        require(len(values) == n, f"train.{name}", f"needs {n} values (one per lod), got {len(values)}")
    starts = [kimg for kimg, _ in t.lr_steps]
    require(starts == sorted(set(starts)) and all(factor > 0 for _, factor in t.lr_steps), "train.lr_steps",
            f"needs [kimg, factor] pairs with increasing kimg and positive factors, got {t.lr_steps}")
    repeated = sorted({name for name in log.metrics if log.metrics.count(name) > 1})
    require(not repeated, "log.metrics", f"lists {', '.join(repeated)} more than once")
    cfg.objective.check(cfg)
    traits = cfg.traits
    if d.labelled:
        require(traits.class_head > 0, "data.labelled",
                f"labels are learnt by an encoder's class head, which this {t.objective} model has not "
                f"(aae: categories with categories_from encoder)")
        require(d.labelled % traits.class_head == 0, "data.labelled",
                f"a class-balanced subset takes N/K images per class: {d.labelled} is not a multiple of "
                f"the {traits.class_head} categories")


def architecture_of(cfg: Config) -> dict:
    """{'model.FIELD': value, 'train.objective': name, 'traits.TRAIT': value} of everything that
    decides the networks: a run resumes, or a model loads, only with the same values."""
    fields = {f"model.{k}": v for k, v in dataclasses.asdict(cfg.model).items()}
    fields["train.objective"] = cfg.train.objective
    fields.update({f"traits.{k}": v for k, v in dataclasses.asdict(cfg.traits).items()})
    return fields


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
    """Every lod's global batch must split evenly over the ranks (and over the micro-batches), and
    every micro-batch hold the images the objective's loss needs (Traits.min_micro_batch)."""
    need = cfg.traits.min_micro_batch
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
        micro = min(cap, per_rank) if cap else per_rank
        if micro < need:
            raise ConfigError(
                f"the {cfg.train.objective} objective needs micro-batches of at least {need} images, and lod {lod} "
                f"gives {micro} (train.batch_per_lod[{lod}] = {batch} over {world_size} processes"
                f"{f', train.batch_gpu = {cap}' if cap else ''})"
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
    """`train.r1_gamma=5` → (['train', 'r1_gamma'], 5); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. train.total_kimg=100)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set each `key=value` of `overrides` in `data` (in place; returned); an old place of an
    objective's option (`train.kl_weight=0.5`, LEGACY_TRAIN_KEYS) sets it in the objective's section."""
    parsed = [parse_override(text) for text in overrides]
    train = data.get("train") if isinstance(data.get("train"), dict) else {}
    objective = next((value for keys, value in parsed if keys == ["train", "objective"]),
                     train.get("objective", TrainConfig.objective))
    for text, (keys, value) in zip(overrides, parsed):
        if len(keys) == 2 and keys[0] == "train" and keys[1] in LEGACY_TRAIN_KEYS:
            new = _legacy_place(keys[1], value, str(objective))
            if new is None:
                continue
            keys = [objective, new]
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return data


def read_config_file(path: Path) -> dict:
    """The YAML mapping in `path`; ConfigError naming the file when it is not one."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (model, train, data, log)")
    return data


def load_config(name_or_path: str, overrides: list[str] = (), model: dict | None = None) -> Config:
    """Load a built-in or file config, replace its model section by `model` if given (a model
    that comes from weights), apply `key=value` overrides, validate."""
    data = read_config_file(resolve_config_path(name_or_path))
    if model is not None:
        data["model"] = dict(model)
    return from_dict(apply_overrides(_rename_old_keys(data), list(overrides)))


def save_config(cfg: Config, path: Path) -> None:
    save_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), path)  # atomic: whole or the previous one
