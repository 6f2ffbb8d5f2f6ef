"""What every objective's step shares: the trainable flags of the networks, optimizer steps with
gradient clipping."""
import copy

import torch

from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.objectives.common import adam, optimizer_step, set_trainable

DEMO = ["model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16", "model.mapping_layers=2",
        "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.002, 0.003]"]


def flags(model):
    """{network: the set of requires_grad values of its parameters}, read from named_parameters."""
    found = {}
    for name, p in model.named_parameters():
        found.setdefault(name.split(".")[0], set()).add(p.requires_grad)
    return found


def test_set_trainable_flags_exactly_the_networks_named():
    model = LatentAutoencoder(load_config("demo", DEMO))
    set_trainable(model, F=False, G=False, E=True, D=True)
    assert flags(model) == {"F": {False}, "G": {False}, "E": {True}, "D": {True}}
    set_trainable(model, F=True, G=True, E=False, D=False)
    assert flags(model) == {"F": {True}, "G": {True}, "E": {False}, "D": {False}}
    set_trainable(model, E=True)  # the others keep their flags
    assert flags(model) == {"F": {True}, "G": {True}, "E": {True}, "D": {False}}


def test_each_model_and_its_copies_keep_their_own_flags_after_loading_weights():
    model = LatentAutoencoder(load_config("mnist-vae", ["model.mlp_width=32"]))
    set_trainable(model, E=True, G=True, F=False, D=False)  # a VAE has no F or D: skipped
    twin = copy.deepcopy(model)
    twin.load_state_dict(model.state_dict())
    twin.to(torch.float32)
    set_trainable(twin, E=False, G=False)
    assert flags(twin) == {"E": {False}, "G": {False}} and flags(model) == {"E": {True}, "G": {True}}
    set_trainable(model, G=False)
    assert flags(model) == {"E": {True}, "G": {False}} and flags(twin) == {"E": {False}, "G": {False}}



def test_gradients_are_clipped_to_the_configured_global_norm_per_optimizer():
    """g·min(1, clip/‖g‖) over all of the optimizer's gradients together (musyoku's GradientClipping)."""
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    for clip in (0.0, 0.5, 1e6):
        cfg = load_config("mnist-vae", [f"train.gradient_clip={clip}"])
        copies = [copy.deepcopy(p) for p in params]
        grads = [torch.randn_like(p) * 3 for p in params]
        for p, g in zip(copies, grads):
            p.grad = g.clone()
        optimizer = adam(copies, cfg)
        optimizer_step(optimizer, world_size=1)
        norm = torch.sqrt(sum(g.double().square().sum() for g in grads))
        scale = min(1.0, clip / norm.item()) if clip else 1.0
        for p, g in zip(copies, grads):
            torch.testing.assert_close(p.grad.double(), g.double() * scale, rtol=1e-6, atol=1e-7)
