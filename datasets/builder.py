"""Build (or resume building) a multi-resolution alae LMDB database from an image source.

Records are written in batched transactions; each commit also stores the resume point, so an
interrupted build continues where its last commit ended when re-run with the same arguments.
The metadata record says `complete` only after the final commit, and loaders refuse anything else.
"""
import contextlib
import hashlib
import multiprocessing
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lmdb

from alae.progress import progress as progress_bar

from alae.files import format_bytes

from .codec import ENCODING_POLICIES, record_encoding
from .errors import DatasetError
from .image_records import ImageRecordMaker, PreparedImage
from .layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    META_KEY,
    PROGRESS_KEY,
    encode_label,
    image_key,
    label_key,
    name_key,
    read_json,
    write_json,
)
from .lmdb_header import check_not_truncated
from .readers import release_reader
from .source_protocol import ImageSource
from .sources import IMAGE_EXTENSIONS, LfwFacesSource, open_source

MAX_RESOLUTION_PROBES = 100  # images tried when inferring --max-res from the first readable one


@dataclass
class BuildSummary:
    """What a build did.

    count: images in the database; skipped: (source name, reason) over the whole build, earlier
    interrupted runs included; ignored: files without an image extension; resumed_at: source
    images already done when this run started (0 for a fresh build); already_complete: nothing
    to do, the database was complete; seconds: wall time of this run.
    """

    path: Path
    count: int
    resolutions: list[int]
    record_encodings: dict[int, str]
    skipped: list[tuple[str, str]]
    ignored: list[str]
    resumed_at: int
    already_complete: bool
    seconds: float


def default_workers() -> int:
    """Decoding processes used when --workers is not given: the CPU count, at most 8."""
    return min(8, os.cpu_count() or 1)


def build_database(
    source: str,
    out,
    *,
    max_resolution: int | None = None,
    min_resolution: int = 4,
    encoding: str = "auto",
    workers: int | None = None,
    strict: bool = False,
    limit: int | None = None,
    progress: bool = False,
    commit_images: int = 1000,
    commit_bytes: int = 64 << 20,
) -> BuildSummary:
    """Build the database `out` (a directory) from `source` (a folder, a zip archive, MNIST IDX
    files, 'lfw' or 'mnist'; sources.open_source).

    Stores every power-of-two resolution from min_resolution to max_resolution (pixels; default:
    the first readable image's shorter side rounded down to a power of two, 32 for 'lfw' and
    MNIST, which is stored at 32 only) of the first `limit` images in the source's order, with
    their labels when the source has them. workers: decoding processes (0 or 1: in this
    process). progress: show a bar (alae.progress) and report skipped files on stderr. A transaction is
    committed every `commit_images` images or `commit_bytes` bytes of records.

    Re-running with the same arguments resumes an interrupted build, or returns at once when the
    database is complete. Raises DatasetError for unusable arguments, sources and destinations.
    """
    started = time.perf_counter()
    image_source = open_source(source)
    if strict and isinstance(image_source, LfwFacesSource):
        raise DatasetError("--strict cannot be used with 'lfw': its faces are 25x25 and are always resized")
    if encoding not in ENCODING_POLICIES:
        raise DatasetError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODING_POLICIES)}")
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit must be at least 1, got {limit}")
    listing = image_source.list()
    names = listing.images[:limit]
    if not names:
        ignored = f"; ignored {len(listing.ignored)} other files" if listing.ignored else ""
        raise DatasetError(f"no images found in {source} (looked for {' '.join(IMAGE_EXTENSIONS)}{ignored})")
    if max_resolution is None:
        max_resolution = _default_max_resolution(image_source, names)
    native, padded = image_source.native_resolution, image_source.default_max_resolution
    if native is not None and max_resolution != padded:
        raise DatasetError(f"{source} is stored at {padded} px (its {native}x{native} images padded with zeros): "
                           f"--max-res must be {padded}, got {max_resolution}")
    resolutions = _resolutions(min_resolution, max_resolution)
    contents = _source_fields(image_source, len(names), len(listing.images))
    build_args = {
        "source": image_source.description,
        "max_resolution": max_resolution,
        "min_resolution": min_resolution,
        "encoding": encoding,
        "strict": strict,
        "limit": limit,
        "source_images": len(names),
        "source_fingerprint": hashlib.sha256("\n".join(names).encode()).hexdigest(),
    }
    out = Path(out)
    _check_destination(out)
    estimate = int(1.1 * len(names) * sum(3 * r * r + 4096 for r in resolutions)) + (64 << 20)
    release_reader(out)  # py-lmdb allows one open environment per database per process
    check_not_truncated(out)
    env = lmdb.open(str(out), map_size=estimate, readahead=False, meminit=False)
    try:
        state = _start_or_resume(env, out, build_args, resolutions, contents)
        if state["complete"]:
            return BuildSummary(
                out, state["count"], resolutions, _encodings(resolutions, encoding),
                [tuple(s) for s in state["skipped"]], listing.ignored, len(names), True,
                time.perf_counter() - started,
            )
        maker = ImageRecordMaker(image_source, max_resolution, min_resolution, encoding, strict)
        resumed_at = state["next_source"]
        count, skipped = _write_images(
            env, maker, names, state, workers, progress, commit_images, commit_bytes,
            _metadata(build_args, resolutions, contents, complete=True, count=None, skipped=None),
        )
    finally:
        env.close()
    return BuildSummary(
        out, count, resolutions, _encodings(resolutions, encoding), skipped, listing.ignored,
        resumed_at, False, time.perf_counter() - started,
    )


