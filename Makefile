# mnmcu: the two commands the README documents.
#   make demo   set everything up, build an int8 MobileNet for the default board and, on a
#               QEMU board, run the firmware on held-out images over the serial link
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BOARD ?= qemu-m4
BIN := $(VENV)/bin
# Boards whose firmware `make demo` runs in QEMU after building it.
QEMU_BOARDS := qemu-m4 qemu-m7 qemu-m55
# Inputs the demo sends: all -128, all 127, then held-out images covering every class.
DEMO_INPUTS ?= 12

.PHONY: demo test setup system venv lint clean

demo: setup
	$(BIN)/mnmcu build --board $(BOARD) --alpha 0.25 --resolution 96 --out build/demo-$(BOARD) --force
ifneq ($(filter $(BOARD),$(QEMU_BOARDS)),)
	$(BIN)/mnmcu hil --board $(BOARD) --project build/demo-$(BOARD)/firmware --data builtin --count $(DEMO_INPUTS)
endif

# Two workers, one test file each at a time (module fixtures build once per file).
TEST_WORKERS ?= 2

test: setup
	$(BIN)/python -m pytest -q --durations=30 -n $(TEST_WORKERS) --dist loadfile

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
