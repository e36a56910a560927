"""Code sizes of the AOT firmware, measured from QEMU builds, for :mod:`mnmcu.estimate`.

Each model of :data:`CALIBRATION_SPECS` (untrained; together they call every
MobileNet kernel: PAD, same-shape ADD, tables, squeeze-and-excite MUL), and a
small CNN with the ops of models made elsewhere (max pooling, concatenation,
logistic, tanh, a 1x3 convolution: :func:`brought_ops_model`), is emitted and built for the
board with each of its kernel sets, and the ELF says where the code goes:

* every function's size and the functions it calls (``objdump -d``: ``bl``
  and ``b`` targets, and function pointers in its literal pool), hence the
  kernel functions the model's ops call and everything only they call, each
  counted once;
* the generated invoke function, a fixed part plus a size per call;
* the rest (start-up, board layer, application, protocol, C library,
  strings, alignment): the firmware's fixed part, the largest seen;
* the stack reserve and the data and bss besides the arena.

``python -m mnmcu.codesize --board qemu-m4 --write`` (dsp and portable
kernels) or ``--board qemu-m55`` (helium) measures and updates
``boards/footprint/aot.json``; the portable kernels' functions are added to
a fast set's table, since a convolution whose constants fail the fast
kernels' range check runs on them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnmcu.estimate import CODE_SIZES_FILE, model_constants
from mnmcu.paths import data_dir
from mnmcu.proc import run_command

CALIBRATION_SPECS = (("v1", 0.25, 45), ("v2", 0.35, 48), ("v3-small", 0.5, 48))
"""(arch, alpha, input size) of the untrained models built for the measurement."""
BROUGHT_OPS_MODEL = "brought_ops_32"
"""Name of the calibration model :func:`brought_ops_model` makes."""
BOARD_KERNELS = {"qemu-m4": ("dsp", "portable"), "qemu-m55": ("helium", "portable")}
"""The kernel sets measured on each board; the first is the board's own."""
TOOL_TIMEOUT_S = 60.0

_FUNCTION = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
# A literal pool word: a function's address with the Thumb bit is a function pointer.
_WORD = re.compile(r"^\s*[0-9a-f]+:\s+\.word\s+0x([0-9a-f]+)")
_BRANCH = re.compile(
    r"^\s*[0-9a-f]+:\s+b(?:l|eq|ne|cs|cc|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|hs|lo)?(?:\.w|\.n)?\s+"
    r"([0-9a-f]+) <([^>+]+)(?:\+0x[0-9a-f]+)?>"
)


@dataclass(frozen=True)
class Function:
    """A function of the ELF: name, size and the addresses it branches to."""

    name: str
    size: int
    callees: frozenset[int]


