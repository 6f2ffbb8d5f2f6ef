"""The on-disk layout of an alae LMDB database: keys, JSON records, reading and checking the metadata.

A database is an LMDB environment directory (data.mdb, lock.mdb) holding:
  b"alae/meta"              JSON metadata (written by builder.py): format, format_version,
                            complete, count, resolutions, channels (3 RGB, 1 grey), encoding,
                            record_encodings, source, build (the arguments a resumed build must
                            match), skipped; and only when the source has them:
                              labels: {"classes": K}: every image has a label record
                              native_resolution: N: the max level R holds an NxN picture centred
                                in a zero border of (R - N) / 2 px (MNIST: 28 in 32)
                              test_count: N: the last N images are the source's test split
  b"alae/progress"          JSON resume point of an unfinished build; deleted on completion
  b"img/RRRR/IIIIIIII"      one image level: resolution RRRR, index IIIIIIII (zero-padded decimal)
  b"name/IIIIIIII"          UTF-8 source name (relative path, zip member or demo name) of an index
  b"label/IIIIIIII"         class label of an index as ASCII decimal, in [0, K) (labelled databases only)

The optional fields came after format version 1 and leave it unchanged: a database without them
reads as before.
"""
import json
from pathlib import Path

import lmdb

from .errors import DatasetError
from .readers import reader_key, release_reader, shared_reader

FORMAT_NAME = "alae-lmdb"
FORMAT_VERSION = 1
META_KEY = b"alae/meta"
PROGRESS_KEY = b"alae/progress"


def image_key(resolution: int, index: int) -> bytes:
    """Key of the record holding image `index` at `resolution`."""
    return b"img/%04d/%08d" % (resolution, index)


def name_key(index: int) -> bytes:
    """Key of the source name of image `index`."""
    return b"name/%08d" % index


def label_key(index: int) -> bytes:
    """Key of the class label of image `index`."""
    return b"label/%08d" % index


def encode_label(label: int) -> bytes:
    """A label record: the label as ASCII decimal."""
    return b"%d" % label


def decode_label(record, classes: int) -> int:
    """The label in a label record; ValueError unless it is ASCII decimal digits of a value in [0, classes)."""
    text = bytes(record)
    if not text.isdigit() or not int(text) < classes:
        raise ValueError(f"label record {text[:20]!r} is not a class in 0..{classes - 1}")
    return int(text)


def native_border(meta: dict) -> int:
    """Width in pixels of the zero border around the native picture at the max level (0 without native_resolution)."""
    native = meta.get("native_resolution")
    return 0 if native is None else (max(meta["resolutions"]) - native) // 2


def read_json(txn: lmdb.Transaction, key: bytes):
    """The JSON value stored under `key`, or None when absent."""
    value = txn.get(key)
    return None if value is None else json.loads(bytes(value))


def write_json(txn: lmdb.Transaction, key: bytes, value) -> None:
    """Store `value` as compact, key-sorted JSON under `key`."""
    txn.put(key, json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def read_metadata(path, allow_incomplete: bool = False) -> dict:
    """The metadata record of the alae database at `path`, opening this process's shared reader of it.

    Raises DatasetError when the path is missing, is not an alae database, has another format
    version, or (unless `allow_incomplete`) holds an unfinished build.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset not found: {path} (create it with: alae-prepare SOURCE {path})")
    if not (path / "data.mdb").is_file():
        raise DatasetError(f"not an alae database: {path} (expected a directory made by alae-prepare)")
    try:
        with shared_reader(reader_key(path)).begin() as txn:
            meta = read_json(txn, META_KEY)
    except DatasetError:  # a truncated data.mdb (`lmdb_header`): its own message
        raise
    except (lmdb.Error, ValueError) as error:
        release_reader(path)
        raise DatasetError(f"not an alae database: {path} ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        release_reader(path)
        raise DatasetError(f"not an alae database: {path} (no alae metadata record)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path} has database format version {meta.get('format_version')}, this alae reads "
            f"version {FORMAT_VERSION}; rebuild it with alae-prepare"
        )
    if not meta["complete"] and not allow_incomplete:
        raise DatasetError(
            f"incomplete database: {path} (its build was interrupted; re-run the same alae-prepare "
            f"command to resume it)"
        )
    return meta


def is_complete_database(path) -> bool:
    """True when `path` holds a complete alae database of the current format version."""
    try:
        read_metadata(path)
    except DatasetError:
        return False
    return True
