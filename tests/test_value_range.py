"""The uint8 <-> model-range conversion."""
import torch

from alae.datasets import to_model_range, to_uint8


def test_endpoints_and_dtype():
    x = to_model_range(torch.tensor([0, 255], dtype=torch.uint8))
    assert x.dtype == torch.float32 and x.tolist() == [-1.0, 1.0]


def test_to_uint8_inverts_to_model_range_exactly():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_model_range(pixels)), pixels)


def test_to_uint8_clamps_and_rounds():
    assert to_uint8(torch.tensor([-3.0, 3.0, 0.0])).tolist() == [0, 255, 128]
