"""The layers hold: the plain-code core never imports Prefect, nor do `--help` and `doctor`,
and no module of ours imports another in a cycle."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import spechestra

PACKAGE = Path(spechestra.__file__).parent
EXE = Path(sys.executable).parent / "spechestra"


def _modules(subpackage: str) -> list[str]:
    folder = PACKAGE / subpackage
    return [f"spechestra.{subpackage}.{m.name}" for m in pkgutil.iter_modules([str(folder)])]


def _prefect_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return eval(done.stdout.strip().splitlines()[-1])


def test_the_core_and_providers_import_no_prefect():
    modules = (_modules("core") + _modules("providers") + _modules("processes") + _modules("server")
               + ["spechestra.demo", "spechestra.errors", "spechestra.settings"])
    assert len(modules) > 15  # the probe really covers the core
    assert _prefect_after("\n".join(f"import {m}" for m in modules)) == []


def test_the_probe_sees_prefect_when_it_is_imported():
    assert "prefect" in _prefect_after("import spechestra.orchestration.prefect")


@pytest.mark.parametrize("argv", [["--help"], ["doctor", "--install"], ["build", "--help"]])
def test_help_and_doctor_import_no_prefect(argv):
    code = f"from spechestra.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _prefect_after(code) == []


def test_no_import_cycles_among_our_modules():
    """Module-level imports of our own modules form no cycle (the same check as
    `python3 ../shared/tools/import_cycles.py spechestra`, here without the tool)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("spechestra",) + path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.parse(path.read_text()).body:  # module level only: deferred imports are allowed
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(0, node.level - 1)):
                    base = base.rsplit(".", 1)[0]
                target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                if node.module:  # `from . import x` depends on the submodule x, not on the package
                    edges.add(target)
                edges.update(f"{target}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names)
        graph[name] = {e for e in edges if e.startswith("spechestra")}
    known = set(graph)
    graph = {n: {e for e in es if e in known and e != n} for n, es in graph.items()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert len(graph) > 30


RANKS = {"errors": 0, "settings": 0, "redaction": 0, "streams": 0, "stopping": 0, "processes": 0, "core": 1, "server": 1, "demo": 1, "install_check": 1,
         "providers": 2, "orchestration": 3, "facade": 4, "composer": 4, "conductor": 4, "pipeline": 4,
         "pipeline_flow": 5, "cli": 6, "__main__": 7}


def _layer(module: str) -> int:
    parts = module.split(".")
    return RANKS[parts[1]] if len(parts) > 1 else 4  # the package's lazy __init__ sits with the facades


def test_imports_point_down_the_layers_even_deferred_ones():
    """errors/settings/redaction/streams/processes <- core/server <- providers <- orchestration <- composer/conductor/
    pipeline <- cli: no import of ours, at module level or inside a function, points up (flows never
    call the public classes)."""
    upward = []
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("spechestra",) + path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                targets = [f"{base}.{node.module}" if node.module else f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                targets = [m for m in mods if m.startswith("spechestra.")]
            for target in targets:
                if target.count(".") >= 1 and _layer(target) > _layer(name):
                    upward.append(f"{name} imports {target}")
    assert upward == []
