"""The AOT runtime, compiled with gcc and compared bit for bit with TFLite.

The oracle is TFLite's reference kernels as LiteRT runs them
(``OpResolverType.BUILTIN_REF``), an implementation independent of ours.
Three kinds of models are compared:

* converted MobileNets V1/V2/V3 (slow: TensorFlow conversion), every output
  byte over 23 inputs, every intermediate tensor over 3, and the same C built
  with AddressSanitizer and UndefinedBehaviorSanitizer;
* small "op zoo" models written directly as TFLite flatbuffers (no
  TensorFlow, fast), one op per case with parameters MobileNets rarely use
  (dilation, VALID padding, groups, depth multipliers, per-tensor weights,
  filter zero points, broadcasts, many softmax input scales, ...), compared
  op by op;
* the fully connected requantisation, which TFLite's reference kernel does in
  double precision, against Python's own IEEE-754 doubles.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mnmcu import __version__
from mnmcu.bench import synthetic_images
from mnmcu.emit.aot import emit_aot, inplace_ops, scratch_bytes
from mnmcu.emit.host import compile_host, host_info, run_host, run_host_layers
from mnmcu.errors import InvalidValue, ToolMissing, UnsupportedModel
from mnmcu.graph import Graph, load_graph
from mnmcu.paths import data_dir
from mnmcu.plan import MemoryPlan, check_plan, plan_memory
from mnmcu.proc import run_command

from .conftest import MOBILENETS

RUN_TIMEOUT_S = 120.0


@pytest.fixture(autouse=True)
def _gcc() -> None:
    """Skip without gcc, unless MNMCU_REQUIRE_GCC=1 makes that a failure."""
    if shutil.which("gcc") is None:
        if os.environ.get("MNMCU_REQUIRE_GCC") == "1":
            pytest.fail("gcc is required (MNMCU_REQUIRE_GCC=1): apt-get install gcc")
        pytest.skip("gcc is not installed: apt-get install gcc")


# --------------------------------------------------------------------------
# Reference and helpers
# --------------------------------------------------------------------------


def litert_tensors(flatbuffer: bytes, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor after LiteRT's reference kernels ran on ``x`` (full input shape)."""
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    values = {}
    for t in interp.get_tensor_details():
        try:
            values[t["index"]] = interp.get_tensor(t["index"]).copy()
        except ValueError:
            continue
    return values


def litert_outputs(flatbuffer: bytes, xs: np.ndarray) -> np.ndarray:
    """Model outputs of LiteRT's reference kernels for each input in ``xs`` (N, *input_shape)."""
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(
        model_content=flatbuffer,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
    )
    interp.allocate_tensors()
    i = interp.get_input_details()[0]["index"]
    o = interp.get_output_details()[0]["index"]
    outs = []
    for x in xs:
        interp.set_tensor(i, x)
        interp.invoke()
        outs.append(interp.get_tensor(o).copy())
    return np.stack(outs)


def make_inputs(shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """(count, *shape) int8: all -128, all 127, all 0, then uniform random values."""
    rng = np.random.default_rng(seed)
    fixed = [np.full(shape, v, np.int8) for v in (-128, 127, 0)]
    rand = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(count - 3)]
    return np.stack((fixed + rand)[:count])


def plan_for(graph: Graph) -> MemoryPlan:
    plan = plan_memory(graph, scratch_bytes(graph), inplace_ops(graph))
    assert check_plan(graph, plan) == []
    return plan


@dataclass
class Build:
    """A model generated as C and compiled: plain, layer-dumping and sanitized."""

    graph: Graph
    flatbuffer: bytes
    c_dir: Path
    exe: Path
    dump_exe: Path
    asan_exe: Path | None
    src: Path
    arithmetic: str = "tflm"


def build(
    src: Path, work: Path, name: str, sanitize: bool = False, arithmetic: str = "tflm"
) -> Build:
    graph = load_graph(src)
    c_dir = work / "c"
    emit_aot(graph, plan_for(graph), c_dir, name, str(src), arithmetic=arithmetic)
    exe = compile_host(c_dir, work / "bin" / name)
    dump = compile_host(c_dir, work / "bin" / f"{name}_dump", extra_flags=["-DMNMCU_DUMP_LAYERS"])
    asan = compile_host(c_dir, work / "bin" / f"{name}_asan", sanitize=True) if sanitize else None
    return Build(graph, src.read_bytes(), c_dir, exe, dump, asan, src, arithmetic)


def expected(b: Build, xs: np.ndarray) -> np.ndarray:
    """The outputs of the reference ``b``'s arithmetic targets, shaped as run_host's.

    ``xs`` are whole model inputs (the op zoos have batches of more than one).
    """
    from mnmcu.reference import TFLM_ARITHMETIC_OPS, tflm_run

    if b.arithmetic == "tflm" and any(op.opcode in TFLM_ARITHMETIC_OPS for op in b.graph.ops):
        outputs = tflm_run(b.src, xs).outputs
        assert outputs is not None
        return outputs.reshape(len(xs), *b.graph.output.shape)
    return litert_outputs(b.flatbuffer, xs)


