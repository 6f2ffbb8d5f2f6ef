"""Conversion between stored pixels (uint8, 0..255) and the model's range (float, -1..1).

This is the one place that mapping lives: the loader yields uint8 and the training loop
converts on its device; images are saved through `to_uint8`.
"""
import torch


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (any shape, values 0..255) -> float32 in [-1, 1]: 0 -> -1.0, 255 -> 1.0."""
    return images.to(torch.float32) / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in the model's range [-1, 1] (any shape) -> uint8 0..255, rounded, values outside clamped.

    Exact inverse of `to_model_range` on its outputs.
    """
    return ((images.detach().to(torch.float32) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
