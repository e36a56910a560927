"""The element-wise tables against LiteRT's reference kernels, on all 256 inputs.

One-op int8 models (HARD_SWISH, RELU, RELU6, LOGISTIC, TANH on the input),
converted with TensorFlow at a few calibration ranges, run by LiteRT
(BUILTIN_REF) on an input holding every int8 value once; the table mnmcu
computes for the op's quantisation (mnmcu.qmath, mnmcu.fixedpoint) must give
the same 256 outputs. LOGISTIC and TANH are checked against the tflite-micro
runtime too.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnmcu.fixedpoint import logistic_table, tanh_table
from mnmcu.graph import load_graph
from mnmcu.qmath import hard_swish_table, requantize_table
from mnmcu.reference import litert_outputs, tflm_run

from ..conftest import tensorflow_int8

ALL_INPUTS = np.arange(-128, 128, dtype=np.int8).reshape(1, 16, 16, 1)


def one_op_model(activation: str, low: float, high: float) -> bytes:
    import keras

    inputs = keras.Input(shape=(16, 16, 1), batch_size=1)
    if activation == "HARD_SWISH":
        outputs = keras.layers.Activation(keras.activations.hard_swish)(inputs)
    elif activation == "RELU6":
        outputs = keras.layers.ReLU(max_value=6.0)(inputs)
    elif activation in ("LOGISTIC", "TANH"):
        outputs = keras.layers.Activation("sigmoid" if activation == "LOGISTIC" else "tanh")(inputs)
    else:
        outputs = keras.layers.ReLU()(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    samples = (rng.uniform(low, high, size=(1, 16, 16, 1)).astype(np.float32) for _ in range(16))
    return tensorflow_int8(model, samples)


@pytest.mark.slow
@pytest.mark.parametrize("opcode", ["HARD_SWISH", "RELU", "RELU6"])
@pytest.mark.parametrize("limits", [(-4.0, 4.0), (-1.0, 7.0), (-10.0, 2.0)])
def test_table_equals_litert_on_every_input(opcode: str, limits: tuple[float, float]) -> None:
    flatbuffer = one_op_model(opcode, *limits)
    graph = load_graph(flatbuffer)
    ops = [op.opcode for op in graph.ops]
    assert ops == [opcode], f"the converter made {ops}"
    inp, out = graph.input.quantization, graph.output.quantization
    assert inp is not None and out is not None
    args = (
        float(inp.scale[0]),
        int(inp.zero_point[0]),
        float(out.scale[0]),
        int(out.zero_point[0]),
    )
    if opcode == "HARD_SWISH":
        table = hard_swish_table(*args)
    else:
        table = requantize_table(opcode, *args)
    expected = np.asarray(litert_outputs(flatbuffer, ALL_INPUTS)).reshape(-1)
    assert np.array_equal(table, expected.astype(np.int8))


@pytest.mark.slow
@pytest.mark.parametrize("opcode", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("limits", [(-0.3, 0.2), (-4.0, 4.0), (-1.0, 7.0), (-40.0, 9.0)])
def test_sigmoid_tanh_tables_equal_both_references(
    opcode: str, limits: tuple[float, float], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    flatbuffer = one_op_model(opcode, *limits)
    graph = load_graph(flatbuffer)
    assert [op.opcode for op in graph.ops] == [opcode]
    inp, out = graph.input.quantization, graph.output.quantization
    assert inp is not None and out is not None
    make = logistic_table if opcode == "LOGISTIC" else tanh_table
    table = make(
        (float(inp.scale[0]), int(inp.zero_point[0])),
        (float(out.scale[0]), int(out.zero_point[0])),
    )
    litert = np.asarray(litert_outputs(flatbuffer, ALL_INPUTS)).reshape(-1)
    model = tmp_path / "model.tflite"
    model.write_bytes(flatbuffer)
    tflm = tflm_run(model, ALL_INPUTS).outputs
    assert tflm is not None
    assert np.array_equal(table, litert.astype(np.int8))
    assert np.array_equal(table, tflm.reshape(-1).astype(np.int8))
    assert len(set(table.tolist())) > 20  # the function's range, not a constant