def call_graph(elf: Path) -> dict[int, Function]:
    """Address -> function, from the symbol table (sizes) and the disassembly (branches)."""
    symbols = run_command(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)], TOOL_TIMEOUT_S)
    sizes: dict[int, tuple[str, int]] = {}
    for line in symbols.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            sizes[int(parts[0], 16) & ~1] = (parts[3], int(parts[1], 16))
    listing = run_command(
        ["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)], TOOL_TIMEOUT_S
    )
    callees: dict[int, set[int]] = {}
    current: int | None = None
    for line in listing.stdout.decode().splitlines():
        head = _FUNCTION.match(line)
        if head:
            current = int(head.group(1), 16)
            callees.setdefault(current, set())
            continue
        branch = _BRANCH.match(line)
        word = _WORD.match(line)
        target = -1
        if branch:
            target = int(branch.group(1), 16)
        elif word and int(word.group(1), 16) & 1:
            target = int(word.group(1), 16) & ~1
        if current is not None and target != current and target in sizes:
            if not _inside(target, current, sizes):
                callees[current].add(target)
    return {
        address: Function(name, size, frozenset(callees.get(address, ())))
        for address, (name, size) in sizes.items()
    }


def _inside(target: int, current: int, sizes: Mapping[int, tuple[str, int]]) -> bool:
    size = sizes.get(current, ("", 0))[1]
    return current <= target < current + size


def _closure(graph: Mapping[int, Function], roots: set[int], stop: set[int]) -> set[int]:
    seen: set[int] = set()
    stack = [r for r in roots if r not in stop]
    while stack:
        address = stack.pop()
        if address in seen:
            continue
        seen.add(address)
        stack.extend(c for c in graph[address].callees if c not in seen and c not in stop)
    return seen


@dataclass
class Build:
    """What one calibration build measured."""

    model: str
    kernels: str
    runtime_code: int
    kernel_code: int
    invoke_code: int
    calls: int
    base: int
    stack: int
    other_ram: int
    model_weights: int
    model_predicted: int
    functions: dict[str, list[Any]] = field(default_factory=dict)


def measure_build(graph: Any, elf: Path, footprint: Any, kernels: str, model: str) -> Build:
    """Split one firmware's code into fixed part, kernels and invoke function."""
    from mnmcu.emit.aot import firmware_graph, scratch_bytes

    fw = firmware_graph(graph)
    scratch = scratch_bytes(fw, kernels)
    parts, roots, calls = model_constants(fw, kernels, scratch)
    functions = call_graph(elf)
    by_name: dict[str, list[int]] = {}
    for address, fn in functions.items():
        by_name.setdefault(fn.name, []).append(address)
    invoke = {a for a, fn in functions.items() if fn.name.startswith("mnmcu_model_")}
    missing = sorted(r for r in roots if r not in by_name)
    if missing:
        raise ValueError(f"{model}: kernel functions not in the ELF: {', '.join(missing)}")
    kernel_roots = {a for r in roots for a in by_name[r]}
    reached = _closure(functions, kernel_roots, invoke)
    base = _closure(functions, set(functions) - reached - invoke, invoke)
    only = reached - base
    table: dict[str, list[Any]] = {}
    for address in sorted(only):
        fn = functions[address]
        table[fn.name] = [
            fn.size,
            sorted(functions[c].name for c in fn.callees if c in only),
        ]
    kernel = sum(functions[a].size for a in only)
    invoke_code = sum(functions[a].size for a in invoke)
    return Build(
        model=model,
        kernels=kernels,
        runtime_code=footprint.runtime_code_bytes,
        kernel_code=kernel,
        invoke_code=invoke_code,
        calls=calls,
        base=footprint.runtime_code_bytes - kernel - invoke_code - parts["alignment"],
        stack=footprint.stack_bytes,
        other_ram=footprint.other_data_bss_bytes,
        model_weights=footprint.model_weights_bytes,
        model_predicted=sum(parts.values()) - parts["alignment"],
        functions=table,
    )


def brought_ops_model(seed: int = 0) -> bytes:
    """A 32x32x3 CNN with MAX_POOL_2D, CONCATENATION, TANH, LOGISTIC and a 1x3 convolution
    (the fast kernels' generic convolution), full int8."""
    import keras

    from mnmcu.bench import synthetic_images
    from mnmcu.quantize import convert_int8

    layers = keras.layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    a = layers.Conv2D(8, 1, activation="tanh")(x)
    b = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    c = layers.Conv2D(8, (1, 3), padding="same", activation="relu")(x)  # the generic kernel
    x = layers.MaxPooling2D(3, strides=2, padding="same")(layers.Concatenate()([a, b, c]))
    # the generic kernel again on a map under 36 pixels (its 8-bit variant)
    x = layers.Conv2D(8, (1, 3), padding="same", activation="relu")(layers.MaxPooling2D(2)(x))
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(4, activation="sigmoid")(x))
    return convert_int8(model, synthetic_images(32, 3, seed=seed))


