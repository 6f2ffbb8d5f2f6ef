"""The acceptance report: the budget's arithmetic, the tables in report.md, report.json's content."""
import json

from alae.acceptance.report import FAILED, PASSED, Budget, Part, markdown, summary_lines, write_reports


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_budget_left_and_share_follow_the_clock():
    clock = Clock()
    budget = Budget(60, clock=clock)
    clock.now += 20
    assert budget.elapsed() == 20 and budget.left() == 40 and budget.share(0.25) == 10
    clock.now += 100
    assert budget.left() == 0 and budget.share(0.5) == 0


def test_reports_hold_every_part_and_its_table(tmp_path):
    parts = [Part(1, "first", status=PASSED, summary="fine", columns=["a", "b"], rows=[[1, 0.5], [2, 1e-7]]),
             Part(2, "second").skip("no CUDA GPU"),
             Part(3, "third", status=FAILED, summary="broke", notes=["Traceback line"])]
    info = {"date": "2026-12-03", "cpu": "test cpu, 2 cores", "gpus": ["none"]}
    json_path, md_path = write_reports(tmp_path, parts, info, Budget(10), exit_status=1)
    data = json.loads(json_path.read_text())
    assert data["exit_status"] == 1 and data["budget_s"] == 10
    assert [(p["number"], p["status"]) for p in data["parts"]] == [(1, "passed"), (2, "skipped"), (3, "failed")]
    assert data["parts"][0]["rows"] == [[1, 0.5], [2, 1e-7]]
    text = md_path.read_text()
    assert text == markdown(parts, info, 1)
    assert "## 1. first: passed" in text and "| a | b |" in text and "| 1 | 0.50 |" in text and "| 2 | 1e-07 |" in text
    assert "## 2. second: skipped" in text and "no CUDA GPU" in text and "- Traceback line" in text
    assert "| cpu | test cpu, 2 cores |" in text
    lines = summary_lines(parts)
    assert len(lines) == 3 and lines[1].startswith("2. second") and "skipped" in lines[1]
