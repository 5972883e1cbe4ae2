"""What a spec paid for stays on disk until its outcome is: a worker lost at any moment of a spec's
build leaves its rerun either the answers (to replay) or the outcome (to reuse), never neither."""

from pathlib import Path

import pytest

from kit import build as kit_build
from spechestra import Conductor
from spechestra.core.llm_calls import FileRecord

pytestmark = pytest.mark.timeout(300)


def test_answers_are_cleared_only_once_the_spec_outcome_is_recorded(tmp_path, monkeypatch):
    """Before: the answers went first, then the cache, the published files and the outcome; a Ray
    worker killed in between (a full test run here, 2026-12-07) left its rerun nothing, and it
    bought both answers again."""
    project = tmp_path / "proj"
    kit_build.write_wide_project(project)
    finished_at_clear = []
    clear = FileRecord.clear

    def watched_clear(record):
        if record.path.exists():  # a spec that paid for answers, now done with them
            finished_at_clear.append(len(list((project / ".spechestra" / "finished").glob("*/*.json"))))
        clear(record)

    monkeypatch.setattr(FileRecord, "clear", watched_clear)
    result = Conductor(str(project), provider=kit_build.wide_provider()).build(max_workers=1)
    assert result.success, result.errors
    assert finished_at_clear == [1, 2, 3, 4]  # the k-th spec's answers went once k outcomes were kept
    assert not list(Path(project / ".spechestra").glob("answers/*.json"))  # and every one went
