"""Which style layers an edit or a style mix touches: `--layers coarse|middle|fine|all|0-3,8`.

A model with L levels of detail has 2L style layers (two per resolution, 4×4 first). StyleGAN's
coarse / middle / fine split of its 18 layers at 1024 px is 0-3 / 4-7 / 8-17 (Karras et al.
2019, fig. 3); here the split scales with the number of layers: the boundaries are at
round(4/18·L) and round(8/18·L), so 1024 px gets exactly StyleGAN's ranges.
"""
from __future__ import annotations

from alae.cli import ToolError, parse_int_ranges

STYLEGAN_LAYERS = 18  # StyleGAN at 1024 px
STYLEGAN_COARSE_END, STYLEGAN_MIDDLE_END = 4, 8  # layers 0-3 coarse, 4-7 middle, 8-17 fine


def layer_groups(num_layers: int) -> dict[str, list[int]]:
    """{'coarse', 'middle', 'fine', 'all'} → style layer indices for a model with `num_layers`."""
    coarse = round(STYLEGAN_COARSE_END / STYLEGAN_LAYERS * num_layers)
    middle = round(STYLEGAN_MIDDLE_END / STYLEGAN_LAYERS * num_layers)
    return {"coarse": list(range(coarse)), "middle": list(range(coarse, middle)),
            "fine": list(range(middle, num_layers)), "all": list(range(num_layers))}


def parse_layers(text: str, num_layers: int, what: str = "--layers") -> list[int]:
    """A group name or integer ranges → sorted style layer indices; ToolError naming the valid range,
    or saying that a one-layer model (backbone mlp) has no style layers to pick."""
    if num_layers == 1 and text != "all":
        raise ToolError(f"{what} {text}: this model has one code layer (backbone mlp), no style layers to pick or mix")
    groups = layer_groups(num_layers)
    if text in groups:
        layers = groups[text]
        if not layers:
            raise ToolError(f"{what} {text}: this model's {num_layers} style layers have no {text} layers "
                            f"({', '.join(f'{k} {describe_layers(v)}' for k, v in groups.items() if k != 'all' and v)})")
        return layers
    layers = parse_int_ranges(text, what)
    outside = [i for i in layers if i >= num_layers]
    if outside:
        raise ToolError(f"{what} {text}: layer {outside[0]} is outside this model's style layers 0-{num_layers - 1}")
    return sorted(layers)


def describe_layers(layers: list[int]) -> str:
    """[0, 1, 2, 3, 8] → '0-3,8'."""
    parts, start = [], None
    for i, layer in enumerate(layers):
        if start is None:
            start = layer
        if i + 1 == len(layers) or layers[i + 1] != layer + 1:
            parts.append(str(start) if start == layer else f"{start}-{layer}")
            start = None
    return ",".join(parts)
