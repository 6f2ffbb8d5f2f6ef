"""F, G, E, D: structure against the original implementation's state dicts, progressive-growing
continuity, noise control, and the double backward that R1 needs."""
import ast
import importlib
import math
from pathlib import Path

import pytest
import torch

from alae.config import ModelConfig
from alae.networks.layers import downsample2x, upsample2x
from alae.networks.style import Discriminator, Encoder, Generator, MappingNetwork

DATA = Path(__file__).parent / "data"
# Names and shapes of the original ALAE checkpoints (podgorskiy/ALAE); buffers are not parameters.
ORIGINAL_PREFIXES = {"G": "decoder.", "E": "encoder.", "F": "mapping_f.", "D": "mapping_d."}
ORIGINAL_BUFFERS = ("blur.weight", "dlatent_avg.")

# Narrow behaviour-test model: 4..32 px; fused resampling from 16 px so both paths run.
CHANNELS = [32, 32, 16, 16]
LATENT = 32
FUSED_FROM = 16


def build_networks(cfg: ModelConfig) -> dict[str, torch.nn.Module]:
    return {
        "G": Generator(cfg.channels, cfg.latent_dim, cfg.image_channels, cfg.fused_scale_resolution, cfg.to_rgb_gain),
        "E": Encoder(cfg.channels, cfg.latent_dim, cfg.image_channels),
        "F": MappingNetwork(cfg.latent_dim, cfg.mapping_layers, cfg.mapping_lr_mul),
        "D": Discriminator(cfg.latent_dim, cfg.discriminator_layers, cfg.discriminator_outputs,
                           cfg.discriminator_activation, cfg.discriminator_lr_mul),
    }


def original_parameter_sizes(tsv: Path) -> dict[str, list[int]]:
    """Per network, the element counts of the original's parameter tensors."""
    sizes = {name: [] for name in ORIGINAL_PREFIXES}
    for line in tsv.read_text().splitlines():
        key, shape = line.split("\t")
        if any(b in key for b in ORIGINAL_BUFFERS):
            continue
        net = next(n for n, prefix in ORIGINAL_PREFIXES.items() if key.startswith(prefix))
        sizes[net].append(math.prod(ast.literal_eval(shape)))
    return sizes


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (zero-initialized biases and noise weights included) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * (0.3 if p.ndim <= 1 else 1.0))
    return module


def test_parameter_counts_equal_the_original_ffhq_model():
    nets = build_networks(ModelConfig())
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in nets.items()}
    assert counts == {"G": 24_118_379, "E": 26_974_352, "F": 2_101_248, "D": 1_050_624}


@pytest.mark.parametrize("tsv, cfg", [
    ("official-alae-ffhq-state-dict.tsv", ModelConfig()),
    ("official-alae-celeba-hq256-state-dict.tsv",
     ModelConfig(resolution=256, channels=[512, 512, 512, 512, 256, 128, 64])),
])
def test_parameter_tensors_match_the_original_state_dict(tsv, cfg):
    """Same multiset of tensor sizes per network as the original checkpoint, so the same totals."""
    expected = original_parameter_sizes(DATA / tsv)
    for name, net in build_networks(cfg).items():
        assert sorted(p.numel() for p in net.parameters()) == sorted(expected[name]), name


def test_generator_fade_start_equals_upsampled_previous_lod():
    torch.manual_seed(0)
    g = randomize(Generator(CHANNELS, LATENT, fused_scale_resolution=FUSED_FROM)).double()
    styles = torch.randn(3, 2 * len(CHANNELS), LATENT, dtype=torch.float64)
    for lod in range(1, len(CHANNELS)):
        start = g(styles, lod, 0.0, noise="none")
        previous = g(styles, lod - 1, 1.0, noise="none")
        torch.testing.assert_close(start, upsample2x(previous))
        assert not torch.allclose(g(styles, lod, 0.5, noise="none"), start)


