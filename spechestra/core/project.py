"""Where a project's specs are, which arrangement applies, and where each spec's files go."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml
from specsoloist.config import SpecSoloistConfig
from specsoloist.parser import SpecParser
from specsoloist.schema import Arrangement

from ..errors import ProjectError
from .fileio import inside
from .models import error_in_words


def check_project_dir(project_dir: str) -> str:
    """The project folder as an absolute path; a clear error when the path is a file."""
    path = os.path.abspath(project_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ProjectError(f"the project path {path} is a file, not a folder: give the folder that holds the specs",
                           path=path)
    return path


def finished_dir(project_dir: str, flow_run_id: str) -> str:
    """Outcomes of the specs that finished in one flow run (removed when its build ends)."""
    return os.path.join(project_dir, ".spechestra", "finished", flow_run_id)


def stop_path(project_dir: str, flow_run_id: Optional[str]) -> str:
    """Where a build's flow says it was stopped, for its specs in other processes (Dask, Ray)."""
    return os.path.join(project_dir, ".spechestra", "stops", flow_run_id or "local")


def ledger_path(project_dir: str, flow_run_id: Optional[str]) -> str:
    """One build's shared call count (`Budget.shared`), where every cluster worker sees it."""
    return os.path.join(project_dir, ".spechestra", "budgets", f"{flow_run_id or 'local'}.json")


def find_specs_dir(project_dir: str, config: SpecSoloistConfig, arrangement: Optional[Arrangement]) -> str:
    """`src/` (SpecSoloist's default); else the arrangement's `specs_path`; else the project root
    when specs sit there, as in SpecSoloist's examples (`sp conduct .`)."""
    candidates = [config.src_path]
    if arrangement is not None:
        candidates.append(os.path.join(project_dir, arrangement.specs_path))
    for candidate in candidates:
        if os.path.isdir(candidate) and SpecParser(candidate).list_specs():
            return os.path.abspath(candidate)
    if os.path.isdir(project_dir) and any(name.endswith(".spec.md") for name in os.listdir(project_dir)):
        return os.path.abspath(project_dir)
    return config.src_path


def load_arrangement(project_dir: str, arrangement=None) -> Optional[Arrangement]:
    """An Arrangement object, a path to one, or `arrangement.yaml` auto-discovered in the project."""
    if isinstance(arrangement, Arrangement):
        return arrangement
    path = arrangement or os.path.join(project_dir, "arrangement.yaml")
    if not os.path.exists(path):
        if arrangement:
            raise ProjectError(f"arrangement file not found: {arrangement}", path=str(arrangement))
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path} is not a text file (not UTF-8: {exc.reason} at byte {exc.start}); fix it",
                           path=path) from None
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror or exc}", path=path) from None
    try:
        return SpecParser(project_dir).parse_arrangement(text)
    except ValueError as exc:  # SpecSoloist's for bad YAML and bad fields alike, the cause kept as context
        raise ProjectError(f"{path} is not a valid arrangement: {_why(exc.__context__ or exc)}; fix it, or remove it "
                           "to build with SpecSoloist's defaults", path=path) from None


def _why(exc: BaseException) -> str:
    """One line for what YAML or pydantic said over several: where, and what is wrong."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError
        found = [error_in_words(e) for e in errors()]
        return "; ".join(found[:3]) + (f" (and {len(found) - 3} more)" if len(found) > 3 else "")
    return " ".join(str(exc).split())


@dataclass(frozen=True)
class Layout:
    """Output paths for one build, relative to the build dir (picklable, no open handles)."""

    project_dir: str
    specs_dir: str
    build_dir: str
    arrangement_yaml: str = ""  # the arrangement as YAML ("" = none); part of cache keys

    @property
    def arrangement(self) -> Optional[Arrangement]:
        if not self.arrangement_yaml:
            return None
        return Arrangement(**yaml.safe_load(self.arrangement_yaml))

    def declared_env(self) -> tuple[str, ...]:
        """The variables the arrangement declares its generated code needs (`env_vars`: names)."""
        arr = self.arrangement
        return tuple(sorted(arr.env_vars)) if arr else ()

    def impl_path(self, name: str) -> str:
        arr = self.arrangement
        return arr.output_paths.resolve_implementation(name) if arr else f"{name}.py"

    def test_path(self, name: str) -> str:
        """Beside the implementation, `test_` before the file's own name: a spec `x/y` gets
        `x/test_y.py` (`test_x/y.py` was a module named `y`, which imported itself, not x/y.py)."""
        arr = self.arrangement
        if arr:
            return arr.output_paths.resolve_tests(name)
        folder, _, base = name.rpartition("/")
        return f"{folder}/test_{base}.py" if folder else f"test_{base}.py"

    def path_templates(self) -> tuple[str, ...]:
        """The arrangement's output paths as written (`src/{name}.py`), or none."""
        arr = self.arrangement
        return (arr.output_paths.implementation, arr.output_paths.tests) if arr else ()

    def check_paths(self, names) -> None:
        """Every path the build would write stays inside build/: each spec's output paths and the
        arrangement's config files and static copies (checked before any LLM call is paid for)."""
        arr = self.arrangement
        if arr is not None:
            for rel in list(arr.environment.config_files) + [entry.dest for entry in arr.static]:
                try:
                    self.absolute(rel)
                except ProjectError as exc:
                    raise ProjectError(f"the arrangement writes {rel!r}, which is refused: {exc}", path=rel) from None
        for name in names:
            for rel in (self.impl_path(name), self.test_path(name)):
                try:
                    self.absolute(rel)
                except ProjectError as exc:
                    raise ProjectError(f"the arrangement's output path for {name!r} is refused: {exc}",
                                       path=rel) from None

    def absolute(self, relative: str) -> Path:
        return inside(self.build_dir, relative)

    @property
    def results_dir(self) -> str:
        """Prefect's result storage for the build's task runs: <project>/.spechestra/results.

        Not the build cache (that is `core.build_cache`, in .spechestra/cache/): these are the
        persisted task results Prefect reads back, e.g. a spec's outcome for its flow run."""
        return os.path.join(self.project_dir, ".spechestra", "results")

    def finished_path(self, flow_run_id: str, name: str) -> str:
        """A spec's outcome, once it finished in flow run `flow_run_id`: a task run again for that
        run (Dask re-runs the tasks of a lost worker) returns it instead of paying again."""
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]
        return os.path.join(finished_dir(self.project_dir, flow_run_id), f"{digest}.json")

    def answers_path(self, cache_key: str) -> str:
        """Answers one spec's unfinished build has paid for (see `llm_calls`), until it finishes."""
        return os.path.join(self.project_dir, ".spechestra", "answers", f"{cache_key}.json")
