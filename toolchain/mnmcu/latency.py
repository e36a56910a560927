"""Instructions per inference of the AOT runtime, predicted op by op.

A MobileNet's time is not its MACs times one figure: a 5x5 depthwise
convolution on a small map, a HARD_SWISH or a squeeze-and-excite MUL cost
far more per MAC (or per element) than a wide 1x1 convolution. Each op falls
in a class (:func:`op_class`) with a linear cost over its MACs, its output
elements, its output pixels and one call::

    instructions = per_mac * MACs + per_output * outputs + per_pixel * pixels + per_call

The coefficients of each kernel set (:func:`coefficients`, kept in
``boards/latency/aot.json``) are fitted to per-layer instruction counts
measured in QEMU (the per-layer profile of ``mnmcu bench --board B --model
M``) over V1, V2 and V3-Small models (:data:`CALIBRATION_SPECS`);
:func:`calibrate` does the fit and ``python -m mnmcu.latency --board
qemu-m4 --write`` (or ``qemu-m55``) measures, fits and updates the file.
QEMU counts instructions, not cycles; :mod:`mnmcu.fit` uses them as cycles
at the board's clock, and says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnmcu.analyze import layer_macs
from mnmcu.graph import ALIAS_OPS, Graph, Op
from mnmcu.paths import data_dir

Coefficients = dict[str, tuple[float, float, float, float]]
"""op class -> (per MAC, per output element, per output pixel, per call)."""

COEFFICIENTS_FILE = ("latency", "aot.json")
"""Where the fitted coefficients live, under the boards data folder."""

_FREE = ALIAS_OPS | frozenset({"SHAPE", "STRIDED_SLICE", "PACK", "DEQUANTIZE"})
_TABLES = frozenset({"HARD_SWISH", "QUANTIZE", "RELU", "RELU6"})


def _one_constant(graph: Graph, op: Op) -> bool:
    """Whether a binary op has an operand that is one constant value (a table then)."""
    return any(
        graph.tensor(i).data is not None and graph.tensor(i).elements == 1 for i in op.inputs[:2]
    )


def _coefficients_path() -> Path:
    return data_dir("boards").joinpath(*COEFFICIENTS_FILE)


def coefficients() -> dict[str, dict[str, object]]:
    """Kernel set -> {"source": text, "coefficients": {op class: 4 numbers}}."""
    data: dict[str, dict[str, object]] = json.loads(_coefficients_path().read_text("utf-8"))
    return data


def kernel_coefficients(kernels: str) -> Coefficients | None:
    """The fitted coefficients of a kernel set, or None where there are none."""
    entry = coefficients().get(kernels)
    if entry is None:
        return None
    table = entry["coefficients"]
    assert isinstance(table, dict)
    return {str(k): (float(v[0]), float(v[1]), float(v[2]), float(v[3])) for k, v in table.items()}


SMALL_MAP_PIXELS = 36
"""Output maps of fewer pixels form classes of their own (``_small``, and
``_1px`` for one pixel; ``_narrow_map`` for depthwise convolutions with
rows of two outputs): the DSP convolutions keep int8 weights there
(:data:`mnmcu.emit.aot._DSP_WIDE_MIN_PIXELS`), blocks of pixels run part
empty, and border windows and per-channel set-up outweigh the MACs."""


def _map_suffix(graph: Graph, op: Op) -> str:
    shape = graph.tensor(op.outputs[0]).shape
    if len(shape) != 4:
        return ""
    pixels = int(shape[1]) * int(shape[2])
    return "_1px" if pixels == 1 else "_small" if pixels < SMALL_MAP_PIXELS else ""


def op_class(graph: Graph, op: Op) -> str | None:
    """The cost class of ``op`` (None: no code)."""
    if op.opcode in _FREE:
        return None
    if op.opcode in _TABLES or (op.opcode in ("ADD", "MUL") and _one_constant(graph, op)):
        return "table"
    if op.opcode in ("ADD", "MUL"):
        return op.opcode.lower() + ("_1px" if _map_suffix(graph, op) == "_1px" else "")
    if op.opcode not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return op.opcode.lower()
    filt, small = graph.tensor(op.inputs[1]), _map_suffix(graph, op)
    if op.opcode == "DEPTHWISE_CONV_2D" and small and small != "_1px":
        # rows of two outputs fit none of the depthwise kernels' blocks of three or more
        small = "_narrow_map" if int(graph.tensor(op.outputs[0]).shape[2]) < 3 else small
    if op.opcode == "CONV_2D":
        one = filt.shape[1] == 1 and filt.shape[2] == 1
        depth = int(filt.shape[3])
        if one:
            return ("conv1x1_narrow" if depth < 32 else "conv1x1") + small
        return "conv_window" + small
    window = "depthwise3x3" if filt.shape[1] == 3 and filt.shape[2] == 3 else "depthwise"
    return window + small


def op_features(graph: Graph, op: Op) -> tuple[int, int, int]:
    """(MACs, output elements, output pixels) of ``op``."""
    out = graph.tensor(op.outputs[0])
    channels = int(out.shape[-1]) if out.shape else 1
    return layer_macs(graph, op), int(out.elements), int(out.elements) // max(channels, 1)


def predict(graph: Graph, coefficients: Coefficients) -> int:
    """Instructions of one inference of ``graph`` with these coefficients."""
    total = 0.0
    for op in graph.ops:
        kind = op_class(graph, op)
        if kind is None:
            continue
        per_mac, per_output, per_pixel, per_call = coefficients.get(kind, coefficients["default"])
        macs, outputs, pixels = op_features(graph, op)
        total += per_mac * macs + per_output * outputs + per_pixel * pixels + per_call
    return int(round(total))


@dataclass(frozen=True)
class Sample:
    """One measured layer: its class, MACs, outputs, pixels and instructions."""

    kind: str
    macs: int
    outputs: int
    pixels: int
    instructions: int


def samples(graph: Graph, layer_instructions: Mapping[int, int]) -> list[Sample]:
    """The measured layers of ``graph`` (op index -> instructions) as samples."""
    found = []
    for op in graph.ops:
        kind = op_class(graph, op)
        if kind is None or op.index not in layer_instructions:
            continue
        macs, outputs, pixels = op_features(graph, op)
        found.append(Sample(kind, macs, outputs, pixels, layer_instructions[op.index]))
    return found


def calibrate(measured: Iterable[Sample]) -> Coefficients:
    """Non-negative per-class least squares, relative to each layer's instructions."""
    by_kind: dict[str, list[Sample]] = {}
    for s in measured:
        by_kind.setdefault(s.kind, []).append(s)
    result: Coefficients = {}
    for kind, rows in sorted(by_kind.items()):
        a = np.array([[r.macs, r.outputs, r.pixels, 1.0] for r in rows], dtype=np.float64)
        b = np.array([r.instructions for r in rows], dtype=np.float64)
        weight = 1.0 / np.maximum(b, 1.0)  # relative error: small layers count too
        active = [j for j in range(4) if a[:, j].any()]
        coef = np.zeros(4)
        while active:
            sol, *_ = np.linalg.lstsq(a[:, active] * weight[:, None], b * weight, rcond=None)
            if (sol >= 0).all():
                coef[active] = sol
                break
            active.pop(int(np.argmin(sol)))
        result[kind] = (
            round(float(coef[0]), 4),
            round(float(coef[1]), 3),
            round(float(coef[2]), 3),
            round(float(coef[3]), 1),
        )
    result["default"] = _default(by_kind)
    return result


