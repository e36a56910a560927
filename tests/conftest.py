"""Shared fixtures: running the CLI as a user would, and small int8 models."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def tensorflow_int8(model: Any, samples: Iterable[Any]) -> bytes:
    """``model`` converted to full int8 by TensorFlow's own converter, not through mnmcu.

    ``samples`` are the float calibration inputs, each shaped like the model's
    input (batch 1).
    """
    import tensorflow as tf

    values = list(samples)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([v] for v in values)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def run_mnmcu(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``mnmcu ARGS`` in a fresh interpreter and capture its output."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(REPO / "toolchain") + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "mnmcu", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def mnmcu_cli():
    return run_mnmcu


QEMU_TOOLS_INSTALL = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"


def require_qemu_tools() -> None:
    """Skip without arm-none-eabi-gcc or qemu-system-arm; fail instead with MNMCU_REQUIRE_QEMU=1."""
    import shutil

    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        message = f"{', '.join(missing)} not installed: {QEMU_TOOLS_INSTALL}"
        if os.environ.get("MNMCU_REQUIRE_QEMU") == "1":
            pytest.fail(f"MNMCU_REQUIRE_QEMU=1 but {message}")
        pytest.skip(message)


def require_tool(program: str, install: str, env_var: str) -> None:
    """Skip when ``program`` is missing, or fail when ``env_var`` is set to 1."""
    import shutil

    if shutil.which(program) is None:
        message = f"{program} is not installed: {install}"
        if os.environ.get(env_var) == "1":
            pytest.fail(f"{message} ({env_var}=1 requires it)")
        pytest.skip(message)
