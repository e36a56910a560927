"""The AOT memory plan: sound (no live tensors overlap), tight and deterministic."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mnmcu.analyze import activation_peak
from mnmcu.graph import load_graph
from mnmcu.plan import ALIGNMENT, check_plan, plan_memory

from .conftest import SPECS

pytestmark = pytest.mark.slow


def _elementwise(graph) -> set[int]:
    return {op.index for op in graph.ops if op.opcode in ("ADD", "MUL", "HARD_SWISH")}


@pytest.mark.parametrize("arch", list(SPECS))
@pytest.mark.parametrize("inplace", [False, True])
def test_every_plan_is_sound(int8_models: dict[str, Path], arch: str, inplace: bool) -> None:
    graph = load_graph(int8_models[arch])
    scratch = {op.index: 100 + op.index for op in graph.ops if op.opcode == "DEPTHWISE_CONV_2D"}
    plan = plan_memory(graph, scratch, _elementwise(graph) if inplace else None)
    assert check_plan(graph, plan) == []
    assert set(plan.scratch) == set(scratch)
    # never below what is alive at once, never above everything side by side
    peak, _ = activation_peak(graph)
    everything = sum(b.size for b in plan.buffers)
    assert plan.arena_bytes <= everything
    if not inplace:
        assert plan.arena_bytes >= peak


def test_vww_plan_reaches_the_layer_by_layer_bound(int8_models: dict[str, Path]) -> None:
    # MobileNetV1 0.25 at 96: the first pointwise conv holds 48x48x8 in and
    # 48x48x16 out at once; no plan without in-place tricks can go below that.
    plan = plan_memory(load_graph(int8_models["v1"]))
    assert plan.arena_bytes == 48 * 48 * 8 + 48 * 48 * 16


def test_plans_are_deterministic(int8_models: dict[str, Path]) -> None:
    graph = load_graph(int8_models["v3-small"])
    assert plan_memory(graph, None, _elementwise(graph)) == plan_memory(
        load_graph(int8_models["v3-small"]), None, _elementwise(graph)
    )


def test_checker_catches_overlap(int8_models: dict[str, Path]) -> None:
    graph = load_graph(int8_models["v1"])
    plan = plan_memory(graph)
    conv = graph.ops[0]
    src, dst = conv.inputs[0], conv.outputs[0]
    offsets = dict(plan.offsets)
    offsets[dst] = offsets[src]  # the first conv would overwrite its own input
    problems = check_plan(graph, replace(plan, offsets=offsets))
    assert any(f"tensor {dst}" in p and f"tensor {src}" in p for p in problems)
    offsets[dst] = plan.arena_bytes - ALIGNMENT  # and run past the arena's end
    assert any("outside the arena" in p for p in check_plan(graph, replace(plan, offsets=offsets)))