def _default(by_kind: Mapping[str, list[Sample]]) -> tuple[float, float, float, float]:
    """For a class never measured: the instructions per output element over all layers."""
    outputs = sum(s.outputs for rows in by_kind.values() for s in rows)
    instructions = sum(s.instructions for rows in by_kind.values() for s in rows)
    return (0.0, round(instructions / max(outputs, 1), 3), 0.0, 0.0)


CALIBRATION_SPECS = (
    ("v1", 0.25, 96),
    ("v1", 0.5, 64),
    ("v1", 0.35, 128),
    ("v2", 0.35, 96),
    ("v2", 0.5, 80),
    ("v3-small", 0.75, 96),
    ("v3-small", 0.5, 64),
    # small inputs: most layers on maps of a few pixels
    ("v1", 0.5, 40),
    ("v1", 0.25, 32),
    ("v2", 0.35, 40),
    ("v2", 0.35, 32),
    ("v3-small", 0.5, 32),
    ("v3-small", 1.0, 40),
)
"""(arch, alpha, input size) of the untrained models the coefficients are fitted to."""


def measure(board_id: str, work: Path) -> dict[str, list[Sample]]:
    """Per-layer samples of :data:`CALIBRATION_SPECS` on ``board_id``, per kernel set."""
    from mnmcu.bench import convert_untrained
    from mnmcu.bench_sim import kernel_bench
    from mnmcu.boards import get_board
    from mnmcu.emit.aot import firmware_graph
    from mnmcu.graph import load_graph
    from mnmcu.model.spec import ModelSpec

    per_set: dict[str, list[Sample]] = {}
    for arch, alpha, size in CALIBRATION_SPECS:
        path = work / f"{arch}_{alpha:g}_{size}.tflite"
        path.write_bytes(convert_untrained(ModelSpec(arch=arch, alpha=alpha, resolution=size)))
        graph = firmware_graph(load_graph(path))
        bench = kernel_bench(get_board(board_id), path, work_dir=work / path.stem)
        for run in bench.runs:
            layers = {layer.index: layer.instructions for layer in run.layers}
            per_set.setdefault(run.kernels, []).extend(samples(graph, layers))
    return per_set


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mnmcu.latency --board qemu-m4``: measure and fit the coefficients."""
    import tempfile

    parser = argparse.ArgumentParser(
        prog="python -m mnmcu.latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--board", required=True, help="qemu-m4 or qemu-m55")
    parser.add_argument("--samples", type=Path, help="also write the measured layers here (JSON)")
    parser.add_argument(
        "--write", action="store_true", help=f"update boards/{'/'.join(COEFFICIENTS_FILE)}"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnmcu-latency-") as tmp:
        per_set = measure(args.board, Path(tmp))
    if args.samples:
        data = {k: [dataclasses.asdict(s) for s in v] for k, v in per_set.items()}
        args.samples.write_text(json.dumps(data), encoding="utf-8")
    fitted = {k: calibrate(v) for k, v in per_set.items()}
    json.dump(fitted, sys.stdout, indent=2)
    print()
    if args.write:
        write_coefficients(args.board, fitted)
    return 0


def write_coefficients(board_id: str, fitted: Mapping[str, Coefficients]) -> None:
    """Store fitted coefficients (the portable set only from qemu-m4, the reference core)."""
    path = _coefficients_path()
    data = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    specs = ", ".join(f"{a} {al:g}@{s}" for a, al, s in CALIBRATION_SPECS)
    for kernels, table in fitted.items():
        if kernels == "portable" and board_id != "qemu-m4":
            continue
        data[kernels] = {
            "source": (
                f"per-layer QEMU instruction counts (-icount shift=0) of the {kernels} AOT "
                f"kernels on {board_id}, untrained {specs}; python -m mnmcu.latency "
                f"--board {board_id} --write"
            ),
            "coefficients": table,
        }
    text = json.dumps(dict(sorted(data.items())), indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
