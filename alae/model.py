"""One latent-autoencoder model: the networks an objective trains, and the operations around its
codes (style broadcast and mixing, truncation toward the mean code, sampling, reconstruction).

Every objective (`train.objective`) has an encoder E: images → codes and a generator G: codes →
images, on either backbone (`model.backbone`: style or mlp); what else it has comes from the
objective's traits (`alae.config.Traits`): the mapping F: z → w (ALAE: its codes are w), a
discriminator D on codes (ALAE, AAE, WAE-GAN), the posterior E gives. Shapes: z, codes
[N, latent_dim]; styles [N, num_style_layers, latent_dim] (the code on every style layer; one
layer for mlp); images [N, image_channels, R, R], R = model.resolution_at(lod), in [−1, 1].

With cluster heads (the AAE's dimensionality reduction, Traits.cluster_heads) G takes instead the
representation y·W_c + z [N, latent_dim], W_c [K, latent_dim] the heads (`heads`: a parameter, or
the buffer scale·I); its codes are then those representations, and w_avg is 0.
With a categorical code of K classes (AAE: `aae.categories`) the code G takes is [z, y]: E's softmax
head (`categories_from` encoder: the model can `classify`, and a second discriminator `Dy`
matches y to one-hot classes) or the image's one-hot label (`label`: `encode` needs the labels).
Codes are then [N, latent_dim + K] (`code_dim`), the prior's samples [z, one-hot].

`w_avg` is the mean code: with a mapping the running mean of w = F(z) (the original's
dlatent_avg), else the prior's mean (fixed). Truncation moves codes toward it.

Images are [−1, 1] outside the networks; E takes them in `model.pixel_range` ([0, 1]: x/255, as
the original's MNIST model and the VAE and WAE references), and G's raw output becomes an image
by the objective's decoder output (`image_of`: linear in the pixel range, sigmoid, tanh).
"""
from __future__ import annotations

import torch
from torch import nn

from alae.config import Config, Traits
from alae.errors import UserError
from alae.likelihoods import negative_log_likelihood
from alae.networks.dense import Dense
from alae.networks.mlp import MLPEncoder, MLPGenerator
from alae.networks.style import Discriminator, Encoder, Generator, MappingNetwork
from alae.priors import Prior, WithCategory, make_prior

COMPUTE_DTYPES = {"fp32": None, "bf16": torch.bfloat16}  # train.precision → LatentAutoencoder.compute_dtype
UNIVERSAL_NOISE_CHANNELS = 1  # posterior universal: E(x, η) with η one extra N(0, 1) input channel (ours)


class ModelInputError(UserError, ValueError):
    """The model cannot do what was asked with the inputs given (a class head it lacks, the labels
    its decoder needs); the message is one line."""


def prior_for(traits: Traits, latent_dim: int) -> Prior:
    """The prior of the codes (the objective's prior over `latent_dim`, with its components); with
    a categorical code, followed by a one-hot class (WithCategory)."""
    options = {"mixture": {"components": traits.prior_components}, "swiss_roll": {"classes": traits.prior_components}}
    prior = make_prior(traits.prior, latent_dim, **options.get(traits.prior, {}))
    return WithCategory(prior, traits.categories) if traits.categories else prior


