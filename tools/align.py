"""alae-align: cut every face out of photos the way FFHQ was aligned, one PNG per face.

`alae-align PHOTOS... --out DIR [--size 1024] [--upsample 1] [--min-score 0.3] [--overwrite]`

PHOTOS are image files and folders (searched recursively for .png, .jpg, .jpeg, .webp). EXIF
orientation is applied first. Each face dlib finds becomes DIR/{stem}_{k:02d}.png, k counting
the photo's faces from left to right. DIR/alignment.json records, per photo, its faces (output
file, detection rectangle and score, 68 landmarks, and the quad that became the crop, all in
the oriented photo's pixels), then the photos without a face and the files that could not be
read, with the reason.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from alae.cli import ToolError, prepare_output_dir, run_tool, warn
from alae.datasets.fitting import to_rgb
from alae.datasets.sources import IMAGE_EXTENSIONS
from alae.faces.alignment import AlignedFace, align_photo
from alae.faces.landmarks import DEFAULT_MIN_SCORE, FaceLandmarker
from alae.files import save_image, save_json
from alae.progress import progress

PROG = "alae-align"
RECORD = "alignment.json"
# What PIL raises on a file that is not a readable image (truncated, corrupt, not an image, huge).
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
COORDINATES = "(x, y) pixels of the photo after EXIF orientation, pixel centres at integers"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_tool(PROG, lambda: _align(args, argv))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("photos", nargs="+", metavar="PHOTOS", help="image files and folders (recursive)")
    p.add_argument("--out", required=True, help="output folder (new or empty)")
    p.add_argument("--size", type=_at_least(1), default=1024, help="side of the aligned crops in pixels (default 1024)")
    p.add_argument("--upsample", type=_at_least(0), default=1,
                   help="times dlib doubles a photo before detecting: 1 finds faces down to ~40 px, 0 is ~4x faster")
    p.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                   help=f"drop detections scoring below this (default {DEFAULT_MIN_SCORE}; dlib's own threshold is 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier alae output in --out")
    return p


def _at_least(low: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value
    parse.__name__ = "integer"  # argparse's "invalid integer value: ..."
    return parse


def _align(args: argparse.Namespace, argv: list[str] | None) -> None:
    photos = list_photos(args.photos)
    landmarker = FaceLandmarker(upsample=args.upsample, min_score=args.min_score)
    out = prepare_output_dir(args.out, args.overwrite, PROG, argv)
    record = {"output_size": args.size, "coordinates": COORDINATES, "photos": [], "no_face": [], "unreadable": []}
    for path, stem in progress(zip(photos, unique_stems(photos)), total=len(photos), desc=PROG, unit="photo"):
        try:
            image = read_photo(path)
        except UNREADABLE as error:
            record["unreadable"].append({"source": str(path), "reason": f"{type(error).__name__}: {error}"})
            warn(PROG, f"skipped {path}: cannot read it as an image ({error})")
            continue
        faces = align_photo(image, landmarker, args.size)
        if not faces:
            record["no_face"].append(str(path))
            warn(PROG, f"no face found in {path}")
        entries = [_save_face(face, out / f"{stem}_{k:02d}.png") for k, face in enumerate(faces)]
        record["photos"].append({"source": str(path), "size": list(image.size), "faces": entries})
    save_json(record, out / RECORD)
    face_count = sum(len(photo["faces"]) for photo in record["photos"])
    print(f"{PROG}: {len(photos)} files, {face_count} faces, {len(record['no_face'])} photos without a face, "
          f"{len(record['unreadable'])} unreadable; wrote {out}")
    if not record["photos"]:
        raise ToolError(f"none of the {len(photos)} files could be read as an image (reasons in {out / RECORD})")


def list_photos(paths: list[str]) -> list[Path]:
    """The given files, and the image files under the given folders (sorted); ToolError if a
    path does not exist or nothing is found."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise ToolError(f"no such file or folder: {', '.join(missing)}")
    photos: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            photos += sorted(p for p in given.rglob("*") if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS))
        else:
            photos.append(given)
    if not photos:
        raise ToolError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {', '.join(paths)}")
    return list(dict.fromkeys(photos))


def unique_stems(photos: list[Path]) -> list[str]:
    """File stems, with -2, -3, ... added to repeats (compared case-insensitively, as on macOS
    and Windows), so that two photos never write the same crop file."""
    used: set[str] = set()
    stems = []
    for photo in photos:
        stem, n = photo.stem, 2
        while stem.casefold() in used:
            stem, n = f"{photo.stem}-{n}", n + 1
        used.add(stem.casefold())
        stems.append(stem)
    return stems


def read_photo(path: Path) -> Image.Image:
    """The decoded photo, upright by its EXIF orientation, as RGB (raises one of UNREADABLE)."""
    with Image.open(path) as image:
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))


def _save_face(face: AlignedFace, path: Path) -> dict:
    save_image(np.asarray(face.image), path)
    return {"file": path.name, "rect": list(face.face.rect), "score": round(face.face.score, 4),
            "landmarks": face.landmarks.tolist(), "quad": np.round(face.quad, 4).tolist()}


if __name__ == "__main__":
    sys.exit(main())
