"""What the LPIPS network is shown by the metrics: at most 256 px, box-downscaled by an integer factor.

StyleGAN's and the original ALAE's PPL and LPIPS scripts shrink images larger than 256 px by
averaging factor×factor blocks, factor = side // 256 ("VGG was built for 224x224 images").
"""
from __future__ import annotations

import torch

VGG_MAX_SIDE = 256  # StyleGAN / ALAE metrics: downsample to 256 if larger


def downscale_for_vgg(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] → [N, C, H/f, W/f] by f×f block means, f = H // 256, when H > 256; else unchanged."""
    if images.shape[2] <= VGG_MAX_SIDE:
        return images
    f = images.shape[2] // VGG_MAX_SIDE
    n, c, h, w = images.shape
    return images.reshape(n, c, h // f, f, w // f, f).mean(dim=(3, 5))
