"""Building one spec: compile code, generate tests, run them, fix while attempts remain.

Uses SpecSoloist's public pieces (SpecParser, SpecCompiler) and not SpecSoloist's own fix helper, which
writes whatever path the LLM names (relative to build/, or absolute, or `../`). Here a fix may
only replace this spec's own implementation or test file; anything else is refused and logged.
No Prefect in this module: the task wrapper lives in `orchestration.build`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Optional
from xml.etree import ElementTree

from specsoloist.compiler import SpecCompiler
from specsoloist.parser import SpecParser
from specsoloist.providers import LLMProvider

from .. import stopping
from ..errors import Interrupted
from ..processes import sandbox, warm
from ..processes.control import alive
from ..processes.reaped import run_reaped
from . import options
from .budget import Budget, BudgetReached
from .build_guard import Kept
from .failure_output import moved, steady
from .fileio import atomic_write, inside
from .llm_calls import SpecProvider, chain
from .models import Outcome, SpecOutcome
from .project import Layout
from .publishing import sha256


@dataclass(frozen=True)
class SpecJob:
    """Everything one spec's build needs; plain data, so it pickles to any worker."""

    name: str
    layout: Layout
    deps: tuple[str, ...] = ()
    cache_key: str = ""
    spec_sha256: str = ""  # the spec text the cache key was computed from (a later edit must not be cached under it)
    model: Optional[str] = None
    max_fixes: int = options.MAX_FIXES.default
    test_timeout: float = options.TEST_TIMEOUT.default
    retries: int = options.RETRIES.default
    retry_delay: float = options.RETRY_DELAY.default
    llm_limit: Optional[str] = None
    import_dirs: tuple[str, ...] = field(default=())
    network: bool = False  # its generated code may use the network (the spec asks: `network: true`)


def changed_since_plan(job: SpecJob, spec_text: str) -> bool:
    """Whether the spec's text is no longer the one the build planned (and keyed its cache) from."""
    return bool(job.spec_sha256) and sha256(spec_text) != job.spec_sha256


