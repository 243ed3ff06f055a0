# accesswatch: one command runs the product, one runs the tests.
# Each target creates the virtual environment it needs (.venv) and installs
# the pinned dependencies (requirements.lock) into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-compare bench-instructions soak fuzz lint lock clean browser

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

## demo: a simulated organisation's month through the live pipeline (pages print as raised once the detectors have learnt 7 simulated days),
##       with the dashboard beside it; Ctrl-C stops both
demo: $(STAMP)
	@trap 'kill $$DEMO $$DASH 2>/dev/null; wait' EXIT INT TERM; \
	 $(BIN)/accesswatch demo & DEMO=$$!; \
	 sleep 3; \
	 $(BIN)/accesswatch dashboard --data-dir data/demo --demo & DASH=$$!; \
	 sleep 2; \
	 echo "dashboard: http://localhost:8501/  sign in as demo, analyst or auditor, password accesswatch-demo"; \
	 wait $$DEMO

## test: the whole test suite (installs the browser the dashboard tests drive, if missing)
test: $(STAMP) browser
	$(BIN)/python -m pytest

## bench: throughput and latency benchmarks (not tests: they measure, they do not pass or fail)
bench: $(STAMP)
	$(BIN)/python -m bench.run

## bench-compare: this tree's replay benchmark against REV's, runs interleaved (REV=..., ROUNDS, EVENTS)
bench-compare: $(STAMP)
	$(BIN)/python -m bench.compare $(REV) --rounds $(or $(ROUNDS),2) --events $(or $(EVENTS),300000)

## bench-instructions: instructions an event per stage, counted by valgrind (EVENTS; immune to the machine's drift)
bench-instructions: $(STAMP)
	$(BIN)/python -m bench.instructions --events $(or $(EVENTS),40000)

## soak: the simulator at a steady rate for 10 minutes, memory sampled (SOAK_SECONDS, SOAK_SPEED)
soak: $(STAMP)
	$(BIN)/python -m bench.soak

## fuzz: the parser and the store's write path under atheris (else hypothesis) for FUZZ_SECONDS
fuzz: $(STAMP)
	$(BIN)/pip install --quiet atheris || true
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} $(BIN)/python -m bench.fuzz_parser

lint: $(STAMP)
	$(BIN)/ruff check accesswatch configs detectors ingest models notify store dashboard tests bench
	$(BIN)/ruff format --check accesswatch configs detectors ingest models notify store dashboard tests bench
	$(BIN)/mypy

## lock: re-pin the dependencies after changing pyproject.toml
lock:
	$(PYTHON) -m venv /tmp/accesswatch-lock && /tmp/accesswatch-lock/bin/pip install --quiet -e '.[test]' \
	  && /tmp/accesswatch-lock/bin/pip freeze --exclude-editable > requirements.lock && rm -rf /tmp/accesswatch-lock

# Debian's Chromium, for the dashboard's real-browser test (root on CI and dev machines here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium is missing: install Debian's chromium package for the browser test"; fi; }

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
