"""Attribute directions in W (w = F(z)): how they are found, and the file that holds one.

    w = mapped_samples(model, 100_000)                       # [n, latent] float64
    for vector, std, ratio in pca_directions(w, 10): ...     # GANSpace
    for vector, eigenvalue in sefa_directions(model, None, 10): ...   # SeFa, no data
    vector, stats = fit_direction(latents, labels)           # a linear classifier in W
    save_direction(Direction(vector, scale_along(vector, w), "fit", "Smiling", fp, stats), "smile.npz")

A direction is a unit vector [latent] with a scale: the std of w along it over F's samples, so
an edit w + s·scale·vector of strength s moves w by s standard deviations whatever the method.

Sign conventions. fit: toward the positive class (the attribute present). import: the original
ALAE file's sign (toward the attribute's absence) unless negated. pca and sefa have no meaning
to point at; their sign is made deterministic: the entry of largest magnitude is positive.

File (an uncompressed .npz, read with allow_pickle=False):
    vector    float64 [latent], unit norm
    scale     float64 [], > 0
    metadata  str [], JSON {"format": "alae-direction", "format_version": 1, "method",
              "attribute", "fingerprint" (12 hex digits of alae.model_files.loading.model_fingerprint, or ""
              when unknown), "stats" (a JSON object: what the method measured)}
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import alae.randomness as randomness
from alae.errors import UserError
from alae.files import save_npz

FILE_FORMAT = "alae-direction"
FORMAT_VERSION = 1
METHODS = ("fit", "pca", "sefa", "import")
UNIT_TOLERANCE = 1e-5  # |‖vector‖ − 1| accepted in a file (float32 rounding is ~1e-7)
# orthogonalize: a remainder below this fraction of the input's norm is no direction of its own
# (vectors stored in float32 carry ~1e-7 relative rounding, which must not pass as one).
RESIDUAL_TOLERANCE = 1e-4
SCALE_SAMPLES = 20000  # F samples that measure a direction's scale (std of w along it)
PCA_SAMPLES = 100_000  # F samples whose principal axes are the pca directions (GANSpace used 1M for StyleGAN)
SAMPLE_BLOCK = 4096  # z rows per seeded generator in mapped_samples; part of what a seed means, keep it
NEAR_CHANCE_MARGIN = 0.05  # fit: held-out accuracy below chance + this is reported as near chance
FIT_C = 1.0  # inverse L2 strength of the logistic regression, on standardised features
FIT_MAX_ITER = 1000
_FINGERPRINT = re.compile(r"[0-9a-f]{12}")
_NPZ_MAGIC = b"PK\x03\x04"  # a zip archive's first bytes (np.savez)
_NPY_MAGIC = b"\x93NUMPY"  # the first bytes of a .npy array (np.save)


class DirectionError(UserError, ValueError):
    """A direction file, or a direction computation's input, is unusable; the message is one line
    (a UserError, so every command line prints it without a traceback)."""


@dataclass(eq=False)
class Direction:
    """One attribute direction. vector float64 [latent] (renormalised to unit norm; within
    UNIT_TOLERANCE of it on input); scale > 0: std of w along vector; method in METHODS;
    attribute: a non-empty name; fingerprint: 12 hex digits or ""; stats: a JSON-serialisable
    dict. `source` (where it was read from, for messages) is not stored. No ==: compare fields."""

    vector: np.ndarray
    scale: float
    method: str
    attribute: str
    fingerprint: str
    stats: dict
    source: str = ""

    def __post_init__(self):
        vector = np.asarray(self.vector)
        if vector.ndim != 1 or vector.size == 0 or not np.issubdtype(vector.dtype, np.floating):
            raise DirectionError(f"vector must be a 1-D float array, got {vector.dtype} {list(vector.shape)}")
        vector = vector.astype(np.float64)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(vector).all() or abs(norm - 1.0) > UNIT_TOLERANCE:
            raise DirectionError(f"vector must be finite with unit norm, its norm is {norm:.6g}")
        self.vector = vector / norm
        if not isinstance(self.scale, (int, float, np.floating)) or not math.isfinite(self.scale) or self.scale <= 0:
            raise DirectionError(f"scale must be a positive number, got {self.scale!r}")
        self.scale = float(self.scale)
        if self.method not in METHODS:
            raise DirectionError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not isinstance(self.attribute, str) or not self.attribute:
            raise DirectionError(f"attribute must be a non-empty name, got {self.attribute!r}")
        fingerprint = self.fingerprint
        if not (isinstance(fingerprint, str) and (fingerprint == "" or _FINGERPRINT.fullmatch(fingerprint))):
            raise DirectionError(f"fingerprint must be 12 lowercase hex digits or empty, got {self.fingerprint!r}")
        if not isinstance(self.stats, dict):
            raise DirectionError(f"stats must be a dict, got {type(self.stats).__name__}")
        try:
            json.dumps(self.stats, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise DirectionError(f"stats must be JSON-serialisable: {e}") from None

    @property
    def name(self) -> str:
        """The source file if known, else the attribute: how messages name this direction."""
        return self.source or f"direction '{self.attribute}'"


def save_direction(direction: Direction, path: str | Path) -> Path:
    """Write `direction` to `path` atomically (the layout in the module docstring)."""
    metadata = {"format": FILE_FORMAT, "format_version": FORMAT_VERSION, "method": direction.method,
                "attribute": direction.attribute, "fingerprint": direction.fingerprint, "stats": direction.stats}
    return save_npz(Path(path), vector=direction.vector.astype(np.float64), scale=np.float64(direction.scale),
                    metadata=np.array(json.dumps(metadata, allow_nan=False)))


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DirectionError(f"direction file not found: {path}")
    return path


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def load_direction(path: str | Path) -> Direction:
    """The Direction in `path`; DirectionError naming the file when it is missing, not an npz,
    not a direction file, of another format version, or has invalid fields (non-unit vector ...)."""
    path = _existing(path)
    if not _starts_with(path, _NPZ_MAGIC):
        raise DirectionError(f"{path} is not a direction file: not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("vector", "scale", "metadata") if k not in npz.files]
            if missing:
                raise DirectionError(f"{path} is not a direction file: no {', '.join(missing)} "
                                     f"(it holds {', '.join(npz.files) or 'nothing'})")
            vector, scale, metadata = npz["vector"], npz["scale"], npz["metadata"]
    except DirectionError:
        raise
    except Exception as e:  # a truncated archive, pickled objects ...
        raise DirectionError(f"cannot read {path}: {_first_line(e)}") from None
    if metadata.shape != () or metadata.dtype.kind != "U":
        raise DirectionError(f"{path}: metadata must be one JSON string, got {metadata.dtype} {list(metadata.shape)}")
    try:
        meta = json.loads(str(metadata))
    except json.JSONDecodeError as e:
        raise DirectionError(f"{path}: metadata is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FILE_FORMAT:
        raise DirectionError(f"{path} is not an alae direction file (metadata format is not {FILE_FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DirectionError(f"{path} has direction format {meta.get('format_version')!r}, this alae reads "
                             f"format {FORMAT_VERSION}")
    missing = [k for k in ("method", "attribute", "fingerprint", "stats") if k not in meta]
    if missing:
        raise DirectionError(f"{path}: metadata lacks {', '.join(missing)}")
    if scale.shape != () or scale.dtype.kind != "f":
        raise DirectionError(f"{path}: scale must be one float, got {scale.dtype} {list(scale.shape)}")
    try:
        return Direction(vector, float(scale), meta["method"], meta["attribute"], meta["fingerprint"], meta["stats"],
                         source=str(path))
    except DirectionError as e:
        raise DirectionError(f"{path}: {e}") from None


def compatibility_warning(direction: Direction, fingerprint: str, latent_dim: int) -> str | None:
    """A warning naming both fingerprints when `direction` was made for another model (None when
    they match or the direction's fingerprint is unknown); DirectionError, naming both sizes,
    when its length is not the model's latent size."""
    if direction.vector.size != latent_dim:
        raise DirectionError(f"{direction.name} has {direction.vector.size} dimensions, the model's W has {latent_dim}")
    if not direction.fingerprint or direction.fingerprint == fingerprint:
        return None
    return (f"{direction.name} was made for model {direction.fingerprint}, this model is {fingerprint}: "
            f"its effect may differ")


@torch.no_grad()
def mapped_samples(model, count: int, seed: int = 0) -> np.ndarray:
    """w = F(z) (z itself for models without a mapping) for `count` z from the model's prior
    (N(0, I) for ALAE): float64 [count, latent].

    z is drawn on the CPU in blocks of SAMPLE_BLOCK rows, block k from a generator seeded by
    (seed, k), so row i depends only on (seed, i): a larger count extends a smaller one, on any
    device. F runs on the model's device, one block at a time.
    """
    if count < 1:
        raise DirectionError(f"the sample count must be at least 1, got {count}")
    like = model.w_avg  # [latent], on the model's device
    blocks = []
    for k in range(math.ceil(count / SAMPLE_BLOCK)):
        z = model.prior.sample(SAMPLE_BLOCK, randomness.generator("direction-samples", seed, k))
        rows = min(SAMPLE_BLOCK, count - k * SAMPLE_BLOCK)
        w = model.map(z[:rows].to(like))
        blocks.append(w.double().cpu().numpy())
    return np.concatenate(blocks)


def _check_samples(w_samples: np.ndarray, minimum: int) -> np.ndarray:
    w = np.asarray(w_samples, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < minimum:
        raise DirectionError(f"samples must be [n >= {minimum}, latent], got {list(w.shape)}")
    if not np.isfinite(w).all():
        raise DirectionError("samples contain non-finite values")
    return w


def scale_along(vector: np.ndarray, w_samples: np.ndarray) -> float:
    """Std (ddof 1) of w·v̂ over w_samples [n ≥ 2, latent], v̂ = vector/‖vector‖: the strength
    unit of a direction (a PCA component's scale_along equals its std)."""
    w = _check_samples(w_samples, 2)
    v = np.asarray(vector, dtype=np.float64)
    if v.shape != (w.shape[1],) or not np.linalg.norm(v) > 0:
        raise DirectionError(f"the vector must be nonzero [{w.shape[1]}], got shape {list(v.shape)}")
    return float(np.std(w @ (v / np.linalg.norm(v)), ddof=1))


def _positive_largest_entry(vector: np.ndarray) -> np.ndarray:
    """±vector, signed so its entry of largest magnitude is positive (the pca/sefa convention)."""
    return vector if vector[np.argmax(np.abs(vector))] > 0 else -vector


def pca_directions(w_samples: np.ndarray, num: int) -> list[tuple[np.ndarray, float, float]]:
    """GANSpace (Härkönen et al. 2020): the principal components of w_samples [n, latent].

    Returns `num` (unit vector [latent], std, explained variance ratio), by variance descending;
    std = sqrt(eigenvalue of the covariance with ddof 1) = singular value of the centred samples
    / sqrt(n − 1); ratio = variance / total variance. 1 ≤ num ≤ min(latent, n − 1). The
    covariance [latent, latent] is eigendecomposed in float64 (symmetric solver).
    """
    w = _check_samples(w_samples, 2)
    n, latent_dim = w.shape
    if not 1 <= num <= min(latent_dim, n - 1):
        raise DirectionError(f"PCA of {n} samples in {latent_dim} dimensions gives 1 to "
                             f"{min(latent_dim, n - 1)} components, {num} were asked for")
    centred = w - w.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / (n - 1))
    order = np.argsort(eigenvalues)[::-1][:num]
    total = float(eigenvalues.sum())
    if eigenvalues[order[-1]] <= total * 1e-12:  # zero up to the solver's float64 rounding
        raise DirectionError(f"the samples have no variance along component {num - 1}: they span fewer "
                             f"than {num} dimensions")
    return [(_positive_largest_entry(eigenvectors[:, i]), math.sqrt(eigenvalues[i]), float(eigenvalues[i]) / total)
            for i in order]


def pca_direction_set(model, num: int, samples: int, seed: int, fingerprint: str) -> list[Direction]:
    """The `num` GANSpace directions of `samples` w = F(z) drawn with `seed` (mapped_samples),
    named pc0, pc1, ... with each component's std as its scale: what `alae-directions pca` writes."""
    components = pca_directions(mapped_samples(model, samples, seed), num)
    return [Direction(vector, std, "pca", f"pc{k}", fingerprint,
                      {"samples": samples, "component": k, "std": std, "explained_variance_ratio": ratio})
            for k, (vector, std, ratio) in enumerate(components)]


def _check_layers(model, layers: Sequence[int] | None) -> list[int]:
    count = model.num_style_layers
    if layers is None:
        return list(range(count))
    layers = list(layers)
    if not layers:
        raise DirectionError(f"no style layers given (this model's are 0-{count - 1})")
    for layer in layers:
        if not 0 <= layer < count:
            raise DirectionError(f"layer {layer} is outside this model's style layers 0-{count - 1}")
        if layers.count(layer) > 1:
            raise DirectionError(f"layer {layer} is given twice")
    return layers


def style_weight_matrix(model, layers: Sequence[int] | None = None, normalize_rows: bool = False) -> np.ndarray:
    """A: the effective weights (weight · weight_gain) of the AdaIN style affines of `layers`
    (None: all), stacked along the output: float64 [Σ 2·C over layers, latent], each layer's
    C scale rows then C shift rows. Style layer 2i is G.blocks[i].adain_1, 2i + 1 is adain_2.
    normalize_rows scales each row to unit norm (SeFa's reference code does; off by default)."""
    if model.backbone != "style":
        raise DirectionError(f"SeFa factorizes the AdaIN weights of style layers; a {model.backbone} model has none")
    rows = []
    for layer in _check_layers(model, layers):
        block = model.G.blocks[layer // 2]
        style = (block.adain_1 if layer % 2 == 0 else block.adain_2).style
        rows.append(style.weight.detach().to("cpu", torch.float64).numpy() * style.weight_gain)
    a = np.concatenate(rows)
    return a / np.linalg.norm(a, axis=1, keepdims=True) if normalize_rows else a


def sefa_directions(model, layers: Sequence[int] | None, num: int,
                    normalize_rows: bool = False) -> list[tuple[np.ndarray, float]]:
    """SeFa (Shen & Zhou 2021, closed-form factorization): the top `num` eigenvectors of AᵀA,
    A = style_weight_matrix(model, layers, normalize_rows): `num` (unit vector [latent],
    eigenvalue) by eigenvalue descending, from a float64 symmetric eigensolver. No data needed."""
    a = style_weight_matrix(model, layers, normalize_rows)
    if not 1 <= num <= a.shape[1]:
        raise DirectionError(f"SeFa in {a.shape[1]} dimensions gives 1 to {a.shape[1]} directions, "
                             f"{num} were asked for")
    eigenvalues, eigenvectors = np.linalg.eigh(a.T @ a)
    return [(_positive_largest_entry(eigenvectors[:, i]), float(eigenvalues[i]))
            for i in np.argsort(eigenvalues)[::-1][:num]]


def sefa_direction_set(model, layers: Sequence[int] | None, num: int, scale_samples: int, seed: int,
                       fingerprint: str, normalize_rows: bool = False) -> list[Direction]:
    """The top `num` SeFa directions of `layers`, named sefa0, sefa1, ..., each scaled by the std
    of `scale_samples` w = F(z) (seed `seed`) along it: what `alae-directions sefa` writes."""
    w = mapped_samples(model, scale_samples, seed)
    return [Direction(vector, scale_along(vector, w), "sefa", f"sefa{k}", fingerprint,
                      {"layers": _check_layers(model, layers), "eigenvalue": eigenvalue,
                       "normalize_rows": normalize_rows})
            for k, (vector, eigenvalue) in enumerate(sefa_directions(model, layers, num, normalize_rows))]


def edit_step(weighted: Sequence[tuple[Direction, float]]) -> np.ndarray:
    """Σ weight · scale · vector over (direction, weight) pairs: float64 [latent], the W offset of
    an edit of strength 1 (alae-edit's `--direction FILE=WEIGHT ...`, alae-studio's sliders).
    DirectionError when the directions differ in length."""
    if not weighted:
        raise DirectionError("no direction given")
    sizes = {d.vector.size for d, _ in weighted}
    if len(sizes) > 1:
        raise DirectionError(f"the directions have different lengths: {', '.join(f'{d.name} {d.vector.size}' for d, _ in weighted)}")
    return np.sum([d.vector * d.scale * float(weight) for d, weight in weighted], axis=0)


def fit_direction(latents: np.ndarray, labels: np.ndarray, seed: int = 0,
                  holdout_fraction: float = 0.2) -> tuple[np.ndarray, dict]:
    """The normal of a linear classifier's hyperplane in W, pointing toward the positive class.

    latents [n, latent]; labels bool [n]. A seeded stratified split holds out
    `holdout_fraction` (in (0, 0.5]) of each class; an L2 logistic regression (C = FIT_C on
    standardised features) is fitted on the rest, and its coefficients, mapped back to W and
    normalised, are the direction (the original ALAE fitted a linear SVM on W instead; both
    give a separating hyperplane, logistic regression without a margin parameter). Returns (unit
    vector float64 [latent], stats): counts, the split, train and held-out accuracy, held-out
    balanced accuracy, chance (the held-out majority-class rate), near_chance (held-out accuracy
    < chance + NEAR_CHANCE_MARGIN), converged. DirectionError when a class has fewer than
    ceil(1 / holdout_fraction) examples (the held-out part needs one of each).
    """
    from sklearn.linear_model import LogisticRegression  # imported here: it takes a second to load
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import train_test_split

    w = _check_samples(latents, 1)
    y = np.asarray(labels)
    if y.dtype != np.bool_ or y.shape != (w.shape[0],):
        raise DirectionError(f"labels must be bool [{w.shape[0]}], got {y.dtype} {list(y.shape)}")
    if not 0 < holdout_fraction <= 0.5:
        raise DirectionError(f"the held-out fraction must be in (0, 0.5], got {holdout_fraction}")
    positives, negatives = int(y.sum()), int((~y).sum())
    needed = math.ceil(1 / holdout_fraction - 1e-9)  # the 1e-9 absorbs rounding in 1 / fraction
    if min(positives, negatives) < needed:
        raise DirectionError(f"{positives} positive and {negatives} negative examples: each class needs at least "
                             f"{needed} to hold out {holdout_fraction:g} of it")
    w_train, w_test, y_train, y_test = train_test_split(w, y, test_size=holdout_fraction, stratify=y,
                                                        random_state=seed)
    mean, std = w_train.mean(axis=0), w_train.std(axis=0)
    std[std == 0] = 1.0
    classifier = LogisticRegression(C=FIT_C, max_iter=FIT_MAX_ITER)
    classifier.fit((w_train - mean) / std, y_train)
    coefficients = classifier.coef_[0] / std  # the hyperplane's normal in W (classes_ = [False, True])
    norm = np.linalg.norm(coefficients)
    if not norm > 0:
        raise DirectionError("the classifier found no direction (all coefficients are zero)")
    predicted = classifier.predict((w_test - mean) / std)
    accuracy = float(np.mean(predicted == y_test))
    chance = float(max(y_test.mean(), 1 - y_test.mean()))
    stats = {
        "classifier": "LogisticRegression", "C": FIT_C, "seed": seed, "holdout_fraction": holdout_fraction,
        "count": int(y.size), "positives": positives, "negatives": negatives,
        "train_count": int(y_train.size), "holdout_count": int(y_test.size),
        "train_accuracy": float(classifier.score((w_train - mean) / std, y_train)),
        "holdout_accuracy": accuracy, "holdout_balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
        "chance": chance, "near_chance": accuracy < chance + NEAR_CHANCE_MARGIN,
        "converged": bool(classifier.n_iter_[0] < FIT_MAX_ITER),
    }
    return coefficients / norm, stats


def import_direction(path: str | Path, negate: bool, latent_dim: int | None = None) -> tuple[np.ndarray, dict]:
    """An original ALAE `principal_directions/direction_*.npy` (a raw linear SVM coefficient
    [latent] or [1, latent], not unit norm; its sign points toward the attribute's absence):
    (unit vector float64 [latent], negated by `negate`, stats {source, original_norm, negated}).
    DirectionError when unreadable, not one finite nonzero vector, or (given latent_dim) of
    another size."""
    path = _existing(path)
    if not _starts_with(path, _NPY_MAGIC):
        raise DirectionError(f"{path} is not an original ALAE direction: not a .npy array")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:  # truncated, pickled objects ...
        raise DirectionError(f"cannot read {path}: {_first_line(e)}") from None
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.dtype.kind != "f":
        raise DirectionError(f"{path} must hold one float vector [latent], got {array.dtype} {list(array.shape)}")
    if latent_dim is not None and array.size != latent_dim:
        raise DirectionError(f"{path} has {array.size} dimensions, the model's W has {latent_dim}")
    vector = array.astype(np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(vector).all() or norm == 0:
        raise DirectionError(f"{path} is not a direction: its vector is zero or not finite")
    vector = vector / norm
    return (-vector if negate else vector), {"source": str(path), "original_norm": norm, "negated": bool(negate)}


def orthogonalize(vector: np.ndarray, others: Sequence[np.ndarray]) -> np.ndarray:
    """`vector` [latent] with the span of `others` (each [latent]) projected out, renormalised:
    a unit float64 vector orthogonal to every other (InterFaceGAN's conditional manipulation:
    editing along it leaves those attributes' classifier scores unchanged). The span is
    orthonormalised by Gram–Schmidt (each step twice, for float64 accuracy; others already in
    the span of earlier ones add nothing). DirectionError when less than RESIDUAL_TOLERANCE of
    the vector's norm remains, or on a size mismatch."""
    v = np.asarray(vector, dtype=np.float64)
    if v.ndim != 1 or not np.linalg.norm(v) > 0:
        raise DirectionError(f"the direction must be a nonzero vector, got shape {list(v.shape)}")
    basis: list[np.ndarray] = []
    for index, other in enumerate(others):
        u = np.asarray(other, dtype=np.float64)
        if u.shape != v.shape:
            raise DirectionError(f"direction {index} to be orthogonal to has shape {list(u.shape)}, "
                                 f"the direction {list(v.shape)}")
        norm = np.linalg.norm(u)
        for _ in range(2):
            for b in basis:
                u = u - (b @ u) * b
        if np.linalg.norm(u) > RESIDUAL_TOLERANCE * norm:
            basis.append(u / np.linalg.norm(u))
    residual = v
    for _ in range(2):
        for b in basis:
            residual = residual - (b @ residual) * b
    if np.linalg.norm(residual) <= RESIDUAL_TOLERANCE * np.linalg.norm(v):
        raise DirectionError("the direction lies (almost) in the span of the directions it should be orthogonal to: "
                             "nothing of it remains")
    return residual / np.linalg.norm(residual)
