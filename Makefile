# Two entry points that do all set-up on a fresh machine:
#   make run   -> .venv + install + dvc repro (the whole pipeline on the built-in data)
#   make test  -> .venv + install + pytest
#   make lint  -> ruff check and ruff format --check (CI runs it before the tests)
# The install runs once; .venv/.install-stamp records it (delete it to reinstall).

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp

.PHONY: install run test lint bench exps docs docs-check ui ui-check ablations clean-venv debian-packages

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

# the recorded instruments of the default data (data.source: rendered) and the real recordings of the
# evaluation (realset: a recorded guitar in hydrogen-drumkits-effects); as root they are installed,
# otherwise the one command to run is printed
DEB_PACKAGES := fluid-soundfont-gm hydrogen-drumkits hydrogen-drumkits-effects libfluidsynth3
debian-packages:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done | tr '\n' ' '); \
	if [ -n "$${missing% }" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $$missing(Debian)"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "make run needs Debian packages: sudo apt-get install $$missing"; exit 1; fi; \
	fi

# stages run `python ...`: put the venv first on PATH so they find the package
run: $(STAMP) debian-packages
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# the tests in TEST_WORKERS processes (pytest-xdist), each test file in one of them (its fixtures built once):
# most of the suite's time is single-threaded (starting Python, DVC, MLflow), so two cores run two files
TEST_WORKERS ?= 2
test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

LINTED := audiosr stages tests benchmarks studies .ci
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# the benchmarks, each writing its table into docs/performance.md (--publish)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py --minutes 30 --publish
	$(BIN)/python benchmarks/bench_train.py --profiles small --publish

# the DVC experiments with the headline metrics, in 160 columns (the wider views: docs/tracking.md)
exps: $(STAMP)
	$(BIN)/dvc exp show --drop '.*' --keep 'Experiment|Created|model_lfr/|real/'

# the generated tables of docs/ rewritten from their committed sources; docs-check fails on a stale one
docs: $(STAMP)
	$(BIN)/python -m audiosr.docpages

docs-check: $(STAMP)
	$(BIN)/python -m audiosr.docpages --check

# the study's ablations (noise type, filter family) as queued DVC experiments, SEEDS training seeds each,
# then metrics/ablations.md with bootstrap intervals (and its table in docs/studies.md); ONLY="noise-tone ..." for a subset, JOBS to override
# how many run at once (default: the cores / 2)
SEEDS ?= 1
ablations: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m studies.ablations --seeds $(SEEDS) \
	  $(if $(ONLY),--only $(ONLY)) $(if $(JOBS),--jobs $(JOBS))
	$(BIN)/python -m audiosr.docpages

# the MLflow UI on the project's store, on loopback only (the address printed opens the runs sorted by
# model_lfr/lsd; a copied checkout's store is relocated first)
UI_PORT ?= 5000
ui: $(STAMP)
	@$(BIN)/python -m audiosr.tracking $(UI_PORT)
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" --host 127.0.0.1 --port $(UI_PORT)

# the MLflow UI in headless Chromium on the project's store: checks the pages used to compare the workspace
# with an ablation (UI_RUNS), saves their screenshots in docs/; needs Debian's chromium and chromium-driver
UI_RUNS ?= workspace noise-tone
ui-check: $(STAMP)
	$(BIN)/python -m tests.mlflow_browser --store mlflow.db --runs $(UI_RUNS) --screenshots docs

clean-venv:
	rm -rf $(VENV)
