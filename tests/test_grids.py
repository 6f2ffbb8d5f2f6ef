"""alae.grids: images below 64 px are enlarged by ceil(64 / side) (nearest neighbour) before they
are laid out with 1-pixel gaps; 64 px and larger images are laid out as they are."""
import math

import numpy as np
import pytest
import torch

from alae.grids import display_scale, grid_uint8, row_groups_grid


@pytest.mark.parametrize("side, scale", [(28, 3), (32, 2), (4, 16), (64, 1), (100, 1), (1, 64), (63, 2), (65, 1)])
def test_display_scale(side, scale):
    assert display_scale(side) == scale
    assert scale == (math.ceil(64 / side) if side < 64 else 1)


def levels(count, channels, side, seed=0):
    """uint8 pixel levels [count, channels, side, side] and the same images in the model's range
    [−1, 1] (u / 127.5 − 1, whose 8-bit conversion gives back u exactly)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 256, (count, channels, side, side), generator=g, dtype=torch.uint8)
    return u.numpy(), u.to(torch.float32) / 127.5 - 1


def tiles_of(grid: np.ndarray, count: int, columns: int, shown: int) -> list[np.ndarray]:
    """The `count` tiles of side `shown` of a grid laid out `columns` wide with 1-pixel gaps."""
    out = []
    for k in range(count):
        r, c = divmod(k, columns)
        top, left = 1 + r * (shown + 1), 1 + c * (shown + 1)
        out.append(grid[:, top:top + shown, left:left + shown])
    return out


def gap_mask(rows: int, columns: int, shown: int) -> np.ndarray:
    """True on the 1-pixel lines around and between the tiles of a rows × columns grid."""
    height, width = rows * (shown + 1) + 1, columns * (shown + 1) + 1
    mask = np.zeros((height, width), dtype=bool)
    mask[::shown + 1, :] = True
    mask[:, ::shown + 1] = True
    return mask


@pytest.mark.parametrize("side", [4, 28, 32, 64, 100])
def test_grid_enlarges_small_images_by_an_integer_factor_and_keeps_one_pixel_gaps(side):
    count, columns = 5, 2  # 3 rows, the last one half empty
    u, images = levels(count, 3, side)
    k = math.ceil(64 / side) if side < 64 else 1
    shown = side * k
    grid = grid_uint8(images, columns).numpy()
    assert grid.dtype == np.uint8
    assert grid.shape == (3, 3 * (shown + 1) + 1, columns * (shown + 1) + 1)
    for tile, image in zip(tiles_of(grid, count, columns, shown), u):
        np.testing.assert_array_equal(tile, image.repeat(k, axis=1).repeat(k, axis=2))
    mask = gap_mask(3, columns, shown)
    assert (grid[:, mask] == 0).all()  # the gaps are black (-1)
    empty = grid[:, 1 + 2 * (shown + 1):, 1 + (shown + 1):]  # the sixth cell: no image there
    assert (empty == 0).all()


def test_values_outside_the_model_range_are_clamped():
    images = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.5]).view(1, 1, 1, 5).expand(1, 3, 5, 5).contiguous()
    grid = grid_uint8(images, 1).numpy()
    k = 13  # ceil(64 / 5)
    row = grid[0, 1, 1:1 + 5 * k]
    np.testing.assert_array_equal(row[::k], [0, 0, 128, 255, 255])  # (0 + 1) * 127.5 = 127.5 rounds to even 128


def test_a_grey_grid_shows_the_grey_levels_on_every_channel():
    u, images = levels(4, 1, 28, seed=1)
    grid = grid_uint8(images, 4).numpy()
    shown = 28 * 3
    assert grid.shape[1:] == (shown + 2, 4 * (shown + 1) + 1)
    for tile, image in zip(tiles_of(grid, 4, 4, shown), u):
        expected = image[0].repeat(3, axis=0).repeat(3, axis=1)
        for channel in tile:
            np.testing.assert_array_equal(channel, expected)


def test_row_groups_grid_enlarges_like_grid_uint8():
    u_top, top = levels(3, 3, 32, seed=2)
    u_bottom, bottom = levels(3, 3, 32, seed=3)
    grid = row_groups_grid([top, bottom], 2).numpy()  # groups of 2 columns: [0, 1] / [0', 1'], then [2, pad] / [2', pad]
    shown = 64
    assert grid.shape == (3, 4 * (shown + 1) + 1, 2 * (shown + 1) + 1)
    tiles = tiles_of(grid, 8, 2, shown)
    expected = [u_top[0], u_top[1], u_bottom[0], u_bottom[1], u_top[2], None, u_bottom[2], None]
    for tile, image in zip(tiles, expected):
        if image is None:
            assert (tile == 0).all()
        else:
            np.testing.assert_array_equal(tile, image.repeat(2, axis=1).repeat(2, axis=2))
