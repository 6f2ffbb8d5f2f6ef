"""alae.priors against moments derived by hand here: the Gaussian's, the mixture's (overall and
per component), the Swiss roll's (its points on the spiral, each class in its band of radii, its
closed-form moments against numerical integration); determinism; the errors of make_prior."""
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from alae.priors import PRIORS, GaussianPrior, MixturePrior, SwissRollPrior, make_prior

SAMPLES = 200_000
RHO, RADIAL, TANGENTIAL = 1.4, 0.5, 0.05  # the mixture's defaults (DESIGN.md)


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_moments(z: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, sigmas: float = 5.0) -> None:
    """The sample mean and covariance of z match (mean, cov) within `sigmas` standard errors of the
    estimators (estimated from the sample itself), plus float32 rounding."""
    z = z.double()
    n = z.shape[0]
    err_mean = z.std(0) / math.sqrt(n)
    assert ((z.mean(0) - mean).abs() <= sigmas * err_mean + 1e-6).all(), (z.mean(0), mean)
    centred = z - mean
    products = centred[:, :, None] * centred[:, None, :]
    err_cov = products.std(0) / math.sqrt(n)
    assert ((products.mean(0) - cov).abs() <= sigmas * err_cov + 1e-6).all(), (products.mean(0), cov)


def rotated(theta: float, a: float, b: float) -> np.ndarray:
    """R(θ)·diag(a, b)·R(θ)ᵀ written out."""
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[a * c * c + b * s * s, (a - b) * c * s], [(a - b) * c * s, a * s * s + b * c * c]])


# --- gaussian ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("std", [1.0, 0.3, 2.5])
def test_gaussian_sample_is_std_times_randn_bit_for_bit(std):
    prior = GaussianPrior(7, std)
    reference = std * torch.randn((33, 7), generator=g(5))
    assert torch.equal(prior.sample(33, g(5)), reference)
    assert torch.equal(prior.sample(33, g(5), torch.zeros(33, dtype=torch.int64)), reference)  # 0 = unlabelled
    z = prior.sample(4, g(0))
    assert z.dtype == torch.float32 and z.device.type == "cpu" and z.shape == (4, 7)


def test_gaussian_moments():
    prior = GaussianPrior(4, std=0.7)
    assert (prior.dim, prior.name, prior.classes) == (4, "gaussian", 0)
    assert torch.equal(prior.mean(), torch.zeros(4, dtype=torch.float64))
    assert torch.allclose(prior.covariance(), 0.49 * torch.eye(4, dtype=torch.float64), rtol=1e-15)
    assert_moments(prior.sample(SAMPLES, g(1)), torch.zeros(4, dtype=torch.float64),
                   0.49 * torch.eye(4, dtype=torch.float64))


# --- mixture ----------------------------------------------------------------------------------------

