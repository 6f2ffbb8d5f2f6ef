"""The loader benchmark runs end to end on a tiny synthetic database."""
from alae.datasets.benchmark import main


def test_prints_one_row_per_resolution(capsys):
    assert main(["--res", "4", "8", "--workers", "0", "--images", "3", "--batch-size", "2", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "built 3 synthetic 8px images" in out and "records: 4 raw, 8 raw" in out
    rows = [line.split("|") for line in out.splitlines() if line.strip().split(" ")[0] in ("4", "8")]
    assert [int(r[0]) for r in rows] == [4, 8] and all(float(r[1]) > 0 for r in rows)
