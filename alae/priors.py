"""The priors p(z) that codes are matched to (AAE, WAE) or drawn from (every objective's samples).

Every prior has `dim`, `name`, `classes` (the number of label classes it can be conditioned on,
0 when it takes none), `sample(count, generator, labels=None)` → float32 [count, dim] on the CPU
and, in closed form, `mean()` → float64 [dim] and `covariance()` → float64 [dim, dim].

`sample` draws from `generator` only, a fixed number of values in a fixed order (the mixture
and the swiss roll: first a uniform class for every row, then the noise of every row), so the
same generator state gives the same samples and row i depends only on its own draws and its own
label. Labels are int64 [count] in [0, K] (K = `classes`): label k < K conditions row i on
component or class k; K means unlabelled (the uniformly drawn class is used), as does passing no
labels at all.

- gaussian: N(0, std²·I); `sample` is exactly std·torch.randn((count, dim), generator=generator).
- mixture (the AAE paper's mixture of 10 2-D Gaussians, Makhzani et al. 2015, in the common
  parametrisation of DESIGN.md): K components; component k has its mean at distance `radius`
  from the origin along θk = 2πk/K in the plane of coordinates 0 and 1, and there the
  covariance R(θk)·diag(radial_std², tangential_std²)·R(θk)ᵀ (its long axis radial). Our
  choice, so that it exists for any latent size dim >= 2: the other coordinates are independent
  N(0, tangential_std²) in every component. Over a uniform component, the mean is the mean of
  the component means (0 for K >= 2) and the covariance the mean of the component covariances
  plus the covariance of the component means.
- swiss_roll (the AAE paper's Swiss roll, 2-D): class k, u = (U(0, 1) + k)/K, r = 3√u,
  θ = 4π√u, z = (r cos θ, r sin θ). With s = √u, of density 2s on [0, 1] over a uniform class,
  and a = 4π: E[z] = (6∫s² cos(as) ds, 6∫s² sin(as) ds) = (12/a², −6/a) = (3/(4π²), −3/(2π));
  E[x²] = 9/4 + 27/(4a²), E[y²] = 9/4 − 27/(4a²), E[xy] = −9/(2a) + 27/(4a³) (from
  ∫s³ cos(2as) ds = 3/(4a²) and ∫s³ sin(2as) ds = −1/(2a) + 3/(4a³), all on [0, 1]).
- with_category (`WithCategory`, the AAE paper's decoder input [z, y]): z from a base prior, y
  the one-hot of a uniform class of K (labels condition y); `sample` draws the base prior's
  values first, then one uniform class per row. Mean [E z, 1/K…]; covariance block-diagonal,
  the base's and the categorical's diag(p) − ppᵀ with p = 1/K.
"""
from __future__ import annotations

import inspect
import math
from typing import Protocol

import torch

PRIORS = ("gaussian", "mixture", "swiss_roll")


class Prior(Protocol):
    """What every prior offers (module docstring)."""

    name: str
    dim: int
    classes: int

    def sample(self, count: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor: ...

    def mean(self) -> torch.Tensor: ...

    def covariance(self) -> torch.Tensor: ...


def _checked_labels(labels: torch.Tensor, count: int, classes: int) -> torch.Tensor:
    """`labels` as int64 [count] on the CPU; ValueError unless they are integers in [0, classes]."""
    if labels.shape != (count,) or labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"prior labels must be integers of shape ({count},), "
                         f"got {labels.dtype} of shape {tuple(labels.shape)}")
    labels = labels.to("cpu", torch.int64)
    if count and (int(labels.min()) < 0 or int(labels.max()) > classes):
        raise ValueError(f"prior labels must lie in [0, {classes}] ({classes}: unlabelled), "
                         f"got values in [{int(labels.min())}, {int(labels.max())}]")
    return labels


def _classes_of(count: int, classes: int, generator: torch.Generator, labels: torch.Tensor | None) -> torch.Tensor:
    """Each row's class, int64 [count]: its label, or a uniform draw where unlabelled. The uniform
    draw is made for every row whatever the labels, so the draws that follow do not depend on them."""
    drawn = torch.randint(0, classes, (count,), generator=generator)
    if labels is None:
        return drawn
    labels = _checked_labels(labels, count, classes)
    return torch.where(labels == classes, drawn, labels)


class GaussianPrior:
    """N(0, std²·I) over `dim` coordinates; takes no labels."""

    name = "gaussian"
    classes = 0

    def __init__(self, dim: int, std: float = 1.0):
        if dim < 1:
            raise ValueError(f"the gaussian prior needs dim >= 1, got {dim}")
        if not std > 0:
            raise ValueError(f"the gaussian prior needs std > 0, got {std}")
        self.dim, self.std = dim, std

    def sample(self, count: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        """std·torch.randn((count, dim), generator=generator); labels, if any, must all be 0 (unlabelled)."""
        if labels is not None:
            _checked_labels(labels, count, self.classes)
        return self.std * torch.randn((count, self.dim), generator=generator)

    def mean(self) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=torch.float64)

    def covariance(self) -> torch.Tensor:
        return self.std**2 * torch.eye(self.dim, dtype=torch.float64)


