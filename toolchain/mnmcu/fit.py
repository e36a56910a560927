"""Which MobileNet fits a board: flash, RAM and latency over a grid of alpha and input size.

Nothing is trained or converted: each grid point's int8 graph comes from
:func:`mnmcu.synth.synth_graph`, and from it

* **AOT runtime**: RAM = the static memory plan's arena
  (:func:`mnmcu.plan.plan_memory`, the plan the generated C uses) + the
  stack reserve + the firmware's other data; flash = the model constants
  (int8 weights, int32 biases, an int32 multiplier and shift per output
  channel, a fixed amount per op) + the runtime's code + the embedded sample
  input. The constants are calibrated against real builds for qemu-m4
  (:data:`AOT_QEMU_CALIBRATION`); other boards add an estimate of their
  framework's code and RAM (:data:`FRAMEWORK_OVERHEAD`).
* **TFLM runtime**: RAM = :func:`mnmcu.analyze.analyze`'s arena estimate
  (activation peak + per-channel data + tensor structs) scaled by
  :data:`TFLM_ARENA_FACTOR` (calibrated on arenas the tflite-micro runtime
  measured) + the interpreter and stack; flash = the .tflite flatbuffer
  (estimated from its constants) + TFLite Micro's code. TFLite Micro cannot
  be compiled here, so flash is not calibrated by a build.
* **Latency**: for the AOT runtime, the instructions of every op predicted by
  :mod:`mnmcu.latency` (a cost per MAC, output, pixel and call of each op
  class, fitted to per-layer QEMU counts of the board's kernel set); for
  TFLite Micro, MACs x cycles per MAC (:data:`CYCLES_PER_MAC`, each figure
  with its source). Either is divided by the clock the firmware runs the
  core at (:func:`clock_text`: on STM32 boards the board file's clock plan,
  which the firmware sets up).

A configuration fits when flash and RAM, plus :data:`SAFETY_MARGIN` of each,
are within the board's limits (and the budgets given), and the latency, when
a limit is given, is within it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mnmcu.analyze import MAC_OPS, RUNTIME_CODE_BYTES, Analysis, analyze
from mnmcu.boards import Board
from mnmcu.errors import DoesNotFit, InvalidValue
from mnmcu.graph import Graph
from mnmcu.model.spec import MAX_CLASSES
from mnmcu.plan import plan_memory
from mnmcu.synth import SYNTH_ARCHS, synth_graph

ALPHAS = tuple(round(0.1 + 0.05 * i, 2) for i in range(19))
"""The alpha grid: 0.1 to 1.0 in steps of 0.05."""
SIZES = tuple(range(32, 225, 16))
"""The input-size grid: 32 to 224 pixels in steps of 16."""
SAFETY_MARGIN = 0.10
"""Headroom a recommended configuration keeps: its needs x 1.1 must fit."""


@dataclass(frozen=True)
class Calibration:
    """Size-model constants of the AOT firmware, and the builds they come from.

    ``runtime_code_bytes`` and ``model_bytes_per_op`` are per architecture:
    the kernels linked (PAD; ADD; HARD_SWISH and MUL) and the op parameters
    differ between them.
    """

    runtime_code_bytes: dict[str, int]
    model_bytes_per_op: dict[str, int]
    model_bytes_per_channel: int
    stack_bytes: int
    other_ram_bytes: int
    source: str
    max_error_percent: float


# From `pio run` builds of mnmcu's qemu-m4 firmware (AOT, portable kernels,
# arm-none-eabi-gcc -Os), measured with mnmcu.build.footprint on untrained
# models, (alpha, size): MobileNetV1 (0.1, 32), (0.5, 40), (1.0, 64),
# (0.3, 80), (0.75, 112); MobileNetV2 (0.35, 64); MobileNetV3-Small
# (0.75, 64). The model constants were exactly weights + biases + 8 B per
# output channel (int32 multiplier and shift) + a fixed amount per op: V1
# 2,744 B for 30 ops and 2,796 B for 31, V2 6,120 B for 65 ops, V3-Small
# 7,801 B for 106 ops. The rest of flash besides the embedded sample
# (kernels, startup, libc, the call sequence, the 16-byte alignment of the
# constant arrays) was 8,566 to 10,034 B for V1, 10,670 B for V2 and
# 12,365 B for V3-Small; the constants below round the largest up. RAM was
# arena + 8 KiB stack (the linker script's reserve) + 20 B. This model's
# predictions were within max_error_percent of those builds' flash (the
# largest error on the smallest model) and equal to their RAM.
# The serial protocol's device side, in every firmware since, adds 2,118 B of
# code and 582 B of RAM (mnmcu.build.footprint's protocol figures on
# qemu-m4, -Os), included below; with it the data and bss besides the arena
# measure 604 B.
AOT_QEMU_CALIBRATION = Calibration(
    runtime_code_bytes={"v1": 10_240 + 2_118, "v2": 10_752 + 2_118, "v3-small": 12_544 + 2_118},
    model_bytes_per_op={"v1": 92, "v2": 95, "v3-small": 74},
    model_bytes_per_channel=8,
    stack_bytes=8192,
    other_ram_bytes=604,
    source="pio builds of qemu-m4 AOT firmware (mnmcu.build.footprint), 7 models",
    max_error_percent=1.6,
)

# Code the fast kernels add over the portable ones (besides the protocol), by
# kernel set and architecture. DSP: the flash of qemu-m4 builds with the
# board's DSP kernels minus this size model's portable prediction, on the six
# points of tests/integration/test_fit_qemu.py: V1 4,972 to 8,435 B (the
# narrowest models link portable and fast kernels both), V2 7,062 B,
# V3-Small 7,734 B; the largest per architecture, rounded up (V2 takes V1's).
# Helium (qemu-m55) adds its 1x1 kernel and vector requantisation: about
# 700 B more kernel code on the VWW-shape model (mnmcu bench --board
# qemu-m55 against qemu-m4), 1,536 B here; an estimate, not calibrated on
# qemu-m55 builds. The fast element-wise kernels (MEAN; V3-Small's table
# lookups, MUL and ADD too) add, by mnmcu bench's kernel code with the
# untrained VWW shape, V2 0.35@96 and V3-Small 0.75@96: DSP 424, 424 and
# 1,164 B, Helium 606, 524 and 1,168 B, each rounded up to 512 B below.
FAST_KERNEL_CODE_BYTES: dict[str, dict[str, int]] = {
    "portable": {"v1": 0, "v2": 0, "v3-small": 0},
    "dsp": {"v1": 9_216, "v2": 9_216, "v3-small": 9_728},
    "helium": {"v1": 11_264, "v2": 11_264, "v3-small": 11_264},
}

# TFLite Micro's arena over mnmcu.analyze's estimate of it (activation peak +
# 8 B per channel + 64 B per tensor), as the tflite-micro runtime measured it
# (64-bit host, reference kernels): 1.01 to 1.22 on the calibration models
# above, 1.25, 1.02 and 1.04 on the three models of `mnmcu bench` (README).
# It is largest where Keras's padding stays a PAD op, whose input and output
# TFLite Micro's planner places apart. The largest, rounded up, scales the
# estimate so that it was never below a measurement.
TFLM_ARENA_FACTOR = 1.3

# What a board's framework adds to the bare-metal firmware, in bytes of flash
# and RAM (estimates: these frameworks cannot be built here).
FRAMEWORK_OVERHEAD: dict[str, tuple[int, int, str]] = {
    "qemu_mps": (0, 0, "none: the calibration builds are bare-metal qemu firmware"),
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
class LatencyFigure:
    """Cycles (or instructions) per MAC of a runtime on a core, with its source.

    With ``kernels`` (an AOT kernel set of :data:`mnmcu.latency.COEFFICIENTS`)
    the latency comes from the per-op model instead, and ``cycles_per_mac``
    is only that model's figure for the VWW shape, for reference.
    """

    cycles_per_mac: float
    source: str
    kernels: str | None = None


_AOT_PORTABLE = LatencyFigure(
    20.9,
    "mnmcu's own QEMU instruction count (mps2-an386, -icount shift=0), portable AOT kernels "
    "at -Os: 156.7 M instructions for the 7.49 M-MAC VWW model; instructions, used as cycles",
)
CYCLES_PER_MAC: dict[tuple[str, str], LatencyFigure] = {
    ("aot", "portable"): _AOT_PORTABLE,
    ("aot", "dsp"): LatencyFigure(
        1.98,
        "mnmcu's own QEMU instruction count (mps2-an386, -icount shift=0), AOT DSP kernels: "
        "14.86 M instructions for the 7.49 M-MAC VWW model (mnmcu bench --board qemu-m4); "
        "instructions, used as cycles",
    ),
    ("aot", "helium"): LatencyFigure(
        1.11,
        "mnmcu's own QEMU instruction count (mps3-an547, -icount shift=0), AOT Helium "
        "kernels: 8.30 M instructions for the 7.49 M-MAC VWW model (mnmcu bench --board "
        "qemu-m55); instructions, used as cycles",
    ),
    ("tflm", "cmsis-nn"): LatencyFigure(
        3.26,
        "QEMU instruction count (mps2-an386, -icount shift=0) of TFLite Micro with "
        "CMSIS-NN: 24.4 M instructions for the VWW model (docs/reference-figures.md); "
        "instructions, used as cycles (MLPerf Tiny's TFLM 2.3 entry measured 9.6 cycles/MAC "
        "on a Cortex-M4 in 2021)",
    ),
    ("tflm", "cmsis-nn-helium"): LatencyFigure(
        0.92,
        "QEMU instruction count (mps3-an547, -icount shift=0) of TFLite Micro with "
        "CMSIS-NN's Helium kernels: 6.87 M instructions for the VWW model; instructions, "
        "used as cycles",
    ),
    ("tflm", "esp-nn"): LatencyFigure(
        1.81,
        "published: Espressif ESP-NN, person detection (MobileNetV1 0.25, 96x96x1, "
        "7.16 M MACs) in 54 ms on an ESP32-S3 at 240 MHz",
    ),
}


def latency_figure(board: Board, runtime: str) -> LatencyFigure | None:
    """The cycles-per-MAC figure for ``runtime`` on ``board``, or None without one."""
    if runtime == "aot":
        from mnmcu.emit.aot import board_kernels
        from mnmcu.latency import coefficients

        kernels = board_kernels(board)
        entry = coefficients().get(kernels)
        if board.cpu.arch != "arm" or entry is None:
            return None
        base = CYCLES_PER_MAC[("aot", kernels)]
        source = f"per-op model fitted to {entry['source']}; instructions, used as cycles"
        return LatencyFigure(base.cycles_per_mac, source, kernels)
    kernels = board.runtime.kernels
    if kernels == "cmsis-nn" and board.cpu.helium:
        return CYCLES_PER_MAC[("tflm", "cmsis-nn-helium")]
    if kernels == "esp-nn" and board.cpu.core != "xtensa-lx7":
        return None  # the published figure is for the ESP32-S3's vector instructions
    return CYCLES_PER_MAC.get(("tflm", kernels))


@dataclass(frozen=True)
class Candidate:
    """One grid point: what it costs on the board."""

    arch: str
    alpha: float
    size: int
    macs: int
    params: int
    flash_bytes: int
    ram_bytes: int
    latency_ms: float | None
    fits: bool
    flash_parts: dict[str, int] = field(default_factory=dict)
    ram_parts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.arch} alpha {self.alpha:g} {self.size}x{self.size}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _family(board: Board) -> str:
    from mnmcu.emit.project import hal_family

    try:
        return hal_family(board)
    except InvalidValue:
        return "host"


def _sample_bytes(graph: Graph, classes: int) -> int:
    # the embedded int8 input, its expected int8 output and the class-name pointers
    return graph.input.elements + classes + 4 * classes


def _channels(graph: Graph) -> int:
    return sum(graph.tensor(op.outputs[0]).shape[-1] for op in graph.ops if op.opcode in MAC_OPS)


def _tflite_bytes(graph: Graph, weights: int, biases: int) -> int:
    """Flatbuffer size: constants, per-channel scales and zero points, tensor and op tables."""
    return weights + biases + 24 * _channels(graph) + 160 * len(graph.tensors) + 2048


def predict(
    graph: Graph,
    board: Board,
    runtime: str,
    classes: int,
    arch: str,
    analysis: Analysis | None = None,
) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(flash, RAM, flash parts, RAM parts) of ``graph``'s firmware for ``runtime`` on ``board``.

    ``arch`` (a MobileNet of :data:`mnmcu.synth.SYNTH_ARCHS`) picks the
    calibration constants of its kernels.
    """
    from mnmcu.emit.aot import board_kernels, inplace_ops, scratch_bound, weight_layout_bytes

    cal = AOT_QEMU_CALIBRATION
    code_extra, ram_extra, _ = FRAMEWORK_OVERHEAD[_family(board)]
    a = analysis or analyze(graph)
    sample = _sample_bytes(graph, classes)
    if runtime == "aot":
        kernels = board_kernels(board)
        arena = plan_memory(graph, scratch_bound(graph, kernels), inplace_ops(graph)).arena_bytes
        # Convolutions' weights and biases as their kernels take them (int16 pairs, padding).
        conv_layouts = sum(weight_layout_bytes(graph, op, kernels) for op in graph.ops)
        conv_model = sum(
            graph.tensor(i).nbytes
            for op in graph.ops
            if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D")
            for i in op.inputs[1:3]
            if i >= 0
        )
        flash_parts = {
            "weights": a.weight_bytes + a.bias_bytes - conv_model,
            "conv_weight_layouts": conv_layouts,
            "requantization": cal.model_bytes_per_channel * _channels(graph),
            "op_data": cal.model_bytes_per_op[arch] * len(graph.ops),
            "runtime_code": cal.runtime_code_bytes[arch],
            "fast_kernels": FAST_KERNEL_CODE_BYTES[kernels][arch],
            "sample": sample,
            "framework": code_extra,
        }
        ram_parts = {
            "arena": arena,
            "stack": cal.stack_bytes,
            "other": cal.other_ram_bytes,
            "framework": ram_extra,
        }
    else:
        est = a.estimates["tflm"]
        flash_parts = {
            "model_flatbuffer": _tflite_bytes(graph, a.weight_bytes, a.bias_bytes),
            "runtime_code": RUNTIME_CODE_BYTES["tflm"],
            "sample": sample,
            "framework": code_extra,
        }
        parts = est.ram_parts
        arena = parts["activations_estimated"] + parts["persistent_estimated"]
        ram_parts = {
            "arena_estimated": math.ceil(arena * TFLM_ARENA_FACTOR),
            "alignment_slack": parts["alignment_slack"],
            "interpreter_and_stack": parts["interpreter_and_stack"],
            "framework": ram_extra,
        }
    return sum(flash_parts.values()), sum(ram_parts.values()), flash_parts, ram_parts


