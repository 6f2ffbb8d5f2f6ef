"""What every command line shares: one-line errors, output folders, the device, ranges.

A tool's `main(argv)` parses its arguments and hands its body to `run_tool`, which turns the
errors a user can fix (`alae.errors.USER_ERRORS`) into one line `alae-NAME: error: ...` and
exit status 1. Output folders come from `prepare_output_dir`: results of two runs never mix
silently.
"""
from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from alae.errors import USER_ERRORS, UserError
from alae.files import create_folder, save_json
from alae.threads import release_threads

RUN_RECORD = "run.json"  # written into every tool output folder: the command that made it


class ToolError(UserError, ValueError):
    """A problem with a tool's arguments that the user can fix; the message is one line."""


def run_tool(prog: str, body: Callable[[], int | None], on_error: Callable[[str], None] | None = None) -> int:
    """Run a command's body: 0 on success, 1 with `prog: error: message` on a user error
    (`on_error(message)` is called first, e.g. to log it), 130 on Ctrl-C (128 + the `signum`
    of a KeyboardInterrupt that carries one, with its message: a training stopped by SIGTERM)."""
    try:
        return body() or 0
    except USER_ERRORS as e:
        message = f"{prog}: error: {e}"
        if on_error is not None:
            on_error(message)
        print(message, file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"{prog}: {str(e) or 'interrupted'}", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    finally:
        release_threads()  # the tool no longer computes: the others sharing its cores take them back


def warn(prog: str, message: str) -> None:
    print(f"{prog}: warning: {message}", file=sys.stderr)


def prepare_output_dir(path: str | Path, overwrite: bool, prog: str, argv: list[str] | None = None) -> Path:
    """Create the output folder `path` and record the command in it (`run.json`).

    An existing non-empty folder is refused, so results of two runs never mix. With
    `overwrite`, a folder that an alae tool made earlier (it holds `run.json`) is emptied first;
    any other non-empty folder is still refused rather than deleted.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ToolError(f"--out {out} exists and is not a folder")
    create_folder(out, "--out")  # a file in the way or a read-only file system: one line
    existing = sorted(out.iterdir()) if out.is_dir() else []
    if existing:
        if not overwrite:
            raise ToolError(f"--out {out} already holds {len(existing)} entries; choose a new folder or pass "
                            f"--overwrite to replace an earlier alae output there")
        if not (out / RUN_RECORD).is_file():
            raise ToolError(f"--out {out} is not empty and was not written by an alae tool (no {RUN_RECORD}); "
                            f"refusing to delete it")
        for entry in existing:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    save_json({"tool": prog, "argv": list(sys.argv[1:] if argv is None else argv),
               "time": time.strftime("%Y-%m-%d %H:%M:%S")}, out / RUN_RECORD)
    return out


MODEL_HELP = "run directory, alae checkpoint or original ALAE .pth"


def add_model_and_output_arguments(p) -> None:
    """The MODEL positional and --out / --overwrite, as every tool that uses a model takes them."""
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--out", required=True, help="output folder (must be new or empty; see --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier alae output in --out")


def resolve_device(name: str) -> torch.device:
    """--device: 'auto' → cuda if available else cpu; 'cuda' without a GPU is a ToolError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ToolError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)


def parse_int_ranges(text: str, what: str) -> list[int]:
    """'0-3,7,10-11' → [0, 1, 2, 3, 7, 10, 11]: non-negative integers and inclusive ranges, in the
    order given, duplicates dropped. ToolError naming `what` otherwise."""
    values: list[int] = []
    for part in str(text).split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds) or int(bounds[0]) > int(bounds[-1]):
            raise ToolError(f"{what}: {text!r} is not a list of non-negative integers and ranges such as 0-31 or 0,4,9")
        values.extend(range(int(bounds[0]), int(bounds[-1]) + 1))
    return list(dict.fromkeys(values))
