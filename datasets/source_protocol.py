"""What the builder reads from an image source (sources.py, mnist.py): the listing and the optional properties.

A source has `description` (str, stored in the metadata), `list() -> SourceListing` (names in
database order) and `open_image(name) -> PIL.Image`. `ImageSource` gives the properties every
source may override, with the defaults of a plain folder of photos.
"""
from typing import NamedTuple


class SourceListing(NamedTuple):
    """Image names of a source in database order, and the names of files skipped for their extension."""

    images: list[str]
    ignored: list[str]


class ImageSource:
    """Defaults of the optional source properties.

    channels: 3 (RGB) or 1 (grey) as stored. classes: the number of class labels when the source
    has them (then `label(name) -> int` in [0, classes)), else None. default_max_resolution:
    --max-res when not given (None: from the first readable image). native_resolution: when set,
    open_image gives a native_resolution picture centred in a zero border out to
    default_max_resolution, the only max resolution such a source is stored at. test_count: the
    last test_count names of the listing are a held-out test split (0: none).
    """

    channels = 3
    classes: int | None = None
    default_max_resolution: int | None = None
    native_resolution: int | None = None
    test_count = 0
