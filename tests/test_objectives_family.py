"""VAE, AAE, WAE-MMD and WAE-GAN steps against the papers' losses written out here.

Each objective's train_step runs on a tiny MLP model in float64 with its optimizers replaced
by plain SGD (so a parameter's change is −lr × its gradient); the reference repeats the step by
hand from the formulas (binary cross-entropy from log-sigmoid, the KL and the IMQ MMD as double
sums, the discriminator's one-hot labels concatenated here) with the same draws, and the two
resulting models must agree. Micro-batches must not change the result.
"""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

import alae.distributed as distributed
import alae.randomness as randomness
from alae.config import apply_overrides, from_dict, read_config_file, resolve_config_path
from alae.datasets import to_model_range
from alae.model import LatentAutoencoder
from alae.training.data import NO_LABEL, Batch
from alae.training.objectives import objective_named
from alae.training.schedule import Phase

BATCH, LATENT, STEP, LR = 6, 4, 5, 0.05
PHASE = Phase(lod=0, alpha=1.0, batch=BATCH, lr=LR, resolution=28)
CTX = distributed.Context(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def tiny(objective, *overrides):
    """The mnist-alae config, its alae section dropped, as a tiny model of `objective`."""
    data = read_config_file(resolve_config_path("mnist-alae"))
    data.pop("alae")
    return from_dict(apply_overrides(data, [f"train.objective={objective}", f"model.latent_dim={LATENT}",
                                            "model.pixel_range=[-1, 1]",
                                            "model.mlp_width=16", "model.discriminator_width=8",
                                            "model.discriminator_outputs=1", "model.discriminator_activation=lrelu",
                                            f"train.batch_per_lod=[{BATCH}]", *overrides]))


@pytest.fixture(autouse=True)
def float64():
    torch.set_default_dtype(torch.float64)  # the draws of train_step follow the default dtype
    yield
    torch.set_default_dtype(torch.float32)


def batch(labelled=True):
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (BATCH, 1, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.tensor([0, 3, 9, 3, NO_LABEL, 7]) if labelled else torch.full((BATCH,), NO_LABEL)
    return Batch(images, labels)


def model_of(cfg):
    torch.manual_seed(0)
    model = LatentAutoencoder(cfg)
    with torch.no_grad():  # every input matters: biases away from zero
        for p in model.parameters():
            if p.ndim == 1:
                p.copy_(torch.randn_like(p) * 0.1)
    return model


def sgd_step(cfg, data=None):
    """(model before, model after one train_step with SGD in place of each of its optimizers)."""
    model = model_of(cfg)
    before = copy.deepcopy(model)
    objective = objective_named(cfg.train.objective)
    optimizers = {name: torch.optim.SGD([p for g in opt.param_groups for p in g["params"]], lr=LR)
                  for name, opt in objective.make_optimizers(model, cfg).items()}
    objective.train_step(model, optimizers, data or batch(), PHASE, cfg, CTX, STEP)
    return before, model


def descend(loss, params):
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(params, grads):
            if g is not None:
                p -= LR * g


def assert_same_state(a, b, tol=1e-10):
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], rtol=tol, atol=tol), k


def x_and_x01(data):
    x = to_model_range(data.images).double()  # as the step converts them (in float32, then float64)
    return x, (x + 1) / 2


def bce(logits, target01):
    """−Σ [x log σ(l) + (1 − x) log(1 − σ(l))] per image, from log-sigmoid."""
    return -(target01 * F.logsigmoid(logits) + (1 - target01) * F.logsigmoid(-logits)).flatten(1).sum(1)


def kl_to_standard_normal(mean, logvar):
    return 0.5 * (mean**2 + torch.exp(logvar) - logvar - 1).sum(1)


