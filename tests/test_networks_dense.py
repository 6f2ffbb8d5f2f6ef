"""Equalized and ordinary layers: the same function from the same draws, the effective steps an
Adam step gives each (written out in float64), the references' initialisations."""
import math

import pytest
import torch

from alae.networks.dense import Dense, OrdinaryLinear
from alae.networks.layers import EqualizedLinear


@pytest.fixture(autouse=True)
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("activation", ["linear", "lrelu", "relu"])
def test_ordinary_he_layers_are_the_equalized_layers_function_at_initialisation(activation):
    torch.manual_seed(3)
    equalized = EqualizedLinear(64, 32, activation=activation, slope=0.1)
    torch.manual_seed(3)
    ordinary = OrdinaryLinear(64, 32, activation, 0.1, init="he")
    x = torch.randn(5, 64)
    torch.testing.assert_close(ordinary(x), equalized(x), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(ordinary.weight, equalized.weight * math.sqrt(2 / 64), rtol=1e-15, atol=0)


def adam_first_step(param: torch.Tensor, grad: torch.Tensor, lr: float, eps: float) -> torch.Tensor:
    """Adam's first update written out: m̂ = g, v̂ = g² after bias correction, Δ = −lr·g/(|g| + ε)."""
    return param - lr * grad / (grad.abs() + eps)


@pytest.mark.parametrize("fan_in", [16, 1024])
def test_one_adam_step_moves_an_equalized_weight_c_times_less(fan_in):
    """The same loss and the same Adam: the ordinary weight moves by lr·g/(|g| + ε); the equalized
    layer's parameter moves by that of its own gradient, c = √2/√fan_in times the weight's, so the
    weight it uses moves by c·lr·g/(|g| + c·ε): about c times less (a 1024-wide layer: 1/22.6)."""
    lr, eps = 1e-3, 1e-8
    torch.manual_seed(0)
    equalized = EqualizedLinear(fan_in, 8)
    torch.manual_seed(0)
    ordinary = OrdinaryLinear(fan_in, 8, init="he")
    x, target = torch.randn(4, fan_in), torch.randn(4, 8)
    c = math.sqrt(2) / math.sqrt(fan_in)
    steps = {}
    for name, layer, scale in (("ordinary", ordinary, 1.0), ("equalized", equalized, c)):
        w0 = layer.weight.detach().clone()
        ((layer(x) - target) ** 2).sum().backward()
        g = layer.weight.grad.clone()
        torch.optim.Adam(layer.parameters(), lr=lr, eps=eps).step()
        torch.testing.assert_close(layer.weight.detach(), adam_first_step(w0, g, lr, eps), rtol=1e-13, atol=1e-16)
        steps[name] = scale * (layer.weight.detach() - w0)  # the change of the weight the layer uses
        torch.testing.assert_close(g, scale * ordinary.weight.grad, rtol=1e-12, atol=1e-15)  # chain rule
    expected = -c * lr * (c * ordinary.weight.grad) / ((c * ordinary.weight.grad).abs() + eps)
    torch.testing.assert_close(steps["equalized"], expected, rtol=1e-12, atol=1e-18)
    ratio = (steps["equalized"].abs() / steps["ordinary"].abs()).median().item()
    assert ratio == pytest.approx(c, rel=1e-3)


def test_the_references_initialisations():
    torch.manual_seed(0)
    layer = OrdinaryLinear(400, 3000, init="torch")  # nn.Linear's: U(±1/√fan_in) for weight and bias
    bound = 1 / math.sqrt(400)
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    # a uniform's std is bound/√3: within 5 standard errors of the sample std over n draws
    n = layer.weight.numel()
    assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 5 * (bound / math.sqrt(3)) / math.sqrt(2 * n)
    torch.manual_seed(0)
    layer = OrdinaryLinear(1000, 1000, init="normal", init_std=0.01)  # musyoku's AAE, the WAE code
    assert torch.equal(layer.bias, torch.zeros(1000))
    assert abs(layer.weight.std().item() - 0.01) < 5 * 0.01 / math.sqrt(2 * layer.weight.numel())
    assert isinstance(Dense("equalized")(4, 2), EqualizedLinear)
    assert isinstance(Dense("ordinary", "torch")(4, 2), OrdinaryLinear)


@pytest.mark.parametrize("activation, slope", [("lrelu", 0.01), ("relu", 0.0), ("linear", 0.0)])
def test_activations_against_torch(activation, slope):
    layer = OrdinaryLinear(6, 4, activation, slope, init="torch")
    x = torch.randn(3, 6)
    pre = x @ layer.weight.t() + layer.bias
    expected = {"lrelu": torch.nn.functional.leaky_relu(pre, slope), "relu": pre.clamp(min=0), "linear": pre}
    torch.testing.assert_close(layer(x), expected[activation], rtol=1e-14, atol=1e-14)


def test_an_ordinary_layers_lr_mul_stores_the_weight_divided_and_scales_adams_step():
    torch.manual_seed(0)
    plain = OrdinaryLinear(8, 4, init="torch")
    torch.manual_seed(0)
    slow = OrdinaryLinear(8, 4, init="torch", lr_mul=0.1)
    x, w0 = torch.randn(3, 8), plain.weight.detach().clone()
    torch.testing.assert_close(slow(x), plain(x), rtol=1e-14, atol=1e-14)  # the same function
    torch.testing.assert_close(slow.weight * 0.1, w0, rtol=1e-15, atol=0)
    for layer in (plain, slow):
        layer(x).square().sum().backward()
        torch.optim.Adam(layer.parameters(), lr=1e-3, eps=1e-30).step()
    # Adam's first step moves each stored weight by lr·sign(g): the weight used moves by m·lr·sign(g)
    step = -1e-3 * torch.sign(plain.weight.grad)
    torch.testing.assert_close(plain.weight.detach() - w0, step, rtol=1e-9, atol=1e-15)
    torch.testing.assert_close(slow.weight.detach() * 0.1 - w0, 0.1 * step, rtol=1e-9, atol=1e-15)
