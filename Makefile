# The README names these targets; .ci/run calls `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test test-unit lint typecheck proto clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job: run an example workflow end to end on the embedded defaults.
EXAMPLE ?= examples/hello.yaml
run: $(STAMP)
	$(BIN)/conveyor run $(EXAMPLE)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

# lint-imports checks the layers: the contracts in pyproject.toml [tool.importlinter].
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

# Regenerate conveyor/v1 from proto/ (a test fails when it is stale).
proto: $(STAMP)
	$(BIN)/python -m rpc.codegen

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
