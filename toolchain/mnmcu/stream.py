"""The ``stream`` schedule of the AOT runtime: the early layers row by row.

The first layers of a MobileNet work on the largest feature maps, and the
layer-by-layer plan must hold a layer's whole input and whole output at
once. The stream schedule runs a prefix of the graph (the *segment*) one
output row at a time instead:

* The segment is the longest prefix of CONV_2D, DEPTHWISE_CONV_2D and PAD
  ops (portable kernels) in which each op reads the previous op's output
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
the border) and ``output.h`` to 1, and calls the portable kernel, which
counts the rows past ``input.h`` as bottom padding. Every output value is
computed by the same arithmetic as in the layer schedule, so the outputs are
bit-exact with it.

:func:`plan_stream` tries every hand-over point and keeps the smallest arena
(fewest streamed ops on a tie; none when streaming does not help).
:func:`check_stream_plan` checks a plan independently of how it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mnmcu.emit.aot import (  # noqa: F401 - SCHEDULES re-exported
    SCHEDULES,
    Call,
    check_schedule,
    firmware_plan,
    inplace_ops,
    scratch_bytes,
)
from mnmcu.errors import InvalidValue, UnsupportedModel
from mnmcu.graph import Graph, Op
from mnmcu.plan import ALIGNMENT, Buffer, MemoryPlan, check_plan, plan_memory
from mnmcu.qmath import padding

STREAM_OPCODES = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "PAD"})
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
    rows, clipped to the ``height`` rows of its input."""

    stride: int
    pad: int
    span: int
    height: int

    def rows(self, y: int) -> tuple[int, int]:
        """(first input row, count) of output row ``y``; the count is 0 for a padding row."""
        start = y * self.stride - self.pad
        first = max(start, 0)
        end = min(start + self.span, self.height)
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
        return RowGeometry(1, before[1], 1, height)
    filt = graph.tensor(op.inputs[1])
    if len(filt.shape) != 4:
        return None
    kh, stride = int(filt.shape[1]), int(op.options["stride_h"])
    dil = int(op.options.get("dilation_h_factor", 1))
    geo = RowGeometry(
        stride, padding(height, kh, stride, dil, int(out.shape[1])), dil * (kh - 1) + 1, height
    )
    if any(geo.rows(y)[1] == 0 for y in range(int(out.shape[1]))):
        return None  # an output row of padding only: the kernel takes no empty input
    return geo


