"""Progress for people and log files: a live bar on a terminal, whole lines anywhere else."""
import io

from tqdm import tqdm

from alae.progress import LINE_EVERY_S, LINE_MIN_S, LineProgress, format_duration, progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_a_tqdm_bar_and_anything_else_lines():
    terminal_bar = progress(total=10, file=Terminal())
    assert isinstance(terminal_bar, tqdm)
    terminal_bar.close()
    assert isinstance(progress(total=10, file=io.StringIO()), LineProgress)
    assert isinstance(progress(total=10, file=Terminal(), disable=True), LineProgress)


def test_a_log_file_gets_newline_terminated_lines_and_never_a_carriage_return():
    stream = io.StringIO()
    with progress(range(200), total=200, desc="work", unit="img", file=stream) as bar:
        for _ in bar:
            pass
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines() == [line for line in text.split("\n") if line]  # whole lines only
    assert text.splitlines()[-1].startswith("work: 200/200 img (100.0%)")


def test_lines_come_every_five_percent_or_thirty_seconds_and_never_twice_a_second():
    clock, stream = FakeClock(), io.StringIO()
    bar = LineProgress(total=1000, desc="d", unit="img", file=stream, clock=clock)
    for _ in range(40):  # 40 images, 4% of the total, in 20 s: no line
        clock.now += 0.5
        bar.update(1)
    assert stream.getvalue() == ""
    clock.now += 1
    bar.update(10)  # 5% since the start, 21 s: a line
    lines = stream.getvalue().splitlines()
    assert lines == ["d: 50/1000 img (5.0%), 2.38 img/s, ETA 6m 39s"]
    bar.update(60)  # 6% more but within LINE_MIN_S of the last line: none
    assert len(stream.getvalue().splitlines()) == 1
    clock.now += LINE_MIN_S
    bar.update(0)
    assert len(stream.getvalue().splitlines()) == 2
    clock.now += LINE_EVERY_S - 0.5
    bar.update(1)  # less than 5% and under 30 s: none
    assert len(stream.getvalue().splitlines()) == 2
    clock.now += 0.5
    bar.update(1)  # 30 s: a line
    assert len(stream.getvalue().splitlines()) == 3
    bar.set_postfix_str("loss 0.5")
    bar.update(1)
    bar.close()  # one more image since the last line: the closing line, with the postfix
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("d: 113/1000 img (11.3%)") and lines[-1].endswith("loss 0.5")


def test_unit_scale_resumed_counts_and_the_closing_line():
    clock, stream = FakeClock(), io.StringIO()
    bar = LineProgress(total=600_000, initial=300_000, unit="img", unit_scale=True, file=stream, clock=clock)
    clock.now = 100.0
    bar.update(300_000)
    bar.close()
    # The rate counts the images of this process only (from `initial`).
    assert stream.getvalue() == "600k/600k img (100.0%), 3.00k img/s, took 1m 40s\n"


def test_disabled_and_untouched_bars_write_nothing():
    stream = io.StringIO()
    bar = progress(total=5, file=stream, disable=True)
    bar.update(5)
    bar.close()
    LineProgress(total=5, file=stream).close()
    assert stream.getvalue() == ""


def test_write_prints_a_whole_line():
    stream = io.StringIO()
    LineProgress(total=5, file=stream).write("skipped a.png: not an image")
    assert stream.getvalue() == "skipped a.png: not an image\n"


def test_durations():
    assert [format_duration(s) for s in (5, 184, 3723, 2 * 86400 + 3 * 3600 + 240)] == \
        ["5s", "3m 04s", "1h 02m 03s", "2d 03h 04m"]


def test_alae_prepare_writes_lines_to_a_log(tmp_path, capsys):
    """The dataset builder's bar, its output captured (not a terminal): whole lines, no frames."""
    from alae.datasets import build_database, verify_database

    build_database("lfw", tmp_path / "db", max_resolution=4, workers=0, progress=True)
    verify_database(tmp_path / "db", progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert len([line for line in err.splitlines() if line.startswith("100/100 img (100.0%)")]) == 2  # both bars end
