"""A new user's first commands: a provider that answers with an HTTP error is one line (the
reason and what to check), never Prefect's traceback of the failed run."""

import pytest

from kit.build import write_chain_project
from kit.cli import run
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