@dataclass(frozen=True)
class Limits:
    """What a configuration must stay within (None: no limit)."""

    flash_bytes: int | None
    ram_bytes: int | None
    latency_ms: float | None
    margin: float = SAFETY_MARGIN

    def admits(self, flash: int, ram: int, latency_ms: float | None) -> bool:
        grow = 1.0 + self.margin
        if self.flash_bytes is not None and flash * grow > self.flash_bytes:
            return False
        if self.ram_bytes is not None and ram * grow > self.ram_bytes:
            return False
        if self.latency_ms is not None and (latency_ms is None or latency_ms > self.latency_ms):
            return False
        return True


@dataclass(frozen=True)
class FitResult:
    """Every grid point, the Pareto front of those that fit, and the recommendation."""

    board: str
    arch: str
    runtime: str
    classes: int
    limits: Limits
    candidates: tuple[Candidate, ...]
    front: tuple[Candidate, ...]
    recommended: Candidate
    size_model: str
    calibration_error_percent: float | None
    latency_source: str | None
    clock_hz: int | None = None
    clock: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "arch": self.arch,
            "runtime": self.runtime,
            "classes": self.classes,
            "limits": asdict(self.limits),
            "size_model": self.size_model,
            "calibration_error_percent": self.calibration_error_percent,
            "latency_source": self.latency_source,
            "clock_hz": self.clock_hz,
            "clock": self.clock,
            "recommended": self.recommended.to_dict(),
            "front": [c.to_dict() for c in self.front],
            "candidates": [c.to_dict() for c in self.candidates],
        }


