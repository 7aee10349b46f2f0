# regguard: `make demo` (the main job) and `make test` (every test). Both install
# what they need: the locked Python environment (.venv, via uv) and the Debian
# packages docker-registry and skopeo.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(shell command -v uv 2>/dev/null)
STAMP  := $(VENV)/.synced

.PHONY: demo test test-unit test-integration lint bench docs deps system-deps clean

demo: deps
	$(BIN)/regguard demo --output regguard-report

test: deps lint
	$(BIN)/pytest -q -p no:cacheprovider

test-unit: deps
	$(BIN)/pytest -q -m "not integration"

test-integration: deps
	$(BIN)/pytest -q -m integration

lint: deps
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: deps
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/distribution_scale.py
	$(BIN)/python bench/ecr_scale.py
	$(BIN)/python bench/harbor_scale.py
	$(BIN)/python bench/gar_scale.py
	$(BIN)/python bench/acr_scale.py
	$(BIN)/python bench/dockerhub_scale.py
	$(BIN)/python bench/ghcr_scale.py
	$(BIN)/python bench/history_scale.py
	$(BIN)/python bench/estate_scale.py

# docs/rules.md is generated from the rule metadata; tests/unit/test_rules_doc.py fails when it is stale.
docs: $(STAMP)
	$(BIN)/regguard rules --format md > docs/rules.md.tmp && mv docs/rules.md.tmp docs/rules.md \
	  || { rm -f docs/rules.md.tmp; exit 1; }

deps: system-deps $(STAMP)

$(STAMP): pyproject.toml uv.lock
	@if [ -n "$(UV)" ]; then uv="$(UV)"; else \
	  $(PYTHON) -m uv --version >/dev/null 2>&1 || { echo "installing uv (Python package manager) with pip"; \
	    $(PYTHON) -m pip install --quiet --disable-pip-version-check uv; }; \
	  uv="$(PYTHON) -m uv"; fi; \
	$$uv sync --all-extras --frozen --quiet
	@touch $(STAMP)

system-deps:
	@missing=""; \
	command -v docker-registry >/dev/null 2>&1 || missing="$$missing docker-registry"; \
	command -v skopeo >/dev/null 2>&1 || missing="$$missing skopeo"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "regguard needs the Debian packages$$missing: run 'sudo apt-get install -y$$missing' and retry" >&2; \
	    exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) regguard-report .regguard .pytest_cache .mypy_cache .ruff_cache