def _reference_tensors(b: Build, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor after ``x`` in the reference ``b``'s arithmetic targets."""
    from mnmcu.reference import TFLM_ARITHMETIC_OPS, tflm_intermediates

    if b.arithmetic == "tflm" and any(op.opcode in TFLM_ARITHMETIC_OPS for op in b.graph.ops):
        outputs = [op.outputs[0] for op in b.graph.ops]
        return tflm_intermediates(b.src, x, outputs)
    return litert_tensors(b.flatbuffer, x)


def assert_layers_equal(b: Build, xs: np.ndarray) -> int:
    """Every op's output equals the reference's for every input; returns the tensors compared."""
    dumps = run_host_layers(b.dump_exe, xs, timeout=RUN_TIMEOUT_S)
    compared = 0
    for x, dump in zip(xs, dumps, strict=True):
        ref = _reference_tensors(b, x)
        for op in b.graph.ops:
            if op.index not in dump:
                continue
            want = ref[op.outputs[0]].reshape(-1)
            got = dump[op.index]
            assert want.dtype == np.int8
            diff = np.flatnonzero(want != got) if want.shape == got.shape else [-1]
            assert len(diff) == 0, (
                f"op {op.index} {op.opcode} {op.options}: {len(diff)} of {want.size} bytes "
                f"differ, first at {diff[0]}"
            )
            compared += 1
        assert np.array_equal(dump[-1], ref[b.graph.outputs[0]].reshape(-1))
    return compared


# --------------------------------------------------------------------------
# TFLite models written directly from the schema (no TensorFlow)
# --------------------------------------------------------------------------

# Op versions the int8 kernels are registered with (as the converter writes them).
_VERSIONS = {
    "CONV_2D": 3,
    "DEPTHWISE_CONV_2D": 3,
    "FULLY_CONNECTED": 4,
    "SOFTMAX": 2,
    "MEAN": 2,
    "ADD": 2,
    "MUL": 2,
    "HARD_SWISH": 1,
    "AVERAGE_POOL_2D": 2,
    "MAX_POOL_2D": 2,
    "PAD": 2,
    "QUANTIZE": 2,
    "RELU": 2,
    "RELU6": 2,
    "RESHAPE": 1,
    "SHAPE": 1,
    "STRIDED_SLICE": 1,
    "PACK": 1,
    "CONCATENATION": 2,
    "LOGISTIC": 2,
    "TANH": 2,
    "SQUEEZE": 1,
    "EXPAND_DIMS": 1,
    "ABS": 2,
}
_ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


class TinyModel:
    """A single-subgraph TFLite model assembled tensor by tensor, op by op."""

    def __init__(self) -> None:
        from ai_edge_litert import schema_py_generated as schema

        self.s = schema
        self.tensors: list[object] = []
        self.buffers: list[object] = [schema.BufferT()]
        self.ops: list[object] = []
        self.codes: list[int] = []
        self.code_objs: list[object] = []

    def tensor(
        self,
        shape: list[int],
        dtype: str = "int8",
        scale: float | np.ndarray | None = None,
        zp: int = 0,
        data: object = None,
        axis: int = 0,
    ) -> int:
        s = self.s
        t = s.TensorT()
        t.shape = list(shape)
        t.type = {"int8": s.TensorType.INT8, "int32": s.TensorType.INT32}[dtype]
        t.name = f"t{len(self.tensors)}"
        t.buffer = 0
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [int(zp)] * len(q.scale)
            q.quantizedDimension = axis
            t.quantization = q
        if data is not None:
            b = s.BufferT()
            raw = np.ascontiguousarray(np.asarray(data, dtype=dtype)).tobytes()
            b.data = np.frombuffer(raw, dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(
        self, name: str, inputs: list[int], outputs: list[int], options: str = "", **fields: object
    ) -> None:
        s = self.s
        code = getattr(s.BuiltinOperator, name)
        if code not in self.codes:
            c = s.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = (
                code,
                min(code, 127),
                _VERSIONS[name],
            )
            self.codes.append(code)
            self.code_objs.append(c)
        o = s.OperatorT()
        o.opcodeIndex = self.codes.index(code)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if options:
            opts = getattr(s, options + "T")()
            for key, value in fields.items():
                if key == "fusedActivationFunction":
                    value = _ACTIVATIONS[str(value)]
                elif key == "padding":
                    value = getattr(s.Padding, str(value))
                setattr(opts, key, value)
            o.builtinOptionsType = getattr(s.BuiltinOptions, options)
            o.builtinOptions = opts
        self.ops.append(o)

    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        import flatbuffers

        s = self.s
        sg = s.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs, sg.name = list(inputs), list(outputs), "main"
        m = s.ModelT()
        m.version, m.description = 3, "mnmcu op zoo"
        m.subgraphs, m.operatorCodes, m.buffers = [sg], self.code_objs, self.buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _act_tensor(
    m: TinyModel, rng: np.random.Generator, shape: list[int], lo: float, hi: float
) -> int:
    scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return m.tensor(shape, scale=scale, zp=int(rng.integers(-30, 30)))


def _out_size(padding: str, size: int, k: int, stride: int, dilation: int) -> int:
    eff = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size - eff + stride) // stride


def conv_zoo() -> bytes:
    """CONV_2D and DEPTHWISE_CONV_2D variants reading one input."""
    rng = np.random.default_rng(0)
    m = TinyModel()
    h, w, c = 11, 9, 6
    x = m.tensor([1, h, w, c], scale=0.05, zp=-3)
    y = x
    # kernel h, w, stride, dilation, padding, out channels, groups, per-channel, activation
    for kh, kw, st, dil, pad, cout, groups, per_channel, act in [
        (3, 3, 1, 1, "SAME", 8, 1, True, "RELU6"),
        (5, 5, 2, 1, "SAME", 4, 1, True, "NONE"),
        (3, 3, 1, 2, "VALID", 5, 1, False, "RELU"),
        (1, 1, 1, 1, "VALID", 12, 1, True, "RELU_N1_TO_1"),
        (2, 4, 3, 1, "SAME", 6, 1, True, "NONE"),
        (3, 3, 2, 1, "VALID", 6, 2, True, "NONE"),
        (3, 2, 1, 3, "SAME", 3, 3, False, "RELU"),
    ]:
        oh, ow = _out_size(pad, h, kh, st, dil), _out_size(pad, w, kw, st, dil)
        fs = rng.uniform(0.002, 0.02, size=cout if per_channel else 1)
        filt = rng.integers(-127, 128, size=(cout, kh, kw, c // groups))
        f = m.tensor(list(filt.shape), scale=fs, data=filt)
        b = m.tensor([cout], "int32", scale=0.05 * fs, data=rng.integers(-3000, 3000, size=cout))
        y = _act_tensor(m, rng, [1, oh, ow, cout], 0.02, 0.2)
        m.op(
            "CONV_2D",
            [x, f, b],
            [y],
            "Conv2DOptions",
            padding=pad,
            strideW=st,
            strideH=st,
            dilationWFactor=dil,
            dilationHFactor=dil,
            fusedActivationFunction=act,
        )
    for kh, kw, st, dil, pad, mult, act in [
        (3, 3, 1, 1, "SAME", 1, "RELU6"),
        (3, 3, 2, 1, "SAME", 2, "NONE"),
        (5, 5, 1, 2, "VALID", 1, "RELU"),
        (2, 3, 2, 1, "VALID", 3, "NONE"),
    ]:
        oh, ow, cout = _out_size(pad, h, kh, st, dil), _out_size(pad, w, kw, st, dil), c * mult
        fs = rng.uniform(0.002, 0.02, size=cout)
        filt = rng.integers(-127, 128, size=(1, kh, kw, cout))
        f = m.tensor(list(filt.shape), scale=fs, data=filt, axis=3)
        b = m.tensor([cout], "int32", scale=0.05 * fs, data=rng.integers(-3000, 3000, size=cout))
        y = _act_tensor(m, rng, [1, oh, ow, cout], 0.02, 0.2)
        m.op(
            "DEPTHWISE_CONV_2D",
            [x, f, b],
            [y],
            "DepthwiseConv2DOptions",
            padding=pad,
            strideW=st,
            strideH=st,
            dilationWFactor=dil,
            dilationHFactor=dil,
            depthMultiplier=mult,
            fusedActivationFunction=act,
        )
    return m.build([x], [y])


def pool_zoo() -> bytes:
    """AVERAGE_POOL_2D, MEAN (keep_dims true and false) and PAD variants."""
    rng = np.random.default_rng(1)
    m = TinyModel()
    x = m.tensor([1, 10, 7, 5], scale=0.04, zp=7)
    y = x
    for fh, fw, st, pad, act in [
        (3, 3, 2, "SAME", "NONE"),
        (2, 2, 2, "VALID", "RELU"),
        (4, 3, 1, "SAME", "RELU6"),
        (10, 7, 1, "VALID", "NONE"),
    ]:
        shape = [1, _out_size(pad, 10, fh, st, 1), _out_size(pad, 7, fw, st, 1), 5]
        y = m.tensor(shape, scale=0.04, zp=7)
        m.op(
            "AVERAGE_POOL_2D",
            [x],
            [y],
            "Pool2DOptions",
            padding=pad,
            strideW=st,
            strideH=st,
            filterWidth=fw,
            filterHeight=fh,
            fusedActivationFunction=act,
        )
    axes = m.tensor([2], "int32", data=[1, 2])
    for keep in (True, False, True, False):
        y = _act_tensor(m, rng, [1, 1, 1, 5] if keep else [1, 5], 0.005, 0.1)
        m.op("MEAN", [x, axes], [y], "ReducerOptions", keepDims=keep)
    for before, after in [((0, 1, 0, 0), (0, 2, 1, 0)), ((0, 0, 3, 0), (0, 0, 0, 2))]:
        pads = m.tensor([4, 2], "int32", data=np.array([before, after]).T)
        shape = [d + b + a for d, b, a in zip([1, 10, 7, 5], before, after, strict=True)]
        y = m.tensor(shape, scale=0.04, zp=7)
        m.op("PAD", [x, pads], [y])
    return m.build([x], [y])


def elementwise_zoo() -> bytes:
    """QUANTIZE, HARD_SWISH, RELU, RELU6, ADD and MUL with constants and broadcasts."""
    rng = np.random.default_rng(2)
    m = TinyModel()
    shape = [1, 6, 5, 8]
    x = m.tensor(shape, scale=0.03, zp=-5)
    y = x
    for _ in range(4):
        s_in = float(np.exp(rng.uniform(np.log(0.005), np.log(0.5))))
        q = m.tensor(shape, scale=s_in, zp=int(rng.integers(-40, 40)))
        m.op("QUANTIZE", [x], [q])
        y = _act_tensor(m, rng, shape, s_in * 0.2, s_in * 3)
        m.op("HARD_SWISH", [q], [y])
    for name in ("RELU", "RELU6", "RELU", "RELU6"):
        y = _act_tensor(m, rng, shape, 0.01, 0.1)
        m.op(name, [x], [y])
    for cshape in ([1, 1, 1, 8], [1, 6, 1, 1], [], shape, [5, 8]):
        const = m.tensor(cshape, scale=0.02, zp=3, data=rng.integers(-128, 128, size=cshape))
        for name, options in (("ADD", "AddOptions"), ("MUL", "MulOptions")):
            y = _act_tensor(m, rng, shape, 0.01, 0.2)
            act = str(rng.choice(["NONE", "RELU", "RELU6"]))
            m.op(name, [x, const], [y], options, fusedActivationFunction=act)
    gate = m.tensor([1, 1, 1, 8], scale=0.05, zp=2)
    axes = m.tensor([2], "int32", data=[1, 2])
    m.op("MEAN", [x, axes], [gate], "ReducerOptions", keepDims=True)
    for name, options in (("ADD", "AddOptions"), ("MUL", "MulOptions")):
        y1 = _act_tensor(m, rng, shape, 0.01, 0.2)
        m.op(name, [x, gate], [y1], options, fusedActivationFunction="NONE")
        y = _act_tensor(m, rng, shape, 0.01, 0.2)
        m.op(name, [gate, y1], [y], options, fusedActivationFunction="NONE")
    return m.build([x], [y])


def head_zoo() -> bytes:
    """RESHAPE, FULLY_CONNECTED (per-channel, per-tensor, filter zero point) and SOFTMAX."""
    rng = np.random.default_rng(3)
    m = TinyModel()
    x = m.tensor([2, 3, 4, 10], scale=0.05, zp=1)
    new_shape = m.tensor([2], "int32", data=[6, 40])
    r = m.tensor([6, 40], scale=0.05, zp=1)
    m.op("RESHAPE", [x, new_shape], [r], "ReshapeOptions", newShape=[6, 40])
    y = r
    for units, per_channel, filter_zp, act in [
        (7, True, 0, "NONE"),
        (5, False, 0, "RELU"),
        (9, False, 3, "NONE"),
        (300, True, 0, "RELU6"),
    ]:
        fs = rng.uniform(0.002, 0.02, size=units if per_channel else 1)
        f = m.tensor([units, 40], scale=fs, zp=filter_zp, data=rng.integers(-127, 128, (units, 40)))
        b = m.tensor([units], "int32", scale=0.05 * fs, data=rng.integers(-3000, 3000, size=units))
        fc = _act_tensor(m, rng, [6, units], 0.01, 0.3)
        m.op(
            "FULLY_CONNECTED", [r, f, b], [fc], "FullyConnectedOptions", fusedActivationFunction=act
        )
        for beta in (1.0, 0.7):
            for s_in in (0.004, 0.03, 0.2, 1.5):
                q = m.tensor([6, units], scale=s_in, zp=int(rng.integers(-50, 50)))
                m.op("QUANTIZE", [fc], [q])
                y = m.tensor([6, units], scale=1 / 256, zp=-128)
                m.op("SOFTMAX", [q], [y], "SoftmaxOptions", beta=beta)
    return m.build([x], [y])


def shape_chain_model() -> bytes:
    """A batch-agnostic flatten: SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, then SOFTMAX."""
    m = TinyModel()
    x = m.tensor([1, 2, 2, 3], scale=0.1, zp=0)
    shape = m.tensor([4], "int32")
    m.op("SHAPE", [x], [shape], "ShapeOptions", outType=2)  # INT32
    begin, end, stride = (m.tensor([1], "int32", data=[v]) for v in (0, 1, 1))
    batch = m.tensor([], "int32")
    m.op(
        "STRIDED_SLICE",
        [shape, begin, end, stride],
        [batch],
        "StridedSliceOptions",
        shrinkAxisMask=1,
    )
    minus_one = m.tensor([], "int32", data=-1)
    new_shape = m.tensor([2], "int32")
    m.op("PACK", [batch, minus_one], [new_shape], "PackOptions", valuesCount=2, axis=0)
    flat = m.tensor([1, 12], scale=0.1, zp=0)
    m.op("RESHAPE", [x, new_shape], [flat])
    y = m.tensor([1, 12], scale=1 / 256, zp=-128)
    m.op("SOFTMAX", [flat], [y], "SoftmaxOptions", beta=1.0)
    return m.build([x], [y])


def brought_zoo() -> bytes:
    """Ops of models made elsewhere: MAX_POOL_2D, CONCATENATION, LOGISTIC, TANH, SQUEEZE,
    EXPAND_DIMS."""
    rng = np.random.default_rng(4)
    m = TinyModel()
    q = {"scale": 0.05, "zp": -3}
    x = m.tensor([1, 9, 8, 4], **q)

    def pool(src: int, shape: list[int], fh: int, fw: int, sh: int, sw: int,
                 pad: str, act: str = "NONE", kind: str = "MAX_POOL_2D") -> int:  # fmt: skip
        y = m.tensor(shape, **q)
        m.op(
            kind, [src], [y], "Pool2DOptions", padding=pad, strideW=sw, strideH=sh,
            filterWidth=fw, filterHeight=fh, fusedActivationFunction=act,
        )  # fmt: skip
        return y

    def concat(srcs: list[int], shape: list[int], axis: int, **quant: object) -> int:
        y = m.tensor(shape, **(quant or q))  # type: ignore[arg-type]
        m.op("CONCATENATION", srcs, [y], "ConcatenationOptions", axis=axis)
        return y

    def requant(src: int, shape: list[int], scale: float, zp: int) -> int:
        y = m.tensor(shape, scale=scale, zp=zp)
        m.op("QUANTIZE", [src], [y])
        return y

    def expand(src: int, shape: list[int], axis: int, quant: dict[str, object]) -> int:
        y = m.tensor(shape, **quant)  # type: ignore[arg-type]
        m.op("EXPAND_DIMS", [src, m.tensor([1], "int32", data=[axis])], [y])
        return y

    mp1 = pool(x, [1, 5, 4, 4], 3, 3, 2, 2, "SAME")
    mp2 = pool(x, [1, 4, 4, 4], 2, 2, 2, 2, "VALID", "RELU")
    mp3 = pool(x, [1, 9, 8, 4], 3, 2, 1, 1, "SAME", "RELU6")
    mp4 = pool(mp3, [1, 9, 4, 4], 1, 2, 1, 2, "VALID")
    const = m.tensor([1, 5, 4, 3], data=rng.integers(-128, 128, (1, 5, 4, 3)), **q)
    cat1 = concat([mp1, const], [1, 5, 4, 7], 3)
    cat2 = concat([mp2, mp1], [1, 9, 4, 4], 1)
    cat3 = concat([mp4, cat2, mp4], [1, 9, 4, 12], -1)
    # global averages, so that the outputs vary with the input (a global max saturates)
    g3 = pool(cat3, [1, 1, 1, 12], 9, 4, 1, 1, "VALID", kind="AVERAGE_POOL_2D")
    flat = m.tensor([1, 12], **q)
    m.op("SQUEEZE", [g3], [flat], "SqueezeOptions", squeezeDims=[1, 2])
    row = expand(flat, [1, 1, 12], 1, q)
    out_q = {"scale": 1 / 256, "zp": -128}
    sig = m.tensor([1, 1, 12], **out_q)  # type: ignore[arg-type]
    m.op("LOGISTIC", [row], [sig])
    wide = requant(row, [1, 1, 12], 0.2, 10)
    th = m.tensor([1, 1, 12], scale=1 / 128, zp=0)
    m.op("TANH", [wide], [th])
    g1 = pool(cat1, [1, 1, 1, 7], 5, 4, 1, 1, "VALID", kind="AVERAGE_POOL_2D")
    vec = m.tensor([7], **q)
    m.op("SQUEEZE", [g1], [vec], "SqueezeOptions", squeezeDims=[])
    vec2 = expand(expand(vec, [1, 7], 0, q), [1, 1, 7], -2, q)
    parts = [sig, requant(th, [1, 1, 12], 1 / 256, -128), requant(vec2, [1, 1, 7], 1 / 256, -128)]
    y = concat(parts, [1, 1, 31], 2, **out_q)
    return m.build([x], [y])


ZOOS: dict[str, Callable[[], bytes]] = {
    "conv": conv_zoo,
    "pool": pool_zoo,
    "elementwise": elementwise_zoo,
    "head": head_zoo,
    "shape_chain": shape_chain_model,
    "brought": brought_zoo,
}


@pytest.mark.parametrize(
    ("zoo", "arithmetic"), [(z, "tflm") for z in sorted(ZOOS)] + [("head", "litert")]
)
def test_op_zoo_bit_exact(zoo: str, arithmetic: str, tmp_path: Path) -> None:
    src = tmp_path / f"{zoo}.tflite"
    src.write_bytes(ZOOS[zoo]())
    b = build(src, tmp_path, f"zoo_{zoo}", sanitize=True, arithmetic=arithmetic)
    xs = make_inputs(b.graph.input.shape, 8, seed=11)
    assert assert_layers_equal(b, xs) >= len(xs)
    assert b.asan_exe is not None
    got = run_host(b.asan_exe, xs, timeout=RUN_TIMEOUT_S)
    np.testing.assert_array_equal(got, expected(b, xs))


def test_head_zoo_arithmetics_differ(tmp_path: Path) -> None:
    """The head zoo's fully connected layers tell the two arithmetics apart: each build
    equals its own reference (test_op_zoo_bit_exact) and not the other's."""
    src = tmp_path / "head.tflite"
    src.write_bytes(head_zoo())
    graph = load_graph(src)
    xs = make_inputs(graph.input.shape, 8, seed=11)
    fc = [op.index for op in graph.ops if op.opcode == "FULLY_CONNECTED"]
    runs = {}
    for arithmetic in ("tflm", "litert"):
        b = build(src, tmp_path / arithmetic, "head", arithmetic=arithmetic)
        dumps = run_host_layers(b.dump_exe, xs, timeout=RUN_TIMEOUT_S)
        runs[arithmetic] = np.concatenate([d[i] for d in dumps for i in fc])
        text = (b.c_dir / "mnmcu_model_head.c").read_text()
        litert_fc = "mnmcu_fully_connected_s8_litert_run(" in text
        assert litert_fc == (arithmetic == "litert")
    assert np.count_nonzero(runs["tflm"] != runs["litert"]) > 0


def test_shape_chain_is_folded(tmp_path: Path) -> None:
    src = tmp_path / "chain.tflite"
    src.write_bytes(shape_chain_model())
    b = build(src, tmp_path, "chain")
    text = (b.c_dir / "mnmcu_model_chain.c").read_text()
    assert "SHAPE" not in text.replace("RESHAPE", "")
    assert text.count("status = mnmcu_") == 1  # only the softmax runs code


# --------------------------------------------------------------------------
# Converted MobileNets (slow)
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mobilenet_builds(
    verify_models: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Build]:
    """name -> the model generated and compiled, once per session."""
    cache: dict[str, Build] = {}

    def get(name: str) -> Build:
        if name not in cache:
            work = tmp_path_factory.mktemp(name.replace(".", "_"))
            src = verify_models(name)
            cache[name] = build(src, work, name.replace("-", "_").replace(".", ""), sanitize=True)
        return cache[name]

    return get


def mobilenet_inputs(b: Build, count: int, seed: int) -> np.ndarray:
    """Extremes, uniform noise and two quantised images, (count, *input_shape)."""
    from mnmcu.quantize import quantize_input

    shape = b.graph.input.shape
    images = quantize_input(synthetic_images(shape[1], shape[3], count=2, seed=seed), b.graph)
    return np.concatenate([make_inputs(shape, count - 2, seed), images[:, None]])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenet_bit_exact(name: str, mobilenet_builds: Callable[[str], Build]) -> None:
    b = mobilenet_builds(name)
    xs = mobilenet_inputs(b, 23, seed=1)
    got = run_host(b.exe, xs, timeout=RUN_TIMEOUT_S)
    want = litert_outputs(b.flatbuffer, xs)
    assert got.shape == want.shape
    mismatching = [i for i in range(len(xs)) if not np.array_equal(got[i], want[i])]
    assert mismatching == [], f"outputs differ for inputs {mismatching}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenet_layers_bit_exact(name: str, mobilenet_builds: Callable[[str], Build]) -> None:
    b = mobilenet_builds(name)
    xs = mobilenet_inputs(b, 4, seed=2)[[0, 1, 3]]
    assert assert_layers_equal(b, xs) == 3 * len(b.graph.ops)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenet_sanitizers_clean(name: str, mobilenet_builds: Callable[[str], Build]) -> None:
    b = mobilenet_builds(name)
    assert b.asan_exe is not None
    xs = mobilenet_inputs(b, 4, seed=3)
    got = run_host(b.asan_exe, xs, timeout=RUN_TIMEOUT_S)  # a sanitizer report fails the run
    np.testing.assert_array_equal(got, run_host(b.exe, xs, timeout=RUN_TIMEOUT_S))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenet_matches_tflite_micro(
    name: str, mobilenet_builds: Callable[[str], Build]
) -> None:
    from mnmcu.reference import tflm_run

    b = mobilenet_builds(name)
    xs = mobilenet_inputs(b, 23, seed=4)
    src = b.c_dir.parent / "model.tflite"
    src.write_bytes(b.flatbuffer)
    try:
        run = tflm_run(src, xs[:, 0])
    except ToolMissing as exc:
        pytest.skip(str(exc))
    got = run_host(b.exe, xs, timeout=RUN_TIMEOUT_S)
    assert run.outputs is not None
    np.testing.assert_array_equal(got.reshape(len(xs), -1), run.outputs.reshape(len(xs), -1))


@pytest.mark.slow
def test_vww_model_info(mobilenet_builds: Callable[[str], Build]) -> None:
    b = mobilenet_builds("v1-a0.25-96")
    info = host_info(b.exe)
    assert info.input_shape == (1, 96, 96, 3) and info.output_shape == (1, 2)
    assert info.op_count == len(b.graph.ops)
    assert info.arena_size < 64 * 1024  # the layer-by-layer plan needs about 55 KB


# --------------------------------------------------------------------------
# Generated files
# --------------------------------------------------------------------------


def _emit(tmp: Path, out: str) -> tuple[Path, list[Path]]:
    src = tmp / "zoo.tflite"
    if not src.exists():
        src.write_bytes(conv_zoo())
    graph = load_graph(src)
    return src, emit_aot(graph, plan_for(graph), tmp / out, "zoo", str(src))


def test_generation_is_deterministic(tmp_path: Path) -> None:
    _, first = _emit(tmp_path, "a")
    _, second = _emit(tmp_path, "b")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_banner_names_version_and_sha256(tmp_path: Path) -> None:
    import hashlib

    src, files = _emit(tmp_path, "out")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    generated = [p for p in files if p.name.startswith("mnmcu_model")]
    assert {p.name for p in generated} == {
        "mnmcu_model_zoo.h",
        "mnmcu_model_zoo.c",
        "mnmcu_model.h",
    }
    for p in generated:
        head = p.read_text().split("*/", 1)[0]
        assert f"mnmcu {__version__}" in head and sha in head and "zoo.tflite" in head
        assert "Do not edit" in head
    header = (tmp_path / "out" / "mnmcu_model_zoo.h").read_text()
    assert "#ifndef MNMCU_MODEL_ZOO_H" in header and "MNMCU_MODEL_ZOO_ARENA_SIZE" in header
    # The kernels it needs are copied; pooling, softmax and the rest are not.
    names = {p.name for p in files}
    assert {"mnmcu_kernels.h", "mnmcu_conv.c", "mnmcu_common.c"} <= names
    assert "mnmcu_softmax.c" not in names


def test_layer_hook_compiles_to_nothing_by_default(tmp_path: Path) -> None:
    _, files = _emit(tmp_path, "out")
    c_file = next(p for p in files if p.name == "mnmcu_model_zoo.c")
    assert 'MNMCU_LAYER_HOOK(0, "CONV_2D");' in c_file.read_text()
    obj = tmp_path / "model.o"
    run_command(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            f"-I{c_file.parent}",
            "-c",
            c_file,
            "-o",
            obj,
        ],
        timeout=120,
    )
    symbols = run_command(["nm", obj], timeout=30).stdout.decode()
    assert "mnmcu_layer_hook" not in symbols and "mnmcu_model_zoo_invoke" in symbols


def test_scratch_buffers_from_the_plan_reach_the_kernels(tmp_path: Path) -> None:
    src = tmp_path / "zoo.tflite"
    src.write_bytes(conv_zoo())
    graph = load_graph(src)
    plan = plan_memory(graph, {0: 100, 8: 48}, inplace_ops(graph))
    c_dir = tmp_path / "c"
    emit_aot(graph, plan, c_dir, "zoo", str(src))
    text = (c_dir / "mnmcu_model_zoo.c").read_text()
    offset, size = plan.scratch[0]
    assert f"static const mnmcu_buffer_t op000_scratch = {{s_arena + {offset}, {size}}};" in text
    assert "&op008_scratch);" in text
    exe = compile_host(c_dir, tmp_path / "zoo", sanitize=True)
    xs = make_inputs(graph.input.shape, 4, seed=5)
    np.testing.assert_array_equal(
        run_host(exe, xs, RUN_TIMEOUT_S), litert_outputs(src.read_bytes(), xs)
    )


def test_unsupported_op_is_rejected(tmp_path: Path) -> None:
    m = TinyModel()
    x = m.tensor([1, 4, 4, 2], scale=0.1, zp=0)
    y = m.tensor([1, 4, 4, 2], scale=0.1, zp=0)
    m.op("ABS", [x], [y])
    src = tmp_path / "abs.tflite"
    src.write_bytes(m.build([x], [y]))
    graph = load_graph(src)
    with pytest.raises(UnsupportedModel, match="ABS"):
        emit_aot(graph, plan_memory(graph), tmp_path / "out", "abs", str(src))


def test_rescaling_concatenation_is_refused(tmp_path: Path) -> None:
    m = TinyModel()
    x = m.tensor([1, 2, 2, 3], scale=0.1, zp=0)
    y = m.tensor([1, 2, 2, 6], scale=0.2, zp=0)
    m.op("CONCATENATION", [x, x], [y], "ConcatenationOptions", axis=3)
    src = tmp_path / "cat.tflite"
    src.write_bytes(m.build([x], [y]))
    graph = load_graph(src)
    with pytest.raises(UnsupportedModel, match="CONCATENATION rescales"):
        emit_aot(graph, plan_for(graph), tmp_path / "out", "cat", str(src))


def test_plan_without_offsets_is_rejected(tmp_path: Path) -> None:
    src = tmp_path / "zoo.tflite"
    src.write_bytes(pool_zoo())
    graph = load_graph(src)
    plan = plan_for(graph)
    broken = MemoryPlan(plan.arena_bytes, {graph.inputs[0]: 0}, {})
    with pytest.raises(InvalidValue, match="no offset"):
        emit_aot(graph, broken, tmp_path / "out", "zoo", str(src))


def test_inplace_ops_are_elementwise_with_same_shape(tmp_path: Path) -> None:
    graph = load_graph(elementwise_zoo())
    ops = inplace_ops(graph)
    assert ops
    for op in graph.ops:
        if op.index in ops:
            assert op.opcode in {
                "ADD", "MUL", "HARD_SWISH", "QUANTIZE", "RELU", "RELU6", "LOGISTIC", "TANH"
            }  # fmt: skip
            first, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
            assert first.shape == out.shape
    # [1,1,1,C] * [1,H,W,C] broadcasts its first input: not in place.
    assert any(op.opcode == "MUL" and op.index not in ops for op in graph.ops)
    assert scratch_bytes(graph) == {}


# --------------------------------------------------------------------------
# Kernels called directly (ctypes)
# --------------------------------------------------------------------------


class _FcParams(ctypes.Structure):
    _fields_ = [
        *(
            (n, ctypes.c_int32)
            for n in (
                "batches",
                "input_depth",
                "output_depth",
                "input_offset",
                "filter_offset",
                "output_offset",
                "act_min",
                "act_max",
            )
        ),
        ("multiplier", ctypes.POINTER(ctypes.c_int32)),
        ("shift", ctypes.POINTER(ctypes.c_int32)),
        ("scale_mantissa", ctypes.POINTER(ctypes.c_int64)),
        ("scale_exponent", ctypes.POINTER(ctypes.c_int32)),
    ]


@pytest.fixture(scope="module")
def kernels_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    root = data_dir("firmware") / "aot"
    lib = tmp_path_factory.mktemp("kernels") / "libmnmcu_kernels.so"
    run_command(
        [
            "gcc",
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-shared",
            "-fPIC",
            f"-I{root / 'include'}",
            *sorted((root / "src").glob("*.c")),
            "-o",
            lib,
        ],
        timeout=120,
    )
    return ctypes.CDLL(str(lib))


def _round_half_away(v: float) -> int:
    f = math.floor(abs(v))
    r = f + (1 if abs(v) - f >= 0.5 else 0)
    return r if v >= 0 else -r


def test_fc_litert_requantisation_is_double_rounding(kernels_lib: ctypes.CDLL) -> None:
    """LiteRT's: out = round((double)acc * scale), reproduced in integers, near and at ties."""
    from mnmcu.emit.aot import double_parts

    rng = np.random.default_rng(9)
    scales = [2.0**-7, 2.0**-12, 3.0**-5, 1 / 1000.0]
    scales += [float(s) for s in np.exp(rng.uniform(np.log(1e-6), np.log(0.5), size=60))]
    accs: list[int] = []
    for s in scales:
        for k in rng.integers(-120, 120, size=6):
            center = int(round((int(k) + 0.5) / s))
            accs += [center + d for d in (-2, -1, 0, 1, 2)]
    accs += [0, 1, -1, 2**31 - 1, -(2**31), 12345678, -12345678]
    accs = [a for a in accs if -(2**31) <= a < 2**31]
    units = len(scales)
    mant = (ctypes.c_int64 * units)(*[double_parts(s)[0] for s in scales])
    expo = (ctypes.c_int32 * units)(*[double_parts(s)[1] for s in scales])
    p = _FcParams(1, 1, units, 0, 0, 0, -128, 127, None, None, mant, expo)
    filt = (ctypes.c_int8 * units)()  # zero weights: the accumulator is the bias
    inp = (ctypes.c_int8 * 1)(0)
    out = (ctypes.c_int8 * units)()
    checked = ties = 0
    for acc in accs:
        bias = (ctypes.c_int32 * units)(*([acc] * units))
        status = kernels_lib.mnmcu_fully_connected_s8_litert_run(
            ctypes.byref(p), inp, filt, bias, out
        )
        assert status == 0
        for u, s in enumerate(scales):
            v = float(acc) * s  # IEEE-754 double product, as TFLite's kernel
            want = max(-128, min(127, _round_half_away(v)))
            assert out[u] == want, (acc, s, v)
            checked += 1
            ties += abs(v) - math.floor(abs(v)) == 0.5
    assert checked > 10_000 and ties > 0


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 gcc flag")
def test_kernels_and_model_use_no_floating_point(tmp_path: Path) -> None:
    """-mgeneral-regs-only makes gcc reject any floating-point operation."""
    src, files = _emit(tmp_path, "out")
    for c_file in (p for p in files if p.suffix == ".c"):
        run_command(
            [
                "gcc",
                "-std=c99",
                "-O2",
                "-mgeneral-regs-only",
                f"-I{c_file.parent}",
                "-c",
                c_file,
                "-o",
                tmp_path / f"{c_file.stem}.o",
            ],
            timeout=120,
        )
    root = data_dir("firmware") / "aot"
    for c_file in sorted((root / "src").glob("*.c")):
        run_command(
            [
                "gcc",
                "-std=c99",
                "-O2",
                "-mgeneral-regs-only",
                f"-I{root / 'include'}",
                "-c",
                c_file,
                "-o",
                tmp_path / f"k_{c_file.stem}.o",
            ],
            timeout=120,
        )


def test_fc_tflm_requantisation_is_fixed_point(kernels_lib: ctypes.CDLL) -> None:
    """TFLite Micro's: MultiplyByQuantizedMultiplier of the accumulator, as a convolution."""
    from mnmcu.qmath import conv_multiplier, mbqm

    rng = np.random.default_rng(10)
    scales = [float(s) for s in np.exp(rng.uniform(np.log(1e-6), np.log(0.9), size=40))]
    pairs = [conv_multiplier(1.0, s, 1.0) for s in scales]
    units = len(pairs)
    mult = (ctypes.c_int32 * units)(*[m for m, _ in pairs])
    shift = (ctypes.c_int32 * units)(*[e for _, e in pairs])
    p = _FcParams(1, 1, units, 0, 0, 5, -128, 127, mult, shift, None, None)
    filt = (ctypes.c_int8 * units)()
    inp = (ctypes.c_int8 * 1)(0)
    out = (ctypes.c_int8 * units)()
    accs = [int(a) for a in rng.integers(-(2**24), 2**24, size=200)] + [0, 1, -1, 2**31 - 1]
    differ = 0
    for acc in accs:
        bias = (ctypes.c_int32 * units)(*([acc] * units))
        assert kernels_lib.mnmcu_fully_connected_s8_run(ctypes.byref(p), inp, filt, bias, out) == 0
        for u, (m, e) in enumerate(pairs):
            value = mbqm(acc, m, e)
            assert value is not None
            want = max(-128, min(127, value + 5))
            assert out[u] == want, (acc, scales[u])
            differ += want != max(-128, min(127, round(acc * scales[u]) + 5))
    assert differ > 0  # some accumulators round otherwise in double precision


def test_kernels_reject_bad_arguments(kernels_lib: ctypes.CDLL) -> None:
    p = _FcParams(1, 0, 1, 0, 0, 0, -128, 127, None, None, None, None)
    out = (ctypes.c_int8 * 1)()
    assert kernels_lib.mnmcu_fully_connected_s8_run(ctypes.byref(p), None, None, None, out) == -1
    kernels_lib.mnmcu_status_str.restype = ctypes.c_char_p
    assert kernels_lib.mnmcu_status_str(-1) == b"invalid argument"
