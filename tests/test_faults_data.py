"""Faults of the data (alae.datasets.lmdb_header, the builder's commits): a data.mdb cut short
kills nothing with SIGBUS (alae-prepare --verify, alae-train, alae-metrics: one line naming the
file), and alae-prepare on a full disk or past a file-size limit says so and resumes."""
import shutil
import subprocess
import sys

import lmdb
import pytest

from alae.datasets import ensure_lfw_database
from alae.datasets import prepare as prepare_tool
from alae.datasets.lmdb_header import required_size
from fault_runs import TINY, demo_cache, one_error_line, private_mount_prefix  # noqa: F401
from test_faults_checkpoints import FileSizeLimit


@pytest.fixture(scope="module")
def faces(demo_cache):
    """The embedded faces at 4…32 px (a complete database)."""
    return ensure_lfw_database(demo_cache, max_res=32)


def test_the_size_read_from_the_meta_pages_is_what_lmdb_reports(faces, tmp_path):
    with lmdb.open(str(faces), readonly=True, lock=False) as env:
        reference = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    assert required_size(faces / "data.mdb") == reference
    # A database with two transactions on top: the current meta page is the newer one.
    copy = tmp_path / "grown"
    shutil.copytree(faces, copy)
    with lmdb.open(str(copy), map_size=1 << 26) as env:
        for round_ in range(2):
            with env.begin(write=True) as txn:
                for i in range(300):
                    txn.put(b"extra/%d/%d" % (round_, i), bytes(2000))
        grown = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    assert grown > reference and required_size(copy / "data.mdb") == grown
    (tmp_path / "not-lmdb").write_bytes(b"hello" * 100)
    assert required_size(tmp_path / "not-lmdb") is None  # left to LMDB to refuse


@pytest.fixture(scope="module")
def truncated(faces, tmp_path_factory):
    """A copy of the faces whose data.mdb is cut to half (as an interrupted copy leaves it)."""
    copy = tmp_path_factory.mktemp("truncated") / "faces"
    copy.mkdir()
    data = (faces / "data.mdb").read_bytes()
    (copy / "data.mdb").write_bytes(data[: len(data) // 2])
    return copy


@pytest.mark.parametrize("tool", ["alae-prepare --verify", "alae-train", "alae-metrics"])
def test_a_truncated_database_is_one_line_not_a_bus_error(tool, truncated, tiny_model, tmp_path):
    command = {
        "alae-prepare --verify": ["alae.datasets.prepare", "--verify", str(truncated)],
        "alae-train": ["alae.train", "--config", "demo", "--data", str(truncated), "--out", str(tmp_path / "run"),
                       "--device", "cpu", *TINY],
        "alae-metrics": ["alae.tools.metrics", str(tiny_model), "--data", str(truncated), "--metrics", "mse_rec",
                         "--device", "cpu", "--workers", "0"],
    }[tool]
    proc = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, f"exit {proc.returncode} (135: SIGBUS)\n{proc.stderr}"
    line = one_error_line(proc.stderr, tool.split()[0])
    assert f"{truncated / 'data.mdb'} is truncated: " in line and "LMDB's header says it holds" in line


def test_prepare_past_a_file_size_limit_says_so_and_resumes(tmp_path, capsys):
    out = tmp_path / "digits"
    with FileSizeLimit(2_000_000):
        assert prepare_tool.main(["mnist", str(out), "--workers", "0"]) == 1
    line = one_error_line(capsys.readouterr().err, "alae-prepare")
    assert f"cannot write {out / 'data.mdb'}: it would pass the file-size limit (ulimit -f) of 2.0 MB" in line
    assert line.endswith("raise the limit and re-run the same alae-prepare command to resume")
    assert prepare_tool.main(["mnist", str(out), "--workers", "0"]) == 0  # the limit lifted: the build completes
    assert "wrote 5000 images" in capsys.readouterr().out
    assert prepare_tool.main(["--verify", str(out)]) == 0


def test_prepare_on_a_full_disk_says_the_disk_is_full(tmp_path):
    mount = tmp_path / "disk"
    prefix = private_mount_prefix(mount, "size=2m")
    proc = subprocess.run([*prefix, sys.executable, "-m", "alae.datasets.prepare", "mnist", str(mount / "db"),
                           "--workers", "0"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    line = one_error_line(proc.stderr, "alae-prepare")
    assert f"cannot write {mount / 'db' / 'data.mdb'}: the disk is full (" in line
    assert "Input/output error" not in line and "free some space and re-run" in line
