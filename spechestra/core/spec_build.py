"""Building one spec: compile code, generate tests, run them, fix while attempts remain.

Uses SpecSoloist's public pieces (SpecParser, SpecCompiler) and not SpecSoloist's own fix helper, which
writes whatever path the LLM names (relative to build/, or absolute, or `../`). Here a fix may
only replace this spec's own implementation or test file; anything else is refused and logged.
No Prefect in this module: the task wrapper lives in `orchestration.build`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Optional

from specsoloist.compiler import SpecCompiler
from specsoloist.parser import SpecParser

from .fileio import atomic_write
from .llm_calls import SpecProvider
from .models import Outcome, SpecOutcome
from .project import Layout


@dataclass(frozen=True)
class SpecJob:
    """Everything one spec's build needs; plain data, so it pickles to any worker."""

    name: str
    layout: Layout
    deps: tuple[str, ...] = ()
    cache_key: str = ""
    model: Optional[str] = None
    max_fixes: int = 2
    test_timeout: float = 120.0
    retries: int = 3
    retry_delay: float = 1.0
    llm_limit: Optional[str] = None
    import_dirs: tuple[str, ...] = field(default=())


def run_tests(job: SpecJob, test_rel: str) -> tuple[bool, str]:
    """Run one test file with this interpreter's pytest, isolated from any outer pytest config."""
    build = job.layout.build_dir
    paths = [os.path.join(build, d) for d in job.import_dirs] + [build]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", build,
           "--confcutdir", build, "-o", "addopts=", str(job.layout.absolute(test_rel))]
    proc = subprocess.Popen(cmd, cwd=build, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=job.test_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return False, f"tests timed out after {job.test_timeout:g}s"
    return proc.returncode == 0, output[-20000:]


def fix_target(named: str, impl_rel: str, test_rel: str) -> Optional[str]:
    """Map a file the LLM named in a fix to one of this spec's own files, or None."""
    named = named.strip().strip("`").replace("\\", "/")
    if not named or named.startswith("/") or ".." in named.split("/"):
        return None
    for own in (impl_rel, test_rel):
        if named in (own, f"build/{own}") or ("/" not in named and named == os.path.basename(own)):
            return own
    return None


def build_spec(job: SpecJob, provider, log: Callable[[str], None] = print, record=None,
               gate: Callable[[], ContextManager] = contextlib.nullcontext) -> SpecOutcome:
    """Compile, test and fix one spec. Returns an outcome; raises only on provider errors.

    `record` (a list, or a `FileRecord`) keeps this spec's answers across attempts (see `llm_calls`); `gate` is held
    around every provider call.
    """
    started = time.time()
    counter = SpecProvider(provider, record if record is not None else [], retries=job.retries,
                           delay=job.retry_delay, gate=gate, log=log, seed=job.cache_key or job.name)
    parser = SpecParser(job.layout.specs_dir)
    spec = parser.parse_spec(job.name)
    arrangement = job.layout.arrangement
    outcome = SpecOutcome(name=job.name, status=Outcome.BUILT, started=started)
    if spec.metadata.type == "reference":
        outcome.status = Outcome.REFERENCE
        return _finish(outcome, counter)
    compiler = SpecCompiler(counter, global_context=parser.load_global_context())
    references = {d: parser.parse_spec(d) for d in job.deps
                  if parser.spec_exists(d) and parser.parse_spec(d).metadata.type == "reference"}
    kind = spec.metadata.type
    if kind == "typedef":
        code = compiler.compile_typedef(spec, model=job.model, arrangement=arrangement)
    elif kind == "orchestrator":
        code = compiler.compile_orchestrator(spec, model=job.model, arrangement=arrangement)
    else:
        code = compiler.compile_code(spec, model=job.model, arrangement=arrangement, reference_specs=references)
    impl_rel, test_rel = job.layout.impl_path(job.name), job.layout.test_path(job.name)
    outcome.files[impl_rel] = code
    atomic_write(job.layout.absolute(impl_rel), code)
    if kind == "typedef":
        return _finish(outcome, counter)
    tests = compiler.compile_tests(spec, model=job.model, arrangement=arrangement, reference_specs=references)
    outcome.files[test_rel] = tests
    atomic_write(job.layout.absolute(test_rel), tests)

    passed, output = run_tests(job, test_rel)
    outcome.attempts = 1
    for fix in range(1, job.max_fixes + 1):
        if passed:
            break
        log(f"{job.name}: tests failed (attempt {outcome.attempts}); asking for fix {fix}/{job.max_fixes}")
        response = compiler.generate_fix(spec, outcome.files[impl_rel], outcome.files[test_rel], output,
                                         model=job.model, arrangement=arrangement)
        for named, content in compiler.parse_fix_response(response).items():
            own = fix_target(named, impl_rel, test_rel)
            if own is None:
                log(f"{job.name}: refused fix for {named!r}: only {impl_rel} and {test_rel} may be changed")
                continue
            outcome.files[own] = content
            atomic_write(job.layout.absolute(own), content)
        passed, output = run_tests(job, test_rel)
        outcome.attempts += 1
    if not passed:
        outcome.status = Outcome.FAILED
        outcome.error = f"tests still failing after {outcome.attempts} run(s):\n{output[-4000:]}"
    return _finish(outcome, counter)


def _finish(outcome: SpecOutcome, counter: SpecProvider) -> SpecOutcome:
    outcome.ended = time.time()
    outcome.seconds = round(outcome.ended - outcome.started, 3)
    outcome.llm_calls, outcome.retries, outcome.reused = counter.calls, counter.retried, counter.reused
    return outcome


def write_files(layout: Layout, outcome: SpecOutcome) -> int:
    """Put a (possibly cached) outcome's files on disk where missing or different."""
    written = 0
    for rel, content in outcome.files.items():
        path = layout.absolute(rel)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            atomic_write(path, content)
            written += 1
    return written
