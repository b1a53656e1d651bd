# ecgaudit: two commands do the whole set-up on a fresh machine.
#   make demo   create .venv, install, audit the bundled PTB-XL example, write an HTML report
#   make test   create/update .venv with dev deps (+ Chromium for browser tests), lint, run the suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
CONSTRAINTS := requirements/constraints.txt
DEMO_OUT ?= results/ptbxl-demo

.PHONY: demo test lint venv install install-dev system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[fast]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(CONSTRAINTS) requirements/nodeps.txt | $(BIN)/python
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	$(PIP) install --quiet --no-deps -r requirements/nodeps.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the Playwright browser tests (Playwright's own browser download
# cannot run on machines without general internet access).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@# PostgreSQL server (tests start a throwaway cluster) and Java for PySpark local mode.
	@PKGS=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
	  || PKGS="$$PKGS postgresql"; \
	command -v java >/dev/null 2>&1 || PKGS="$$PKGS openjdk-17-jre-headless"; \
	if [ -n "$$PKGS" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian$$PKGS for the warehouse engine tests"; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$PKGS >/dev/null; \
	fi

demo: $(VENV)/.installed
	$(BIN)/ecgaudit audit examples/ptbxl/predictions.csv \
	  --metadata examples/ptbxl/metadata.csv \
	  --config examples/ptbxl/audit.yaml \
	  --policy examples/ptbxl/policy.yaml --no-fail-on-policy --bootstrap 1000 \
	  --out $(DEMO_OUT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: $(VENV)/.installed-dev system-deps lint
	$(BIN)/python -m pytest -q -n auto --durations=15

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results build *.egg-info .pytest_cache .ruff_cache
