"""The alae-prepare command line: builds, summaries, verify, and one-line errors without tracebacks."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from alae.datasets.prepare import main


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of alae-prepare run in this process."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, message):
    assert status == 1
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line] == [f"alae-prepare: error: {message}"]


@pytest.fixture
def small_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_build_lfw_then_verify_and_rerun(capsys, tmp_path):
    status, out, err = run_cli(capsys, "lfw", tmp_path / "db", "--max-res", 16, "--workers", 0)
    assert status == 0 and "wrote 100 images at 4..16px" in out and "4px raw" in out
    status, out, _ = run_cli(capsys, "--verify", tmp_path / "db")
    assert status == 0 and "OK, 100 images at 4..16px" in out
    status, out, _ = run_cli(capsys, "lfw", tmp_path / "db", "--max-res", 16)
    assert status == 0 and "already complete" in out


def test_missing_source_is_one_line_error(capsys, tmp_path):
    status, _, err = run_cli(capsys, tmp_path / "absent", tmp_path / "db")
    assert_one_line_error(status, err, f"source not found: {tmp_path / 'absent'}")


def test_empty_folder_is_one_line_error(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    status, _, err = run_cli(capsys, tmp_path / "empty", tmp_path / "db")
    assert_one_line_error(status, err, f"no images found in {tmp_path / 'empty'} (looked for .png .jpg .jpeg .webp)")


def test_non_image_file_as_source_is_one_line_error(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    status, _, err = run_cli(capsys, tmp_path / "notes.txt", tmp_path / "db")
    assert_one_line_error(status, err, f"source {tmp_path / 'notes.txt'} is not a folder, a zip archive, "
                                       f"an MNIST images file, 'lfw' or 'mnist'")


def test_non_image_files_in_a_folder_are_a_one_line_warning(capsys, small_folder, tmp_path):
    (small_folder / "readme.txt").write_text("hello")
    status, out, err = run_cli(capsys, small_folder, tmp_path / "db", "--workers", 0)
    assert status == 0 and "wrote 3 images" in out
    assert "alae-prepare: warning: ignored 1 files that are not images (e.g. readme.txt)" in err.splitlines()


def test_corrupt_file_is_reported_and_counted(capsys, small_folder, tmp_path):
    (small_folder / "1b_broken.png").write_text("not a png")
    status, out, err = run_cli(capsys, small_folder, tmp_path / "db", "--workers", 2)
    assert status == 0 and "wrote 3 images" in out
    assert "skipped 1 unreadable or refused files:" in out and "1b_broken.png" in out
    assert "skipped 1b_broken.png" in err and "Traceback" not in err
    status, out, _ = run_cli(capsys, "--verify", tmp_path / "db")
    assert status == 0 and "the build skipped 1b_broken.png" in out


def test_verify_of_a_missing_database_is_one_line_error(capsys, tmp_path):
    status, _, err = run_cli(capsys, "--verify", tmp_path / "absent")
    assert status == 1 and err.startswith("alae-prepare: error: dataset not found") and "Traceback" not in err


def test_usage_errors_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["lfw"])
    assert exit_info.value.code == 2 and "SOURCE and OUT are required" in capsys.readouterr().err


def test_module_entry_point_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "alae.datasets.prepare", str(tmp_path / "absent"), str(tmp_path / "db")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"alae-prepare: error: source not found: {tmp_path / 'absent'}"


def test_damaged_output_database_is_one_line_error(capsys, small_folder, tmp_path):
    out = tmp_path / "db"
    out.mkdir()
    (out / "data.mdb").write_bytes(b"\0" * 4096)  # not an LMDB file: lmdb raises its own error type
    status, _, err = run_cli(capsys, small_folder, out, "--workers", "0")
    assert status == 1 and "Traceback" not in err
    assert len([line for line in err.splitlines() if line]) == 1 and err.startswith("alae-prepare: error:")
