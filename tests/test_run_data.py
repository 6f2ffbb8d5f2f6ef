"""The run's data, opened once: batches from memory equal the DataLoader's, bit for bit; the
held-out images and labels; errors before anything is written; one open per resolution."""
import itertools
import types

import pytest
import torch

import alae.datasets.lmdb_dataset as lmdb_dataset
import alae.training.run_data as run_data
from alae import train
from alae.config import ConfigError, load_config
from alae.datasets import LMDBDataset, build_database
from alae.metrics import compute_metrics
from alae.training.data import NO_LABEL, DataPosition, make_loader
from alae.training.run_data import RunData
from digit_database import networks, write_digit_database, write_family_model


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """100 labelled digits (8 training and 2 test per class), 28 px served from the 32 px level."""
    return write_digit_database(tmp_path_factory.mktemp("digits"), 8, 2)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The 100 embedded faces at 4 and 8 px, no labels."""
    db = tmp_path_factory.mktemp("faces") / "db"
    build_database("lfw", db, max_resolution=8, workers=0)
    return db


def digits_config(*overrides):
    return load_config("mnist-vae", ["data.holdout=20", "train.batch_per_lod=[16]", *overrides])


def faces_config(*overrides):
    return load_config("demo", ["model.resolution=8", "model.channels=[16, 8]", "train.batch_per_lod=[16, 8]",
                                "train.lr_per_lod=[0.002, 0.002]", "data.holdout=10", *overrides])


def loader_batches(data: RunData, resolution, batch, rank, world_size, seed, start, mirror):
    return iter(make_loader(LMDBDataset(data.path, resolution), data.num_train, batch, rank, world_size, seed, start,
                            mirror, workers=0))


def take(batches, n):
    return list(itertools.islice(batches, n))


@pytest.mark.parametrize("which", ["digits", "faces"])
@pytest.mark.parametrize("world_size, start", [(1, DataPosition()), (2, DataPosition()), (4, DataPosition(2, 48))])
def test_batches_from_memory_are_the_loaders_on_every_rank_and_from_any_position(request, which, world_size, start):
    path = request.getfixturevalue(which)
    cfg = digits_config() if which == "digits" else faces_config()
    data = RunData(path, cfg)
    resolution, batch, steps = cfg.model.resolution, 16, 12  # 12 steps of 16: more than one epoch of 80 or 90
    for mirror in (False, True):
        for rank in range(world_size):
            args = (resolution, batch, rank, world_size, 5, start, mirror)
            from_memory = take(data.batches(*args, workers=0), steps)
            from_loader = take(loader_batches(data, *args), steps)
            for a, b in zip(from_memory, from_loader, strict=True):
                assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
                assert a.images.shape == (batch // world_size, cfg.model.image_channels, resolution, resolution)
        if which == "digits":
            assert set(torch.cat([b.labels for b in from_memory]).tolist()) <= set(range(10))


def test_a_split_larger_than_the_budget_is_read_through_the_loader(faces, monkeypatch):
    data = RunData(faces, faces_config())
    monkeypatch.setattr(run_data, "MEMORY_BUDGET", data.num_train * 3 * 4 * 4)  # 4 px fits, 8 px does not
    assert data.training_split(4).shape == (90, 3, 4, 4) and data.training_split(8) is None
    assert not isinstance(data.batches(8, 16, 0, 1, 0, DataPosition(), True, workers=0), types.GeneratorType)
    first = next(data.batches(8, 16, 0, 1, 0, DataPosition(), True, workers=0))
    assert torch.equal(first.images, next(loader_batches(data, 8, 16, 0, 1, 0, DataPosition(), True)).images)


def test_only_the_last_resolutions_split_is_kept(faces):
    data = RunData(faces, faces_config())
    four = data.training_split(4)
    assert data.training_split(4) is four
    eight = data.training_split(8)
    images = LMDBDataset(faces, 8)
    assert torch.equal(eight, torch.stack([images[i] for i in range(90)]))
    assert data._split[0] == 8 and data.training_split(4) is not four


def test_held_out_images_and_labels_are_the_databases_last(digits):
    data = RunData(digits, digits_config())
    images = LMDBDataset(digits, 28)
    assert (data.count, data.num_train, data.holdout) == (100, 80, 20)
    assert torch.equal(data.held_out_images, torch.stack([images[i] for i in range(80, 100)]))
    assert data.held_out_labels.tolist() == [images.label(i) for i in range(80, 100)]
    assert data.labels.dtype == torch.int64 and len(data.labels) == 100


@pytest.mark.parametrize("overrides, message", [
    (["data.holdout=100"], "data.holdout = 100 leaves no training images (100 in"),
    (["train.batch_per_lod=[96]"], "the global batch (96) is larger than the training set (80 images"),
    (["model.image_channels=3"], "model.image_channels is 3 but"),
])
def test_data_that_cannot_train_is_a_config_error(digits, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunData(digits, digits_config(*overrides))


def test_a_labelled_subset_the_classes_cannot_fill_is_a_config_error(digits):
    cfg = load_config("mnist-aae-semi", ["data.holdout=20", "train.batch_per_lod=[16]", "data.labelled=100"])
    with pytest.raises(ConfigError, match="data.labelled: 100 labels need 10 images of class"):
        RunData(digits, cfg)


def test_a_batch_only_at_lods_the_schedule_never_reaches_may_exceed_the_split(faces):
    RunData(faces, faces_config("train.batch_per_lod=[16, 128]", "train.total_kimg=0.016"))  # lod 1 starts at 960 images
    with pytest.raises(ConfigError, match="global batch"):
        RunData(faces, faces_config("train.batch_per_lod=[16, 128]", "train.total_kimg=100"))


def test_metrics_take_the_open_data_and_give_the_same_figures(digits, tmp_path, monkeypatch):
    model = networks(write_family_model(tmp_path / "vae.pt", "vae")).eval()
    data = RunData(digits, digits_config())
    by_path = compute_metrics(["knn1", "mse_rec"], model, digits, holdout=20, progress=False)

    def no_new_database(*args, **kwargs):
        raise AssertionError("the metrics opened the database again")

    monkeypatch.setattr("alae.metrics.evaluation.LMDBDataset", no_new_database)
    by_data = compute_metrics(["knn1", "mse_rec"], model, data, holdout=20, progress=False)
    assert [r.value for r in by_data] == [r.value for r in by_path]


def test_a_training_run_opens_its_database_once_per_resolution(tmp_path, faces, monkeypatch):
    opened = []
    real_init = lmdb_dataset.LMDBDataset.__init__

    def counting_init(self, path, resolution, mirror=False):
        opened.append(resolution)
        real_init(self, path, resolution, mirror)

    monkeypatch.setattr(lmdb_dataset.LMDBDataset, "__init__", counting_init)
    argv = ["--config", "demo", "--data", str(faces), "--out", str(tmp_path / "run"), "--kimg", "0.064",
            "--device", "cpu", "model.resolution=8", "model.channels=[16, 8]", "model.latent_dim=16",
            "model.mapping_layers=2", "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.002, 0.003]",
            "train.kimg_fade=0.016", "train.kimg_stable=0.016", "data.holdout=4", "log.grid_size=2",
            "log.kimg_per_tick=0.016", "log.kimg_per_sample=1", "log.kimg_per_checkpoint=1", "log.metrics=[mse_rec]"]
    assert train.main(argv) == 0
    assert sorted(opened) == [4, 8]  # lod 0 at 4 px, lod 1 and the model at 8 px; metrics and grids share them


def test_the_2d_aaes_labelled_images_are_one_fixed_set_in_both_readers(digits):
    """aae.labelled_fraction keeps the labels of a set drawn once by train.seed: the same images
    in every epoch, from memory and through the DataLoader, the held-out labels untouched."""
    cfg = load_config("mnist-aae-2d", ["data.holdout=20", "train.batch_per_lod=[16]", "aae.labelled_fraction=0.4"])
    data = RunData(digits, cfg)
    true = data.labels[:80]
    kept = data.training_labels != NO_LABEL
    assert torch.equal(data.training_labels[kept], true[kept])
    # 80 draws with p = 0.4: mean 32, std 4.4; 6 std either side
    assert 6 <= int(kept.sum()) <= 58
    again = RunData(digits, cfg)
    assert torch.equal(again.training_labels, data.training_labels)
    assert torch.equal(data.held_out_labels, data.labels[80:])
    start = DataPosition()
    from_memory = data.batches(28, 16, 0, 1, 0, start, False, 0)
    loader = iter(make_loader(data.images(28), 80, 16, 0, 1, 0, start, False, 0, data.training_labels))
    labels_seen = []
    for _ in range(10):  # two epochs
        a, b = next(from_memory), next(loader)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
        labels_seen.append(a.labels)
    labelled = torch.cat(labels_seen) != NO_LABEL
    assert 0 < int(labelled.sum()) < 160
    other = RunData(digits, load_config("mnist-aae-2d", ["data.holdout=20", "train.batch_per_lod=[16]",
                                                          "aae.labelled_fraction=0.4", "train.seed=1"]))
    assert not torch.equal(other.training_labels, data.training_labels)
    full = RunData(digits, load_config("mnist-aae-2d", ["data.holdout=20", "train.batch_per_lod=[16]",
                                                         "aae.labelled_fraction=1"]))
    assert torch.equal(full.training_labels, true)
