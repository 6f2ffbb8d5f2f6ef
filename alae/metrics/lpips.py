"""LPIPS perceptual distance (Zhang et al. 2018, VGG16 trunk, v0.1 linear weights) from weights on disk.

Nothing is ever downloaded. `load_lpips` takes either of the two forms users of StyleGAN2-ADA
and of the `lpips` package keep:

1. NVlabs' TorchScript ``vgg16.pt`` (stylegan2-ada-pytorch metrics and projector), called as
   ``model(images_0_255, resize_images=False, return_lpips=True)``; it returns one feature
   vector per image whose squared Euclidean distances are LPIPS.
2. A folder holding torchvision's VGG16 ImageNet state dict (``vgg16-397923af.pth``) and the
   `lpips` package's v0.1 linear weights (``vgg.pth``, keys ``lin0.model.1.weight`` …
   ``lin4.model.1.weight``); files are recognised by their keys, not their names.

Either way the result maps two [N, 3, H, W] batches in [−1, 1] to distances [N], is
differentiable with respect to the images (a loss for refining latents), and has frozen weights.
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from alae.errors import UserError

# From the `lpips` package (ScalingLayer): images in [−1, 1] are mapped by (x − shift) / scale.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
LPIPS_NORM_EPS = 1e-10  # `lpips` normalize_tensor: f / (‖f‖ over channels + eps)

# torchvision's VGG16 `features` up to relu5_3: ints are 3×3 convs (each followed by a ReLU),
# 'M' a 2×2 max pool; module indices (state-dict keys `features.N.*`) follow torchvision's.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG16_TAPS = (3, 8, 15, 22, 29)  # module indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)  # channels at those taps
MIN_SIZE = 16  # four max pools before relu5_3: smaller images leave it empty
VGG16_FILE = "torchvision VGG16 state dict (vgg16-397923af.pth)"
LINEAR_FILE = "LPIPS v0.1 linear weights (vgg.pth)"


class LPIPSError(UserError, ValueError):
    """LPIPS weights that are missing or not in a known form; the message names the path."""


def _vgg16_features() -> nn.Sequential:
    """torchvision VGG16's `features` up to relu5_3, 30 modules, random: [N, 3, H, W] → [N, 512, H/16, W/16]."""
    layers: list[nn.Module] = []
    in_channels = 3
    for spec in VGG16_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, spec, 3, padding=1), nn.ReLU()]
            in_channels = spec
    return nn.Sequential(*layers)


