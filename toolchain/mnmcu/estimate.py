"""Flash and RAM of a model's firmware, before any compiler runs: the one estimator.

``mnmcu analyze``, ``mnmcu fit``, the analysis in ``build``'s report.json and
report.html all take their figures from :func:`estimate`, for a converted
model or for the graph :mod:`mnmcu.synth` derives from the architecture.

**AOT runtime.** Flash is

* the model's constants, op by op as :mod:`mnmcu.emit.aot` lays them out:
  int8 weights in the layout of the kernel that runs the op (the fast
  convolutions pad channels), int32 biases, per output channel an int32
  multiplier and shift (fully connected: a 64-bit mantissa and a 32-bit
  exponent), the 256-entry tables of element-wise ops, each op's parameter
  struct and the descriptor of its scratch buffer. With the model's weights
  the kernel choice is the generator's (:func:`mnmcu.emit.aot.fast_conv`);
  a graph without them (``fit``) takes the fast path wherever the shapes
  allow it;
* the code: the firmware's fixed part (start-up, board layer, application,
  serial protocol, C library, alignment), every kernel the model calls with
  the functions those call, each counted once, and the generated invoke
  function (a fixed part and a size per call). The sizes come from
  ``boards/footprint/aot.json``, measured from QEMU builds per kernel set by
  ``python -m mnmcu.codesize``;
* the embedded sample: input, expected output and the class-name table;
* on boards with a vendor framework, an estimate of its code (:data:`FRAMEWORK_OVERHEAD`).

RAM is the memory plan's arena (the plan the generated C uses, with the fast
kernels' scratch buffers), the linker script's stack reserve, the firmware's
other data and bss (mostly the serial protocol's buffers) and the
framework's RAM.

**TFLite Micro runtime.** Flash is the .tflite flatbuffer, TFLite Micro's
code with the firmware around it (:data:`TFLM_CODE_BYTES`, from a real
TFLite Micro + CMSIS-NN build), the sample and the framework. RAM is the
arena the generated project declares (:func:`mnmcu.emit.tflm.arena_size`:
measured by the tflite-micro runtime, or estimated from the activation peak,
per-channel data and tensor structs scaled by :data:`TFLM_ARENA_FACTOR`),
an estimate of the interpreter's objects, and the same stack, other data and
framework figures as above.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnmcu.boards import Board, hal_family
from mnmcu.errors import InvalidValue
from mnmcu.graph import ALIAS_OPS, DYNAMIC_SHAPE_OPS, Graph, Op
from mnmcu.paths import data_dir

CODE_SIZES_FILE = ("footprint", "aot.json")
"""Where the measured code sizes live, under the boards data folder."""

MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

# Bytes of each kernel's parameter struct (firmware/aot/include/mnmcu_kernels.h:
# mnmcu_dims_t 16 B, every other field 4 B on 32-bit targets).
PARAMS_BYTES = {
    "mnmcu_conv2d_params_t": 96,
    "mnmcu_depthwise_conv2d_params_t": 100,
    "mnmcu_fully_connected_params_t": 48,
    "mnmcu_mean_params_t": 32,
    "mnmcu_softmax_params_t": 20,
    "mnmcu_pad_params_t": 52,
    "mnmcu_pool2d_params_t": 64,
    "mnmcu_concat_params_t": 12,
    "mnmcu_add_params_t": 96,
    "mnmcu_add_tables_params_t": 24,
    "mnmcu_mul_params_t": 76,
    "mnmcu_mul_channels_params_t": 36,
    "mnmcu_lut_params_t": 4,
}
UNKNOWN_PARAMS_BYTES = 64
"""Parameter struct of a kernel not in :data:`PARAMS_BYTES` (an estimate)."""
SCRATCH_DESCRIPTOR_BYTES = 8
"""A ``mnmcu_buffer_t`` (pointer and size) naming an op's scratch buffer in the arena."""
ARRAY_ALIGN = 16
"""The generated const arrays' alignment (``MNMCU_ALIGN(16)``, :func:`mnmcu.emit.cgen.c_array`)."""
UNKNOWN_KERNEL_BYTES = 1024
"""Code of a kernel function ``aot.json`` has not measured (an estimate)."""