def candidate(
    board: Board,
    arch: str,
    alpha: float,
    size: int,
    runtime: str | None = None,
    classes: int = 2,
    limits: Limits | None = None,
) -> Candidate:
    """Predict flash, RAM and latency of one configuration on ``board``."""
    runtime = runtime or board.runtime.default
    graph = synth_graph(arch, alpha, size, classes)
    analysis = analyze(graph)
    flash, ram, flash_parts, ram_parts = predict(graph, board, runtime, classes, arch, analysis)
    macs = analysis.macs
    figure = latency_figure(board, runtime)
    latency = None
    if figure is not None and board.cpu.clock_hz:
        cycles = macs * figure.cycles_per_mac
        if figure.kernels is not None:
            from mnmcu import latency as per_op

            table = per_op.kernel_coefficients(figure.kernels)
            if table is not None:
                cycles = per_op.predict(graph, table)
        latency = round(cycles / board.cpu.clock_hz * 1000, 3)
    limits = limits or board_limits(board, None, None, None)
    return Candidate(
        arch=arch,
        alpha=alpha,
        size=size,
        macs=macs,
        params=analysis.params,
        flash_bytes=flash,
        ram_bytes=ram,
        latency_ms=latency,
        fits=limits.admits(flash, ram, latency),
        flash_parts=flash_parts,
        ram_parts=ram_parts,
    )


