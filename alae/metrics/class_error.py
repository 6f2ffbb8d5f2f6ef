"""class_error: how often a model's class head names the wrong class of a held-out digit.

For models that can `classify` (an AAE with a categorical code from the encoder,
`aae.categories`), on a database with labels. The images: the database's last `holdout`
images (all images without a holdout), read at the resolution of `lod`, classified at
(lod, alpha) by their most probable category.

- A model whose categories are the database's classes (it learnt from labels,
  `model.labelled_classes`): category k names class k.
- A clustering model (no labels learnt; K may differ from the number of classes): category k
  names the majority label of the training images (the images before the held-out ones; all
  without a holdout) whose most probable category is k (a tie goes to the smaller label). The
  AAE paper (§6) names a cluster by the label of its most confident validation image instead;
  the majority of many training images depends less on one image. A category no training image
  falls in names no class: its held-out images count as errors.

value: the share of held-out images whose named class is not their label, in [0, 1]; the details
give how many held-out images fall in each category (`held_out_per_category`).
"""
from __future__ import annotations

import torch

from alae.datasets import to_model_range
from alae.datasets.layout import read_metadata
from alae.metrics.errors import MetricError
from alae.metrics.evaluation import Evaluation
from alae.metrics.reconstruction import reconstruction_range
from alae.metrics.results import Figures
from alae.metrics.sharding import gather_rows

NO_CLASS = -1  # what a category names when no training image falls in it


def cluster_classes(categories: torch.Tensor, labels: torch.Tensor, num_categories: int,
                    num_classes: int) -> torch.Tensor:
    """The class each category names, int64 [num_categories]: the majority label of the images
    whose category is k (categories, labels: int [n]); NO_CLASS for a category of no image."""
    counts = torch.zeros(num_categories, num_classes, dtype=torch.int64)
    counts.index_put_((categories.long(), labels.long()), torch.ones(len(labels), dtype=torch.int64), accumulate=True)
    named = counts.argmax(dim=1)  # the first maximum: the smaller label on a tie
    named[counts.sum(dim=1) == 0] = NO_CLASS
    return named


def _categories(ev: Evaluation, indices: range, desc: str) -> torch.Tensor | None:
    """The most probable category of each image of `indices`, int64 [len(indices)] on rank 0 (None elsewhere)."""
    parts = []
    bar = ev.progress(len(ev.my_shard(indices)), desc)
    for _, images in ev.image_batches(indices, ev.resolution):
        parts.append(ev.model.classify(to_model_range(images), ev.lod, ev.alpha).argmax(dim=1))
        bar.update(len(images))
    bar.close()
    return gather_rows(torch.cat(parts), len(indices), ev.ctx)


def class_problem(ev: Evaluation) -> str | None:
    """Why `ev` gives no class error (no class head, no labels), or None."""
    if not ev.model.class_head:
        return (f"needs a model with a class head (aae with aae.categories and aae.categories_from=encoder); "
                f"this {ev.model.objective} model has none")
    if "labels" not in read_metadata(ev.data):  # before the images are opened at the networks' resolution
        return f"needs class labels, and {ev.data} has none (MNIST databases have them)"
    return None


def class_error(ev: Evaluation, name: str, count: int | None) -> Figures:
    model = ev.model
    database = ev.images(ev.resolution)
    held_out = reconstruction_range(ev, count)
    predicted = _categories(ev, held_out, f"{name} held-out")
    details = {"holdout": ev.holdout, "categories": model.class_head, "classes": database.classes}
    images = {"held_out": len(held_out)}
    named = None  # category k names class k
    details["rule"] = "category k is class k (learnt from labels)"
    if not model.labelled_classes:
        training = range(0, held_out.start) if ev.holdout is not None else held_out
        if not len(training):
            raise MetricError(f"{name}: a clustering model's categories are named by training images, and "
                              f"{ev.data} has none before its {len(held_out)} held-out images")
        train_categories = _categories(ev, training, f"{name} training")
        images["training"] = len(training)
        details["rule"] = "majority label of the training images in the category"
        if train_categories is not None:
            named = cluster_classes(train_categories, _labels(database, training), model.class_head,
                                    database.classes)
            details["named_classes"] = named.tolist()
    if predicted is None:  # not rank 0: the value is broadcast from there
        return Figures(None, images, details)
    details["held_out_per_category"] = torch.bincount(predicted, minlength=model.class_head).tolist()
    classes = predicted if named is None else named[predicted]
    value = (classes != _labels(database, held_out)).double().mean().item()
    return Figures(value, images, details)


def _labels(database, indices: range) -> torch.Tensor:
    return torch.tensor([database.label(i) for i in indices], dtype=torch.int64)
