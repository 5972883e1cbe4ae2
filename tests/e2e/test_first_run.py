"""A new user's first commands: a provider that answers with an HTTP error is one line (the
reason and what to check), never Prefect's traceback of the failed run."""

import re

import pytest

from kit.build import write_chain_project
from kit.cli import main_in_process, prefect_console_restored, run  # noqa: F401 (a fixture)
from kit.llm_server import Fault, LLMServer, provider_env

pytestmark = pytest.mark.timeout(300)


def _lines(done) -> list[str]:
    return (done.stdout + done.stderr).splitlines()


@pytest.mark.parametrize("command", ["compose", "build"])
def test_a_provider_404_is_one_line(tmp_path, command):
    """Before: an anthropic 404 (a model it does not know) printed 95 lines of traceback."""
    project = tmp_path / "p"
    if command == "build":
        write_chain_project(project)
    with LLMServer(lambda prompt: "unused") as server:
        env = provider_env("anthropic", server)
        # What Anthropic answers for a model name it does not know.
        server.faults = [Fault(404, body='{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}')
                         for _ in range(20)]
        args = ["compose", "a calculator", "--yes"] if command == "compose" else ["build"]
        done = run([*args, "--project", str(project)], tmp_path, **env)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert len(server.requests) == 1, out[-3000:]  # a 404 is not retried
    said = "error: anthropic: 404" if command == "compose" else "a: ProviderError: anthropic: 404"
    assert [line for line in _lines(done) if line.startswith(said + " Not Found from http")], out[-3000:]


def test_a_dask_build_prints_no_cluster_chatter(tmp_path):
    """Before: SPECHESTRA_TASK_RUNNER=dask printed ~40 `distributed` INFO lines and, at the end,
    a `CommClosedError` traceback."""
    project = tmp_path / "p"
    write_chain_project(project)
    done = run(["build", "--project", str(project), "--workers", "2"], tmp_path, SPECHESTRA_TASK_RUNNER="dask",
               SPECHESTRA_PROVIDER="kit.build:slow_chain_provider", CALL_LOG=tmp_path / "calls", CALL_SECONDS="0")
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "4 compiled" in done.stdout, out[-3000:]
    chatter = [line for line in out.splitlines() if "| distributed." in line or "CommClosedError" in line]
    assert chatter == [] and "Traceback" not in out, "\n".join(chatter[:20]) or out[-3000:]
    # Each spec's line counts the calls it made (two a spec): the first said 0, its calls made in a
    # Dask worker and counted only after the line was printed.
    ended = re.findall(r"\] \w+: built  \((\d) of 4 specs done, (\d+) LLM call", done.stdout)
    assert len(ended) == 4 and all(int(calls) >= 2 * int(specs) for specs, calls in ended), done.stdout[-3000:]


@pytest.mark.usefixtures("prefect_console_restored")
def test_status_says_when_the_cache_is_for_another_provider(tmp_path, capsys, monkeypatch):
    """Before: with another provider set in the shell, every spec showed cached "no" next to
    "0 of 4 spec(s) drifted", with no word why (cache keys include the provider and model). The
    build is the console script; `status` (a read) is `main` in this process."""
    project = tmp_path / "p"
    write_chain_project(project)
    built = run(["build", "--project", str(project)], tmp_path, SPECHESTRA_PROVIDER="kit.build:chain_provider")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    monkeypatch.setenv("SPECHESTRA_PROVIDER", "kit.build:chain_provider")
    code, same, _ = main_in_process(capsys, ["status", "--project", str(project)])
    assert code == 0 and "another provider" not in same, same
    monkeypatch.setenv("SPECHESTRA_PROVIDER", "kit.build:pipeline_provider")
    code, other, _ = main_in_process(capsys, ["status", "--project", str(project)])
    assert code == 0 and "0 of 4 spec(s) drifted" in other, other
    assert other.count("no: cached for another provider or model") == 4, other
    assert "4 spec(s) were built with another provider or model than" in other, other
