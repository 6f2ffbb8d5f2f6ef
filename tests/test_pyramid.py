"""box_pyramid against an independent float64 block-mean computation."""
import numpy as np
import pytest

from alae.datasets.pyramid import box_pyramid


def block_mean_level(image: np.ndarray, resolution: int) -> np.ndarray:
    """Independent reference: mean of each block of the max-resolution image in float64, rounded half to even."""
    factor = image.shape[0] // resolution
    blocks = image.astype(np.float64).reshape(resolution, factor, resolution, factor, image.shape[2])
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


@pytest.mark.parametrize("size, channels", [(1024, 3), (64, 1), (8, 3)])
def test_levels_equal_block_means_of_the_max_level(size, channels):
    image = np.random.default_rng(size).integers(0, 256, (size, size, channels), dtype=np.uint8)
    levels = box_pyramid(image, 4)
    assert sorted(levels) == [4 << k for k in range((size // 4).bit_length())]
    assert levels[size] is image
    for resolution, level in levels.items():
        assert level.dtype == np.uint8 and level.shape == (resolution, resolution, channels)
        np.testing.assert_array_equal(level, block_mean_level(image, resolution))


def test_rounding_is_half_to_even_on_exact_ties():
    image = np.array([[0, 1], [0, 1]], dtype=np.uint8)[:, :, None]  # mean 0.5 -> 0
    image_up = image + 2  # mean 2.5 -> 2
    assert box_pyramid(image, 1)[1].item() == 0
    assert box_pyramid(image_up, 1)[1].item() == 2


def test_min_resolution_equal_to_size_gives_only_the_image():
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    assert list(box_pyramid(image, 16)) == [16]
