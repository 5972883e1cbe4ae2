"""A failed run's output as a fix prompt quotes it (`core.failure_output.steady`): two runs of the
same failure in two staging folders read the same, so a resumed build replays a paid fix."""

from spechestra.core.failure_output import steady


def _run(build, stage, seconds, address):
    return (f"{stage}/tests/test_a.py:4: in test_it\n    assert a(3) == <Thing at {address}>\n"
            f"FAILED {stage.relative_to(build)}/tests/test_a.py::test_it - assert 4 == 3\n"
            f"========== 1 failed, 2 passed in {seconds} ==========\n")


def test_two_runs_of_one_failure_read_the_same_and_name_build_paths(tmp_path):
    build = tmp_path / "build"
    first = steady(_run(build, build / ".spechestra/staging/a-101-x1y2", "0.12s", "0x7f3a9c2b1d90"),
                   str(build / ".spechestra/staging/a-101-x1y2"), str(build))
    second = steady(_run(build, build / ".spechestra/staging/a-202-q9r8", "61.50s (0:01:01)", "0x7f00deadbeef"),
                    str(build / ".spechestra/staging/a-202-q9r8"), str(build))
    assert first == second
    assert f"{build}/tests/test_a.py:4: in test_it" in first  # where the file goes once its tests pass
    assert "FAILED tests/test_a.py::test_it - assert 4 == 3" in first
    assert "= 1 failed, 2 passed =" in first and "staging" not in first


def test_what_only_looks_like_a_duration_or_path_is_kept(tmp_path):
    text = "expected 'done in 2.5s' but got 'done in 3s'\nsee /elsewhere/build/x.py\n"
    assert steady(text, str(tmp_path / "build/.spechestra/staging/a-1-z"), str(tmp_path / "build")) == text
