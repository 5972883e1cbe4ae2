"""The benchmarks' LLM: instant scripted answers after a known, seeded delay per call.

Every delay is a pure function of (seed, spec, prompt kind), so a benchmark computes its lower
bound from the same numbers the provider sleeps for, before anything runs. Importable by a
`spechestra` subprocess as `SPECHESTRA_PROVIDER=bench_provider:from_env` (with this folder on
PYTHONPATH and BENCH_LATENCY / BENCH_SIGMA / BENCH_SEED set).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TESTS_FOR = re.compile(r"module named `(\w+)`")
CODE_FOR = re.compile(r"marker-(\w+)\)")


def delay(name: str, kind: str, latency: float, sigma: float, seed: int) -> float:
    return latency * random.Random(f"{seed}:{name}:{kind}").lognormvariate(0.0, sigma)


def code_for(name: str) -> str:
    return f"def {name}(value):\n    return value\n"


def tests_for(name: str) -> str:
    return f"from {name} import {name}\n\n\ndef test_{name}():\n    assert {name}(7) == 7\n"


class BenchProvider:
    """Thread-safe call counter; answers by what the prompt asks for."""

    def __init__(self, latency: float, sigma: float, seed: int):
        self.latency, self.sigma, self.seed = latency, sigma, seed
        self.calls, self._lock = 0, threading.Lock()

    def _spec_and_kind(self, prompt: str) -> tuple[str, str]:
        found = TESTS_FOR.search(prompt)
        if found:
            return found.group(1), "tests"
        found = CODE_FOR.search(prompt)
        if found:
            return found.group(1), "code"
        raise LookupError("prompt names no benchmark spec")

    def delay(self, name: str, kind: str) -> float:
        return delay(name, kind, self.latency, self.sigma, self.seed)

    def generate(self, prompt: str, temperature: float = 0.1, model=None) -> str:
        name, kind = self._spec_and_kind(prompt)
        with self._lock:
            self.calls += 1
        time.sleep(self.delay(name, kind))
        return code_for(name) if kind == "code" else tests_for(name)


def test_cost(name: str, repeats: int = 3) -> float:
    """What running one spec's generated tests costs on this machine, measured on its own."""
    work = Path(tempfile.mkdtemp(prefix="spechestra-bench-test-"))
    try:
        (work / f"{name}.py").write_text(code_for(name))
        (work / f"test_{name}.py").write_text(tests_for(name))
        walls = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"test_{name}.py"],
                           cwd=work, capture_output=True, check=True)
            walls.append(time.perf_counter() - started)
        return statistics.median(walls)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def from_env() -> BenchProvider:
    return BenchProvider(float(os.environ.get("BENCH_LATENCY", "1.0")), float(os.environ.get("BENCH_SIGMA", "0.5")),
                         int(os.environ.get("BENCH_SEED", "42")))
