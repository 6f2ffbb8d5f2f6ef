"""Import of the original ALAE's checkpoints (podgorskiy/ALAE: `model_157.pth` for FFHQ,
`model_262r.pth` for CelebA-HQ 256, `model_final.pth` for bedrooms) into our networks.

The original saves `torch.save({"models": {...}, "auxiliary": {...}, ...})` with one state
dict per network: `generator` (G), `discriminator` (the encoder E), `mapping_fl` (F) and
`mapping_tl` (D), the EMA copies under the same names plus `_s`, and `dlatent_avg` whose
buffer `buff` [2·layers, latent] holds the running mean of w in every (equal) row.

Its layers use "implicit" equalized learning rate (lreq.py): a stored tensor is the effective
weight or bias itself, and the equalization lives in its optimizer. Ours store unit-scale
tensors and multiply in forward, so a weight converts as `stored / weight_gain` and a bias of
a layer with learning-rate multiplier m as `stored / m`. The original indexes the encoder from
the highest resolution down (encode_block.0 is the input block); we index every network by
level of detail (lod 0 = 4×4), so E's blocks are reversed.

The configuration is inferred from the tensor shapes; every source tensor is used exactly
once, or the conversion fails naming the leftovers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from alae.config import Config, ModelConfig
from alae.lods import resolution_of
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import CheckpointError
from alae.model_files.safe_pickle import placeholders_in

# Original network names (train_alae.py model_dict) for our F, G, E, D; EMA copies end in "_s".
ORIGINAL_NAMES = {"F": "mapping_fl", "G": "generator", "E": "discriminator", "D": "mapping_tl"}
EMA_SUFFIX = "_s"
W_AVG_ENTRY = "dlatent_avg"
ORIGINAL_FUSED_SCALE_RESOLUTION = 128  # hard-coded in the original net.py (not stored in the file)
ORIGINAL_ENCODER_STD_EPS = 0.0  # the original's style std has no epsilon


class ConversionError(CheckpointError):
    """An original-format file is incomplete, inconsistent, or not convertible; names the tensors."""


@dataclass
class ConvertedNetworks:
    """Our state dicts made from an original checkpoint.

    ema: the EMA networks (or the only ones in the file); model: the training networks, or None
    when the file holds only one set. Both include `w_avg`. notes: what the conversion decided.
    """

    config: ModelConfig
    ema: dict[str, torch.Tensor]
    model: dict[str, torch.Tensor] | None
    notes: list[str]


def is_original_checkpoint(obj) -> bool:
    """Whether a loaded object has the original's layout: a dict with a "models" dict."""
    return isinstance(obj, dict) and isinstance(obj.get("models"), dict)


def ignorable_placeholders(obj) -> bool:
    """Whether the placeholders of refused globals in a read file (`safe_pickle`) may be dropped:
    only in an original file, and only outside its networks (`auxiliary` holds the original's
    optimizer, scheduler and tracker state; the networks come from the state dicts alone)."""
    return is_original_checkpoint(obj) and not placeholders_in(obj["models"])


def dropped_objects(obj: dict) -> list[str]:
    """The refused globals whose placeholders an original file holds outside its networks."""
    return placeholders_in({k: v for k, v in obj.items() if k != "models"})


class _TensorSource:
    """One original network's state dict; tracks which tensors the conversion took."""

    def __init__(self, entry: str, tensors: dict):
        self.entry = entry
        self.tensors = tensors
        self.used: set[str] = set()

    def take(self, key: str) -> torch.Tensor:
        if key not in self.tensors:
            raise ConversionError(f"models/{self.entry} has no tensor {key}")
        if key in self.used:
            raise ConversionError(f"models/{self.entry}/{key} would be used twice")
        self.used.add(key)
        return self.tensors[key]

    def count(self, pattern: str) -> int:
        """How many consecutive indices i have a key starting with pattern.format(i)."""
        i = 0
        while any(k.startswith(pattern.format(i)) for k in self.tensors):
            i += 1
        return i

    def leftovers(self) -> list[str]:
        return sorted(set(self.tensors) - self.used)


