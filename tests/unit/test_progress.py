"""Plain-line progress (not a terminal): one line per change of a spec's phase."""

import io

from rich.console import Console

from spechestra.cli.progress import LiveProgress


def test_a_repeated_report_prints_nothing_new():
    out = io.StringIO()
    progress = LiveProgress(Console(file=out, width=200), total=2)
    for name, phase in [("a", "compiling"), ("a", "cached"), ("a", "cached"), ("b", "cached"), ("b", "cached")]:
        progress(name, phase)
    lines = out.getvalue().splitlines()
    assert [line.split("] ", 1)[1].split("  (")[0] for line in lines] == ["a: compiling", "a: cached", "b: cached"]
    assert lines[-1].endswith("(2 of 2 specs done)")
