"""One row of a comparison's table and how its cells are written (mean ± std over seeds).

A row is a system (a config trained over seeds, a read run, or a classical baseline) with, per
metric, its values over the seeds, or the one-line reason it is undefined. Accuracies and errors
(`PERCENT_METRICS`, values in [0, 1]) are written in percent, all values with `DIGITS`
significant digits in their unit and stds with `STD_DIGITS`. The std is the sample standard
deviation (n − 1) over the seeds; a single value is written alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

PERCENT_METRICS = ("knn1", "linear_svm", "class_error")  # registry values in [0, 1]
DIGITS = 4  # significant digits of a value (97.58%, −106.7 nats)
STD_DIGITS = 3  # of its std over seeds
MISSING = "—"


@dataclass
class SystemRow:
    """name: as the table shows it; values: metric → values over seeds; skipped: metric → why
    undefined; seconds: training wall times over seeds (empty: not trained here)."""

    name: str
    values: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """(mean, sample std; None for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def format_value(metric: str, value: float) -> str:
    """One value in its unit (percent for PERCENT_METRICS) with DIGITS significant digits."""
    if metric in PERCENT_METRICS:
        return f"{100 * value:.{DIGITS}g}%"
    return f"{value:.{DIGITS}g}"


def format_cell(metric: str, values: list[float]) -> str:
    """'mean ± std' (or the value alone) of `values`; MISSING for none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return MISSING
    mean, std = mean_std(finite)
    text = format_value(metric, mean)
    if std is not None:
        text += " ± " + f"{(100 if metric in PERCENT_METRICS else 1) * std:.{STD_DIGITS}g}"
    return text


def format_seconds(seconds: list[float]) -> str:
    if not seconds:
        return MISSING
    mean, std = mean_std(seconds)
    return f"{mean:.{STD_DIGITS}g} s" + (f" ± {std:.{STD_DIGITS}g}" if std is not None else "")
