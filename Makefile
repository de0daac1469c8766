# Tongban: `make test` on a fresh machine installs everything the tests need and runs them;
# `make demo` builds a small demo network in var/demo.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# ansible-lint pins its own ansible-core, so it lives in a venv of its own
LINT_VENV  := $(VENV)/lint
LINT_STAMP := $(LINT_VENV)/.installed
DEMO   ?= var/demo

.PHONY: install system-deps test lint typecheck imports pytest ansible-lint demo demo-stop demo-clean bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

$(LINT_STAMP):
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check 'ansible-lint>=26,<27'
	touch $(LINT_STAMP)

ansible-lint: $(LINT_STAMP)
	PATH="$(abspath $(LINT_VENV))/bin:$$PATH" $(LINT_VENV)/bin/ansible-lint --offline --profile production ansible/

system-deps:
	scripts/system-deps.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

# most tests wait on sockets, brokers and browsers: two workers, each taking whole test files
PYTEST_WORKERS ?= 2

pytest: install system-deps $(LINT_STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

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
