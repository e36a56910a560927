"""Constant ("dead") channels: found, left out or made cheap, outputs still bit-exact.

Trained MobileNets carry output channels that a ReLU clamps to one value for
every input, marked by extreme quantisation constants. The test models get
such channels forged into their pointwise convolutions (the models of this
suite are untrained and have none), of the three kinds trained models show:
a bias of -2^30 (clamped to the ReLU's floor, the zero point), a filter
scale so small that the requantisation shift passes -22 (the zero point
again), and a bias of +2^30 (clamped to the ReLU's ceiling, which a
following depthwise convolution cannot do without).
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from mnmcu.analyze import analyze
from mnmcu.emit.aot import fast_conv
from mnmcu.graph import load_graph
from mnmcu.prune import constant_channels, prune_constant_channels
from mnmcu.verify import verify

from ..conftest import require_qemu_tools

KINDS = ("floor", "tiny_scale", "ceiling")


def forge_dead_channels(source: Path, target: Path, every: int = 3) -> dict[int, list[int]]:
    """Forge constant channels into ``source``'s pointwise ReLU convolutions; op -> channels."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(source.read_bytes()), 0)
    graph = model.subgraphs[0]
    opcodes = [c.builtinCode or c.deprecatedBuiltinCode for c in model.operatorCodes]
    relu = {schema.ActivationFunctionType.RELU, schema.ActivationFunctionType.RELU6}
    forged: dict[int, list[int]] = {}
    for index, op in enumerate(graph.operators):
        if opcodes[op.opcodeIndex] != schema.BuiltinOperator.CONV_2D:
            continue
        filt = graph.tensors[op.inputs[1]]
        if filt.shape[1] != 1 or op.builtinOptions.fusedActivationFunction not in relu:
            continue
        bias_buffer = model.buffers[graph.tensors[op.inputs[2]].buffer]
        bias = np.frombuffer(bytes(bytearray(bias_buffer.data)), dtype="<i4").copy()
        scales = list(filt.quantization.scale)
        channels = list(range(index % every, len(bias), every))
        for n, c in enumerate(channels):
            kind = KINDS[n % len(KINDS)]
            if kind == "floor":
                bias[c] = -(2**30)
            elif kind == "ceiling":
                bias[c] = 2**30
            else:
                scales[c] *= 1e-9
        bias_buffer.data = np.frombuffer(bias.astype("<i4").tobytes(), dtype=np.uint8)
        filt.quantization.scale = scales
        forged[index] = channels
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(builder.Output())
    return forged


@pytest.fixture(scope="module")
def forged(int8_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("forged")
    out = {}
    for arch in ("v1", "v2", "v3-small"):
        path = root / f"{arch}_dead.tflite"
        out[arch] = (path, forge_dead_channels(int8_models[arch], path))
    return out


@pytest.mark.parametrize("arch", ["v1", "v2", "v3-small"])
def test_forged_channels_are_found_constant(
    forged: dict, int8_models: dict[str, Path], arch: str
) -> None:
    path, channels = forged[arch]
    graph = load_graph(path)
    constant = constant_channels(graph)
    assert channels
    for index, chans in channels.items():
        found = constant.get(graph.ops[index].outputs[0], {})
        assert set(chans) <= set(found), f"op {index}"
    # Forging made channels constant that were not.
    before = constant_channels(load_graph(int8_models[arch]))
    new = [
        c
        for index, chans in channels.items()
        for c in chans
        if c not in before.get(graph.ops[index].outputs[0], {})
    ]
    assert new


@pytest.mark.parametrize("arch", ["v1", "v2", "v3-small"])
def test_pruned_model_is_bit_exact_layer_by_layer(forged: dict, arch: str, tmp_path: Path) -> None:
    path, _ = forged[arch]
    pruning = prune_constant_channels(load_graph(path))
    assert pruning.dropped_channels > 0
    result = verify(path, count=6, layers=True, sanitize=False, workdir=tmp_path)
    assert result.litert_mismatches == 0 and result.tflm_mismatches == 0
    assert result.first_bad_layer is None and result.layers_compared > 0


def test_pruning_leaves_every_pointwise_layer_on_the_fast_kernels(forged: dict) -> None:
    path, channels = forged["v1"]
    graph = load_graph(path)
    pruned = prune_constant_channels(graph).graph
    for index in channels:
        op = graph.ops[index]
        assert fast_conv(graph, op, "dsp") is None  # the forged constants fail its range
        assert fast_conv(pruned, pruned.ops[index], "dsp") is not None
    assert analyze(pruned).macs < analyze(graph).macs


@pytest.mark.sim
@pytest.mark.slow
def test_dead_channels_cost_no_speed_on_qemu_m4(
    forged: dict, int8_models: dict[str, Path], tmp_path: Path
) -> None:
    """A model with forged dead channels runs within 10% of the same model without them."""
    require_qemu_tools()
    from mnmcu.bench_sim import kernel_bench
    from mnmcu.boards import get_board

    board = get_board("qemu-m4")
    clean = kernel_bench(board, int8_models["v1"], work_dir=tmp_path / "clean")
    dead = kernel_bench(board, forged["v1"][0], work_dir=tmp_path / "dead")
    assert all(run.ok for run in (*clean.runs, *dead.runs))
    assert dead.fast.instructions <= 1.10 * clean.fast.instructions
