"""Deployments on a real `prefect server`, run by a real `prefect worker` process."""

import pytest

from kit.runs import read_deployment, stages, trigger
from kit.server import BIN, REPO, PrefectServer, stop_process
from spechestra.orchestration.history import read_artifacts, read_child_flow_runs, read_flow_run, read_task_runs

pytestmark = pytest.mark.timeout(600)
SPECHESTRA = str(BIN / "spechestra")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (BIN / "spechestra").exists():
        pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-server")).start()
    try:
        deployed = srv.run([SPECHESTRA, "deploy", "--dir", str(REPO)])
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        again = srv.run([SPECHESTRA, "deploy", "--dir", str(REPO)], COLUMNS="60")  # idempotent, in a narrow terminal
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        lines = " ".join(again.stdout.split())
        assert "work pool 'spechestra' exists" in lines
        for name in ("build/build", "compose/compose", "compose_build_perform/compose-build-perform", "perform/perform"):
            assert f"deployed {name} (pool spechestra)" in lines
        yield srv
    finally:
        srv.stop()


def _worker(server, tmp_path, **env):
    """A worker whose projects live under the test's folder (storage "every worker sees")."""
    env.setdefault("SPECHESTRA_PROJECTS", str(tmp_path))
    env = {k: v for k, v in env.items() if v is not None}
    return server.spawn([str(BIN / "prefect"), "worker", "start", "--pool", "spechestra", "--run-once"],
                        tmp_path / "worker.log", SPECHESTRA_PROVIDER="kit.build:pipeline_provider", **env)


def test_every_deployment_exists_and_build_has_its_schedule(server):
    with server.client_settings():
        for name in ("compose_build_perform/compose-build-perform", "build/build", "perform/perform", "compose/compose"):
            assert read_deployment(name).work_pool_name == "spechestra"
        build = read_deployment("build/build")
        assert [(s.schedule.cron, s.active) for s in build.schedules] == [("0 3 * * *", False)]
        form = read_deployment("compose_build_perform/compose-build-perform").parameter_openapi_schema
        assert "request" in form["required"] and form["properties"]["request"]["description"]


def test_worker_runs_the_pipeline_triggered_through_the_api(server, tmp_path):
    project = tmp_path / "proj"
    with server.client_settings():
        run_id = trigger("compose_build_perform/compose-build-perform",
                         {"request": "A number doubler", "project_dir": str(project), "auto_accept": True,
                          "inputs": {"value": 21}})
    worker = _worker(server, tmp_path)
    try:
        worker.wait(timeout=400)
    finally:
        stop_process(worker)
    log = (tmp_path / "worker.log").read_text()
    with server.client_settings():
        run = read_flow_run(run_id)
        assert run.state.is_completed(), log[-4000:]
        assert stages(run_id) == [("compose", "Completed"), ("build", "Completed"), ("perform", "Completed")]
        kids = {r.name: r for r in read_child_flow_runs(run_id)}
        assert sum(len(read_task_runs(str(k.id))) for k in kids.values()) == 3 + 2 + 1  # draft + 2 specs, 2 builds, 1 step
        artifacts = [a.key for k in kids.values() for a in read_artifacts(str(k.id))]
        assert {"build-graph", "build-specs", "perform-trace"} <= set(artifacts)
    assert (project / "build" / "double.py").exists()


def test_worker_run_pauses_for_review_and_another_process_approves(server, tmp_path):
    project = tmp_path / "proj"
    with server.client_settings():
        run_id = trigger("compose_build_perform/compose-build-perform",
                         {"request": "A number doubler", "project_dir": str(project), "inputs": {"value": 4}})
    worker = _worker(server, tmp_path)
    try:
        for stage in ("architecture", "specs"):  # two pauses in the compose subflow, answered from outside
            answered = server.run([SPECHESTRA, "review", run_id, "--approve", "--comment", f"ok {stage}",
                                   "--wait", "180"], timeout=240)
            assert answered.returncode == 0, answered.stdout[-2000:] + answered.stderr[-2000:]
            assert f"review-{stage}" in answered.stdout
        worker.wait(timeout=300)
    finally:
        stop_process(worker)
    with server.client_settings():
        assert read_flow_run(run_id).state.is_completed(), (tmp_path / "worker.log").read_text()[-4000:]
    assert (project / "build" / "double.py").exists()
    nothing = server.run([SPECHESTRA, "review", run_id, "--approve"])
    assert nothing.returncode == 1 and "not waiting for review (state: Completed)" in nothing.stderr


