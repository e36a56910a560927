"""Which MobileNet fits a board: flash, RAM and latency over a grid of alpha and input size.

Nothing is trained or converted: each grid point's int8 graph comes from
:func:`mnmcu.synth.synth_graph` (at any alpha and input size, on the grid or
not), and its flash and RAM from :func:`mnmcu.estimate.estimate`, the
estimator ``mnmcu analyze`` and report.html use for converted models:

* **AOT runtime**: the model's constants as the generator lays them out, the
  code of the kernels it calls and of the firmware (measured on QEMU builds),
  the embedded sample; RAM is the memory plan's arena (the plan the generated
  C uses, with the fast kernels' scratch), the stack reserve and the
  firmware's other data. Boards with a vendor framework add an estimate of it.
* **TFLM runtime**: the flatbuffer (estimated from the graph) and TFLite
  Micro's code (calibrated on a real TFLite Micro + CMSIS-NN build); RAM is
  the arena (activation peak, per-channel data and tensor structs, scaled to
  tflite-micro measurements, plus the generator's margin), the interpreter,
  stack and other data.
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

from mnmcu.analyze import count_params, layer_macs
from mnmcu.boards import Board
from mnmcu.errors import DoesNotFit, InvalidValue
from mnmcu.estimate import FRAMEWORK_OVERHEAD, framework_family
from mnmcu.estimate import estimate as estimate_footprint
from mnmcu.graph import Graph
from mnmcu.model.spec import MAX_CLASSES
from mnmcu.synth import SYNTH_ARCHS, synth_graph

ALPHAS = tuple(round(0.1 + 0.05 * i, 2) for i in range(19))
"""The alpha grid: 0.1 to 1.0 in steps of 0.05."""
SIZES = tuple(range(32, 225, 16))
"""The input-size grid: 32 to 224 pixels in steps of 16."""
SAFETY_MARGIN = 0.10
"""Headroom a recommended configuration keeps: its needs x 1.1 must fit."""


ESTIMATE_ERROR_PERCENT = 2.0
"""The AOT estimate's largest flash error against qemu-m4 builds that the tests allow
(tests/integration/test_fit_qemu.py; RAM is exact there)."""


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
        1.29,
        "mnmcu's own QEMU instruction count (mps2-an386, -icount shift=0), AOT DSP kernels: "
        "9.69 M instructions for the 7.49 M-MAC VWW model (mnmcu bench --board qemu-m4); "
        "instructions, used as cycles",
    ),
    ("aot", "helium"): LatencyFigure(
        0.66,
        "mnmcu's own QEMU instruction count (mps3-an547, -icount shift=0), AOT Helium "
        "kernels: 4.95 M instructions for the 7.49 M-MAC VWW model (mnmcu bench --board "
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


def predict(
    graph: Graph, board: Board, runtime: str, schedule: str = "layer"
) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(flash, RAM, flash parts, RAM parts) of ``graph``'s firmware for ``runtime`` on ``board``
    (``schedule``: the AOT runtime's).

    :func:`mnmcu.estimate.estimate`'s figures, as ``mnmcu analyze`` gives them.
    """
    est = estimate_footprint(graph, board, runtime, schedule=schedule)
    return est.flash_bytes, est.ram_bytes, est.flash_parts, est.ram_parts


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
    schedule: str = "layer"
    """The AOT schedule the figures plan for (``layer``, ``stream`` or ``auto``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "arch": self.arch,
            "runtime": self.runtime,
            "schedule": self.schedule,
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
    schedule: str = "layer",
) -> Candidate:
    """Predict flash, RAM and latency of one configuration on ``board``."""
    runtime = runtime or board.runtime.default
    graph = synth_graph(arch, alpha, size, classes)
    flash, ram, flash_parts, ram_parts = predict(graph, board, runtime, schedule)
    macs = sum(layer_macs(graph, op) for op in graph.ops)
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
        params=count_params(graph),
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
    single: bool = False,
    schedule: str = "layer",
) -> FitResult:
    """Search the grid for ``board``; raise :class:`DoesNotFit` when nothing fits.

    With ``single`` (one alpha and one size), the one configuration is the
    recommendation whether it fits or not (:func:`fit_config`). ``schedule``
    is the AOT runtime's (:data:`mnmcu.stream.SCHEDULE_CHOICES`): its memory
    plan gives each configuration's arena.
    """
    from mnmcu.emit.project import check_schedule

    runtime = runtime or board.runtime.default
    if runtime not in ("aot", "tflm"):
        raise InvalidValue(f"unknown runtime {runtime!r}", "use aot or tflm")
    check_schedule(schedule, runtime)
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
        candidate(board, arch, a, s, runtime, classes, limits, schedule)
        for s in sizes
        for a in alphas
    )
    fitting = [c for c in points if c.fits]
    if single and len(points) == 1:
        fitting = fitting or [points[0]]
    elif not fitting:
        smallest = min(points, key=lambda c: (c.macs, c.flash_bytes + c.ram_bytes))
        raise DoesNotFit(_nothing_fits(board, arch, runtime, smallest, limits))
    best = max(fitting, key=lambda c: (c.macs, -c.ram_bytes, -c.flash_bytes))
    return FitResult(
        board=board.id,
        arch=arch,
        runtime=runtime,
        classes=classes,
        limits=limits,
        candidates=points,
        front=pareto_front([c for c in fitting if c.fits], limits),
        recommended=best,
        size_model=size_model(board, runtime),
        calibration_error_percent=ESTIMATE_ERROR_PERCENT if runtime == "aot" else None,
        latency_source=figure.source if figure else None,
        clock_hz=board.cpu.clock_hz,
        clock=clock_text(board),
        schedule=schedule,
    )


def fit_config(
    board: Board,
    arch: str,
    alpha: float,
    size: int,
    runtime: str | None = None,
    max_latency_ms: float | None = None,
    ram_budget: int | None = None,
    flash_budget: int | None = None,
    classes: int = 2,
    margin: float = SAFETY_MARGIN,
    schedule: str = "layer",
) -> FitResult:
    """One configuration on ``board``: its figures and whether it fits (never raises for that).

    ``alpha`` and ``size`` need not lie on the grid; the figures are those
    ``mnmcu analyze --board`` gives for the converted model.
    """
    from mnmcu.model.spec import check_alpha, resolution_from

    check_alpha(alpha, arch)
    resolution_from(None, size)
    result = fit(
        board,
        arch,
        runtime,
        max_latency_ms,
        ram_budget,
        flash_budget,
        classes,
        alphas=(alpha,),
        sizes=(size,),
        margin=margin,
        single=True,
        schedule=schedule,
    )
    return result


def size_model(board: Board, runtime: str) -> str:
    """Where ``runtime``'s flash and RAM figures on ``board`` come from, in one sentence."""
    family = framework_family(board)
    extra = "" if family in ("qemu_mps", "host") else f"; plus {FRAMEWORK_OVERHEAD[family][2]}"
    if runtime == "aot":
        return (
            "mnmcu.estimate: the generator's constants, code sizes measured on QEMU builds "
            f"(boards/footprint/aot.json){extra}"
        )
    return (
        "mnmcu.estimate: flatbuffer estimate + TFLite Micro's code from a real TFLite Micro + "
        "CMSIS-NN build; arena estimate scaled to tflite-micro runtime measurements"
        f"{extra}"
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
    schedule: str = "layer",
) -> Candidate:
    """The recommended configuration, with ``alpha`` or ``size`` fixed when given.

    What ``mnmcu build --alpha auto --rho auto`` builds; a fixed value need
    not lie on the grid.
    """
    alphas = ALPHAS if alpha is None else (alpha,)
    sizes = SIZES if size is None else (size,)
    return fit(
        board, arch, runtime, classes=classes, alphas=alphas, sizes=sizes, schedule=schedule
    ).recommended