class LatentAutoencoder(nn.Module):
    """F (with a mapping, else None), G, E, D (with a code discriminator, else None) and `w_avg`,
    built from a validated Config and its objective's traits; `compute_dtype` (None or
    torch.bfloat16, COMPUTE_DTYPES[train.precision]) is fixed when built."""

    def __init__(self, cfg: Config, compute_dtype: torch.dtype | None = None):
        super().__init__()
        m, traits = cfg.model, cfg.traits
        self.objective = cfg.train.objective  # its name, for messages and files
        self.traits = traits
        self.posterior = traits.posterior
        self.backbone = m.backbone
        self.model_config = m
        self.num_lods = m.num_lods
        self.num_style_layers = m.num_style_layers
        self.latent_dim = m.latent_dim
        self.resolution = m.resolution
        self.image_channels = m.image_channels
        self.output = traits.decoder_output  # linear | sigmoid | tanh (image_of)
        self.unit_pixels = m.pixel_range == [0, 1]  # E takes, and a linear G gives, pixels in [0, 1]
        self.likelihood, self.likelihood_std = traits.likelihood, traits.likelihood_std  # p(x | z), None without
        self.prior = prior_for(traits, m.latent_dim)
        self.label_classes = traits.prior_components if traits.prior_labels else 0  # D's one-hot has one more: unlabelled
        self.noise_channels = UNIVERSAL_NOISE_CHANNELS if self.posterior == "universal" else 0
        self.categories = traits.categories
        self.decoder_labels = traits.decoder_labels
        self.class_head = traits.class_head  # K of E's softmax
        # The class head's categories are the database's classes (it learnt from labels), not clusters.
        self.labelled_classes = bool(self.class_head) and cfg.data.labelled > 0
        self.code_dim = m.latent_dim + traits.categories  # a prior sample's size: [z, one-hot]
        self.cluster_heads = traits.cluster_heads
        decoder_dim = m.latent_dim if self.cluster_heads != "none" else self.code_dim  # what G takes
        if self.cluster_heads == "learnt":  # musyoku's dimensionality reduction: W_c ~ N(0, 1)
            self.heads = nn.Parameter(torch.randn(traits.categories, m.latent_dim))
        elif self.cluster_heads == "identity":
            self.register_buffer("heads", traits.cluster_head_scale * torch.eye(traits.categories))
        encoder_out = (2 * m.latent_dim if self.posterior == "gaussian" else m.latent_dim) + self.class_head
        encoder_in = m.image_channels + self.noise_channels
        dense = Dense(m.layers, m.init, m.init_std)  # the mlp networks' and the adversaries' layers
        self.F = MappingNetwork(m.latent_dim, m.mapping_layers, m.mapping_lr_mul) if traits.mapping else None
        if m.backbone == "style":
            self.G = Generator(m.channels, decoder_dim, m.image_channels, m.fused_scale_resolution, m.to_rgb_gain)
            self.E = Encoder(m.channels, encoder_out, encoder_in, m.encoder_std_eps)
        else:
            self.G = MLPGenerator(decoder_dim, m.mlp_width, m.image_channels, m.resolution, m.mlp_layers,
                                  m.mlp_activation, m.mlp_generator_slope, dense)
            self.E = MLPEncoder(encoder_in, m.resolution, m.mlp_width, encoder_out, traits.encoder_activation,
                                m.mlp_layers, m.mlp_activation, m.mlp_encoder_slope, m.mlp_code_slope, dense)
        self.D = self.Dy = None
        if traits.code_discriminator:
            d_in = m.latent_dim + (self.label_classes + 1 if self.label_classes else 0)
            self.D = Discriminator(d_in, m.discriminator_layers, m.discriminator_outputs, m.discriminator_activation,
                                   m.discriminator_lr_mul, width=m.discriminator_width or None, dense=dense)
        if self.class_head:  # the adversary on y (AAE §5), as D but on the K-dim softmax
            self.Dy = Discriminator(self.class_head, m.discriminator_layers, m.discriminator_outputs,
                                    m.discriminator_activation, m.discriminator_lr_mul,
                                    width=m.discriminator_width or None, dense=dense)
        zero_mean = traits.mapping or self.cluster_heads != "none"
        mean_code = torch.zeros(m.latent_dim) if zero_mean else self.prior.mean().to(torch.get_default_dtype())
        self.register_buffer("w_avg", mean_code)
        # None: float32 everywhere. torch.bfloat16: generate and encode run G's and E's convolutions
        # and linears under bf16 autocast; their statistics, outputs, F, D and all state stay float32.
        self.compute_dtype = compute_dtype

    @property
    def code_name(self) -> str:
        """What a code is called in files: w (F's output), mu (a Gaussian posterior's mean), z (the others)."""
        return "w" if self.F is not None else "mu" if self.posterior == "gaussian" else "z"

    def resolution_at(self, lod: int) -> int:
        """Image side at a level of detail (ModelConfig.resolution_at)."""
        return self.model_config.resolution_at(lod)

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """A prior sample z [N, code_dim] → the code G takes: w = F(z) for ALAE, with cluster heads
        the representation of [z, y] (`code_of`), z itself for the others."""
        if self.F is not None:
            return self.F(z)
        if self.cluster_heads != "none":
            return self.code_of(z[:, :self.latent_dim], z[:, self.latent_dim:])
        return z

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, latent] → styles [N, num_style_layers, latent] (a broadcast view: do not write into it)."""
        return w[:, None, :].expand(-1, self.num_style_layers, -1)

    def crossover_styles(self, w1: torch.Tensor, w2: torch.Tensor, crossover: torch.Tensor, lod: int) -> torch.Tensor:
        """Styles taking w2 on active layers [crossover[n], 2·(lod+1)) and w1 everywhere else.

        w1, w2 [N, latent]; crossover int [N] (2·(lod+1) or more: no mixing; drawn by
        `alae.randomness.crossover_layers` in training) → styles [N, L, latent].
        """
        layer = torch.arange(self.num_style_layers, device=w1.device)[None, :]
        use_w2 = (layer >= crossover.to(w1.device)[:, None]) & (layer < 2 * (lod + 1))
        return torch.where(use_w2[:, :, None], w2[:, None, :], w1[:, None, :])

    def truncate(self, styles: torch.Tensor, psi: float, cutoff: int) -> torch.Tensor:
        """Move the first `cutoff` style layers toward w_avg: w_avg + psi·(w − w_avg); others unchanged."""
        layer = torch.arange(styles.shape[1], device=styles.device)
        coefficient = torch.where(layer < cutoff, psi, 1.0).to(styles.dtype)[None, :, None]
        return torch.lerp(self.w_avg.to(styles.dtype), styles, coefficient)

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor, beta: float) -> None:
        """w_avg ← beta·w_avg + (1 − beta)·mean over the batch of w [N, latent] (original dlatent_avg)."""
        self.w_avg.lerp_(w.detach().mean(dim=0).to(self.w_avg.dtype), 1.0 - beta)

    def _autocast(self, like: torch.Tensor):
        return torch.autocast(like.device.type, dtype=self.compute_dtype or torch.bfloat16,
                              enabled=self.compute_dtype is not None)

    def decode_raw(self, styles: torch.Tensor, lod: int, alpha: float, noise="random") -> torch.Tensor:
        """G's output for styles [N, L, latent], [N, C, R, R] in the dtype of styles: the pixels in
        the pixel range (output 'linear'), or what `image_of` maps to them."""
        with self._autocast(styles):
            return self.G(styles, lod, alpha, noise).to(styles.dtype)

    def image_of(self, raw: torch.Tensor) -> torch.Tensor:
        """G's raw output → images in [−1, 1]: linear (2·raw − 1 for [0, 1] pixels), 2·sigmoid(raw) − 1
        (raw: the logits of [0, 1] pixels) or tanh(raw)."""
        if self.output == "sigmoid":
            return 2 * torch.sigmoid(raw) - 1
        if self.output == "tanh":
            return torch.tanh(raw)
        return 2 * raw - 1 if self.unit_pixels else raw

    @property
    def input_scale(self) -> float:
        """d(E's input pixel) / d(image pixel in [−1, 1]): 1/2 for [0, 1] pixels, else 1."""
        return 0.5 if self.unit_pixels else 1.0

    def negative_log_likelihood(self, raw: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
        """−log p(reals | z) [N] in nats under the model's likelihood, for G's raw output `raw` and
        images `reals` in [−1, 1] (alae.likelihoods: the pixels are compared in [0, 1])."""
        mean = raw if self.likelihood == "bernoulli" else self.image_of(raw)
        return negative_log_likelihood(mean, reals, self.likelihood, self.likelihood_std)

    def generate(self, styles: torch.Tensor, lod: int, alpha: float, noise="random") -> torch.Tensor:
        """styles [N, L, latent] → images [N, C, R, R] in [−1, 1]; noise as `Generator.forward`."""
        return self.image_of(self.decode_raw(styles, lod, alpha, noise))

    def encoder_outputs(self, x: torch.Tensor, lod: int, alpha: float, eta: torch.Tensor | None = None) -> torch.Tensor:
        """E's raw output [N, latent] (or [N, 2·latent]: mean, log-variance) for images x in [−1, 1]
        (given to E in the pixel range); a universal posterior takes its noise eta [N, 1, R, R]
        (None: zeros) as an extra channel."""
        if self.unit_pixels:
            x = (x + 1) * 0.5
        if self.noise_channels:
            eta = x.new_zeros(x.shape[0], self.noise_channels, *x.shape[2:]) if eta is None else eta.to(x.dtype)
            x = torch.cat([x, eta], dim=1)
        with self._autocast(x):
            return self.E(x, lod, alpha).to(x.dtype)

    def posterior_parameters(self, x: torch.Tensor, lod: int, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        """A Gaussian posterior's (mean, log-variance), each [N, latent]."""
        return self.encoder_outputs(x, lod, alpha).chunk(2, dim=1)

    def split_encoder_outputs(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """E's raw output → (its posterior part [N, latent] or [N, 2·latent], the class head's logits
        [N, K] or None without a head)."""
        if not self.class_head:
            return out, None
        return out[:, :-self.class_head], out[:, -self.class_head:]

    def code_of(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code G takes: z [N, latent], with a categorical code [z, y] (y [N, K]: probabilities
        or a one-hot), with cluster heads y·W_c + z; z alone otherwise."""
        if not self.categories:
            return z
        if self.cluster_heads != "none":
            return z + y.to(z.dtype) @ self.heads.to(z.dtype)
        return torch.cat([z, y.to(z.dtype)], dim=1)

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """int labels [N] in [0, K) → float one-hot [N, K] on the model's device."""
        return nn.functional.one_hot(labels.to(self.w_avg.device, torch.int64), self.categories).to(self.w_avg.dtype)

    def encode(self, x: torch.Tensor, lod: int, alpha: float, labels: torch.Tensor | None = None) -> torch.Tensor:
        """images [N, C, R, R] → codes [N, code_dim] in the dtype of x: E(x), a Gaussian posterior's
        mean, a universal posterior's E(x, 0); with a class head followed by its softmax, with
        decoder labels by the one-hot of `labels` (int [N] in [0, K), required: ModelInputError without)."""
        out, logits = self.split_encoder_outputs(self.encoder_outputs(x, lod, alpha))
        z = out[:, :self.latent_dim] if self.posterior == "gaussian" else out
        if self.class_head:
            return self.code_of(z, logits.softmax(dim=1))
        if self.decoder_labels:
            if labels is None:
                raise ModelInputError("the model's decoder takes each image's class label as well "
                                      "(aae.categories_from=label), and none was given with the images")
            return self.code_of(z, self.one_hot(labels))
        return z

    def classify(self, x: torch.Tensor, lod: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """images [N, C, R, R] in [−1, 1] at the resolution of `lod` (default: the last) → the class
        head's probabilities [N, K] (rows sum to 1); ModelInputError for a model without a class head."""
        if not self.class_head:
            raise ModelInputError("the model has no class head (aae.categories with aae.categories_from=encoder)")
        lod = self.num_lods - 1 if lod is None else lod
        _, logits = self.split_encoder_outputs(self.encoder_outputs(x, lod, alpha))
        return logits.softmax(dim=1)

    def discriminate(self, w: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """codes [N, latent] (and, with prior labels, int labels [N] in [0, K]: K is unlabelled) → logits [N]."""
        if self.label_classes:
            w = torch.cat([w, nn.functional.one_hot(labels, self.label_classes + 1).to(w.dtype)], dim=1)
        return self.D(w)

    def sample(self, z: torch.Tensor, lod: int, alpha: float, psi: float = 1.0, cutoff: int = 0,
               noise="random") -> torch.Tensor:
        """z [N, code_dim] (prior samples) → images [N, C, R, R], truncated with (psi, cutoff) when psi < 1."""
        styles = self.broadcast(self.map(z))
        if psi != 1.0 and cutoff > 0:
            styles = self.truncate(styles, psi, cutoff)
        return self.generate(styles, lod, alpha, noise)

    def reconstruct(self, x: torch.Tensor, lod: int, alpha: float, noise="random",
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        """images [N, C, R, R] → G(E(x)) [N, C, R, R] (`labels` as `encode`)."""
        return self.generate(self.broadcast(self.encode(x, lod, alpha, labels)), lod, alpha, noise)
