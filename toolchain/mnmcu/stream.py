"""The ``stream`` schedule of the AOT runtime: the early layers row by row.

The first layers of a MobileNet work on the largest feature maps, and the
layer-by-layer plan must hold a layer's whole input and whole output at
once. The stream schedule runs a prefix of the graph (the *segment*) one
output row at a time instead:

* The segment is the longest prefix of CONV_2D, DEPTHWISE_CONV_2D and PAD
  ops in which each op reads the previous op's output
  (the first reads the model input) and each output but the last is read by
  the next op only (:func:`segment_length`).
* Each tensor inside the segment lives in a *window*: the few consecutive
  rows its consumer needs for one output row (the kernel's height, dilated,
  for a convolution; one row for a 1x1 convolution or a PAD). The model
  input stays whole in the arena, and the segment's last op writes the whole
  *hand-over* tensor, from which the ordinary layer plan runs the rest.
* The order is demand driven: to produce the hand-over tensor's rows in
  order, each op produces the rows its consumer needs next. Windows stay
  contiguous: when one must advance, the rows it keeps move to its start
  (``memmove``) and the missing rows are produced after them.

The order is computed here, at generation time, as a table of steps: *run
op i for output row y* or *advance the window of tensor j to start at row
r*. The generated C walks the table (``firmware/templates/aot/model.c.j2``):
a row step copies the op's const params, sets ``input.h`` to the rows of
its window present, ``pad_h`` to the top padding rows still missing (near
the border) and ``output.h`` to 1, and calls the op's kernel (the same one
as in the layer schedule, portable or fast), which counts the rows past
``input.h`` as bottom padding. Every output value is computed by the same
arithmetic as in the layer schedule, so the outputs are bit-exact with it.
The fast kernels' scratch is one region for the whole segment: row calls
never overlap, and no kernel keeps scratch contents from one call to the
next.

:func:`plan_stream` tries every hand-over point and keeps the smallest arena
(fewest streamed ops on a tie; none when streaming does not help).
:func:`check_stream_plan` checks a plan independently of how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mnmcu.emit.aot import (  # noqa: F401 - SCHEDULES re-exported
    SCHEDULES,
    Call,
    fast_function,
    firmware_plan,
    row_scratch_bytes,
)
from mnmcu.errors import InvalidValue, UnsupportedModel
from mnmcu.graph import Graph, Op
from mnmcu.plan import ALIGNMENT, Buffer, MemoryPlan, check_plan, peak_live
from mnmcu.qmath import padding

TABLE_OPCODES = frozenset({"HARD_SWISH", "QUANTIZE", "RELU", "RELU6", "LOGISTIC", "TANH"})
"""Element-wise ops the AOT runtime runs as a 256-entry table (one row in, one row out)."""
STREAM_OPCODES = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "PAD"}) | TABLE_OPCODES
ROW, ADVANCE = 0, 1
"""Step actions: run an op for one output row; advance a tensor's window."""

# Limits of the step table's fields (uint8_t index, uint16_t row).
_MAX_STREAMED = 255
_MAX_ROWS = 65535


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class RowGeometry:
    """Which input rows an op reads for output row ``y``: ``y * stride - pad`` on, ``span``
    rows, clipped to the ``height`` rows of its input. A row step computes a *band* of
    ``band`` output rows (fewer at the end of its ``out_height`` rows)."""

    stride: int
    pad: int
    span: int
    height: int
    out_height: int
    band: int = 1

    def outputs(self, y: int) -> int:
        """Output rows of the band that starts at row ``y``."""
        return max(min(self.band, self.out_height - y), 0)

    def rows(self, y: int) -> tuple[int, int]:
        """(first input row, count) of the band that starts at output row ``y``; the count
        is 0 for a band of padding rows only."""
        start = y * self.stride - self.pad
        first = max(start, 0)
        end = min(start + (self.outputs(y) - 1) * self.stride + self.span, self.height)
        return first, max(end - first, 0)


@dataclass(frozen=True)
class Window:
    """The rows of one tensor inside the segment that are held at once."""

    tensor: int
    rows: int
    row_bytes: int
    offset: int


