"""Part 2's second half: the test suite's `cuda`-marked tests (`pytest -m cuda`) in a subprocess,
when the tests/ folder of a clone and pytest are there (an installed copy has neither)."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import alae

REPOSITORY = Path(alae.__file__).resolve().parents[1]
NO_TESTS_COLLECTED = 5  # pytest's exit status when nothing matched the marker


def run_cuda_tests(timeout_s: float, tests: Path = REPOSITORY / "tests") -> tuple[bool | None, str]:
    """(passed: True / False, or None when they could not run, and one line saying what happened)."""
    if importlib.util.find_spec("pytest") is None:
        return None, 'pytest is not installed: pip install -e ".[test]" to run the cuda tests'
    if not tests.is_dir():
        return None, f"no tests folder at {tests} (an installed copy): run from a clone to include the cuda tests"
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", str(tests)]
    try:
        done = subprocess.run(command, cwd=tests.parent, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"pytest -m cuda did not finish in {timeout_s:.0f} s"
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    tally = next((line.strip("= ") for line in reversed(lines) if re.search(r"\d+ (passed|failed|error|skipped|"
                                                                             r"deselected)", line)), "no summary")
    if done.returncode == NO_TESTS_COLLECTED:
        return None, f"pytest -m cuda: no tests selected ({tally})"
    return done.returncode == 0, f"pytest -m cuda: {tally}"
