"""Run a model in the tflite-micro Python runtime, in a process of its own.

TensorFlow and tflite-micro abort when imported into one process, so
:mod:`mnmcu.reference` runs this module as a subprocess:

    python -m mnmcu._tflm_worker MODEL.tflite [INPUTS.npy OUTPUTS.npy]
    python -m mnmcu._tflm_worker --tensors MODEL.tflite INPUT.npy TENSORS.npz I,J,...

The second form runs one input with every tensor preserved and saves the
tensors named by index (``t<index>`` in the .npz). The first prints one JSON
line: the arena TFLite Micro allocated (total, head = activations, tail =
persistent data), as its RecordingMicroAllocator reports.
With inputs (int8, N x input shape) it runs each and saves the outputs.
When the runtime refuses the model it prints ``{"error": "..."}`` (one line,
no traceback) as the last line of stderr instead and exits with status 1.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import numpy as np

from mnmcu.log import captured_output


def _allocations(interp: object) -> dict[str, int]:
    """Capture print_allocations() (written by C++ to fd 1 or 2) and parse it."""
    with captured_output("print_allocations") as out:
        interp.print_allocations()  # type: ignore[attr-defined]
    text = out.text
    found = {}
    for key in ("total", "head", "tail"):
        m = re.search(rf"Arena allocation {key} (\d+) bytes", text)
        if m:
            found[key] = int(m.group(1))
    return found


def tensors(argv: list[str]) -> int:
    """Run one input with every tensor kept; save the ones named."""
    from tflite_micro.python.tflite_micro import runtime

    model = open(argv[0], "rb").read()
    interp = runtime.Interpreter.from_bytes(
        model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
    )
    shape = tuple(interp.get_input_details(0)["shape"])
    interp.set_input(np.load(argv[1]).reshape(shape), 0)
    interp.invoke()
    wanted = [int(i) for i in argv[3].split(",") if i]
    values: dict[str, Any] = {}
    for i in wanted:
        tensor = interp.GetTensor(i, 0)  # {"dtype", "shape", "tensor_data"}
        values[f"t{i}"] = np.asarray(tensor["tensor_data"]).reshape(tensor["shape"])
    np.savez(argv[2], **values)
    print(json.dumps({"arena": {}}))  # this configuration records no allocations
    return 0


def main(argv: list[str]) -> int:
    from tflite_micro.python.tflite_micro import runtime

    if argv[:1] == ["--tensors"]:
        return tensors(argv[1:])
    model = open(argv[0], "rb").read()
    interp = runtime.Interpreter.from_bytes(model)
    outputs = []
    if len(argv) >= 3:
        inputs = np.load(argv[1])
        shape = tuple(interp.get_input_details(0)["shape"])
        for x in inputs:
            # each input is the model's input without its batch of one, or all of it
            interp.set_input(x.reshape(shape), 0)
            interp.invoke()
            output = np.array(interp.get_output(0))
            outputs.append(output[0] if output.shape[0] == 1 else output)
        np.save(argv[2], np.stack(outputs) if outputs else np.zeros((0,), np.int8))
    else:
        detail = interp.get_input_details(0)
        interp.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
        interp.invoke()
    print(json.dumps({"arena": _allocations(interp)}))
    return 0


def run(argv: list[str]) -> int:
    """:func:`main`, with any failure reported as one JSON line."""
    try:
        return main(argv)
    except Exception as exc:  # the runtime's refusal, reported to the parent as data
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        print(json.dumps({"error": error}), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
