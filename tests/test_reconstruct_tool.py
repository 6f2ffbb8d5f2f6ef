"""alae-reconstruct: every output, metrics recomputed independently from the written files,
refinement lowering the error, inputs of every kind, bad inputs skipped and listed."""
import csv
import json
import zipfile

import numpy as np
import pytest
import torch
from lpips_stand_in import save_stand_in
from PIL import Image
from skimage.data import astronaut
from skimage.metrics import mean_squared_error, structural_similarity

from alae.datasets import build_database
from alae.datasets.fitting import fit_square_rgb
from alae.model_files.loading import load_networks
from alae.tools import reconstruct


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Five readable photos (crops of the astronaut, one not square) and an unreadable file."""
    folder = tmp_path_factory.mktemp("photos")
    image = astronaut()
    crops = {"a.png": image[:256, :256], "b.png": image[100:300, 150:350], "c.jpg": image[200:, 200:],
             "sub/d.png": image[::4, ::4], "wide.png": image[:200, :]}
    for name, pixels in crops.items():
        (folder / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def run(tiny_model, out, *inputs, extra=()):
    return reconstruct.main([str(tiny_model), *map(str, inputs), "--out", str(out), "--device", "cpu", *extra])


def test_writes_every_output_and_metrics_that_match_the_files(tiny_model, photos, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(tiny_model, out, photos, extra=["--batch", "2"]) == 0
    err = capsys.readouterr().err
    assert "skipped broken.png: unreadable" in err and "centre-cropped 1 non-square inputs" in err
    table = rows(out / "metrics.csv")
    names = [r["name"] for r in table[:-1]]
    assert names == ["a.png", "b.png", "c.jpg", "sub/d.png", "wide.png"] and table[-1]["name"] == "mean"
    for row in table[:-1]:
        original = fit_square_rgb(Image.open(photos / row["name"]), 16) / 255.0
        rec = np.asarray(Image.open(reconstruct.output_path(out / "reconstructions", row["name"]))) / 255.0
        # the CSV measures the float output; the PNG is it rounded to 8 bits
        assert float(row["mse"]) == pytest.approx(mean_squared_error(original, rec), abs=2e-4)
        assert float(row["ssim"]) == pytest.approx(structural_similarity(
            original, rec, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False), abs=1e-2)
        assert float(row["psnr"]) == pytest.approx(-10 * np.log10(float(row["mse"])), rel=1e-5)
    assert float(table[-1]["mse"]) == pytest.approx(np.mean([float(r["mse"]) for r in table[:-1]]), rel=1e-5)
    latents = np.load(out / "latents.npz")
    assert latents["names"].tolist() == names and latents["w"].shape == (5, 16) and "wplus" not in latents
    _, model = load_networks(tiny_model)
    x = torch.tensor(fit_square_rgb(Image.open(photos / "b.png"), 16)).permute(2, 0, 1)[None] / 127.5 - 1
    torch.testing.assert_close(torch.from_numpy(latents["w"][1:2]), model.encode(x, 2, 1.0), rtol=1e-5, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == {"broken.png": summary["skipped"]["broken.png"]} and summary["images"] == 5
    assert "centre-cropped" in summary["notes"]["wide.png"]
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (2 * 65 + 1, 5 * 65 + 1, 3)  # originals above reconstructions, 5 columns, 4x


def test_refinement_lowers_the_error_and_stores_wplus(tiny_model, photos, tmp_path):
    out = tmp_path / "r"
    assert run(tiny_model, out, photos / "a.png", photos / "b.png", extra=["--refine", "30"]) == 0
    table = rows(out / "metrics.csv")
    for row in table:
        assert float(row["refined_mse"]) < float(row["mse"]), row["name"]
    latents = np.load(out / "latents.npz")
    assert latents["wplus"].shape == (2, 6, 16)
    assert not np.allclose(latents["wplus"], latents["w"][:, None, :])
    assert (out / "refined" / "a.png").is_file()
    assert np.asarray(Image.open(out / "grid.png")).shape[0] == 3 * 65 + 1  # original, encoder, refined rows


@pytest.mark.filterwarnings("ignore:`torch.jit.(script|save)` is deprecated:FutureWarning")
def test_lpips_joins_the_metrics_and_the_refinement_loss(tiny_model, photos, tmp_path):
    weights = save_stand_in(tmp_path)
    out = tmp_path / "r"
    assert run(tiny_model, out, photos / "a.png", extra=["--refine", "10", "--lpips", str(weights)]) == 0
    (row,) = rows(out / "metrics.csv")[:1]
    original = torch.tensor(fit_square_rgb(Image.open(photos / "a.png"), 16)).permute(2, 0, 1).double()
    rec = torch.tensor(np.asarray(Image.open(out / "reconstructions" / "a.png"))).permute(2, 0, 1).double()
    scale = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64).view(3, 1, 1)  # the stand-in's features
    closed_form = (torch.sqrt(original * scale + 1) - torch.sqrt(rec * scale + 1)).square().sum().item()
    assert float(row["lpips"]) == pytest.approx(closed_form, rel=0.05)  # the PNG is the output rounded to 8 bits
    assert float(row["refined_lpips"]) < float(row["lpips"])


def test_results_do_not_depend_on_the_batch_size(tiny_model, photos, tmp_path):
    inputs = [photos / n for n in ("a.png", "b.png", "c.jpg")]
    assert run(tiny_model, tmp_path / "b1", *inputs, extra=["--batch", "1", "--refine", "5"]) == 0
    assert run(tiny_model, tmp_path / "b3", *inputs, extra=["--batch", "3", "--refine", "5"]) == 0
    one, three = np.load(tmp_path / "b1" / "latents.npz"), np.load(tmp_path / "b3" / "latents.npz")
    # Convolutions round differently for different batch sizes (~1e-7); five Adam steps at lr 0.1
    # amplify that (measured: at most 2.1e-5), far below a step's 0.1.
    np.testing.assert_allclose(one["wplus"], three["wplus"], rtol=1e-4, atol=1e-4)


def test_zip_and_lmdb_inputs(tiny_model, photos, tmp_path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(photos / "a.png", "faces/a.png")
        z.write(photos / "b.png", "faces/b.png")
    database = tmp_path / "db"
    build_database(str(photos), database, max_resolution=32, workers=0)
    assert run(tiny_model, tmp_path / "z", archive, database, extra=["--holdout", "2"]) == 0
    names = [r["name"] for r in rows(tmp_path / "z" / "metrics.csv")[:-1]]
    assert names == ["faces/a.png", "faces/b.png", "sub/d.png", "wide.png"]  # the LMDB's last 2 (held out)
    assert run(tiny_model, tmp_path / "all", database, extra=["--lmdb-split", "all"]) == 0
    assert len(rows(tmp_path / "all" / "metrics.csv")) == 5 + 1


def test_align_cuts_the_face_first(tiny_model, tmp_path):
    Image.fromarray(astronaut()).save(tmp_path / "astronaut.png")
    assert run(tiny_model, tmp_path / "r", tmp_path / "astronaut.png", extra=["--align"]) == 0
    assert [r["name"] for r in rows(tmp_path / "r" / "metrics.csv")[:-1]] == ["astronaut_00"]
    assert np.asarray(Image.open(tmp_path / "r" / "aligned" / "astronaut_00.png")).shape == (16, 16, 3)


@pytest.mark.parametrize("inputs, message", [
    (["/nonexistent/photos"], "input not found: /nonexistent/photos"),
    (["{photos}/broken.png"], "none of the 1 inputs gave an image"),
])
def test_bad_inputs_are_one_line_errors(tiny_model, photos, tmp_path, capsys, inputs, message):
    assert run(tiny_model, tmp_path / "r", *[i.format(photos=photos) for i in inputs]) == 1
    assert message in capsys.readouterr().err


def test_model_file_of_the_wrong_kind(photos, tmp_path, capsys):
    bogus = tmp_path / "bogus.pt"
    torch.save([1, 2, 3], bogus)
    assert reconstruct.main([str(bogus), str(photos), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "neither an alae checkpoint nor an original ALAE model: found a list" in err and err.count("\n") == 1
