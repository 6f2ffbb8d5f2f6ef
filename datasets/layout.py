"""The on-disk layout of an alae LMDB database: keys, JSON records, reading and checking the metadata.

A database is an LMDB environment directory (data.mdb, lock.mdb) holding:
  b"alae/meta"              JSON metadata (written by builder.py): format, format_version,
                            complete, count, resolutions, channels, encoding, record_encodings,
                            source, build (the arguments a resumed build must match), skipped
  b"alae/progress"          JSON resume point of an unfinished build; deleted on completion
  b"img/RRRR/IIIIIIII"      one image level: resolution RRRR, index IIIIIIII (zero-padded decimal)
  b"name/IIIIIIII"          UTF-8 source name (relative path, zip member or demo name) of an index
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
