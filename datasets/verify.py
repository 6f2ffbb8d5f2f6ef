"""Check a database end to end: every record decodes, has its shape, and matches the pyramid of its max level."""
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .codec import decode_record
from .layout import image_key, name_key, read_metadata
from .pyramid import box_pyramid
from .readers import reader_key, shared_reader


@dataclass
class VerifyReport:
    """Outcome of `verify_database`: problems is empty for a sound database; skipped_at_build lists
    (source name, reason) of the files its build could not read."""

    path: Path
    count: int
    resolutions: list[int]
    problems: list[str] = field(default_factory=list)
    skipped_at_build: list[tuple[str, str]] = field(default_factory=list)


def verify_database(path, progress: bool = False) -> VerifyReport:
    """Decode every record of the database at `path` and compare its lower levels with a fresh pyramid.

    Raises DatasetError when `path` is missing or not an alae database; an incomplete build is
    reported as a problem. progress: show a tqdm bar on stderr.
    """
    meta = read_metadata(path, allow_incomplete=True)
    resolutions, channels = meta["resolutions"], meta["channels"]
    report = VerifyReport(Path(path), meta["count"] or 0, resolutions)
    if not meta["complete"]:
        report.problems.append("incomplete build: re-run the same alae-prepare command to resume it")
        return report
    report.skipped_at_build = [tuple(s) for s in meta["skipped"]]
    encodings = {int(r): e for r, e in meta["record_encodings"].items()}
    expected_entries = 1 + report.count * (len(resolutions) + 1)
    env = shared_reader(reader_key(path))
    with env.begin(buffers=True) as txn:
        if env.stat()["entries"] != expected_entries:
            report.problems.append(f"{env.stat()['entries']} records, expected {expected_entries}")
        for index in tqdm(range(report.count), unit="img", disable=not progress, file=sys.stderr):
            report.problems.extend(_check_image(txn, index, resolutions, encodings, channels))
    return report


def _check_image(txn, index: int, resolutions: list[int], encodings: dict[int, str], channels: int) -> list[str]:
    """Problems with image `index`: missing name or records, undecodable records, levels off the pyramid."""
    if txn.get(name_key(index)) is None:
        return [f"image {index}: no source name"]
    levels = {}
    for resolution in resolutions:
        record = txn.get(image_key(resolution, index))
        if record is None:
            return [f"image {index}: no record at {resolution}px"]
        try:
            levels[resolution] = decode_record(record, encodings[resolution], resolution, channels)
        except Exception as error:  # a damaged record of any kind is a finding, not a crash
            return [f"image {index} at {resolution}px does not decode: {error}"]
    expected = box_pyramid(levels[resolutions[-1]].transpose(1, 2, 0), resolutions[0])
    return [
        f"image {index} at {r}px differs from the box-filter pyramid of its {resolutions[-1]}px level"
        for r in resolutions
        if not np.array_equal(levels[r], expected[r].transpose(2, 0, 1))
    ]
