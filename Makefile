# Tongban: `make test` on a fresh machine installs everything the tests need and runs them;
# `make demo` builds a small demo network in var/demo.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= var/demo

.PHONY: install system-deps test lint typecheck imports pytest demo demo-stop demo-clean bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	scripts/system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

pytest: install system-deps
	$(BIN)/pytest

test: lint typecheck imports pytest

DEMO_PORT ?= 8401

demo: install
	-$(BIN)/tongban demo stop $(DEMO)
	rm -rf $(DEMO)
	$(BIN)/tongban demo init $(DEMO)
	$(BIN)/tongban demo start $(DEMO) --port $(DEMO_PORT)

demo-stop:
	$(BIN)/tongban demo stop $(DEMO)

demo-clean: demo-stop
	rm -rf $(DEMO)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
