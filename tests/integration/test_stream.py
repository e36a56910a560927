"""The stream schedule: the first ops row by row, bit-exact with the layer schedule.

Small chains of convolutions, depthwise convolutions and PADs written
directly as TFLite flatbuffers run with every hand-over point the segment
allows; each must give the layer schedule's outputs and the reference's
(LiteRT, or TFLite Micro where a FULLY_CONNECTED op makes them differ).
The plans are checked for overlapping live buffers and for steps that read
rows their windows do not hold.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mnmcu.emit.aot import emit_aot, firmware_graph, firmware_plan
from mnmcu.emit.host import compile_host, run_host, run_host_layers
from mnmcu.errors import InvalidValue
from mnmcu.graph import Graph, load_graph
from mnmcu.plan import MemoryPlan
from mnmcu.reference import expected_outputs
from mnmcu.stream import (
    ADVANCE,
    ROW,
    StreamPlan,
    check_stream_plan,
    plan_stream,
    segment_length,
)
from mnmcu.synth import synth_graph
from mnmcu.verify import make_inputs

from ..conftest import run_mnmcu
from .conftest import MOBILENETS
from .test_aot import RUN_TIMEOUT_S, TinyModel, _out_size

if shutil.which("gcc") is None:
    pytest.skip("gcc is not installed: apt-get install gcc", allow_module_level=True)


# --------------------------------------------------------------------------
# Chains of ops that stream
# --------------------------------------------------------------------------


class Chain:
    """A TinyModel grown op by op from one input; tracks the current tensor's shape and scale."""

    def __init__(self, shape: list[int], seed: int) -> None:
        self.m = TinyModel()
        self.rng = np.random.default_rng(seed)
        self.shape, self.scale = list(shape), 0.05
        self.x = self.m.tensor(shape, scale=self.scale, zp=-3)
        self.y = self.x

    def _out(self, shape: list[int]) -> int:
        self.scale = float(np.exp(self.rng.uniform(np.log(0.02), np.log(0.2))))
        self.shape = shape
        return self.m.tensor(shape, scale=self.scale, zp=int(self.rng.integers(-30, 30)))

    def conv(self, k: int, stride: int, pad: str, cout: int = 0, *, dil: int = 1, kw: int = 0,
             act: str = "NONE", depthwise: bool = False, mult: int = 1) -> Chain:  # fmt: skip
        kw = kw or k
        _, h, w, c = self.shape
        oh, ow = _out_size(pad, h, k, stride, dil), _out_size(pad, w, kw, stride, dil)
        cout = c * mult if depthwise else cout
        fs = self.rng.uniform(0.002, 0.02, size=cout)
        shape = [1, k, kw, cout] if depthwise else [cout, k, kw, c]
        filt = self.rng.integers(-127, 128, size=shape)
        f = self.m.tensor(shape, scale=fs, data=filt, axis=3 if depthwise else 0)
        bias = self.rng.integers(-3000, 3000, size=cout)
        b = self.m.tensor([cout], "int32", scale=self.scale * fs, data=bias)
        src, y = self.y, self._out([1, oh, ow, cout])
        fields: dict[str, object] = dict(
            padding=pad, strideW=stride, strideH=stride, dilationWFactor=dil,
            dilationHFactor=dil, fusedActivationFunction=act,
        )  # fmt: skip
        if depthwise:
            fields["depthMultiplier"] = mult
        options = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
        self.m.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [src, f, b], [y], options,
                  **fields)  # fmt: skip
        self.y = y
        return self

    def pad(self, before: list[int], after: list[int]) -> Chain:
        pads = self.m.tensor([4, 2], "int32", data=np.array([before, after]).T)
        shape = [d + b + a for d, b, a in zip(self.shape, before, after, strict=True)]
        # PAD keeps the quantization of its input
        y = self.m.tensor(
            shape, scale=self.scale, zp=self.m.tensors[self.y].quantization.zeroPoint[0]
        )  # type: ignore[attr-defined]
        self.m.op("PAD", [self.y, pads], [y])
        self.y, self.shape = y, shape
        return self

    def table(self, opcode: str) -> Chain:
        """An element-wise op the runtime runs as a table (HARD_SWISH, RELU6, QUANTIZE, ...)."""
        fixed = {"LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}
        src = self.y
        if opcode in fixed:
            self.scale, zp = fixed[opcode]
            y = self.m.tensor(self.shape, scale=self.scale, zp=zp)
        else:
            y = self._out(list(self.shape))
        self.m.op(opcode, [src], [y])
        self.y = y
        return self

    def head(self, classes: int) -> Chain:
        """MEAN over H and W, FULLY_CONNECTED, SOFTMAX."""
        axes = self.m.tensor([2], "int32", data=[1, 2])
        c = self.shape[3]
        mean = self._out([1, c])
        self.m.op("MEAN", [self.y, axes], [mean], "ReducerOptions", keepDims=False)
        in_scale = self.scale
        fs = self.rng.uniform(0.002, 0.02, size=classes)
        f = self.m.tensor([classes, c], scale=fs, data=self.rng.integers(-127, 128, (classes, c)))
        bias = self.rng.integers(-3000, 3000, size=classes)
        b = self.m.tensor([classes], "int32", scale=in_scale * fs, data=bias)
        logits = self._out([1, classes])
        self.m.op("FULLY_CONNECTED", [mean, f, b], [logits], "FullyConnectedOptions",
                  fusedActivationFunction="NONE")  # fmt: skip
        probs = self.m.tensor([1, classes], scale=1 / 256, zp=-128)
        self.m.op("SOFTMAX", [logits], [probs], "SoftmaxOptions", beta=1.0)
        self.y = probs
        return self

    def build(self) -> bytes:
        return self.m.build([self.x], [self.y])


def conv_chain() -> Chain:
    """3x3 stride 1 and 2, SAME and VALID, 1x1, depthwise (multiplier 2), dilation; odd heights."""
    return (
        Chain([1, 33, 19, 3], seed=10)
        .conv(3, 1, "SAME", 8, act="RELU6")
        .conv(3, 1, "SAME", depthwise=True, act="RELU")
        .conv(1, 1, "VALID", 12)
        .conv(3, 2, "SAME", depthwise=True, act="RELU6")
        .conv(3, 2, "VALID", 10, act="RELU")
        .conv(3, 1, "VALID", depthwise=True, mult=2)
        .conv(3, 1, "SAME", 6, dil=2)
        .conv(3, 1, "SAME", depthwise=True, dil=2)
    )


def stride_chain() -> Chain:
    """Strides larger than the kernel (rows never read), 5x5 stride 2, 1x1 stride 2."""
    return (
        Chain([1, 29, 8, 4], seed=11)
        .conv(2, 3, "VALID", 6, kw=2)
        .conv(5, 2, "SAME", 8, act="RELU")
        .conv(3, 2, "SAME", depthwise=True)
        .conv(1, 2, "SAME", 5)
    )


def pad_chain() -> Chain:
    """PAD (rows, columns, channels) then VALID convolutions."""
    return (
        Chain([1, 15, 10, 5], seed=12)
        .pad([0, 1, 1, 0], [0, 2, 1, 0])
        .conv(3, 2, "VALID", 8)
        .pad([0, 2, 0, 1], [0, 0, 1, 2])
        .conv(3, 1, "VALID", depthwise=True, act="RELU")
        .pad([0, 0, 0, 0], [0, 3, 0, 0])
        .conv(1, 1, "VALID", 6)
    )


def head_chain() -> Chain:
    """A MobileNet's shape in small: convolutions, then MEAN, FULLY_CONNECTED, SOFTMAX."""
    return (
        Chain([1, 19, 12, 3], seed=13)
        .conv(3, 2, "SAME", 8, act="RELU6")
        .conv(3, 1, "SAME", depthwise=True, act="RELU6")
        .conv(1, 1, "VALID", 16, act="RELU6")
        .conv(3, 2, "SAME", depthwise=True, act="RELU6")
        .conv(1, 1, "VALID", 16, act="RELU6")
        .head(5)
    )


def table_chain() -> Chain:
    """MobileNetV3's stem (convolution, HARD_SWISH) and element-wise tables between windows."""
    return (
        Chain([1, 17, 11, 3], seed=14)
        .conv(3, 2, "SAME", 8)
        .table("HARD_SWISH")
        .conv(3, 1, "SAME", depthwise=True)
        .table("RELU6")
        .conv(1, 1, "VALID", 6)
        .table("QUANTIZE")
        .table("LOGISTIC")
        .conv(3, 2, "SAME", depthwise=True)
        .table("TANH")
    )


CHAINS = {"conv": (conv_chain, 8), "stride": (stride_chain, 4), "pad": (pad_chain, 6),
          "head": (head_chain, 5), "table": (table_chain, 9)}  # fmt: skip


def _model(name: str, tmp_path: Path) -> tuple[Path, Graph]:
    src = tmp_path / f"{name}.tflite"
    src.write_bytes(CHAINS[name][0]().build())
    return src, firmware_graph(load_graph(src))


def _run(graph: Graph, plan: MemoryPlan, src: Path, work: Path, xs: np.ndarray,
         schedule: str, sanitize: bool = False) -> np.ndarray:  # fmt: skip
    emit_aot(graph, plan, work / "c", "model", str(src), schedule=schedule)
    exe = compile_host(work / "c", work / "bin" / "model", sanitize=sanitize)
    return run_host(exe, xs, timeout=RUN_TIMEOUT_S)


# --------------------------------------------------------------------------
# Bit-exact outputs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_every_handover_point_is_bit_exact(name: str, tmp_path: Path) -> None:
    src, graph = _model(name, tmp_path)
    assert segment_length(graph) == CHAINS[name][1]
    xs, _ = make_inputs(graph, 6, seed=5)
    want = expected_outputs(src.read_bytes(), xs, "tflm").reshape(len(xs), -1)
    layer = _run(graph, firmware_plan(graph), src, tmp_path / "layer", xs, "layer")
    np.testing.assert_array_equal(layer.reshape(len(xs), -1), want)
    for m in range(1, segment_length(graph) + 1):
        plan = plan_stream(graph, streamed=m)
        assert plan.streamed == m and check_stream_plan(graph, plan) == []
        last = m == segment_length(graph)
        got = _run(graph, plan, src, tmp_path / f"stream{m}", xs, "stream", sanitize=last)
        np.testing.assert_array_equal(got.reshape(len(xs), -1), want, err_msg=f"{m} ops streamed")


def test_handover_and_later_tensors_match_the_layer_schedule(tmp_path: Path) -> None:
    """Dumped per op: the hand-over tensor and every later op's output, never a window."""
    src, graph = _model("head", tmp_path)
    xs, _ = make_inputs(graph, 3, seed=6)
    dumps = {}
    for schedule, plan in (
        ("layer", firmware_plan(graph)),
        ("stream", plan_stream(graph, streamed=4)),
    ):
        work = tmp_path / schedule
        emit_aot(graph, plan, work / "c", "model", str(src), schedule=schedule)
        exe = compile_host(work / "c", work / "dump", extra_flags=["-DMNMCU_DUMP_LAYERS"])
        dumps[schedule] = run_host_layers(exe, xs, timeout=RUN_TIMEOUT_S)
    for layer, stream in zip(dumps["layer"], dumps["stream"], strict=True):
        assert sorted(stream) == [-1, *(op.index for op in graph.ops[3:])]
        for index, values in stream.items():
            np.testing.assert_array_equal(values, layer[index], err_msg=f"op {index}")


def test_generated_stream_code_is_deterministic_and_small(tmp_path: Path) -> None:
    src, graph = _model("conv", tmp_path)
    plan = plan_stream(graph, streamed=8)
    texts = []
    for run in ("a", "b"):
        emit_aot(graph, plan, tmp_path / run, "model", str(src), schedule="stream")
        texts.append((tmp_path / run / "mnmcu_model_model.c").read_text())
    assert texts[0] == texts[1]
    # one call per streamed op, in the row dispatcher; none in the straight-line invoke
    convs = sum(op.opcode == "CONV_2D" for op in graph.ops[:8])
    assert texts[0].count("mnmcu_conv2d_s8_run(&p,") == convs == 4
    assert "status = mnmcu_conv2d_s8_run(" not in texts[0]
    assert f"s_stream_steps[{len(plan.steps)}]" in texts[0]


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------


def test_segment_stops_at_ops_that_cannot_stream(tmp_path: Path) -> None:
    _, graph = _model("head", tmp_path)
    assert [op.opcode for op in graph.ops[5:]] == ["MEAN", "FULLY_CONNECTED", "SOFTMAX"]
    assert segment_length(graph) == 5
    # a tensor two ops read ends the segment: it is the hand-over tensor
    twice = dataclasses.replace(
        graph,
        ops=(
            *graph.ops[:3],
            dataclasses.replace(
                graph.ops[3], inputs=(graph.ops[1].outputs[0], *graph.ops[3].inputs[1:])
            ),
            *graph.ops[4:],
        ),  # fmt: skip
    )
    assert segment_length(twice) == 2
    with pytest.raises(InvalidValue, match="longest prefix that can is 5 ops"):
        plan_stream(graph, streamed=6)


def test_vww_shape_streams_into_a_smaller_arena() -> None:
    """MobileNetV1 0.25 at 96x96 (the VWW model's shapes): 8 ops stream, 41,856 B vs 55,296."""
    graph = synth_graph("v1", 0.25, 96)
    plan = plan_stream(graph)
    assert (plan.streamed, plan.arena_bytes, plan.layer_arena_bytes) == (8, 41_856, 55_296)
    assert plan.to_dict()["schedule"]["streamed_ops"] == 8  # type: ignore[index]
    for m in range(segment_length(graph) + 1):
        assert check_stream_plan(graph, plan_stream(graph, streamed=m)) == [], m


def test_plan_check_finds_overlaps_and_missing_rows() -> None:
    graph = synth_graph("v1", 0.25, 96)
    plan = plan_stream(graph)
    assert isinstance(plan, StreamPlan) and plan.streamed == 8
    window = plan.windows[2]
    moved = dataclasses.replace(window, offset=plan.offsets[plan.tensors[0]])
    offsets = {**plan.offsets, window.tensor: moved.offset}
    windows = (*plan.windows[:2], moved, *plan.windows[3:])
    broken = dataclasses.replace(plan, offsets=offsets, windows=windows)
    assert any("overlaps" in p for p in check_stream_plan(graph, broken))
    # without its window advances, an op reads rows its window no longer holds
    no_advance = dataclasses.replace(plan, steps=tuple(s for s in plan.steps if s[0] != ADVANCE))
    assert any("reads rows" in p or "writes row" in p for p in check_stream_plan(graph, no_advance))
    short = dataclasses.replace(plan, steps=plan.steps[:-1])
    assert plan.steps[-1][0] == ROW
    assert any("hand-over rows" in p for p in check_stream_plan(graph, short))


def test_nothing_streams_where_it_does_not_help(tmp_path: Path) -> None:
    """A single convolution gains nothing: the stream plan is the layer plan."""
    chain = Chain([1, 9, 9, 3], seed=1).conv(3, 1, "SAME", 4)
    src = tmp_path / "one.tflite"
    src.write_bytes(chain.build())
    graph = load_graph(src)
    plan = plan_stream(graph)
    assert plan.streamed == 0 and plan.arena_bytes == firmware_plan(graph).arena_bytes
    emit_aot(graph, plan, tmp_path / "s", "model", str(src), schedule="stream")
    emit_aot(graph, firmware_plan(graph), tmp_path / "l", "model", str(src))
    for f in ("mnmcu_model_model.c", "mnmcu_model_model.h"):
        assert (tmp_path / "s" / f).read_text() == (tmp_path / "l" / f).read_text()


# --------------------------------------------------------------------------
# Refusals and the CLI
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kernels", ["dsp", "helium"])
@pytest.mark.parametrize("name", ["conv", "stride", "head", "table"])
def test_fast_kernels_stream_bit_exact(name: str, kernels: str, tmp_path: Path) -> None:
    """The fast kernels' C paths (the host has no DSP or Helium) called row by row give the
    layer schedule's bytes, with the segment's scratch shared by its row calls."""
    src, graph = _model(name, tmp_path)
    xs = make_inputs(graph, 6, None, seed=4)[0]
    work = tmp_path / "layer"
    emit_aot(graph, firmware_plan(graph, kernels), work / "c", "model", str(src), kernels=kernels)
    want = run_host(compile_host(work / "c", work / "model"), xs, timeout=RUN_TIMEOUT_S)
    longest = segment_length(graph)
    for m in sorted({2, longest}):
        plan = plan_stream(graph, kernels, streamed=m)
        assert check_stream_plan(graph, plan) == [], m
        work = tmp_path / f"stream{m}"
        emit_aot(graph, plan, work / "c", "model", str(src), kernels=kernels, schedule="stream")
        text = (work / "c" / "mnmcu_model_model.c").read_text()
        exe = compile_host(work / "c", work / "model", sanitize=m == longest)
        got = run_host(exe, xs, timeout=RUN_TIMEOUT_S)
        np.testing.assert_array_equal(got, want, err_msg=f"{m} ops streamed with {kernels}")
    assert "_dsp_run(&p" in text or "_mve_run(&p" in text, "no streamed op on a fast kernel"
    # one scratch region for the segment's row calls
    assert len({plan.scratch[i][0] for i in range(longest) if i in plan.scratch}) <= 1


def test_stream_refusals(tmp_path: Path) -> None:
    src, graph = _model("conv", tmp_path)
    with pytest.raises(InvalidValue, match="unknown kernel set"):
        plan_stream(graph, "neon")
    with pytest.raises(InvalidValue, match="needs a stream plan"):
        emit_aot(graph, firmware_plan(graph), tmp_path / "c", "model", str(src), schedule="stream")


def test_verify_cli_reports_the_stream_arena(tmp_path: Path) -> None:
    src, graph = _model("head", tmp_path)
    plan = plan_stream(graph)
    assert plan.streamed > 0 and plan.arena_bytes < plan.layer_arena_bytes
    result = run_mnmcu("-q", "verify", str(src), "--schedule", "stream", "--count", "4")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert (
        f"arena {plan.arena_bytes:,} B (stream schedule: ops 0-{plan.streamed - 1} row by row)"
        in line
    )
    assert "from TFLite Micro: 0" in line and "ASan/UBSan clean" in line


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenets_stream_bit_exact_layer_by_layer(
    name: str, verify_models: Callable[[str], Path]
) -> None:
    """Every MobileNet of the AOT test list with the stream schedule: outputs and every
    tensor the schedule materialises equal the reference's, in a smaller arena."""
    from mnmcu.verify import verify

    src = verify_models(name)
    graph = firmware_graph(load_graph(src))
    result = verify(src, count=4, layers=True, sanitize=False, schedule="stream")
    assert result.bit_exact and result.tflm_mismatches == 0 and result.first_bad_layer is None
    assert result.schedule == "stream" and result.streamed_ops >= 3
    assert result.layers_compared > 0
    assert result.arena_bytes < firmware_plan(graph).arena_bytes


def test_untrained_v1_streams_bit_exact_under_sanitizers(tmp_path: Path) -> None:
    """MobileNetV1 0.25 at 96x96, converted: smaller arena, outputs bit-exact under ASan/UBSan."""
    from mnmcu.bench import convert_untrained
    from mnmcu.model.spec import ModelSpec
    from mnmcu.verify import verify

    src = tmp_path / "v1.tflite"
    src.write_bytes(convert_untrained(ModelSpec(arch="v1", alpha=0.25, resolution=96, classes=2)))
    stream = verify(src, count=8, schedule="stream")
    layer_arena = firmware_plan(firmware_graph(load_graph(src))).arena_bytes
    assert stream.bit_exact and stream.sanitized and stream.tflm_mismatches == 0
    assert stream.schedule == "stream" and stream.streamed_ops == 8
    assert stream.arena_bytes < layer_arena