@dataclass(frozen=True)
class StreamPlan(MemoryPlan):
    """A memory plan for the stream schedule (a :class:`MemoryPlan` when nothing streams).

    ``offsets`` holds every tensor's place, the window's for a tensor inside
    the segment. ``steps`` are (action, index, row) triples: (:data:`ROW`, op,
    output row) or (:data:`ADVANCE`, tensor position in the segment, new first
    row).
    """

    streamed: int = 0
    """Ops run row by row (the first ``streamed`` ops); 0: the layer schedule."""
    tensors: tuple[int, ...] = ()
    """The segment's tensors: the model input, those inside (windows), the hand-over."""
    windows: tuple[Window, ...] = ()
    bands: tuple[int, ...] = ()
    """Output rows per row step, per streamed op (see :func:`_band`)."""
    steps: tuple[tuple[int, int, int], ...] = ()
    layer_arena_bytes: int = 0
    """The arena of the layer schedule, for comparison."""

    def stream_context(self, graph: Graph, calls: list[Call]) -> dict[str, object] | None:
        """The segment as the C template writes it (:func:`stream_context`)."""
        return stream_context(graph, self, calls)

    @property
    def handover(self) -> int | None:
        """The tensor the segment hands to the layer plan (None when nothing streams)."""
        return self.tensors[-1] if self.streamed else None

    def to_dict(self) -> dict[str, object]:
        d = super().to_dict()
        d["schedule"] = {
            "streamed_ops": self.streamed,
            "handover_tensor": self.handover,
            "layer_arena_bytes": self.layer_arena_bytes,
            "steps": len(self.steps),
            "bands": list(self.bands),
            "windows": [
                {"tensor": w.tensor, "rows": w.rows, "row_bytes": w.row_bytes, "offset": w.offset}
                for w in self.windows
            ],
        }
        return d


# --------------------------------------------------------------------------
# The segment
# --------------------------------------------------------------------------


def _row_geometry(graph: Graph, op: Op) -> RowGeometry | None:
    """How ``op`` reads its input rows, or None if it cannot run row by row."""
    inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[0] != 1 or out.shape[0] != 1:
        return None
    if inp.dtype != "int8" or out.dtype != "int8":
        return None
    height = int(inp.shape[1])
    if op.opcode == "PAD":
        pads_t = graph.tensor(op.inputs[1])
        if pads_t.data is None or pads_t.data.size != 8:
            return None
        before = [int(v) for v in pads_t.data.reshape(4, 2)[:, 0]]
        after = [int(v) for v in pads_t.data.reshape(4, 2)[:, 1]]
        if before[0] or after[0] or min(before + after) < 0:
            return None
        return RowGeometry(1, before[1], 1, height, int(out.shape[1]))
    if op.opcode in TABLE_OPCODES:
        return RowGeometry(1, 0, 1, height, height) if inp.shape == out.shape else None
    filt = graph.tensor(op.inputs[1])
    if len(filt.shape) != 4:
        return None
    kh, stride = int(filt.shape[1]), int(op.options["stride_h"])
    dil = int(op.options.get("dilation_h_factor", 1))
    out_h = int(out.shape[1])
    geo = RowGeometry(
        stride, padding(height, kh, stride, dil, out_h), dil * (kh - 1) + 1, height, out_h
    )
    if any(geo.rows(y)[1] == 0 for y in range(int(out.shape[1]))):
        return None  # an output row of padding only: the kernel takes no empty input
    return geo