def mixture_moments_by_hand(components: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Overall (mean, covariance) of the default mixture with a uniform component."""
    mean, cov = np.zeros(dim), np.diag([TANGENTIAL**2] * dim)
    if components == 1:  # one component at angle 0: its own mean and axis-aligned covariance
        mean[0] = RHO
        cov[0, 0], cov[1, 1] = RADIAL**2, TANGENTIAL**2
    elif components == 2:  # angles 0 and π: both covariances diag(r², t²); means ±ρ on x
        cov[0, 0], cov[1, 1] = RADIAL**2 + RHO**2, TANGENTIAL**2
    else:  # K >= 3 equally spaced angles: rotations average to ((a + b)/2)·I, the means' covariance (ρ²/2)·I
        cov[0, 0] = cov[1, 1] = (RADIAL**2 + TANGENTIAL**2) / 2 + RHO**2 / 2
    return mean, cov


@pytest.mark.parametrize("components,dim", [(10, 4), (10, 2), (3, 3), (2, 2), (1, 3)])
def test_mixture_moments(components, dim):
    prior = MixturePrior(dim, components)
    assert (prior.dim, prior.name, prior.classes) == (dim, "mixture", components)
    mean, cov = (torch.from_numpy(a) for a in mixture_moments_by_hand(components, dim))
    assert torch.allclose(prior.mean(), mean, rtol=0, atol=1e-14)
    assert torch.allclose(prior.covariance(), cov, rtol=1e-12, atol=1e-15)
    assert_moments(prior.sample(SAMPLES, g(2)), mean, cov)


@pytest.mark.parametrize("k", [0, 3, 7])
def test_mixture_conditioned_on_a_label_is_that_component(k):
    prior = MixturePrior(3, 10)
    theta = 2 * math.pi * k / 10
    mean = torch.tensor([RHO * math.cos(theta), RHO * math.sin(theta), 0.0], dtype=torch.float64)
    cov = np.diag([0.0, 0.0, TANGENTIAL**2])
    cov[:2, :2] = rotated(theta, RADIAL**2, TANGENTIAL**2)
    cov = torch.from_numpy(cov)
    assert torch.allclose(prior.component_means()[k], mean, atol=1e-15)
    assert torch.allclose(prior.component_covariances()[k], cov, atol=1e-15)
    z = prior.sample(SAMPLES, g(3), torch.full((SAMPLES,), k))
    assert_moments(z, mean, cov)


def test_mixture_unlabelled_rows_draw_their_component_uniformly():
    prior = MixturePrior(2, 4)
    labels = torch.full((SAMPLES,), 4)  # 4 = K: unlabelled
    assert torch.equal(prior.sample(SAMPLES, g(4), labels), prior.sample(SAMPLES, g(4)))
    labels[: SAMPLES // 2] = 1
    z = prior.sample(SAMPLES, g(4), labels)
    assert_moments(z[: SAMPLES // 2], prior.component_means()[1], prior.component_covariances()[1])
    assert_moments(z[SAMPLES // 2:], prior.mean(), prior.covariance())


# --- swiss roll -------------------------------------------------------------------------------------

def swiss_roll_moments_by_quadrature() -> tuple[torch.Tensor, torch.Tensor]:
    """E[z] and Cov[z] over s = √u with density 2s on [0, 1], by numerical integration."""
    def e(f):
        return quad(lambda s: 2 * s * f(s), 0, 1, limit=200, epsabs=1e-13)[0]
    a = 4 * math.pi
    x, y = (lambda s: 3 * s * math.cos(a * s)), (lambda s: 3 * s * math.sin(a * s))
    mean = torch.tensor([e(x), e(y)], dtype=torch.float64)
    second = torch.tensor([[e(lambda s: x(s) ** 2), e(lambda s: x(s) * y(s))],
                           [e(lambda s: x(s) * y(s)), e(lambda s: y(s) ** 2)]], dtype=torch.float64)
    return mean, second - torch.outer(mean, mean)


def test_swiss_roll_closed_forms():
    prior = SwissRollPrior()
    assert (prior.dim, prior.name, prior.classes) == (2, "swiss_roll", 10)
    # 6∫s²cos(4πs)ds = 6·2/(4π)² and 6∫s²sin(4πs)ds = −6/(4π) (by parts, sin 4π = 0, cos 4π = 1)
    assert torch.allclose(prior.mean(), torch.tensor([3 / (4 * math.pi**2), -3 / (2 * math.pi)], dtype=torch.float64),
                          rtol=1e-15)
    mean, cov = swiss_roll_moments_by_quadrature()
    assert torch.allclose(prior.mean(), mean, rtol=1e-10, atol=1e-12)
    assert torch.allclose(prior.covariance(), cov, rtol=1e-10, atol=1e-12)
    assert math.isclose(float(prior.covariance().trace() + prior.mean().square().sum()), 4.5, rel_tol=1e-12)  # 9·E[u]


def test_swiss_roll_points_lie_on_the_spiral_in_their_class_band():
    prior, classes = SwissRollPrior(2, 10), 10
    labels = torch.arange(SAMPLES) % (classes + 1)  # every class and the unlabelled value 10
    z = prior.sample(SAMPLES, g(6), labels).double()
    r, angle = z.norm(dim=1), torch.atan2(z[:, 1], z[:, 0])
    off = torch.remainder(angle - 4 * math.pi * r / 3 + math.pi, 2 * math.pi) - math.pi
    assert off.abs().max() < 1e-5
    assert r.max() <= 3 + 1e-6
    for k in range(classes):
        band = r[labels == k]
        assert band.min() >= 3 * math.sqrt(k / classes) - 1e-6 and band.max() <= 3 * math.sqrt((k + 1) / classes) + 1e-6
        # u is uniform in the band: its mean is (k + ½)/K
        u = (band / 3) ** 2
        assert abs(float(u.mean()) - (k + 0.5) / classes) < 5 * (1 / classes) / math.sqrt(12 * len(u))


def test_swiss_roll_sample_moments():
    prior = SwissRollPrior()
    assert_moments(prior.sample(SAMPLES, g(7)), prior.mean(), prior.covariance())


# --- every prior ------------------------------------------------------------------------------------

PRIOR_CASES = [GaussianPrior(5, 1.3), MixturePrior(5), SwissRollPrior()]


@pytest.mark.parametrize("prior", PRIOR_CASES, ids=lambda p: p.name)
def test_sampling_is_deterministic_in_the_generator_only(prior):
    a, b, c = prior.sample(64, g(11)), prior.sample(64, g(11)), prior.sample(64, g(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32 and a.shape == (64, prior.dim) and a.device.type == "cpu"
    assert prior.mean().dtype == torch.float64 and prior.mean().shape == (prior.dim,)


@pytest.mark.parametrize("prior", PRIOR_CASES[1:], ids=lambda p: p.name)
def test_a_row_depends_only_on_its_own_label(prior):
    labels = torch.full((64,), prior.classes)
    changed = labels.clone()
    changed[5] = 2
    a, b = prior.sample(64, g(13), labels), prior.sample(64, g(13), changed)
    assert torch.equal(torch.cat([a[:5], a[6:]]), torch.cat([b[:5], b[6:]]))
    assert torch.equal(b[5:6], prior.sample(64, g(13), torch.full((64,), 2))[5:6])


@pytest.mark.parametrize("prior", PRIOR_CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("labels", ["too_big", "negative", "float", "bool", "shape"])
def test_bad_labels_are_refused(prior, labels):
    bad = {"too_big": torch.full((8,), prior.classes + 1), "negative": torch.full((8,), -1),
           "float": torch.zeros(8), "bool": torch.zeros(8, dtype=torch.bool), "shape": torch.zeros(7, dtype=torch.int64)}[labels]
    with pytest.raises(ValueError, match="labels"):
        prior.sample(8, g(0), bad)


def test_make_prior_builds_each_prior_with_its_options():
    assert PRIORS == ("gaussian", "mixture", "swiss_roll")
    gaussian = make_prior("gaussian", 8, std=2.0)
    assert isinstance(gaussian, GaussianPrior) and gaussian.std == 2.0 and gaussian.dim == 8
    mixture = make_prior("mixture", 3, components=6, radius=2.0, radial_std=0.4, tangential_std=0.1)
    assert isinstance(mixture, MixturePrior) and mixture.classes == 6 and mixture.dim == 3
    assert (mixture.radius, mixture.radial_std, mixture.tangential_std) == (2.0, 0.4, 0.1)
    roll = make_prior("swiss_roll", 2, classes=4)
    assert isinstance(roll, SwissRollPrior) and roll.classes == 4
    assert [make_prior(name, 2).name for name in PRIORS] == list(PRIORS)


@pytest.mark.parametrize("name,dim,options,match", [
    ("uniform", 2, {}, "unknown prior 'uniform'"),
    ("swiss_roll", 3, {}, "dim must be 2"),
    ("mixture", 1, {}, "dim must be >= 2"),
    ("mixture", 2, {"components": 0}, "components >= 1"),
    ("swiss_roll", 2, {"classes": 0}, "classes >= 1"),
    ("mixture", 2, {"radial_std": 0.0}, "radial_std > 0"),
    ("mixture", 2, {"tangential_std": -0.1}, "tangential_std > 0"),
    ("gaussian", 2, {"std": 0.0}, "std > 0"),
    ("gaussian", 0, {}, "dim >= 1"),
    ("gaussian", 2, {"components": 3}, "no option components"),
])
def test_make_prior_errors_are_one_line_value_errors(name, dim, options, match):
    with pytest.raises(ValueError, match=match) as error:
        make_prior(name, dim, **options)
    assert "\n" not in str(error.value)
