"""metrics.jsonl: one whole line per result, strict JSON, a torn last line skipped and never glued to the next."""
import json
import math

from alae.metrics.results import MetricResult, append_result, read_results


def result(metric, value, **info):
    return MetricResult(metric, value, {"generated": 10}, 1.23456, {"model": "m.pt", "kimg": 2.0, **info})


def test_each_result_is_one_json_line_with_its_fields(tmp_path):
    path = append_result(tmp_path / "run" / "metrics.jsonl", result("fid1k", 12.5, mode="clean"))
    append_result(path, result("mse_rec", 0.25))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and path.read_text().endswith("\n")
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("metric", "value", "images", "model", "kimg", "mode", "seconds")} == {
        "metric": "fid1k", "value": 12.5, "images": {"generated": 10}, "model": "m.pt", "kimg": 2.0,
        "mode": "clean", "seconds": 1.235}
    assert "timestamp" in first and "skipped" not in first


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_fresh_line(tmp_path):
    path = append_result(tmp_path / "metrics.jsonl", result("fid1k", 1.0))
    with open(path, "a") as f:
        f.write('{"metric": "kid1k", "val')  # a crash in the middle of a write
    assert [r["metric"] for r in read_results(path)] == ["fid1k"]
    append_result(path, result("mse_rec", 2.0))
    assert [r["metric"] for r in read_results(path)] == ["fid1k", "mse_rec"]
    assert path.read_text().splitlines()[2] == json.dumps(json.loads(path.read_text().splitlines()[2]))


def test_skipped_and_non_finite_values_are_null_in_strict_json(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_result(path, MetricResult("ppl_wend", None, {}, 0.0, {}, skipped="needs 32 px"))
    append_result(path, result("fid1k", math.nan))
    skipped, nan = (json.loads(line) for line in path.read_text().splitlines())  # json.loads accepts NaN: check text
    assert skipped["value"] is None and skipped["skipped"] == "needs 32 px"
    assert nan["value"] is None and nan["not_finite"] == "nan" and "NaN" not in path.read_text()
    assert MetricResult("fid1k", 3.0, {"generated": 5, "real": 7}, 2.0, {"mode": "clean"}).summary() == \
        "fid1k 3 (5 generated, 7 real; clean; 2.0 s)"
