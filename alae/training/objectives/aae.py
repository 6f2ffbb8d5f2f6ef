"""The adversarial autoencoder (Makhzani et al. 2015, arXiv 1511.05644): the aggregated
posterior q(z) is matched to a prior by a discriminator on codes.

Each iteration, as the paper's two phases:
1. reconstruction: E and G minimise the reconstruction cost c(x, G(q(x))) (`reconstruction.cost`);
2. regularisation: D learns prior samples as real and codes as fake,
   softplus(−D(z_prior)) + softplus(D(q(x))); then E, as the generator, learns to fool it,
   softplus(−D(q(x))) (the non-saturating form).
Options are the config's `aae` section (`Options`). q(x) by `aae.posterior`: deterministic E(x);
gaussian μ + σ·ε (reparameterised, as a VAE's encoder); universal E(x, η) with η ~ N(0, 1) as an
extra input channel. The prior is `aae.prior` (any of alae.priors). With `aae.prior_labels` (the
paper's semi-supervised regularisation), D also sees the one-hot label and the prior sample of
an image of class k comes from the prior's component k; the training images outside a fixed
labelled set (a share `aae.labelled_fraction`, drawn once by `train.seed`: `training_labels`, as
the paper's labelled images), and every image of a database without labels, count as
unlabelled: the extra class K, whose prior samples come from the whole prior.
With `aae.categories` = K, G takes [z, y] (the paper's §4–6): from the label, y is the image's
one-hot label (supervised: z holds the style); from the encoder, E also gives y = softmax of
a class head, and the regularisation phase has a second adversary Dy on y, prior samples being
one-hot classes of a uniform K: Dy learns alongside D (softplus(−Dy(one-hot)) + softplus(Dy(y))),
and E fools both (the sum of the two terms). With `data.labelled`, a third phase per iteration:
3. semi-supervised classification: E (alone) minimises the cross-entropy of its class head on
   the step's labelled batch (`alae.training.labelled`).
Adams: E and G (reconstruction); D, Dy and E (regularisation, at `aae.adversary_lr_mul` × the
rate); E (classification, at the rate).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

import alae.distributed as distributed
import alae.randomness as randomness
from alae.config import (
    Config,
    Fraction,
    NonNegativeInt,
    ObjectiveOptions,
    PositiveFloat,
    StrictBool,
    Traits,
    require,
    section,
)
from alae.model import LatentAutoencoder
from alae.training.data import NO_LABEL, Batch
from alae.training.objectives.common import (
    LossStats,
    StepDraws,
    accumulate_gradients,
    adam,
    model_images,
    optimizer_step,
    set_trainable,
    step_inputs,
)
from alae.training.objectives.options import Adversary, CodePrior, ReconstructionCost
from alae.training.objectives.reconstruction import cost
from alae.training.schedule import Phase


@section
class Options(CodePrior, ReconstructionCost, Adversary, ObjectiveOptions):
    """The `aae` section (and the prior, reconstruction cost and adversary groups)."""

    # deterministic E(x); gaussian: reparameterised, as a VAE's encoder; universal: E(x, η), η one
    # extra input channel of N(0, 1)
    posterior: Literal["deterministic", "gaussian", "universal"] = "deterministic"
    prior_labels: StrictBool = False  # D sees the one-hot label, whose class picks the prior's component (AAE §5)
    labelled_fraction: Fraction = 1.0  # with prior_labels: share of training images whose label is used, a set drawn once
    # G takes [z, y], y a one-hot (or softmax) over K = `categories` classes (0: G takes z alone).
    # categories_from encoder: E's softmax head gives y, matched to a categorical prior by a second
    # adversary (AAE §5 semi-supervised: K 10; §6 clustering: K 16 or 30); label: the image's one-hot
    # label, so z holds the style only (AAE §4, supervised).
    categories: NonNegativeInt = 0
    categories_from: Literal["encoder", "label"] = "encoder"
    # true: one Adam on E through every phase and one on G, at the schedule's rate (musyoku's AAE);
    # false: Adams on E and G (reconstruction), on E (regularisation, at adversary_lr_mul) and on E
    # (classification)
    shared_encoder_adam: StrictBool = False
    # with data.labelled: the reconstruction phase also decodes the labelled batch from [z, its one-hot
    # label] and adds its cost (musyoku's semi-supervised AAE)
    reconstruct_labelled: StrictBool = False
    # false: only the classification phase runs (with data.labelled): the ablation that measures
    # what the unlabelled images add to the 100 labels
    unlabelled_phases: StrictBool = True
    # The AAE paper's dimensionality reduction (§7): G decodes the representation y·W_c + z from the
    # cluster heads W_c [categories, latent_dim], learnt (musyoku: N(0, 1) at the start), with a
    # fourth phase per iteration on W_c alone: Σ over head pairs of max(0, η − ‖W_i − W_j‖), η =
    # cluster_head_distance (musyoku: 1 with 10 labelled classes, 2 with 20 clusters); or fixed at
    # cluster_head_scale·I (categories = latent_dim: the paper's 10-D variant, W_c = 10·I)
    cluster_heads: Literal["none", "learnt", "identity"] = "none"
    cluster_head_distance: PositiveFloat = 1.0
    cluster_head_scale: PositiveFloat = 10.0

    def check(self, cfg: Config) -> None:
        self.check_prior(cfg, "aae")
        self.check_reconstruction("aae")
        require(not self.prior_labels or self.prior in ("mixture", "swiss_roll"), "aae.prior_labels/aae.prior",
                f"labels pick a component of a mixture or swiss_roll prior, not of {self.prior!r}")
        require(not (self.categories and self.prior_labels), "aae.categories/aae.prior_labels",
                "a categorical code and labels given to D are two different label uses: choose one")
        require(not (self.categories and self.categories_from == "encoder") or self.posterior == "deterministic",
                "aae.posterior", f"a categorical code comes with a deterministic encoder, got {self.posterior!r}")
        require(not self.reconstruct_labelled or cfg.data.labelled, "aae.reconstruct_labelled",
                "reconstructs the labelled batch: it needs data.labelled")
        require(self.unlabelled_phases or cfg.data.labelled, "aae.unlabelled_phases",
                "without them only the classification phase is left, which needs data.labelled")
        require(self.cluster_heads == "none" or (self.categories and self.categories_from == "encoder"),
                "aae.cluster_heads", "cluster heads combine E's categorical y with z: they need aae.categories "
                                     "from the encoder")
        require(self.cluster_heads != "identity" or self.categories == cfg.model.latent_dim, "aae.cluster_heads",
                f"identity heads are scale·I: aae.categories ({self.categories}) must equal model.latent_dim "
                f"({cfg.model.latent_dim})")

    def traits(self) -> Traits:
        """The posterior, prior and categorical code of these options; an adversary on the codes (and Dy on y)."""
        return Traits(posterior=self.posterior, decoder_output=self.output, code_discriminator=True,
                      prior_labels=self.prior_labels, categories=self.categories,
                      categories_from=self.categories_from, cluster_heads=self.cluster_heads,
                      cluster_head_scale=self.cluster_head_scale if self.cluster_heads == "identity" else 0.0,
                      **self.prior_traits())


def make_optimizers(model: LatentAutoencoder, cfg: Config) -> dict[str, torch.optim.Adam]:
    """Adams on D and Dy ('adversary', at aae.adversary_lr_mul × the rate), and for the others by
    aae.shared_encoder_adam: one on E ('encoder', through every phase) and one on G ('generator'),
    or one on E and G ('autoencoder', reconstruction), one on E ('encoder', regularisation, at
    adversary_lr_mul × the rate) and with a class head and labels one on E ('classifier')."""
    o = cfg.objective
    adversaries = [p for d in (model.D, model.Dy) if d is not None for p in d.parameters()]
    optimizers = {"adversary": adam(adversaries, cfg, o.adversary_lr_mul)}
    if o.cluster_heads == "learnt":  # W_c: the reconstruction phase and the heads' own distance phase
        optimizers["heads"] = adam([model.heads], cfg)
    if o.shared_encoder_adam:
        return {**optimizers, "encoder": adam(model.E.parameters(), cfg), "generator": adam(model.G.parameters(), cfg)}
    optimizers.update(autoencoder=adam([*model.E.parameters(), *model.G.parameters()], cfg),
                      encoder=adam(model.E.parameters(), cfg, o.adversary_lr_mul))
    if model.labelled_classes:
        optimizers["classifier"] = adam(model.E.parameters(), cfg)
    return optimizers


def phase_optimizers(optimizers: dict, phase: str) -> list[torch.optim.Optimizer]:
    """The optimizers the phase `phase` (reconstruction, regularisation, classification) steps."""
    heads = [optimizers["heads"]] if "heads" in optimizers and phase == "reconstruction" else []
    if "generator" in optimizers:  # aae.shared_encoder_adam
        if phase == "reconstruction":
            return [optimizers["encoder"], optimizers["generator"], *heads]
        return [optimizers["encoder"]]
    return [optimizers[{"reconstruction": "autoencoder", "regularisation": "encoder",
                        "classification": "classifier"}[phase]], *heads]


def run_phase(optimizers: list[torch.optim.Optimizer], shard, loss, stats: LossStats, world_size: int) -> None:
    """Zero the optimizers' gradients, accumulate `loss` over the shard's micro-batches, step each."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    accumulate_gradients(shard, loss, stats)
    for opt in optimizers:
        optimizer_step(opt, world_size)


