"""Speed benchmark in QEMU: the AOT runtime with portable and with fast kernels.

:func:`kernel_bench` takes a model (by default it converts the VWW-shape
model: MobileNetV1 alpha 0.25, 96x96x3, 2 classes, untrained), builds it for
one QEMU board twice, with the portable kernels and with the fastest kernel
set the board's core has, each with per-layer timing (``MNMCU_PROFILE``),
and runs both in QEMU with ``-icount shift=0`` in the same call. Figures are
guest instruction counts, not cycles: QEMU is not cycle accurate, and one
instruction may take several cycles on the chip.

Per layer it also says which kernel each convolution runs on and how many of
its output channels are computed: a trained model's constant channels
(:mod:`mnmcu.prune`) are left out or written from a constant, so the MACs the
firmware computes can be fewer than the model's; both are reported, and
instructions per MAC always divide by the model's MACs.

With ``compare_tflm`` a third firmware runs the same model on TensorFlow Lite
Micro with CMSIS-NN (the project ``mnmcu emit --runtime tflm`` writes, its
library generated from a tflite-micro checkout: ``tflm_sources`` or
``$MNMCU_TFLM_SOURCES``), measured the same way; its arena is what TFLM's
``arena_used_bytes()`` reports on the device. That project lives in
mnmcu's cache (:func:`tflm_bench_project`), so TFLM is compiled once per
board, not once per run.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnmcu.boards import Board
from mnmcu.errors import InvalidValue, MnmcuError
from mnmcu.log import NullProgress, Progress
from mnmcu.model.spec import ModelSpec
from mnmcu.prune import Pruning

VWW_SPEC = ModelSpec(arch="v1", alpha=0.25, resolution=96, classes=2)
"""MLPerf Tiny Visual Wake Words shape: MobileNetV1 alpha 0.25, 96x96x3, 2 classes."""

_LAYER_LINE = re.compile(
    r"^mnmcu: layer=(?P<index>\d+) op=(?P<op>\S+) ticks=\d+ icount_insns=(?P<insns>\d+)"
)
# Global kernel entry points, and the files whose local functions are kernels.
_KERNEL_SYMBOL = re.compile(r"^mnmcu_\w+_s8(_dsp|_mve)?_(run|get_buffer_size)$")
_KERNEL_FILE = re.compile(
    r"^mnmcu_(conv|conv_dsp|conv_mve|depthwise_dsp|pool|pad|softmax|elementwise"
    r"|elementwise_dsp"
    r"|fully_connected|common)\.c$"
)


_TFLM_ARENA_LINE = re.compile(r"arena_used_bytes (?P<used>\d+) of (?P<total>\d+)")


class KernelMismatch(MnmcuError):
    """A firmware's output differs from TFLite's reference kernels."""


@dataclass(frozen=True)
class LayerCount:
    """Guest instructions of one op, from the firmware's per-layer lines."""

    index: int
    op: str
    instructions: int


@dataclass(frozen=True)
class LayerKernel:
    """What the generated C does for one op: its kernel and, for convolutions, channels."""

    index: int
    op: str
    kernel: str
    channels: int = 0
    computed_channels: int = 0
    constant_channels: int = 0


@dataclass(frozen=True)
class KernelRun:
    """One firmware build (one kernel set) run once in QEMU."""

    kernels: str
    instructions: int
    layers: tuple[LayerCount, ...]
    runtime_code_bytes: int
    kernel_code_bytes: int
    model_weights_bytes: int
    output: tuple[int, ...]
    ok: bool
    kernels_used: tuple[LayerKernel, ...] = ()
    arena_bytes: int = 0
    schedule: str = "layer"
    """The AOT schedule (:mod:`mnmcu.stream`); ``streamed_ops`` ran row by row."""
    streamed_ops: int = 0


@dataclass(frozen=True)
class TflmRun:
    """The same model on TensorFlow Lite Micro with CMSIS-NN, run once in QEMU.

    ``ok`` says whether its output equals LiteRT's (the AOT firmware's
    reference); TFLM may round a few ops differently, which is reported,
    not raised. ``arena_used_bytes`` is TFLM's own figure on the device.
    """

    instructions: int
    arena_used_bytes: int
    arena_bytes: int
    runtime_code_bytes: int
    model_weights_bytes: int
    output: tuple[int, ...]
    ok: bool


