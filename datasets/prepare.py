"""alae-prepare: turn a folder, zip archive, MNIST digits or the demo faces into a multi-resolution LMDB database.

    alae-prepare SOURCE OUT [--max-res R] [--min-res 4] [--encoding auto|raw|png] [--workers N]
                 [--strict] [--limit N]
    alae-prepare --verify OUT

Also `python -m alae.datasets.prepare`. Problems a user can fix are reported in one line on
stderr with exit status 1 (2 for bad command-line usage); Ctrl-C exits with 130 and the same
command resumes the build. docs/DATA.md has the walkthrough.
"""
import argparse
import sys

import lmdb

from .builder import BuildSummary, build_database, default_workers
from .codec import ENCODING_POLICIES
from .errors import DatasetError
from .verify import VerifyReport, verify_database

PROGRAM = "alae-prepare"
LISTED_SKIPS = 20  # skipped files named in the summary; --verify lists all


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verify is not None:
        if args.source is not None:
            parser.error("--verify takes only the database path")
    elif args.out is None:
        parser.error("SOURCE and OUT are required (or --verify OUT)")
    try:
        return _verify(args.verify) if args.verify is not None else _build(args)
    except DatasetError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    except (OSError, lmdb.Error) as error:  # disk full, permissions, a damaged database: not a bug
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROGRAM}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Build a multi-resolution LMDB database for alae training, or verify one.",
    )
    parser.add_argument("source", nargs="?", metavar="SOURCE",
                        help="folder of images (recursive: png, jpg, jpeg, webp), a zip archive, a folder or images file "
                             "of MNIST IDX files, 'lfw' for the embedded demo faces or 'mnist' for the embedded digits")
    parser.add_argument("out", nargs="?", metavar="OUT", help="database directory to create or resume")
    parser.add_argument("--verify", metavar="OUT", help="decode every record of an existing database and report problems")
    parser.add_argument("--max-res", type=int, help="largest resolution stored (default: the first image's size; 32 for lfw and MNIST)")
    parser.add_argument("--min-res", type=int, default=4, help="smallest resolution stored (default 4)")
    parser.add_argument("--encoding", choices=ENCODING_POLICIES, default="auto",
                        help="record format: raw uint8, png, or auto = raw up to 64px and png above (default)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help=f"decoding processes (default {default_workers()}; 0 decodes in this process)")
    parser.add_argument("--strict", action="store_true", help="skip images that are not square at --max-res instead of cropping/resizing them")
    parser.add_argument("--limit", type=int, help="use only the first N images in sorted order")
    return parser


def _build(args) -> int:
    summary = build_database(
        args.source, args.out, max_resolution=args.max_res, min_resolution=args.min_res,
        encoding=args.encoding, workers=args.workers, strict=args.strict, limit=args.limit, progress=True,
    )
    if summary.ignored:
        print(f"{PROGRAM}: warning: ignored {len(summary.ignored)} files that are not images "
              f"(e.g. {summary.ignored[0]})", file=sys.stderr)
    print(_summary_text(summary))
    return 0


def _summary_text(summary: BuildSummary) -> str:
    levels = f"{summary.resolutions[0]}..{summary.resolutions[-1]}px"
    encodings = ", ".join(f"{r}px {e}" for r, e in summary.record_encodings.items())
    if summary.already_complete:
        head = f"{summary.path} is already complete: {summary.count} images at {levels}; nothing to do"
    else:
        resumed = f" (resumed after {summary.resumed_at} images)" if summary.resumed_at else ""
        head = (f"wrote {summary.count} images at {levels} to {summary.path} in {summary.seconds:.1f}s{resumed}\n"
                f"  records: {encodings}")
    if not summary.skipped:
        return head
    lines = [f"{head}\nskipped {len(summary.skipped)} unreadable or refused files:"]
    lines += [f"  {name}: {reason}" for name, reason in summary.skipped[:LISTED_SKIPS]]
    if len(summary.skipped) > LISTED_SKIPS:
        lines.append(f"  ... and {len(summary.skipped) - LISTED_SKIPS} more ({PROGRAM} --verify {summary.path} lists all)")
    return "\n".join(lines)


def _verify(path) -> int:
    report = verify_database(path, progress=True)
    for name, reason in report.skipped_at_build:
        print(f"note: the build skipped {name}: {reason}")
    for problem in report.problems:
        print(f"{PROGRAM}: problem: {problem}", file=sys.stderr)
    if report.problems:
        print(f"{report.path}: {len(report.problems)} problems found", file=sys.stderr)
        return 1
    levels = f"{report.resolutions[0]}..{report.resolutions[-1]}px"
    print(f"{report.path}: OK, {report.count} images at {levels} decode and match their pyramid")
    print(f"  {_contents_text(report)}")
    return 0


def _contents_text(report: VerifyReport) -> str:
    """'grey; native 28px (zero border checked); labels: 10 classes; test split: the last 500 images'."""
    parts = ["RGB" if report.channels == 3 else "grey"]
    if report.native_resolution is not None:
        parts.append(f"native {report.native_resolution}px (zero border checked)")
    parts.append(f"labels: {report.classes} classes" if report.classes is not None else "no labels")
    if report.test_count:
        parts.append(f"test split: the last {report.test_count} images")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
