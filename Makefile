# studio-bootstrap: render, register and test SageMaker Studio lifecycle
# configurations that clone a CodeCommit repository from another account.
# `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The admin's bootstrap.toml when present, else the example.
CONFIG ?= $(if $(wildcard bootstrap.toml),bootstrap.toml,bootstrap.example.toml)
PROFILE ?=
REGION ?=
ENDPOINT_URL ?=
PYTEST_ARGS ?=

# Options passed through to the AWS commands when set on the command line.
AWS_OPTS := $(if $(PROFILE),--profile $(PROFILE)) $(if $(REGION),--region $(REGION)) \
	$(if $(ENDPOINT_URL),--endpoint-url $(ENDPOINT_URL))

.PHONY: help install render register-lifecycle plan status unregister iam doctor \
	stackset demo test lint fmt typecheck check bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamp is newer than pyproject.toml once its dependencies are installed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv with the tool and its test dependencies

render: $(VENV)/.installed ## Render the lifecycle scripts of CONFIG into lifecycle/
	$(BIN)/studio-bootstrap --config $(CONFIG) render

register-lifecycle: $(VENV)/.installed ## Create the lifecycle configurations and attach them
	$(BIN)/studio-bootstrap --config $(CONFIG) register $(AWS_OPTS)

plan: $(VENV)/.installed ## Show what register would change, without changing it
	$(BIN)/studio-bootstrap --config $(CONFIG) plan $(AWS_OPTS)

status: $(VENV)/.installed ## Show which version is attached where
	$(BIN)/studio-bootstrap --config $(CONFIG) status $(AWS_OPTS)

unregister: $(VENV)/.installed ## Detach and delete this tool's lifecycle configurations
	$(BIN)/studio-bootstrap --config $(CONFIG) unregister $(AWS_OPTS)

iam: $(VENV)/.installed ## Render the IAM CloudFormation templates into lifecycle/iam/
	$(BIN)/studio-bootstrap --config $(CONFIG) iam $(if $(ENDPOINT_URL),--endpoint-url $(ENDPOINT_URL))

doctor: $(VENV)/.installed ## Check the role chain and the registration in both accounts
	$(BIN)/studio-bootstrap --config $(CONFIG) doctor $(if $(ENDPOINT_URL),--endpoint-url $(ENDPOINT_URL))

stackset: $(VENV)/.installed ## Render the StackSet template of the domain accounts into lifecycle/stackset/
	$(BIN)/studio-bootstrap --config $(CONFIG) stackset

demo: $(VENV)/.installed ## Run the whole story on a local stack on 127.0.0.1
	$(BIN)/python -m bootstrap.sandbox.demo

test: $(VENV)/.installed ## Run the test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed ## Check formatting and lint rules (reads only)
	$(BIN)/ruff format --check bootstrap tests bench
	$(BIN)/ruff check bootstrap tests bench

fmt: $(VENV)/.installed ## Format and fix the code in place
	$(BIN)/ruff format bootstrap tests bench
	$(BIN)/ruff check --fix bootstrap tests bench

typecheck: $(VENV)/.installed ## Type-check the package
	$(BIN)/mypy

check: lint typecheck test ## Lint, type-check and test

# The bench extra comes on top of the dev one, only for make bench.
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed ## Measure the sandbox against the baseline into docs/benchmarks.md
	$(BIN)/python -m bench

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis
