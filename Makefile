# huxley-nats: the two commands that matter are `make up` and `make test`; CI
# runs `make lint` before `make test`. They set themselves up on a fresh machine
# (uv, the workspace, the system packages the tests need).

SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen

.PHONY: up status tap pair test test-fast lint bench chaos soak setup setup-system clean

$(UV):
	@echo "== installing uv into $(TOOLS)"
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml skills/*/pyproject.toml)
	@./scripts/setup-system.sh --build-deps
	$(UV) sync --frozen --all-packages
	@touch $@

setup: $(VENV)/.synced

# Debian packages and services the tests use (no-ops when already there).
setup-system:
	@./scripts/setup-system.sh

up: setup
	$(RUN) huxley up

# The CLI from the workspace venv, for a second terminal next to `make up`
# (neither `huxley` nor uv is on PATH in a fresh clone). ARGS passes options:
# make tap ARGS="'huxley.home.focus.>' --count 20".
ARGS ?=

status: setup
	$(RUN) huxley status $(ARGS)

tap: setup
	$(RUN) huxley tap $(ARGS)

pair: setup
	$(RUN) huxley pair $(ARGS)

test: setup setup-system
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: setup
	$(RUN) pytest -m "not slow and not docker and not browser" $(PYTEST_ARGS)

# What CI enforces (.ci/run) and .pre-commit-config.yaml runs: lint rules, the
# formatter's verdict, and mypy strict ([tool.mypy] in pyproject.toml).
LINT_PATHS := libs services skills tests bench
TYPED_SRC := libs/*/src services/*/src skills/*/src

lint: setup
	$(RUN) ruff check $(LINT_PATHS)
	$(RUN) ruff format --check $(LINT_PATHS)
	$(RUN) mypy --strict $(TYPED_SRC)

bench: setup setup-system
	$(RUN) python -m bench

# Issue 13's fault and endurance runs (docs/reliability.md): the household
# under 100 seeded faults (FAULTS=, SEED=), and an hour of steady load
# (MINUTES=). Reports go to bench/results/chaos.* and soak.*.
FAULTS ?= 100
SEED ?= 1
MINUTES ?= 60

chaos: setup setup-system
	$(RUN) python -m bench.chaos --faults $(FAULTS) --seed $(SEED)

soak: setup setup-system
	$(RUN) python -m bench.soak --minutes $(MINUTES)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