def run_tests(job: SpecJob, test_rel: str, root: Optional[str] = None) -> tuple[bool, str]:
    """Run one test file with this interpreter's pytest, isolated from any outer pytest config.

    Passed means pytest's own report says at least one test ran and none failed or errored: an
    exit code alone is not enough (code that calls `os._exit(0)` on import exits 0 having run
    nothing). `root` is where this spec's own files are (its staging folder); the build dir
    provides its dependencies.
    """
    stopping.check()  # Ctrl-C: no new test run
    build = job.layout.build_dir
    roots = [root, build] if root else [build]
    paths = [os.path.join(r, d) for r in roots for d in job.import_dirs] + roots
    os.makedirs(build, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spechestra-tests-") as tmp:
        report = os.path.join(tmp, "report.xml")
        # Run from build/ (its conftest and environment files apply) on the file in `root`.
        test_file = os.path.join(root or build, test_rel)
        args = ["-q", "-p", "no:cacheprovider", *_unused_plugins(test_file, build), "--rootdir", build,
                "--confcutdir", build, "-o", "addopts=", test_file]
        run = None
        if root and not job.network:  # warm: one sandbox per build, each run Landlock-bound to its own stage
            run = warm.run_pytest([*args, "--junitxml={run_tmp}/report.xml"], build, job.test_timeout, paths,
                                  writable=[root], writable_root=str(staging_root(job.layout.build_dir)), report=report,
                                  declared_env=job.layout.declared_env())
        kept = None
        if run is None:
            kept = Kept(build, tmp) if _writes_unlimited(job.network) else None
            with kept or contextlib.nullcontext():
                run = run_reaped([sys.executable, "-m", "pytest", *args, f"--junitxml={report}"], build,
                                 job.test_timeout, import_paths=paths, writable=[root or build, tmp], readable=[build],
                                 network=job.network, declared_env=job.layout.declared_env())
        undone = kept.undone if kept else []
        stopping.check()  # ended by Ctrl-C: a stop, not the tests' verdict
        if run.timed_out:
            return False, f"tests timed out after {job.test_timeout:g}s\n{run.output[-20000:]}"
        counts = junit_counts(report)
    output = run.output[-20000:]
    if run.left_running:
        output += f"\n(the tests left {run.left_running} process(es) running; they were killed)"
    if run.limit:
        output += f"\n(the tests were stopped: they used {run.limit}; see SPECHESTRA_SANDBOX_* settings)"
    if undone:  # nothing contained the run: what it changed in build/ is put back, and it fails
        return False, output + (f"\nthe tests changed build/ ({', '.join(undone)}): put back as it was. Nothing "
                                "contains generated code here (SPECHESTRA_SANDBOX=off, or neither bubblewrap nor "
                                "Landlock works), so a test may write anywhere you can")
    if counts is None:
        return False, output + "\npytest wrote no report: it did not finish collecting or running the tests"
    ran = counts["tests"] - counts["skipped"]
    if ran <= 0:
        return False, output + f"\npytest ran no test ({counts['tests']} collected, {counts['skipped']} skipped)"
    return run.returncode == 0 and counts["failures"] == 0 and counts["errors"] == 0, output


def _writes_unlimited(network: bool) -> bool:
    """Neither bubblewrap nor Landlock limits what this run writes."""
    box = sandbox.containment(network)
    return not box.sandboxed and not box.landlocked


def _unused_plugins(test_file: str, build: str) -> list[str]:
    """`-p no:anyio` unless the tests or the build's conftest name anyio: its pytest plugin (installed
    with Prefect) acts only on tests that say `anyio`, and loading it was ~0.18 s of the ~0.43 s
    every spec's test run took here. Every other installed plugin loads as pytest would load it."""
    said = ""
    for path in (test_file, os.path.join(build, "conftest.py")):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                said += handle.read()
        except OSError:
            pass
    return [] if "anyio" in said else ["-p", "no:anyio"]


def junit_counts(path: str) -> Optional[dict]:
    """tests/failures/errors/skipped summed over a junit XML report, or None if there is none."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {k: sum(int(s.get(k, 0) or 0) for s in suites) for k in ("tests", "failures", "errors", "skipped")}


def fix_target(named: str, impl_rel: str, test_rel: str, templates: tuple = ()) -> Optional[str]:
    """Map a file the LLM named in a fix to one of this spec's own files, or None.

    With an arrangement, SpecSoloist's fix prompt shows the output paths as templates
    (`src/{name}.py`), so an answer naming the template means the spec's own file."""
    named = named.strip().strip("`").replace("\\", "/")
    if not named or named.startswith("/") or ".." in named.split("/"):
        return None
    for own, template in zip((impl_rel, test_rel), tuple(templates) + ("", "")):
        if named in (own, f"build/{own}") or ("/" not in named and named == os.path.basename(own)):
            return own
        if template and named in (template, f"build/{template}"):
            return own
    return None


def _quiet(phase: str) -> None:
    pass


def build_spec(job: SpecJob, provider: LLMProvider, log: Callable[[str], None] = print, record=None,
               gate: Callable[[], ContextManager] = contextlib.nullcontext,
               phase: Callable[[str], None] = _quiet, budget: Optional[Budget] = None) -> SpecOutcome:
    """Compile, test and fix one spec. Returns an outcome; raises only on provider errors.

    `record` (a list, or a `FileRecord`) keeps this spec's answers across attempts (see `llm_calls`); `gate` is held
    around every provider call; `phase` is told what the build is doing (for live progress); `budget` is
    the run's spending cap: a spec it stops ends Skipped, its paid answers kept in `record`.
    """
    started = time.time()
    counter = SpecProvider(provider, record if record is not None else [], retries=job.retries,
                           delay=job.retry_delay, gate=gate, log=log, seed=job.cache_key or job.name,
                           budget=budget)
    outcome = SpecOutcome(name=job.name, status=Outcome.BUILT, started=started)
    try:
        _compile_and_test(job, counter, outcome, log, phase)
    except Exception as exc:
        stop = next((link for link in chain(exc) if isinstance(link, (BudgetReached, Interrupted))), None)
        if stop is None:
            raise
        # SpecSoloist may have wrapped it. Either way the spec's paid answers stay in `record`.
        outcome.status = Outcome.SKIPPED if isinstance(stop, BudgetReached) else Outcome.STOPPED
        outcome.error = str(stop)
    return _finish(outcome, counter)


def _compile_and_test(job: SpecJob, counter: SpecProvider, outcome: SpecOutcome, log, phase) -> None:
    parser = SpecParser(job.layout.specs_dir)
    spec = parser.parse_spec(job.name)
    arrangement = job.layout.arrangement
    if spec.metadata.type == "reference":
        outcome.status = Outcome.REFERENCE
        return
    compiler = SpecCompiler(counter, global_context=parser.load_global_context())
    references = {d: parser.parse_spec(d) for d in job.deps
                  if parser.spec_exists(d) and parser.parse_spec(d).metadata.type == "reference"}
    kind = spec.metadata.type
    phase("compiling")
    if kind == "typedef":
        code = compiler.compile_typedef(spec, model=job.model, arrangement=arrangement)
    elif kind == "orchestrator":
        code = compiler.compile_orchestrator(spec, model=job.model, arrangement=arrangement)
    else:
        code = compiler.compile_code(spec, model=job.model, arrangement=arrangement, reference_specs=references)
    impl_rel, test_rel = job.layout.impl_path(job.name), job.layout.test_path(job.name)
    outcome.files[impl_rel] = code
    if kind == "typedef":
        return
    phase("writing tests")
    tests = compiler.compile_tests(spec, model=job.model, arrangement=arrangement, reference_specs=references)
    outcome.files[test_rel] = tests
    with staging(job.layout, job.name) as stage:
        _test_and_fix(job, compiler, spec, arrangement, outcome, stage, impl_rel, test_rel, log, phase)


def _test_and_fix(job, compiler, spec, arrangement, outcome, stage: Path, impl_rel, test_rel, log, phase) -> None:
    """Test the spec's files in its staging folder; ask for fixes while attempts remain. Nothing
    reaches build/ from here: the caller publishes the files once the tests pass."""
    for rel, content in outcome.files.items():
        atomic_write(inside(stage, rel), content)
    phase("testing")
    passed, output = run_tests(job, test_rel, root=str(stage))
    outcome.attempts = 1
    for fix in range(1, job.max_fixes + 1):
        if passed:
            break
        log(f"{job.name}: tests failed (attempt {outcome.attempts}); asking for fix {fix}/{job.max_fixes}")
        phase(f"fixing {fix}/{job.max_fixes}")
        failure = steady(output, str(stage), job.layout.build_dir)  # a resumed build asks it in the same words
        response = compiler.generate_fix(spec, outcome.files[impl_rel], outcome.files[test_rel], failure,
                                         model=job.model, arrangement=arrangement)
        templates = job.layout.path_templates()
        for named, content in compiler.parse_fix_response(response).items():
            own = fix_target(named, impl_rel, test_rel, templates)
            if own is None:
                log(f"{job.name}: refused fix for {named!r}: only {impl_rel} and {test_rel} may be changed")
                continue
            outcome.files[own] = content
            atomic_write(inside(stage, own), content)
        phase(f"testing fix {fix}/{job.max_fixes}")
        passed, output = run_tests(job, test_rel, root=str(stage))
        outcome.attempts += 1
    if not passed:
        refused = sandbox.refusals(output)
        for line in refused:
            log(f"{job.name}: {line}")
        outcome.notes += refused
        kept = keep_failed(job.layout, job.name, stage)
        outcome.status = Outcome.FAILED
        outcome.error = (f"tests still failing after {outcome.attempts} run(s) (the failing files are in {kept}):\n"
                         f"{moved(output, str(stage), str(kept), job.layout.build_dir)[-4000:]}")


@contextlib.contextmanager
def staging(layout: Layout, name: str):
    """A private folder for one spec's build, inside build/ (so the tests see the project's
    conftest and environment files) and removed afterwards."""
    root = staging_root(layout.build_dir)
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{name.replace('/', '.')}-{os.getpid()}-", dir=root))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def staging_root(build_dir: str) -> Path:
    return Path(build_dir) / ".spechestra" / "staging"


def remove_stale_staging(build_dir: str) -> list[str]:
    """Staging folders whose build process is gone (killed): removed at the next build."""
    root, removed = staging_root(build_dir), []
    for stage in root.iterdir() if root.is_dir() else []:
        match = re.match(r".+-(\d+)-[^-]+$", stage.name)
        if match and not alive(int(match.group(1))):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(str(stage))
    return removed


def keep_failed(layout: Layout, name: str, stage: Path) -> Path:
    """A copy of a failed spec's files to look at (never in build/ proper)."""
    target = Path(layout.build_dir) / ".spechestra" / "failed" / name.replace("/", ".")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(stage, target)
    return target


def _finish(outcome: SpecOutcome, counter: SpecProvider) -> SpecOutcome:
    outcome.ended = time.time()
    outcome.seconds = round(outcome.ended - outcome.started, 3)
    outcome.llm_calls, outcome.retries, outcome.reused = counter.calls, counter.retried, counter.reused
    outcome.input_tokens, outcome.output_tokens = counter.input_tokens, counter.output_tokens
    outcome.tokens_estimated = counter.tokens_estimated
    outcome.cost_usd = None if counter.cost_usd is None else round(counter.cost_usd, 6)
    return outcome



