# Set-up and the two everyday commands. `make run` and `make test` do all set-up on a fresh
# machine: a virtual environment in .venv with torch, robotcl and its dependencies.
# Bring your own torch build (CUDA or CPU) with: make setup TORCH="torch==2.5.1"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
# Meta-World pins mujoco==3.3.0: its tests run in a second environment, so the main suite keeps
# the newest MuJoCo and the extra is checked beside robotcl's other pins
MW_VENV ?= .venv-metaworld
MW_BIN := $(MW_VENV)/bin

.PHONY: setup run test lint bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,ray]"
	touch $@

$(MW_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(MW_VENV)
	$(MW_BIN)/python -c "import torch" 2>/dev/null || $(MW_BIN)/pip install -q "$(TORCH)"
	$(MW_BIN)/pip install -q -e ".[dev,metaworld]"
	touch $@

run: setup
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/robotcl run $(ARGS)

test: setup $(MW_VENV)/.installed
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(BIN)/pytest
	MUJOCO_GL=$${MUJOCO_GL:-egl} $(MW_BIN)/pytest -m metaworld tests/envs/test_metaworld.py

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/speed.py
