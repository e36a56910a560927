"""``mnmcu emit`` for a QEMU board, then a plain ``pio run`` in the project, offline.

The command ``emit`` prints is run as a user would paste it: in a fresh
environment with a clean PlatformIO home (``HOME`` a new folder, no
``PLATFORMIO_CORE_DIR``) and every HTTP(S) request sent to a closed local
port, so any download PlatformIO tried would fail the build.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO, require_qemu_tools, run_mnmcu

pytestmark = pytest.mark.sim

SAMPLE_MODEL = REPO / "firmware" / "sample" / "mnmcu_sample.tflite"
DEAD_PROXY = "http://127.0.0.1:9"
PIO_TIMEOUT_S = 600


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORMIO_")}
    env.update({"HOME": str(home), "PYTHONPATH": str(REPO / "toolchain")})
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[var] = DEAD_PROXY
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    # "pio" as the printed command names it: the one installed beside this Python
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _run_offline(
    args: list[str], cwd: Path, home: Path, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``args`` as a user would run them, offline, with ``home`` as the home folder."""
    env = _offline_env(home)
    for name in unset:
        env.pop(name, None)
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=PIO_TIMEOUT_S,
        check=False,
    )  # fmt: skip


def test_pio_run_in_an_emitted_qemu_project_builds_offline(tmp_path: Path) -> None:
    require_qemu_tools()
    project = tmp_path / "project"
    emitted = run_mnmcu("emit", str(SAMPLE_MODEL), "--board", "qemu-m4", "--out", str(project))
    assert emitted.returncode == 0, emitted.stderr
    line = emitted.stdout.strip().splitlines()[-1]
    assert "build it with: " in line and "(offline" in line, line
    compile_hint, pio_hint = line.split("build it with: ", 1)[1].split(" (", 1)[0].split(" or ")
    command = shlex.split(pio_hint)
    assert command[-3:] == ["run", "-d", str(project)]
    assert shlex.split(compile_hint)[-2:] == ["compile", str(project)]
    assert "core_dir = .pio/core" in (project / "platformio.ini").read_text()

    home = tmp_path / "home"
    home.mkdir()
    # the pasted command, from another folder, then plain 'pio run' in the project
    for cwd, args in ((tmp_path, command), (project, [*command[:-2]])):
        result = _run_offline(args, cwd, home)
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
        assert "[SUCCESS]" in result.stdout
    assert (project / ".pio" / "build" / "qemu-m4" / "firmware.elf").is_file()
    # and the other printed command, which also reports the footprint
    result = _run_offline(shlex.split(compile_hint), tmp_path, home)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert result.stdout.startswith("firmware (aot, qemu-m4): flash "), result.stdout
    assert str(project / ".pio" / "build" / "qemu-m4" / "firmware.elf") in result.stdout
    # nothing went to the clean home's PlatformIO folder: no package, no platform
    platformio_home = home / ".platformio"
    assert not (platformio_home / "packages").exists()
    assert not (platformio_home / "platforms").exists()


def test_compile_of_a_tflm_project_offline_without_sources_says_what_to_set(
    tmp_path: Path,
) -> None:
    """Without MNMCU_TFLM_SOURCES the pre-build step cannot clone tflite-micro offline:
    one line saying so, not PlatformIO's hint about downloading the platform."""
    require_qemu_tools()
    project = tmp_path / "project"
    emitted = run_mnmcu(
        "emit", str(SAMPLE_MODEL), "--board", "qemu-m4", "--runtime", "tflm", "--out", str(project)
    )
    assert emitted.returncode == 0, emitted.stderr
    home = tmp_path / "home"
    home.mkdir()
    result = _run_offline(
        [sys.executable, "-m", "mnmcu", "compile", str(project)], tmp_path, home,
        unset=("MNMCU_TFLM_SOURCES",),
    )  # fmt: skip
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: TensorFlow Lite Micro's sources are missing: {project}/lib/tflite-micro could "
        "not be generated (its tools/tflm_fetch.py clones tflite-micro, which needs the "
        "network): set MNMCU_TFLM_SOURCES (or --tflm-sources) to a tflite-micro checkout with "
        "its downloads; the README's 'TensorFlow Lite Micro sources' says how to make one"
    ]