def _check_images(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3 or x.shape != y.shape:
        raise ValueError(f"expected two [N, 3, H, W] batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[2:]) < MIN_SIZE:
        raise ValueError(f"LPIPS (VGG16) needs images of at least {MIN_SIZE}×{MIN_SIZE} pixels, "
                         f"got {x.shape[2]}×{x.shape[3]}")


class LPIPS(nn.Module):
    """LPIPS v0.1 'vgg': [N, 3, H, W] × 2 in [−1, 1], H, W ≥ 16 → distances [N] (≥ 0, 0 for x == y).

    Both batches go through VGG16 after the LPIPS scaling; at each of the five taps the features
    are unit-normalized over channels, their squared differences weighted per channel by the
    linear weights and averaged over space, and the five layers are summed.

    vgg16_state: torchvision's VGG16 state dict (its `features.N.weight/bias` are used).
    linear: the five per-channel weights, [C] each for C in LPIPS_CHANNELS.
    """

    def __init__(self, vgg16_state: Mapping[str, torch.Tensor], linear: Sequence[torch.Tensor]):
        super().__init__()
        self.features = _vgg16_features()
        prefix = "features."
        self.features.load_state_dict({k[len(prefix):]: v for k, v in vgg16_state.items() if k.startswith(prefix)})
        self.linear = nn.ParameterList(nn.Parameter(w.detach().float().clone()) for w in linear)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_images(x, y)
        n = x.shape[0]
        h = (torch.cat([x, y]) - self.shift) / self.scale
        weights = dict(zip(VGG16_TAPS, self.linear))
        distance = h.new_zeros(n)
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in weights:
                f = h / (torch.linalg.vector_norm(h, dim=1, keepdim=True) + LPIPS_NORM_EPS)
                d = (f[:n] - f[n:]).square() * weights[index].view(1, -1, 1, 1)
                distance = distance + d.sum(dim=1).mean(dim=(1, 2))
        return distance


class NVlabsLPIPS(nn.Module):
    """LPIPS through NVlabs' TorchScript VGG16: [N, 3, H, W] × 2 in [−1, 1] → distances [N].

    The images are mapped to [0, 255] and passed at their own size (resize_images=False);
    the distance is the squared Euclidean distance of the returned feature vectors.
    """

    def __init__(self, vgg16: torch.jit.ScriptModule):
        super().__init__()
        self.vgg16 = vgg16
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_images(x, y)
        f = self.vgg16((torch.cat([x, y]) + 1) * 127.5, resize_images=False, return_lpips=True)
        return (f[: x.shape[0]] - f[x.shape[0]:]).square().sum(dim=1)


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip whose top folder holds constants.pkl (torch.jit.save's layout)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.count("/") == 1 and name.endswith("/constants.pkl") for name in archive.namelist())


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor] | None:
    """The tensors of a torch.save'd state dict on the CPU, or None if the file is none."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError):
        return None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return None
    return state


def _vgg16_shapes() -> dict[str, tuple[int, ...]]:
    """The `features.N.weight/bias` keys of torchvision's VGG16 state dict and their shapes."""
    with torch.device("meta"):
        features = _vgg16_features()
    return {f"features.{k}": tuple(v.shape) for k, v in features.state_dict().items()}


def _is_vgg16(state: Mapping[str, torch.Tensor]) -> bool:
    """Exactly VGG16's 13 convs among the `features.*` keys, with their shapes (not VGG16-BN, VGG19)."""
    return {k: tuple(v.shape) for k, v in state.items() if k.startswith("features.")} == _vgg16_shapes()


def _linear_keys() -> list[str]:
    """The `lpips` package's v0.1 'vgg' linear-layer keys, lin0 … lin4."""
    return [f"lin{k}.model.1.weight" for k in range(len(LPIPS_CHANNELS))]


def _is_linear(state: Mapping[str, torch.Tensor]) -> bool:
    """The five LPIPS v0.1 'vgg' linear layers, [1, C, 1, 1] each."""
    shapes = zip(_linear_keys(), LPIPS_CHANNELS)
    return all(key in state and tuple(state[key].shape) == (1, c, 1, 1) for key, c in shapes)


def _kind(state: Mapping[str, torch.Tensor] | None) -> str | None:
    """'vgg16', 'linear', or None for a state dict of neither (or no state dict)."""
    if state is None:
        return None
    if _is_vgg16(state):
        return "vgg16"
    if _is_linear(state):
        return "linear"
    return None


def _load_folder(folder: Path) -> LPIPS:
    """Format 2: the one VGG16 state dict and the one linear-weights file among the folder's .pth/.pt files."""
    files: dict[Path, tuple[str | None, Mapping[str, torch.Tensor] | None]] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".pth", ".pt")):
        if _is_torchscript(path):
            files[path] = ("torchscript", None)
        else:
            state = _read_state_dict(path)
            files[path] = (_kind(state), state)
    labels = {"vgg16": "VGG16", "linear": "linear weights", "torchscript": "TorchScript", None: "not recognised"}
    listing = ", ".join(f"{p.name}: {labels[kind]}" for p, (kind, _) in files.items()) or "no .pth/.pt files"
    states = {}
    for kind, what in (("vgg16", VGG16_FILE), ("linear", LINEAR_FILE)):
        matches = [p for p, (k, _) in files.items() if k == kind]
        if not matches:
            raise LPIPSError(f"{folder}: no {what} in this folder (found {listing})")
        if len(matches) > 1:
            raise LPIPSError(f"{folder}: more than one {what} in this folder ({', '.join(p.name for p in matches)}); "
                             "keep one")
        states[kind] = files[matches[0]][1]
    return LPIPS(states["vgg16"], [states["linear"][key].flatten() for key in _linear_keys()])


def _load_torchscript(path: Path) -> NVlabsLPIPS:
    """Format 1, after checking that forward takes NVlabs' resize_images and return_lpips arguments."""
    with warnings.catch_warnings():  # vgg16.pt exists only as TorchScript, whatever torch thinks of torch.jit
        warnings.filterwarnings("ignore", message="`torch.jit.load` is deprecated", category=FutureWarning)
        module = torch.jit.load(path, map_location="cpu")
    arguments = {a.name for a in module.forward.schema.arguments}
    if not {"resize_images", "return_lpips"} <= arguments:
        takes = ", ".join(sorted(arguments - {"self"}))
        raise LPIPSError(f"{path}: a TorchScript module whose forward takes ({takes}), "
                         "not NVlabs' vgg16.pt (images, resize_images, return_lpips)")
    return NVlabsLPIPS(module)


def load_lpips(path: str | Path, device: torch.device | str) -> nn.Module:
    """LPIPS from NVlabs' TorchScript vgg16.pt or a folder with a VGG16 state dict and vgg.pth.

    Returns a frozen module in eval mode on `device` whose forward(x, y) maps two
    [N, 3, H, W] batches in [−1, 1] (H, W ≥ 16) to distances [N]. Raises LPIPSError for a
    missing path, a folder without both files, or a file that is not a TorchScript archive.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder(path).to(device)
    if not path.is_file():
        raise LPIPSError(f"{path}: no such file or folder (expected NVlabs' vgg16.pt or a folder "
                         f"holding the {VGG16_FILE} and the {LINEAR_FILE})")
    if _is_torchscript(path):
        return _load_torchscript(path).to(device)
    kind = _kind(_read_state_dict(path))
    if kind is not None:
        what = VGG16_FILE if kind == "vgg16" else LINEAR_FILE
        raise LPIPSError(f"{path}: a {what} alone; pass the folder holding both the {VGG16_FILE} "
                         f"and the {LINEAR_FILE}")
    raise LPIPSError(f"{path}: neither a TorchScript archive (NVlabs' vgg16.pt) nor a folder; "
                     f"expected vgg16.pt or a folder holding the {VGG16_FILE} and the {LINEAR_FILE}")