@dataclass(frozen=True)
class KernelBench:
    """Portable and fast kernels on one board, measured in one call."""

    board: str
    model: str
    macs: int
    runs: tuple[KernelRun, ...] = field(default=())
    computed_macs: int = 0
    dropped_channels: int = 0
    model_path: str = ""
    tflm: TflmRun | None = None
    streamed: tuple[KernelRun, ...] = ()
    """The same kernel sets as ``runs`` with the stream schedule (``schedule`` asked)."""

    @property
    def portable(self) -> KernelRun:
        return self.runs[0]

    @property
    def fast(self) -> KernelRun:
        return self.runs[-1]

    @property
    def ratio(self) -> float:
        """Instructions of the fast kernels over the portable ones."""
        return self.fast.instructions / self.portable.instructions

    def per_mac(self, run: KernelRun) -> float:
        """Instructions per multiply-accumulate of ``run``."""
        return run.instructions / self.macs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "board": self.board,
            "model": self.model,
            "model_path": self.model_path,
            "macs": self.macs,
            "computed_macs": self.computed_macs,
            "dropped_channels": self.dropped_channels,
            "instructions_per_op_type": {r.kernels: per_op_type(r) for r in self.runs},
            "units": "guest instructions (QEMU -icount shift=0), not cycles",
            "ratio_fast_over_portable": round(self.ratio, 4),
            "runs": [
                {**asdict(r), "instructions_per_mac": round(self.per_mac(r), 4)} for r in self.runs
            ],
            "schedules": [self._schedule_row(layer, stream) for layer, stream in self.pairs()],
            "tflm": None
            if self.tflm is None
            else {
                **asdict(self.tflm),
                "kernels": "tflm+cmsis-nn",
                "instructions_per_mac": round(self.tflm.instructions / self.macs, 4),
                "ratio_tflm_over_fast": round(self.tflm.instructions / self.fast.instructions, 4),
            },
        }

    def pairs(self) -> list[tuple[KernelRun, KernelRun]]:
        """(layer run, stream run) per kernel set, when the stream schedule was measured."""
        return list(zip(self.runs, self.streamed, strict=True)) if self.streamed else []

    def _schedule_row(self, layer: KernelRun, stream: KernelRun) -> dict[str, Any]:
        row: dict[str, Any] = {
            "kernels": layer.kernels,
            "schedule": stream.schedule,
            "streamed_ops": stream.streamed_ops,
            "instructions_layer": layer.instructions,
            "instructions_stream": stream.instructions,
            "instructions_stream_over_layer": round(stream.instructions / layer.instructions, 4),
            "arena_bytes_layer": layer.arena_bytes,
            "arena_bytes_stream": stream.arena_bytes,
            "arena_stream_over_layer": round(stream.arena_bytes / layer.arena_bytes, 4),
        }
        if self.tflm is not None:
            row["tflm_arena_used_bytes"] = self.tflm.arena_used_bytes
            row["arena_stream_over_tflm"] = round(
                stream.arena_bytes / self.tflm.arena_used_bytes, 4
            )
        return row


def per_op_type(run: KernelRun) -> dict[str, int]:
    """Instructions of ``run`` summed per op type, largest first."""
    totals: dict[str, int] = {}
    for layer in run.layers:
        totals[layer.op] = totals.get(layer.op, 0) + layer.instructions
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def layer_kernels(tflite: Path, kernels: str) -> tuple[LayerKernel, ...]:
    """Per op of the generated C: its kernel, and for convolutions the channels computed."""
    from mnmcu.emit.aot import fast_conv, firmware_plan, lower
    from mnmcu.graph import load_graph
    from mnmcu.prune import prune_constant_channels

    model = load_graph(tflite)
    pruning = prune_constant_channels(model)
    graph = pruning.graph
    calls, _ = lower(graph, firmware_plan(graph, kernels), kernels)
    functions = {call.index: call.function for call in calls if call.function}
    rows = []
    for op in graph.ops:
        if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            function = functions.get(op.index)
            if function is not None:
                name = function.removeprefix("mnmcu_").removesuffix("_run")
                rows.append(LayerKernel(op.index, op.opcode, name))
            continue
        fast = fast_conv(graph, op, kernels)
        name = fast.function if fast is not None else f"mnmcu_{op.opcode.lower()}_s8_run"
        out = op.outputs[0]
        rows.append(
            LayerKernel(
                op.index,
                op.opcode,
                name.removeprefix("mnmcu_").removesuffix("_run"),
                channels=int(model.tensor(out).shape[-1]),
                computed_channels=int(graph.tensor(out).shape[-1])
                - len(pruning.stored.get(out, ())),
                constant_channels=len(pruning.stored.get(out, ())),
            )
        )
    return tuple(rows)