def segment_length(graph: Graph) -> int:
    """Ops of the longest prefix of ``graph`` that can run row by row (0: none).

    CONV_2D, DEPTHWISE_CONV_2D, PAD and the element-wise table ops
    (:data:`TABLE_OPCODES`) over 4-D batch-1 int8 tensors, each
    reading the previous op's output (the first the model input); the model
    input and each output but the last are read by the next op only.
    """
    if len(graph.inputs) != 1:
        return 0
    readers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            readers.setdefault(t, []).append(op.index)
    current = graph.inputs[0]
    count = 0
    for op in graph.ops[:_MAX_STREAMED]:
        if op.opcode not in STREAM_OPCODES or not op.inputs or op.inputs[0] != current:
            break
        if readers.get(current) != [op.index] or current in graph.outputs:
            break
        geo = _row_geometry(graph, op)
        out = graph.tensor(op.outputs[0])
        if geo is None or len(op.outputs) != 1 or max(geo.height, out.shape[1]) > _MAX_ROWS:
            break
        count += 1
        current = op.outputs[0]
    return count


# --------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------


def _schedule(
    geometry: list[RowGeometry], heights: list[int]
) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Steps of a demand-driven order and the rows each tensor's window holds at most.

    ``geometry[i]`` is op i's, ``heights[j]`` the rows of segment tensor j
    (0: the model input, held whole; last: the hand-over tensor, whole).
    """
    m = len(geometry)
    base = [0] * (m + 1)
    top = [0] * (m + 1)
    top[0] = heights[0]
    held = [0] * (m + 1)
    steps: list[tuple[int, int, int]] = []

    def produce(i: int, y: int) -> None:
        """Run op i for the band holding its output row y, first producing the input rows
        it lacks."""
        y -= y % geometry[i].band
        first, count = geometry[i].rows(y)
        if i > 0 and count:
            if first > base[i]:
                steps.append((ADVANCE, i, first))
                base[i] = first
                top[i] = max(top[i], first)
            while top[i] < first + count:
                produce(i - 1, top[i])
        steps.append((ROW, i, y))
        top[i + 1] = y + geometry[i].outputs(y)
        held[i + 1] = max(held[i + 1], top[i + 1] - base[i + 1])

    while top[m] < heights[m]:
        produce(m - 1, top[m])
    return steps, held


def replay(plan: StreamPlan, geometry: list[RowGeometry], heights: list[int]) -> list[str]:
    """Walk ``plan``'s steps as the generated C does; return what goes wrong (empty: sound).

    Checks that every row an op reads is in its input window, that every row
    written lands at the end of its window and within its capacity, and that
    the hand-over tensor's rows are written once each, in order.
    """
    problems: list[str] = []
    m = plan.streamed
    capacity = [heights[0], *(w.rows for w in plan.windows), heights[m]]
    base = [0] * (m + 1)
    top = [0] * (m + 1)
    top[0] = heights[0]
    for n, (action, index, row) in enumerate(plan.steps):
        if action == ADVANCE:
            if not 0 < index < m or row < base[index]:
                problems.append(f"step {n}: window {index} cannot advance to row {row}")
                continue
            base[index] = row
            top[index] = max(top[index], row)
            continue
        if action != ROW or not 0 <= index < m:
            problems.append(f"step {n}: unknown step ({action}, {index}, {row})")
            continue
        first, count = geometry[index].rows(row)
        if count and (first < base[index] or first + count > top[index]):
            problems.append(
                f"step {n}: op {index} row {row} reads rows [{first}, {first + count}) of "
                f"a window holding [{base[index]}, {top[index]})"
            )
        j = index + 1
        end = row + geometry[index].outputs(row)
        if row != top[j] or end <= row or end - base[j] > capacity[j]:
            problems.append(
                f"step {n}: op {index} writes rows [{row}, {end}) into a window holding "
                f"[{base[j]}, {top[j]}) of {capacity[j]} rows"
            )
        top[j] = end
    if m and top[m] != heights[m]:
        problems.append(f"the steps write {top[m]} of the {heights[m]} hand-over rows")
    return problems


# --------------------------------------------------------------------------
# The memory plan
# --------------------------------------------------------------------------


def _suffix_graph(graph: Graph, m: int) -> Graph:
    """The ops after the segment, renumbered from 0, with the hand-over tensor as input."""
    ops = tuple(replace(op, index=op.index - m) for op in graph.ops[m:])
    return replace(graph, ops=ops, inputs=(graph.ops[m - 1].outputs[0],))


def _first_fit(sizes: list[int], busy: list[tuple[int, int]]) -> list[int]:
    """Offsets for ``sizes`` (placed in that order, each at the lowest free aligned
    offset) around the ``busy`` (offset, size) regions."""
    taken = list(busy)
    offsets = []
    for size in sizes:
        offset = 0
        for start, length in sorted(taken):
            if offset + size <= start:
                break
            offset = max(offset, start + length)
        offsets.append(offset)
        taken.append((offset, size))
    return offsets


DW_BAND = 2
"""Output rows per row step of a depthwise convolution on a fast kernel (see :func:`_band`)."""


def _band(graph: Graph, op: Op, kernels: str, bound: bool = False) -> int:
    """Output rows per row step of ``op`` with ``kernels`` (``bound``: weights unknown).

    The fast depthwise kernel expands its input rows to int16 and sets up
    each channel once per call: called for one output row, that work weighs
    against the row's arithmetic. :data:`DW_BAND` rows per call share it,
    for one more row (two at stride 2) in the op's input window and one more
    in its output's. Measured on MLPerf Tiny's VWW model (ops 0-7 streamed,
    ``mnmcu bench --schedule stream``): one row per call costs 1.149x the
    layer schedule's instructions with the DSP kernels on qemu-m4 and 1.172x
    with Helium on qemu-m55. Two rows per call where the stride is 1 (DSP),
    or everywhere (Helium, whose arithmetic is cheaper still), bring that to
    1.104x and 1.124x, for 2.4 KiB and 6.1 KiB more arena.
    """
    if op.opcode != "DEPTHWISE_CONV_2D" or fast_function(graph, op, kernels, bound) is None:
        return 1
    return DW_BAND if kernels == "helium" or int(op.options["stride_h"]) == 1 else 1


def _segment_geometry(graph: Graph, m: int, bands: tuple[int, ...]) -> list[RowGeometry]:
    geometry = []
    for op, band in zip(graph.ops[:m], bands, strict=True):
        geo = _row_geometry(graph, op)
        if geo is None or band < 1:
            raise UnsupportedModel(f"op {op.index} {op.opcode} cannot run row by row")
        geometry.append(replace(geo, band=band))
    return geometry


def _plan_streamed(
    graph: Graph, m: int, layer_arena: int, kernels: str, bound: bool = False
) -> StreamPlan:
    seg = graph.ops[:m]
    tensors = (seg[0].inputs[0], *(op.outputs[0] for op in seg))
    heights = [int(graph.tensor(t).shape[1]) for t in tensors]
    bands = tuple(_band(graph, op, kernels, bound) for op in seg)
    steps, held = _schedule(_segment_geometry(graph, m, bands), heights)
    row_bytes = [graph.tensor(t).nbytes // h for t, h in zip(tensors, heights, strict=True)]

    handover = tensors[-1]
    buffers: list[Buffer] = []
    busy: list[tuple[int, int]] = []
    suffix_arena = 0
    offsets: dict[int, int] = {}
    scratch: dict[int, tuple[int, int]] = {}
    if m < len(graph.ops):
        sub = _suffix_graph(graph, m)
        sp = firmware_plan(sub, kernels, bound)
        suffix_arena = sp.arena_bytes
        offsets.update(sp.offsets)
        scratch = {i + m: place for i, place in sp.scratch.items()}
        for b in sp.buffers:
            first = 0 if handover in b.tensors else b.first_op + m
            scratch_of = None if b.scratch_of is None else b.scratch_of + m
            buffers.append(replace(b, first_op=first, last_op=b.last_op + m, scratch_of=scratch_of))
            if handover in b.tensors:
                busy.append((b.offset, b.size))
        whole = [tensors[0]]
    else:
        whole = [tensors[0], handover]
    # The model input and hand-over tensor whole, the windows and the row calls'
    # scratch (key -1): all live through the segment.
    items = [(t, _align(graph.tensor(t).nbytes)) for t in whole]
    items += [(tensors[j], _align(held[j] * row_bytes[j])) for j in range(1, m)]
    row_scratch = {
        op.index: row_scratch_bytes(graph, op, kernels, band, bound)
        for op, band in zip(seg, bands, strict=True)
    }
    if max(row_scratch.values()):
        items.append((-1, _align(max(row_scratch.values()))))
    # Largest first, or in segment order: the placement that ends lower.
    placements = []
    for order in (sorted(items, key=lambda it: -it[1]), items):
        placed = _first_fit([size for _, size in order], busy)
        placements.append(dict(zip((t for t, _ in order), placed, strict=True)))
    chosen = min(placements, key=lambda got: max(got[t] + size for t, size in items))
    for t, size in items:
        if t < 0:
            buffers.append(Buffer((), 0, m - 1, size, chosen[t], scratch_of=0))
            continue
        offsets[t] = chosen[t]
        buffers.append(Buffer((t,), 0, m - 1, size, chosen[t]))
    for i, size in row_scratch.items():
        if size:
            scratch[i] = (chosen[-1], size)
    arena = max(suffix_arena, *(chosen[t] + size for t, size in items))
    windows = tuple(
        Window(tensors[j], held[j], row_bytes[j], offsets[tensors[j]]) for j in range(1, m)
    )
    buffers.sort(key=lambda b: (b.offset, b.first_op))
    peak = peak_live(buffers, len(graph.ops))
    return StreamPlan(
        arena_bytes=arena,
        offsets=offsets,
        scratch=scratch,
        buffers=tuple(buffers),
        peak_live_bytes=peak,
        streamed=m,
        tensors=tensors,
        windows=windows,
        bands=bands,
        steps=tuple(steps),
        layer_arena_bytes=layer_arena,
    )


def plan_stream(
    graph: Graph,
    kernels: str = "portable",
    streamed: int | None = None,
    must_stream: bool = False,
    bound: bool = False,
) -> StreamPlan:
    """The stream schedule's plan for ``graph`` (the graph the C runs, see
    :func:`mnmcu.emit.aot.firmware_graph`) with the kernel set ``kernels``;
    deterministic.

    Tries every hand-over point of the segment and keeps the smallest arena,
    the fewest streamed ops on a tie: none (the layer plan) when streaming
    does not help, unless ``must_stream`` and some op can. ``streamed``
    forces a number of streamed ops instead. ``bound``: the weights are
    unknown (a graph derived from the architecture), every convolution that
    has a fast kernel for its shapes takes it, so the arena is an upper bound.
    """
    layer = firmware_plan(graph, kernels, bound)  # refuses an unknown kernel set
    longest = segment_length(graph)
    if streamed is not None and not 0 <= streamed <= longest:
        raise InvalidValue(
            f"{streamed} ops cannot stream: the longest prefix that can is {longest} ops"
        )
    best = StreamPlan(
        arena_bytes=layer.arena_bytes,
        offsets=layer.offsets,
        scratch=layer.scratch,
        buffers=layer.buffers,
        peak_live_bytes=layer.peak_live_bytes,
        layer_arena_bytes=layer.arena_bytes,
    )
    forced = streamed is not None or must_stream
    for m in [streamed] if streamed is not None else range(1, longest + 1):
        if m == 0:
            continue
        candidate = _plan_streamed(graph, m, layer.arena_bytes, kernels, bound)
        if (forced and best.streamed == 0) or candidate.arena_bytes < best.arena_bytes:
            best = candidate
    return best


# Flash of the stream machinery beside the ops' calls (measured on qemu-m4 builds of the
# VWW model: stream_row, the window helpers, the step loop; and per streamed op its case
# in the row dispatcher), and RAM of its window bookkeeping per segment tensor.
STREAM_CODE_BYTES = 400
STREAM_CODE_PER_OP_BYTES = 58
STREAM_RAM_PER_TENSOR_BYTES = 8


def stream_footprint(plan: MemoryPlan) -> tuple[int, int]:
    """(flash, RAM outside the arena) the stream schedule of ``plan`` adds to the firmware:
    its step table (4 B a step), tensor (12 B) and band (1 B) tables, its code and its
    window bookkeeping; (0, 0) for the layer schedule."""
    if not isinstance(plan, StreamPlan) or plan.streamed == 0:
        return 0, 0
    m = plan.streamed
    tables = 4 * len(plan.steps) + 12 * (m + 1) + m
    code = STREAM_CODE_BYTES + STREAM_CODE_PER_OP_BYTES * m
    return tables + code, STREAM_RAM_PER_TENSOR_BYTES * (m + 1)


SCHEDULE_CHOICES = (*SCHEDULES, "auto")
"""What a user may ask for: a schedule, or ``auto`` (the smaller arena, the layer one on a tie)."""


def check_schedule_choice(schedule: str) -> None:
    """Refuse a schedule not in :data:`SCHEDULE_CHOICES`."""
    if schedule not in SCHEDULE_CHOICES:
        raise InvalidValue(
            f"unknown schedule {schedule!r}", f"use one of {', '.join(SCHEDULE_CHOICES)}"
        )


def schedule_text(schedule: str, streamed: int, arena: int, layer_arena: int) -> str:
    """The AOT schedule that runs and its arena, beside the layer schedule's, in words."""
    if schedule == "layer":
        return f"layer schedule, arena {arena:,} B"
    return (
        f"stream schedule: ops 0-{streamed - 1} row by row, arena {arena:,} B "
        f"(layer schedule: {layer_arena:,} B)"
    )