def _shape(source: _TensorSource, key: str) -> tuple[int, ...]:
    if key not in source.tensors:
        raise ConversionError(f"models/{source.entry} has no tensor {key}")
    return tuple(source.tensors[key].shape)


def infer_model_config(generator: _TensorSource, encoder: _TensorSource, mapping: _TensorSource,
                       discriminator: _TensorSource) -> ModelConfig:
    """Resolution, channels, latent size, mapping layers and D's shape from the tensor shapes.

    What the file cannot tell (fused resampling from 128 px, the layers' gains and learning-rate
    multipliers) is the original code's fixed choice, which are also our defaults.
    """
    num_lods = generator.count("decode_block.{}.")
    if num_lods == 0:
        raise ConversionError(f"models/{generator.entry} has no decode_block.* tensors")
    channels = [_shape(generator, f"decode_block.{i}.conv_2.weight")[0] for i in range(num_lods)]
    latent_dim = _shape(generator, "decode_block.0.style_1.weight")[1]
    image_channels = _shape(generator, "to_rgb.0.to_rgb.weight")[0]
    mapping_layers = mapping.count("map_blocks.{}.")
    discriminator_layers = discriminator.count("map_blocks.{}.")
    if mapping_layers == 0 or discriminator_layers == 0:
        empty = mapping if mapping_layers == 0 else discriminator
        raise ConversionError(f"models/{empty.entry} has no map_blocks.* tensors")
    encoder_lods = encoder.count("encode_block.{}.")
    if encoder_lods != num_lods:
        raise ConversionError(f"models/{encoder.entry} has {encoder_lods} encode blocks but models/"
                              f"{generator.entry} has {num_lods} decode blocks")
    bottom_out = _shape(encoder, f"encode_block.{num_lods - 1}.conv_2.weight")[0]
    if bottom_out != channels[0]:
        raise ConversionError(f"the encoder's 4x4 block outputs {bottom_out} channels; this implementation's "
                              f"encoder needs the generator's 4x4 width {channels[0]} there")
    return ModelConfig(
        resolution=resolution_of(num_lods - 1),
        channels=channels,
        image_channels=image_channels,
        latent_dim=latent_dim,
        mapping_layers=mapping_layers,
        discriminator_layers=discriminator_layers,
        discriminator_outputs=_shape(discriminator, f"map_blocks.{discriminator_layers - 1}.weight")[0],
        discriminator_activation="linear",
        fused_scale_resolution=ORIGINAL_FUSED_SCALE_RESOLUTION,
        encoder_std_eps=ORIGINAL_ENCODER_STD_EPS,
    )


def parameter_sources(cfg: ModelConfig) -> dict[str, tuple[str, str]]:
    """Our parameter name → (our network letter, the original's tensor name in that network)."""
    n = cfg.num_lods
    table: dict[str, tuple[str, str]] = {"G.const": ("G", "const")}
    for i in range(cfg.mapping_layers):
        for p in ("weight", "bias"):
            table[f"F.layers.{i}.{p}"] = ("F", f"map_blocks.{i}.fc.{p}")
    for i in range(cfg.discriminator_layers):
        for p in ("weight", "bias"):
            table[f"D.layers.{i}.{p}"] = ("D", f"map_blocks.{i}.{p}")
    for lod in range(n):
        g, e = f"G.blocks.{lod}", f"E.blocks.{lod}"
        src_g, src_e = f"decode_block.{lod}", f"encode_block.{n - 1 - lod}"  # E counts from the top
        if lod > 0:
            table[f"{g}.up_conv.weight"] = ("G", f"{src_g}.conv_1.weight")
        table[f"{g}.conv.weight"] = ("G", f"{src_g}.conv_2.weight")
        for k in (1, 2):
            table[f"{g}.noise_{k}.weight"] = ("G", f"{src_g}.noise_weight_{k}")
            table[f"{g}.bias_{k}"] = ("G", f"{src_g}.bias_{k}")
            for p in ("weight", "bias"):
                table[f"{g}.adain_{k}.style.{p}"] = ("G", f"{src_g}.style_{k}.{p}")
                table[f"{e}.style_{k}.{p}"] = ("E", f"{src_e}.style_{k}.{p}")
        for p in ("weight", "bias"):
            table[f"G.to_rgb.{lod}.{p}"] = ("G", f"to_rgb.{lod}.to_rgb.{p}")
            table[f"E.from_rgb.{lod}.{p}"] = ("E", f"from_rgb.{n - 1 - lod}.from_rgb.{p}")
        table[f"{e}.conv.weight"] = ("E", f"{src_e}.conv_1.weight")
        table[f"{e}.conv.bias"] = ("E", f"{src_e}.bias_1")
        table[f"{e}.down_conv.weight"] = ("E", f"{src_e}.conv_2.weight")
        table[f"{e}.bias_2"] = ("E", f"{src_e}.bias_2")
    return table


