"""alae.metrics.lpips against the `lpips` package (random VGG16 and linear weights) and a TorchScript stand-in.

Nothing is downloaded: format-2 weights are random tensors under torchvision's VGG16 key names
(taken from a meta-device torchvision model) and the `lpips` package's linear-layer names,
written in the legacy torch.save format of the real files; format 1 is a scripted stand-in
with the call signature of NVlabs' vgg16.pt.
"""
import shutil
import socket
from pathlib import Path

import pytest
import torch
import torchvision
from lpips_stand_in import save_stand_in

from alae.metrics.lpips import LPIPS, LPIPSError, NVlabsLPIPS, load_lpips

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:FutureWarning")

LINEAR_SHAPES = {"lin0.model.1.weight": 64, "lin1.model.1.weight": 128, "lin2.model.1.weight": 256,
                 "lin3.model.1.weight": 512, "lin4.model.1.weight": 512}


def _save_legacy(state, path):
    torch.save(state, path, _use_new_zipfile_serialization=False)


def _random_vgg16_state(g):
    """torchvision VGG16's state-dict keys: He-initialized convs, small biases; tiny classifier stand-ins."""
    with torch.device("meta"):
        keys = torchvision.models.vgg16(weights=None).state_dict()
    state = {}
    for key, meta in keys.items():
        if not key.startswith("features."):
            state[key] = torch.zeros(1)  # the classifier, unused by LPIPS
        elif key.endswith("weight"):
            state[key] = torch.randn(meta.shape, generator=g) * (2 / meta.shape[1:].numel()) ** 0.5
        else:
            state[key] = 0.1 * torch.randn(meta.shape, generator=g)
    return state


