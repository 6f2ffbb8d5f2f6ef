"""Shared test fixtures: the optional FFHQ sample folder and the CUDA skip."""
import os
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
