"""Operations on W+ latents [..., L, latent] that change only the style layers they are given.

Layers outside `layers` are copied bit for bit, and strength 0 / t = 0 give back the input
exactly, so an edit never disturbs what it was not asked to touch.
"""
from __future__ import annotations

import torch


def layer_mask(num_layers: int, layers: list[int], like: torch.Tensor) -> torch.Tensor:
    """Bool [L, 1]: True on the chosen style layers (broadcasts over [..., L, latent])."""
    mask = torch.zeros(num_layers, 1, dtype=torch.bool, device=like.device)
    mask[layers] = True
    return mask


def apply_direction(wplus: torch.Tensor, vector: torch.Tensor, strengths: list[float], layers: list[int]
                    ) -> torch.Tensor:
    """wplus [N, L, D], vector [D] (already multiplied by the direction's scale) →
    [N, S, L, D]: wplus + strength·vector on `layers`, wplus elsewhere, for each of S strengths."""
    steps = torch.tensor(strengths, dtype=wplus.dtype, device=wplus.device)[None, :, None, None]
    moved = wplus[:, None] + steps * vector.to(wplus)
    return torch.where(layer_mask(wplus.shape[1], layers, wplus), moved, wplus[:, None])


def mix_styles(row_wplus: torch.Tensor, col_wplus: torch.Tensor, layers: list[int]) -> torch.Tensor:
    """rows [R, L, D], columns [C, L, D] → [R, C, L, D]: each row's styles with the column's on `layers`."""
    mask = layer_mask(row_wplus.shape[1], layers, row_wplus)
    return torch.where(mask, col_wplus[None], row_wplus[:, None])


def interpolate(corners: torch.Tensor, steps: int) -> torch.Tensor:
    """Linear (2 corners [2, L, D] → [steps, L, D]) or bilinear (4 corners A, B, C, D → [steps, steps,
    L, D], A top-left, B top-right, C bottom-left, D bottom-right) interpolation in W+, endpoints exact."""
    t = torch.linspace(0, 1, steps, dtype=corners.dtype, device=corners.device)[:, None, None]
    if corners.shape[0] == 2:
        return torch.lerp(corners[0], corners[1], t)
    if corners.shape[0] != 4:
        raise ValueError(f"interpolate needs 2 or 4 corners, got {corners.shape[0]}")
    top, bottom = torch.lerp(corners[0], corners[1], t), torch.lerp(corners[2], corners[3], t)
    return torch.lerp(top[None], bottom[None], t[:, None])
