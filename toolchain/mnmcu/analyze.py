"""Per-layer cost of an int8 model and whether it fits a board, before any compiler runs.

Counting rules (the ones MobileNet papers and MLPerf Tiny use):

* MACs: CONV_2D ``H_out*W_out*C_out*K_h*K_w*C_in``; DEPTHWISE_CONV_2D
  ``H_out*W_out*C_out*K_h*K_w``; FULLY_CONNECTED ``outputs*inputs``. Pooling,
  element-wise and reshaping ops count 0 MACs.
* Parameters: the elements of the weight and bias tensors of those three ops.
* Activation bytes: the bytes of an op's output tensor.
* Activation peak: the largest total of tensors alive at once when ops run
  in order and each tensor lives from the op that makes it to the last op that
  reads it (model input and output included). A planner that never overlaps
  live tensors needs at least this much; in-place tricks can go below it.

Flash and RAM per runtime are :mod:`mnmcu.estimate`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mnmcu.boards import Board, fits
from mnmcu.estimate import MAC_OPS, RuntimeEstimate, aot_estimate, tflm_estimate
from mnmcu.graph import Graph, Op
from mnmcu.plan import tensor_lifetimes


@dataclass(frozen=True)
class Layer:
    """Cost of one op."""

    index: int
    op: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    macs: int
    params: int
    weight_bytes: int
    activation_bytes: int


@dataclass(frozen=True)
class Analysis:
    """The whole model's cost, and with a board, the verdict for each runtime."""

    layers: tuple[Layer, ...]
    macs: int
    params: int
    weight_bytes: int
    bias_bytes: int
    quant_param_bytes: int
    activation_peak_bytes: int
    peak_op: int
    tflite_bytes: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    ops: dict[str, int]
    estimates: dict[str, RuntimeEstimate]
    board: str | None = None
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = [asdict(layer) for layer in self.layers]
        return d


def layer_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of one op (0 for ops without weights)."""
    out = graph.tensor(op.outputs[0])
    if op.opcode not in MAC_OPS:
        return 0
    w = graph.tensor(op.inputs[1])
    if op.opcode == "CONV_2D":  # weights [C_out, K_h, K_w, C_in]
        return out.elements * w.shape[1] * w.shape[2] * w.shape[3]
    if op.opcode == "DEPTHWISE_CONV_2D":  # weights [1, K_h, K_w, C_out]
        return out.elements * w.shape[1] * w.shape[2]
    return out.elements * w.shape[-1]  # FULLY_CONNECTED: weights [out, in]


def _param_tensors(graph: Graph, op: Op) -> list[int]:
    if op.opcode not in MAC_OPS:
        return []
    return [i for i in op.inputs[1:3] if i >= 0 and graph.tensor(i).is_constant]


def layer_params(graph: Graph, op: Op) -> int:
    """Parameters of one op: the elements of its weight and bias tensors (0 for other ops)."""
    return sum(graph.tensor(i).elements for i in _param_tensors(graph, op))


def count_params(graph: Graph) -> int:
    """The model's parameters: weights and biases of the int8 model, as every figure counts them.

    Batch normalization is folded into the convolutions by then, so this is
    below Keras's ``count_params()`` of the float model (which also counts
    each batch normalization's four vectors). ``mnmcu model``, ``build``,
    ``analyze``, ``fit`` and report.html all print this number.
    """
    return sum(layer_params(graph, op) for op in graph.ops)


def activation_lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """First and last op index at which each non-constant tensor is alive."""
    return tensor_lifetimes(graph)


def activation_peak(graph: Graph) -> tuple[int, int]:
    """(peak bytes, op index at the peak) over non-overlapping live tensors."""
    life = activation_lifetimes(graph)
    best, at = 0, 0
    for op in graph.ops:
        live = sum(graph.tensor(t).nbytes for t, (a, b) in life.items() if a <= op.index <= b)
        if live > best:
            best, at = live, op.index
    return best, at


def analyze(
    graph: Graph,
    board: Board | None = None,
    tflm_arena: int | None = None,
    aot_arena: int | None = None,
    schedule: str = "layer",
) -> Analysis:
    """Count MACs, parameters and bytes of ``graph``; judge fit on ``board``.

    The flash and RAM of each runtime come from :mod:`mnmcu.estimate`, the
    estimator ``fit`` and report.html use too. ``tflm_arena`` is the arena the
    tflite-micro runtime measured for the model (without it, estimated);
    ``aot_arena`` the AOT memory plan's arena, when the caller has planned;
    ``schedule`` the AOT schedule the estimate plans for.
    """
    layers = []
    weight_bytes = bias_bytes = quant_bytes = 0
    counted: set[int] = set()
    for op in graph.ops:
        w_bytes = 0
        for i in _param_tensors(graph, op):
            t = graph.tensor(i)
            w_bytes += t.nbytes
            if i not in counted:
                counted.add(i)
                if t.dtype == "int32":
                    bias_bytes += t.nbytes
                else:
                    weight_bytes += t.nbytes
                if t.quantization is not None:
                    quant_bytes += 8 * len(t.quantization.scale)
        layers.append(
            Layer(
                index=op.index,
                op=op.opcode,
                input_shapes=tuple(
                    graph.tensor(i).shape
                    for i in op.inputs
                    if i >= 0 and not graph.tensor(i).is_constant
                ),
                output_shape=graph.tensor(op.outputs[0]).shape,
                macs=layer_macs(graph, op),
                params=layer_params(graph, op),
                weight_bytes=w_bytes,
                activation_bytes=graph.tensor(op.outputs[0]).nbytes,
            )
        )
    peak, peak_op = activation_peak(graph)
    estimates = {
        "tflm": tflm_estimate(graph, board, tflm_arena),
        "aot": aot_estimate(graph, board, aot_arena, schedule),
    }
    verdicts: dict[str, dict[str, Any]] = {}
    if board is not None:
        for name, est in estimates.items():
            verdicts[name] = fits(board, est.flash_bytes, est.ram_bytes).to_dict()
    return Analysis(
        layers=tuple(layers),
        macs=sum(layer.macs for layer in layers),
        params=count_params(graph),
        weight_bytes=weight_bytes,
        bias_bytes=bias_bytes,
        quant_param_bytes=quant_bytes,
        activation_peak_bytes=peak,
        peak_op=peak_op,
        tflite_bytes=graph.size_bytes,
        input_shape=graph.input.shape,
        output_shape=graph.output.shape,
        ops=dict(sorted(graph.op_counts().items())),
        estimates=estimates,
        board=board.id if board is not None else None,
        verdicts=verdicts,
    )
