"""A small TorchScript module with the call signature of NVlabs' vgg16.pt (LPIPS features), for tests."""
import torch


class NVlabsStandIn(torch.nn.Module):
    """NVlabs vgg16.pt's call signature; features sqrt(w_c · image + 1) per pixel, flattened."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([0.5, 1.0, 2.0]))

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_lpips: bool = False) -> torch.Tensor:
        if resize_images or not return_lpips:
            raise RuntimeError("expected resize_images=False, return_lpips=True")
        if bool(img.min() < 0.0) or bool(img.max() > 255.0):
            raise RuntimeError("expected images in [0, 255]")
        return torch.sqrt(img * self.weight.view(1, 3, 1, 1) + 1.0).flatten(1)


def save_stand_in(folder):
    path = folder / "vgg16.pt"
    torch.jit.save(torch.jit.script(NVlabsStandIn()), path)
    return path