def blur_buffer_names(cfg: ModelConfig) -> list[tuple[str, str]]:
    """The original's fixed blur kernels (buffers, [C, 1, 3, 3]): (network letter, tensor name)."""
    n = cfg.num_lods
    return ([("G", f"decode_block.{lod}.blur.weight") for lod in range(n)]
            + [("E", f"encode_block.{j}.blur.weight") for j in range(n)])


def _check_blur(source: _TensorSource, key: str) -> None:
    kernel = source.take(key).double()
    expected = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    expected = (expected[:, None] * expected[None, :] / 16).expand(kernel.shape[0], 1, 3, 3)
    if kernel.shape != expected.shape or not torch.allclose(kernel, expected, atol=1e-7):
        raise ConversionError(f"models/{source.entry}/{key} is not the [1,2,1]x[1,2,1]/16 blur this "
                              f"implementation uses")


def _convert_networks(sources: dict[str, _TensorSource], cfg: ModelConfig, reference: LatentAutoencoder,
                      w_avg: torch.Tensor) -> dict[str, torch.Tensor]:
    """Our state dict from the four original networks (unit-scale weights, in the file's dtype)."""
    ours = reference.state_dict()
    factors = equalization_factors(reference)
    state: dict[str, torch.Tensor] = {}
    for name, (letter, key) in parameter_sources(cfg).items():
        stored = sources[letter].take(key).detach()
        value = stored.to(torch.float64)
        target = ours[name]
        per_channel = target.ndim == 1 and value.shape == (1, target.shape[0], 1, 1)  # biases, noise weights
        if value.shape != target.shape and not per_channel:
            raise ConversionError(f"models/{sources[letter].entry}/{key} has shape {tuple(value.shape)}, expected "
                                  f"{tuple(target.shape)} for the inferred config")
        state[name] = (value / factors[name]).reshape(target.shape).to(stored.dtype)
    for letter, key in blur_buffer_names(cfg):
        _check_blur(sources[letter], key)
    state["w_avg"] = w_avg
    missing = sorted(set(ours) - set(state))
    if missing:  # a gap in parameter_sources: a bug here, not in the file
        raise AssertionError(f"no original tensor assigned to {missing}")
    return state


def _read_w_avg(entry) -> torch.Tensor:
    if not isinstance(entry, dict) or "buff" not in entry:
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ConversionError(f"models/{W_AVG_ENTRY} should hold a tensor 'buff'; found {found}")
    extra = sorted(set(entry) - {"buff"})
    if extra:
        raise ConversionError(f"models/{W_AVG_ENTRY} has tensors that were not used: {', '.join(extra)}")
    buff = entry["buff"].detach()
    if buff.ndim != 2 or not torch.allclose(buff, buff[:1].expand_as(buff), rtol=1e-6, atol=1e-7):
        raise ConversionError(f"models/{W_AVG_ENTRY}/buff {tuple(buff.shape)} should be [layers, latent] with equal "
                              f"rows (one running mean of w)")
    return buff[0]