def _random_linear_state(g):
    return {key: torch.rand(1, c, 1, 1, generator=g) for key, c in LINEAR_SHAPES.items()}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(folder, vgg16 state, linear state): format 2 on disk, named as the real files are."""
    g = torch.Generator().manual_seed(0)
    vgg16_state, linear_state = _random_vgg16_state(g), _random_linear_state(g)
    folder = tmp_path_factory.mktemp("lpips_weights")
    _save_legacy(vgg16_state, folder / "vgg16-397923af.pth")
    _save_legacy(linear_state, folder / "vgg.pth")
    return folder, vgg16_state, linear_state


def _images(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _no_network(*args, **kwargs):
    raise AssertionError("the test tried to open a network connection")


def _reference_lpips(tmp_path, monkeypatch, vgg16_state, linear_state):
    """lpips.LPIPS('vgg') with our random weights, built with no network and an empty TORCH_HOME."""
    import lpips

    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    reference = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    assert not torch_home.exists(), "constructing the reference wrote to TORCH_HOME"
    state = reference.state_dict()
    for key in state:
        if key.startswith("net.slice"):  # net.slice{s}.{features index}.{weight|bias}
            _, _, index, name = key.split(".")
            state[key] = vgg16_state[f"features.{index}.{name}"]
        elif key.startswith("lins."):  # lins.{k}.model.1.weight is the same parameter as lin{k}.model.1.weight
            state[key] = linear_state["lin" + key[len("lins."):]]
        elif key.startswith("lin"):
            state[key] = linear_state[key]
    reference.load_state_dict(state)
    return reference.eval()


@pytest.mark.filterwarnings("ignore:The parameter 'pretrained' is deprecated:UserWarning")
@pytest.mark.filterwarnings("ignore:Arguments other than a weight enum:UserWarning")
def test_folder_weights_match_the_lpips_package(weights, tmp_path, monkeypatch):
    folder, vgg16_state, linear_state = weights
    model = load_lpips(folder, "cpu")
    assert isinstance(model, LPIPS)
    reference = _reference_lpips(tmp_path, monkeypatch, vgg16_state, linear_state)
    x = _images(3, 64, seed=1)
    for y in (_images(3, 64, seed=2), (x + 0.1 * _images(3, 64, seed=3)).clamp(-1, 1)):
        ours = model(x, y)
        with torch.no_grad():
            expected = reference(x, y).view(-1)
        assert ours.shape == (3,) and (ours > 0).all()
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=0)


def test_folder_files_are_recognised_by_content_not_name(weights, tmp_path):
    folder, vgg16_state, linear_state = weights
    (tmp_path / "notes.txt").write_text("not weights")
    (tmp_path / "readme.pth").write_text("not weights either")
    torch.save(vgg16_state, tmp_path / "trunk.pt")
    torch.save(linear_state, tmp_path / "linear.pth")
    x, y = _images(2, 32, seed=4), _images(2, 32, seed=5)
    torch.testing.assert_close(load_lpips(str(tmp_path), "cpu")(x, y), load_lpips(folder, "cpu")(x, y))


def test_the_vgg_pth_shipped_with_the_lpips_package_is_recognised(weights, tmp_path):
    import lpips

    shipped = Path(lpips.__file__).parent / "weights" / "v0.1" / "vgg.pth"  # legacy format, CUDA storages
    shutil.copy(shipped, tmp_path / "vgg.pth")
    torch.save(weights[1], tmp_path / "vgg16-397923af.pth")
    model = load_lpips(tmp_path, "cpu")
    expected = torch.load(shipped, map_location="cpu")
    for k, w in enumerate(model.linear):
        torch.testing.assert_close(w, expected[f"lin{k}.model.1.weight"].flatten(), rtol=0, atol=0)


def test_loaded_models_are_frozen_and_in_eval_mode(weights, tmp_path):
    folder, _, _ = weights
    for model in (load_lpips(folder, "cpu"), load_lpips(save_stand_in(tmp_path), "cpu")):
        assert not model.training
        params = list(model.parameters())
        assert params and not any(p.requires_grad for p in params)


def _stand_in_closed_form(x, y):
    weight = torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)
    fx = torch.sqrt((x + 1) * 127.5 * weight + 1).flatten(1)
    fy = torch.sqrt((y + 1) * 127.5 * weight + 1).flatten(1)
    return (fx - fy).square().sum(dim=1)


def test_torchscript_vgg16_gets_images_in_0_255_and_gives_squared_feature_distances(tmp_path):
    model = load_lpips(save_stand_in(tmp_path), "cpu")
    assert isinstance(model, NVlabsLPIPS)
    x, y = _images(4, 16, seed=6), _images(4, 16, seed=7)
    x[0], y[0] = -1.0, 1.0  # black against white: the whole [0, 255] range
    torch.testing.assert_close(model(x, y), _stand_in_closed_form(x, y))


@pytest.mark.parametrize("form", ["folder", "torchscript"])
def test_identical_images_give_zero_and_gradients_reach_the_input(form, weights, tmp_path):
    model = load_lpips(weights[0] if form == "folder" else save_stand_in(tmp_path), "cpu")
    x = _images(2, 32, seed=8)
    assert torch.equal(model(x, x.clone()), torch.zeros(2))
    x.requires_grad_(True)
    model(x, _images(2, 32, seed=9)).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad.abs().sum(dim=(1, 2, 3)) > 0).all()


def test_images_smaller_than_16_or_of_other_shapes_are_rejected(weights):
    model = load_lpips(weights[0], "cpu")
    with pytest.raises(ValueError, match="at least 16×16"):
        model(_images(1, 8, seed=0), _images(1, 8, seed=0))
    with pytest.raises(ValueError, match="one shape"):
        model(_images(1, 16, seed=0), _images(1, 32, seed=0))


def _error(path):
    with pytest.raises(LPIPSError) as caught:
        load_lpips(path, "cpu")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and str(path) in message and "\n" not in message
    return message


def test_a_missing_path_is_an_lpips_error(tmp_path):
    assert "no such file or folder" in _error(tmp_path / "missing")


def test_a_folder_without_one_of_the_two_files_is_an_lpips_error(weights, tmp_path):
    _, vgg16_state, linear_state = weights
    only_trunk, only_linear, empty = tmp_path / "trunk", tmp_path / "linear", tmp_path / "empty"
    for folder in (only_trunk, only_linear, empty):
        folder.mkdir()
    torch.save(vgg16_state, only_trunk / "vgg16-397923af.pth")
    torch.save(linear_state, only_linear / "vgg.pth")
    assert "no LPIPS v0.1 linear weights (vgg.pth)" in _error(only_trunk)
    assert "no torchvision VGG16 state dict" in _error(only_linear)
    assert "found no .pth/.pt files" in _error(empty)
    save_stand_in(empty)
    assert "found vgg16.pt: TorchScript" in _error(empty)


def test_a_folder_with_two_candidates_or_another_network_is_an_lpips_error(weights, tmp_path):
    _, vgg16_state, linear_state = weights
    two, other = tmp_path / "two", tmp_path / "other"
    two.mkdir()
    other.mkdir()
    torch.save(vgg16_state, two / "vgg16-397923af.pth")
    torch.save(linear_state, two / "vgg.pth")
    torch.save(linear_state, two / "vgg-copy.pth")
    assert "more than one" in _error(two) and "vgg-copy.pth" in _error(two)
    truncated = {k: v for k, v in vgg16_state.items() if not k.startswith("features.28.")}
    torch.save(truncated, other / "vgg16-397923af.pth")
    torch.save(linear_state, other / "vgg.pth")
    assert "no torchvision VGG16 state dict" in _error(other)
    assert "vgg.pth: linear weights, vgg16-397923af.pth: not recognised" in _error(other)


def test_a_file_that_is_neither_form_is_an_lpips_error(weights, tmp_path):
    text = tmp_path / "vgg16.pt"
    text.write_text("not a model")
    assert "neither a TorchScript archive" in _error(text)
    lone = tmp_path / "vgg16-397923af.pth"
    torch.save(weights[1], lone)
    assert "alone; pass the folder" in _error(lone)
    other_script = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), other_script)
    assert "not NVlabs' vgg16.pt" in _error(other_script)


@pytest.mark.cuda
def test_cuda_matches_cpu(weights, tmp_path):
    x, y = _images(2, 64, seed=10), _images(2, 64, seed=11)
    for path in (weights[0], save_stand_in(tmp_path)):
        cpu = load_lpips(path, "cpu")(x, y)
        torch.testing.assert_close(load_lpips(path, "cuda")(x.cuda(), y.cuda()).cpu(), cpu, rtol=1e-4, atol=1e-6)
