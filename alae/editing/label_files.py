"""Per-image yes/no labels of one attribute, read from a label file and matched to images.

    labels = read_labels("list_attr_celeba.txt", "Smiling")      # {"000001.jpg": True, ...}
    pairs, unmatched = match_labels(labels, [ref.name for ref in refs])

Two formats, recognised from the content (never the extension):

* CelebA's `list_attr_celeba.txt` (CelebAMask-HQ's attribute file has the same layout): line 1
  the image count, line 2 the attribute names separated by spaces, then one line per image, its
  name and one value per attribute (runs of spaces): 1 (has the attribute) or -1.
* A CSV whose header names the columns: the first column holds the image names, an attribute
  is a column picked by its name. Values (case-insensitive): 1, +1, true, yes → True;
  0, -1, false, no → False. A two-column CSV whose second column is named `value` holds a
  single attribute and answers to any attribute name.

Labels are matched to images by the stem of the base name (`000001.jpg` labels `000001.png`
and `sub/000001.png`), since aligned crops rarely keep the original extension.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

from alae.errors import UserError

CELEBA_VALUES = {"1": True, "-1": False}
CSV_VALUES = {"1": True, "+1": True, "true": True, "yes": True,
              "0": False, "-1": False, "false": False, "no": False}
SINGLE_ATTRIBUTE_COLUMN = "value"


class LabelError(UserError, ValueError):
    """A label file or its match to the images is unusable; one line naming the file (and the
    line, for a bad row). A UserError, so every command line prints it without a traceback."""


def read_labels(path: str | Path, attribute: str) -> dict[str, bool]:
    """{image name as written in the file: has `attribute`} from a CelebA attribute list or a
    CSV (module docstring). LabelError for a missing or unreadable file, an unknown format, an
    attribute the file lacks (the message lists the ones it has), a bad value or row (with its
    line number), an image listed twice, or a CelebA count line that disagrees with the rows."""
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"label file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabelError(f"{path} is not a label file: not UTF-8 text") from None
    first = text.splitlines()[0].strip() if text.strip() else ""
    if first.isascii() and first.isdigit():
        return _read_celeba(path, text.splitlines(), attribute)
    if "," in first:
        return _read_csv(path, text, attribute)
    raise LabelError(f"{path} is not a label file this alae reads: neither a CelebA attribute list "
                     f"(an image count line, then the attribute names) nor a CSV with a header")


def _missing(path: Path, attribute: str, available: list[str]) -> LabelError:
    return LabelError(f"{path} has no attribute {attribute!r}; it has: {', '.join(available)}")


def _add(labels: dict[str, bool], lines: dict[str, int], name: str, value: bool, path: Path, number: int) -> None:
    if name in labels:
        raise LabelError(f"{path}, line {number}: image {name!r} is listed twice (also on line {lines[name]})")
    labels[name], lines[name] = value, number


def _read_celeba(path: Path, lines: list[str], attribute: str) -> dict[str, bool]:
    count = int(lines[0])
    if len(lines) < 2 or not lines[1].split():
        raise LabelError(f"{path}, line 2: no attribute names after the image count")
    names = lines[1].split()
    if attribute not in names:
        raise _missing(path, attribute, names)
    column = 1 + names.index(attribute)
    labels: dict[str, bool] = {}
    where: dict[str, int] = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 1 + len(names):
            raise LabelError(f"{path}, line {number}: {len(fields) - 1} values, line 2 names {len(names)} attributes")
        if fields[column] not in CELEBA_VALUES:
            raise LabelError(f"{path}, line {number}: {attribute} is {fields[column]!r}, expected 1 or -1")
        _add(labels, where, fields[0], CELEBA_VALUES[fields[column]], path, number)
    if len(labels) != count:
        raise LabelError(f"{path}: line 1 says {count} images, the file lists {len(labels)}")
    return labels


def _read_csv(path: Path, text: str, attribute: str) -> dict[str, bool]:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader)]
    if len(header) < 2 or not all(header):
        raise LabelError(f"{path}, line 1: a CSV label file's header names the image column and at least one "
                         f"attribute column, got {','.join(header)!r}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise LabelError(f"{path}, line 1: column {duplicated[0]!r} is named twice")
    if len(header) == 2 and header[1].lower() == SINGLE_ATTRIBUTE_COLUMN:
        column = 1
    elif attribute in header[1:]:
        column = header.index(attribute)
    else:
        raise _missing(path, attribute, header[1:])
    labels: dict[str, bool] = {}
    where: dict[str, int] = {}
    for row in reader:
        number = reader.line_num
        if not any(field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise LabelError(f"{path}, line {number}: {len(row)} fields, the header has {len(header)}")
        name, value = row[0].strip(), row[column].strip()
        if not name:
            raise LabelError(f"{path}, line {number}: no image name")
        if value.lower() not in CSV_VALUES:
            raise LabelError(f"{path}, line {number}: {header[column]} is {value!r}, expected one of "
                             f"{', '.join(CSV_VALUES)} (any case)")
        _add(labels, where, name, CSV_VALUES[value.lower()], path, number)
    return labels


def _stem(name: str) -> str:
    """'sub/000001.png' → '000001' (either slash separates folders)."""
    return PurePosixPath(name.replace("\\", "/")).stem


def match_labels(labels: dict[str, bool], image_names: list[str]) -> tuple[list[tuple[int, bool]], list[str]]:
    """Pair images with labels by the stem of their base names.

    Returns ([(index into image_names, label)] in image order, the label names that match no
    image, in the labels' order). LabelError, naming both, when two images (or two labels)
    share the stem of a labelled image: which label belongs to which image would be a guess.
    """
    images_by_stem: dict[str, list[int]] = {}
    for index, name in enumerate(image_names):
        images_by_stem.setdefault(_stem(name), []).append(index)
    labels_by_stem: dict[str, list[str]] = {}
    for name in labels:
        labels_by_stem.setdefault(_stem(name), []).append(name)
    pairs = []
    for stem, names in labels_by_stem.items():
        indices = images_by_stem.get(stem, [])
        if len(indices) > 1:
            raise LabelError(f"images {image_names[indices[0]]!r} and {image_names[indices[1]]!r} both match label "
                             f"{names[0]!r} (same name without extension): rename one")
        if indices and len(names) > 1:
            raise LabelError(f"labels {names[0]!r} and {names[1]!r} both match image {image_names[indices[0]]!r} "
                             f"(same name without extension)")
        if indices:
            pairs.append((indices[0], labels[names[0]]))
    unmatched = [name for name in labels if _stem(name) not in images_by_stem]
    return sorted(pairs), unmatched