def parse_layer_lines(lines: Sequence[str]) -> tuple[LayerCount, ...]:
    """The ``mnmcu: layer=... icount_insns=...`` lines of a profiled firmware."""
    layers = []
    for line in lines:
        match = _LAYER_LINE.match(line)
        if match:
            layers.append(LayerCount(int(match["index"]), match["op"], int(match["insns"])))
    return tuple(layers)


def kernel_code_bytes(elf_path: Path) -> int:
    """Bytes of the AOT kernels' functions in ``elf_path`` (from its symbol table)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    total = 0
    with open(elf_path, "rb") as handle:
        symtab = ELFFile(handle).get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return 0
        current = ""
        for sym in symtab.iter_symbols():
            kind = sym["st_info"]["type"]
            if kind == "STT_FILE":
                current = Path(sym.name).name
                continue
            if kind != "STT_FUNC" or not sym["st_size"]:
                continue
            local = sym["st_info"]["bind"] == "STB_LOCAL"
            if (local and _KERNEL_FILE.match(current)) or (
                not local and _KERNEL_SYMBOL.match(sym.name)
            ):
                total += int(sym["st_size"])
    return total


def _run(
    tflite: Path, board: Board, kernels: str, work: Path, core_dir: Path, schedule: str = "layer"
) -> KernelRun:
    from mnmcu.build import footprint, pio_run
    from mnmcu.emit.project import emit_project
    from mnmcu.sim import run_qemu

    info = emit_project(
        tflite, board, work / f"{kernels}-{schedule}", kernels=kernels, profile=True,
        schedule=schedule,
    )  # fmt: skip
    elf = pio_run(info.project_dir, core_dir=core_dir)
    run = run_qemu(board, elf, icount=True)
    if run.instructions is None:
        raise InvalidValue(f"the {kernels} firmware reported no instruction count: {run.boot_line}")
    if not run.ok:
        raise KernelMismatch(
            f"the {kernels} kernels' output {list(run.output)} differs from TFLite's reference "
            f"{list(info.expected_output)} on {board.id}",
            f"see {run.log_path}",
        )
    fp = footprint(elf, info)
    return KernelRun(
        kernels_used=layer_kernels(tflite, kernels),
        kernels=kernels,
        instructions=run.instructions,
        layers=parse_layer_lines(run.lines),
        runtime_code_bytes=fp.runtime_code_bytes,
        kernel_code_bytes=kernel_code_bytes(elf),
        model_weights_bytes=fp.model_weights_bytes,
        output=run.output,
        ok=run.ok,
        arena_bytes=fp.arena_bytes,
        schedule=info.schedule,
        streamed_ops=info.streamed_ops,
    )


def tflm_bench_project(board: Board) -> Path:
    """Where ``bench --compare tflm`` keeps the TFLite Micro project for ``board``."""
    from mnmcu.paths import cache_dir

    return cache_dir("bench-tflm") / board.id


def _run_tflm(tflite: Path, board: Board, sources: Path | None) -> TflmRun:
    from mnmcu.build import footprint, pio_run
    from mnmcu.emit.project import PROJECT_FILE, emit_project
    from mnmcu.outdir import output_folder
    from mnmcu.sim import run_qemu

    # One project per board, kept between runs: PlatformIO compiles TFLM's ~300 sources
    # there once and afterwards only what changed (the model, a new commit or flags).
    # PlatformIO cleans a build folder whose platform comes from another core folder, so the
    # project keeps its own (its default, .pio/core) rather than this run's. A second bench
    # on the same board waits for nobody: it is refused while this one holds the folder.
    project = tflm_bench_project(board)
    with output_folder(
        project, True, "mnmcu bench --compare tflm", manifest=PROJECT_FILE,
        option="$MNMCU_CACHE_DIR",
    ):  # fmt: skip
        info = emit_project(tflite, board, project, runtime="tflm", force=True)
        elf = pio_run(info.project_dir, tflm_sources=sources)
        run = run_qemu(board, elf, icount=True)
    arena = next((m for m in map(_TFLM_ARENA_LINE.search, run.lines) if m), None)
    if run.instructions is None or arena is None:
        raise InvalidValue(
            f"the TFLite Micro firmware reported no instruction count or arena: {run.boot_line}",
            f"see {run.log_path}",
        )
    fp = footprint(elf, info)
    return TflmRun(
        instructions=run.instructions,
        arena_used_bytes=int(arena["used"]),
        arena_bytes=int(arena["total"]),
        runtime_code_bytes=fp.runtime_code_bytes,
        model_weights_bytes=fp.model_weights_bytes,
        output=run.output,
        ok=run.ok,
    )


def kernel_bench(
    board: Board,
    tflite: Path | None = None,
    work_dir: Path | None = None,
    progress: Progress | None = None,
    spec: ModelSpec | None = None,
    compare_tflm: bool = False,
    tflm_sources: Path | None = None,
    schedule: str = "layer",
) -> KernelBench:
    """Build and run the VWW-shape model (or ``tflite``) with portable and fast kernels.

    ``spec`` replaces the VWW shape by another untrained model (seeded, so
    every run converts the same weights). ``compare_tflm`` adds TFLite Micro
    with CMSIS-NN, its library generated from ``tflm_sources`` (default
    ``$MNMCU_TFLM_SOURCES``; without either, the project's fetch script clones
    tflite-micro, which needs the network). ``schedule`` ``stream`` or
    ``auto`` also builds and runs each kernel set with that AOT schedule
    (:mod:`mnmcu.stream`), beside the layer schedule.

    The fast kernel set is the board's default (:func:`mnmcu.emit.aot.board_kernels`).
    Raises :class:`InvalidValue` for a board without a QEMU machine or
    without fast kernels, :class:`KernelMismatch` when a firmware's output
    differs from TFLite's reference.
    """
    from mnmcu.analyze import analyze
    from mnmcu.bench import convert_untrained
    from mnmcu.emit.aot import board_kernels
    from mnmcu.graph import load_graph
    from mnmcu.prune import prune_constant_channels

    if board.simulator.qemu_machine is None:
        raise InvalidValue(
            f"board {board.id} has no QEMU machine", "use qemu-m4, qemu-m7 or qemu-m55"
        )
    fast = board_kernels(board)
    if fast == "portable":
        raise InvalidValue(
            f"board {board.id} has no fast kernels (no DSP extension or Helium)",
            "use qemu-m4 or qemu-m55",
        )
    from mnmcu.stream import check_schedule_choice

    check_schedule_choice(schedule)
    progress = progress or NullProgress()
    with tempfile.TemporaryDirectory(prefix="mnmcu-bench-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        steps = 3 + int(compare_tflm) + 2 * int(schedule != "layer")
        progress.start(f"Benchmarking kernels on {board.id}", steps)
        untrained = spec or VWW_SPEC
        model_name = untrained.name
        if tflite is None:
            tflite = work / "untrained.tflite"
            tflite.write_bytes(convert_untrained(untrained))
        else:
            model_name = Path(tflite).name
        progress.advance(1, status="model")
        graph = load_graph(tflite)
        macs = analyze(graph).macs
        pruning = prune_constant_channels(graph)
        computed = analyze(pruning.graph).macs - _stored_constant_macs(pruning)
        core_dir = work / "pio-core"
        runs = []
        for kernels in ("portable", fast):
            runs.append(_run(Path(tflite), board, kernels, work, core_dir))
            progress.advance(1, status=kernels)
        streamed = []
        for kernels in ("portable", fast) if schedule != "layer" else ():
            streamed.append(_run(Path(tflite), board, kernels, work, core_dir, schedule))
            progress.advance(1, status=f"{kernels} {schedule}")
        tflm = None
        if compare_tflm:
            tflm = _run_tflm(Path(tflite), board, tflm_sources)
            progress.advance(1, status="tflm")
        progress.finish()
    return KernelBench(
        board=board.id,
        model=model_name,
        macs=macs,
        runs=tuple(runs),
        computed_macs=computed,
        dropped_channels=pruning.dropped_channels,
        model_path=str(Path(tflite).resolve()) if model_name != untrained.name else "",
        tflm=tflm,
        streamed=tuple(streamed),
    )


def _stored_constant_macs(pruning: Pruning) -> int:
    """MACs of stored constant channels: their weights are zero, counted as not computed."""
    graph = pruning.graph
    total = 0
    for op in graph.ops:
        stored = pruning.stored.get(op.outputs[0] if op.outputs else -1, ())
        if not stored or op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        out, filt = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
        taps = (
            int(np.prod(filt.shape[1:]))
            if op.opcode == "CONV_2D"
            else int(np.prod(filt.shape[1:3]))
        )
        total += len(stored) * int(np.prod(out.shape[1:3])) * taps
    return total


TFLM_COLUMN = "tflm+cmsis-nn"


def _runtime_name(run: KernelRun | TflmRun) -> str:
    return f"aot {run.kernels}" if isinstance(run, KernelRun) else TFLM_COLUMN


def _arena(run: KernelRun | TflmRun) -> int:
    """The AOT plan's arena, or what TFLM's arena_used_bytes() reported on the device."""
    return run.arena_used_bytes if isinstance(run, TflmRun) else run.arena_bytes


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def comparison_rows(bench: KernelBench, t: TflmRun) -> list[str]:
    """One row per runtime: AOT portable, AOT fast, TFLite Micro + CMSIS-NN."""
    header = (
        f"{'runtime':24}{'instructions':>14}{'per MAC':>9}{'vs fast':>9}"
        f"{'arena (B)':>11}{'code (B)':>10}  equals reference"
    )
    runs: tuple[KernelRun | TflmRun, ...] = (*bench.runs, t)
    return [header] + [
        f"{_runtime_name(r):24}{r.instructions:>14,}{r.instructions / bench.macs:>9.2f}"
        f"{r.instructions / bench.fast.instructions:>8.2f}x{_arena(r):>11,}"
        f"{r.runtime_code_bytes:>10,}  {_yes(r.ok)}"
        for r in runs
    ]


def schedule_rows(bench: KernelBench) -> list[str]:
    """The layer and stream schedules per kernel set: instructions and arenas side by side."""
    t = bench.tflm
    lines = [
        "AOT schedules (arena: the tensor arena's bytes in the ELF; everything an inference "
        "needs in RAM but the stack"
        + (f"; TFLM arena: {t.arena_used_bytes:,} B used on the device)" if t else ")"),
        f"{'kernels':10}{'schedule':10}{'streamed':>9}{'instructions':>14}{'vs layer':>9}"
        f"{'arena (B)':>11}{'vs layer':>9}" + (f"{'vs TFLM':>9}" if t else ""),
    ]
    for layer, stream in bench.pairs():
        for run in (layer, stream):
            lines.append(
                f"{run.kernels:10}{run.schedule:10}{run.streamed_ops:>9}{run.instructions:>14,}"
                f"{run.instructions / layer.instructions:>8.3f}x{run.arena_bytes:>11,}"
                f"{run.arena_bytes / layer.arena_bytes:>8.3f}x"
                + (f"{run.arena_bytes / t.arena_used_bytes:>8.3f}x" if t else "")
            )
    return lines


def report_lines(bench: KernelBench) -> list[str]:
    """The benchmark as text: totals, per-MAC figures, ratio, per-layer counts, code sizes."""
    kinds = [r.kernels for r in bench.runs]
    kernel_delta = bench.fast.kernel_code_bytes - bench.portable.kernel_code_bytes
    runtime_delta = bench.fast.runtime_code_bytes - bench.portable.runtime_code_bytes
    lines = [
        f"AOT kernels on {bench.board}, model {bench.model} ({bench.macs:,} MACs), "
        "one inference each, measured in this run.",
        "Figures are guest instruction counts (QEMU -icount shift=0), not cycles.",
    ]
    if bench.computed_macs and bench.computed_macs != bench.macs:
        lines.append(
            f"Constant channels (mnmcu.prune): {bench.dropped_channels:,} left out; the firmware "
            f"computes {bench.computed_macs:,} of the model's MACs "
            f"({100 * bench.computed_macs / bench.macs:.1f}%); per MAC divides by the model's."
        )
    t = bench.tflm
    if t is not None:
        lines += ["", *comparison_rows(bench, t)]
    if bench.streamed:
        lines += ["", *schedule_rows(bench)]
    columns: tuple[KernelRun | TflmRun, ...] = (*bench.runs, *([t] if t is not None else []))
    cells: tuple[tuple[str, Callable[[KernelRun | TflmRun], str]], ...] = (
        ("instructions per inference", lambda r: f"{r.instructions:,}"),
        ("instructions per MAC", lambda r: f"{r.instructions / bench.macs:.2f}"),
        ("kernel code (bytes)",
         lambda r: f"{r.kernel_code_bytes:,}" if isinstance(r, KernelRun) else "-"),
        ("runtime code (bytes)", lambda r: f"{r.runtime_code_bytes:,}"),
        ("model constants (bytes)", lambda r: f"{r.model_weights_bytes:,}"),
        ("tensor arena (bytes)", lambda r: f"{_arena(r):,}"),
        ("output equals reference", lambda r: _yes(r.ok)),
    )  # fmt: skip
    lines += [
        "",
        f"{'':28}"
        + "".join(f"{r.kernels if isinstance(r, KernelRun) else TFLM_COLUMN:>14}" for r in columns),
        *(f"{label:28}" + "".join(f"{cell(r):>14}" for r in columns) for label, cell in cells),
        "",
        f"ratio {bench.fast.kernels}/{bench.portable.kernels} (instructions): {bench.ratio:.3f}",
        f"kernel code {bench.fast.kernels} - {bench.portable.kernels}: {kernel_delta:+,} bytes; "
        f"runtime code: {runtime_delta:+,} bytes",
        *(
            [
                f"ratio {TFLM_COLUMN}/{bench.fast.kernels} (instructions): "
                f"{t.instructions / bench.fast.instructions:.3f}; TFLM's arena is its "
                f"arena_used_bytes() on the device (of {t.arena_bytes:,} B allocated), the "
                "AOT arena its static plan",
            ]
            if t is not None
            else []
        ),
        "",
        "Per op type (instructions, share of the fast run):",
    ]
    fast_types = per_op_type(bench.fast)
    portable_types = per_op_type(bench.portable)
    for op_type, count in fast_types.items():
        share = 100 * count / bench.fast.instructions if bench.fast.instructions else 0.0
        lines.append(
            f"  {op_type:24}{portable_types.get(op_type, 0):>14,}{count:>14,}{share:>8.1f}%"
        )
    lines += [
        "",
        "Per layer (instructions, including a few dozen for the timing hook); kernel and output",
        f"channels of the {bench.fast.kernels} run (computed / constant / model):",
        f"{'op':>4} {'':18}"
        + "".join(f"{k:>14}" for k in kinds)
        + f"{'ratio':>8}  {'kernel':28}{'channels':>14}",
    ]
    used = {k.index: k for k in bench.fast.kernels_used}
    for layers in zip(*(r.layers for r in bench.runs), strict=True):
        first, last = layers[0], layers[-1]
        ratio = last.instructions / first.instructions if first.instructions else 0.0
        info = used.get(first.index)
        kernel, channels = "", ""
        if info is not None:
            kernel = info.kernel
        if info is not None and info.channels:
            channels = f"{info.computed_channels}/{info.constant_channels}/{info.channels}"
        lines.append(
            f"{first.index:>4} {first.op:18}"
            + "".join(f"{c.instructions:>14,}" for c in layers)
            + f"{ratio:>8.2f}  {kernel:28}{channels:>14}"
        )
    return lines