def convert_original(obj: dict, description: str) -> ConvertedNetworks:
    """Our networks from a loaded original checkpoint (see the module docstring).

    Takes the EMA networks (`*_s`) as `ema` when present and the training networks as `model`;
    a file with only one set uses it for `ema` (with a note when those are not the EMA ones).
    Raises ConversionError naming missing, misshapen or unused tensors and unknown entries.
    """
    models = {k: v for k, v in obj["models"].items() if v is not None}
    known = {name + suffix for name in ORIGINAL_NAMES.values() for suffix in ("", EMA_SUFFIX)} | {W_AVG_ENTRY}
    unknown = sorted(set(models) - known)
    if unknown:
        raise ConversionError(f"{description}: unknown entries under 'models': {', '.join(unknown)} "
                              f"(expected {', '.join(sorted(known))})")
    sets = {suffix: {letter: name + suffix for letter, name in ORIGINAL_NAMES.items()} for suffix in (EMA_SUFFIX, "")}
    complete = {suffix: all(entry in models for entry in names.values()) for suffix, names in sets.items()}
    for suffix, names in sets.items():
        present = [entry for entry in names.values() if entry in models]
        if present and not complete[suffix]:
            absent = [entry for entry in names.values() if entry not in models]
            raise ConversionError(f"{description}: has {', '.join(present)} but not {', '.join(absent)}")
    if not any(complete.values()):
        raise ConversionError(f"{description}: no networks under 'models' (found {', '.join(sorted(models)) or 'none'})")
    if W_AVG_ENTRY not in models:
        raise ConversionError(f"{description}: no '{W_AVG_ENTRY}' (the running mean of w) under 'models'")

    notes = []
    w_avg = _read_w_avg(models[W_AVG_ENTRY])
    converted: dict[str, dict[str, torch.Tensor]] = {}
    cfg = reference = None
    all_sources: list[_TensorSource] = []
    for suffix in (EMA_SUFFIX, ""):
        if not complete[suffix]:
            continue
        sources = {letter: _TensorSource(entry, _tensors_of(models[entry], entry, description))
                   for letter, entry in sets[suffix].items()}
        inferred = infer_model_config(sources["G"], sources["E"], sources["F"], sources["D"])
        if cfg is None:
            with torch.device("meta"):  # shapes and gains only: no memory, no initialisation
                cfg, reference = inferred, LatentAutoencoder(Config(model=inferred))
        elif dataclasses.asdict(inferred) != dataclasses.asdict(cfg):
            raise ConversionError(f"{description}: the EMA and training networks have different shapes")
        converted[suffix] = _convert_networks(sources, cfg, reference, w_avg)
        all_sources += sources.values()
    if w_avg.shape[0] != cfg.latent_dim:
        raise ConversionError(f"models/{W_AVG_ENTRY}/buff has latent size {w_avg.shape[0]}, the networks "
                              f"{cfg.latent_dim}")
    leftovers = [f"models/{s.entry}/{k}" for s in all_sources for k in s.leftovers()]
    if leftovers:
        shown = ", ".join(leftovers[:8]) + (f" and {len(leftovers) - 8} more" if len(leftovers) > 8 else "")
        raise ConversionError(f"{description}: {len(leftovers)} tensors were not used by the conversion: {shown}")
    if EMA_SUFFIX not in converted:
        notes.append("the file has no EMA networks (*_s); using the training networks instead")
        return ConvertedNetworks(config=cfg, ema=converted[""], model=None, notes=notes)
    if "" not in converted:
        notes.append("the file holds only the EMA networks")
    return ConvertedNetworks(config=cfg, ema=converted[EMA_SUFFIX], model=converted.get(""), notes=notes)


def _tensors_of(entry, name: str, description: str) -> dict[str, torch.Tensor]:
    if not isinstance(entry, dict) or not all(isinstance(v, torch.Tensor) for v in entry.values()):
        raise ConversionError(f"{description}: models/{name} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in entry.items()}


def equalization_factors(model: LatentAutoencoder) -> dict[str, float]:
    """Our parameter name → the factor from our stored tensor to the original's effective one:
    the runtime weight gain for weights, the learning-rate multiplier for biases, else 1."""
    factors = {}
    for name, _ in model.named_parameters():
        module_name, param = name.rsplit(".", 1)
        module = model.get_submodule(module_name)
        if param == "weight" and hasattr(module, "weight_gain"):
            factors[name] = module.weight_gain
        elif param == "bias" and hasattr(module, "lr_mul"):
            factors[name] = module.lr_mul
        else:
            factors[name] = 1.0
    return factors