# TFLite Micro, from the build DESIGN.md and docs/reference-figures.md describe
# (tflite-micro 90b983c with CMSIS-NN, arm-none-eabi-gcc, Cortex-M4, the
# generated disco_f407vg project for the MLPerf Tiny VWW model linked with
# mnmcu's QEMU board layer): 66,484 B of .text and 100,936 B of flash besides
# the model's flatbuffer. Those 100,936 B hold the embedded VWW sample
# (96x96x3 input, 2 outputs, the class-name table: 27,658 B), counted apart
# here, so TFLite Micro, CMSIS-NN, the application, the protocol and the C
# library are 100,936 - 27,658 = 73,278 B. Models with op types VWW lacks
# (ADD, HARD_SWISH, MUL...) link more kernels; that is not calibrated.
TFLM_CODE_BYTES = 73_278
TFLM_BYTES_PER_TENSOR = 64
TFLM_INTERPRETER_BYTES = 2048
"""The MicroInterpreter, its op resolver and allocator outside the arena (an estimate)."""
# TFLite Micro's arena over the estimate (activation peak + 8 B per channel +
# 64 B per tensor), as the tflite-micro runtime measured it (64-bit host,
# reference kernels): 1.01 to 1.25 over ten models; the largest, rounded up,
# keeps the estimate at or above a measurement.
TFLM_ARENA_FACTOR = 1.3

# What a board's framework adds to the bare-metal firmware, in bytes of flash
# and RAM (estimates: these frameworks cannot be built here).
FRAMEWORK_OVERHEAD: dict[str, tuple[int, int, str]] = {
    "qemu_mps": (0, 0, "none: the calibration builds are bare-metal qemu firmware"),
    "stm32_baremetal": (
        2 * 1024,
        0,
        "estimate: the STM32 clock set-up and USART code beside the QEMU board layer",
    ),
    "stm32cube": (
        16 * 1024,
        4 * 1024,
        "estimate: STM32Cube HAL (RCC, GPIO, UART, startup) and the linker script's "
        "1 KiB stack + 512 B heap minimum, rounded up",
    ),
    "arduino": (
        96 * 1024,
        48 * 1024,
        "estimate: Arduino Mbed OS core (Nano 33 BLE) sketches start near 80 KB flash, 45 KB RAM",
    ),
    "esp32": (
        200 * 1024,
        32 * 1024,
        "estimate: ESP-IDF application image (FreeRTOS, drivers, logging) before any model",
    ),
    "host": (0, 0, "none: no limits"),
}


@dataclass(frozen=True)
class RuntimeEstimate:
    """Flash and RAM a runtime needs for the model, with what goes into each."""

    runtime: str
    flash_bytes: int
    ram_bytes: int
    flash_parts: dict[str, int] = field(default_factory=dict)
    ram_parts: dict[str, int] = field(default_factory=dict)
    source: str = ""
    schedule: dict[str, Any] | None = None
    """AOT: the schedule planned for (``schedule``: ``layer`` or ``stream``), its streamed
    ops, its arena and the layer schedule's arena."""


# --------------------------------------------------------------------------
# Measured code sizes
# --------------------------------------------------------------------------


@functools.cache
def code_sizes() -> dict[str, dict[str, Any]]:
    """Kernel set -> the sizes ``python -m mnmcu.codesize`` measured (``boards/footprint``)."""
    path = data_dir("boards").joinpath(*CODE_SIZES_FILE)
    data: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _entry(kernels: str) -> dict[str, Any]:
    table = code_sizes()
    entry = table.get(kernels) or table.get("dsp" if kernels == "helium" else "portable")
    if entry is None:
        raise InvalidValue(f"no measured code sizes for the {kernels} kernels")
    return entry


