"""Test kit for builds: a provider that answers SpecSoloist's compile, test and fix prompts."""

from __future__ import annotations

import re

from spechestra.providers import ScriptedProvider

from .calls import TimedProvider

MATH_CODE = {
    "factorial": '''def factorial(n):
    if not isinstance(n, int) or n < 0 or n > 20:
        raise ValueError("n must be an integer in [0, 20]")
    result = 1
    for i in range(2, n + 1):
        result *= i
    return result
''',
    "is_prime": '''def is_prime(n):
    if n <= 1:
        return False
    if n == 2:
        return True
    if n % 2 == 0:
        return False
    i = 3
    while i * i <= n:
        if n % i == 0:
            return False
        i += 2
    return True
''',
    "math_utils": '''def add(a, b): return a + b
def subtract(a, b): return a - b
def multiply(a, b): return a * b
def divide(a, b):
    if b == 0:
        raise ValueError("b must not be zero")
    return a / b
def clamp(value, min, max):
    if min > max:
        raise ValueError("min must be <= max")
    return value if min <= value <= max else (min if value < min else max)
def abs(n): return n if n >= 0 else -n
''',
    "math_workflow": '''from factorial import factorial
from is_prime import is_prime


def run(n):
    f = factorial(n)
    return {"factorial_result": f, "is_prime_result": is_prime(f)}
''',
}

MATH_TESTS = {
    "factorial": '''import pytest
from factorial import factorial

def test_values():
    assert factorial(0) == 1 and factorial(5) == 120 and factorial(20) == 2432902008176640000

def test_errors():
    for bad in (-1, 21):
        with pytest.raises(ValueError):
            factorial(bad)
''',
    "is_prime": '''from is_prime import is_prime

def test_primes():
    assert [n for n in range(-5, 20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
    assert is_prime(997) and not is_prime(100)
''',
    "math_utils": '''import pytest
from math_utils import add, subtract, multiply, divide, clamp, abs

def test_all():
    assert add(2, 3) == 5 and subtract(2, 3) == -1 and multiply(2, 3) == 6 and divide(6, 3) == 2
    assert clamp(5, 0, 3) == 3 and abs(-4) == 4
    with pytest.raises(ValueError):
        divide(1, 0)
''',
    "math_workflow": '''from math_workflow import run

def test_run():
    assert run(5) == {"factorial_result": 120, "is_prime_result": False}
''',
}

MARKERS = {
    "Computes the factorial": "factorial",
    "Determines whether a given integer is a prime": "is_prime",
    "Common mathematical utility functions": "math_utils",
    "A demonstration workflow": "math_workflow",
}


def spec_of_code_prompt(prompt: str, markers: dict) -> str:
    for marker, name in markers.items():
        if marker in prompt:
            return name
    raise LookupError("unknown spec in compile prompt")


def module_of_test_prompt(prompt: str) -> str:
    return re.search(r"module named `([^`]+)`", prompt).group(1)


def build_provider(code: dict, tests: dict, markers: dict, fix=None) -> ScriptedProvider:
    """Answers compile prompts from `code`, test prompts from `tests`, fix prompts with `fix(prompt)`."""
    rules = [
        ("You are an expert QA Engineer", lambda p: tests[module_of_test_prompt(p)]),
        ("tasked with fixing a build failure", fix or (lambda p: "no fix")),
        ("Your task is to implement", lambda p: code[spec_of_code_prompt(p, markers)]),
    ]
    return ScriptedProvider(rules)


def math_provider(**overrides) -> ScriptedProvider:
    code = {**MATH_CODE, **overrides.pop("code", {})}
    return build_provider(code, {**MATH_TESTS, **overrides.pop("tests", {})}, MARKERS, **overrides)


CHAIN = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}


def write_chain_project(root) -> None:
    """a <- b <- c <- d: with one worker, each spec starts only after the one before finished."""
    from kit import spec_markdown
    src = root / "src"
    src.mkdir(parents=True)
    for name, deps in CHAIN.items():
        (src / f"{name}.spec.md").write_text(spec_markdown(name, deps=deps, description=f"Spec {name} marker-{name}."))


