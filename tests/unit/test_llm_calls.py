"""One spec's provider: per-call retries with backoff, and answers kept across task attempts."""

import pytest

from spechestra.core.llm_calls import SpecProvider, is_transient


class Script:
    """Answers prompts from a dict; raises the queued errors first."""

    def __init__(self, errors=()):
        self.errors, self.prompts = list(errors), []

    def generate(self, prompt, temperature=0.1, model=None):
        self.prompts.append(prompt)
        if self.errors:
            raise self.errors.pop(0)
        return f"answer to {prompt}"


def specsoloist_style(code: int) -> RuntimeError:
    """What SpecSoloist's Anthropic/Gemini providers raise: a RuntimeError in an HTTPError's except."""
    import io
    import urllib.error
    try:
        raise urllib.error.HTTPError("https://api.example/v1", code, "status", {}, io.BytesIO(b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            raise RuntimeError(f"Anthropic API Error {exc.code}: {exc.reason}")
        except RuntimeError as wrapped:
            return wrapped


def test_transient_errors_are_retried_then_succeed():
    inner, lines = Script([TimeoutError("read timed out"), specsoloist_style(429)]), []
    provider = SpecProvider(inner, [], retries=3, delay=0.001, log=lines.append)
    assert provider.generate("p1") == "answer to p1"
    assert provider.calls == 3 and provider.retried == 2 and len(lines) == 2 and "retry 2/3" in lines[1]


def test_retries_are_bounded_and_the_last_error_surfaces():
    inner = Script([specsoloist_style(503) for _ in range(5)])
    provider = SpecProvider(inner, [], retries=2, delay=0.001, log=lambda _: None)
    with pytest.raises(RuntimeError, match="503"):
        provider.generate("p1")
    assert provider.calls == 3


@pytest.mark.parametrize("exc, transient", [
    (specsoloist_style(429), True), (specsoloist_style(503), True), (specsoloist_style(529), True),
    (specsoloist_style(401), False), (specsoloist_style(400), False), (ConnectionResetError("reset"), True),
    (TimeoutError(), True),
    # Words are not evidence: a test's output saying these things is no provider fault.
    (RuntimeError("tests timed out after 120s"), False), (RuntimeError("500 connection refused 503"), False),
    (AssertionError("assert status == 429"), False),
])
def test_transience_is_decided_by_type_and_status_not_by_words(exc, transient):
    assert is_transient(exc) is transient


def test_permanent_errors_are_not_retried():
    inner = Script([ValueError("invalid prompt")])
    with pytest.raises(ValueError):
        SpecProvider(inner, [], retries=3, delay=0.001).generate("p1")
    assert len(inner.prompts) == 1 and not is_transient(ValueError("invalid prompt"))


def test_a_retried_task_reuses_answers_in_order_and_stops_reusing_once_it_diverges():
    record = []
    first = SpecProvider(Script(), record)
    first.generate("compile")
    first.generate("tests")
    inner = Script()
    second = SpecProvider(inner, record)  # the task's next attempt, same record
    assert second.generate("compile") == "answer to compile" and second.generate("tests") == "answer to tests"
    assert inner.prompts == [] and second.reused == 2
    assert second.generate("fix") == "answer to fix" and inner.prompts == ["fix"]
    third = SpecProvider(inner, record)
    third.generate("compile")
    third.generate("something else")  # diverged: nothing after this point is reused
    third.generate("fix")
    assert inner.prompts == ["fix", "something else", "fix"] and third.reused == 1


def test_answers_kept_on_disk_are_reused_by_a_later_attempt_then_cleared(tmp_path):
    from spechestra.core.llm_calls import FileRecord
    record = FileRecord(tmp_path / "answers" / "spec.json")
    first = SpecProvider(Script(), record)
    first.generate("compile")
    first.generate("tests")  # ...and then the process is killed
    inner = Script()
    later = SpecProvider(inner, FileRecord(tmp_path / "answers" / "spec.json"))  # a new process, same file
    assert later.generate("compile") == "answer to compile" and later.generate("tests") == "answer to tests"
    assert inner.prompts == [] and later.reused == 2
    record.clear()
    assert not (tmp_path / "answers" / "spec.json").exists()
    assert SpecProvider(inner, record).generate("compile") and inner.prompts == ["compile"]


def test_an_answer_is_on_disk_before_its_slot_is_given_back(tmp_path):
    """Giving the slot back is a server call: a process killed during it must not lose the answer."""
    import contextlib

    from spechestra.core.llm_calls import FileRecord
    path = tmp_path / "answers" / "spec.json"
    on_disk_at_release = []

    @contextlib.contextmanager
    def gate():
        yield
        on_disk_at_release.append(FileRecord(path).load())

    SpecProvider(Script(), FileRecord(path), gate=gate).generate("compile")
    assert [[answer for _, answer in kept] for kept in on_disk_at_release] == [["answer to compile"]]


def test_an_answer_that_cannot_be_written_is_not_bought_again():
    """The write's error is no provider fault, even one that reads as transient (a slow network disk's
    timeout): the answer is counted once, the write's own error raised, the provider never asked again."""
    class SlowDisk:
        def load(self):
            return []

        def save(self, answers):
            raise TimeoutError("the answers file's disk did not answer")

    inner = Script()
    provider = SpecProvider(inner, SlowDisk(), delay=0)
    with pytest.raises(TimeoutError, match="did not answer"):
        provider.generate("compile")
    assert inner.prompts == ["compile"] and provider.calls == 1 and provider.retried == 0
    assert provider.output_tokens > 0  # counted as the answered call it was
