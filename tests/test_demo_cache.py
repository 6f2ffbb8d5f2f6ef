"""The demo database in the cache directory: built once, atomically, then reused."""
from pathlib import Path

from alae.datasets import LMDBDataset, default_cache_dir, ensure_lfw_database


def test_builds_once_then_reuses(tmp_path):
    path = ensure_lfw_database(tmp_path, max_res=16)
    assert path == tmp_path / "lfw-faces-16px"
    assert LMDBDataset(path, 16)[0].shape == (3, 16, 16)
    stamp = (path / "data.mdb").stat().st_mtime_ns
    assert ensure_lfw_database(tmp_path, max_res=16) == path
    assert (path / "data.mdb").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lfw-faces-16px"]  # no temporary leftovers


def test_a_broken_leftover_is_replaced(tmp_path):
    (tmp_path / "lfw-faces-8px").mkdir()
    (tmp_path / "lfw-faces-8px" / "data.mdb").write_bytes(b"\0" * 4096)
    path = ensure_lfw_database(tmp_path, max_res=8)
    assert len(LMDBDataset(path, 8)) == 100


def test_default_cache_dir_honours_alae_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ALAE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("ALAE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "alae"
