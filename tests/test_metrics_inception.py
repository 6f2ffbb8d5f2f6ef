"""The Inception feature network: clean-fid's two modes, the weight lookup, the offline error, the digest record."""
import hashlib
import json
import urllib.error

import inception_stand_in as stand_in
import numpy as np
import pytest
import torch
from PIL import Image

from alae.metrics import inception
from alae.metrics.errors import MetricError
from alae.metrics.inception import InceptionFeatures, find_inception
from alae.metrics.weight_files import INCEPTION, INCEPTION_URL

metrics_cache, stand_ins = stand_in.metrics_cache, stand_in.stand_ins  # pytest fixtures


def images(n=5, side=20, channels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, side, side), generator=g, dtype=torch.uint8)


def pil_bicubic_299(image: np.ndarray) -> np.ndarray:
    """clean-fid's clean resize restated: each channel as a float32 PIL image, bicubic to 299×299, clipped."""
    channels = [np.asarray(Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
                           .resize((299, 299), resample=Image.BICUBIC)).clip(0, 255) for c in range(3)]
    return np.stack(channels, axis=2)


def test_clean_mode_is_pil_bicubic_then_normalized_layers(stand_ins):
    x = images()
    ours = InceptionFeatures(stand_ins[0], "clean", "cpu")(x)
    network = torch.jit.load(str(stand_ins[0]))
    resized = torch.from_numpy(np.stack([pil_bicubic_299(im) for im in x.permute(0, 2, 3, 1).numpy()]))
    reference = network.layers((resized.permute(0, 3, 1, 2) - 128) / 128).reshape(len(x), -1)
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)


def test_legacy_tensorflow_mode_resizes_inside_the_network(stand_ins):
    x = images()
    ours = InceptionFeatures(stand_ins[0], "legacy_tensorflow", "cpu")(x)
    network = torch.jit.load(str(stand_ins[0]))
    torch.testing.assert_close(ours, network(x.float(), return_features=True))
    assert not torch.allclose(ours, InceptionFeatures(stand_ins[0], "clean", "cpu")(x), atol=1e-3)


def test_grey_images_are_repeated_to_three_channels(stand_ins):
    grey = images(channels=1)
    features = InceptionFeatures(stand_ins[0], "legacy_tensorflow", "cpu")
    torch.testing.assert_close(features(grey), features(grey.repeat(1, 3, 1, 1)))


def test_an_unknown_mode_is_refused(stand_ins):
    with pytest.raises(MetricError, match="must be one of clean, legacy_tensorflow"):
        InceptionFeatures(stand_ins[0], "legacy_pytorch", "cpu")


def offline(fpath):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_offline_without_weights_the_error_names_the_file_the_url_and_where_to_put_it(monkeypatch, metrics_cache):
    monkeypatch.setattr(inception, "check_download_inception", offline)
    with pytest.raises(MetricError) as error:
        find_inception(None, download=True)
    message = str(error.value)
    assert message == INCEPTION.missing_message() and "\n" not in message
    assert "inception-2015-12-05.pt" in message and INCEPTION_URL in message
    assert str(metrics_cache / "inception-2015-12-05.pt") in message and "--inception" in message
    assert not (metrics_cache / "inception-2015-12-05.pt").exists()


def test_online_the_file_is_downloaded_into_the_cache_root_and_a_broken_download_leaves_nothing(
        monkeypatch, metrics_cache, stand_ins):
    def broken(fpath):
        with open(f"{fpath}/inception-2015-12-05.pt", "wb") as f:
            f.write(stand_ins[0].read_bytes()[:1000])
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(inception, "check_download_inception", broken)
    with pytest.raises(MetricError, match="weights not found"):
        find_inception(None, download=True)
    assert not (metrics_cache / "inception-2015-12-05.pt").exists()

    def download(fpath):
        target = f"{fpath}/inception-2015-12-05.pt"
        with open(target, "wb") as f:
            f.write(stand_ins[0].read_bytes())
        return target

    monkeypatch.setattr(inception, "check_download_inception", download)
    path = find_inception(None, download=True)
    assert path == metrics_cache / "inception-2015-12-05.pt" and path.read_bytes() == stand_ins[0].read_bytes()
    assert sorted(p.name for p in metrics_cache.iterdir()) == ["inception-2015-12-05.pt"]  # no temporary folder left
    assert InceptionFeatures(path, "clean", "cpu")(images()).shape == (5, stand_in.FEATURES)


def test_a_given_path_is_used_or_named_and_never_downloaded(monkeypatch, tmp_path, stand_ins):
    monkeypatch.setattr(inception, "check_download_inception", lambda fpath: pytest.fail("downloaded"))
    assert find_inception(stand_ins[0], download=True) == stand_ins[0]
    with pytest.raises(MetricError, match=f"{tmp_path / 'nope.pt'} does not exist"):
        find_inception(tmp_path / "nope.pt", download=True)
    monkeypatch.setenv("ALAE_INCEPTION", str(stand_ins[0]))
    assert find_inception(None, download=True) == stand_ins[0]


def test_files_without_inceptions_interface_are_one_line_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(MetricError, match="cannot load .*junk.pt as TorchScript"):
        InceptionFeatures(tmp_path / "junk.pt", "clean", "cpu")

    class Other(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    torch.jit.save(torch.jit.script(Other()), tmp_path / "other.pt")
    with pytest.raises(MetricError, match="without forward\\(img, return_features=...\\) and .layers"):
        InceptionFeatures(tmp_path / "other.pt", "clean", "cpu")


def test_the_digest_is_the_files_sha256_remembered_by_path_size_and_mtime(tmp_path, metrics_cache, stand_ins):
    path = tmp_path / "inception-2015-12-05.pt"
    path.write_bytes(stand_ins[0].read_bytes())
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert inception.file_digest(path) == expected
    table = json.loads((metrics_cache / "metrics" / "file-digests.json").read_text())
    assert list(table.values()) == [expected]
    # a remembered digest is not recomputed: forge the record and see it returned
    (record,) = table
    (metrics_cache / "metrics" / "file-digests.json").write_text(json.dumps({record: "remembered"}))
    assert inception.file_digest(path) == "remembered"
    path.write_bytes(path.read_bytes() + b"changed")  # new size and mtime: hashed again
    assert inception.file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()
