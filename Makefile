# One entry point for people and CI. Every target sets up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-cluster test test-browser browser screenshots soak check lint typecheck docs bench bench-peers bench-report bench-page bench-cluster bench-dask bench-explore bench-dashboard bench-million clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,docs,bench,cluster,dask,web]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/troupe run examples/showcase.py --jobs .troupe/jobs.sqlite

# a front end and two workers in three processes on a local nats-server; one worker is SIGKILLed midway
demo-cluster: $(STAMP)
	$(BIN)/python examples/cluster/demo.py

# the browser tests (marked `browser`) run in test-browser, with Chromium installed first
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not browser"

# headless Chromium and its driver from Debian for the dashboard's browser tests (as root; once)
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "installing Debian's chromium and chromium-driver for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; \
	fi

# the dashboard page in a real browser (tests/web/test_browser*.py; `make test` leaves them out)
test-browser: $(STAMP) browser
	$(BIN)/python -m pytest -q -m browser tests/web

# the dashboard's screenshots for the docs (docs/images/dashboard*.png), taken by a browser test
screenshots: $(STAMP) browser
	TROUPE_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q -m browser tests/web/test_browser.py -k tree

# the fault suite (tests/faults) long, with a random seed it prints (not in CI)
soak: $(STAMP)
	$(BIN)/python -m pytest -q tests/faults --soak -o faulthandler_timeout=7200

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

check: lint typecheck docs test

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/service.py
	$(BIN)/python bench/jobs.py

# troupe against raw trio, asyncio, Pykka and Thespian (a few minutes)
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py

# measure the peers again and rewrite docs/performance.md and its chart
bench-report: $(STAMP)
	$(BIN)/python bench/peers.py --json bench/results/peers.json
	$(MAKE) bench-page

# rewrite docs/performance.md from bench/results/*.json, measuring nothing
bench-page: $(STAMP)
	$(BIN)/python bench/report.py bench/results/peers.json --million bench/results/million.json \
		--cluster bench/results/cluster.json --dask bench/results/dask.json \
		--explore bench/results/explore.json --dashboard bench/results/dashboard.json \
		--page docs/performance.md

# troupe.cluster across processes against raw nats-py, the asyncio bridge and Thespian (a few
# minutes; bench-report puts its figures on docs/performance.md)
bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py --json bench/results/cluster.json

# troupe's DaskExecutor against raw distributed on one LocalCluster (about 10 minutes; bench-report
# puts it on docs/performance.md)
bench-dask: $(STAMP)
	$(BIN)/python bench/dask_bench.py --json bench/results/dask.json

# troupe.testing.explore's schedules/s on a 5-actor, 50-message body (about 10 s; bench-report
# puts it on docs/performance.md)
bench-explore: $(STAMP)
	$(BIN)/python bench/explore.py --json bench/results/explore.json

# what a connected dashboard costs the core workloads, the page open in headless Chromium (about 2
# minutes; bench-report or bench-page puts it on docs/performance.md)
bench-dashboard: $(STAMP) browser
	$(BIN)/python bench/dashboard.py --json bench/results/dashboard.json

# a million idle actors in one process (about 3 GB; not run in CI)
bench-million: $(STAMP)
	$(BIN)/python bench/million.py --json bench/results/million.json

clean:
	rm -rf $(VENV) site build dist .mypy_cache .ruff_cache
