"""TensorFlow's start-up lines: not printed by default, once with ``-v``.

TensorFlow's C++ runtime prints them when it is first imported, unless
``TF_CPP_MIN_LOG_LEVEL`` is set by then; :mod:`mnmcu.model` sets it before
any of mnmcu's TensorFlow imports. The tests run the CLI without the
variable, as a user's shell would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO

pytestmark = pytest.mark.slow

MARKERS = ("cpu_feature_guard", "absl::InitializeLog")


def _model(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO / "toolchain")
    cmd = [sys.executable, "-m", "mnmcu", *flags, "model", "--alpha", "0.1", "--resolution", "32"]
    return subprocess.run(
        [*cmd, "--out", str(tmp_path / "m")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_no_tensorflow_start_up_lines_by_default(tmp_path: Path) -> None:
    result = _model(tmp_path)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert not any(marker in output for marker in MARKERS), output
    assert "parameters (int8 weights and biases)" in output


def test_verbose_shows_them_once(tmp_path: Path) -> None:
    result = _model(tmp_path, "-v")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    if "cpu_feature_guard" not in output:
        pytest.skip("this TensorFlow build prints no start-up line on this CPU")
    assert output.count("cpu_feature_guard") == 1
