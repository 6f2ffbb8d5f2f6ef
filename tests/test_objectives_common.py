"""What every objective's step shares: the trainable flags of the networks."""
import copy

import torch

from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.objectives.common import set_trainable

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
