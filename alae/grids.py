"""Image grids: a batch of images in [−1, 1] laid out as one uint8 picture, for PNGs and TensorBoard.

Images smaller than MIN_SHOWN_SIDE are enlarged by an integer factor (nearest neighbour, so every
pixel stays a sharp square) before they are laid out: a grid of 28 or 32 px digits and faces is
otherwise too small to see.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from alae.datasets import to_uint8

MIN_SHOWN_SIDE = 64  # px: smaller images are shown k times larger, k = ceil(64 / side)


def display_scale(side: int) -> int:
    """The integer factor an image of `side` px is enlarged by in a grid (1 from MIN_SHOWN_SIDE up)."""
    return max(1, -(-MIN_SHOWN_SIDE // side))


def grid_uint8(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """[N, C, R, R] in [−1, 1] → uint8 [3, H, W] grid with 1-pixel gaps (a grey image fills the
    three channels alike), each image enlarged `display_scale(R)` times (nearest)."""
    images = images.float().clamp(-1, 1)
    scale = display_scale(images.shape[-1])
    if scale > 1:
        images = F.interpolate(images, scale_factor=scale, mode="nearest")
    return to_uint8(make_grid(images, nrow=nrow, padding=1, pad_value=-1.0).unsqueeze(0))[0]


def row_groups_grid(rows: list[torch.Tensor], columns: int) -> torch.Tensor:
    """Aligned rows, e.g. [originals, reconstructions]: each [n, C, R, R] in [−1, 1]. Images are
    cut into groups of `columns`; each group shows one row per tensor (originals above their
    reconstructions), groups stacked downwards; gaps filled black. → uint8 [C, H, W]."""
    n = rows[0].shape[0]
    columns = max(1, min(columns, n))
    groups = -(-n // columns)
    padded = [torch.cat([r, r.new_full((groups * columns - n, *r.shape[1:]), -1.0)]) for r in rows]
    tiles = torch.stack([p.view(groups, columns, *p.shape[1:]) for p in padded], dim=1)  # [G, rows, cols, C, R, R]
    return grid_uint8(tiles.flatten(0, 2), columns)