def test_encoder_fade_start_equals_previous_lod_on_downsampled_images():
    torch.manual_seed(0)
    e = randomize(Encoder(CHANNELS, LATENT)).double()
    for lod in range(1, len(CHANNELS)):
        r = 4 * 2**lod
        x = torch.randn(3, 3, r, r, dtype=torch.float64)
        torch.testing.assert_close(e(x, lod, 0.0), e(downsample2x(x), lod - 1, 1.0))
        assert not torch.allclose(e(x, lod, 0.5), e(x, lod, 0.0))


def test_output_shapes_at_every_lod():
    g = Generator(CHANNELS, LATENT, fused_scale_resolution=FUSED_FROM)
    e = Encoder(CHANNELS, LATENT)
    styles = torch.randn(2, 2 * len(CHANNELS), LATENT)
    for lod in range(len(CHANNELS)):
        r = 4 * 2**lod
        assert g(styles, lod, 0.5).shape == (2, 3, r, r)
        assert e(torch.randn(2, 3, r, r), lod, 0.5).shape == (2, LATENT)


def test_noise_has_no_effect_at_init_and_is_controllable():
    torch.manual_seed(0)
    g = Generator(CHANNELS, LATENT)
    styles = torch.randn(2, 2 * len(CHANNELS), LATENT)
    lod = 2
    torch.testing.assert_close(g(styles, lod, 1.0, noise="random"), g(styles, lod, 1.0, noise="none"))

    with torch.no_grad():
        for block in g.blocks:
            block.noise_1.weight.fill_(0.5)
            block.noise_2.weight.fill_(0.5)
    assert not torch.allclose(g(styles, lod, 1.0, noise="random"), g(styles, lod, 1.0, noise="none"))

    shapes = g.noise_shapes(lod)
    assert shapes == [(1, 4, 4), (1, 4, 4), (1, 8, 8), (1, 8, 8), (1, 16, 16), (1, 16, 16)]
    noise = [torch.randn(2, *s) for s in shapes]
    torch.testing.assert_close(g(styles, lod, 0.5, noise=noise), g(styles, lod, 0.5, noise=noise))
    torch.manual_seed(7)
    first = g(styles, lod, 1.0)
    torch.manual_seed(7)
    torch.testing.assert_close(g(styles, lod, 1.0), first)
    with pytest.raises(ValueError, match="noise at lod 2"):
        g(styles, lod, 1.0, noise=noise[:-1])


def test_bad_lod_alpha_and_shapes_are_clear_errors():
    g = Generator(CHANNELS, LATENT)
    e = Encoder(CHANNELS, LATENT)
    styles = torch.randn(2, 2 * len(CHANNELS), LATENT)
    with pytest.raises(ValueError, match="lod must be in"):
        g(styles, len(CHANNELS), 1.0)
    with pytest.raises(ValueError, match="alpha must be in"):
        g(styles, 1, 1.5)
    with pytest.raises(ValueError, match="styles must be"):
        g(styles[:, :3], 1, 1.0)
    with pytest.raises(ValueError, match="images at lod 2"):
        e(torch.randn(2, 3, 8, 8), 2, 1.0)


@pytest.mark.parametrize("lod", range(len(CHANNELS)))
def test_r1_double_backward_through_encoder_gives_finite_gradients(lod):
    torch.manual_seed(lod)
    e = Encoder(CHANNELS, LATENT)
    d = Discriminator(LATENT)
    r = 4 * 2**lod
    for alpha in (1.0, 0.5):
        e.zero_grad(set_to_none=True)
        x = torch.randn(4, 3, r, r, requires_grad=True)
        (grad,) = torch.autograd.grad(d(e(x, lod, alpha)).sum(), x, create_graph=True)
        grad.square().sum().backward()
        # Every active parameter but the style biases (constant in x) gets a finite, non-zero gradient.
        active = [p for name, p in e.named_parameters()
                  if name.startswith((f"from_rgb.{lod}.", *(f"blocks.{i}." for i in range(lod + 1))))
                  and not name.endswith(("style_1.bias", "style_2.bias"))]
        assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
                   for p in active)


def test_discriminator_reads_the_middle_output_column_as_the_original():
    torch.manual_seed(0)
    d = randomize(Discriminator(LATENT, num_layers=3, num_outputs=2 * LATENT)).double()
    w = torch.randn(5, LATENT, dtype=torch.float64)
    x = w
    for layer in d.layers:
        assert layer.activation == "linear"
        x = layer(x)
    torch.testing.assert_close(d(w), x[:, LATENT])


