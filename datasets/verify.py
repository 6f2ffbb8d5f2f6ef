"""Check a database end to end: every record decodes, has its shape, and matches the pyramid of its max level.

When the metadata declares them, also: every image has a label record in [0, classes), and the
zero border around the native picture (native_resolution) of the max level is all zeros.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alae.progress import progress as progress_bar

from .codec import decode_record
from .layout import (
    decode_label,
    image_key,
    label_key,
    name_key,
    native_border,
    read_metadata,
)
from .pyramid import box_pyramid
from .readers import reader_key, shared_reader


@dataclass
class VerifyReport:
    """Outcome of `verify_database`: problems is empty for a sound database; skipped_at_build lists
    (source name, reason) of the files its build could not read. channels, classes (None: no
    labels), native_resolution (None: none) and test_count (0: no test split) are as declared."""

    path: Path
    count: int
    resolutions: list[int]
    problems: list[str] = field(default_factory=list)
    skipped_at_build: list[tuple[str, str]] = field(default_factory=list)
    channels: int = 3
    classes: int | None = None
    native_resolution: int | None = None
    test_count: int = 0


def verify_database(path, progress: bool = False) -> VerifyReport:
    """Decode every record of the database at `path` and compare its lower levels with a fresh pyramid.

    Raises DatasetError when `path` is missing or not an alae database; an incomplete build is
    reported as a problem. progress: show a bar (alae.progress) on stderr.
    """
    meta = read_metadata(path, allow_incomplete=True)
    resolutions, channels = meta["resolutions"], meta["channels"]
    report = VerifyReport(
        Path(path), meta["count"] or 0, resolutions, channels=channels,
        classes=meta.get("labels", {}).get("classes"), native_resolution=meta.get("native_resolution"),
        test_count=meta.get("test_count", 0),
    )
    if not meta["complete"]:
        report.problems.append("incomplete build: re-run the same alae-prepare command to resume it")
        return report
    report.skipped_at_build = [tuple(s) for s in meta["skipped"]]
    encodings = {int(r): e for r, e in meta["record_encodings"].items()}
    border = native_border(meta)
    records_per_image = len(resolutions) + 1 + (report.classes is not None)
    expected_entries = 1 + report.count * records_per_image
    env = shared_reader(reader_key(path))
    with env.begin(buffers=True) as txn:
        if env.stat()["entries"] != expected_entries:
            report.problems.append(f"{env.stat()['entries']} records, expected {expected_entries}")
        for index in progress_bar(range(report.count), total=report.count, unit="img", disable=not progress):
            report.problems.extend(_check_image(txn, index, resolutions, encodings, channels, border))
            if report.classes is not None:
                report.problems.extend(_check_label(txn, index, report.classes))
    return report


def _check_image(txn, index: int, resolutions: list[int], encodings: dict[int, str], channels: int,
                 border: int) -> list[str]:
    """Problems with image `index`: missing name or records, undecodable records, levels off the pyramid,
    and (border > 0) non-zero pixels in the border of the max level."""
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
    top = resolutions[-1]
    expected = box_pyramid(levels[top].transpose(1, 2, 0), resolutions[0])
    problems = [
        f"image {index} at {r}px differs from the box-filter pyramid of its {top}px level"
        for r in resolutions
        if not np.array_equal(levels[r], expected[r].transpose(2, 0, 1))
    ]
    if border:
        outside = levels[top].copy()
        outside[:, border:top - border, border:top - border] = 0
        if outside.any():
            problems.append(f"image {index} at {top}px has non-zero pixels in its {border}px border")
    return problems


def _check_label(txn, index: int, classes: int) -> list[str]:
    """Problems with the label record of image `index`: missing, or not a class in [0, classes)."""
    record = txn.get(label_key(index))
    if record is None:
        return [f"image {index}: no label"]
    try:
        decode_label(record, classes)
    except ValueError as error:
        return [f"image {index}: {error}"]
    return []
