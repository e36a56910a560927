"""Static memory plan for the ahead-of-time runtime.

Every activation tensor (graph input and output included) and every scratch
buffer gets a byte offset in one arena. A buffer lives from the op that
writes it to the last op that reads it; two buffers whose lives overlap
never share bytes. Placement is greedy, largest buffer first, each at the
lowest 16-byte aligned offset that is free for its whole life (the strategy
of TFLite Micro's GreedyMemoryPlanner, applied to a graph whose op order is
fixed). Two kinds of sharing are exact and used:

* RESHAPE, SQUEEZE and EXPAND_DIMS outputs are aliases of their input (same
  bytes, no copy);
* an op listed in ``inplace_ops`` writes its output over its first input
  when that input is not read afterwards and is at least as large.

Tensors computed by shape chains (SHAPE, STRIDED_SLICE, PACK) are folded at
generation time and take no arena space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mnmcu.graph import ALIAS_OPS, DYNAMIC_SHAPE_OPS, Graph

ALIGNMENT = 16


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass(frozen=True)
class Buffer:
    """One region of the arena: the tensors stored in it and when it is alive."""

    tensors: tuple[int, ...]  # tensor indices sharing this storage; empty for scratch
    first_op: int
    last_op: int
    size: int
    offset: int
    scratch_of: int | None = None  # op index when this is a scratch buffer

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first_op <= other.last_op and other.first_op <= self.last_op

    def overlaps_in_space(self, other: Buffer) -> bool:
        return self.offset < other.offset + other.size and other.offset < self.offset + self.size


@dataclass(frozen=True)
class MemoryPlan:
    """Where each activation tensor and scratch buffer lives in the arena."""

    arena_bytes: int
    offsets: dict[int, int]
    scratch: dict[int, tuple[int, int]]
    buffers: tuple[Buffer, ...] = field(default=())
    peak_live_bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "arena_bytes": self.arena_bytes,
            "peak_live_bytes": self.peak_live_bytes,
            "buffers": [
                {
                    "tensors": list(b.tensors),
                    "scratch_of": b.scratch_of,
                    "first_op": b.first_op,
                    "last_op": b.last_op,
                    "offset": b.offset,
                    "size": b.size,
                }
                for b in self.buffers
            ],
        }


def folded_tensors(graph: Graph) -> set[int]:
    """Tensors that shape chains compute; their values are known at generation time."""
    folded: set[int] = set()
    for op in graph.ops:
        if op.opcode in DYNAMIC_SHAPE_OPS:
            folded.update(op.outputs)
        if op.opcode == "RESHAPE" and len(op.inputs) > 1 and op.inputs[1] >= 0:
            folded.add(op.inputs[1])
    return folded


class _Group:
    """Tensors that share storage, with the union of their lifetimes."""

    def __init__(self, tensor: int, first: int, last: int, size: int) -> None:
        self.tensors = [tensor]
        self.first, self.last, self.size = first, last, size


def tensor_lifetimes(
    graph: Graph, skip: frozenset[int] | set[int] = frozenset()
) -> dict[int, tuple[int, int]]:
    """First and last op index at which each activation tensor is alive.

    Activations are the non-constant tensors not in ``skip``; the graph
    input lives from op 0, the graph output to the last op.
    """
    n = len(graph.ops)
    life: dict[int, list[int]] = {t: [0, 0] for t in graph.inputs}
    for op in graph.ops:
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and t not in skip and not graph.tensor(t).is_constant:
                life.setdefault(t, [op.index, op.index])[1] = op.index
    for t in graph.outputs:
        life.setdefault(t, [n - 1, n - 1])[1] = n - 1
    return {t: (a, b) for t, (a, b) in life.items()}


def _groups(graph: Graph, inplace_ops: set[int]) -> list[_Group]:
    folded = folded_tensors(graph)
    life = tensor_lifetimes(graph, folded)
    group_of: dict[int, _Group] = {}
    groups: list[_Group] = []
    for t in sorted(life, key=lambda t: (life[t][0], t)):
        group_of[t] = g = _Group(t, *life[t], graph.tensor(t).nbytes)
        groups.append(g)
    for op in graph.ops:
        if not op.outputs or op.outputs[0] not in life or not op.inputs:
            continue
        src, dst = op.inputs[0], op.outputs[0]
        if src not in life:
            continue
        gs, gd = group_of[src], group_of[dst]
        alias = op.opcode in ALIAS_OPS
        inplace = (
            op.index in inplace_ops
            and gs.last == op.index
            and src not in graph.outputs
            and gd.size <= gs.size
        )
        if alias or inplace:
            gs.tensors.extend(gd.tensors)
            gs.last = max(gs.last, gd.last)
            gs.size = max(gs.size, gd.size)
            for t in gd.tensors:
                group_of[t] = gs
            groups.remove(gd)
    return groups


_Item = tuple[tuple[int, ...], int, int, int, "int | None"]

# Placement orders tried; the plan with the smallest arena wins (ties: the
# first order listed). Largest-first is TFLite Micro's choice; the others
# often pack chains of convolutions tighter.
_ORDERS = (
    lambda it: (-it[3], it[1]),  # largest first
    lambda it: (it[1], -it[3]),  # in order of first use
    lambda it: (-(it[2] - it[1]), -it[3], it[1]),  # longest-lived first
    lambda it: (-it[3] * (it[2] - it[1] + 1), it[1]),  # largest size x lifetime first
)


def _place(items: list[_Item], key: object) -> list[Buffer]:
    """First-fit placement of ``items`` in the order given by ``key``."""
    order = sorted(items, key=lambda it: (key(it), it[0][0] if it[0] else -1, it[4] or -1))  # type: ignore[operator]
    placed: list[Buffer] = []
    for tensors, first_op, last_op, size, scratch_of in order:
        candidate = Buffer(tensors, first_op, last_op, size, 0, scratch_of)
        busy = sorted((b for b in placed if b.overlaps_in_time(candidate)), key=lambda b: b.offset)
        offset = 0
        for b in busy:
            if offset + size <= b.offset:
                break
            offset = max(offset, b.offset + b.size)
        placed.append(Buffer(tensors, first_op, last_op, size, offset, scratch_of))
    return placed


def plan_memory(
    graph: Graph,
    scratch_bytes: dict[int, int] | None = None,
    inplace_ops: set[int] | None = None,
) -> MemoryPlan:
    """Plan the arena for ``graph``; deterministic for the same arguments."""
    items: list[_Item] = []
    for g in _groups(graph, inplace_ops or set()):
        items.append((tuple(g.tensors), g.first, g.last, _align(g.size), None))
    for op_index, size in sorted((scratch_bytes or {}).items()):
        if size > 0:
            items.append(((), op_index, op_index, _align(size), op_index))
    placed = min(
        (_place(items, key) for key in _ORDERS),
        key=lambda bufs: max((b.offset + b.size for b in bufs), default=0),
    )
    placed.sort(key=lambda b: (b.offset, b.first_op))
    offsets = {t: b.offset for b in placed for t in b.tensors}
    scratch = {b.scratch_of: (b.offset, b.size) for b in placed if b.scratch_of is not None}
    arena = max((b.offset + b.size for b in placed), default=0)
    return MemoryPlan(
        arena_bytes=arena,
        offsets=offsets,
        scratch=scratch,
        buffers=tuple(placed),
        peak_live_bytes=peak_live(placed, len(graph.ops)),
    )


def peak_live(buffers: Sequence[Buffer], op_count: int) -> int:
    """The most bytes of ``buffers`` alive at once, over ops 0 to ``op_count - 1``."""
    return max(
        (sum(b.size for b in buffers if b.first_op <= i <= b.last_op) for i in range(op_count)),
        default=0,
    )


def check_plan(graph: Graph, plan: MemoryPlan) -> list[str]:
    """Walk the ops in order; return every overlap of live buffers (empty: sound).

    Checks that each tensor and scratch buffer lies inside the arena, and that at
    each op no two distinct live buffers share a byte. Liveness is recomputed here
    from the graph, independently of how the planner grouped tensors.
    """
    problems: list[str] = []
    folded = folded_tensors(graph)
    n = len(graph.ops)
    life: dict[int, list[int]] = {t: [0, 0] for t in graph.inputs}
    for op in graph.ops:
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and t not in folded and not graph.tensor(t).is_constant:
                span = life.setdefault(t, [op.index, op.index])
                span[1] = op.index
    for t in graph.outputs:
        life[t][1] = n - 1
    regions: list[tuple[str, int, int, int, int, frozenset[int]]] = []
    storage = {t: b for b in plan.buffers for t in b.tensors}
    for t, (a, b) in life.items():
        if t not in plan.offsets:
            problems.append(f"tensor {t} has no offset")
            continue
        size = graph.tensor(t).nbytes
        off = plan.offsets[t]
        if off % ALIGNMENT or off + size > plan.arena_bytes:
            problems.append(f"tensor {t} at {off}+{size} is misaligned or outside the arena")
        shared = frozenset(storage[t].tensors) if t in storage else frozenset({t})
        regions.append((f"tensor {t}", a, b, off, size, shared))
    for op_index, (off, size) in plan.scratch.items():
        if off + size > plan.arena_bytes:
            problems.append(f"scratch of op {op_index} is outside the arena")
        regions.append((f"scratch of op {op_index}", op_index, op_index, off, size, frozenset()))
    for i in range(n):
        live = [r for r in regions if r[1] <= i <= r[2]]
        for x in range(len(live)):
            for y in range(x + 1, len(live)):
                p, q = live[x], live[y]
                same_storage = p[5] and p[5] == q[5]
                if same_storage:
                    continue
                if p[3] < q[3] + q[4] and q[3] < p[3] + p[4]:
                    problems.append(
                        f"op {i}: {p[0]} [{p[3]}, +{p[4]}) overlaps {q[0]} [{q[3]}, +{q[4]})"
                    )
    return problems
