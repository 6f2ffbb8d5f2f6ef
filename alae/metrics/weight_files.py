"""Where alae finds the weight files it cannot ship, and where it keeps its caches.

Nothing here downloads. Each lookup takes the path a user gave (a command-line option), then
an environment variable, then a default location, and returns the first file that exists:

- Inception for FID/KID: NVlabs' TorchScript ``inception-2015-12-05.pt`` (the file
  StyleGAN2-ADA and clean-fid use): ``--inception PATH``, ``$ALAE_INCEPTION``,
  ``$ALAE_CACHE/inception-2015-12-05.pt``, then clean-fid's own download folder (``/tmp``).
- LPIPS for PPL and reconstruction LPIPS: NVlabs' ``vgg16.pt`` or a folder with torchvision's
  VGG16 state dict and the `lpips` package's ``vgg.pth`` (see `alae.metrics.lpips`): ``--lpips PATH``,
  ``$ALAE_LPIPS``, ``$ALAE_CACHE/vgg16.pt``.

``$ALAE_CACHE`` defaults to ``~/.cache/alae`` (``$XDG_CACHE_HOME/alae`` when that is set).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
CLEANFID_FOLDER = Path("/tmp")  # clean-fid's InceptionV3W download folder on Linux
LPIPS_FILE = "vgg16.pt"
LPIPS_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"


def cache_root() -> Path:
    """$ALAE_CACHE, else $XDG_CACHE_HOME/alae, else ~/.cache/alae (not created here)."""
    if os.environ.get("ALAE_CACHE"):
        return Path(os.environ["ALAE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "alae"


@dataclass(frozen=True)
class WeightFile:
    """One kind of weight file: its name, where users fetch it, and where alae looks for it."""

    what: str  # e.g. "Inception (FID, KID)"
    file_name: str
    url: str
    env_var: str
    option: str  # the command-line option that names it

    def candidates(self, given: str | os.PathLike | None = None) -> list[Path]:
        """The paths tried, in order: `given`, $env_var, then the default locations."""
        paths = [Path(given).expanduser()] if given else []
        if os.environ.get(self.env_var):
            paths.append(Path(os.environ[self.env_var]).expanduser())
        paths.append(cache_root() / self.file_name)
        if self is INCEPTION:
            paths.append(CLEANFID_FOLDER / self.file_name)
        return paths

    def find(self, given: str | os.PathLike | None = None) -> Path | None:
        """The first existing candidate; a `given` path that does not exist is not skipped but
        returned as None (the user asked for that file), so callers can name it."""
        if given and not Path(given).expanduser().exists():
            return None
        return next((p for p in self.candidates(given) if p.exists()), None)

    def missing_message(self, given: str | os.PathLike | None = None) -> str:
        """One line: what is missing, where it was looked for, where to get it and put it."""
        if given:
            return f"{self.what}: {given} does not exist (download {self.url})"
        return (f"{self.what} weights not found: put {self.file_name} (from {self.url}) at "
                f"{cache_root() / self.file_name}, or pass {self.option} PATH or set ${self.env_var}")


INCEPTION = WeightFile("Inception (FID, KID)", INCEPTION_FILE, INCEPTION_URL, "ALAE_INCEPTION", "--inception")
LPIPS = WeightFile("LPIPS VGG16 (PPL, reconstruction LPIPS)", LPIPS_FILE, LPIPS_URL, "ALAE_LPIPS", "--lpips")
