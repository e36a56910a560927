"""Forged models: each is refused by analyze, emit and verify with one line naming what is wrong.

The cases of issue 12, each forged from the repository's sample model with
the TFLite schema's object API: exit status 1, one ``error:`` line naming
the tensor or op and the value, no traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ..conftest import REPO, run_mnmcu
from ..tflite_fuzz import forge as forge_model
from .test_cli_errors import one_error_line

SAMPLE = REPO / "firmware" / "sample" / "mnmcu_sample.tflite"
# In the sample model op 0 is CONV_2D reading the input (tensor 0), weights 57
# and bias 56, writing tensor 58, which op 1 (DEPTHWISE_CONV_2D) reads.
CONV_WEIGHTS, CONV_OUT = 57, 58


def _huge_input(m: Any) -> None:
    m.subgraphs[0].tensors[0].shape = np.array([1, 200000, 200000, 3], np.int32)


def _tensor_index(m: Any) -> None:
    m.subgraphs[0].operators[0].inputs = np.array([0, 5000, 56], np.int32)


def _opcode_index(m: Any) -> None:
    m.subgraphs[0].operators[0].opcodeIndex = 9


def _zero_scale(m: Any) -> None:
    m.subgraphs[0].tensors[CONV_OUT].quantization.scale = np.array([0.0], np.float32)


def _weights_vs_buffer(m: Any) -> None:
    m.subgraphs[0].tensors[CONV_WEIGHTS].shape = np.array([3, 3, 3, 4], np.int32)


def _utf8_name(m: Any) -> None:
    m.subgraphs[0].tensors[CONV_OUT].name = b"conv1\xff\xfe"


def _batch_4(m: Any) -> None:
    """Batch 4 through the whole graph (every activation's first dimension)."""
    sg = m.subgraphs[0]
    consts = {i for op in sg.operators for i in op.inputs[1:]}
    for i, t in enumerate(sg.tensors):
        if i not in consts:
            t.shape = np.array([4, *t.shape[1:]], np.int32)


def _negative_shape(m: Any) -> None:
    m.subgraphs[0].tensors[CONV_OUT].shape = np.array([1, -16, 16, 3], np.int32)


def _reads_later_output(m: Any) -> None:
    ops = m.subgraphs[0].operators
    ops[1].inputs = np.array([ops[2].outputs[0], *ops[1].inputs[1:]], np.int32)


# case -> (forgery, fragments the error line must hold)
CASES: dict[str, tuple[Callable[[Any], None], tuple[str, ...]]] = {
    "huge-input": (_huge_input, ("tensor 0", "[1, 200000, 200000, 3]", "16 MiB")),
    "tensor-index": (_tensor_index, ("op 0 CONV_2D", "tensor 5000", "88 tensors")),
    "opcode-index": (_opcode_index, ("op 0", "opcode index 9", "5 opcodes")),
    "zero-scale": (_zero_scale, (f"tensor {CONV_OUT}", "scale 0.0", "above 0")),
    "weights-vs-buffer": (
        _weights_vs_buffer,
        (f"tensor {CONV_WEIGHTS}", "[3, 3, 3, 4]", "108 bytes", "81 bytes"),
    ),
    "utf8-name": (_utf8_name, (f"tensor {CONV_OUT}", "not valid UTF-8", "0xff")),
    "batch-4": (_batch_4, ("graph input", "[4, 32, 32, 3]", "batch 4", "one image at a time")),
    "negative-shape": (_negative_shape, (f"tensor {CONV_OUT}", "[1, -16, 16, 3]", "-16")),
    "reads-later-output": (_reads_later_output, ("op 1 DEPTHWISE_CONV_2D", "before op 2")),
}


def forge(tmp_path: Path, name: str, edit: Callable[[Any], object]) -> Path:
    """The sample model with ``edit`` applied to its unpacked schema object (ModelT)."""
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(forge_model(SAMPLE.read_bytes(), edit))
    return path


# Analysis holds for any batch (test_batch_4_is_analyzed); running the model needs batch 1.
COMMANDS = {case: ("emit", "verify") if case == "batch-4" else ("analyze", "emit", "verify")
            for case in CASES}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "command"), [(case, c) for case in sorted(CASES) for c in COMMANDS[case]]
)
def test_forged_model_is_refused(tmp_path: Path, case: str, command: str) -> None:
    edit, fragments = CASES[case]
    model = forge(tmp_path, case, edit)
    args = {
        "analyze": ["analyze", str(model), "--board", "qemu-m4"],
        "emit": ["emit", str(model), "--board", "qemu-m4", "--out", str(tmp_path / "out")],
        "verify": ["verify", str(model), "--count", "3", "--no-sanitize"],
    }[command]
    result = run_mnmcu(*args)
    one_error_line(result, str(model), *fragments, code=1)
    assert not (tmp_path / "out").exists()


def test_the_sample_itself_passes(tmp_path: Path) -> None:
    """The forgeries start from a model every command accepts."""
    model = forge(tmp_path, "unchanged", lambda m: None)
    result = run_mnmcu("analyze", str(model), "--board", "qemu-m4")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "warning" not in result.stderr


def test_batch_4_is_analyzed(tmp_path: Path) -> None:
    """A consistent batch-4 graph is analysed (four images' MACs); only running it needs batch 1."""
    one = run_mnmcu("analyze", str(SAMPLE), "--json")
    four = run_mnmcu("analyze", str(forge(tmp_path, "batch4", _batch_4)), "--json")
    assert four.returncode == 0 and "Traceback" not in four.stderr, four.stderr
    assert json.loads(four.stdout)["macs"] == 4 * json.loads(one.stdout)["macs"]


def test_a_failing_tflm_worker_is_one_warning_line(tmp_path: Path) -> None:
    """The TFLite Micro measurement failing (here: its runtime raising with a multi-line
    message) gives one warning line and an estimate, never a traceback."""
    import os
    import subprocess
    import sys

    fake = tmp_path / "fake" / "tflite_micro"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise RuntimeError("the runtime broke\\n  on line two")\n')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(fake.parent), str(REPO / "toolchain")])
    result = subprocess.run(
        [sys.executable, "-m", "mnmcu", "analyze", str(SAMPLE), "--board", "qemu-m4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warning: TFLite Micro arena not measured (")
    assert "the runtime broke on line two" in lines[0] and "Traceback" not in result.stderr
    assert "activations_estimated" not in result.stdout  # tables, not JSON


def test_verify_bounds_its_inputs_before_allocating(tmp_path: Path) -> None:
    """A valid model with a 12 MiB input: 30 inputs would need 360 MiB; refused up front."""
    from ..tflite_fuzz import _scale_spatial

    model = forge(tmp_path, "wide", lambda m: _scale_spatial(m, 64))  # 2048x2048x3 input
    result = run_mnmcu("verify", str(model), "--count", "30", "--no-sanitize")
    one_error_line(result, "30 inputs of 12,582,912 bytes", "256 MiB", "21 or fewer", code=2)
