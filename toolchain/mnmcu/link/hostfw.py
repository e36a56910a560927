"""The firmware of a generated project built for the host (gcc), to run on a pseudo-terminal.

:func:`compile_host_firmware` compiles a project's ``src/`` (application,
runtime, model, serial protocol) with the host HAL
(``firmware/hal/host``: stdin/stdout and ``clock_gettime``) instead of the
board's HAL. The program prints the boot line and then serves the protocol
on its stdin/stdout, so it can sit on one end of a pty with ``mnmcu hil
--port /dev/pts/N`` on the other.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from mnmcu.emit.host import CFLAGS, COMPILE_TIMEOUT_S, SANITIZE_FLAGS
from mnmcu.emit.project import SRC_DIR, load_project
from mnmcu.errors import InvalidValue, ToolMissing
from mnmcu.paths import data_dir
from mnmcu.proc import run_command


def compile_host_firmware(
    project_dir: Path,
    exe: Path,
    sanitize: bool = False,
    profile: bool = False,
    extra_flags: Sequence[str] = (),
) -> Path:
    """Compile ``project_dir``'s firmware for the host into ``exe`` (warnings are errors)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ToolMissing("gcc is not installed", "install a C compiler: apt-get install gcc")
    info = load_project(project_dir)
    if info.runtime != "aot":
        raise InvalidValue(
            f"project {project_dir} uses the {info.runtime} runtime",
            "only AOT projects build for the host (emit with --runtime aot)",
        )
    src = Path(project_dir) / SRC_DIR
    sources = sorted(p for p in src.glob("*.c") if not p.name.startswith("mnmcu_hal_"))
    host_hal = data_dir("firmware") / "hal" / "host" / "mnmcu_hal_host.c"
    flags = [*CFLAGS, *(SANITIZE_FLAGS if sanitize else ()), *extra_flags, "-DMNMCU_HOST"]
    if profile:
        flags.append("-DMNMCU_PROFILE")
    exe.parent.mkdir(parents=True, exist_ok=True)
    run_command([gcc, *flags, f"-I{src}", *sources, host_hal, "-o", exe], timeout=COMPILE_TIMEOUT_S)
    return exe