def _smaller(limit: int | None, budget: int | None) -> int | None:
    if budget is None:
        return limit
    return budget if limit is None else min(limit, budget)


def board_limits(
    board: Board,
    ram_budget: int | None,
    flash_budget: int | None,
    max_latency_ms: float | None,
    margin: float = SAFETY_MARGIN,
) -> Limits:
    """The board's flash and RAM, lowered to the budgets given."""
    for name, value in (("--ram-budget", ram_budget), ("--flash-budget", flash_budget)):
        if value is not None and value <= 0:
            raise InvalidValue(f"{name} {value} is not a positive number of bytes", "e.g. 65536")
    if max_latency_ms is not None and not (math.isfinite(max_latency_ms) and max_latency_ms > 0):
        raise InvalidValue(
            f"--max-latency-ms {max_latency_ms:g} is not a positive finite number",
            "e.g. --max-latency-ms 200",
        )
    return Limits(
        flash_bytes=_smaller(board.memory.flash_bytes, flash_budget),
        ram_bytes=_smaller(board.memory.ram_bytes, ram_budget),
        latency_ms=max_latency_ms,
        margin=margin,
    )


def memory_use(c: Candidate, limits: Limits) -> float:
    """The share of the tighter memory limit a configuration uses (RAM bytes without limits)."""
    shares = [
        used / limit
        for used, limit in ((c.flash_bytes, limits.flash_bytes), (c.ram_bytes, limits.ram_bytes))
        if limit is not None
    ]
    return max(shares) if shares else float(c.ram_bytes)


