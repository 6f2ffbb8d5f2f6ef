"""What alae-studio shows: the settings of one view, the W+ they give, and the command line that
draws the same pixels.

    view = View(strengths=(1.5, 0, -2), edit_layers="coarse", mix_layers="off", blend=0.0, noise="const")
    wplus = compose(first, second, view, directions, num_layers)          # [L, latent]
    command = reproducing_command("runs/ffhq", first, second, view, directions, num_layers)

The order is that of the tools: the first source's W+, moved toward the second's by `blend`
(alae-interpolate's lerp), then the second's styles on `mix_layers` (alae-mix), then the
directions' offset Σ strength·scale·vector on `edit_layers` (alae-edit's `--direction
FILE=WEIGHT ... --strengths=1`, through the same `edit_step` and `apply_direction`, so the same
numbers in the same order give the same pixels). Strengths are in units of each direction's
scale.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import torch

from alae.editing.directions import Direction, edit_step
from alae.editing.layer_groups import layer_groups
from alae.editing.wplus_edits import apply_direction, mix_styles
from alae.studio.sources import Source

MIX_OFF = "off"
STUDIO_NOISE = {"random": "random", "fixed": "const", "off": "none"}  # the page's names → NOISE_MODES
EDIT_OUT, MIX_OUT, GENERATE_OUT, RECONSTRUCT_OUT = "edit", "mix", "generate", "reconstruct"


@dataclass(frozen=True)
class StudioDirection:
    """A direction on the page: the Direction, the file a command line names (`file`) and, for
    directions the studio computed, the alae-directions command that writes that file."""

    direction: Direction
    file: str
    made_by: str = ""


@dataclass(frozen=True)
class View:
    """One view's settings: strengths [one per direction], edit_layers and mix_layers (a layer
    group name; mix_layers may be MIX_OFF), blend in [0, 1] toward the second source, noise in
    NOISE_MODES."""

    strengths: tuple[float, ...] = ()
    edit_layers: str = "all"
    mix_layers: str = MIX_OFF
    blend: float = 0.0
    noise: str = "const"

    def moved(self) -> list[int]:
        """Indices of the directions whose strength is not 0."""
        return [i for i, s in enumerate(self.strengths) if s != 0]


def compose(first: Source, second: Source | None, view: View, directions: list[StudioDirection],
            num_layers: int) -> torch.Tensor:
    """W+ [L, latent] of the view (module docstring); `second` None ignores blend and mixing."""
    wplus = first.wplus
    if second is not None and view.blend != 0:
        wplus = torch.lerp(wplus, second.wplus.to(wplus), view.blend)
    if second is not None and view.mix_layers != MIX_OFF:
        wplus = mix_styles(wplus[None], second.wplus[None].to(wplus), layer_groups(num_layers)[view.mix_layers])[0, 0]
    moved = view.moved()
    if moved:
        step = edit_step([(directions[i].direction, view.strengths[i]) for i in moved])
        step = torch.as_tensor(step, dtype=torch.float32, device=wplus.device)
        wplus = apply_direction(wplus[None], step, [1.0], layer_groups(num_layers)[view.edit_layers])[0, 0]
    return wplus


def _image_options(spec) -> list[str]:
    return (["--align"] if spec.align else []) + (["--refine", str(spec.refine)] if spec.refine else [])


def _seed_options(spec) -> list[str]:
    return ["--psi", repr(spec.psi), "--cutoff", str(spec.cutoff)]


def reproducing_command(model: str, first: Source, second: Source | None, view: View,
                        directions: list[StudioDirection], num_layers: int) -> tuple[str | None, str]:
    """(a shell command line that writes this view's image, the file it lands in), or (None, why
    no single command does): alae-edit for an edited image, alae-reconstruct for an unedited one,
    alae-mix for a style mix, alae-generate for a seed; the commands that write computed
    directions first. Refinement with noise 'random' or 'const' is reproduced as such."""
    a = first.spec
    mixing = second is not None and view.mix_layers != MIX_OFF
    blending = second is not None and view.blend != 0
    moved = view.moved()
    noise = ["--noise", view.noise]
    if a.kind == "image" and a.refine and a.noise != view.noise:
        return None, "the image was refined with other noise than the view's: load it again"
    if blending:
        return None, "a blend between two sources is a point on alae-interpolate's path, not one of its frames"
    if mixing and moved:
        return None, "mixing and directions together: no single tool does both (latents.npz holds the W+)"
    if mixing:
        b = second.spec
        if a.kind == "image" and b.kind == "image" and b.refine and b.noise != view.noise:
            return None, "the second image was refined with other noise than the view's: load it again"
        seeds = [s for s in (a, b) if s.kind == "seed"]
        if any((s.psi, s.cutoff) != (seeds[0].psi, seeds[0].cutoff) for s in seeds):
            return None, "the two seeds have different truncation: alae-mix takes one --psi"
        if a.kind == "image" and b.kind == "image" and (a.align, a.refine) != (b.align, b.refine):
            return None, "the two images were loaded with different options: alae-mix encodes both alike"
        options = _image_options(a if a.kind == "image" else b) + (_seed_options(seeds[0]) if seeds else [])
        rows = a.shown if a.kind == "image" else str(a.seed)
        cols = b.shown if b.kind == "image" else str(b.seed)
        argv = ["alae-mix", model, "--rows", rows, "--cols", cols, "--layers", view.mix_layers, *options, *noise,
                "--out", MIX_OUT]
        return shlex.join(argv), f"{MIX_OUT}/cells/row00_col00.png"
    if a.kind == "seed":
        if moved:
            return None, "alae-edit edits images, not seeds (latents.npz holds the W+)"
        argv = ["alae-generate", model, "--seeds", str(a.seed), *_seed_options(a), *noise, "--out", GENERATE_OUT]
        return shlex.join(argv), f"{GENERATE_OUT}/seed{a.seed:04d}.png"
    if not moved:
        argv = ["alae-reconstruct", model, a.shown, *_image_options(a), *noise, "--out", RECONSTRUCT_OUT]
        folder = "refined" if a.refine else "reconstructions"
        return shlex.join(argv), f"{RECONSTRUCT_OUT}/{folder}/{first.name}.png"
    used = [directions[i] for i in moved]
    makers = list(dict.fromkeys(d.made_by for d in used if d.made_by))
    weighted = [f"--direction={d.file}={float(view.strengths[i])!r}" for i, d in zip(moved, used)]
    argv = ["alae-edit", model, a.shown, *weighted, "--strengths=1", "--layers", view.edit_layers,
            *_image_options(a), *noise, "--out", EDIT_OUT]
    return " && ".join([*makers, shlex.join(argv)]), f"{EDIT_OUT}/edits/{first.name}/00_+1.00.png"
