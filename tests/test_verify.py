"""verify_database finds damaged records and incomplete builds."""
import lmdb

from alae.datasets import build_database, verify_database
from alae.datasets.layout import PROGRESS_KEY, image_key


def test_sound_database_has_no_problems(tmp_path):
    build_database("lfw", tmp_path / "db", max_resolution=16, workers=0)
    report = verify_database(tmp_path / "db")
    assert report.problems == [] and report.count == 100 and report.resolutions == [4, 8, 16]


def test_damaged_records_are_reported(tmp_path):
    build_database("lfw", tmp_path / "db", max_resolution=16, workers=0)
    env = lmdb.open(str(tmp_path / "db"))
    with env.begin(write=True) as txn:
        txn.put(image_key(16, 3), b"short")
        level = bytearray(txn.get(image_key(8, 5)))
        level[0] ^= 0xFF
        txn.put(image_key(8, 5), bytes(level))
        txn.delete(image_key(4, 7))
    env.close()
    problems = verify_database(tmp_path / "db").problems
    assert any("image 3 at 16px does not decode" in p for p in problems)
    assert "image 5 at 8px differs from the box-filter pyramid of its 16px level" in problems
    assert "image 7: no record at 4px" in problems


def test_incomplete_build_is_a_problem(tmp_path):
    build_database("lfw", tmp_path / "db", max_resolution=8, workers=0)
    env = lmdb.open(str(tmp_path / "db"))
    with env.begin(write=True) as txn:
        meta = bytes(txn.get(b"alae/meta")).replace(b'"complete":true', b'"complete":false')
        txn.put(b"alae/meta", meta)
        txn.put(PROGRESS_KEY, b'{"next_source":0,"next_index":0,"skipped":[]}')
    env.close()
    assert verify_database(tmp_path / "db").problems == ["incomplete build: re-run the same alae-prepare command to resume it"]
