"""One ALAE iteration: the options that reproduce the original code's behaviour, and bf16 autocast
against float32 on the CPU."""
import copy

import pytest
import torch

from alae import distributed, randomness
from alae.config import load_config
from alae.model import LatentAutoencoder
from alae.training.data import NO_LABEL, Batch
from alae.training.objectives.alae import discriminator_loss, generator_loss, latent_loss, make_optimizers, train_step
from alae.training.schedule import Phase

BATCH = 6
PHASE = Phase(lod=2, alpha=1.0, batch=BATCH, lr=0.002, resolution=16)
CTX = distributed.Context(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def tiny(*overrides):
    return load_config("demo", ["model.resolution=16", "model.channels=[16, 16, 8]", "model.latent_dim=16",
                                "model.mapping_layers=2", f"train.batch_per_lod=[{BATCH}, {BATCH}, {BATCH}]",
                                "train.lr_per_lod=[0.002, 0.002, 0.002]", "alae.r1_interval=1", *overrides])


def reals(seed=0):
    images = torch.randint(0, 256, (BATCH, 3, 16, 16), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return Batch(images, torch.full((BATCH,), NO_LABEL))


def recorded_step(cfg, **patch):
    """Run one train_step on a fresh model, recording the calls of the model methods in `patch`."""
    torch.manual_seed(0)
    model = LatentAutoencoder(cfg)
    calls = {name: [] for name in patch}
    for name in patch:
        real = getattr(model, name)

        def recorder(*args, _real=real, _name=name, **kwargs):
            calls[_name].append((args, kwargs))
            return _real(*args, **kwargs)
        setattr(model, name, recorder)
    initial_mapping = copy.deepcopy(model.F)
    train_step(model, make_optimizers(model, cfg), reals(), PHASE, cfg, CTX, step=3)
    return calls, initial_mapping


def test_w_avg_is_updated_once_after_the_generator_step_or_after_every_step_as_the_original():
    once, _ = recorded_step(tiny(), update_w_avg=True)
    every, mapping = recorded_step(tiny("alae.w_avg_updates=every_step"), update_w_avg=True)
    assert len(once["update_w_avg"]) == 1 and len(every["update_w_avg"]) == 3
    # The discriminator step's update is the batch mean of F(z) for its z, with F as it was
    # before any optimizer step (F does not learn in that step).
    z = randomness.global_normal((BATCH, 16), slice(None), 0, 3, "d", "z1")
    with torch.no_grad():
        expected = mapping(z).mean(0)
    torch.testing.assert_close(every["update_w_avg"][0][0][0][0], expected)
    torch.testing.assert_close(once["update_w_avg"][0][0][0], every["update_w_avg"][1][0][0])  # the G step's


def noise_maps(calls):
    return [kwargs["noise"] if "noise" in kwargs else args[3] for args, kwargs in calls["generate"]]


@pytest.mark.parametrize("mode", ["per_sample", "per_batch"])
def test_first_noise_map_is_shared_by_the_batch_only_as_the_original(mode):
    calls, _ = recorded_step(tiny(f"train.first_noise={mode}"), generate=True)
    for maps in noise_maps(calls):
        assert [tuple(m.shape) for m in maps] == [(BATCH, 1, 4 * 2**i, 4 * 2**i) for i in range(3) for _ in range(2)]
        shared = torch.equal(maps[0], maps[0][:1].expand_as(maps[0]))
        assert shared == (mode == "per_batch")
        assert not torch.equal(maps[1], maps[1][:1].expand_as(maps[1]))  # every other map stays per sample


@pytest.mark.parametrize("mode", ["per_sample", "per_batch"])
def test_style_mixing_decides_per_sample_or_once_per_batch(mode):
    cfg = tiny(f"alae.style_mixing={mode}", "alae.style_mixing_prob=1")
    calls, _ = recorded_step(cfg, crossover_styles=True)
    crossovers = [args[2] for args, _ in calls["crossover_styles"]]
    assert len(crossovers) == 2  # the discriminator and generator steps; the latent step never mixes
    expected = [randomness.crossover_layers(BATCH, slice(None), 6, 1.0, 0, 3, purpose, "mix",
                                            per_batch=mode == "per_batch") for purpose in ("d", "g")]
    for got, want in zip(crossovers, expected):
        assert torch.equal(got, want)
    if mode == "per_batch":
        assert all(torch.all(c == c[0]) for c in crossovers)


def gradients_of_the_three_losses(model, precision):
    """Each loss's value and the gradients of every parameter, float32 or bf16 G/E compute."""
    model.compute_dtype = torch.bfloat16 if precision == "bf16" else None
    x = reals(1).images.float() / 127.5 - 1
    z = torch.randn(BATCH, 16, generator=torch.Generator().manual_seed(2))
    noise = randomness.per_sample_noise(model.G.noise_shapes(2), range(BATCH), torch.device("cpu"), 0, "test")
    out = {}
    with torch.no_grad():
        fakes = model.generate(model.broadcast(model.map(z)), 2, 1.0, noise)
    for name, compute in (
        ("d", lambda: discriminator_loss(model, x, fakes, 2, 1.0, r1_weight=5.0)),
        ("g", lambda: generator_loss(model, model.broadcast(model.map(z)), 2, 1.0, noise)),
        ("latent", lambda: latent_loss(model, model.map(z), 2, 1.0, noise)),
    ):
        model.zero_grad(set_to_none=True)
        loss, stats = compute()
        loss.backward()
        out[name] = (stats, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    return out


def test_bf16_losses_and_gradients_are_close_to_float32():
    """bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ≈ 0.2%). Losses: within 3%, ten
    times the few roundings a loss's last reductions add. Gradients: a randomly initialised
    network's gradients sum many terms of both signs, and the instance norms amplify rounding
    (at initialisation the first one sees G's near-constant input, 1/σ ≈ 1e4), so their relative
    error is not small (0.1–0.4 for G and F, varying with the CPU's kernels); the test asserts
    what a precision bug (a gradient taken through the wrong dtype, a missing or doubled term, a
    sign) would break and rounding cannot: the direction (cosine with float32's ≥ 0.8, i.e. within
    37°) and the scale (norm ratio within [0.5, 2]). Noise weights and biases are randomised so
    that every parameter has a gradient."""
    torch.manual_seed(0)
    model = LatentAutoencoder(tiny())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "noise" in name or "bias" in name:
                p.normal_(0, 0.3)
    fp32 = gradients_of_the_three_losses(model, "fp32")
    bf16 = gradients_of_the_three_losses(model, "bf16")
    for step in fp32:
        (stats32, grads32), (stats16, grads16) = fp32[step], bf16[step]
        assert stats16.keys() == stats32.keys()
        for k in stats32:
            assert stats16[k].dtype == torch.float32
            assert abs(stats16[k].item() - stats32[k].item()) <= 0.03 * abs(stats32[k].item()) + 1e-3, (step, k)
        assert grads16.keys() == grads32.keys()
        for net in "FGED":
            names = [k for k in grads32 if k.startswith(net + ".")]
            if not names:
                continue
            a = torch.cat([grads16[k].flatten() for k in names])
            b = torch.cat([grads32[k].flatten() for k in names])
            assert a.dtype == torch.float32
            cosine = torch.nn.functional.cosine_similarity(a, b, dim=0).item()
            assert cosine >= 0.8 and 0.5 <= (a.norm() / b.norm()).item() <= 2, (step, net, cosine)


def test_bf16_training_keeps_parameters_optimizer_state_and_w_avg_in_float32():
    cfg = tiny("train.precision=bf16")
    torch.manual_seed(0)
    model = LatentAutoencoder(cfg)
    optimizers = make_optimizers(model, cfg)
    stats = train_step(model, optimizers, reals(), PHASE, cfg, CTX, step=0)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in model.parameters()) and model.w_avg.dtype == torch.float32
    for opt in optimizers.values():
        for state in opt.state.values():
            assert state["exp_avg_sq"].dtype == torch.float32