def _leaks(key: str, *places) -> list[str]:
    needle = key.encode()
    return [str(p) for place in places for p in place.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_api_key_from_a_secret_block_reaches_the_provider_and_is_stored_nowhere(server, tmp_path):
    """The provider logs, prints and raises with the key (a transient error on every first call,
    retried); the run completes, and the key is in no file of the server, the worker or the project."""
    import hashlib
    import uuid

    from prefect.blocks.system import Secret
    key = f"sk-spechestra-{uuid.uuid4().hex}"
    with server.client_settings():
        Secret(value=key).save("spechestra-llm-key", overwrite=True)
        run_id = trigger("compose_build_perform/compose-build-perform",
                         {"request": "A number doubler", "project_dir": str(tmp_path / "proj"), "auto_accept": True,
                          "inputs": {"value": 1}})
    worker = server.spawn([str(BIN / "prefect"), "worker", "start", "--pool", "spechestra", "--run-once"],
                          tmp_path / "worker.log", SPECHESTRA_PROVIDER="kit.build:leaky_pipeline_provider",
                          SPECHESTRA_PROJECTS=str(tmp_path),
                          SPECHESTRA_API_KEY_BLOCK="spechestra-llm-key",
                          EXPECTED_KEY_SHA256=hashlib.sha256(key.encode()).hexdigest())
    try:
        worker.wait(timeout=400)
    finally:
        stop_process(worker)
    with server.client_settings():
        assert read_flow_run(run_id).state.is_completed(), (tmp_path / "worker.log").read_text()[-4000:]
    log = (tmp_path / "worker.log").read_text()
    assert "[redacted]" in log and "retry 1/" in log  # the provider did log, print and raise it
    searched = [p for p in [*server.home.rglob("*"), *tmp_path.rglob("*")] if p.is_file()]
    assert any(p.name.startswith("prefect.db") for p in searched)  # the database file is among them
    assert any(".spechestra" in p.parts for p in searched)  # and the build's results storage
    assert _leaks(key, server.home, tmp_path) == []


def test_a_provider_error_quoting_the_key_is_stored_and_shown_redacted(server, tmp_path):
    """A 401 whose message quotes the key fails spec c: the state message, the logs, the events
    and the terminal say why, without the key."""
    import uuid

    from prefect.blocks.system import Secret

    from kit.build import write_chain_project
    key = f"sk-spechestra-{uuid.uuid4().hex}"
    with server.client_settings():
        Secret(value=key).save("spechestra-refused-key", overwrite=True)
    project = tmp_path / "proj"
    write_chain_project(project)
    done = server.run([SPECHESTRA, "build", "--project", str(project)], SPECHESTRA_API_KEY_BLOCK="spechestra-refused-key",
                      SPECHESTRA_PROVIDER="kit.build:leaky_refusing_chain_provider")
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "401 Unauthorized: key [redacted] is not valid" in out, out[-3000:]
    assert "2 compiled, 0 cached, 1 failed, 1 blocked" in done.stdout
    assert key not in out
    assert _leaks(key, server.home, tmp_path) == []


def _run_on_a_worker(server, tmp_path, deployment, parameters, **env):
    with server.client_settings():
        run_id = trigger(deployment, parameters)
    worker = _worker(server, tmp_path, **env)
    try:
        worker.wait(timeout=300)
    finally:
        stop_process(worker)
    with server.client_settings():
        return read_flow_run(run_id)


def test_a_worker_that_cannot_see_the_project_fails_at_once_in_one_line(server, tmp_path):
    """Before: a raw FileNotFoundError traceback."""
    shared = tmp_path / "shared"
    shared.mkdir()
    run = _run_on_a_worker(server, tmp_path, "build/build", {"project_dir": "absent"}, SPECHESTRA_PROJECTS=str(shared))
    assert run.state.is_failed(), run.state
    message = run.state.message or ""
    assert f"the project folder {shared / 'absent'} does not exist on this machine" in message, message
    assert "SPECHESTRA_PROJECTS" in message and "\n" not in message.strip()
    assert "project_dir parameter is 'absent'" in message, message  # which parameter to change
    assert "Traceback" not in (tmp_path / "worker.log").read_text()  # the worker's console too
    assert list(shared.iterdir()) == []  # nothing created


def test_the_default_project_of_a_fresh_clone_is_one_line_naming_the_parameter(server, tmp_path):
    """Before: the nightly build (project_dir `default`, absent in a fresh clone) failed every night
    with a raw `FileNotFoundError` traceback."""
    run = _run_on_a_worker(server, tmp_path, "build/build", {}, SPECHESTRA_PROJECTS=str(tmp_path / "none"))
    assert run.state.is_failed(), run.state
    message = run.state.message or ""
    assert "project_dir parameter is 'default'" in message and "\n" not in message.strip(), message
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def test_a_worker_never_creates_a_new_project_outside_its_projects_root(server, tmp_path):
    """Before: the pipeline ended Completed with the new project on that worker's own disk."""
    private = tmp_path / "private" / "proj"
    run = _run_on_a_worker(server, tmp_path, "compose_build_perform/compose-build-perform",
                           {"request": "A number doubler", "project_dir": str(private), "auto_accept": True},
                           SPECHESTRA_PROJECTS=None)
    assert run.state.is_failed(), run.state
    assert "creates a new project only under SPECHESTRA_PROJECTS" in (run.state.message or ""), run.state.message
    assert not private.parent.exists()


def test_the_workers_own_checkout_setting_is_the_one_used(server, tmp_path):
    """Before: the deployer's path was baked into the pull step; SPECHESTRA_HOME on a worker changed nothing."""
    project = tmp_path / "proj"
    project.mkdir()
    elsewhere = tmp_path / "no-checkout-here"
    run = _run_on_a_worker(server, tmp_path, "build/build", {"project_dir": str(project)},
                           SPECHESTRA_HOME=str(elsewhere))
    assert not run.state.is_completed(), run.state
    log = (tmp_path / "worker.log").read_text()
    assert f"the Spechestra checkout {elsewhere} is not on this machine" in log + (run.state.message or "")
