"""Converted models are full int8 with static shapes, and the analysis counts them right.

The expected figures come from the model itself through an independent path:
LiteRT's interpreter (its op list and tensor shapes), not mnmcu's parser.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnmcu.analyze import analyze
from mnmcu.boards import get_board
from mnmcu.graph import DYNAMIC_SHAPE_OPS, load_graph

from .conftest import SPECS

pytestmark = pytest.mark.slow

# MLPerf Tiny Visual Wake Words reference model: MobileNetV1 alpha 0.25,
# 96x96x3, 2 classes. Its MAC count as published with the benchmark.
VWW_MACS = 7_489_664


def interpreter_counts(path: Path) -> tuple[int, int]:
    """(MACs, weight+bias elements) from LiteRT's view of the model."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interp.get_tensor_details()}
    macs = params = 0
    for op in interp._get_ops_details():
        name = op["op_name"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        out = int(np.prod(shapes[op["outputs"][0]]))
        w = shapes[op["inputs"][1]]
        if name == "CONV_2D":  # OHWI
            macs += out * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D":  # 1HWC, one multiply per tap and output
            macs += out * w[1] * w[2]
        else:  # [out, in]
            macs += out * w[1]
        params += sum(int(np.prod(shapes[i])) for i in op["inputs"][1:3] if i >= 0)
    return macs, params


def test_vww_reference_macs(int8_models: dict[str, Path]) -> None:
    analysis = analyze(load_graph(int8_models["v1"]))
    assert analysis.macs == VWW_MACS
    assert analysis.params == interpreter_counts(int8_models["v1"])[1]
    # The reference model has about 211 k parameters (BN folded into biases here).
    assert 200_000 < analysis.params < 215_000


@pytest.mark.parametrize("arch", ["v2", "v3-small", "v3-large"])
def test_macs_and_params_match_interpreter(int8_models: dict[str, Path], arch: str) -> None:
    analysis = analyze(load_graph(int8_models[arch]))
    macs, params = interpreter_counts(int8_models[arch])
    assert (analysis.macs, analysis.params) == (macs, params)
    assert sum(layer.macs for layer in analysis.layers) == analysis.macs


@pytest.mark.parametrize("arch", list(SPECS))
def test_full_int8_static_shapes(int8_models: dict[str, Path], arch: str) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(int8_models[arch]))
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert not ops & DYNAMIC_SHAPE_OPS
    assert not {o for o in ops if "QUANTIZE" in o}
    spec = SPECS[arch]
    (inp,) = interp.get_input_details()
    (out,) = interp.get_output_details()
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert tuple(inp["shape"]) == (1, spec.resolution, spec.resolution, spec.channels)
    assert tuple(out["shape"]) == (1, spec.classes)


def test_activation_peak_vww(int8_models: dict[str, Path]) -> None:
    # The largest pair of live tensors in MobileNetV1 0.25 at 96x96 is the
    # first pointwise conv: 48x48x8 in, 48x48x16 out, int8.
    analysis = analyze(load_graph(int8_models["v1"]))
    assert analysis.activation_peak_bytes == 48 * 48 * 8 + 48 * 48 * 16


def test_board_verdict(int8_models: dict[str, Path]) -> None:
    board = get_board("disco_f407vg")
    analysis = analyze(load_graph(int8_models["v1"]), board)
    for runtime, est in analysis.estimates.items():
        verdict = analysis.verdicts[runtime]
        assert json.dumps(verdict)
        flash_margin = board.memory.flash_bytes - est.flash_bytes
        assert verdict["fits"] == (flash_margin >= 0 and board.memory.ram_bytes >= est.ram_bytes)