def kernel_code(functions: set[str], kernels: str) -> tuple[int, list[str]]:
    """Bytes of the kernel functions called and what they call, each once; the unmeasured."""
    table: dict[str, list[Any]] = _entry(kernels)["functions"]
    seen: set[str] = set()
    missing = []
    total = 0
    stack = sorted(functions)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in table:
            missing.append(name)
            total += UNKNOWN_KERNEL_BYTES
            continue
        size, callees = table[name]
        total += int(size)
        stack.extend(c for c in callees if c not in seen)
    return total, sorted(missing)


# --------------------------------------------------------------------------
# The AOT model's constants, op by op
# --------------------------------------------------------------------------


_PART_OF_ARRAY = (
    ("_filter", "weights"),
    ("_bias", "biases"),
    ("_multiplier", "requantization"),
    ("_shift", "requantization"),
    ("_scale_", "requantization"),
    ("_table", "tables"),
    ("_scaled", "tables"),
    ("_copy_bytes", "op_data"),
    ("_inputs", "op_data"),
)


@dataclass
class _Constants:
    parts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("weights", "biases", "requantization", "tables", "op_data", "alignment"), 0
        )
    )
    functions: set[str] = field(default_factory=set)
    calls: int = 0

    def array(self, name: str, nbytes: int) -> None:
        part = next((p for key, p in _PART_OF_ARRAY if key in name), "weights")
        self.parts[part] += nbytes
        self.parts["alignment"] += -nbytes % ARRAY_ALIGN

    def call(self, function: str, params_type: str | None) -> None:
        self.functions.add(function)
        if params_type is not None:
            self.parts["op_data"] += PARAMS_BYTES.get(params_type, UNKNOWN_PARAMS_BYTES)
        self.calls += 1


def _known(graph: Graph, index: int) -> bool:
    """Whether constant tensor ``index`` carries its values (a converted model, not synth)."""
    t = graph.tensor(index)
    return t.data is not None and np.asarray(t.data).size == t.elements


def known_constants(graph: Graph) -> bool:
    """Whether every constant of ``graph``'s weighted ops carries its values."""
    return all(
        _known(graph, i)
        for op in graph.ops
        if op.opcode in MAC_OPS
        for i in op.inputs[1:]
        if i >= 0
    )


def _lowered(c: _Constants, graph: Graph, kernels: str, scratch: dict[int, int]) -> None:
    """The constants and calls the generator writes for ``graph`` (its own lowering)."""
    from mnmcu.emit.aot import inplace_ops, lower_model
    from mnmcu.plan import plan_memory

    plan = plan_memory(graph, scratch, inplace_ops(graph))
    lowered = lower_model(graph, plan, kernels, text=False)
    for name, nbytes in lowered.array_bytes.items():
        c.array(name, nbytes)
    c.parts["op_data"] += SCRATCH_DESCRIPTOR_BYTES * lowered.scratch_descriptors
    for call in lowered.calls:
        if call.function:
            c.call(call.function, call.params_type)


def _conv(c: _Constants, graph: Graph, op: Op, kernels: str, scratch: dict[int, int]) -> None:
    from mnmcu.emit.aot import fast_conv_shape

    out = graph.tensor(op.outputs[0])
    channels = int(out.shape[-1])
    kind = "depthwise_conv2d" if op.opcode == "DEPTHWISE_CONV_2D" else "conv2d"
    c.array("_multiplier", 4 * channels)
    c.array("_shift", 4 * channels)
    fast = fast_conv_shape(graph, op, kernels)
    if fast is not None:
        c.array("_filter", fast.filter_bytes)
        c.array("_bias", fast.bias_bytes)
        if fast.takes_scratch and scratch.get(op.index, 0) > 0:
            c.parts["op_data"] += SCRATCH_DESCRIPTOR_BYTES
        c.call(fast.function, f"mnmcu_{kind}_params_t")
        return
    c.array("_filter", graph.tensor(op.inputs[1]).elements)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        c.array("_bias", graph.tensor(op.inputs[2]).nbytes)
    c.call(f"mnmcu_{kind}_s8_run", f"mnmcu_{kind}_params_t")


