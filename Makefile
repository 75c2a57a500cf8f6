# The two commands a newcomer needs: `make demo` and `make check`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo check lint test test-fast install lock clean console-screenshot bench wrk

$(BIN)/crmflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/crmflow

## Run the end-to-end demo on loopback (starts a private Redis when none is reachable).
demo: install
	$(BIN)/crmflow demo

## Everything CI runs: lint, format check, strict typing, the whole test suite.
check: install lint test

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test:
	$(BIN)/pytest

## The quick tier while you work: every test not marked slow (no e2e, no soak); `make check` runs them all.
test-fast: install
	$(BIN)/pytest -m "not slow"

## The benchmark suite (docs/performance.md): about 10 minutes; ARGS=--quick about 3, ARGS=--smoke about 30 s;
## ARGS='--name NAME' writes bench/results/NAME.* instead of latest.*. Run it on a quiet machine.
bench: install wrk
	$(BIN)/python -m bench $(ARGS)

## wrk (the receiver's load generator) from Debian, when missing and root; otherwise say how to get it.
wrk:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; \
	  else \
	    echo "make bench needs wrk (the load generator): install Debian's package (apt-get install wrk, as root)" >&2; \
	    exit 1; \
	  fi; }

## docs/console.png: the console's event list at the end of its browser test (Debian's chromium; real processes).
console-screenshot: install
	CRMFLOW_CONSOLE_SCREENSHOT=docs/console.png $(BIN)/pytest -q -m slow tests/console/test_browser.py

## Pin the runtime dependencies (pyproject.toml) and the build tool, with hashes, for every platform: the image
## installs from requirements.lock and requirements-build.lock only. Run after changing a dependency.
LOCK := $(BIN)/uv pip compile --universal --generate-hashes --python-version 3.11 --custom-compile-command "make lock" --quiet
lock: install
	$(LOCK) pyproject.toml -o requirements.lock
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
		| $(LOCK) - -o requirements-build.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