def measure(board_id: str, work: Path) -> list[Build]:
    """Every calibration model built for ``board_id`` with each of its kernel sets."""
    from mnmcu.bench import convert_untrained
    from mnmcu.boards import get_board
    from mnmcu.build import footprint, pio_run
    from mnmcu.emit.project import emit_project
    from mnmcu.graph import load_graph
    from mnmcu.model.spec import ModelSpec

    board = get_board(board_id)
    builds = []
    models = [
        (f"{arch}_{alpha:g}_{size}", (arch, alpha, size)) for arch, alpha, size in CALIBRATION_SPECS
    ]
    for name, spec_values in [*models, (BROUGHT_OPS_MODEL, None)]:
        path = work / f"{name}.tflite"
        if not path.exists():
            if spec_values is None:
                path.write_bytes(brought_ops_model())
            else:
                arch, alpha, size = spec_values
                spec = ModelSpec(arch=arch, alpha=alpha, resolution=size, classes=2)
                path.write_bytes(convert_untrained(spec))
        for kernels in BOARD_KERNELS[board_id]:
            info = emit_project(
                path, board, work / f"{name}_{kernels}", kernels=kernels, force=True
            )
            elf = pio_run(info.project_dir, core_dir=work / "core")
            fp = footprint(elf, info)
            builds.append(measure_build(load_graph(path), elf, fp, kernels, name))
    return builds


def calibrate(builds: Sequence[Build], board_id: str) -> dict[str, dict[str, Any]]:
    """The ``aot.json`` entries of the kernel sets measured in ``builds``."""
    import numpy as np

    specs = ", ".join(f"{a} {al:g}@{s}" for a, al, s in CALIBRATION_SPECS)
    entries: dict[str, dict[str, Any]] = {}
    for kernels in BOARD_KERNELS[board_id]:
        every = [b for b in builds if b.kernels == kernels]
        functions: dict[str, list[Any]] = {}
        for b in [*every, *(b for b in builds if b.kernels == "portable")]:
            for name, item in b.functions.items():
                functions.setdefault(name, item)
        # the fixed part and the invoke function from the MobileNets alone
        mine = [b for b in every if b.model != BROUGHT_OPS_MODEL]
        calls = np.array([[1.0, b.calls] for b in mine])
        fixed, per_call = np.linalg.lstsq(calls, np.array([b.invoke_code for b in mine]))[0]
        entries[kernels] = {
            "source": (
                f"pio builds of {board_id} AOT firmware with the {kernels} kernels "
                f"(arm-none-eabi-gcc), untrained {specs} and a CNN with max pooling, "
                "concatenation, tanh, logistic and 1x3 convolutions; python -m mnmcu.codesize "
                f"--board {board_id} --write"
            ),
            "base_bytes": max(b.base for b in mine),
            "invoke_bytes": [round(float(fixed), 1), round(float(per_call), 2)],
            "stack_bytes": max(b.stack for b in mine),
            "other_ram_bytes": max(b.other_ram for b in mine),
            "functions": dict(sorted(functions.items())),
        }
    return entries


def write_sizes(entries: Mapping[str, dict[str, Any]], board_id: str) -> Path:
    """Merge ``entries`` into ``boards/footprint/aot.json`` (portable only from qemu-m4)."""
    path = data_dir("boards").joinpath(*CODE_SIZES_FILE)
    data = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    for kernels, entry in entries.items():
        if kernels == "portable" and board_id != "qemu-m4":
            continue
        data[kernels] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(data.items())), indent=1) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mnmcu.codesize --board qemu-m4``: build, measure, print (and write)."""
    import tempfile

    parser = argparse.ArgumentParser(
        prog="python -m mnmcu.codesize", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--board", required=True, choices=sorted(BOARD_KERNELS))
    parser.add_argument("--work", type=Path, help="keep models and builds here")
    parser.add_argument(
        "--write", action="store_true", help=f"update boards/{'/'.join(CODE_SIZES_FILE)}"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnmcu-codesize-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        builds = measure(args.board, work)
    for b in builds:
        row = {k: v for k, v in asdict(b).items() if k != "functions"}
        print(json.dumps(row))
    entries = calibrate(builds, args.board)
    summary = {k: {x: y for x, y in v.items() if x != "functions"} for k, v in entries.items()}
    print(json.dumps(summary, indent=1))
    if args.write:
        print(f"wrote {write_sizes(entries, args.board)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
