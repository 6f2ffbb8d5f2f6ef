"""report.md of a comparison: the systems' table, the classical baselines, the papers' figures.

Cells are mean ± std over seeds (alae.family.table); a metric undefined for a system is
"—" with a numbered footnote giving its one-line reason (the registry's `skipped`).
"""
from __future__ import annotations

from alae.family.papers import PAPER_FIGURES, PAPERS_SPLIT
from alae.family.table import MISSING, SystemRow, format_cell, format_seconds, format_value

METRIC_MEANINGS = {
    "knn1": "1-NN accuracy of held-out codes against the training codes (higher is better)",
    "linear_svm": "LinearSVC(C=0.1) accuracy on the codes (higher is better)",
    "class_error": "class head's error on the held-out digits (lower is better)",
    "mse_rec": "held-out reconstruction MSE in [−1, 1] (lower is better)",
    "elbo": "held-out ELBO, nats per digit (higher is better)",
    "parzen_ll": "Parzen-window log-likelihood of the held-out digits, nats (higher is better)",
}


class Footnotes:
    """Numbered reasons, each written once."""

    def __init__(self):
        self.reasons: list[str] = []

    def mark(self, reason: str) -> str:
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"{MISSING} [{self.reasons.index(reason) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {reason}  " for i, reason in enumerate(self.reasons, 1)]


def _cell(row: SystemRow, metric: str, notes: Footnotes) -> str:
    if metric in row.skipped:
        return notes.mark(row.skipped[metric])
    return format_cell(metric, row.values.get(metric, []))


def _table(header: list[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(line) + " |" for line in lines)]


def report_markdown(systems: list[SystemRow], baselines: list[SystemRow], metrics: list[str], setup: str) -> str:
    """The whole report.md. setup: a paragraph on the data, budget and seeds. A paper's figure is set
    beside the system named as its config."""
    notes = Footnotes()
    lines = ["# Comparison on the embedded digits", "", setup, ""]
    lines += _table(["system", "seeds", "wall time", *metrics],
                    [[row.name, ", ".join(map(str, row.seeds)), format_seconds(row.seconds),
                      *(_cell(row, m, notes) for m in metrics)] for row in systems])
    lines += ["", "Metrics: " + "; ".join(f"`{m}` {METRIC_MEANINGS[m]}" if m in METRIC_MEANINGS else f"`{m}`"
                                          for m in metrics) + ". Wall time: training alone, per run.", ""]
    base_metrics = [m for m in ("knn1", "linear_svm", "class_error") if any(m in row.values for row in baselines)]
    lines += ["## Classical baselines (the same split, the same classifiers)", ""]
    lines += _table(["baseline", "seeds", *base_metrics],
                    [[row.name, ", ".join(map(str, row.seeds)),
                      *(format_cell(m, row.values[m]) if m in row.values else "" for m in base_metrics)]
                     for row in baselines])
    lines += ["", "## The papers' figures beside ours", "",
              f"The papers trained and tested on MNIST's {PAPERS_SPLIT}; ours on the embedded 5,000 digits "
              f"(training on those before the held-out ones). A direction, not a target.", ""]
    by_config = {row.name: row for row in systems}
    lines += _table(["paper's system", "metric", "paper", "ours", "source"],
                    [[f.system, f"`{f.metric}`", format_value(f.metric, f.value),
                      (f"{format_cell(f.metric, by_config[f.config].values.get(f.metric, []))} ({f.config})"
                       if f.config in by_config else ""), f.source]
                     for f in PAPER_FIGURES if f.metric in metrics])
    if notes.reasons:
        lines += ["", "## Footnotes", "", *notes.lines()]
    return "\n".join(lines) + "\n"
