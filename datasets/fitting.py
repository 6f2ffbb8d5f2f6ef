"""Turn any decoded picture into the square uint8 array a database stores at max resolution (RGB or grey)."""
import numpy as np
from PIL import Image, ImageOps


class ImageRefused(ValueError):
    """An image cannot be used as is under --strict (wrong size or not square)."""


def fit_square(image: Image.Image, resolution: int, strict: bool = False, channels: int = 3) -> np.ndarray:
    """A PIL image -> uint8 array [resolution, resolution, channels]; channels 3 (RGB) or 1 (grey).

    EXIF orientation is applied; the image becomes RGB or 8-bit grey (`to_rgb`, `to_grey`) and
    alpha is dropped. A non-square image is center-cropped to its shorter side, and a square of
    another size is resized with Lanczos. With `strict`, anything not already resolution x
    resolution raises ImageRefused instead.
    """
    image = ImageOps.exif_transpose(image)
    width, height = image.size
    if strict and (width, height) != (resolution, resolution):
        raise ImageRefused(f"image is {width}x{height}, expected {resolution}x{resolution} (--strict)")
    image = to_rgb(image) if channels == 3 else to_grey(image)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if width != height:
        image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(resolution, resolution, channels)


def fit_square_rgb(image: Image.Image, resolution: int, strict: bool = False) -> np.ndarray:
    """`fit_square` to RGB: uint8 [resolution, resolution, 3]."""
    return fit_square(image, resolution, strict, channels=3)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB version of a PIL image; 16-bit integer modes are scaled to 8 bits rather than clipped."""
    image = _eight_bit(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def to_grey(image: Image.Image) -> Image.Image:
    """8-bit grey ('L') version of a PIL image (PIL's ITU-R 601-2 luma for colour); 16-bit scaled as in `to_rgb`."""
    image = _eight_bit(image)
    return image if image.mode == "L" else image.convert("L")


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit integer images as 8-bit grey (the high byte); others unchanged."""
    if image.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    return image
