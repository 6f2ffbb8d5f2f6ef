"""ALAE: latent-space operations (broadcast, style mixing, truncation, running mean of w) and the
sample / reconstruct compositions, on a narrow 32x32 model."""
import torch

from alae import randomness
from alae.config import Config, ModelConfig
from alae.model import LatentAutoencoder

CFG = ModelConfig(resolution=32, channels=[32, 32, 16, 16], latent_dim=32, mapping_layers=2)
LAYERS = CFG.num_style_layers  # 8


def make_model() -> LatentAutoencoder:
    torch.manual_seed(0)
    return LatentAutoencoder(Config(model=CFG))


def test_networks_and_buffer():
    model = make_model()
    assert "w_avg" in dict(model.named_buffers())
    assert all(name.split(".")[0] in "FGED" for name, _ in model.named_parameters())
    assert torch.equal(model.w_avg, torch.zeros(32))


def test_map_and_broadcast_shapes():
    model = make_model()
    w = model.map(torch.randn(5, 32))
    styles = model.broadcast(w)
    assert styles.shape == (5, LAYERS, 32)
    assert all(torch.equal(styles[:, k], w) for k in range(LAYERS))


def test_truncation_identity_at_psi_1_and_mean_at_psi_0_on_cutoff_layers_only():
    model = make_model()
    model.w_avg.copy_(torch.randn(32))
    styles = torch.randn(3, LAYERS, 32)
    torch.testing.assert_close(model.truncate(styles, 1.0, 5), styles)
    truncated = model.truncate(styles, 0.0, 5)
    torch.testing.assert_close(truncated[:, :5], model.w_avg.expand(3, 5, 32))
    torch.testing.assert_close(truncated[:, 5:], styles[:, 5:])
    half = model.truncate(styles, 0.5, 5)
    torch.testing.assert_close(half[:, :5], (styles[:, :5] + model.w_avg) / 2)


def test_style_mixing_probability_0_keeps_w1_everywhere():
    model = make_model()
    w1, w2 = torch.randn(16, 32), torch.randn(16, 32)
    crossover = randomness.crossover_layers(16, slice(None), 8, 0.0, 0, "mix")
    torch.testing.assert_close(model.crossover_styles(w1, w2, crossover, lod=3), model.broadcast(w1))


def test_style_mixing_probability_1_crosses_over_inside_the_active_layers():
    model = make_model()
    n = 256
    w1, w2 = torch.randn(n, 32), torch.randn(n, 32)
    for lod in range(4):
        active = 2 * (lod + 1)
        crossover = randomness.crossover_layers(n, slice(None), active, 1.0, lod, "mix")
        styles = model.crossover_styles(w1, w2, crossover, lod=lod)
        from_w2 = (styles == w2[:, None]).all(dim=2)
        from_w1 = (styles == w1[:, None]).all(dim=2)
        assert torch.all(from_w1 ^ from_w2)
        crossover = from_w1.sum(dim=1) - from_w1[:, active:].sum(dim=1)
        assert torch.all(from_w1[:, active:]), "inactive layers keep w1"
        assert crossover.min() >= 1 and crossover.max() <= active - 1
        assert set(crossover.tolist()) == set(range(1, active)), "every crossover layer occurs"
        # A prefix of w1, then w2 up to the last active layer.
        layer = torch.arange(LAYERS)
        expected_w2 = (layer[None] >= crossover[:, None]) & (layer[None] < active)
        assert torch.equal(from_w2, expected_w2)


def test_crossover_styles_with_explicit_layers():
    model = make_model()
    w1, w2 = torch.randn(3, 32), torch.randn(3, 32)
    styles = model.crossover_styles(w1, w2, torch.tensor([1, 3, 4]), lod=1)
    uses_w2 = (styles == w2[:, None]).all(dim=2)
    assert uses_w2.tolist() == [
        [False, True, True, True, False, False, False, False],
        [False, False, False, True, False, False, False, False],
        [False] * 8,
    ]


def test_update_w_avg_is_an_exponential_moving_average_without_grad():
    model = make_model()
    model.w_avg.fill_(1.0)
    w = torch.randn(10, 32, requires_grad=True)
    model.update_w_avg(w, 0.9)
    torch.testing.assert_close(model.w_avg, 0.9 * torch.ones(32) + 0.1 * w.detach().mean(0))
    assert not model.w_avg.requires_grad


def test_sample_and_reconstruct_shapes_and_truncation_use():
    model = make_model()
    z = torch.randn(2, 32)
    for lod in range(4):
        r = 4 * 2**lod
        assert model.sample(z, lod, 0.5).shape == (2, 3, r, r)
        x = torch.randn(2, 3, r, r)
        assert model.encode(x, lod, 1.0).shape == (2, 32)
        assert model.discriminate(model.encode(x, lod, 1.0)).shape == (2,)
        assert model.reconstruct(x, lod, 1.0, noise="none").shape == (2, 3, r, r)
    model.w_avg.copy_(torch.randn(32))
    truncated = model.sample(z, 3, 1.0, psi=0.0, cutoff=LAYERS, noise="none")
    from_mean = model.generate(model.broadcast(model.w_avg.expand(2, 32)), 3, 1.0, noise="none")
    torch.testing.assert_close(truncated, from_mean)


def test_reconstruct_is_generate_of_broadcast_encode():
    model = make_model()
    x = torch.randn(2, 3, 16, 16)
    expected = model.generate(model.broadcast(model.encode(x, 2, 0.3)), 2, 0.3, noise="none")
    torch.testing.assert_close(model.reconstruct(x, 2, 0.3, noise="none"), expected)


def test_the_mlp_options_build_pytorch_examples_vae_and_the_originals_identity_mapping():
    from alae.config import load_config
    from alae.networks.dense import OrdinaryLinear

    cfg = load_config("mnist-vae", ["model.mlp_width=400", "model.mlp_layers=1", "model.mlp_activation=relu",
                                    "model.layers=ordinary", "model.init=torch", "model.latent_dim=20"])
    model = LatentAutoencoder(cfg)
    # pytorch/examples vae/main.py: fc1 784→400, fc21 and fc22 400→20 (here one 400→40), fc3 20→400, fc4 400→784
    expected = (784 * 400 + 400) + (400 * 40 + 40) + (20 * 400 + 400) + (400 * 784 + 784)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert all(isinstance(layer, OrdinaryLinear) for layer in [*model.E.layers, *model.G.layers])
    assert [layer.activation for layer in model.G.layers] == ["relu", "linear"]
    alae_cfg = load_config("mnist-alae", ["model.mapping_layers=0"])
    identity = LatentAutoencoder(alae_cfg).F
    z = torch.randn(3, alae_cfg.model.latent_dim)
    assert torch.equal(identity(z), z) and not list(identity.parameters())
