"""Fitting arbitrary pictures to square RGB at the max resolution."""
import numpy as np
import pytest
from PIL import Image

from alae.datasets.fitting import ImageRefused, fit_square_rgb


def test_square_at_size_is_unchanged():
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(fit_square_rgb(Image.fromarray(pixels), 16), pixels)


def test_non_square_is_center_cropped_then_lanczos_resized():
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 10:30] = 200  # the centered 20x20 square is uniform
    fitted = fit_square_rgb(Image.fromarray(pixels), 8)
    assert fitted.shape == (8, 8, 3)
    assert (fitted == 200).all()


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "I;16"])
def test_other_modes_become_rgb(mode):
    gray = Image.new("RGB", (8, 8), (90, 90, 90))
    image = {"P": gray.quantize(colors=2), "I;16": Image.new("I;16", (8, 8), 90 * 257)}.get(mode) or gray.convert(mode)
    fitted = fit_square_rgb(image, 8)
    assert fitted.shape == (8, 8, 3) and fitted.dtype == np.uint8
    assert (fitted == 90).all()


def test_strict_refuses_other_sizes():
    with pytest.raises(ImageRefused, match="12x8, expected 8x8"):
        fit_square_rgb(Image.new("RGB", (12, 8)), 8, strict=True)
    assert fit_square_rgb(Image.new("RGB", (8, 8)), 8, strict=True).shape == (8, 8, 3)