class MixturePrior:
    """K Gaussians on a circle in the first two coordinates (module docstring); dim >= 2."""

    name = "mixture"

    def __init__(self, dim: int, components: int = 10, radius: float = 1.4, radial_std: float = 0.5,
                 tangential_std: float = 0.05):
        if dim < 2:
            raise ValueError(f"the mixture prior places its components in a plane: dim must be >= 2, got {dim}")
        if components < 1:
            raise ValueError(f"the mixture prior needs components >= 1, got {components}")
        if not (radial_std > 0 and tangential_std > 0):
            raise ValueError(f"the mixture prior needs radial_std > 0 and tangential_std > 0, "
                             f"got {radial_std} and {tangential_std}")
        self.dim, self.classes, self.radius = dim, components, radius
        self.radial_std, self.tangential_std = radial_std, tangential_std

    def angles(self) -> torch.Tensor:
        """θk = 2πk/K, float64 [K]."""
        return 2 * math.pi * torch.arange(self.classes, dtype=torch.float64) / self.classes

    def component_means(self) -> torch.Tensor:
        """float64 [K, dim]: radius·(cos θk, sin θk, 0, …)."""
        means = torch.zeros(self.classes, self.dim, dtype=torch.float64)
        means[:, 0], means[:, 1] = self.radius * self.angles().cos(), self.radius * self.angles().sin()
        return means

    def component_covariances(self) -> torch.Tensor:
        """float64 [K, dim, dim]: R(θk)·diag(radial_std², tangential_std²)·R(θk)ᵀ in the plane,
        tangential_std² on the rest of the diagonal."""
        cos, sin = self.angles().cos(), self.angles().sin()
        rotations = torch.stack([torch.stack([cos, -sin], dim=1), torch.stack([sin, cos], dim=1)], dim=1)
        axes = torch.diag(torch.tensor([self.radial_std**2, self.tangential_std**2], dtype=torch.float64))
        cov = self.tangential_std**2 * torch.eye(self.dim, dtype=torch.float64).repeat(self.classes, 1, 1)
        cov[:, :2, :2] = rotations @ axes @ rotations.transpose(1, 2)
        return cov

    def sample(self, count: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        k = _classes_of(count, self.classes, generator, labels)
        noise = torch.randn((count, self.dim), generator=generator)
        theta = (2 * math.pi / self.classes) * k.to(torch.float32)
        cos, sin = theta.cos(), theta.sin()
        radial = self.radius + self.radial_std * noise[:, 0]
        tangential = self.tangential_std * noise[:, 1]
        z = self.tangential_std * noise
        z[:, 0] = radial * cos - tangential * sin
        z[:, 1] = radial * sin + tangential * cos
        return z

    def mean(self) -> torch.Tensor:
        return self.component_means().mean(dim=0)

    def covariance(self) -> torch.Tensor:
        centred = self.component_means() - self.mean()
        return self.component_covariances().mean(dim=0) + centred.T @ centred / self.classes


class SwissRollPrior:
    """The AAE paper's 2-D Swiss roll with K classes (module docstring)."""

    name = "swiss_roll"

    def __init__(self, dim: int = 2, classes: int = 10):
        if dim != 2:
            raise ValueError(f"the swiss_roll prior is 2-D: dim must be 2, got {dim}")
        if classes < 1:
            raise ValueError(f"the swiss_roll prior needs classes >= 1, got {classes}")
        self.dim, self.classes = dim, classes

    def sample(self, count: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        k = _classes_of(count, self.classes, generator, labels)
        s = ((torch.rand(count, generator=generator) + k.to(torch.float32)) / self.classes).sqrt()
        r, theta = 3 * s, 4 * math.pi * s
        return torch.stack([r * theta.cos(), r * theta.sin()], dim=1)

    def mean(self) -> torch.Tensor:
        return torch.tensor([3 / (4 * math.pi**2), -3 / (2 * math.pi)], dtype=torch.float64)

    def covariance(self) -> torch.Tensor:
        a = 4 * math.pi
        second = torch.tensor([[9 / 4 + 27 / (4 * a**2), -9 / (2 * a) + 27 / (4 * a**3)],
                               [-9 / (2 * a) + 27 / (4 * a**3), 9 / 4 - 27 / (4 * a**2)]], dtype=torch.float64)
        return second - torch.outer(self.mean(), self.mean())


class WithCategory:
    """[z, y]: z [dim − K] from `base` (which takes no labels here), y [K] a one-hot class; classes = K."""

    def __init__(self, base: Prior, categories: int):
        if categories < 1:
            raise ValueError(f"a categorical code needs categories >= 1, got {categories}")
        self.base, self.classes = base, categories
        self.name, self.dim = f"{base.name}+categorical", base.dim + categories

    def sample(self, count: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = self.base.sample(count, generator)
        k = _classes_of(count, self.classes, generator, labels)
        return torch.cat([z, torch.nn.functional.one_hot(k, self.classes).to(z.dtype)], dim=1)

    def mean(self) -> torch.Tensor:
        return torch.cat([self.base.mean(), torch.full((self.classes,), 1 / self.classes, dtype=torch.float64)])

    def covariance(self) -> torch.Tensor:
        p = torch.full((self.classes,), 1 / self.classes, dtype=torch.float64)
        return torch.block_diag(self.base.covariance(), torch.diag(p) - torch.outer(p, p))


_CLASSES = {"gaussian": GaussianPrior, "mixture": MixturePrior, "swiss_roll": SwissRollPrior}


def make_prior(name: str, dim: int, **options) -> Prior:
    """The prior called `name` (one of PRIORS) over `dim` coordinates, with its keyword `options`;
    ValueError with a one-line message for an unknown name or option, or values it cannot take."""
    if name not in _CLASSES:
        raise ValueError(f"unknown prior {name!r}; known: {', '.join(PRIORS)}")
    cls = _CLASSES[name]
    known = [p for p in inspect.signature(cls).parameters if p != "dim"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"the {name} prior has no option {', '.join(unknown)}; it takes: {', '.join(known)}")
    return cls(dim, **options)
