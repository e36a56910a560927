"""Build and run generated AOT C on the host (gcc), for testing against references.

:func:`compile_host` compiles a folder written by
:func:`mnmcu.emit.aot.emit_aot` together with the harness
``firmware/aot/host/mnmcu_host_main.c``; :func:`run_host` feeds it int8
inputs and reads the int8 outputs back. Every external command goes through
:func:`mnmcu.proc.run_command`.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnmcu.errors import CommandFailed, InvalidValue, ToolMissing
from mnmcu.paths import data_dir
from mnmcu.proc import run_command

COMPILE_TIMEOUT_S = 300.0
INFO_TIMEOUT_S = 30.0
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")
_LAST_RECORD = 0xFFFFFFFF


def harness_source() -> Path:
    """The host harness, ``firmware/aot/host/mnmcu_host_main.c``."""
    return data_dir("firmware") / "aot" / "host" / "mnmcu_host_main.c"


def compile_host(
    c_dir: Path, exe: Path, sanitize: bool = False, extra_flags: Sequence[str] = ()
) -> Path:
    """Compile the generated folder ``c_dir`` with the host harness into ``exe``.

    Flags: ``-std=c99 -O2 -Wall -Wextra -Werror -pedantic``, plus
    AddressSanitizer and UndefinedBehaviorSanitizer when ``sanitize``, plus
    ``extra_flags`` (e.g. ``-DMNMCU_DUMP_LAYERS``). Raises
    :class:`ToolMissing` without gcc, :class:`CommandFailed` on a compile error.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ToolMissing("gcc is not installed", "install a C compiler: apt-get install gcc")
    sources = sorted(Path(c_dir).glob("*.c"))
    if not (Path(c_dir) / "mnmcu_model.h").is_file() or not sources:
        raise InvalidValue(
            f"{c_dir} holds no generated AOT model (mnmcu_model.h and .c files)",
            "generate it with mnmcu.emit.aot.emit_aot",
        )
    exe.parent.mkdir(parents=True, exist_ok=True)
    flags = [*CFLAGS, *(SANITIZE_FLAGS if sanitize else ()), *extra_flags]
    cmd = [gcc, *flags, f"-I{c_dir}", *sources, harness_source(), "-o", exe]
    run_command(cmd, timeout=COMPILE_TIMEOUT_S)
    return exe


@dataclass(frozen=True)
class HostInfo:
    """What a compiled harness reports with ``--info``."""

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    arena_size: int
    op_count: int

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape, dtype=np.int64))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape, dtype=np.int64))


def host_info(exe: Path) -> HostInfo:
    """Ask a compiled harness for its model's name, shapes and arena size."""
    out = run_command([exe, "--info"], timeout=INFO_TIMEOUT_S).stdout.decode()
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        fields[key] = value.split()
    return HostInfo(
        name=" ".join(fields["name"]),
        input_shape=tuple(int(v) for v in fields["input_shape"]),
        output_shape=tuple(int(v) for v in fields["output_shape"]),
        arena_size=int(fields["arena_size"][0]),
        op_count=int(fields["op_count"][0]),
    )


def _inputs_bytes(info: HostInfo, inputs: np.ndarray) -> bytes:
    x = np.asarray(inputs)
    if x.dtype != np.int8:
        raise InvalidValue(f"inputs are {x.dtype}", "give int8 inputs of shape (N, *input_shape)")
    if x.ndim == 0 or x[0].size != info.input_size:
        raise InvalidValue(
            f"inputs of shape {x.shape} do not fit the model input {info.input_shape}",
            "give an array (N, *input_shape)",
        )
    return np.ascontiguousarray(x).tobytes()


def _env() -> dict[str, str]:
    """The environment for running a harness; sanitizer options if it was built with them."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def run_host(exe: Path, inputs: np.ndarray, timeout: float) -> np.ndarray:
    """Run harness ``exe`` on int8 ``inputs`` (N, *input_shape); return (N, *output_shape) int8.

    Raises :class:`CommandFailed` when the harness fails (a sanitizer report
    included) or does not finish within ``timeout`` seconds.
    """
    info = host_info(exe)
    data = _inputs_bytes(info, inputs)
    n = len(inputs)
    out = run_command([exe], timeout=timeout, stdin=data, env=_env()).stdout
    if len(out) != n * info.output_size:
        raise CommandFailed(
            f"{exe} wrote {len(out)} bytes for {n} inputs; expected {n * info.output_size}"
        )
    return np.frombuffer(out, dtype=np.int8).reshape((n, *info.output_shape)).copy()


def run_host_layers(exe: Path, inputs: np.ndarray, timeout: float) -> list[dict[int, np.ndarray]]:
    """Run a harness built with ``-DMNMCU_DUMP_LAYERS``; per input, op index -> output bytes.

    Key -1 holds the model output. Values are flat int8 arrays.
    """
    info = host_info(exe)
    data = _inputs_bytes(info, inputs)
    out = run_command([exe], timeout=timeout, stdin=data, env=_env()).stdout
    results: list[dict[int, np.ndarray]] = []
    current: dict[int, np.ndarray] = {}
    pos = 0
    while pos + 8 <= len(out):
        index, size = struct.unpack_from("<II", out, pos)
        pos += 8
        if pos + size > len(out):
            break
        value = np.frombuffer(out[pos : pos + size], dtype=np.int8).copy()
        pos += size
        if index == _LAST_RECORD:
            current[-1] = value
            results.append(current)
            current = {}
        else:
            current[index] = value
    if pos != len(out) or len(results) != len(inputs):
        raise CommandFailed(f"{exe} wrote a malformed layer dump ({len(out)} bytes)")
    return results