def test_discriminator_with_one_output_and_lrelu():
    torch.manual_seed(0)
    d = Discriminator(LATENT, num_layers=3, num_outputs=1, activation="lrelu")
    assert [layer.activation for layer in d.layers] == ["lrelu", "lrelu", "linear"]
    w = torch.randn(5, LATENT, requires_grad=True)
    logits = d(w)
    assert logits.shape == (5,)
    logits.sum().backward()
    assert torch.isfinite(w.grad).all()


def test_mapping_is_invariant_to_the_scale_of_z():
    torch.manual_seed(0)
    f = randomize(MappingNetwork(LATENT, num_layers=4, lr_mul=0.1)).double()
    z = torch.randn(6, LATENT, dtype=torch.float64)
    assert f(z).shape == (6, LATENT)
    torch.testing.assert_close(f(z), f(3.0 * z))


def _cuda_path_vs_ref(device, select):
    """G, E and D in float64 with impl 'cuda' and 'ref' (`select(impl)` makes the ops take it):
    images, R1's input gradient and every parameter gradient of a loss through R1's double
    backward, during a fade-in that runs both the fused and the separate resampling paths."""
    torch.manual_seed(0)
    g = randomize(Generator(CHANNELS, LATENT, fused_scale_resolution=FUSED_FROM), seed=1).double().to(device)
    e = randomize(Encoder(CHANNELS, LATENT), seed=2).double().to(device)
    d = randomize(Discriminator(LATENT), seed=3).double().to(device)
    lod, alpha = len(CHANNELS) - 1, 0.4
    styles = torch.randn(2, 2 * len(CHANNELS), LATENT, dtype=torch.float64).to(device)
    noise = [torch.randn(2, *s, dtype=torch.float64).to(device) for s in g.noise_shapes(lod)]

    def run(impl):
        select(impl)
        for net in (g, e, d):
            net.zero_grad(set_to_none=True)
        images = g(styles, lod, alpha, noise)
        x = images.detach().requires_grad_()
        (r1,) = torch.autograd.grad(d(e(x, lod, alpha)).sum(), x, create_graph=True)
        (r1.square().sum() + e(images, lod, alpha).square().mean()).backward()
        grads = [p.grad for net in (g, e, d) for p in net.parameters()]
        return [images, r1.detach()] + [torch.zeros((), device=device) if t is None else t.clone() for t in grads]

    for i, (a, b) in enumerate(zip(run("cuda"), run("ref"))):
        scale = max(b.abs().max().item(), 1e-30)
        assert (a - b).abs().max().item() <= 1e-10 * scale, f"tensor {i}"


def test_networks_through_the_cuda_path_equal_ref(host_upfirdn2d, host_bias_act, monkeypatch):
    """On CPU: the CUDA path's autograd Functions with the kernels' code compiled for the host."""
    ops = importlib.import_module("alae.kernels.ops")
    layers = importlib.import_module("alae.networks.layers")
    ufd = importlib.import_module("alae.kernels.upfirdn2d")
    ba = importlib.import_module("alae.kernels.bias_act")
    calls = {"upfirdn2d": 0, "bias_act": 0}

    def counted(name, op):
        def call(*args):
            calls[name] += 1
            return op(*args)
        return lambda: call

    monkeypatch.setattr(ufd, "_cuda_op", counted("upfirdn2d", host_upfirdn2d))
    monkeypatch.setattr(ba, "_cuda_op", counted("bias_act", host_bias_act))
    def choose(impl):
        for module in (ops, layers):
            monkeypatch.setattr(module, "resolve_impl", lambda *args, **kw: impl)

    _cuda_path_vs_ref("cpu", choose)
    assert calls["upfirdn2d"] > 0 and calls["bias_act"] > 0


@pytest.mark.cuda
def test_networks_with_cuda_kernels_equal_ref_on_a_gpu(monkeypatch):
    _cuda_path_vs_ref("cuda", lambda impl: monkeypatch.setenv("ALAE_KERNELS", impl))
