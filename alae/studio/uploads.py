"""What alae-studio accepts as an uploaded image, checked before anything reads it as one.

    problem = upload_problem(path, limit_bytes=20 << 20)   # None, or one line for the page

An upload over the size limit is refused from its size alone; otherwise Pillow must identify it
as an image format alae reads (datasets.sources.IMAGE_EXTENSIONS' formats), decode it, and its
name must end in one of those extensions (the tools, and so the reproducing command, go by it).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from alae.datasets.sources import IMAGE_EXTENSIONS

DEFAULT_LIMIT_MB = 20.0  # ours: a 1024 px PNG photo is 1-3 MB; FFHQ's largest in-the-wild photos ~20 MB
READABLE_FORMATS = {"PNG", "JPEG", "MPO", "WEBP"}  # IMAGE_EXTENSIONS' formats (MPO: a camera's multi-picture JPEG)


def upload_problem(path: str | Path, limit_bytes: int) -> str | None:
    """None when `path` is an image under `limit_bytes`; else one line naming the file and what is wrong."""
    path = Path(path)
    name = path.name
    size = path.stat().st_size
    if size > limit_bytes:
        return f"{name} is {size / 2**20:.1f} MB, over the upload limit of {limit_bytes / 2**20:.1f} MB"
    try:
        with Image.open(path) as image:
            kind = image.format
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        first = (str(e).splitlines()[0] if str(e) else type(e).__name__).replace(f"'{path}'", "it").replace(str(path), "it")
        return f"{name} is not an image alae reads ({', '.join(IMAGE_EXTENSIONS)}): {first}"
    if kind not in READABLE_FORMATS:
        return f"{name} is a {kind} image; upload one of {', '.join(IMAGE_EXTENSIONS)}"
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return f"{name} is a {kind} image whose name does not end in {', '.join(IMAGE_EXTENSIONS)}: rename it"
    return None
