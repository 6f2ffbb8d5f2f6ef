"""alae.plots: the 2-D projection against scikit-learn's PCA, the sweep's grid against numpy's
percentiles, and each figure written as a PNG."""
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.decomposition import PCA

from alae import plots


def test_two_dimensional_codes_are_shown_as_they_are():
    codes = np.random.RandomState(0).randn(50, 2)
    points, axes = plots.project_2d(codes)
    np.testing.assert_array_equal(points, codes)
    assert axes == ("code 1", "code 2")


def test_larger_codes_are_projected_on_their_principal_components():
    rng = np.random.RandomState(1)
    codes = rng.randn(200, 6) * np.array([5.0, 2.0, 1.0, 0.5, 0.2, 0.1]) + 3
    heads = rng.randn(4, 6) * 3
    points, (x_label, y_label), projected_heads = plots.project_2d(codes, heads)
    reference = PCA(2).fit(codes)
    expected = reference.transform(codes)
    signs = np.sign((points * expected).sum(axis=0))  # components are defined up to sign
    np.testing.assert_allclose(points * signs, expected, atol=1e-9)
    np.testing.assert_allclose(projected_heads * signs, reference.transform(heads), atol=1e-9)  # other points: the codes' map
    assert "PC 1 of the 6-D codes" in x_label and f"{reference.explained_variance_ratio_[0]:.0%}" in x_label


def test_the_sweep_spans_the_codes_percentiles_row_major():
    codes = np.random.RandomState(2).randn(500, 2) * [1.0, 3.0]
    grid = plots.sweep_codes(codes, 5).reshape(5, 5, 2)
    low, high = np.percentile(codes, plots.SWEEP_PERCENTILES, axis=0)
    np.testing.assert_allclose(grid[0, :, 0], np.linspace(low[0], high[0], 5))  # across: code 1
    np.testing.assert_allclose(grid[:, 0, 1], np.linspace(high[1], low[1], 5))  # down: code 2, largest on top
    with pytest.raises(ValueError, match="2-D codes"):
        plots.sweep_codes(np.zeros((4, 3)), 5)


def test_figures_are_written(tmp_path):
    rng = np.random.RandomState(3)
    codes, labels = rng.randn(100, 4), rng.randint(0, 10, 100)
    assert Image.open(plots.latent_scatter(codes, labels, tmp_path / "scatter.png")).format == "PNG"
    assert Image.open(plots.latent_scatter(codes[:, :1], None, tmp_path / "one.png")).format == "PNG"
    seen = []

    def decode(grid):
        seen.append(grid)
        return torch.zeros(len(grid), 1, 64, 64)

    sweep = Image.open(plots.manifold_sweep(decode, codes[:, :2], tmp_path / "sweep.png", steps=4))
    np.testing.assert_allclose(torch.cat(seen).numpy(), plots.sweep_codes(codes[:, :2], 4), rtol=1e-6)
    assert sweep.size == (4 * 65 + 1, 4 * 65 + 1)  # grid_uint8: 1-pixel borders
    rows = [{"kimg": k, "loss_d": 1.0 / (k + 1), "loss_rec": 100.0 - k, "lr": 0.1} for k in range(5)]
    assert Image.open(plots.loss_curves(rows, tmp_path / "losses.png")).format == "PNG"