def schedule_plan(graph: Graph, kernels: str, schedule: str, bound: bool = False) -> StreamPlan:
    """The plan of ``schedule`` (one of :data:`SCHEDULE_CHOICES`) for ``graph`` and ``kernels``.

    ``layer``: the layer plan. ``stream``: the best hand-over point with at
    least one op streamed (the layer plan when no op can stream). ``auto``:
    the smaller of the two. The plan's ``streamed`` says which one runs, its
    ``layer_arena_bytes`` the layer plan's arena. ``bound``: see :func:`plan_stream`.
    """
    check_schedule_choice(schedule)
    if schedule == "layer":
        return plan_stream(graph, kernels, streamed=0, bound=bound)
    return plan_stream(graph, kernels, must_stream=schedule == "stream", bound=bound)


def schedule_of(plan: MemoryPlan) -> str:
    """The schedule the generated C runs for ``plan``: ``stream`` when some op streams."""
    return "stream" if isinstance(plan, StreamPlan) and plan.streamed else "layer"


def check_stream_plan(graph: Graph, plan: StreamPlan) -> list[str]:
    """Every overlap of live buffers and every unsound step of ``plan`` (empty: sound).

    Recomputes the segment from the graph: during the segment the model input,
    the windows (their rows at the plan's capacity) and the hand-over tensor
    must lie inside the arena and share no byte; the steps must read only
    rows present (:func:`replay`); after it, the ops that follow are checked
    as :func:`mnmcu.plan.check_plan` checks a layer plan.
    """
    m = plan.streamed
    if m == 0:
        return check_plan(graph, plan)
    problems: list[str] = []
    if m > segment_length(graph):
        return [f"{m} ops stream, but only {segment_length(graph)} can"]
    seg = graph.ops[:m]
    tensors = (seg[0].inputs[0], *(op.outputs[0] for op in seg))
    if tensors != plan.tensors or len(plan.windows) != m - 1:
        return ["the plan's segment tensors are not the graph's"]
    heights = [int(graph.tensor(t).shape[1]) for t in tensors]
    regions = [(f"tensor {tensors[0]}", plan.offsets[tensors[0]], graph.tensor(tensors[0]).nbytes)]
    for j, w in enumerate(plan.windows, start=1):
        row_bytes = graph.tensor(tensors[j]).nbytes // heights[j]
        if w.tensor != tensors[j] or w.row_bytes != row_bytes or plan.offsets[w.tensor] != w.offset:
            problems.append(f"window of tensor {tensors[j]} does not match the graph")
        regions.append((f"window of tensor {w.tensor}", w.offset, w.rows * row_bytes))
    regions.append(
        (f"tensor {tensors[-1]}", plan.offsets[tensors[-1]], graph.tensor(tensors[-1]).nbytes)
    )
    # One row call at a time: the segment's scratch regions may share bytes with each other.
    regions += [(f"scratch of op {i}", *plan.scratch[i]) for i in range(m) if i in plan.scratch]
    for name, off, size in regions:
        if off % ALIGNMENT or off + size > plan.arena_bytes:
            problems.append(f"{name} at {off}+{size} is misaligned or outside the arena")
    for x in range(len(regions)):
        for y in range(x + 1, len(regions)):
            (p, po, ps), (q, qo, qs) = regions[x], regions[y]
            if p.startswith("scratch") and q.startswith("scratch"):
                continue
            if po < qo + qs and qo < po + ps:
                problems.append(f"segment: {p} [{po}, +{ps}) overlaps {q} [{qo}, +{qs})")
    if len(plan.bands) != m:
        return problems + [f"the plan has {len(plan.bands)} bands for {m} streamed ops"]
    problems += replay(plan, _segment_geometry(graph, m, plan.bands), heights)
    if m < len(graph.ops):
        scratch = {i - m: place for i, place in plan.scratch.items() if i >= m}
        suffix = MemoryPlan(plan.arena_bytes, plan.offsets, scratch, plan.buffers)
        problems += [f"after the segment: {p}" for p in check_plan(_suffix_graph(graph, m), suffix)]
    return problems


