"""The AAE's label uses: the class-balanced labelled subset, the categorical prior, the class
head, `class_error` (its cluster-to-label rule against a hand count) and short runs of the
mnist-aae-semi and mnist-aae-cluster configs on tiny budgets."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import alae
import alae.randomness as randomness
from alae import train
from alae.config import ConfigError, load_config
from alae.datasets import LMDBDataset, ensure_lfw_database, ensure_mnist_database, to_model_range
from alae.metrics import compute_metrics
from alae.metrics.class_error import NO_CLASS, cluster_classes
from alae.grids import grid_uint8
from alae.model import LatentAutoencoder, ModelInputError
from alae.priors import WithCategory, make_prior
from alae.training.labelled import balanced_subset
from alae.training.run_data import RunData

TINY = ["model.mlp_width=32", "model.latent_dim=4", "model.discriminator_width=16", "train.batch_per_lod=[16]",
        "data.holdout=20", "data.workers=0", "log.grid_size=2", "log.kimg_per_tick=0.032", "log.kimg_per_sample=1",
        "log.kimg_per_checkpoint=1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "alae-family-cache"


@pytest.fixture(scope="module")
def mnist(cache):
    return ensure_mnist_database(cache)


@pytest.fixture(autouse=True)
def private_cache(cache, monkeypatch):
    monkeypatch.setenv("ALAE_CACHE", str(cache))


def labels_of(*counts):
    """int64 labels: counts[k] images of class k, interleaved (0, 1, 2, 0, 1, ...) as far as they go."""
    order = [k for i in range(max(counts)) for k in range(len(counts)) if i < counts[k]]
    return torch.tensor(order)


def test_the_labelled_subset_is_exactly_n_balanced_and_seeded():
    labels = labels_of(30, 25, 40)
    subset = balanced_subset(labels, 12, 3, seed=7)
    assert len(subset) == 12 and len(set(subset.tolist())) == 12
    assert torch.bincount(labels[subset], minlength=3).tolist() == [4, 4, 4]
    assert torch.equal(subset, balanced_subset(labels, 12, 3, seed=7))
    assert not torch.equal(subset, balanced_subset(labels, 12, 3, seed=8))
    assert torch.equal(subset, subset.sort().values)
    with pytest.raises(ConfigError, match="class 1"):
        balanced_subset(labels, 90, 3, seed=0)  # 30 of class 1 needed, 25 there


def test_the_labelled_set_of_the_digits_and_its_batches(mnist):
    cfg = load_config("mnist-aae-semi", ["data.labelled=20", "train.seed=3"])
    labelled = RunData(mnist, cfg).labelled
    assert torch.bincount(labelled.labels, minlength=10).tolist() == [2] * 10
    assert int(labelled.indices.max()) < 4500  # never a held-out digit
    images, labels = labelled.batch(28, step=5, global_batch=8, rank=0, world_size=1)
    assert images.shape == (8, 1, 28, 28) and images.dtype == torch.uint8 and set(labels.tolist()) <= set(range(10))
    halves = [labelled.batch(28, 5, 8, rank, 2) for rank in (0, 1)]  # two ranks share the same global batch
    assert torch.equal(torch.cat([h[0] for h in halves]), images) and torch.equal(torch.cat([h[1] for h in halves]), labels)
    digits = LMDBDataset(mnist, 28)
    for image, label, index in zip(labelled.images_at(28), labelled.labels, labelled.indices):
        assert torch.equal(image, digits[int(index)]) and label == digits.label(int(index))


def test_the_categorical_prior_is_z_then_a_one_hot_class():
    prior = WithCategory(make_prior("gaussian", 3), 4)
    g = torch.Generator().manual_seed(0)
    x = prior.sample(20000, g)
    assert x.shape == (20000, 7) and torch.equal(x[:, 3:].sum(1), torch.ones(20000))
    assert torch.equal(x[:, 3:].argmax(1), x[:, 3:].nonzero()[:, 1])
    torch.testing.assert_close(x.double().mean(0), prior.mean(), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x.double().T), prior.covariance(), atol=0.03, rtol=0)
    labelled = prior.sample(3, torch.Generator().manual_seed(1), torch.tensor([2, 4, 0]))
    assert labelled[:, 3:].argmax(1).tolist()[0::2] == [2, 0]  # 4: unlabelled, a uniform class


@pytest.mark.parametrize("overrides, fragments", [
    (["data.labelled=100"], ["data.labelled", "class head"]),
    (["aae.categories=10", "data.labelled=15"], ["data.labelled", "15", "multiple"]),
    (["aae.categories=10", "aae.posterior=gaussian"], ["aae.posterior", "deterministic"]),
    (["aae.categories=10", "aae.prior=mixture", "aae.prior_labels=true", "model.latent_dim=2"],
     ["aae.categories/aae.prior_labels"]),
    (["train.objective=wae_gan"], ["aae", "wae_gan"]),
    (["aae.categories_from=both", "aae.categories=10"], ["aae.categories_from", "both"]),
])
def test_category_settings_that_cannot_work_are_one_line_config_errors(overrides, fragments):
    with pytest.raises(ConfigError) as error:
        load_config("mnist-aae", overrides)
    assert all(f in str(error.value) for f in fragments) and "\n" not in str(error.value), error.value


def test_a_class_head_gives_probabilities_and_its_softmax_is_the_code():
    cfg = load_config("mnist-aae-semi", TINY)
    model = LatentAutoencoder(cfg).eval()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    p = model.classify(x)
    assert p.shape == (5, 10) and torch.allclose(p.sum(1), torch.ones(5)) and (p >= 0).all()
    code = model.encode(x, 0, 1.0)
    assert code.shape == (5, 14) and torch.allclose(code[:, 4:], p)
    assert model.labelled_classes and not LatentAutoencoder(load_config("mnist-aae-cluster", TINY)).labelled_classes
    with pytest.raises(ValueError, match="no class head"):
        LatentAutoencoder(load_config("mnist-aae", TINY)).classify(x)


def test_each_cluster_takes_the_majority_label_of_its_training_images():
    # By hand: cluster 0 holds labels 3, 3, 8 → 3; cluster 1 holds 5, 4, 5, 4 → a tie, the smaller
    # label 4; cluster 2 holds none → no class; cluster 3 holds 9 → 9.
    categories = torch.tensor([0, 1, 0, 1, 3, 1, 0, 1])
    labels = torch.tensor([3, 5, 3, 4, 9, 5, 8, 4])
    assert cluster_classes(categories, labels, 4, 10).tolist() == [3, 4, NO_CLASS, 9]


def run(config, out, kimg, *overrides, data):
    return train.main(["--config", config, "--out", str(out), "--kimg", str(kimg), "--device", "cpu", "--data",
                       str(data), *TINY, *overrides])


def digits(mnist, first, count):
    images = LMDBDataset(mnist, 28)
    return (to_model_range(torch.stack([images[i] for i in range(first, first + count)])),
            torch.tensor([images.label(i) for i in range(first, first + count)]))


@pytest.fixture(scope="module")
def trained(mnist, tmp_path_factory):
    """mnist-aae-semi (20 labels) and mnist-aae-cluster (6 clusters) with class_error at the end,
    mnist-aae-supervised and mnist-aae-2d: 4 steps each."""
    folder = tmp_path_factory.mktemp("aae-labels")
    runs = {"semi": ("mnist-aae-semi", ["data.labelled=20", "log.metrics=[class_error]"]),
            "cluster": ("mnist-aae-cluster", ["aae.categories=6", "log.metrics=[class_error]"]),
            "supervised": ("mnist-aae-supervised", []), "2d": ("mnist-aae-2d", ["model.latent_dim=2"])}
    for name, (config, overrides) in runs.items():
        assert run(config, folder / name, 0.064, *overrides, data=mnist) == 0
    return {name: folder / name for name in runs}


@pytest.mark.parametrize("name", ["semi", "cluster"])
def test_the_semi_supervised_and_clustering_configs_train_and_measure_their_class_error(name, trained, mnist):
    out = trained[name]
    rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    expected = {"loss_rec", "loss_d", "loss_dy", "loss_e", "loss_ey"} | (
        {"loss_class", "labelled_error"} if name == "semi" else set())
    for r in rows:
        assert expected <= set(r) and ("loss_class" in r) == (name == "semi")
    (result,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                 if json.loads(line)["kimg"] == 0.064]
    assert result["metric"] == "class_error" and 0 <= result["value"] <= 1
    assert result["images"]["held_out"] == 20
    model = alae.load_model(out, "cpu").networks
    held_out, labels = digits(mnist, 4980, 20)
    with torch.no_grad():
        predicted = model.classify(held_out).argmax(1)
    if name == "semi":
        expected_error = (predicted != labels).double().mean().item()
    else:  # the rule written out again: majority label of the training digits per cluster
        train_x, train_labels = digits(mnist, 0, 4980)
        with torch.no_grad():
            train_clusters = model.classify(train_x).argmax(1)
        named = [torch.bincount(train_labels[train_clusters == k], minlength=10).argmax().item()
                 if (train_clusters == k).any() else -1 for k in range(6)]
        expected_error = (torch.tensor(named)[predicted] != labels).double().mean().item()
        assert result["named_classes"] == named and result["images"]["training"] == 4980
    assert result["value"] == pytest.approx(expected_error)


def test_class_error_is_skipped_in_one_line_without_a_class_head_or_labels(trained, mnist, cache, tmp_path):
    plain = LatentAutoencoder(load_config("mnist-aae", TINY)).eval()
    (result,) = compute_metrics(["class_error"], plain, mnist, holdout=20, progress=False)
    assert result.value is None and "needs a model with a class head" in result.skipped
    assert "\n" not in result.skipped
    faces = ensure_lfw_database(cache, max_res=32)
    semi = alae.load_model(trained["semi"], "cpu").networks
    (result,) = compute_metrics(["class_error"], semi, faces, holdout=20, progress=False)
    assert result.value is None and "needs class labels" in result.skipped


def test_the_supervised_config_trains_with_labels_and_draws_the_style_figure(trained, mnist):
    out = trained["supervised"]
    rows = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all({"loss_rec", "loss_d", "loss_e"} <= set(r) and "loss_dy" not in r for r in rows)
    assert "held-out reconstruction MSE" in (out / "log.txt").read_text()
    model = alae.load_model(out, "cpu").networks
    assert model.decoder_labels and not model.class_head and model.Dy is None
    # The figure: row i is G([z_i, one-hot(k)]) for k = 0..9, z_i the z part of fixed grid latent i.
    cfg = alae.load_config(str(out / "config.yaml"))
    z = model.prior.sample(4, randomness.generator(cfg.train.seed, "grid"))[:2, :4]
    codes = torch.cat([z.repeat_interleave(10, 0), torch.eye(10).repeat(2, 1)], dim=1)
    with torch.no_grad():
        expected = grid_uint8(model.image_of(model.G(codes[:, None])), 10).permute(1, 2, 0).numpy()
    figure = sorted((out / "samples").glob("classes-*.png"))
    assert len(figure) == 2
    with Image.open(figure[-1]) as picture:
        assert picture.size == (10 * 85 + 1, 2 * 85 + 1)
        assert np.abs(np.asarray(picture.convert("RGB")).astype(int) - expected.astype(int)).max() <= 1
    x, labels = digits(mnist, 4980, 3)
    with pytest.raises(ModelInputError, match="class label"):
        model.encode(x, 0, 1.0)
    with torch.no_grad():
        reconstruction = model.reconstruct(x, 0, 1.0, labels=labels)
        by_hand = model.image_of(model.G(torch.cat([model.E(x), torch.eye(10)[labels]], dim=1)[:, None]))
    torch.testing.assert_close(reconstruction, by_hand)


def test_code_metrics_of_a_supervised_model_use_z_and_its_reconstructions_the_labels(trained, mnist):
    """knn1 on z alone (the given one-hot would name the class by itself); mse_rec with the labels."""
    from sklearn.neighbors import KNeighborsClassifier

    model = alae.load_model(trained["supervised"], "cpu").networks
    knn, mse = compute_metrics(["knn1", "mse_rec"], model, mnist, holdout=20, progress=False)
    train_x, train_labels = digits(mnist, 0, 4980)
    test_x, test_labels = digits(mnist, 4980, 20)
    with torch.no_grad():
        z_train, z_test = model.E(train_x).double().numpy(), model.E(test_x).double().numpy()
        reconstruction = model.reconstruct(test_x, 0, 1.0, labels=test_labels)
    expected = KNeighborsClassifier(1).fit(z_train, train_labels.numpy()).score(z_test, test_labels.numpy())
    assert knn.value == pytest.approx(expected)
    assert mse.value == pytest.approx((reconstruction.double() - test_x.double()).square().mean().item(), rel=1e-5)


def test_the_2d_config_gives_d_the_label_to_pick_the_mixture_component(trained):
    cfg = alae.load_config(str(trained["2d"] / "config.yaml"))
    assert cfg.model.latent_dim == 2 and cfg.objective.prior == "mixture" and cfg.objective.prior_labels
    model = alae.load_model(trained["2d"], "cpu").networks
    assert model.label_classes == 10 and model.D.layers[0].weight.shape[1] == 2 + 11  # z, then 10 classes + unlabelled


def test_a_class_figure_is_written_for_clusters_too(trained):
    with Image.open(sorted((trained["cluster"] / "samples").glob("classes-*.png"))[-1]) as picture:
        assert picture.size == (6 * 85 + 1, 2 * 85 + 1)  # 6 clusters across, 2 rows


def test_a_semi_supervised_run_resumes_bit_for_bit(mnist, tmp_path):
    from alae.model_files.checkpoint import load_checkpoint

    overrides = ["data.labelled=20"]
    assert run("mnist-aae-semi", tmp_path / "straight", 0.064, *overrides, data=mnist) == 0
    assert run("mnist-aae-semi", tmp_path / "split", 0.032, *overrides, data=mnist) == 0
    assert run("mnist-aae-semi", tmp_path / "split", 0.064, *overrides, "--resume", "auto", data=mnist) == 0
    a, b = (load_checkpoint(tmp_path / name / "checkpoints" / "latest.pt") for name in ("straight", "split"))
    assert a["progress"] == b["progress"] and a["optimizers"].keys() == b["optimizers"].keys()
    assert "encoder" in a["optimizers"]  # aae.shared_encoder_adam: E's one Adam, through the classification phase too
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"


@pytest.mark.parametrize("config, overrides, fragment", [
    ("mnist-aae-semi", ["data.labelled=20"], "data.labelled needs class labels"),
    ("mnist-aae-supervised", [], "aae.categories_from=label needs class labels"),
])
def test_label_uses_on_a_database_without_labels_are_one_line_errors(config, overrides, fragment, cache, tmp_path,
                                                                      capsys):
    faces = ensure_lfw_database(cache, max_res=8)
    style = ["model.backbone=style", "model.resolution=8", "model.channels=[16, 16]", "model.image_channels=3",
             "train.batch_per_lod=[8, 8]", "train.lr_per_lod=[0.001, 0.001]", "data.holdout=4"]
    assert run(config, tmp_path / "run", 0.032, *overrides, *style, data=faces) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], lines