def pareto_front(points: Sequence[Candidate], limits: Limits) -> tuple[Candidate, ...]:
    """Points no other point beats on MACs (more) and memory use (less), by MACs.

    Memory use is :func:`memory_use`: the share of the tighter of the flash
    and RAM limits.
    """
    use = {id(c): memory_use(c, limits) for c in points}

    def beats(p: Candidate, q: Candidate) -> bool:
        up, uq = use[id(p)], use[id(q)]
        return p.macs >= q.macs and up <= uq and (p.macs > q.macs or up < uq)

    front = [q for q in points if not any(beats(p, q) for p in points)]
    return tuple(sorted(front, key=lambda c: (c.macs, c.alpha, c.size)))


def fit(
    board: Board,
    arch: str = "v1",
    runtime: str | None = None,
    max_latency_ms: float | None = None,
    ram_budget: int | None = None,
    flash_budget: int | None = None,
    classes: int = 2,
    alphas: Sequence[float] = ALPHAS,
    sizes: Sequence[int] = SIZES,
    margin: float = SAFETY_MARGIN,
) -> FitResult:
    """Search the grid for ``board``; raise :class:`DoesNotFit` when nothing fits."""
    runtime = runtime or board.runtime.default
    if runtime not in ("aot", "tflm"):
        raise InvalidValue(f"unknown runtime {runtime!r}", "use aot or tflm")
    if arch not in SYNTH_ARCHS:
        raise InvalidValue(
            f"mnmcu fit has no size model for --arch {arch}",
            f"use --arch {' or '.join(SYNTH_ARCHS)}",
        )
    if not 2 <= classes <= MAX_CLASSES:
        raise InvalidValue(
            f"--classes {classes} is out of range", f"use 2 to {MAX_CLASSES} classes"
        )
    limits = board_limits(board, ram_budget, flash_budget, max_latency_ms, margin)
    figure = latency_figure(board, runtime)
    if max_latency_ms is not None and (figure is None or not board.cpu.clock_hz):
        raise InvalidValue(
            f"no cycles-per-MAC figure for the {runtime} runtime on {board.id} ({board.cpu.core})",
            "drop --max-latency-ms, or choose another runtime",
        )
    points = tuple(
        candidate(board, arch, a, s, runtime, classes, limits) for s in sizes for a in alphas
    )
    fitting = [c for c in points if c.fits]
    if not fitting:
        smallest = min(points, key=lambda c: (c.macs, c.flash_bytes + c.ram_bytes))
        raise DoesNotFit(_nothing_fits(board, arch, runtime, smallest, limits))
    best = max(fitting, key=lambda c: (c.macs, -c.ram_bytes, -c.flash_bytes))
    calibrated = runtime == "aot"
    return FitResult(
        board=board.id,
        arch=arch,
        runtime=runtime,
        classes=classes,
        limits=limits,
        candidates=points,
        front=pareto_front(fitting, limits),
        recommended=best,
        size_model=(
            f"calibrated on {AOT_QEMU_CALIBRATION.source}"
            if calibrated
            else "arena: estimate scaled to tflite-micro runtime measurements "
            f"(x{TFLM_ARENA_FACTOR}); flash: flatbuffer estimate + TFLite Micro's code, "
            "not calibrated by a build"
        )
        + (
            f"; plus {FRAMEWORK_OVERHEAD[_family(board)][2]}"
            if _family(board) not in ("qemu_mps", "host")
            else ""
        ),
        calibration_error_percent=AOT_QEMU_CALIBRATION.max_error_percent if calibrated else None,
        latency_source=figure.source if figure else None,
        clock_hz=board.cpu.clock_hz,
        clock=clock_text(board),
    )


