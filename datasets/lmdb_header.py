"""The size a data.mdb must have, read from LMDB's own meta pages, checked before it is mapped.

LMDB maps data.mdb and reads its pages through the map, so a file shorter than its pages (a
copy cut short, a full disk during the copy) kills the process with SIGBUS (exit 135, no
output) at the first read past its end. Pages 0 and 1 are meta pages (liblmdb's MDB_meta
after the 16-byte page header): the magic 0xBEEFC0DE at byte 16 of the page, the page size at
byte 40 (`mm_psize`, the free DB's md_pad), the last page in use at byte 136 (`mm_last_pg`) and
the transaction id at byte 144 (`mm_txnid`); the meta of the larger transaction id is the
current one, and the file must hold pages 0 … mm_last_pg: (mm_last_pg + 1) · mm_psize bytes.
Values are in the machine's byte order (64-bit builds; files of other builds are left to
LMDB).
"""
import os
import struct
from pathlib import Path

from .errors import DatasetError

MAGIC = 0xBEEFC0DE
META = struct.Struct("=I")  # mm_magic, mm_psize
PAGE_NUMBER = struct.Struct("=Q")  # mm_last_pg, mm_txnid
MAGIC_AT, PAGE_SIZE_AT, LAST_PAGE_AT, TXNID_AT = 16, 40, 136, 144
META_BYTES = 152  # the page header and the meta fields read here


def required_size(data_file: Path) -> int | None:
    """(last page + 1) · page size of the current meta page of `data_file`; None when the file
    does not start with a 64-bit LMDB meta page of this byte order (LMDB itself judges it)."""
    with open(data_file, "rb") as f:
        first = f.read(META_BYTES)
        if len(first) < META_BYTES or META.unpack_from(first, MAGIC_AT)[0] != MAGIC:
            return None
        page_size = META.unpack_from(first, PAGE_SIZE_AT)[0]
        if page_size < META_BYTES or page_size & (page_size - 1):
            return None
        f.seek(page_size)
        second = f.read(META_BYTES)
    metas = [first]
    if len(second) == META_BYTES and META.unpack_from(second, MAGIC_AT)[0] == MAGIC:
        metas.append(second)
    current = max(metas, key=lambda meta: PAGE_NUMBER.unpack_from(meta, TXNID_AT)[0])
    return (PAGE_NUMBER.unpack_from(current, LAST_PAGE_AT)[0] + 1) * page_size


def check_not_truncated(database: Path) -> None:
    """DatasetError (one line, naming the file) when `database`/data.mdb is shorter than its pages."""
    data_file = Path(database) / "data.mdb"
    try:
        needed = required_size(data_file)
        size = os.path.getsize(data_file)
    except FileNotFoundError:
        return  # LMDB creates it (a new build) or reports it missing
    if needed is not None and size < needed:
        raise DatasetError(f"{data_file} is truncated: {size} bytes, and LMDB's header says it holds {needed} "
                           f"(a copy cut short?); copy it again, or rebuild it with alae-prepare")
