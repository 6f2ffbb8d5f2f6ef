"""Shared test fixtures: the optional FFHQ sample folder, the CUDA skip, host-compiled kernel code."""
import os
from pathlib import Path

import pytest
import torch
from host_kernels import host_bias_act_op, host_upfirdn2d_op

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _ieee_fp32_in_cuda_tests(request):
    """CUDA tests compare with conv2d-based references, which must not run in TF32."""
    if request.node.get_closest_marker("cuda") is None:
        yield
        return
    from alae.kernels.benchmark import ieee_fp32_convolutions

    with ieee_fp32_convolutions():
        yield


@pytest.fixture(scope="session")
def ffhq_samples_dir():
    """The 146 FFHQ-aligned 128x128 PNGs in ../shared/data (or $ALAE_FFHQ_SAMPLES); skip if absent."""
    path = Path(os.environ.get("ALAE_FFHQ_SAMPLES", REPO_ROOT.parent / "shared" / "data" / "ffhq-samples-128"))
    if not path.is_dir():
        pytest.skip(f"FFHQ samples folder not found: {path}")
    return path


@pytest.fixture(scope="session")
def host_upfirdn2d(tmp_path_factory):
    """torch.ops.alae_kernels.upfirdn2d's stand-in compiled from kernels/upfirdn2d.h (host_kernels.py)."""
    return host_upfirdn2d_op(tmp_path_factory.mktemp("upfirdn2d_host"))


@pytest.fixture(scope="session")
def host_bias_act(tmp_path_factory):
    """torch.ops.alae_kernels.bias_act's stand-in compiled from kernels/bias_act.h (host_kernels.py)."""
    return host_bias_act_op(tmp_path_factory.mktemp("bias_act_host"))


TINY_MODEL = dict(resolution=16, channels=[32, 32, 16], latent_dim=16, mapping_layers=2)


def write_tiny_model(path: Path, seed: int = 0) -> Path:
    """A 16 px ALAE with random weights (noise weights and biases too, so every input matters),
    saved as a networks-only alae checkpoint: the stand-in model of the tool tests."""
    from alae.config import ModelConfig, default_config_for, to_dict
    from alae.model import LatentAutoencoder
    from alae.model_files.checkpoint import save_networks_checkpoint

    cfg = default_config_for(ModelConfig(**TINY_MODEL), "tiny")
    torch.manual_seed(seed)
    model = LatentAutoencoder(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and not name.startswith("F."):
                p.copy_(torch.randn_like(p) * 0.3)
        model.w_avg.copy_(model.F(torch.randn(256, cfg.model.latent_dim)).mean(0))
    state = model.state_dict()
    return save_networks_checkpoint(path, to_dict(cfg), None, state, {"format": "test"})


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny.pt")
