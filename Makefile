# Two commands on a fresh machine: `make demo` and `make test`.
# Both build .venv from the pinned lock file when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# axe-core for the browser tests' accessibility check (tests/test_a11y.py), pinned in package-lock.json.
NODE_STAMP := node_modules/.installed
# Tests run in three pytest-xdist workers, a whole module per worker (module fixtures build their data once).
# Most tests wait on processes, servers and disks, so three beat two on this 2-core machine; PYTEST_PARALLEL=
# (empty) runs them in one process.
PYTEST_PARALLEL ?= -n 3 --dist loadfile

.PHONY: demo test test-fast lint bench clean venv

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $(NODE_STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/sensorlog demo

test: $(STAMP) $(NODE_STAMP)
	bash scripts/system-packages.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mypy
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) --durations=40

# The unit and integration tiers only: no Airflow, browser, Docker, killed processes or wheel build.
test-fast: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/ruff check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mypy
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(PYTEST_PARALLEL) -m "unit or integration" --durations=20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ruff format --check .

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.run

clean:
	rm -rf .sensorlog
