"""The EMA of the networks: one multi-tensor update, the same numbers as a lerp per parameter."""
import copy

import torch

from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.ema import update_ema


def networks(config: str, overrides: list[str]) -> tuple[LatentAutoencoder, LatentAutoencoder]:
    torch.manual_seed(0)
    model = LatentAutoencoder(load_config(config, overrides))
    ema = copy.deepcopy(model).requires_grad_(False)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model.w_avg.normal_()
    return model, ema


def test_the_ema_update_equals_a_lerp_per_parameter_and_the_closed_form():
    model, ema = networks("demo", ["model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16",
                                   "model.mapping_layers=2", "train.batch_per_lod=[8, 8]",
                                   "train.lr_per_lod=[0.002, 0.003]"])
    by_hand = copy.deepcopy(ema)
    before = {k: v.double() for k, v in ema.state_dict().items()}
    beta = 0.5 ** (8 / 10_000)
    update_ema(ema, model, beta)
    with torch.no_grad():  # the per-parameter loop the update replaces
        for p_ema, p in zip(by_hand.parameters(), model.parameters()):
            p_ema.lerp_(p, 1.0 - beta)
    for (name, a), b in zip(ema.named_parameters(), by_hand.parameters()):
        assert torch.equal(a, b), name
        # Closed form in float64: beta·ema + (1 − beta)·model, to float32 rounding of the result.
        expected = beta * before[name] + (1 - beta) * model.state_dict()[name].double()
        assert torch.allclose(a.double(), expected, rtol=0, atol=2 * torch.finfo(torch.float32).eps *
                              expected.abs().max().item())
    assert torch.equal(ema.w_avg, model.w_avg)  # buffers are copied
    assert not any(p.requires_grad for p in ema.parameters())


def test_half_life_zero_copies_the_networks():
    model, ema = networks("mnist-vae", ["model.mlp_width=32"])
    update_ema(ema, model, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.state_dict().values(), model.state_dict().values()))
