"""The CLI and `spechestra demo` as a user runs them: subprocesses, no API key, no network (a
few reads of the run history by `main` in the test process).

Commands use the test run's shared Prefect server; the demo runs with its own PREFECT_HOME and
no server, as a first-time user runs it.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from kit.cli import main_in_process, prefect_console_restored, run  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(300)


def test_help_lists_commands(tmp_path):
    done = run(["--help"], tmp_path)
    assert done.returncode == 0
    for command in ("compose", "build", "perform", "trace", "run", "review", "deploy", "doctor", "demo"):
        assert re.search(rf"│ {command}\s", done.stdout), command
    # At 400 columns (the kit's) each command's summary is one row: none broken mid-sentence.
    for listed in (done.stdout, run(["server", "--help"], tmp_path).stdout):
        listing = [row for row in listed.split("Commands")[1].splitlines() if row.startswith("│")]
        assert all(re.match(r"│ [a-z]+ ", row) for row in listing), "\n".join(listing)
    assert run(["compose", "--help"], tmp_path).returncode == 0


def test_demo_runs_the_whole_pipeline_offline_and_says_where(tmp_path):
    """The demo as a first-time user runs it: no server yet, so it starts the managed local one;
    a second command reuses that server; `server stop` ends it."""
    home = tmp_path / "home"
    try:
        done = run(["demo"], tmp_path, own_home=home)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "starting local Prefect server" in done.stderr
        out = " ".join(done.stdout.split())
        assert f"Specs are in {tmp_path / 'spechestra-demo' / 'src'}" in out
        assert 'outputs: {"words": [["the", 6], ["cat", 2], ["dog", 2]]}' in out  # the performed workflow
        assert "was not produced" not in out  # its declared output `top` is the last step's `words`
        assert "├── normalize (normalize_text) Completed" in out and "└── rank (top_words) Completed" in out
        server = json.loads((home / "spechestra-server.json").read_text())
        assert f"http://127.0.0.1:{server['port']}/runs/flow-run/" in out  # the UI address of *this* server
        hint = re.search(r"Rebuild it \(.*?\): SPECHESTRA_PROVIDER=\S+ (\S+) build --project", out)
        assert hint and (shutil.which(hint.group(1)) or (tmp_path / hint.group(1)).exists()), out  # was a bare
        # `spechestra`, not on the PATH of a user who followed the README (`.venv/bin/spechestra`)
        run_id = re.findall(r"Flow run ([0-9a-f-]{36})", out)[-1]
        specs = sorted(p.name for p in (tmp_path / "spechestra-demo" / "src").glob("*.spec.md"))
        assert specs == ["count_words.spec.md", "normalize_text.spec.md", "top_words.spec.md", "word_report.spec.md"]
        again = run(["trace", "--workflow", "word_report"], tmp_path, own_home=home)  # a second command
        assert again.returncode == 0 and "starting local Prefect server" not in again.stderr, \
            again.stdout[-2000:] + again.stderr[-2000:]
        assert "└── rank (top_words)" in again.stdout
        assert json.loads((home / "spechestra-server.json").read_text())["pid"] == server["pid"]  # reused
        # The run history is in that server: read it back from this process.
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from kit.runs import stages
        from spechestra.orchestration.history import read_child_flow_runs, read_task_runs
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{server['port']}/api"}):
            kids = sorted(read_child_flow_runs(run_id), key=lambda r: r.start_time)
            assert stages(run_id) == [("compose", "Completed"), ("build", "Completed"), ("perform", "Completed")]
            assert [len(read_task_runs(str(k.id))) for k in kids] == [5, 4, 3]
    finally:
        stopped = run(["server", "stop"], tmp_path, own_home=home)
    assert stopped.returncode == 0 and "stopped the server" in stopped.stdout
    assert not Path(f"/proc/{server['pid']}").exists() or "Z" in Path(f"/proc/{server['pid']}/stat").read_text()


def test_compose_yes_with_provider_setting(tmp_path):
    (tmp_path / "src").mkdir()
    done = run(["compose", "CSV statistics", "--project", str(tmp_path), "--yes"], tmp_path,
               SPECHESTRA_PROVIDER="kit:four_component_factory")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "src").rglob("*.spec.md"))) == 4


def test_failures_exit_non_zero_with_one_line(tmp_path):
    done = run(["compose", "   ", "--yes"], tmp_path, SPECHESTRA_PROVIDER="kit:four_component_factory")
    assert done.returncode == 2  # a usage error
    assert "request is empty" in done.stderr
    done = run(["compose", "x", "--yes"], tmp_path, SPECHESTRA_PROVIDER="nonsense")
    assert done.returncode == 2 and "unknown provider 'nonsense'" in done.stderr  # a configuration error


def test_build_and_graph_commands(tmp_path):
    import kit
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.spec.md").write_text(kit.spec_markdown("a"))
    (src / "b.spec.md").write_text(kit.spec_markdown("b", deps=["a"]))
    graph = run(["graph", "--project", str(tmp_path)], tmp_path)
    assert graph.returncode == 0 and "flowchart LR" in graph.stdout and "n0 --> n1" in graph.stdout
    # A provider that cannot answer: the build fails with a non-zero exit, a fails, b is blocked.
    done = run(["build", "--project", str(tmp_path)], tmp_path, SPECHESTRA_PROVIDER="kit:four_component_factory")
    assert done.returncode == 1
    rows = {m.group(1): m.group(2) for m in re.finditer(r"│ (\w+)\s+│ (\w+)\s+│", done.stdout)}
    assert rows.get("a") == "failed" and rows.get("b") == "blocked", done.stdout[-2000:]
    assert "0 compiled, 0 cached, 1 failed, 1 blocked" in done.stdout
    assert "ScriptedProvider has no rule" in done.stdout  # the provider's own error, in a's row


@pytest.mark.usefixtures("prefect_console_restored")
def test_run_then_perform_then_trace(tmp_path, capsys, monkeypatch):
    """The commands that run something are run as a user runs them; the traces (reads of the
    run history) by `main` in this process, as the same command line."""
    done = run(["run", "A number doubler", "--project", str(tmp_path), "--yes", "--input", "value=21"], tmp_path,
               SPECHESTRA_PROVIDER="kit.build:pipeline_provider")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert 'outputs: {"result": 42}' in done.stdout and "Done at perform" in done.stdout
    again = run(["perform", "twice", "--project", str(tmp_path), "--input", "value=5", "--yes"], tmp_path)
    assert again.returncode == 0 and 'outputs: {"result": 10}' in again.stdout, again.stderr[-2000:]
    perform_id = re.findall(r"Flow run ([0-9a-f-]{36})", again.stdout)[-1]
    monkeypatch.chdir(tmp_path)  # where the commands ran
    code, out, _ = main_in_process(capsys, ["trace", "--workflow", "twice"])
    assert code == 0 and f"({perform_id})" in out
    assert "└── first (double)  Completed" in out and 'in:  {"value": 5}' in out
    code, out, _ = main_in_process(capsys, ["trace", perform_id, "--json"])
    assert code == 0 and '"result": 10' in out
    pipeline_id = re.findall(r"Flow run ([0-9a-f-]{36})", done.stdout)[-1]  # the pipeline's trace is its perform's
    assert '"result": 42' in main_in_process(capsys, ["trace", pipeline_id, "--json"])[1]
    build = run(["build", "--project", str(tmp_path)], tmp_path)
    build_id = re.findall(r"Flow run ([0-9a-f-]{36})", build.stdout)[-1]
    code, out, err = main_in_process(capsys, ["trace", build_id])  # before: `perform None`, exit 0
    assert code == 1 and f"flow run {build_id} is a build run, which performed no workflow" in err and out == "", \
        out + err



@pytest.mark.usefixtures("prefect_console_restored")
def test_a_real_http_provider_from_the_cli_and_no_key_for_work_that_needs_no_call(tmp_path, capsys, monkeypatch):
    """`spechestra run` through `anthropic` over real HTTP (a loopback server); then, with no key
    at all, a no-op build, graph, status, perform and trace all work; work that needs a call says
    in one line which variable to set. The run is the console script; the keyless commands only
    differ in their arguments and environment, so `main` runs them in this process."""
    from kit.build import pipeline_provider
    from kit.llm_server import LLMServer
    answers = pipeline_provider()
    with LLMServer(answers.generate, key="sk-cli-loopback") as server:
        done = run(["run", "A number doubler", "--project", str(tmp_path), "--yes", "--input", "value=21"], tmp_path,
                   SPECHESTRA_PROVIDER="anthropic", ANTHROPIC_BASE_URL=server.root, ANTHROPIC_API_KEY="sk-cli-loopback")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert 'outputs: {"result": 42}' in done.stdout and len(server.requests) == 7
        monkeypatch.setenv("SPECHESTRA_PROVIDER", "anthropic")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.root)
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # no key at all
        monkeypatch.chdir(tmp_path)
        for args in (["build"], ["graph"], ["status"], ["perform", "twice", "--input", "value=5", "--yes"]):
            code, out, err = main_in_process(capsys, [*args, "--project", str(tmp_path)])
            assert code == 0, (args, out[-2000:], err[-2000:])
        assert "0 compiled, 2 cached" in main_in_process(capsys, ["build", "--project", str(tmp_path)])[1]
        assert main_in_process(capsys, ["trace", "--workflow", "twice"])[0] == 0
        assert len(server.requests) == 7  # none of that asked the LLM anything
        (tmp_path / "src" / "triple.spec.md").write_text(
            (tmp_path / "src" / "double.spec.md").read_text().replace("double", "triple"))
        code, out, err = main_in_process(capsys, ["build", "--project", str(tmp_path)])
    out += err
    assert code == 1 and "anthropic needs an API key: set ANTHROPIC_API_KEY" in " ".join(out.split()), out[-3000:]
    assert "Traceback" not in out


def test_build_and_perform_show_progress_line_by_line_outside_a_terminal(tmp_path):
    """Issue 10: the terminal was silent for up to 23 s at a time; outside a terminal each change
    is now a line: which spec is doing what, how many are done, LLM calls so far."""
    env = {"SPECHESTRA_PROVIDER": "kit.build:pipeline_provider"}
    done = run(["run", "A number doubler", "--project", str(tmp_path), "--yes", "--input", "value=2"], tmp_path, **env)
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / "src" / "double.spec.md").write_text((tmp_path / "src" / "double.spec.md").read_text() + "\nMore.\n")
    build = run(["build", "--project", str(tmp_path)], tmp_path, **env)
    assert build.returncode == 0, build.stderr[-2000:]
    lines = build.stdout.splitlines()
    for phase in ("compiling", "writing tests", "testing", "built"):
        assert any(re.match(rf"\[\d+:\d\d\] double: {phase}  \(", line) for line in lines), (phase, lines)
    assert any("twice: " in line for line in lines)  # rebuilt too: it depends on double
    assert re.search(r"2 of 2 specs done, [1-9]\d* LLM call\(s\)", build.stdout)
    perform = run(["perform", "twice", "--project", str(tmp_path), "--input", "value=3"], tmp_path)
    assert perform.returncode == 0 and re.search(r"\] first: running  \(0 of 1 steps done\)", perform.stdout)
    assert re.search(r"\] first: done  \(1 of 1 steps done\)", perform.stdout)


def test_build_with_a_call_cap_exits_3_and_a_larger_cap_resumes(tmp_path):
    from kit.build import write_chain_project
    project = tmp_path / "proj"
    write_chain_project(project)
    capped = run(["build", "--project", str(project), "--workers", "1", "--max-llm-calls", "3"], tmp_path,
                 SPECHESTRA_PROVIDER="kit.build:chain_provider")
    assert capped.returncode == 3, capped.stdout[-2000:] + capped.stderr[-2000:]
    assert "1 compiled, 0 cached, 0 failed, 0 blocked, 3 skipped (budget)" in capped.stdout
    assert "budget reached: 3 of 3 LLM calls" in capped.stderr
    resumed = run(["build", "--project", str(project), "--workers", "1", "--max-llm-calls", "20"], tmp_path,
                  SPECHESTRA_PROVIDER="kit.build:chain_provider")
    assert resumed.returncode == 0 and "3 compiled, 1 cached, 0 failed, 0 blocked" in resumed.stdout
    assert "This run: 5 LLM call(s)" in resumed.stdout  # b's code answer was paid for in the capped run