def segment_length(graph: Graph) -> int:
    """Ops of the longest prefix of ``graph`` that can run row by row (0: none).

    CONV_2D, DEPTHWISE_CONV_2D and PAD over 4-D batch-1 int8 tensors, each
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
        """Run op i for its output row y, first producing the input rows it lacks."""
        first, count = geometry[i].rows(y)
        if i > 0 and count:
            if first > base[i]:
                steps.append((ADVANCE, i, first))
                base[i] = first
                top[i] = max(top[i], first)
            for r in range(top[i], first + count):
                produce(i - 1, r)
        steps.append((ROW, i, y))
        top[i + 1] = y + 1
        held[i + 1] = max(held[i + 1], top[i + 1] - base[i + 1])

    for y in range(heights[m]):
        produce(m - 1, y)
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
        if row != top[j] or row - base[j] >= capacity[j]:
            problems.append(
                f"step {n}: op {index} writes row {row} into a window holding "
                f"[{base[j]}, {top[j]}) of {capacity[j]} rows"
            )
        top[j] = row + 1
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


def _plan_streamed(graph: Graph, m: int, layer_arena: int) -> StreamPlan:
    seg = graph.ops[:m]
    tensors = (seg[0].inputs[0], *(op.outputs[0] for op in seg))
    heights = [int(graph.tensor(t).shape[1]) for t in tensors]
    geometry = [_row_geometry(graph, op) for op in seg]
    if any(g is None for g in geometry):
        raise UnsupportedModel("the segment holds an op that cannot run row by row")
    geo = [g for g in geometry if g is not None]
    steps, held = _schedule(geo, heights)
    row_bytes = [graph.tensor(t).nbytes // h for t, h in zip(tensors, heights, strict=True)]

    handover = tensors[-1]
    buffers: list[Buffer] = []
    busy: list[tuple[int, int]] = []
    suffix_arena = 0
    offsets: dict[int, int] = {}
    scratch: dict[int, tuple[int, int]] = {}
    if m < len(graph.ops):
        sub = _suffix_graph(graph, m)
        sp = plan_memory(sub, scratch_bytes(sub), inplace_ops(sub))
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
    # The model input and hand-over tensor whole, the windows: all live through the segment.
    items = [(t, _align(graph.tensor(t).nbytes)) for t in whole]
    items += [(tensors[j], _align(held[j] * row_bytes[j])) for j in range(1, m)]
    # Largest first, or in segment order: the placement that ends lower.
    placements = []
    for order in (sorted(items, key=lambda it: -it[1]), items):
        placed = _first_fit([size for _, size in order], busy)
        placements.append(dict(zip((t for t, _ in order), placed, strict=True)))
    chosen = min(placements, key=lambda got: max(got[t] + size for t, size in items))
    for t, size in items:
        offsets[t] = chosen[t]
        buffers.append(Buffer((t,), 0, m - 1, size, chosen[t]))
    arena = max(suffix_arena, *(chosen[t] + size for t, size in items))
    windows = tuple(
        Window(tensors[j], held[j], row_bytes[j], offsets[tensors[j]]) for j in range(1, m)
    )
    buffers.sort(key=lambda b: (b.offset, b.first_op))
    peak = max(
        (
            sum(b.size for b in buffers if b.first_op <= i <= b.last_op)
            for i in range(len(graph.ops))
        ),
        default=0,
    )
    return StreamPlan(
        arena_bytes=arena,
        offsets=offsets,
        scratch=scratch,
        buffers=tuple(buffers),
        peak_live_bytes=peak,
        streamed=m,
        tensors=tensors,
        windows=windows,
        steps=tuple(steps),
        layer_arena_bytes=layer_arena,
    )


def plan_stream(graph: Graph, kernels: str = "portable", streamed: int | None = None) -> StreamPlan:
    """The stream schedule's plan for ``graph`` (the graph the C runs, see
    :func:`mnmcu.emit.aot.firmware_graph`); deterministic.

    Tries every hand-over point of the segment and keeps the smallest arena,
    the fewest streamed ops on a tie (0: the layer plan, when streaming does
    not help). ``streamed`` forces a number of streamed ops instead.
    """
    check_schedule("stream", kernels)
    layer = firmware_plan(graph, kernels)
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
    for m in [streamed] if streamed is not None else range(1, longest + 1):
        if m == 0:
            continue
        candidate = _plan_streamed(graph, m, layer.arena_bytes)
        if streamed is not None or candidate.arena_bytes < best.arena_bytes:
            best = candidate
    return best


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
    for name, off, size in regions:
        if off % ALIGNMENT or off + size > plan.arena_bytes:
            problems.append(f"{name} at {off}+{size} is misaligned or outside the arena")
    for x in range(len(regions)):
        for y in range(x + 1, len(regions)):
            (p, po, ps), (q, qo, qs) = regions[x], regions[y]
            if po < qo + qs and qo < po + ps:
                problems.append(f"segment: {p} [{po}, +{ps}) overlaps {q} [{qo}, +{qs})")
    geometry = [_row_geometry(graph, op) for op in seg]
    problems += replay(plan, [g for g in geometry if g is not None], heights)
    if m < len(graph.ops):
        scratch = {i - m: place for i, place in plan.scratch.items()}
        suffix = MemoryPlan(plan.arena_bytes, plan.offsets, scratch, plan.buffers)
        problems += [f"after the segment: {p}" for p in check_plan(_suffix_graph(graph, m), suffix)]
    return problems


# --------------------------------------------------------------------------
# What the C template needs
# --------------------------------------------------------------------------

_KINDS = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d", "PAD": "pad"}
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
        weights = [] if kind == "pad" else [call.args[2], call.args[3]]
        layers.append({"kind": kind, "args": ", ".join([f"&{call.params_name}", *weights])})
    for call in calls[: m - 1]:
        call.output_offset, call.output_size = 0, 0
    steps = [f"{{{a}, {i}, {r}}}" for a, i, r in plan.steps]
    rows = [
        ", ".join(steps[k : k + _STEPS_PER_LINE]) for k in range(0, len(steps), _STEPS_PER_LINE)
    ]
    tensors = []
    for t in plan.tensors:
        tensor = graph.tensor(t)
        tensors.append((plan.offsets[t], tensor.nbytes // int(tensor.shape[1])))
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
