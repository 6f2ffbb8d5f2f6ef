"""Shared test fixtures: the optional FFHQ sample folder, the CUDA skip, host-compiled kernel code."""
import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ffhq_samples_dir():
    """The 146 FFHQ-aligned 128x128 PNGs in ../shared/data (or $ALAE_FFHQ_SAMPLES); skip if absent."""
    path = Path(os.environ.get("ALAE_FFHQ_SAMPLES", REPO_ROOT.parent / "shared" / "data" / "ffhq-samples-128"))
    if not path.is_dir():
        pytest.skip(f"FFHQ samples folder not found: {path}")
    return path


def compile_host_harness(tmp_dir: Path, source: str) -> ctypes.CDLL:
    """Compile a C++ harness that includes the kernels' headers with g++ and load it (skip without g++)."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not found")
    (tmp_dir / "harness.cpp").write_text(source)
    subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", f"-I{REPO_ROOT / 'kernels'}", "harness.cpp",
                    "-o", "harness.so"], cwd=tmp_dir, check=True)
    return ctypes.CDLL(str(tmp_dir / "harness.so"))
