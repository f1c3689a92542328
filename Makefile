# make run   - set up from nothing (venv, packages, default dataset) and serve the dashboard
# make test  - the same setup, Chromium for the browser tests, then the whole suite
PYTHON  ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DATASET ?= mnist
PORT    ?= 8501
ADDRESS ?= 127.0.0.1
STAMP   := $(VENV)/.installed-stamp

.PHONY: run test test-stress setup data chromium bench clean-venv

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

data: setup
	$(BIN)/python -m cnn_core data prepare $(DATASET)

# ui/serve.py: Streamlit serves dashboard.py (through ui/gate.py, its token gate) on PORT and ADDRESS, answering
# only to the names it is served under; beyond loopback it prints the URL with the token (docs/SECURITY.md).
run: data
	$(BIN)/python -m ui.serve --port $(PORT) --address $(ADDRESS)

# Debian's chromium drives the browser tests (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Two passes on two workers (pytest-xdist, a file per worker at a time: its fixtures stay whole): the
# browser tests, apart from the training-heavy rest so that their pages answer as fast as a person's,
# then the rest.
test: data chromium
	$(BIN)/python -m pytest -q -m "browser and not stress" -n 2 --dist loadfile --durations=10 tests
	$(BIN)/python -m pytest -q -m "not browser and not stress" -n 2 --dist loadfile --durations=10 tests

test-stress: setup
	$(BIN)/python -m pytest -q -m stress tests

bench: data
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/predict_latency.py
	$(BIN)/python bench/inspect_latency.py
	$(BIN)/python bench/explain_latency.py
	$(BIN)/python bench/peak_flops.py
	$(BIN)/python bench/compare_open.py
	$(BIN)/python bench/page_vs_cli.py

clean-venv:
	rm -rf $(VENV)