def _binary(c: _Constants, graph: Graph, op: Op, kernels: str) -> None:
    a, b, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    dsp = "_dsp" if kernels != "portable" else ""
    for position in (0, 1):
        t = (a, b)[position]
        if t.is_constant and t.dtype == "int8" and t.elements == 1:
            if (a, b)[1 - position].elements == out.elements:
                c.array("_table", 256)
                c.call(f"mnmcu_lut_s8{dsp}_run", "mnmcu_lut_params_t")
                return
            break
    for t in (a, b):
        if t.is_constant:
            c.array("_input", t.nbytes)
    if op.opcode == "ADD":
        if a.shape == b.shape == out.shape:
            c.array("_scaled1", 4 * 256)
            c.array("_scaled2", 4 * 256)
            c.call(f"mnmcu_add_s8_tables{dsp}_run", "mnmcu_add_tables_params_t")
        else:
            c.call("mnmcu_add_s8_run", "mnmcu_add_params_t")
        return
    full = (1,) * (4 - len(out.shape)) + tuple(out.shape)
    for f_t, v_t in ((a, b), (b, a)):
        v = (1,) * (4 - len(v_t.shape)) + tuple(v_t.shape)
        if tuple(f_t.shape) == tuple(out.shape) and v == (1, 1, 1, full[3]):
            c.call(f"mnmcu_mul_channels_s8{dsp}_run", "mnmcu_mul_channels_params_t")
            return
    c.call("mnmcu_mul_s8_run", "mnmcu_mul_params_t")


def _from_shapes(c: _Constants, graph: Graph, kernels: str, scratch: dict[int, int]) -> None:
    """What the generator would write for ``graph``, from shapes alone (no constant values).

    Every convolution is taken to pass :func:`mnmcu.emit.aot.fast_conv`'s range
    check, and every requantisation the fast one's (true of untrained models).
    """
    dsp = "_dsp" if kernels != "portable" else ""
    for op in graph.ops:
        code = op.opcode
        if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _conv(c, graph, op, kernels, scratch)
        elif code == "FULLY_CONNECTED":
            units = int(graph.tensor(op.outputs[0]).shape[-1])
            c.array("_filter", graph.tensor(op.inputs[1]).elements)
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                c.array("_bias", graph.tensor(op.inputs[2]).nbytes)
            c.array("_multiplier", 4 * units)  # TFLite Micro's arithmetic, the default
            c.array("_shift", 4 * units)
            c.call("mnmcu_fully_connected_s8_run", "mnmcu_fully_connected_params_t")
        elif code in ("ADD", "MUL"):
            _binary(c, graph, op, kernels)
        elif code in ("HARD_SWISH", "QUANTIZE", "RELU", "RELU6", "LOGISTIC", "TANH"):
            c.array("_table", 256)
            c.call(f"mnmcu_lut_s8{dsp}_run", "mnmcu_lut_params_t")
        elif code == "MEAN":
            # the fast MEAN, as the generator picks it where the scales allow (see _lowered)
            c.call(f"mnmcu_mean_s8{dsp}_run", "mnmcu_mean_params_t")
        elif code in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            kind = "avg" if code == "AVERAGE_POOL_2D" else "max"
            c.call(f"mnmcu_{kind}pool2d_s8_run", "mnmcu_pool2d_params_t")
        elif code == "CONCATENATION":
            c.array("_copy_bytes", 4 * len(op.inputs))
            c.array("_inputs", 4 * len(op.inputs))
            c.call("mnmcu_concat_s8_run", "mnmcu_concat_params_t")
        elif code in ALIAS_OPS or code in DYNAMIC_SHAPE_OPS:
            continue  # an alias, or folded at generation time: no code, no data
        else:
            name = code.lower()
            c.call(f"mnmcu_{name}_s8_run", f"mnmcu_{name}_params_t")


def model_constants(
    graph: Graph, kernels: str, scratch: dict[int, int]
) -> tuple[dict[str, int], set[str], int]:
    """The generated model's constants by kind, the kernel functions it calls, its calls.

    ``graph`` is the graph the firmware runs (:func:`mnmcu.emit.aot.firmware_graph`),
    ``scratch`` the scratch bytes per op of its memory plan. With the
    constants' values, this is the generator's own lowering; without (a
    graph from :mod:`mnmcu.synth`), the same sizes from shapes.
    """
    c = _Constants()
    if known_constants(graph):
        _lowered(c, graph, kernels, scratch)
    else:
        _from_shapes(c, graph, kernels, scratch)
    return dict(c.parts), c.functions, c.calls


