"""alae.editing.directions against independent references: PCA against numpy's SVD of the centred samples,
SeFa against an eigendecomposition of AᵀA built here from the parameters (and from the layers'
runtime outputs), fit against a known separating direction, scale against the closed-form std of
a Gaussian, orthogonalization against a QR projection; the direction file's layout and errors."""
import json
import math

import numpy as np
import pytest
import torch

from alae.editing.directions import (
    SAMPLE_BLOCK,
    Direction,
    DirectionError,
    compatibility_warning,
    fit_direction,
    import_direction,
    load_direction,
    mapped_samples,
    orthogonalize,
    pca_directions,
    save_direction,
    scale_along,
    sefa_directions,
    style_weight_matrix,
)
from alae.model_files.loading import load_networks, model_fingerprint


@pytest.fixture(scope="module")
def model(tiny_model):
    return load_networks(tiny_model, verbose=False).model


def gaussian(n, variances, seed, mean_scale=2.0):
    """Samples [n, d] of N(mu, Σ) with Σ = Q diag(variances) Qᵀ; returns (samples, Q, Σ)."""
    rng = np.random.default_rng(seed)
    d = len(variances)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    sigma = q @ np.diag(variances) @ q.T
    samples = rng.normal(size=(n, d)) @ (q * np.sqrt(variances)).T + mean_scale * rng.normal(size=d)
    return samples, q, sigma


def unit(v):
    return v / np.linalg.norm(v)


def assert_same_axes(actual, expected, tol):
    """Each pair of vectors spans the same line: |cos| within tol of 1."""
    for a, e in zip(actual, expected):
        assert abs(abs(unit(a) @ unit(e)) - 1) < tol


def assert_sign_convention(vectors):
    for v in vectors:
        assert v[np.argmax(np.abs(v))] > 0


def check_pca_against_svd(w, num):
    components = pca_directions(w, num)
    _, s, vt = np.linalg.svd(w - w.mean(axis=0), full_matrices=False)
    vectors = [c[0] for c in components]
    assert_same_axes(vectors, vt[:num], 1e-9)
    np.testing.assert_allclose([c[1] for c in components], s[:num] / math.sqrt(len(w) - 1), rtol=1e-9)
    np.testing.assert_allclose([c[2] for c in components], s[:num] ** 2 / np.sum(s**2), rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-12)
    assert_sign_convention(vectors)
    return components


def test_pca_of_a_known_gaussian_matches_the_svd_and_the_true_axes():
    variances = np.array([9.0, 4.0, 2.0, 1.0, 0.5, 0.25])
    w, q, _ = gaussian(20000, variances, seed=1)
    components = check_pca_against_svd(w, 6)
    assert_same_axes([c[0] for c in components], q.T, 2e-3)  # the population axes, up to sampling
    np.testing.assert_allclose([c[1] for c in components], np.sqrt(variances), rtol=0.03)


def test_pca_of_the_tiny_models_w_matches_the_svd(model):
    w = mapped_samples(model, 5000, seed=3)
    components = check_pca_against_svd(w, 16)
    for vector, std, _ in components:  # the strength unit of a PCA direction is its std
        assert scale_along(vector, w) == pytest.approx(std, rel=1e-9)


def test_pca_refuses_more_components_than_dimensions_or_samples():
    w, _, _ = gaussian(10, np.ones(4), seed=0)
    with pytest.raises(DirectionError, match="1 to 4 components, 5 were asked"):
        pca_directions(w, 5)
    with pytest.raises(DirectionError, match="1 to 2 components"):
        pca_directions(w[:3], 3)
    flat, _, _ = gaussian(100, np.array([1.0, 1.0, 0.0, 0.0]), seed=0)
    assert len(pca_directions(flat, 2)) == 2
    with pytest.raises(DirectionError, match="no variance along component 2"):
        pca_directions(flat, 3)


def test_mapped_samples_depend_on_seed_and_row_only(model):
    w = mapped_samples(model, SAMPLE_BLOCK + 10, seed=5)
    assert w.shape == (SAMPLE_BLOCK + 10, 16) and w.dtype == np.float64
    np.testing.assert_allclose(mapped_samples(model, 10, seed=5), w[:10], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mapped_samples(model, SAMPLE_BLOCK + 10, seed=5), w)
    assert not np.allclose(mapped_samples(model, 10, seed=6), w[:10])
    assert not np.allclose(w[SAMPLE_BLOCK:SAMPLE_BLOCK + 10], w[:10])  # each block has its own z
    with torch.no_grad():  # rows are F of standard normal z: compare the means of w
        reference = model.F(torch.randn(20000, 16, generator=torch.Generator().manual_seed(0))).double().numpy()
    assert np.abs(w.mean(0) - reference.mean(0)).max() < 5 * reference.std(0).max() / math.sqrt(len(w))


