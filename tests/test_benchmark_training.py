"""The training benchmark prints one row per requested lod with a positive rate."""
import math
import re

from alae.tools import benchmark_training


def test_prints_a_row_per_lod(capsys):
    benchmark_training.main(["--config", "demo", "--device", "cpu", "--lods", "0", "1", "--steps", "1",
                             "--warmup", "0", "--batch", "4", "model.channels=[8,8,8,8]", "model.latent_dim=8"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if re.match(r"\s+\d+\s+\d+\s", line)]
    assert [(int(r[0]), int(r[1]), int(r[2])) for r in rows] == [(0, 4, 4), (1, 8, 4)]
    assert all(math.isfinite(float(r[3])) and float(r[3]) > 0 for r in rows)