# --------------------------------------------------------------------------
# Estimates
# --------------------------------------------------------------------------


def framework_family(board: Board | None) -> str:
    """The board layer of ``board``'s firmware (``host`` without a board or one)."""
    if board is None:
        return "host"
    try:
        return hal_family(board)
    except InvalidValue:
        return "host"


def sample_bytes(graph: Graph) -> int:
    """The embedded sample: int8 input, expected int8 output, one pointer per class name."""
    outputs = graph.output.elements
    return graph.input.elements + outputs + 4 * outputs


def _kernels(board: Board | None) -> str:
    from mnmcu.emit.aot import board_kernels

    return board_kernels(board) if board is not None else "portable"


def aot_estimate(
    graph: Graph,
    board: Board | None = None,
    arena_bytes: int | None = None,
    schedule: str = "layer",
) -> RuntimeEstimate:
    """Flash and RAM of the AOT firmware for ``graph`` on ``board`` (see the module text).

    Without a board: the portable kernels and no framework. ``arena_bytes``
    is the memory plan's arena when the caller has planned already.
    ``schedule`` is the AOT schedule (:data:`mnmcu.stream.SCHEDULE_CHOICES`):
    its plan gives the arena, and the stream schedule adds its tables and
    code (:func:`mnmcu.stream.stream_footprint`).
    """
    from mnmcu.emit.aot import firmware_graph, scratch_bound, scratch_bytes
    from mnmcu.stream import schedule_of, schedule_plan, stream_footprint

    kernels = _kernels(board)
    known = known_constants(graph)
    fw = firmware_graph(graph) if known else graph
    scratch = scratch_bytes(fw, kernels) if known else scratch_bound(fw, kernels)
    plan = schedule_plan(fw, kernels, schedule, bound=not known)
    stream_flash, stream_ram = stream_footprint(plan)
    if arena_bytes is None:
        arena_bytes = plan.arena_bytes
    parts, functions, calls = model_constants(fw, kernels, scratch)
    entry = _entry(kernels)
    kernel_bytes, missing = kernel_code(functions, kernels)
    fixed, per_call = entry["invoke_bytes"]
    code_extra, ram_extra, framework = FRAMEWORK_OVERHEAD[framework_family(board)]
    flash_parts = {
        **parts,
        "firmware_code": int(entry["base_bytes"]),
        "kernel_code": kernel_bytes,
        "invoke_code": round(fixed + per_call * calls),
        "sample": sample_bytes(graph),
        "framework": code_extra,
    }
    ram_parts = {
        "arena": max(arena_bytes, 16),
        "stack": int(entry["stack_bytes"]),
        "other": int(entry["other_ram_bytes"]),
        "framework": ram_extra,
    }
    if stream_flash:
        flash_parts["stream_schedule"] = stream_flash
        ram_parts["stream_schedule"] = stream_ram
    source = f"{kernels} kernels: {entry['source']}; framework: {framework}"
    if missing:
        source += f"; not measured, {UNKNOWN_KERNEL_BYTES} B each assumed: {', '.join(missing)}"
    return RuntimeEstimate(
        "aot",
        sum(flash_parts.values()),
        sum(ram_parts.values()),
        flash_parts,
        ram_parts,
        source,
        {
            "schedule": schedule_of(plan),
            "streamed_ops": plan.streamed,
            "arena_bytes": plan.arena_bytes,
            "layer_arena_bytes": plan.layer_arena_bytes,
        },
    )


def _activation_peak(graph: Graph) -> int:
    from mnmcu.plan import tensor_lifetimes

    life = tensor_lifetimes(graph)
    best = 0
    for op in graph.ops:
        live = sum(graph.tensor(t).nbytes for t, (a, b) in life.items() if a <= op.index <= b)
        best = max(best, live)
    return best


