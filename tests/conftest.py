"""Shared fixtures: running the CLI as a user would, and small int8 models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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


def require_tool(program: str, install: str, env_var: str) -> None:
    """Skip when ``program`` is missing, or fail when ``env_var`` is set to 1."""
    import shutil

    if shutil.which(program) is None:
        message = f"{program} is not installed: {install}"
        if os.environ.get(env_var) == "1":
            pytest.fail(f"{message} ({env_var}=1 requires it)")
        pytest.skip(message)