def _write_images(env, maker, names, state, workers, progress, commit_images, commit_bytes, final_meta):
    """Prepare names[state['next_source']:] and commit them in batches; the last commit completes the database.

    Returns (image count, skipped list).
    """
    next_source, next_index = state["next_source"], state["next_index"]
    skipped = [tuple(s) for s in state["skipped"]]
    batch, batch_bytes = [], 0
    items = list(enumerate(names))[next_source:]
    workers = default_workers() if workers is None else workers
    bar = progress_bar(total=len(names), initial=next_source, unit="img", disable=not progress)
    with bar, _prepared(maker, items, workers) as prepared:
        for image in prepared:
            bar.update()
            if image.error is not None:
                skipped.append((image.name, image.error))
                if progress:
                    bar.write(f"skipped {image.name}: {image.error}", file=sys.stderr)
            else:
                batch.append((next_index, image))
                batch_bytes += sum(len(r) for r in image.records.values())
                next_index += 1
            next_source = image.position + 1
            if next_source < len(names) and (len(batch) >= commit_images or batch_bytes >= commit_bytes):
                progress_record = {"next_source": next_source, "next_index": next_index, "skipped": skipped}
                _commit(env, batch, lambda txn: write_json(txn, PROGRESS_KEY, progress_record))
                batch, batch_bytes = [], 0
    if next_index == 0:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise DatasetError(f"none of the {len(names)} images could be read{first}; nothing was stored")
    final_meta = {**final_meta, "count": next_index, "skipped": skipped}

    def complete(txn):
        write_json(txn, META_KEY, final_meta)
        txn.delete(PROGRESS_KEY)

    _commit(env, batch, complete)
    return next_index, skipped


@contextlib.contextmanager
def _prepared(maker: ImageRecordMaker, items: list[tuple[int, str]], workers: int):
    """Yields an iterator of PreparedImage in the order of `items`, over `workers` processes (<= 1: in process)."""
    if workers <= 1:
        yield map(maker, items)
        return
    with multiprocessing.get_context().Pool(workers, initializer=_install_worker_maker, initargs=(maker,)) as pool:
        yield pool.imap(_prepare_in_worker, items, chunksize=4)


_worker_maker: ImageRecordMaker | None = None


def _install_worker_maker(maker: ImageRecordMaker) -> None:
    """Pool initializer: each worker keeps one maker (so one open zip archive) and leaves Ctrl-C to the parent."""
    global _worker_maker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_maker = maker


def _prepare_in_worker(item: tuple[int, str]) -> PreparedImage:
    return _worker_maker(item)


