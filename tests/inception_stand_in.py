"""Small TorchScript stand-ins for the feature networks of the metrics tests, and the fixtures
that put them (and an empty cache, with no weight files anywhere) in place.

`InceptionStandIn` has the interface alae.metrics uses of NVlabs' inception-2015-12-05.pt
(as clean-fid's InceptionV3W does): ``forward(img, return_features=True)`` takes images in
[0, 255] of any size, resizes them to 299×299 inside (bilinear) and returns features [N, D];
``.layers`` takes 299×299 images already normalized by (x − 128) / 128 and returns
[N, D, 1, 1]. Its features are a fixed random projection of 8×8 average-pooled pixels,
squashed by tanh: cheap, and different for different images.

`UnboundedLPIPSStandIn` has NVlabs vgg16.pt's signature like tests/lpips_stand_in.py but
accepts values outside [0, 255] (PPL's generated images are not clamped); its "LPIPS" is the
squared distance of 1/255-scaled, 4×4-pooled pixels times per-channel weights.
"""
import pytest
import torch
import torch.nn.functional as F
from lpips_stand_in import NVlabsStandIn

from alae.datasets import build_database
from alae.metrics import weight_files as local_files

FEATURES = 24


class StandInLayers(torch.nn.Module):
    def __init__(self, features: int):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("projection", torch.randn(3 * 8 * 8, features, generator=g) / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != 299 or x.shape[3] != 299:
            raise RuntimeError("layers expect 299x299 inputs")
        pooled = F.adaptive_avg_pool2d(x, 8).flatten(1)
        return torch.tanh(pooled @ self.projection)[:, :, None, None]


class InceptionStandIn(torch.nn.Module):
    def __init__(self, features: int = FEATURES):
        super().__init__()
        self.layers = StandInLayers(features)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if not return_features:
            raise RuntimeError("expected return_features=True")
        x = img.to(torch.float32)
        if x.shape[2] != 299 or x.shape[3] != 299:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers((x - 128) / 128).reshape(x.shape[0], -1)


def save_inception_stand_in(folder, features: int = FEATURES):
    path = folder / "inception-2015-12-05.pt"
    torch.jit.save(torch.jit.script(InceptionStandIn(features)), path)
    return path


class UnboundedLPIPSStandIn(NVlabsStandIn):
    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        if resize_images or not return_lpips:
            raise RuntimeError("expected resize_images=False, return_lpips=True")
        pooled = F.avg_pool2d(img / 255.0, 4) * self.weight.sqrt().view(1, 3, 1, 1)
        return pooled.flatten(1)


def save_lpips_stand_in(folder):
    path = folder / "vgg16.pt"
    torch.jit.save(torch.jit.script(UnboundedLPIPSStandIn()), path)
    return path


@pytest.fixture(autouse=True)
def metrics_cache(tmp_path, monkeypatch):
    """An empty $ALAE_CACHE per test; no $ALAE_INCEPTION / $ALAE_LPIPS and an empty clean-fid
    folder, so no weight file is found unless a test names one."""
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ALAE_INCEPTION", raising=False)
    monkeypatch.delenv("ALAE_LPIPS", raising=False)
    monkeypatch.setattr(local_files, "CLEANFID_FOLDER", tmp_path / "cleanfid")
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def stand_ins(tmp_path_factory):
    """(Inception stand-in path, LPIPS stand-in path)."""
    folder = tmp_path_factory.mktemp("weights")
    return save_inception_stand_in(folder), save_lpips_stand_in(folder)


@pytest.fixture(scope="session")
def lfw16(tmp_path_factory):
    """The 100 embedded faces as an alae LMDB at 4..16 px (the tiny model's resolutions)."""
    path = tmp_path_factory.mktemp("lfw16") / "db"
    build_database("lfw", path, max_resolution=16, workers=0)
    return path
