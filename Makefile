# mnmcu: the two commands the README documents.
#   make demo   set everything up, then build an int8 MobileNet for the default board
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BOARD ?= qemu-m4
BIN := $(VENV)/bin

.PHONY: demo test setup system venv lint clean

demo: setup
	$(BIN)/mnmcu build --board $(BOARD) --alpha 0.25 --resolution 96 --out build/demo-$(BOARD) --force

test: setup
	$(BIN)/python -m pytest -q --durations=30

setup: system venv

system:
	@$(SHELL) scripts/install-system-packages.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check toolchain tests
	$(BIN)/mypy

clean:
	rm -rf build .pytest_cache
