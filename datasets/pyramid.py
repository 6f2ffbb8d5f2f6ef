"""The 2x2 box-filter pyramid every database stores: each level from the max-resolution image."""
import numpy as np


def box_pyramid(image: np.ndarray, min_resolution: int) -> dict[int, np.ndarray]:
    """All power-of-two levels of a square image, from its own size down to `min_resolution`.

    image: uint8 array [R, R, C], R a power of two. Returns {resolution: uint8 [r, r, C]} with
    the input itself at R. Each lower level is the exact mean of the corresponding
    (R/r)x(R/r) block of the max-resolution image (successive 2x2 averages in float32, no
    rounding between levels; exact because the values are multiples of 4^-k with at most 24
    significant bits down to R/r = 256), rounded half to even once at the end.
    """
    size = image.shape[0]
    levels = {size: image}
    current = image.astype(np.float32)
    while size > min_resolution:
        size //= 2
        channels = current.shape[2]
        current = current.reshape(size, 2, size, 2, channels).mean(axis=(1, 3), dtype=np.float32)
        levels[size] = np.rint(current).astype(np.uint8)
    return levels
