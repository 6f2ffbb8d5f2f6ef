"""Turn any decoded picture into the square RGB uint8 array a database stores at max resolution."""
import numpy as np
from PIL import Image, ImageOps


class ImageRefused(ValueError):
    """An image cannot be used as is under --strict (wrong size or not square)."""


def fit_square_rgb(image: Image.Image, resolution: int, strict: bool = False) -> np.ndarray:
    """A PIL image -> uint8 array [resolution, resolution, 3].

    EXIF orientation is applied; grayscale, palette and 16-bit images become RGB and alpha is
    dropped. A non-square image is center-cropped to its shorter side, and a square of another
    size is resized with Lanczos. With `strict`, anything not already resolution x resolution
    raises ImageRefused instead.
    """
    image = ImageOps.exif_transpose(image)
    width, height = image.size
    if strict and (width, height) != (resolution, resolution):
        raise ImageRefused(f"image is {width}x{height}, expected {resolution}x{resolution} (--strict)")
    image = to_rgb(image)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    if width != height:
        image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB version of a PIL image; 16-bit integer modes are scaled to 8 bits rather than clipped."""
    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    return image if image.mode == "RGB" else image.convert("RGB")
