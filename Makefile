# dmabuf-check: two commands for a fresh machine with python3 and make.
#   make campaign   set up, then run the default property campaign
#   make test       set up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: setup campaign test bench conform-setup browser-setup clean scale-setup bench-scale bench-explicit bench-explicit-small bench-distributed bench-z3 bench-power

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

campaign: $(STAMP)
	$(BIN)/dmabuf-check campaign --json reports/campaign.json

# The suite runs on two worker processes (pytest-xdist), each test file on one worker, so that a
# file's fixtures (one QEMU boot, one Redis server) are set up once: 4 min instead of 8 here.
TEST_JOBS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m properties.bench.speed

# Figures of campaigns at scale (docs/scale.md): speed-up with jobs, Dask overhead per shard.
bench-scale: $(STAMP)
	$(BIN)/python -m properties.bench.scale

# Figures of the explicit-state engine (docs/explicit.md): states/s, memory, growth with the scope,
# every catalog policy's whole tiny graph.
bench-explicit: $(STAMP)
	$(BIN)/python -m properties.bench.explicit --catalog --reduce --por --json reports/bench-explicit.json

# Every catalog policy's whole small graph (dead-variable reduction), two searches at a time:
# about two hours on this machine (docs/explicit.md, "small for every policy").
bench-explicit-small: $(STAMP)
	$(BIN)/python -m properties.bench.explicit --small-only --json reports/bench-explicit-small.json

# Overhead per level of the explicit search on a loopback Dask cluster of two workers
# (docs/explicit.md, "On a Dask cluster").
bench-distributed: $(STAMP)
	$(BIN)/python -m properties.bench.distributed --repeat 2 --json reports/bench-distributed.json

# Figures of the Z3 engine (docs/z3.md): depth per property within a budget, induction and
# synthesis times.
bench-z3: $(STAMP)
	$(BIN)/python -m properties.bench.z3 --json reports/bench-z3.json

# Checker power (properties/bench/power.py): on 200 buggy policies (single-knob changes of the real
# drivers and reference, random two- and three-knob changes), the fraction of the ground truth's
# violations (exhaustive search of tiny, cached in .cache/power) each engine and the default
# campaign find on small. Hours of CPU the first time.
bench-power: $(STAMP)
	$(BIN)/python -m properties.bench.power --json reports/bench-power.json

# Redis server for the shared example database and its tests (Debian package; needs root).
scale-setup:
	sh properties/runs/scale_setup.sh

# QEMU and the tools the real-kernel conformance test needs (Debian packages; needs root).
conform-setup:
	sh properties/conform/setup.sh

# Chromium, the headless browser the review's HTML test renders the report in (Debian package; needs root).
browser-setup:
	sh properties/report/browser_setup.sh

clean:
	rm -rf $(VENV) reports .pytest_cache
