"""The reference runtimes mnmcu's results are compared with.

* LiteRT's interpreter with TFLite's reference kernels (``BUILTIN_REF``),
  in this process;
* TFLite Micro's Python runtime (``tflite-micro``), in a subprocess, since
  importing it beside TensorFlow aborts the process. It also reports the
  arena TFLite Micro needs for the model.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnmcu.errors import CommandFailed, InvalidValue, MnmcuError, ToolMissing
from mnmcu.graph import load_graph
from mnmcu.proc import run_command
from mnmcu.qmath import ARITHMETICS
from mnmcu.quantize import check_softmax_scale, litert_errors, reference_interpreter

TFLM_TIMEOUT_S = 120.0
TFLM_ARITHMETIC_OPS = frozenset({"FULLY_CONNECTED"})
"""Ops whose int8 bytes differ between LiteRT's reference kernels and TFLite Micro."""
TFLM_TIMEOUT_PER_INPUT_S = 2.0


def litert_outputs(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of TFLite's reference kernels for each int8 input (N, *shape)."""
    check_softmax_scale(load_graph(flatbuffer))
    interp = reference_interpreter(flatbuffer)
    i = interp.get_input_details()[0]["index"]
    o = interp.get_output_details()[0]["index"]
    outs = []
    for x in inputs:
        interp.set_tensor(i, x[None])
        with litert_errors():
            interp.invoke()
        outs.append(interp.get_tensor(o)[0].copy())
    return np.stack(outs)


def expected_outputs(flatbuffer: bytes, inputs: np.ndarray, arithmetic: str) -> np.ndarray:
    """The outputs the AOT runtime generated with ``arithmetic`` must give, for each input.

    LiteRT's reference kernels, unless the arithmetic is TFLite Micro's and
    the model has a FULLY_CONNECTED op (the one op where the two differ):
    then the tflite-micro runtime's. Shaped as :func:`litert_outputs`.
    """
    if arithmetic not in ARITHMETICS:
        raise InvalidValue(
            f"unknown arithmetic {arithmetic!r}", f"choose one of {', '.join(ARITHMETICS)}"
        )
    graph = load_graph(flatbuffer)
    if arithmetic == "litert" or not any(op.opcode in TFLM_ARITHMETIC_OPS for op in graph.ops):
        return litert_outputs(flatbuffer, inputs)
    with tempfile.TemporaryDirectory(prefix="mnmcu-ref-") as tmp:
        model = Path(tmp) / "model.tflite"
        model.write_bytes(flatbuffer)
        outputs = tflm_run(model, np.asarray(inputs, dtype=np.int8)).outputs
    assert outputs is not None
    return np.asarray(outputs, dtype=np.int8).reshape((len(inputs), *graph.output.shape[1:]))


def reference_intermediates(
    model: Path, x: np.ndarray, tensors: Sequence[int], arithmetic: str
) -> dict[int, np.ndarray]:
    """Tensors after one input in the reference of ``arithmetic`` (see :func:`expected_outputs`)."""
    if arithmetic == "tflm":
        return tflm_intermediates(model, x, tensors)
    return litert_intermediates(Path(model).read_bytes(), x)


def litert_intermediates(flatbuffer: bytes, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every tensor's value after running one input, by tensor index."""
    from ai_edge_litert import interpreter as litert

    check_softmax_scale(load_graph(flatbuffer))
    with litert_errors():
        interp = litert.Interpreter(
            model_content=flatbuffer,
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=True,
        )
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x[None])
        interp.invoke()
    values = {}
    for t in interp.get_tensor_details():
        try:
            values[t["index"]] = interp.get_tensor(t["index"]).copy()
        except ValueError:  # tensors without data (e.g. optional inputs)
            continue
    return values


@dataclass(frozen=True)
class TflmRun:
    """What the tflite-micro runtime reported for one model."""

    outputs: np.ndarray | None
    arena_total: int
    arena_head: int
    arena_tail: int


def tflm_run(
    model: Path, inputs: np.ndarray | None = None, timeout: float | None = None
) -> TflmRun:
    """Run ``model`` in the tflite-micro runtime (subprocess); outputs and arena size."""
    check_softmax_scale(load_graph(model))
    n = 0 if inputs is None else len(inputs)
    timeout = timeout or TFLM_TIMEOUT_S + TFLM_TIMEOUT_PER_INPUT_S * n
    with tempfile.TemporaryDirectory(prefix="mnmcu-tflm-") as tmp:
        args = [str(model)]
        if inputs is not None:
            np.save(Path(tmp) / "in.npy", inputs)
            args += [str(Path(tmp) / "in.npy"), str(Path(tmp) / "out.npy")]
        stdout = _run_worker(model, args, timeout)
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        outputs = np.load(Path(tmp) / "out.npy") if inputs is not None else None
    arena = report["arena"]
    return TflmRun(outputs, arena.get("total", 0), arena.get("head", 0), arena.get("tail", 0))


def tflm_intermediates(
    model: Path, x: np.ndarray, tensors: Sequence[int], timeout: float | None = None
) -> dict[int, np.ndarray]:
    """The tflite-micro runtime's value of each of ``tensors`` after running input ``x``.

    Runs with TFLite Micro's kPreserveAllTensors, so no tensor's memory is
    reused by a later one.
    """
    with tempfile.TemporaryDirectory(prefix="mnmcu-tflm-") as tmp:
        np.save(Path(tmp) / "in.npy", x)
        out = Path(tmp) / "tensors.npz"
        args = [
            "--tensors", str(model), str(Path(tmp) / "in.npy"), str(out),
            ",".join(str(int(t)) for t in tensors),
        ]  # fmt: skip
        _run_worker(model, args, timeout or TFLM_TIMEOUT_S + TFLM_TIMEOUT_PER_INPUT_S)
        with np.load(out) as saved:
            return {int(key[1:]): saved[key].copy() for key in saved.files}


def _run_worker(model: Path, args: Sequence[str], timeout: float) -> bytes:
    """Run :mod:`mnmcu._tflm_worker` with ``args``; its standard output, or its failure
    as one line."""
    try:
        proc = run_command([sys.executable, "-m", "mnmcu._tflm_worker", *args], timeout=timeout)
    except CommandFailed as exc:
        raise _tflm_failure(model, str(exc)) from None
    stdout: bytes = proc.stdout
    return stdout


def _tflm_failure(model: Path, failure: str) -> MnmcuError:
    """One line for a worker that reported an error, crashed or timed out."""
    head, _, tail = failure.partition("; last output:")
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    try:
        detail = str(json.loads(last)["error"])
    except (ValueError, KeyError, TypeError):
        status = re.search(r"(exit status -?\d+|did not finish within \S+ s)", head)
        detail = ", ".join(x for x in (status.group(1) if status else "", last[:200]) if x)
    if "No module named 'tflite_micro'" in detail:
        return ToolMissing("the tflite-micro runtime is not installed", "pip install tflite-micro")
    return CommandFailed(f"the tflite-micro runtime could not run {model.name} ({detail})")