def imq_mmd_by_loops(q, p, base_c, scales):
    n, m = len(q), len(p)
    total = 0.0
    for s in scales:
        c = base_c * s

        def k(a, b):
            return c / (c + ((a - b) ** 2).sum())

        total = total + sum(k(q[i], q[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        total = total + sum(k(p[i], p[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        total = total - 2 * sum(k(q[i], p[j]) for i in range(n) for j in range(m)) / (n * m)
    return total


def normal(purpose, name):
    return randomness.global_normal((BATCH, LATENT), slice(None), 0, STEP, purpose, name)


def prior_draw(model, purpose, labels=None):
    return model.prior.sample(BATCH, randomness.generator(0, STEP, purpose, "prior"), labels)


def params(*modules):
    return [p for m in modules for p in m.parameters()]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_step_descends_the_negative_elbo(likelihood):
    cfg = tiny("vae", f"vae.likelihood={likelihood}", "vae.kl_weight=0.7", "vae.likelihood_std=0.3")
    ref, ours = sgd_step(cfg)
    x, x01 = x_and_x01(batch())
    mean, logvar = ref.E(x).chunk(2, dim=1)
    z = mean + torch.exp(logvar / 2) * normal("vae", "epsilon")
    out = ref.G(z[:, None])
    if likelihood == "bernoulli":
        nll = bce(out, x01)
    else:
        sigma = 0.3
        mu01 = (out + 1) / 2
        nll = ((x01 - mu01) ** 2 / (2 * sigma**2) + 0.5 * math.log(2 * math.pi * sigma**2)).flatten(1).sum(1)
    descend((nll + 0.7 * kl_to_standard_normal(mean, logvar)).mean(), params(ref.E, ref.G))
    assert_same_state(ours, ref)


def test_vae_reports_the_elbo_in_nats_whatever_beta():
    cfg = tiny("vae", "vae.kl_weight=0.25")
    model = model_of(cfg)
    objective = objective_named("vae")
    stats = objective.train_step(model, objective.make_optimizers(model, cfg), batch(), PHASE, cfg, CTX, STEP)
    assert torch.allclose(stats["elbo"], -(stats["nll"] + stats["kl"]))
    assert torch.allclose(stats["loss_vae"], stats["nll"] + 0.25 * stats["kl"])


@pytest.mark.parametrize("posterior", ["deterministic", "gaussian", "universal"])
def test_aae_step_is_reconstruction_then_both_halves_of_regularisation(posterior):
    cfg = tiny("aae", f"aae.posterior={posterior}", "aae.prior=mixture", "aae.prior_components=10",
               "aae.prior_labels=true", "aae.labelled_fraction=0.6")
    ref, ours = sgd_step(cfg)
    data = batch()
    x, x01 = x_and_x01(data)
    K = 10
    labels = torch.where(data.labels == NO_LABEL, K, data.labels)  # the fixed labelled set is the data's (training_labels)

    def codes(purpose):
        if posterior == "gaussian":
            mean, logvar = ref.E(x).chunk(2, dim=1)
            return mean + torch.exp(logvar / 2) * normal(purpose, "epsilon")
        if posterior == "universal":
            eta = randomness.per_sample_noise([(1, 28, 28)], range(BATCH), torch.device("cpu"), 0, STEP, purpose,
                                              "eta")[0]
            return ref.E(torch.cat([x, eta], dim=1))
        return ref.E(x)

    def d(z):
        return ref.D(torch.cat([z, F.one_hot(labels, K + 1).double()], dim=1))

    rec = (((ref.G(codes("rec")[:, None]) + 1) / 2 - x01) ** 2).flatten(1).sum(1).mean()
    descend(rec, params(ref.E, ref.G))
    prior = prior_draw(ref, "d", labels)
    with torch.no_grad():
        fake = codes("d")
    descend(F.softplus(-d(prior)).mean() + F.softplus(d(fake)).mean(), params(ref.D))
    descend(F.softplus(-d(codes("e"))).mean(), params(ref.E))
    assert_same_state(ours, ref)


def test_the_prior_sample_of_a_labelled_image_comes_from_its_component():
    cfg = tiny("aae", "aae.prior=mixture", "aae.prior_labels=true", "model.latent_dim=2")
    model = model_of(cfg)
    labels = torch.tensor([0, 2, 5, 5, 10, 7])
    z = prior_draw(model, "d", labels)
    angle = torch.atan2(z[:, 1], z[:, 0]) % (2 * math.pi)
    for i in (0, 1, 2, 3, 5):  # within a few tangential stds of the component's direction
        expected = 2 * math.pi * labels[i].item() / 10
        assert abs((angle[i] - expected + math.pi) % (2 * math.pi) - math.pi) < 0.3


def test_wae_mmd_step_adds_lambda_times_the_imq_mmd():
    cfg = tiny("wae_mmd", "wae_mmd.reconstruction_weight=0.05", "wae_mmd.penalty_weight=10")
    ref, ours = sgd_step(cfg)
    x, x01 = x_and_x01(batch())
    z = ref.E(x)
    rec = 0.05 * (((ref.G(z[:, None]) + 1) / 2 - x01) ** 2).flatten(1).sum(1).mean()
    mmd = imq_mmd_by_loops(z, prior_draw(ref, "mmd"), 2 * LATENT * 1.0, cfg.objective.mmd_scales)
    descend(rec + 10 * mmd, params(ref.E, ref.G))
    assert_same_state(ours, ref)


def test_wae_gan_step_fools_then_trains_the_adversary_with_lambda():
    cfg = tiny("wae_gan", "wae_gan.penalty_weight=3", "wae_gan.reconstruction=cross_entropy")
    ref, ours = sgd_step(cfg)
    x, x01 = x_and_x01(batch())
    z = ref.E(x)
    rec = bce(ref.G(z[:, None]), x01).mean()
    descend(rec + 3 * F.softplus(-ref.D(z)).mean(), params(ref.E, ref.G))
    with torch.no_grad():
        z = ref.E(x)
    prior = prior_draw(ref, "d")
    descend(3 * (F.softplus(-ref.D(prior)).mean() + F.softplus(ref.D(z)).mean()), params(ref.D))
    assert_same_state(ours, ref)


@pytest.mark.parametrize("objective,extra", [("vae", ()), ("aae", ("aae.posterior=gaussian",)),
                                             ("wae_gan", ())])
def test_micro_batches_give_the_full_batch_step(objective, extra):
    _, whole = sgd_step(tiny(objective, *extra))
    _, parts = sgd_step(tiny(objective, *extra, "train.batch_gpu=4"))
    assert_same_state(parts, whole, tol=1e-9)


def test_the_adversary_learns_at_its_own_rate():
    cfg = tiny("wae_gan", "wae_gan.adversary_lr_mul=0.5")
    model = model_of(cfg)
    optimizers = objective_named("wae_gan").make_optimizers(model, cfg)
    assert optimizers["adversary"].param_groups[0]["lr_mul"] == 0.5
    assert "lr_mul" not in optimizers["autoencoder"].param_groups[0]


def labelled_batch():
    """A batch whose every image has a label, with a labelled batch of other images beside it."""
    g = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (BATCH, 1, 28, 28), generator=g, dtype=torch.uint8)
    labelled = torch.randint(0, 256, (BATCH, 1, 28, 28), generator=g, dtype=torch.uint8)
    return Batch(images, torch.tensor([0, 3, 9, 3, 1, 7]), (labelled, torch.tensor([2, 2, 5, 0, 9, 4])))


@pytest.mark.parametrize("form", ["semi_supervised", "clustering", "supervised"])
def test_aae_categorical_step_is_reconstruction_regularisation_of_z_and_y_then_classification(form):
    K = 10 if form != "clustering" else 7
    extra = {"semi_supervised": ["data.labelled=20"], "clustering": [],
             "supervised": ["aae.categories_from=label"]}[form]
    cfg = tiny("aae", f"aae.categories={K}", *extra)
    data = labelled_batch()
    ref, ours = sgd_step(cfg, data)
    x, x01 = x_and_x01(data)
    head = form != "supervised"

    def encoded(images):
        out = ref.E(images)
        return (out[:, :LATENT], out[:, LATENT:]) if head else (out, None)

    def decoder_input(z, logits):
        y = logits.softmax(dim=1) if head else F.one_hot(data.labels, K).double()
        return torch.cat([z, y], dim=1)

    rec = (((ref.G(decoder_input(*encoded(x))[:, None]) + 1) / 2 - x01) ** 2).flatten(1).sum(1).mean()
    descend(rec, params(ref.E, ref.G))
    prior = prior_draw(ref, "d")  # [z, one-hot of a uniform class]
    assert prior.shape == (BATCH, LATENT + K) and torch.equal(prior[:, LATENT:].sum(1), torch.ones(BATCH))
    with torch.no_grad():
        fake, fake_logits = encoded(x)
    loss_d = F.softplus(-ref.D(prior[:, :LATENT])).mean() + F.softplus(ref.D(fake)).mean()
    if head:
        loss_d = loss_d + F.softplus(-ref.Dy(prior[:, LATENT:])).mean() + \
            F.softplus(ref.Dy(fake_logits.softmax(dim=1))).mean()
    descend(loss_d, params(ref.D, *([ref.Dy] if head else [])))
    z, logits = encoded(x)
    loss_e = F.softplus(-ref.D(z)).mean() + (F.softplus(-ref.Dy(logits.softmax(dim=1))).mean() if head else 0)
    descend(loss_e, params(ref.E))
    if form == "semi_supervised":
        _, labelled_logits = encoded(to_model_range(data.labelled[0]).double())
        descend(F.cross_entropy(labelled_logits, data.labelled[1]), params(ref.E))
    assert_same_state(ours, ref)
    assert (ours.Dy is None) == (not head)


def test_the_classification_phase_changes_the_encoder_only():
    from alae.training.objectives.aae import classification_phase, make_optimizers
    from alae.training.objectives.common import Shard

    cfg = tiny("aae", "aae.categories=10", "data.labelled=20")
    model = model_of(cfg)
    before = copy.deepcopy(model)
    stats = {}
    classification_phase(model, [make_optimizers(model, cfg)["classifier"]], labelled_batch().labelled,
                         Shard.of(BATCH, 0, 0), PHASE, CTX, stats)
    for name in ("G", "D", "Dy"):
        assert_same_state(getattr(model, name), getattr(before, name), tol=0)
    changed = [k for k, v in model.E.state_dict().items() if not torch.equal(v, before.E.state_dict()[k])]
    assert changed and set(stats) == {"loss_class", "labelled_error"}
    assert 0 <= stats["labelled_error"] <= 1 and stats["loss_class"] > 0


def test_categorical_micro_batches_give_the_full_batch_step():
    _, whole = sgd_step(tiny("aae", "aae.categories=10", "data.labelled=20"), labelled_batch())
    _, parts = sgd_step(tiny("aae", "aae.categories=10", "data.labelled=20", "train.batch_gpu=4"), labelled_batch())
    assert_same_state(parts, whole, tol=1e-9)


# --- the references' options (musyoku's AAE, the WAE code, pytorch/examples' VAE) -------------------

def noise_of(purpose, name, width, std):
    return std * randomness.global_normal((BATCH, width), slice(None), 0, STEP, purpose, name)


def test_aae_step_with_musyoku_options_by_hand():
    """Noise on the adversaries' inputs (only theirs), the labelled batch reconstructed from its
    labels, a tanh decoder with the mean squared error of [−1, 1] pixels, one Adam shared by E."""
    K, sigma, weight = 10, 0.3, 4 / 784  # musyoku's F.mean_squared_error on [−1, 1] as our sum on [0, 1]
    cfg = tiny("aae", f"aae.categories={K}", "data.labelled=20", "aae.shared_encoder_adam=true",
               "aae.reconstruct_labelled=true", f"aae.adversary_input_noise={sigma}", "aae.decoder_output=tanh",
               f"aae.reconstruction_weight={weight}")
    data = labelled_batch()
    ref, ours = sgd_step(cfg, data)
    x, x01 = x_and_x01(data)
    xl = to_model_range(data.labelled[0]).double()

    def encoded(images):
        out = ref.E(images)
        return out[:, :LATENT], out[:, LATENT:]

    def cost(z, y, target):
        image = torch.tanh(ref.G(torch.cat([z, y], dim=1)[:, None]))
        return weight * (((image + 1) / 2 - (target + 1) / 2) ** 2).flatten(1).sum(1).mean()

    z, logits = encoded(x)
    zl, _ = encoded(xl)
    rec = cost(z, logits.softmax(dim=1), x) + cost(zl, F.one_hot(data.labelled[1], K).double(), xl)
    descend(rec, params(ref.E, ref.G))
    prior = prior_draw(ref, "d")
    with torch.no_grad():
        fake, fake_logits = encoded(x)
    loss_d = (F.softplus(-ref.D(prior[:, :LATENT] + noise_of("d", "noise-prior", LATENT, sigma))).mean()
              + F.softplus(ref.D(fake + noise_of("d", "noise-code", LATENT, sigma))).mean()
              + F.softplus(-ref.Dy(prior[:, LATENT:] + noise_of("d", "noise-prior-y", K, sigma))).mean()
              + F.softplus(ref.Dy(fake_logits.softmax(dim=1) + noise_of("d", "noise-code-y", K, sigma))).mean())
    descend(loss_d, params(ref.D, ref.Dy))
    z, logits = encoded(x)
    loss_e = (F.softplus(-ref.D(z + noise_of("e", "noise-code", LATENT, sigma))).mean()
              + F.softplus(-ref.Dy(logits.softmax(dim=1) + noise_of("e", "noise-code-y", K, sigma))).mean())
    descend(loss_e, params(ref.E))
    _, labelled_logits = encoded(xl)
    descend(F.cross_entropy(labelled_logits, data.labelled[1]), params(ref.E))
    assert_same_state(ours, ref)


def test_the_adversaries_input_noise_has_its_std_and_reaches_them_only(monkeypatch):
    """Every input of D and Dy carries N(0, σ²) noise, drawn afresh per input; G and the
    classification phase see the clean codes."""
    sigma, count = 0.3, 4000
    cfg = tiny("aae", "aae.categories=10", f"aae.adversary_input_noise={sigma}", f"train.batch_per_lod=[{count}]")
    model = model_of(cfg)
    seen = {"D": [], "Dy": [], "G": []}
    for name in seen:
        module = getattr(model, name)
        monkeypatch.setattr(module, "forward", lambda x, *a, _f=module.forward, _n=name, **k:
                            seen[_n].append(x.detach()) or _f(x, *a, **k))
    images = torch.randint(0, 256, (count, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    phase = Phase(lod=0, alpha=1.0, batch=count, lr=LR, resolution=28)
    objective = objective_named("aae")
    objective.train_step(model, objective.make_optimizers(model, cfg), Batch(images, torch.full((count,), NO_LABEL)),
                         phase, cfg, CTX, STEP)
    z_prior = model.prior.sample(count, randomness.generator(0, STEP, "d", "prior"))
    real_z, real_y = seen["D"][0], seen["Dy"][0]  # the D phase's prior inputs, before any change of E
    for noisy, clean in ((real_z, z_prior[:, :LATENT]), (real_y, z_prior[:, LATENT:])):
        noise = noisy - clean
        # the sample std of n normal draws: within 5 standard errors σ/√(2n)
        assert abs(noise.std().item() - sigma) < 5 * sigma / math.sqrt(2 * noise.numel())
        assert abs(noise.mean().item()) < 5 * sigma / math.sqrt(noise.numel())
    g_input = seen["G"][0][:, 0]  # the reconstruction phase's [z, softmax y]: no noise there
    with torch.no_grad():
        z, logits = model_of(cfg).E(to_model_range(images).double()).split([LATENT, 10], dim=1)
    torch.testing.assert_close(g_input, torch.cat([z, logits.softmax(dim=1)], dim=1), rtol=1e-12, atol=1e-12)


def test_wae_steps_with_the_wae_code_options_by_hand():
    """E encodes its images with noise (σ in [0, 1] pixels), the decoder is a sigmoid compared by
    the squared error, the adversary and its noise as set."""
    sigma, lam = 0.01, 3.0
    cfg = tiny("wae_gan", f"wae_gan.penalty_weight={lam}", "wae_gan.decoder_output=sigmoid",
               f"wae_gan.encoder_input_noise={sigma}", "wae_gan.adversary_input_noise=0.2")
    ref, ours = sgd_step(cfg)
    x, x01 = x_and_x01(batch())

    def pixel_noise(purpose):
        return 2 * sigma * randomness.global_normal((BATCH, 784), slice(None), 0, STEP, purpose,
                                                    "input-noise").view(BATCH, 1, 28, 28)

    z = ref.E(x + pixel_noise("ae"))
    rec = ((torch.sigmoid(ref.G(z[:, None])) - x01) ** 2).flatten(1).sum(1).mean()
    descend(rec + lam * F.softplus(-ref.D(z + noise_of("ae", "noise-code", LATENT, 0.2))).mean(),
            params(ref.E, ref.G))
    with torch.no_grad():
        z = ref.E(x + pixel_noise("d"))
    prior = prior_draw(ref, "d")
    descend(lam * (F.softplus(-ref.D(prior + noise_of("d", "noise-prior", LATENT, 0.2))).mean()
                   + F.softplus(ref.D(z + noise_of("d", "noise-code", LATENT, 0.2))).mean()), params(ref.D))
    assert_same_state(ours, ref)


@pytest.mark.parametrize("objective", ["vae", "wae_mmd"])
def test_unit_pixels_give_e_x_over_255_and_read_a_linear_g_in_0_1(objective):
    option = {"vae": "vae.likelihood=gaussian", "wae_mmd": "wae_mmd.reconstruction_weight=1"}[objective]
    cfg = tiny(objective, "model.pixel_range=[0, 1]", option)
    model = model_of(cfg)
    images = batch().images.double()
    x = images / 127.5 - 1  # [−1, 1] in float64, so that (x + 1)/2 is x/255 to rounding
    torch.testing.assert_close(model.encoder_outputs(x, 0, 1.0), model.E(images / 255), rtol=1e-12, atol=1e-12)
    raw = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    torch.testing.assert_close(model.image_of(raw), 2 * raw - 1)
    assert model.input_scale == 0.5


def test_r1_is_taken_at_es_input_in_its_pixel_range():
    """With [0, 1] pixels E sees x01 = (x + 1)/2, and R1 is ‖∇_x01 D(E(x01))‖², as the original
    takes it on x/255 (4 times the norm with respect to the [−1, 1] image)."""
    from alae.training.objectives.alae import discriminator_loss

    cfg = tiny("alae", "model.pixel_range=[0, 1]")
    model = model_of(cfg)
    x, x01 = x_and_x01(batch())
    _, stats = discriminator_loss(model, x, x, 0, 1.0, r1_weight=5.0)
    x01 = x01.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.D(model.E(x01)).sum(), x01)
    assert stats["r1"].item() == pytest.approx(grad.square().sum(dim=[1, 2, 3]).mean().item(), rel=1e-12)


@pytest.mark.parametrize("shared", [True, False])
def test_the_aae_phases_step_one_adam_on_e_or_one_per_phase(shared):
    cfg = tiny("aae", "aae.categories=10", "data.labelled=20", f"aae.shared_encoder_adam={str(shared).lower()}")
    model = model_of(cfg)
    objective = objective_named("aae")
    optimizers = objective.make_optimizers(model, cfg)
    objective.train_step(model, optimizers, labelled_batch(), PHASE, cfg, CTX, STEP)

    def steps(name):
        return {int(state["step"]) for state in optimizers[name].state.values()}

    if shared:  # musyoku: E's Adam through reconstruction, regularisation and classification; G's own
        assert set(optimizers) == {"encoder", "generator", "adversary"}
        assert steps("encoder") == {3} and steps("generator") == {1} and steps("adversary") == {1}
    else:
        assert set(optimizers) == {"autoencoder", "encoder", "classifier", "adversary"}
        assert all(steps(name) == {1} for name in optimizers)


def test_without_the_unlabelled_phases_the_step_is_the_classification_phase_alone():
    from alae.training.objectives.aae import classification_phase, phase_optimizers
    from alae.training.objectives.common import Shard

    cfg = tiny("aae", "aae.categories=10", "data.labelled=20", "aae.unlabelled_phases=false")
    _, ours = sgd_step(cfg, labelled_batch())
    ref = model_of(cfg)
    optimizers = {name: torch.optim.SGD([p for g in opt.param_groups for p in g["params"]], lr=LR)
                  for name, opt in objective_named("aae").make_optimizers(ref, cfg).items()}
    classification_phase(ref, phase_optimizers(optimizers, "classification"), labelled_batch().labelled,
                         Shard.of(BATCH, 0, 0), PHASE, CTX, {})
    assert_same_state(ours, ref, tol=0)


def test_the_dimensionality_reduction_step_by_hand():
    """The AAE paper's §7: G decodes y·W_c + z; reconstruction (E, G and W_c), both adversaries,
    E fooling them, classification, then W_c alone on Σ_{i<j} max(0, η − ‖W_i − W_j‖)."""
    K, eta = 4, 1.5
    cfg = tiny("aae", f"aae.categories={K}", "model.latent_dim=2", "data.labelled=8", "aae.cluster_heads=learnt",
               f"aae.cluster_head_distance={eta}")
    whole = labelled_batch()
    data = Batch(whole.images, whole.labels % K, (whole.labelled[0], whole.labelled[1] % K))
    ours = model_of(cfg)
    with torch.no_grad():  # after the reconstruction step, some pairs closer than η, some farther
        ours.heads.copy_(torch.tensor([[0.0, 0.0], [0.05, 0.0], [0.3, 0.0], [0.0, 0.02]]))
    ref = copy.deepcopy(ours)
    objective = objective_named("aae")
    optimizers = {name: torch.optim.SGD([p for g in opt.param_groups for p in g["params"]], lr=LR)
                  for name, opt in objective.make_optimizers(ours, cfg).items()}
    stats = objective.train_step(ours, optimizers, data, PHASE, cfg, CTX, STEP)
    x, x01 = x_and_x01(data)

    def encoded(images):
        out = ref.E(images)
        return out[:, :2], out[:, 2:]

    z, logits = encoded(x)
    rec = (((ref.G((z + logits.softmax(dim=1) @ ref.heads)[:, None]) + 1) / 2 - x01) ** 2).flatten(1).sum(1).mean()
    descend(rec, [*params(ref.E, ref.G), ref.heads])
    prior = prior_draw(ref, "d")
    with torch.no_grad():
        fake, fake_logits = encoded(x)
    loss_d = (F.softplus(-ref.D(prior[:, :2])).mean() + F.softplus(ref.D(fake)).mean()
              + F.softplus(-ref.Dy(prior[:, 2:])).mean() + F.softplus(ref.Dy(fake_logits.softmax(dim=1))).mean())
    descend(loss_d, params(ref.D, ref.Dy))
    z, logits = encoded(x)
    descend(F.softplus(-ref.D(z)).mean() + F.softplus(-ref.Dy(logits.softmax(dim=1))).mean(), params(ref.E))
    _, labelled_logits = encoded(to_model_range(data.labelled[0]).double())
    descend(F.cross_entropy(labelled_logits, data.labelled[1]), params(ref.E))
    cost = sum(max(0.0, eta - (ref.heads[i] - ref.heads[j]).norm()) for i in range(K) for j in range(i + 1, K))
    assert 0 < cost < K * (K - 1) / 2 * eta and stats["loss_heads"].item() == pytest.approx(cost.item(), rel=1e-12)
    descend(cost, [ref.heads])
    assert_same_state(ours, ref)


def test_identity_heads_put_the_categories_on_scaled_axes_and_the_circle_projection_on_a_circle():
    from alae.plots import circle_projection

    cfg = tiny("aae", "aae.categories=4", "model.latent_dim=4", "aae.cluster_heads=identity",
               "aae.cluster_head_scale=10")
    model = model_of(cfg)
    z, y = torch.randn(3, 4), torch.eye(4)[[0, 2, 3]]
    torch.testing.assert_close(model.map(torch.cat([z, y], dim=1)), z + 10 * y)
    assert not any(p is model.heads for p in model.parameters())  # fixed, not learnt
    points = 10 * torch.eye(4).numpy() @ circle_projection(4)
    torch.testing.assert_close(torch.from_numpy(points), torch.tensor([[10.0, 0], [0, 10], [-10, 0], [0, -10]],
                                                                      dtype=torch.float64), atol=1e-12, rtol=0)