def tflite_bytes_estimate(graph: Graph) -> int:
    """A flatbuffer's size from its graph: constants, per-channel data, tensor and op tables."""
    constants = sum(t.nbytes for t in graph.tensors if t.is_constant)
    channels = sum(
        graph.tensor(op.outputs[0]).shape[-1] for op in graph.ops if op.opcode in MAC_OPS
    )
    return constants + 24 * channels + 160 * len(graph.tensors) + 2048


def tflm_estimate(
    graph: Graph, board: Board | None = None, tflm_arena: int | None = None
) -> RuntimeEstimate:
    """Flash and RAM of the TFLite Micro firmware for ``graph`` (see the module text).

    ``tflm_arena`` is the arena the tflite-micro runtime measured; without it
    the arena is estimated.
    """
    from mnmcu.boards import get_board
    from mnmcu.emit.tflm import arena_size
    from mnmcu.reference import TflmRun

    if tflm_arena:
        arena_key, base = "arena_measured", tflm_arena
    else:
        channels = sum(
            graph.tensor(op.outputs[0]).shape[-1] for op in graph.ops if op.opcode in MAC_OPS
        )
        structs = 8 * channels + TFLM_BYTES_PER_TENSOR * len(graph.tensors)
        arena_key = "arena_estimated"
        base = math.ceil((_activation_peak(graph) + structs) * TFLM_ARENA_FACTOR)
    declared = arena_size(graph, board or get_board("host"), TflmRun(None, base, 0, 0))
    entry = _entry(_kernels(board))
    code_extra, ram_extra, framework = FRAMEWORK_OVERHEAD[framework_family(board)]
    flatbuffer = graph.size_bytes or tflite_bytes_estimate(graph)
    flash_parts = {
        "model_flatbuffer": flatbuffer,
        "runtime_code": TFLM_CODE_BYTES,
        "sample": sample_bytes(graph),
        "framework": code_extra,
    }
    ram_parts = {
        arena_key: base,
        "arena_margin": declared.arena_bytes - base,
        "interpreter": TFLM_INTERPRETER_BYTES,
        "stack": int(entry["stack_bytes"]),
        "other": int(entry["other_ram_bytes"]),
        "framework": ram_extra,
    }
    source = (
        "code: a TFLite Micro + CMSIS-NN build for Cortex-M4 (VWW, 100,936 B of flash besides "
        "the model); arena: "
        + (
            "measured by the tflite-micro runtime"
            if tflm_arena
            else f"estimate x{TFLM_ARENA_FACTOR} (calibrated on tflite-micro measurements)"
        )
        + f" + the generator's margin; framework: {framework}"
    )
    return RuntimeEstimate(
        "tflm",
        sum(flash_parts.values()),
        sum(ram_parts.values()),
        flash_parts,
        ram_parts,
        source,
    )


def estimate(
    graph: Graph,
    board: Board | None,
    runtime: str,
    tflm_arena: int | None = None,
    aot_arena: int | None = None,
    schedule: str = "layer",
) -> RuntimeEstimate:
    """The flash and RAM of ``runtime`` (``aot`` or ``tflm``) for ``graph`` on ``board``;
    ``schedule`` is the AOT runtime's (see :func:`aot_estimate`)."""
    if runtime == "aot":
        return aot_estimate(graph, board, aot_arena, schedule)
    if runtime == "tflm":
        return tflm_estimate(graph, board, tflm_arena)
    raise InvalidValue(f"unknown runtime {runtime!r}", "use aot or tflm")


def estimate_against(est: RuntimeEstimate, flash_bytes: int, ram_bytes: int) -> dict[str, Any]:
    """The estimate beside a build's measured flash and RAM, with the differences."""
    return {
        "runtime": est.runtime,
        "flash_estimated": est.flash_bytes,
        "flash_measured": flash_bytes,
        "flash_error_percent": round(100.0 * (est.flash_bytes - flash_bytes) / flash_bytes, 2),
        "ram_estimated": est.ram_bytes,
        "ram_measured": ram_bytes,
        "ram_difference_bytes": est.ram_bytes - ram_bytes,
    }