# --------------------------------------------------------------------------
# What the C template needs
# --------------------------------------------------------------------------

_KINDS = {
    "CONV_2D": "conv2d",
    "DEPTHWISE_CONV_2D": "depthwise_conv2d",
    "PAD": "pad",
    **{opcode: "lut" for opcode in TABLE_OPCODES},
}
_STEPS_PER_LINE = 6


def stream_context(graph: Graph, plan: MemoryPlan, calls: list[Call]) -> dict[str, object] | None:
    """The streamed segment as ``model.c.j2`` writes it (None when nothing streams).

    ``calls`` are the lowered ops (:func:`mnmcu.emit.aot.lower_model`); the
    segment's calls but the last lose their entry's output size in the
    per-layer table (their outputs are windows, never whole).
    """
    if not isinstance(plan, StreamPlan) or plan.streamed == 0:
        return None
    m = plan.streamed
    layers = []
    for position, call in enumerate(calls[:m]):
        if call.index != position or call.opcode not in _KINDS or call.params_name is None:
            raise InvalidValue(
                f"op {call.index} {call.opcode} is not op {position} of the streamed segment",
                "plan the same graph with mnmcu.stream.plan_stream",
            )
        kind = _KINDS[call.opcode]
        # args: params, input, (filter, bias,) output, (scratch): the row call's own
        # params, input and output rows replace the layer schedule's.
        layer = {"kind": kind, "params": call.params_name, "function": call.function}
        if kind == "lut":
            layer["constants"] = call.args[2]
        elif kind != "pad":
            layer["constants"] = f"{call.args[2]}, {call.args[3]}"
            layer["scratch"] = "".join(f", {a}" for a in call.args[5:])
        layers.append(layer)
    for call in calls[: m - 1]:
        call.output_offset, call.output_size = 0, 0
    steps = [f"{{{a}, {i}, {r}}}" for a, i, r in plan.steps]
    rows = [
        ", ".join(steps[k : k + _STEPS_PER_LINE]) for k in range(0, len(steps), _STEPS_PER_LINE)
    ]
    tensors = []
    for t in plan.tensors:
        tensor = graph.tensor(t)
        height = int(tensor.shape[1])
        tensors.append((plan.offsets[t], tensor.nbytes // height, height))
    for layer, band in zip(layers, plan.bands, strict=True):
        layer["band"] = str(band)
    return {
        "count": m,
        "first": calls[0].index,
        "last": calls[m - 1].index,
        "layers": layers,
        "kinds": sorted({str(layer["kind"]) for layer in layers}),
        "steps": len(steps),
        "step_lines": rows,
        "tensors": tensors,
    }
