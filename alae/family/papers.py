"""The papers' MNIST figures that a comparison prints beside its own (docs/FAMILY.md, DESIGN notes).

All were measured on MNIST's 60,000 training and 10,000 test digits; a comparison here trains
on the 4,500 embedded training digits and tests on the 500 held out, so they are a direction,
not a target. Values are in the registry metric's unit (accuracy and error in [0, 1], nats).
"""
from __future__ import annotations

from dataclasses import dataclass

PAPERS_SPLIT = "60,000 training / 10,000 test digits"


@dataclass(frozen=True)
class PaperFigure:
    """One reported figure: `config` is our config of the same model (None: a reference model of no config)."""

    system: str
    metric: str
    value: float
    source: str
    config: str | None = None


PAPER_FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure("VAE 784-400-20", "elbo", -106.7, "pytorch/examples MNIST VAE, test loss after 7 epochs",
                "mnist-vae"),
    PaperFigure("AAE", "parzen_ll", 340.0, "Makhzani et al. 2015, Table 1 (± 2; GAN 225 ± 2)", "mnist-aae"),
    PaperFigure("AAE, 100 labels", "class_error", 0.0190, "Makhzani et al. 2015, §5 (re-implementations: about 5%)",
                "mnist-aae-semi"),
    PaperFigure("AAE, 16 clusters", "class_error", 0.0955, "Makhzani et al. 2015, §6 (30 clusters: 4.10%)",
                "mnist-aae-cluster"),
    PaperFigure("AE (ℓ2)", "knn1", 0.9758, "BiGAN (Donahue et al. 2017), Table 1"),
    PaperFigure("AE (ℓ1)", "knn1", 0.9763, "BiGAN (Donahue et al. 2017), Table 1"),
    PaperFigure("BiGAN", "knn1", 0.9739, "BiGAN (Donahue et al. 2017), Table 1"),
)