def chain_provider() -> ScriptedProvider:
    code = {n: f"def {n}(value):\n    return value\n" for n in CHAIN}
    tests = {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(3) == 3\n" for n in CHAIN}
    return build_provider(code, tests, {f"marker-{n}": n for n in CHAIN})


class LoggedSlowProvider:
    """For a build in another process: sleeps per call and appends which spec each call was for.
    With a gate path, no call answers before that file exists (at most 200 s): a test holds the
    build mid-way for as long as it needs, not for a guessed number of seconds."""

    def __init__(self, inner, log_path: str, seconds: float, gate: str = ""):
        self.inner, self.log_path, self.seconds, self.gate = inner, log_path, seconds, gate

    def generate(self, prompt, temperature=0.1, model=None):
        import os
        import time
        name = next((n for n in CHAIN if f"marker-{n}" in prompt or f"module named `{n}`" in prompt), "?")
        with open(self.log_path, "a") as log:
            log.write(name + "\n")
        time.sleep(self.seconds)
        if self.gate:
            wait_until(lambda: os.path.exists(self.gate), 200)
        return self.inner.generate(prompt, temperature=temperature, model=model)


def wait_until(condition, seconds: float, pause: float = 0.02) -> None:
    """In a provider of another process: wait until `condition()` holds, at most `seconds` (the
    test waiting on that process then reports what went wrong)."""
    import time
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(pause)


def slow_chain_provider():
    """`SPECHESTRA_PROVIDER=kit.build:slow_chain_provider` (log file in $CALL_LOG, gate in $CALL_GATE)."""
    import os
    return LoggedSlowProvider(chain_provider(), os.environ["CALL_LOG"], float(os.environ.get("CALL_SECONDS", "0.5")),
                              os.environ.get("CALL_GATE", ""))


PIPELINE_COMPONENTS = [
    {"name": "double", "type": "function", "description": "Doubles a number", "dependencies": []},
    {"name": "twice", "type": "workflow", "description": "Runs double", "dependencies": ["double"]},
]


def pipeline_provider() -> ScriptedProvider:
    """Answers compose (architecture, specs) and build (code, tests) prompts for a two-spec project
    whose workflow `twice` runs `double` on `inputs.value`."""
    from kit import architecture, composer_provider
    compose = composer_provider("```yaml\n" + architecture(PIPELINE_COMPONENTS) + "```")
    code = {"double": "def double(value):\n    return {'result': value * 2}\n",
            "twice": "from double import double\n\n\ndef run(value):\n    return double(value)\n"}
    tests = {"double": "from double import double\n\n\ndef test_double():\n    assert double(4) == {'result': 8}\n",
             "twice": "from twice import run\n\n\ndef test_twice():\n    assert run(1) == {'result': 2}\n"}
    build = build_provider(code, tests, {"The double component.": "double", "The twice component.": "twice"})
    return ScriptedProvider(compose.rules + build.rules)


def keyed_pipeline_provider(api_key=None):
    """`pipeline_provider`, but only for the API key whose sha256 is in $EXPECTED_KEY_SHA256
    (the test hands the key to the run through a Prefect Secret block, never in the clear)."""
    import hashlib
    import os
    if hashlib.sha256((api_key or "").encode()).hexdigest() != os.environ["EXPECTED_KEY_SHA256"]:
        raise PermissionError("401: the provider was not given the key from the Secret block")
    return pipeline_provider()


def write_wide_project(root, names="pqrs") -> None:
    """Independent specs: every one can build at the same time."""
    from kit import spec_markdown
    src = root / "src"
    src.mkdir(parents=True)
    for n in names:
        (src / f"{n}.spec.md").write_text(spec_markdown(n, description=f"Spec {n} marker-{n}."))


def wide_provider(names: str = "pqrs") -> ScriptedProvider:
    """Answers a `write_wide_project` project's specs: each returns its argument, its test passes."""
    return build_provider({n: f"def {n}(v):\n    return v\n" for n in names},
                          {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(1) == 1\n" for n in names},
                          {f"marker-{n}": n for n in names})


def timed_wide_provider():
    """`SPECHESTRA_PROVIDER=kit.build:timed_wide_provider` for `write_wide_project` projects."""
    import os
    inner = wide_provider(os.environ.get("WIDE_NAMES", "pqrs"))
    return TimedProvider(inner, os.environ["CALL_TIMES"], float(os.environ.get("CALL_SECONDS", "0.4")))


def synced_composer_provider():
    """`SPECHESTRA_PROVIDER=kit.build:synced_composer_provider`: the four-component composer whose
    architecture answer waits until $SYNC_COUNT processes have asked for one (a barrier of files in
    $SYNC_DIR, at most 120 s), so two composes go for the specs at the same instant; each spec
    names the process that wrote it."""
    import os
    from pathlib import Path

    from kit import FOUR, _spec_from_prompt, architecture, composer_provider

    def arrive(prompt):
        here = Path(os.environ["SYNC_DIR"])
        (here / str(os.getpid())).touch()
        wait_until(lambda: len(list(here.iterdir())) >= int(os.environ.get("SYNC_COUNT", "2")), 120)
        return "```yaml\n" + architecture(FOUR) + "```"

    def spec(prompt):
        fenced = _spec_from_prompt(prompt)  # "```markdown\n<spec>\n```": the comment goes last in the spec
        return fenced[: -len("\n```")] + f"\n<!-- writer {os.getpid()} -->\n```"

    return composer_provider(arrive, spec_answer=spec)


def timed_composer_provider():
    """`SPECHESTRA_PROVIDER=kit.build:timed_composer_provider`: the four-component composer (synced
    as above when $SYNC_DIR is set), every call's `start end` appended to $CALL_TIMES."""
    import os

    from kit import composer_provider
    inner = synced_composer_provider() if os.environ.get("SYNC_DIR") else composer_provider()
    return TimedProvider(inner, os.environ["CALL_TIMES"], float(os.environ.get("CALL_SECONDS", "0.4")))


class LeakyProvider:
    """A careless provider: logs and prints its key on every call, and puts the key into the
    errors it raises (once per prompt a transient one, retried; for `refuse` a 401 that is not)."""

    def __init__(self, inner, api_key: str, refuse: str = ""):
        self.inner, self.api_key, self.refuse, self.seen = inner, api_key, refuse, set()

    def generate(self, prompt, temperature=0.1, model=None):
        import logging
        logging.getLogger("leaky.provider").warning("calling the LLM with key %s", self.api_key)
        print(f"debug: Authorization: Bearer {self.api_key}")
        if self.refuse and self.refuse in prompt:
            raise PermissionError(f"401 Unauthorized: key {self.api_key} is not valid for this model")
        if prompt not in self.seen:
            self.seen.add(prompt)
            raise ConnectionResetError(f"connection reset by peer (request signed with {self.api_key})")
        return self.inner.generate(prompt, temperature=temperature, model=model)


def leaky_pipeline_provider(api_key=None):
    """`keyed_pipeline_provider`'s check, then a `LeakyProvider` around `pipeline_provider`."""
    keyed_pipeline_provider(api_key)
    return LeakyProvider(pipeline_provider(), api_key)


def leaky_refusing_chain_provider(api_key=None):
    """For `write_chain_project`: spec c's code is refused with a 401 that quotes the key."""
    return LeakyProvider(chain_provider(), api_key, refuse="marker-c")


def never_passing_wide_provider():
    """`SPECHESTRA_PROVIDER=kit.build:never_passing_wide_provider`: like `timed_wide_provider`, but
    every fix is wrong too, so each spec keeps asking until its fixes run out (a long build)."""
    import os
    names = os.environ.get("WIDE_NAMES", "pqrs")
    inner = build_provider({n: f"def {n}(v):\n    return v + 1\n" for n in names},
                           {n: f"from {n} import {n}\n\ndef test_it():\n    assert {n}(1) == 1\n" for n in names},
                           {f"marker-{n}": n for n in names},
                           fix=lambda p: "no fix")
    return TimedProvider(inner, os.environ["CALL_TIMES"], float(os.environ.get("CALL_SECONDS", "0.4")))