def test_scale_along_is_the_closed_form_std_of_a_gaussian():
    variances = np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.01])
    w, _, sigma = gaussian(200000, variances, seed=2)
    for k in range(3):
        d = unit(np.random.default_rng(10 + k).normal(size=8))
        assert scale_along(d, w) == pytest.approx(math.sqrt(d @ sigma @ d), rel=0.01)
        assert scale_along(7 * d, w) == pytest.approx(scale_along(d, w), rel=1e-12)  # along, not times


def style_matrix_from_parameters(model, layers):
    """A built from the definition: per style layer 2i / 2i+1 (adain_1 / adain_2 of block i), its
    stored weight times the equalized-lr gain."""
    parts = []
    for layer in layers:
        style = getattr(model.G.blocks[layer // 2], f"adain_{layer % 2 + 1}").style
        parts.append(style.weight.detach().double().numpy() * style.weight_gain)
    return np.concatenate(parts)


def style_matrix_from_outputs(model, layers):
    """A read off the layers' runtime behaviour: column j = style(e_j) − style(0)."""
    eye = torch.eye(16)
    parts = []
    with torch.no_grad():
        for layer in layers:
            style = getattr(model.G.blocks[layer // 2], f"adain_{layer % 2 + 1}").style
            parts.append((style(eye) - style(torch.zeros(1, 16))).double().numpy().T)
    return np.concatenate(parts)


@pytest.mark.parametrize("layers", [None, [0, 1], [4, 5], [3], [5, 0, 2]])
def test_sefa_is_the_eigendecomposition_of_AtA_of_the_effective_style_weights(model, layers):
    chosen = list(range(6)) if layers is None else layers
    a = style_matrix_from_parameters(model, chosen)
    np.testing.assert_allclose(a, style_matrix_from_outputs(model, chosen), atol=1e-5)
    np.testing.assert_allclose(style_weight_matrix(model, layers), a, rtol=1e-12)
    eigenvalues, eigenvectors = np.linalg.eig(a.T @ a)
    order = np.argsort(eigenvalues.real)[::-1]
    directions = sefa_directions(model, layers, 16)
    np.testing.assert_allclose([e for _, e in directions], eigenvalues.real[order], rtol=1e-9)
    assert_same_axes([v for v, _ in directions], eigenvectors.real[:, order].T, 1e-8)
    assert_sign_convention([v for v, _ in directions])


def test_sefa_row_normalisation_option_and_layer_choice(model):
    a = style_matrix_from_parameters(model, [2, 3])
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    eigenvalues, eigenvectors = np.linalg.eigh(a.T @ a)
    top, value = sefa_directions(model, [2, 3], 1, normalize_rows=True)[0]
    assert value == pytest.approx(eigenvalues[-1], rel=1e-12)
    assert_same_axes([top], [eigenvectors[:, -1]], 1e-10)
    first, last = sefa_directions(model, [0, 1], 1)[0][0], sefa_directions(model, [4, 5], 1)[0][0]
    assert abs(first @ last) < 0.99


@pytest.mark.parametrize("layers, message", [
    ([6], "layer 6 is outside this model's style layers 0-5"),
    ([0, -1], "layer -1 is outside this model's style layers 0-5"),
    ([1, 1], "layer 1 is given twice"),
    ([], "no style layers given"),
])
def test_sefa_refuses_bad_layers(model, layers, message):
    with pytest.raises(DirectionError, match=message):
        sefa_directions(model, layers, 3)


def test_fit_recovers_a_known_separating_direction():
    w, _, _ = gaussian(4000, np.geomspace(10, 0.1, 16), seed=4)
    d = unit(np.random.default_rng(5).normal(size=16))
    score = (w - w.mean(0)) @ d
    noise = 0.3 * score.std() * np.random.default_rng(6).normal(size=len(w))
    labels = score + noise > 0.4 * score.std()
    direction, stats = fit_direction(w, labels)
    assert direction @ d > 0.95  # the hyperplane's normal, pointing toward the positive class
    assert np.linalg.norm(direction) == pytest.approx(1, abs=1e-12)
    assert stats["holdout_accuracy"] > 0.85 and not stats["near_chance"]
    assert stats["positives"] == labels.sum() and stats["negatives"] == (~labels).sum()
    assert stats["holdout_count"] == 800 and stats["train_count"] == 3200
    assert stats["chance"] == pytest.approx(max(labels.mean(), 1 - labels.mean()), abs=0.002)  # stratified
    assert stats["converged"]
    json.dumps(stats, allow_nan=False)
    again, _ = fit_direction(w, labels)
    np.testing.assert_array_equal(again, direction)
    flipped, _ = fit_direction(w, ~labels)
    assert flipped @ d < -0.95


def test_fit_flags_random_labels_as_near_chance_and_refuses_tiny_classes():
    w, _, _ = gaussian(5000, np.ones(16), seed=7)
    labels = np.random.default_rng(8).random(5000) < 0.5  # held-out accuracy ≈ chance ± 0.016
    _, stats = fit_direction(w, labels)
    assert stats["near_chance"] and stats["holdout_accuracy"] < stats["chance"] + 0.05
    rare = np.zeros(5000, dtype=bool)
    rare[:4] = True
    with pytest.raises(DirectionError, match="4 positive and 4996 negative examples: each class needs at least 5"):
        fit_direction(w, rare)
    with pytest.raises(DirectionError, match="labels must be bool"):
        fit_direction(w, labels.astype(int))
    with pytest.raises(DirectionError, match=r"held-out fraction must be in \(0, 0.5\]"):
        fit_direction(w, labels, holdout_fraction=0.8)


def test_import_normalises_and_negates_an_original_direction(tmp_path):
    raw = 3 * np.random.default_rng(9).normal(size=16)
    np.save(tmp_path / "direction_1.npy", raw)
    vector, stats = import_direction(tmp_path / "direction_1.npy", negate=False)
    np.testing.assert_allclose(vector, raw / np.linalg.norm(raw), rtol=1e-12)
    assert stats == {"source": str(tmp_path / "direction_1.npy"), "original_norm": pytest.approx(np.linalg.norm(raw)),
                     "negated": False}
    negated, stats = import_direction(tmp_path / "direction_1.npy", negate=True, latent_dim=16)
    np.testing.assert_allclose(negated, -vector, rtol=1e-12)
    assert stats["negated"]
    np.save(tmp_path / "row.npy", raw[None].astype(np.float32))  # LinearSVC's coef_ shape [1, latent]
    np.testing.assert_allclose(import_direction(tmp_path / "row.npy", negate=False)[0], vector, rtol=1e-6)


@pytest.mark.parametrize("array, message", [
    (np.ones((2, 16)), r"must hold one float vector \[latent\], got float64 \[2, 16\]"),
    (np.ones((16, 1)), r"got float64 \[16, 1\]"),
    (np.arange(16), "got int64"),
    (np.zeros(16), "zero or not finite"),
    (np.ones(512), "has 512 dimensions, the model's W has 16"),
])
def test_import_refuses_what_is_not_one_vector_of_the_models_size(tmp_path, array, message):
    np.save(tmp_path / "d.npy", array)
    with pytest.raises(DirectionError, match=message):
        import_direction(tmp_path / "d.npy", negate=False, latent_dim=16)


def test_import_refuses_other_files(tmp_path):
    np.savez(tmp_path / "d.npz", direction=np.ones(16))
    with pytest.raises(DirectionError, match="not a .npy array"):
        import_direction(tmp_path / "d.npz", negate=False)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DirectionError, match="cannot read"):
        import_direction(tmp_path / "objects.npy", negate=False)
    with pytest.raises(DirectionError, match="not found"):
        import_direction(tmp_path / "absent.npy", negate=False)


def test_orthogonalize_projects_out_the_span_of_the_others():
    rng = np.random.default_rng(11)
    v, others = rng.normal(size=16), [rng.normal(size=16) for _ in range(3)]
    result = orthogonalize(v, others + [others[0] + others[1]])  # a dependent one adds nothing
    q, _ = np.linalg.qr(np.stack(others, axis=1))
    np.testing.assert_allclose(result, unit(v - q @ (q.T @ v)), atol=1e-12)
    assert np.linalg.norm(result) == pytest.approx(1, abs=1e-12)
    assert max(abs(result @ o) for o in others) < 1e-12
    np.testing.assert_allclose(orthogonalize(v, []), unit(v), atol=1e-15)


def test_orthogonalize_refuses_a_vector_in_the_span():
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=16), rng.normal(size=16)
    with pytest.raises(DirectionError, match="span"):
        orthogonalize(2 * a - 3 * b, [a, b])
    with pytest.raises(DirectionError, match="span"):
        orthogonalize(a, [-a])
    with pytest.raises(DirectionError, match="shape"):
        orthogonalize(a, [np.ones(8)])


def example_direction(fingerprint="0123456789ab"):
    vector = unit(np.random.default_rng(13).normal(size=16))
    return Direction(vector, 1.7, "fit", "Smiling", fingerprint, {"holdout_accuracy": 0.9, "counts": [3, 4]})


def test_save_load_round_trip_and_the_file_layout(tmp_path):
    direction = example_direction()
    path = save_direction(direction, tmp_path / "smile.npz")
    loaded = load_direction(path)
    np.testing.assert_array_equal(loaded.vector, direction.vector)
    assert (loaded.scale, loaded.method, loaded.attribute, loaded.fingerprint, loaded.stats) == \
        (1.7, "fit", "Smiling", "0123456789ab", {"holdout_accuracy": 0.9, "counts": [3, 4]})
    assert loaded.source == str(path)
    with np.load(path, allow_pickle=False) as npz:  # the documented layout, read without alae
        assert sorted(npz.files) == ["metadata", "scale", "vector"]
        assert npz["vector"].dtype == np.float64 and npz["scale"].shape == ()
        metadata = json.loads(str(npz["metadata"]))
    assert metadata == {"format": "alae-direction", "format_version": 1, "method": "fit", "attribute": "Smiling",
                        "fingerprint": "0123456789ab", "stats": {"holdout_accuracy": 0.9, "counts": [3, 4]}}


UNIT = np.ones(16) / 4


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def metadata(**changes):
    fields = {"format": "alae-direction", "format_version": 1, "method": "pca", "attribute": "pc0",
              "fingerprint": "", "stats": {}}
    fields.update(changes)
    return np.array(json.dumps({k: v for k, v in fields.items() if v is not None}))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"not a zip at all"), "not an .npz archive"),
    (lambda p: np.save(p.open("wb"), np.ones(16)), "not an .npz archive"),  # a .npy named .npz
    (lambda p: write_npz(p, w=np.ones(16)), "not a direction file: no vector, scale, metadata"),
    (lambda p: write_npz(p, vector=np.ones(16) / 2, scale=1.0, metadata=metadata()), "unit norm, its norm is 2"),
    (lambda p: write_npz(p, vector=UNIT, scale=1.0, metadata=metadata(format="other")),
     "not an alae direction file"),
    (lambda p: write_npz(p, vector=UNIT, scale=1.0, metadata=metadata(format_version=2)),
     "direction format 2, this alae reads format 1"),
    (lambda p: write_npz(p, vector=UNIT, scale=1.0, metadata=metadata(method=None)), "lacks method"),
    (lambda p: write_npz(p, vector=UNIT, scale=1.0, metadata=np.array("{")), "not JSON"),
    (lambda p: write_npz(p, vector=UNIT, scale=1.0, metadata=np.array([{}], dtype=object)), "cannot read"),
    (lambda p: write_npz(p, vector=UNIT, scale=-1.0, metadata=metadata()), "scale must be a positive"),
])
def test_load_refuses_foreign_and_corrupt_files(tmp_path, make, message):
    path = tmp_path / "d.npz"
    make(path)
    with pytest.raises(DirectionError, match=message) as error:
        load_direction(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_load_refuses_a_truncated_or_missing_file(tmp_path):
    data = save_direction(example_direction(), tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(DirectionError, match="cannot read"):
        load_direction(tmp_path / "d.npz")
    with pytest.raises(DirectionError, match="direction file not found"):
        load_direction(tmp_path / "absent.npz")


@pytest.mark.parametrize("changes, message", [
    (dict(method="svm"), "method must be one of fit, pca, sefa, import"),
    (dict(fingerprint="XYZ"), "fingerprint must be 12 lowercase hex digits"),
    (dict(attribute=""), "attribute must be a non-empty name"),
    (dict(scale=float("nan")), "scale must be a positive number"),
    (dict(stats={"x": np.ones(2)}), "JSON-serialisable"),
    (dict(vector=np.ones(16)), "unit norm"),
])
def test_direction_validates_its_fields(changes, message):
    fields = dict(vector=unit(np.ones(16)), scale=1.0, method="pca", attribute="pc0", fingerprint="", stats={})
    fields.update(changes)
    with pytest.raises(DirectionError, match=message):
        Direction(**fields)


def test_compatibility_warns_about_another_model_and_refuses_another_size(model, tmp_path):
    fingerprint = model_fingerprint(model)
    assert compatibility_warning(example_direction(fingerprint), fingerprint, 16) is None
    assert compatibility_warning(example_direction(""), fingerprint, 16) is None
    path = save_direction(example_direction("0123456789ab"), tmp_path / "smile.npz")
    warning = compatibility_warning(load_direction(path), fingerprint, 16)
    assert "0123456789ab" in warning and fingerprint in warning and str(path) in warning
    with pytest.raises(DirectionError, match="has 16 dimensions, the model's W has 512"):
        compatibility_warning(load_direction(path), fingerprint, 512)
