# The two commands a newcomer runs:
#   make demo   set up .venv/ and everything else, then run the main job on embedded defaults
#   make test   set up what the tests need, then run linters, type checks and the tests
# .ci/run calls `make test`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo demo-all test lint setup clean bench model-server dagger-e2e k8s-e2e

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# What the tests need on top: linters, type checker, pytest, the full MLflow (its server, UI),
# the Kubernetes client and the schemas its fake API server checks objects against.
$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[ui,serve,dagger,kubernetes,dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	scripts/demo.sh

# The demo plus the LLM-judged RAGAS evaluation (its only judge here is the 135M demo model).
demo-all: setup
	EVALHUB_DEMO_ALL=1 scripts/demo.sh

# The local model server's environment (llama-cpp-python builds from source once; cached).
model-server:
	$(PYTHON) scripts/model_server.py setup

lint: $(VENV)/.installed-test
	$(BIN)/ruff check evalhub tests bench scripts dagger
	$(BIN)/ruff format --check evalhub tests bench scripts dagger
	$(BIN)/mypy
	$(BIN)/mypy dagger/src  # the Dagger module, against the dagger-io SDK

test: lint model-server
	$(BIN)/pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/validate_bench.py
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/serve_bench.py

# The Kubernetes executor against a real cluster (KUBECONFIG=...; see docs/kubernetes.md).
k8s-e2e: $(VENV)/.installed-test
	$(BIN)/python scripts/k8s_e2e.py

clean:
	rm -rf $(VENV) .evalhub .pytest_cache .mypy_cache .ruff_cache

# The Dagger executor and module against a real engine (needs the Dagger CLI and a container
# runtime; never run where evalhub is built: no engine can run there). dagger/README.md.
dagger-e2e: $(VENV)/.installed-test
	EVALHUB_DAGGER_E2E=1 dagger run $(BIN)/pytest -p no:cacheprovider -m integration \
		tests/integration/test_dagger_engine.py
