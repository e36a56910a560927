"""Every external command mnmcu runs goes through :func:`run_command`.

It logs the quoted command at debug level and, on failure, raises with the
command, its exit status (or the timeout) and the tail of its output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from mnmcu.errors import CommandFailed, ToolMissing
from mnmcu.escape import shell_join
from mnmcu.log import logger

OUTPUT_TAIL_LINES = 30

_INSTALL_HINTS = {
    "gcc": "install a C compiler: apt-get install gcc",
    "cc": "install a C compiler: apt-get install gcc",
    "arm-none-eabi-gcc": "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "qemu-system-arm": "apt-get install qemu-system-arm",
}


def run_command(
    cmd: Sequence[str | Path],
    timeout: float,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``cmd``, logging it at debug level; return it with stdout and stderr captured.

    Raises :class:`CommandFailed` with the command, its exit status (or the
    timeout) and the tail of its output when it fails, and
    :class:`ToolMissing` when the program does not exist.
    """
    args = [str(c) for c in cmd]
    quoted = shell_join(args)
    logger.debug("running: %s", quoted)
    try:
        proc = subprocess.run(
            args, input=stdin, capture_output=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError:
        raise ToolMissing(f"{args[0]} is not installed", _install_hint(args[0])) from None
    except subprocess.TimeoutExpired as exc:
        tail = _tail(exc.stderr or b"") or _tail(exc.stdout or b"")
        raise CommandFailed(
            f"{quoted} did not finish within {timeout:g} s"
            + (f"; last output:\n{tail}" if tail else "")
        ) from None
    if proc.returncode != 0:
        tail = _tail(proc.stderr) or _tail(proc.stdout)
        raise CommandFailed(
            f"{quoted} failed with exit status {proc.returncode}"
            + (f"; last output:\n{tail}" if tail else "")
        )
    return proc


def _tail(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


def _install_hint(program: str) -> str:
    return _INSTALL_HINTS.get(Path(program).name, f"install {program}")