def posterior_codes(model: LatentAutoencoder, reals: torch.Tensor, lod: int, alpha: float, epsilon: torch.Tensor,
                    eta: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """q(x): codes [N, latent] of reals [N, C, R, R] under the model's posterior (see the module
    docstring), and the class head's logits [N, K] (None without one)."""
    out, logits = model.split_encoder_outputs(model.encoder_outputs(reals, lod, alpha, eta))
    if model.posterior == "gaussian":
        mean, logvar = out.chunk(2, dim=1)
        out = mean + torch.exp(0.5 * logvar) * epsilon
    return out, logits


def decoder_code(model: LatentAutoencoder, z: torch.Tensor, logits: torch.Tensor | None,
                 labels: torch.Tensor) -> torch.Tensor:
    """What G takes for codes z [N, latent]: [z, softmax(logits)] with a class head, [z, one-hot
    of labels (int [N])] with decoder labels, else z."""
    if model.class_head:
        return model.code_of(z, logits.softmax(dim=1))
    if model.decoder_labels:
        return model.code_of(z, model.one_hot(labels))
    return z


def training_labels(labels: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The training images' labels as the run uses them, int64 [num_train]: with `aae.prior_labels`
    and `aae.labelled_fraction` < 1, only a fixed set keeps its label (each image independently
    with that probability, drawn once by `train.seed`, as the paper's labelled images), the others
    are NO_LABEL. `alae.training.run_data` asks the objective for this once, before training."""
    o = cfg.objective
    if not o.prior_labels or o.labelled_fraction >= 1:
        return labels
    keep = torch.rand(len(labels), generator=randomness.generator(cfg.train.seed, "labelled-images")) < o.labelled_fraction
    return torch.where(keep, labels, torch.full_like(labels, NO_LABEL))


def discriminator_labels(model: LatentAutoencoder, batch: Batch, draws: StepDraws, cfg: Config) -> torch.Tensor | None:
    """The label D sees per image of this rank, int64 [B/W] in [0, K] (K: unlabelled, the images
    without a label in the batch: `training_labels`), or None without prior labels."""
    if not model.label_classes:
        return None
    labels = batch.labels.to(torch.int64).clone()  # in [0, K) or NO_LABEL: the loop checked the database's classes
    labels[labels == NO_LABEL] = model.label_classes
    return labels.to(draws.device)


def train_step(model: LatentAutoencoder, optimizers: dict, batch: Batch, phase: Phase, cfg: Config,
               ctx: distributed.Context, step: int) -> LossStats:
    """One AAE iteration (reconstruction, regularisation, and with labelled images classification)
    on this rank's share of the global batch."""
    o, lod, alpha = cfg.objective, phase.lod, phase.alpha
    shard, reals, draws = step_inputs(model, batch, phase, cfg, ctx, step)
    labels = discriminator_labels(model, batch, draws, cfg)
    image_labels = batch.labels.to(draws.device)
    stats: LossStats = {}
    epsilons = {purpose: draws.latents(purpose, "epsilon") for purpose in ("rec", "d", "e")}

    def codes(purpose: str, s: int, e: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return posterior_codes(model, reals[s:e], lod, alpha, epsilons[purpose][s:e], draws.eta(model, purpose, s, e))

    if not o.unlabelled_phases:  # the ablation: the classification phase alone
        classification_phase(model, phase_optimizers(optimizers, "classification"), batch.labelled, shard, phase,
                             ctx, stats)
        return stats

    # 1. Reconstruction phase: E and G (with aae.reconstruct_labelled, the labelled batch too).
    set_trainable(model, E=True, G=True, D=False, Dy=False)
    with_labelled = o.reconstruct_labelled and model.labelled_classes and batch.labelled is not None
    if with_labelled:
        labelled_reals = model_images(model, batch.labelled[0], phase, ctx.device)
        labelled_classes = batch.labelled[1].to(ctx.device)

    def reconstruction_loss(s: int, e: int):
        code = decoder_code(model, *codes("rec", s, e), image_labels[s:e])
        raw = model.decode_raw(model.broadcast(code), lod, alpha, draws.noise("rec", s, e))
        loss = cost(model, raw, reals[s:e], o).mean()
        new = {"loss_rec": loss.detach()}
        if with_labelled:  # musyoku's AAE: labelled images decoded from [z, their one-hot label]
            z, _ = posterior_codes(model, labelled_reals[s:e], lod, alpha, None, None)
            raw = model.decode_raw(model.broadcast(model.code_of(z, model.one_hot(labelled_classes[s:e]))), lod, alpha,
                                   draws.noise("rec-labelled", s, e))
            loss_labelled = cost(model, raw, labelled_reals[s:e], o).mean()
            loss, new["loss_rec_labelled"] = loss + loss_labelled, loss_labelled.detach()
        return loss, new

    run_phase(phase_optimizers(optimizers, "reconstruction"), shard, reconstruction_loss, stats, ctx.world_size)

    # 2a. Regularisation phase, D (and Dy): prior samples are real, codes are fake (each with
    # aae.adversary_input_noise added, as every code the adversaries see while training).
    set_trainable(model, E=False, G=False, D=True, Dy=True)
    prior = draws.prior(model, "d", labels)  # [z, one-hot] with categories: D takes z, Dy the one-hot
    z_prior, y_prior = prior[:, :model.latent_dim], prior[:, model.latent_dim:]

    def discriminator_loss(s: int, e: int):
        y = None if labels is None else labels[s:e]
        with torch.no_grad():
            fake, logits = codes("d", s, e)
        real_logits = model.discriminate(o.noisy(z_prior[s:e], draws, "d", "noise-prior", s, e), y)
        fake_logits = model.discriminate(o.noisy(fake, draws, "d", "noise-code", s, e), y)
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        new = {"loss_d": loss.detach(), "logits_prior": real_logits.detach().mean(),
               "logits_code": fake_logits.detach().mean()}
        if model.class_head:
            real_y = model.Dy(o.noisy(y_prior[s:e], draws, "d", "noise-prior-y", s, e))
            fake_y = model.Dy(o.noisy(logits.softmax(dim=1), draws, "d", "noise-code-y", s, e))
            loss_y = F.softplus(-real_y).mean() + F.softplus(fake_y).mean()
            loss, new["loss_dy"] = loss + loss_y, loss_y.detach()
        return loss, new

    run_phase([optimizers["adversary"]], shard, discriminator_loss, stats, ctx.world_size)

    # 2b. Regularisation phase, E as the generator: its codes (and y) should pass for prior samples.
    set_trainable(model, E=True, G=False, D=False, Dy=False)

    def encoder_loss(s: int, e: int):
        y = None if labels is None else labels[s:e]
        z, logits = codes("e", s, e)
        loss = F.softplus(-model.discriminate(o.noisy(z, draws, "e", "noise-code", s, e), y)).mean()
        new = {"loss_e": loss.detach()}
        if model.class_head:
            loss_y = F.softplus(-model.Dy(o.noisy(logits.softmax(dim=1), draws, "e", "noise-code-y", s, e))).mean()
            loss, new["loss_ey"] = loss + loss_y, loss_y.detach()
        return loss, new

    run_phase(phase_optimizers(optimizers, "regularisation"), shard, encoder_loss, stats, ctx.world_size)

    # 3. Semi-supervised classification phase: E's class head on the labelled batch.
    if model.labelled_classes and batch.labelled is not None:
        classification_phase(model, phase_optimizers(optimizers, "classification"), batch.labelled, shard, phase,
                             ctx, stats)
    # 4. Learnt cluster heads: pushed apart where closer than η (the same on every rank: no images).
    if "heads" in optimizers:
        heads = optimizers["heads"]
        heads.zero_grad(set_to_none=True)
        loss = head_distance_cost(model.heads, o.cluster_head_distance)
        loss.backward()
        optimizer_step(heads, 1)
        stats["loss_heads"] = loss.detach()
    return stats


def head_distance_cost(heads: torch.Tensor, threshold: float) -> torch.Tensor:
    """Σ over pairs i < j of max(0, η − ‖W_i − W_j‖) for the cluster heads W [K, n] (the AAE paper's
    additional cost: linear in the distance below η, zero beyond)."""
    i, j = torch.triu_indices(len(heads), len(heads), offset=1, device=heads.device)
    return (threshold - (heads[i] - heads[j]).norm(dim=1)).clamp(min=0).sum()


def classification_phase(model: LatentAutoencoder, optimizers: list[torch.optim.Optimizer],
                         labelled: tuple[torch.Tensor, torch.Tensor], shard, phase: Phase, ctx: distributed.Context,
                         stats: LossStats) -> None:
    """E minimises the cross-entropy of its class head on this rank's labelled images (uint8
    [B/W, C, R, R]) and labels (int64 [B/W]); adds `loss_class` and `labelled_error` (the share
    of those images misclassified, before the step) to `stats`."""
    set_trainable(model, E=True, G=False, D=False, Dy=False)
    images = model_images(model, labelled[0], phase, ctx.device)
    targets = labelled[1].to(ctx.device)

    def classification_loss(s: int, e: int):
        _, logits = model.split_encoder_outputs(model.encoder_outputs(images[s:e], phase.lod, phase.alpha))
        loss = F.cross_entropy(logits, targets[s:e])
        return loss, {"loss_class": loss.detach(),
                      "labelled_error": (logits.detach().argmax(dim=1) != targets[s:e]).to(logits.dtype).mean()}

    run_phase(optimizers, shard, classification_loss, stats, ctx.world_size)