def clock_text(board: Board) -> str:
    """The core clock latencies are computed at, and why the firmware runs at it."""
    hz = board.cpu.clock_hz
    if hz is None:
        return "no clock (host)"
    plan = board.clock
    if plan is None:
        return f"{hz / 1e6:g} MHz (cpu.clock_hz of the board file)"
    kind = "crystal" if plan.source == "hse_crystal" else "external clock"
    return (
        f"{hz / 1e6:g} MHz, set up by the firmware ({plan.hse_hz / 1e6:g} MHz HSE {kind}, PLL); "
        f"{plan.fallback_hz / 1e6:g} MHz if the board gives no external clock"
    )


def _nothing_fits(
    board: Board, arch: str, runtime: str, smallest: Candidate, limits: Limits
) -> str:
    need = (
        f"the smallest configuration ({smallest.label}) needs {smallest.flash_bytes:,} B flash "
        f"and {smallest.ram_bytes:,} B RAM"
    )
    if smallest.latency_ms is not None:
        need += f" and {smallest.latency_ms:g} ms"
    have = [
        f"{name} {value:,} B" if name != "latency" else f"latency {value:g} ms"
        for name, value in (
            ("flash", limits.flash_bytes),
            ("RAM", limits.ram_bytes),
            ("latency", limits.latency_ms),
        )
        if value is not None
    ]
    return (
        f"no {arch} configuration fits {board.id} with the {runtime} runtime: {need}, plus a "
        f"{limits.margin:.0%} margin, against {', '.join(have)}; raise the budgets, or try "
        "another --runtime, --arch or board"
    )


_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2}
_BYTE_UNITS["mib"] = 1024**2


MAX_BUDGET_BYTES = 1 << 40


def parse_bytes(name: str, text: str) -> int:
    """A byte count such as ``131072``, ``128K``, ``128KiB`` or ``0.5M`` (K = 1024)."""
    import re

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _BYTE_UNITS:
        raise InvalidValue(
            f"{name} {text!r} is not a byte count", "give bytes, e.g. 131072, 128K or 1M"
        )
    number = float(match.group(1)) * _BYTE_UNITS[unit]
    if not number < MAX_BUDGET_BYTES:
        raise InvalidValue(
            f"{name} {text!r} is too large", f"give at most {MAX_BUDGET_BYTES >> 40} TiB"
        )
    value = int(number)
    if value <= 0:
        raise InvalidValue(f"{name} {text!r} is not positive", "give bytes, e.g. 131072 or 128K")
    return value


def auto_config(
    board: Board,
    arch: str,
    alpha: float | None = None,
    size: int | None = None,
    runtime: str | None = None,
    classes: int = 2,
) -> Candidate:
    """The recommended configuration, with ``alpha`` or ``size`` fixed when given.

    What ``mnmcu build --alpha auto --rho auto`` builds; a fixed value need
    not lie on the grid.
    """
    alphas = ALPHAS if alpha is None else (alpha,)
    sizes = SIZES if size is None else (size,)
    return fit(board, arch, runtime, classes=classes, alphas=alphas, sizes=sizes).recommended
