"""alae-classify end to end on a tiny semi-supervised AAE with random weights: one CSV row per
image whose probabilities are the class head's (computed here from E itself) and sum to 1, one
grid per predicted class holding exactly its images, and a one-line error for a model without
a class head."""
import csv
import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from alae.config import load_config, to_dict
from alae.datasets import LMDBDataset, ensure_mnist_database, to_model_range
from alae.grids import display_scale
from alae.model import LatentAutoencoder
from alae.model_files.checkpoint import save_networks_checkpoint
from alae.tools import classify

SMALL = ["model.mlp_width=32", "model.latent_dim=4", "model.discriminator_width=16"]
DIGITS = 12


def write_model(path, config, seed=0):
    cfg = load_config(config, SMALL)
    torch.manual_seed(seed)
    model = LatentAutoencoder(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # confident, varied predictions from random weights
    save_networks_checkpoint(path, to_dict(cfg), None, model.state_dict(), {"format": "test"})
    return path, model.eval()


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory):
    mnist = ensure_mnist_database(tmp_path_factory.getbasetemp() / "alae-family-cache")
    images = LMDBDataset(mnist, 28)
    folder = tmp_path_factory.mktemp("digits")
    for k in range(DIGITS):
        Image.fromarray(images[k][0].numpy(), mode="L").save(folder / f"d{k:02d}.png")
    return folder, torch.stack([images[k] for k in range(DIGITS)])


def one_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("alae-classify: error: ") and "Traceback" not in err, err
    return lines[0]


def test_classify_writes_predictions_and_one_grid_per_predicted_class(digit_pngs, tmp_path):
    folder, pixels = digit_pngs
    path, model = write_model(tmp_path / "semi.pt", "mnist-aae-semi")
    out = tmp_path / "out"
    assert classify.main([str(path), str(folder), "--out", str(out), "--device", "cpu", "--batch", "5"]) == 0
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [f"d{k:02d}.png" for k in range(DIGITS)]
    probabilities = torch.tensor([[float(r[f"p{k}"]) for k in range(10)] for r in rows], dtype=torch.float64)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(DIGITS, dtype=torch.float64), atol=1e-5, rtol=0)
    with torch.no_grad():  # the reference in float64: E's output after the 4-D z is the class head
        expected = model.double().E(to_model_range(pixels).double())[:, 4:].softmax(1)
    # The tool computes in float32: each dot product of E (fan-in ≤ 784) is within about
    # fan_in·2^-24 ≈ 5e-5 of Σ|w·x| (≈ 1 for these unit-scale layers), and a softmax moves by at
    # most half of its logits' largest change, so 1e-4 bounds the rounding on any CPU and batch.
    torch.testing.assert_close(probabilities, expected, atol=1e-4, rtol=0)
    classes = [int(r["class"]) for r in rows]
    top2 = expected.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1] > 2e-4).tolist()  # near-ties may go either way in float32
    assert [c for c, ok in zip(classes, clear) if ok] == [k for k, ok in zip(expected.argmax(1).tolist(), clear) if ok]
    assert [float(r["probability"]) for r in rows] == pytest.approx(expected.max(1).values.tolist(), abs=1e-4)
    assert len(set(classes)) > 1  # the test sees several grids
    side = 28 * display_scale(28) + 1
    for k in range(10):
        count = classes.count(k)
        grid = out / "classes" / f"{k}.png"
        assert grid.exists() == (count > 0)
        if count:
            with Image.open(grid) as picture:  # 8 columns at most, one row per 8 images (one image: no border)
                expected_size = (side - 1,) * 2 if count == 1 else (min(count, 8) * side + 1, -(-count // 8) * side + 1)
                assert picture.size == expected_size
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {str(k): classes.count(k) for k in sorted(set(classes))}
    assert summary["images"] == DIGITS and summary["categories_are_classes"] is True


def test_a_model_without_a_class_head_is_a_one_line_error(digit_pngs, tmp_path, capsys):
    path, _ = write_model(tmp_path / "aae.pt", "mnist-aae")
    out = tmp_path / "out"
    assert classify.main([str(path), str(digit_pngs[0]), "--out", str(out), "--device", "cpu"]) == 1
    assert "no class head" in one_line(capsys)
    assert not out.exists()


def test_classify_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "alae.tools.classify", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "predictions" not in result.stderr and "--per-class" in result.stdout
