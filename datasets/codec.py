"""How one image level is stored in an LMDB record: raw uint8 bytes or a PNG.

Both are lossless. `auto` (the default) stores levels up to `RAW_MAX_RESOLUTION` raw and larger
ones as PNG; docs/DATA.md gives the measurements behind that choice.
"""
import io

import numpy as np
from PIL import Image

ENCODING_POLICIES = ("auto", "raw", "png")
RAW_MAX_RESOLUTION = 64
PNG_COMPRESS_LEVEL = 6


def record_encoding(resolution: int, policy: str) -> str:
    """The record format ('raw' or 'png') used for one resolution under an encoding policy."""
    if policy == "auto":
        return "raw" if resolution <= RAW_MAX_RESOLUTION else "png"
    return policy


def encode_record(image: np.ndarray, encoding: str) -> bytes:
    """uint8 image [H, W, C] (C 3 or 1) -> record bytes: 'raw' is C*H*W bytes in CHW order, 'png' an RGB or grey PNG."""
    if encoding == "raw":
        return np.ascontiguousarray(image.transpose(2, 0, 1)).tobytes()
    buffer = io.BytesIO()
    picture = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    picture.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def decode_record(record, encoding: str, resolution: int, channels: int) -> np.ndarray:
    """Record bytes (bytes or memoryview) -> a new, writable uint8 array [C, R, R].

    Raises ValueError when the record does not hold a [C, R, R] image.
    """
    if encoding == "raw":
        flat = np.frombuffer(record, dtype=np.uint8)
        if flat.size != channels * resolution * resolution:
            raise ValueError(f"raw record has {flat.size} bytes, expected {channels}x{resolution}x{resolution}")
        return flat.reshape(channels, resolution, resolution).copy()
    with Image.open(io.BytesIO(record)) as png:
        image = np.asarray(png)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape != (resolution, resolution, channels):
        raise ValueError(f"PNG record is {image.shape}, expected ({resolution}, {resolution}, {channels})")
    return image.transpose(2, 0, 1).copy()  # a copy in C order: the array PIL gave is read-only
