# Set-up and the two everyday commands. `make run` and `make test` do all set-up on a fresh
# machine: a virtual environment in .venv with torch, robotcl and its dependencies.
# Bring your own torch build (CUDA or CPU) with: make setup TORCH="torch==2.5.1"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: setup run test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

run: setup
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/robotcl run $(ARGS)

test: setup
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/speed.py
