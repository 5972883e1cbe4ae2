# Two entry points: `make demo` and `make test`. Both create .venv if missing and install
# Spechestra into it so that *our* spechestra package wins over the old one bundled in the
# specsoloist wheel (see README, "The spechestra name clash").
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spechestra-installed
SOURCES := pyproject.toml $(shell find spechestra -type f -not -path '*/__pycache__/*' 2>/dev/null)

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install demo test test-fast lint doctor clean

# The stamp alone would say "Nothing to be done" after `pip install --force-reinstall specsoloist`
# put the old package back over ours: the install check (standard library, run from the
# checkout's file) forgets the stamp when `import spechestra` in the venv is no longer ours.
install:
	@test ! -f $(STAMP) || $(PY) -I -c 'import sys; sys.path.insert(0, "spechestra"); import install_check; \
		sys.exit(0 if install_check.check().ok else 1)' 2>/dev/null || rm -f $(STAMP)
	@$(MAKE) --no-print-directory $(STAMP)

$(STAMP): $(SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check ".[test]"
	@# Reinstall our package last, without dependencies: whatever order pip chose above, our
	@# spechestra/ files are the ones on disk afterwards.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall .
	$(VENV)/bin/spechestra doctor --install
	@touch $(STAMP)

demo: install
	$(VENV)/bin/spechestra demo

# Test files run on TEST_WORKERS processes (pytest-xdist), each with its own Prefect test server
# and PREFECT_HOME; a file's tests stay together (module fixtures: one server per deploy file).
# Files are handed out in the order tests/conftest.py sorts them (the longest first), not by
# their number of tests. Two workers more than the cores (at most 8): the tests wait on servers,
# sleeps and subprocesses part of the time, and each worker brings a server of its own. Measured
# on 2 cores, 2026-12-06/07: the suite 5 min 23 s-6 min 49 s on 4 workers (the cores idle 20-31 s
# of it) against 5 min 53 s-6 min 9 s on 3 (idle 72-95 s) and 6 min 25 s on 5 (README, "Development").
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(min(8, (os.cpu_count() or 1) + 2))')
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: install lint
	$(PY) -m pytest $(PYTEST_PARALLEL)

# What a developer runs between edits: plain code and real flow runs, no CLI subprocesses,
# deployments, workers or browser (those are `make test`, which CI runs).
test-fast: install
	$(PY) -m pytest $(PYTEST_PARALLEL) tests/unit tests/flows

lint: install
	$(PY) -m ruff check spechestra flows tests benchmarks scripts
	$(PY) -m mypy

doctor: install
	$(VENV)/bin/spechestra doctor

clean:
	rm -rf $(VENV) build *.egg-info spechestra-demo
