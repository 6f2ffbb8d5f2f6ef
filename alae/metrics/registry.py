"""The metric registry: metric names, their families, and `compute_metrics`, which runs them.

Names (N: a whole number of thousands of images or pairs, in elbo_iw{N} of samples; see
docs/METRICS.md for each protocol):

    fid{N}k  fid{N}k_full  kid{N}k  kid{N}k_full    F+G samples vs the first N k / all real images
    fid_rec{N}k  lpips_rec{N}k  mse_rec  mse_rec{N}k reconstructions G(E(x)) vs the images x
    rec_class                                        held-out reconstructions an RBF SVM of pixels gives their class
    ppl_wend  ppl_wfull  ppl_wend{N}k  ppl_wfull{N}k perceptual path length in W (default 50k pairs)
    knn1  linear_svm                                 classifiers on the codes: held-out vs training images
    parzen_ll  parzen_ll{N}k                         Parzen-window log-likelihood of held-out images (10k samples)
    elbo  elbo_iw  elbo_iw{N}                        a VAE's held-out ELBO / importance-weighted bound (N samples)
    fd_digits{N}k                                    Fréchet distance in a digit classifier's features (not FID)
    class_error                                      a class head's error on the held-out labelled images

Callers (alae-metrics, and the training loop through `alae.training.metrics`) run, on every
rank:

    check_metric_names(names)                         # MetricError, one line, on an unknown name
    results = compute_metrics(names, model, data_path, lod=lod, alpha=alpha, ctx=ctx,
                              holdout=holdout, seed=seed, kimg=kimg)
    if ctx.is_main:
        for result in results:
            append_result(out_dir / RESULTS_FILE, result)   # one JSON line each

`compute_metrics` shards every image range over the ranks (contiguous blocks, draws seeded by
global index), gathers features to rank 0, computes the figures there and broadcasts the
values, so every rank returns the same list of `MetricResult` (metric, value, images, seconds,
info) and W ranks give the figures of one. At a lod below the model's last, the networks run at
that lod's resolution and the real images are read from the database at it (the statistics
cache is keyed by resolution); metrics that need larger images (LPIPS: 16 px, PPL's face crop:
32 px) come back skipped (value None, `skipped` says why), and so do metrics that need what the
model or the data lacks (a VAE, held-out images, class labels: `MetricFamily.problem`). The
Inception file is found with `alae.metrics.weight_files.INCEPTION` (downloaded by clean-fid
into the cache root only when none is found and the machine is online), LPIPS weights with
`alae.metrics.weight_files.LPIPS` (never downloaded); missing weights raise MetricError before
any image is made.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import torch

from alae.distributed import Context
from alae.metrics.class_error import class_error, class_problem
from alae.metrics.digit_frechet import DIGIT_MIN_SIDE, digit_problem, fd_digits
from alae.metrics.elbo import IW_SAMPLES, elbo, elbo_iw, vae_problem
from alae.metrics.errors import MetricError
from alae.metrics.evaluation import Evaluation, OpenDatabase
from alae.metrics.generation import fid, kid
from alae.metrics.inception import MODES, find_inception
from alae.metrics.latent_classifiers import knn1, linear_svm
from alae.metrics.lpips import MIN_SIZE as LPIPS_MIN_SIDE
from alae.metrics.parzen import PARZEN_SAMPLES, parzen_ll
from alae.metrics.ppl import PPL_SAMPLES, ppl
from alae.metrics.reconstruction import fid_rec, lpips_rec, mse_rec
from alae.metrics.reconstruction_class import rec_class
from alae.metrics.results import Figures, MetricResult
from alae.metrics.sharding import broadcast_values, single_process
from alae.metrics.splits import labels_problem, split_problem
from alae.metrics.weight_files import INCEPTION, LPIPS
from alae.model import LatentAutoencoder


@dataclass(frozen=True)
class MetricFamily:
    """One form of metric name and how to compute it.

    form: the name with {N} standing for thousands (e.g. "fid{N}k_full"); compute(ev, name,
    count) → Figures, with count = N·1000 or `default_count` for forms without {N}; weights:
    the weight files it needs ("inception", "lpips"); min_resolution: smallest image side it can
    measure (px); real_features: it needs the real features themselves (KID), not just moments;
    problem(ev) → why the metric cannot be had for this model and data (one line), or None;
    unit: what N counts (1000: thousands of images or pairs; 1: samples, for elbo_iw{N}).
    """

    form: str
    compute: Callable[[Evaluation, str, int | None], Figures]
    weights: tuple[str, ...] = ()
    min_resolution: int = 1
    default_count: int | None = None
    real_features: bool = False
    problem: Callable[[Evaluation], str | None] | None = None
    unit: int = 1000

    def parse(self, name: str) -> "ParsedMetric | None":
        """`name` with its count (N·unit, or default_count for forms without {N}) if it has this form."""
        pattern = re.escape(self.form).replace(re.escape("{N}"), r"([1-9][0-9]*)")
        found = re.fullmatch(pattern, name)
        if found is None:
            return None
        return ParsedMetric(name, self, int(found.group(1)) * self.unit if found.groups() else self.default_count)


@dataclass(frozen=True)
class ParsedMetric:
    name: str
    family: MetricFamily
    count: int | None


N_MEANS = "N in thousands, e.g. fid50k_full; in elbo_iw{N}, N samples, e.g. elbo_iw64"
_INCEPTION, _LPIPS = ("inception",), ("lpips",)
_PPL = dict(weights=_LPIPS, min_resolution=2 * LPIPS_MIN_SIDE)  # the face crop halves the side

# Adding a metric is one entry here.
FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily("fid{N}k", partial(fid, full=False), _INCEPTION),
    MetricFamily("fid{N}k_full", partial(fid, full=True), _INCEPTION),
    MetricFamily("kid{N}k", partial(kid, full=False), _INCEPTION, real_features=True),
    MetricFamily("kid{N}k_full", partial(kid, full=True), _INCEPTION, real_features=True),
    MetricFamily("fid_rec{N}k", fid_rec, _INCEPTION),
    MetricFamily("lpips_rec{N}k", lpips_rec, _LPIPS, min_resolution=LPIPS_MIN_SIDE),
    MetricFamily("mse_rec", mse_rec),
    MetricFamily("mse_rec{N}k", mse_rec),
    MetricFamily("rec_class", rec_class, problem=labels_problem),
    MetricFamily("ppl_wend", partial(ppl, sampling="end"), default_count=PPL_SAMPLES, **_PPL),
    MetricFamily("ppl_wend{N}k", partial(ppl, sampling="end"), **_PPL),
    MetricFamily("ppl_wfull", partial(ppl, sampling="full"), default_count=PPL_SAMPLES, **_PPL),
    MetricFamily("ppl_wfull{N}k", partial(ppl, sampling="full"), **_PPL),
    MetricFamily("knn1", knn1, problem=labels_problem),
    MetricFamily("linear_svm", linear_svm, problem=labels_problem),
    MetricFamily("parzen_ll", parzen_ll, default_count=PARZEN_SAMPLES, problem=split_problem),
    MetricFamily("parzen_ll{N}k", parzen_ll, problem=split_problem),
    MetricFamily("elbo", elbo, problem=vae_problem),
    MetricFamily("elbo_iw", elbo_iw, default_count=IW_SAMPLES, problem=vae_problem),
    MetricFamily("elbo_iw{N}", elbo_iw, problem=vae_problem, unit=1),
    MetricFamily("fd_digits{N}k", fd_digits, min_resolution=DIGIT_MIN_SIDE, problem=digit_problem),
    MetricFamily("class_error", class_error, problem=class_problem),
)


def parse_metric_names(names: Sequence[str] | str) -> list[ParsedMetric]:
    """Names (a list, or one comma-separated string) → their families and counts, duplicates
    dropped; MetricError naming the first unknown name and listing the valid forms."""
    if isinstance(names, str):
        names = names.split(",")
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    forms = ", ".join(f.form for f in FAMILIES)
    if not names:
        raise MetricError(f"no metrics given; valid forms: {forms} ({N_MEANS})")
    parsed = []
    for name in names:
        match = next((m for family in FAMILIES if (m := family.parse(name)) is not None), None)
        if match is None:
            raise MetricError(f"unknown metric {name!r}; valid forms: {forms} ({N_MEANS})")
        parsed.append(match)
    return parsed


def check_metric_names(names: Sequence[str] | str) -> list[str]:
    """The names, checked (MetricError, one line, on an unknown one) and without duplicates."""
    return [m.name for m in parse_metric_names(names)]


def _inception_path(given, download: bool, ctx: Context) -> Path:
    """The Inception file on every rank; only rank 0 may download it, the others wait for its verdict."""
    path, error = None, None
    if ctx.is_main:
        try:
            path = find_inception(given, download)
        except MetricError as e:
            error = e
    (found,) = broadcast_values([float(error is None)], ctx)
    if error is not None:
        raise error
    if not found:
        raise MetricError(INCEPTION.missing_message(given))
    return path if ctx.is_main else find_inception(given, download=False)


def _lpips_path(given) -> Path:
    path = LPIPS.find(given)
    if path is None:
        raise MetricError(LPIPS.missing_message(given))
    return path


def _problem(family: MetricFamily, ev: Evaluation, lod: int) -> str | None:
    """Why `family` is skipped for this model, data and lod (one line), or None."""
    if ev.resolution < family.min_resolution:
        return f"needs images of at least {family.min_resolution} px; the networks run at {ev.resolution} px (lod {lod})"
    return None if family.problem is None else family.problem(ev)


def compute_metrics(names: Sequence[str] | str, model: LatentAutoencoder, data: str | Path | OpenDatabase, *, lod: int | None = None,
                    alpha: float = 1.0, ctx: Context | None = None, holdout: int | None = None, seed: int = 0,
                    batch: int = 32, mixing: bool = False, mode: str = "clean", inception=None, lpips=None,
                    download: bool = True, workers: int = 0, progress: bool = True, model_path=None,
                    kimg: float | None = None, skip: bool = True) -> list[MetricResult]:
    """Compute the named metrics of `model` (eval mode, on ctx.device) against the alae LMDB `data`
    (its path, or the database already open: the training run's data).

    lod / alpha: where the networks run (default: the last lod, alpha 1). ctx: the ranks
    (default: this process alone on the model's device); call on every rank. holdout: the
    number of held-out images at the end of `data` for reconstruction metrics (None: all
    images) and for the code, likelihood and digit metrics (None: those are skipped). seed: base
    of every draw. batch: images per forward pass per rank. mixing: style
    mixing on for generated FID/KID images (the original ALAE's protocol). mode: "clean" or
    "legacy_tensorflow" features. inception / lpips: weight paths given by the user (None: the
    environment variable, then the default locations); download: let rank 0 fetch a missing
    Inception file with clean-fid. workers: DataLoader processes reading the database.
    progress: bars on rank 0. model_path / kimg: recorded in each result. skip: a metric
    this model, data or lod cannot give comes back skipped (training, whose early lods are too
    small for some); False: a MetricError naming each such metric and why, before anything is
    computed (alae-metrics).
    Returns one MetricResult per name, in order, identical on every rank.
    """
    metrics = parse_metric_names(names)
    if mode not in MODES:
        raise MetricError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    ctx = ctx or single_process(model.w_avg.device)
    lod = model.num_lods - 1 if lod is None else lod
    if not 0 <= lod < model.num_lods:
        raise MetricError(f"lod {lod} is outside the model's 0 … {model.num_lods - 1}")
    needs = {w for m in metrics for w in m.family.weights}
    opened = data if isinstance(data, OpenDatabase) else None
    ev = Evaluation(model, opened.path if opened else Path(data), lod, alpha, ctx, opened=opened, holdout=holdout, seed=seed, batch=batch, mixing=mixing,
                    mode=mode, inception_path=_inception_path(inception, download, ctx) if "inception" in needs else None,
                    lpips_path=_lpips_path(lpips) if "lpips" in needs else None, workers=workers,
                    show_progress=progress, keep_real_features=any(m.family.real_features for m in metrics))
    if not skip:
        problems = [f"{m.name} {reason}" for m in metrics if (reason := _problem(m.family, ev, lod)) is not None]
        if problems:
            raise MetricError(f"cannot measure {'; '.join(problems)}")
    if "inception" in needs:
        ev.inception()  # a file that is not Inception fails here, before any image is made
    if "lpips" in needs:
        ev.lpips()
    common = {"model": None if model_path is None else str(model_path), "kimg": kimg, "resolution": ev.resolution,
              "lod": lod, "alpha": alpha, "seed": seed, "world_size": ctx.world_size}
    results = []
    for metric in metrics:
        info = dict(common)
        if "inception" in metric.family.weights:
            info.update(mode=mode, feature_network=ev.inception().describe())
        if "lpips" in metric.family.weights:
            info.update(lpips=str(ev.lpips_path))
        reason = _problem(metric.family, ev, lod)
        if reason is not None:
            results.append(MetricResult(metric.name, None, {}, 0.0, info, skipped=reason))
            continue
        start = time.perf_counter()
        with torch.no_grad():
            figures = metric.family.compute(ev, metric.name, metric.count)
        (value,) = broadcast_values([math.nan if figures.value is None else figures.value], ctx)
        results.append(MetricResult(metric.name, value, figures.images, time.perf_counter() - start,
                                    {**info, **figures.details}))
    return results