def _commit(env: lmdb.Environment, batch, finish) -> None:
    """Write a batch of (index, PreparedImage) and call finish(txn) in one transaction, growing the map if full.

    A commit the file system refuses is a DatasetError saying why (`_write_failure`); the
    database keeps its previous commit, so the same command resumes once there is room."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for index, image in batch:
                    for resolution, record in image.records.items():
                        txn.put(image_key(resolution, index), record)
                    txn.put(name_key(index), image.name.encode())
                    if image.label is not None:
                        txn.put(label_key(index), encode_label(image.label))
                finish(txn)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)
        except lmdb.Error as error:
            needed = sum(len(r) for _, image in batch for r in image.records.values())
            raise _write_failure(Path(env.path()) / "data.mdb", error, needed) from None


def _write_failure(data_file: Path, error: lmdb.Error, needed: int) -> DatasetError:
    """Why a commit of about `needed` bytes of records failed. LMDB reports a short write as
    "Input/output error" (EIO), whatever the cause, so the cause is read from the system: a
    file-size limit (ulimit -f) the file would pass, or less free space than the commit needs."""
    resume = "re-run the same alae-prepare command to resume"
    size = data_file.stat().st_size if data_file.exists() else 0
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and size + needed > limit:
        return DatasetError(f"cannot write {data_file}: it would pass the file-size limit (ulimit -f) of "
                            f"{format_bytes(limit)} (it holds {format_bytes(size)}, the next commit adds about "
                            f"{format_bytes(needed)}); raise the limit and {resume}")
    stat = os.statvfs(data_file.parent)
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        return DatasetError(f"cannot write {data_file}: the disk is full ({format_bytes(free)} free on "
                            f"{data_file.parent}, the next commit needs about {format_bytes(needed)}); free some "
                            f"space and {resume}")
    return DatasetError(f"cannot write {data_file}: {error}; {resume}")


def _check_destination(out: Path) -> None:
    """Refuse to write into anything but a new path, an empty directory or an existing LMDB directory."""
    if not out.exists():
        out.mkdir(parents=True)
    elif not out.is_dir():
        raise DatasetError(f"output {out} exists and is not a directory")
    elif not (out / "data.mdb").exists() and any(out.iterdir()):
        raise DatasetError(f"output {out} is a non-empty directory without a database; choose a new path")


def _start_or_resume(env: lmdb.Environment, out: Path, build_args: dict, resolutions: list[int],
                     contents: dict) -> dict:
    """The build state: {'complete': True, 'count', 'skipped'} for a finished database, else the resume point.

    A fresh database gets its (incomplete) metadata and a zero resume point in its first commit.
    Raises DatasetError when `out` holds something else or a build with other arguments.
    """
    with env.begin(write=True) as txn:
        try:
            meta = read_json(txn, META_KEY)
        except ValueError:
            meta = "unreadable"
        if meta is None and env.stat()["entries"] == 0:
            meta = _metadata(build_args, resolutions, contents, complete=False, count=None, skipped=None)
            write_json(txn, META_KEY, meta)
            state = {"next_source": 0, "next_index": 0, "skipped": []}
            write_json(txn, PROGRESS_KEY, state)
            return {**state, "complete": False}
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise DatasetError(f"output {out} is an LMDB database that alae did not make; choose a new path")
        previous = meta.get("build") or {}
        if meta.get("format_version") != FORMAT_VERSION or previous != build_args:
            what = "complete database" if meta.get("complete") else "interrupted build"
            differences = ", ".join(
                f"{key} {previous.get(key)!r} -> {value!r}"
                for key, value in build_args.items() if previous.get(key) != value
            )
            raise DatasetError(
                f"output {out} holds a {what} made with other arguments ({differences or 'format version'}); "
                f"use the same arguments, or delete it to start over"
            )
        if meta["complete"]:
            return {"complete": True, "count": meta["count"], "skipped": meta["skipped"]}
        progress = read_json(txn, PROGRESS_KEY)
        if not isinstance(progress, dict):
            raise DatasetError(f"output {out} holds an interrupted build without its resume point; "
                               f"delete it to start over")
        return {**progress, "complete": False}


def _metadata(build_args: dict, resolutions: list[int], contents: dict, *, complete: bool, count, skipped) -> dict:
    """The metadata record (layout.py lists its fields); contents: `_source_fields`."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "complete": complete,
        "count": count,
        "resolutions": resolutions,
        "encoding": build_args["encoding"],
        "record_encodings": {str(r): e for r, e in _encodings(resolutions, build_args["encoding"]).items()},
        "source": build_args["source"],
        "build": build_args,
        "skipped": skipped,
        **contents,
    }


def _source_fields(source: ImageSource, used: int, listed: int) -> dict:
    """The metadata fields the source decides: channels; labels, native_resolution and test_count when it has them.

    used of the listed names go into the database (--limit drops the rest from the end, so
    from the test split first). A source with a test split never skips images (its pixels are
    in memory), so the split's part in the database is the last test_count images.
    """
    fields = {"channels": source.channels}
    if source.classes is not None:
        fields["labels"] = {"classes": source.classes}
    if source.native_resolution is not None:
        fields["native_resolution"] = source.native_resolution
    test_count = source.test_count - (listed - used)
    if test_count > 0:
        fields["test_count"] = test_count
    return fields


def _encodings(resolutions: list[int], policy: str) -> dict[int, str]:
    return {r: record_encoding(r, policy) for r in resolutions}


def _resolutions(min_resolution: int, max_resolution: int) -> list[int]:
    """[min, 2*min, ..., max]; both must be powers of two with min <= max."""
    for label, value in (("--min-res", min_resolution), ("--max-res", max_resolution)):
        if value < 1 or value & (value - 1):
            raise DatasetError(f"{label} must be a power of two, got {value}")
    if min_resolution > max_resolution:
        raise DatasetError(f"--min-res {min_resolution} is larger than --max-res {max_resolution}")
    return [1 << k for k in range(min_resolution.bit_length() - 1, max_resolution.bit_length())]


def _default_max_resolution(image_source: ImageSource, names: list[str]) -> int:
    """The source's default (32 for 'lfw' and MNIST); else the shorter side of the first readable image,
    rounded down to a power of two."""
    if image_source.default_max_resolution is not None:
        return image_source.default_max_resolution
    for name in names[:MAX_RESOLUTION_PROBES]:
        try:
            side = min(image_source.open_image(name).size)
        except Exception:  # unreadable files are reported by the build itself
            continue
        return 1 << (side.bit_length() - 1)
    raise DatasetError(f"cannot infer --max-res: none of the first {MAX_RESOLUTION_PROBES} images is readable; pass --max-res")
