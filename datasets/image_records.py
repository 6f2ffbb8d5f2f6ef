"""Turn one source image into the records a database stores: every pyramid level, encoded, and its label."""
from typing import NamedTuple

from .codec import encode_record, record_encoding
from .fitting import fit_square
from .pyramid import box_pyramid


class PreparedImage(NamedTuple):
    """One source image after preparation: its records, or why it was skipped.

    position: index in the source listing; records: {resolution: record bytes}, None when
    skipped; error: one-line reason when skipped, else None; label: the class label when the
    source has labels, else None.
    """

    position: int
    name: str
    records: dict[int, bytes] | None
    error: str | None
    label: int | None = None


class ImageRecordMaker:
    """Picklable callable (position, name) -> PreparedImage for one source and output format.

    source: an image source (source_protocol.py: open_image, channels, classes, label); max_resolution, min_resolution:
    powers of two in pixels; encoding: an encoding policy of codec.py; strict: refuse images
    that are not already max_resolution square.
    """

    def __init__(self, source, max_resolution: int, min_resolution: int, encoding: str, strict: bool):
        self.source = source
        self.max_resolution = max_resolution
        self.min_resolution = min_resolution
        self.encoding = encoding
        self.strict = strict

    def __call__(self, item: tuple[int, str]) -> PreparedImage:
        position, name = item
        try:
            image = fit_square(self.source.open_image(name), self.max_resolution, self.strict, self.source.channels)
        except Exception as error:  # any unreadable file is skipped and reported, never fatal to the build
            return PreparedImage(position, name, None, str(error) or type(error).__name__)
        levels = box_pyramid(image, self.min_resolution)
        records = {r: encode_record(level, record_encoding(r, self.encoding)) for r, level in levels.items()}
        label = None if self.source.classes is None else self.source.label(name)
        return PreparedImage(position, name, records, None, label)
