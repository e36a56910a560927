"""Structural checks of a generated TFLM project, without TFLM's sources."""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mnmcu.boards import Board
from mnmcu.emit.tflm.arena import ALIGNMENT
from mnmcu.emit.tflm.espidf import esp_problems
from mnmcu.emit.tflm.resolver import KERNEL_HEADERS, METHOD_TO_OP, expected_kernel
from mnmcu.emit.tflm.sources import MODEL_SOURCE, RUNTIME_SOURCE
from mnmcu.emit.tflm.tree import PRE_SCRIPT, tree_problems
from mnmcu.errors import InvalidValue
from mnmcu.graph import Graph
from mnmcu.proc import run_command

PIO_LINT_TIMEOUT_S = 120.0

_EXACT_VERSION = r"(?:==?)?\s*v?\d+\.\d+\.\d+(?:~\d+)?(?:[-+][0-9A-Za-z.+-]+)?"
_REGISTRY_PIN = re.compile(rf"^[\w.-]+/[\w.-]+\s*@\s*{_EXACT_VERSION}$")
_URL_PIN = re.compile(rf"^(?:[\w.+-]+://|git@)\S+#(?:[0-9a-fA-F]{{7,40}}|{_EXACT_VERSION})$")
_LOCAL = re.compile(r"^(?:file|symlink)://")
_ALIGNED_MODEL = re.compile(
    r"(?:alignas|MNMCU_ALIGN)\(16\)\s+(?:static\s+)?const\s+(?:uint8_t|unsigned char)\s+g_model\["
)


def pin_problem(spec: str) -> str | None:
    """Why a PlatformIO package spec is not pinned exactly, or ``None`` if it is.

    Pinned: ``owner/name@x.y.z``, a URL ending ``#<commit>`` or ``#<x.y.z tag>``,
    or a local ``file://``/``symlink://`` path.
    """
    text = spec.strip()
    if _LOCAL.match(text) or _REGISTRY_PIN.match(text) or _URL_PIN.match(text):
        return None
    if "://" in text or text.startswith("git@"):
        return f"'{text}' is a URL without '#<commit>' or '#<x.y.z tag>'"
    if "@" not in text:
        return f"'{text}' has no version (write owner/name@x.y.z)"
    return f"'{text}' is a range or an incomplete version (write owner/name@x.y.z)"


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";",), comment_prefixes=(";", "#"), interpolation=None
    )
    parser.read(path, encoding="utf-8")
    return parser


def _values(raw: str) -> list[str]:
    return [v.strip() for line in raw.splitlines() for v in line.split(",") if v.strip()]


def _ini_problems(ini: Path, board: Board | None) -> list[str]:
    problems: list[str] = []
    if not ini.is_file():
        return [f"{ini} is missing"]
    try:
        config = _ini(ini)
    except configparser.Error as exc:
        return [f"{ini}: {exc}"]
    sections = [s for s in config.sections() if s == "env" or s.startswith("env:")]
    if not sections:
        problems.append(f"{ini} has no [env:...] section")
    common = config["env"] if config.has_section("env") else {}
    for section in sections:
        options = config[section]
        if section != "env" and "platform" not in options and "platform" not in common:
            problems.append(f"{ini} [{section}] has no platform")
        for key in ("platform", "platform_packages", "lib_deps"):
            for value in _values(options.get(key, "")):
                problem = pin_problem(value)
                if problem:
                    problems.append(f"{ini} [{section}] {key}: {problem}")
        flags = " ".join(_values(options.get("build_flags", "")))
        if board is not None and board.cpu.arch == "arm" and "-DCMSIS_NN" not in flags.split():
            problems.append(f"{ini} [{section}] build_flags do not select CMSIS-NN (-DCMSIS_NN)")
        if board is not None and board.cpu.arch == "arm":
            scripts = _values(options.get("extra_scripts", ""))
            if f"pre:{PRE_SCRIPT}" not in scripts:
                problems.append(f"{ini} [{section}] extra_scripts lacks pre:{PRE_SCRIPT}")
    return problems


def parse_resolver(text: str) -> tuple[int | None, list[tuple[str, str]]]:
    """``(N of MicroMutableOpResolver<N>, [(method, argument), ...])`` of a runtime source."""
    size = re.search(r"MicroMutableOpResolver<\s*(\d+)\s*>", text)
    calls = re.findall(r"\bresolver\.(Add\w+)\(([^;]*?)\)\s*!=", text)
    return (int(size.group(1)) if size else None), [(m, a.strip()) for m, a in calls]


def check_tflm_project(
    project_dir: Path, graph: Graph, measured_arena: int, board: Board | None = None
) -> list[str]:
    """Structural problems of a generated TFLM project (empty list: none found).

    Checks that the resolver registers exactly ``graph``'s ops, once each, with
    ``MicroMutableOpResolver<N>`` N equal to their count and the int8 kernel
    where TFLM has one; that the arena constant is at least ``measured_arena``
    + 16 and a multiple of 16; that platform, packages and libraries in
    platformio.ini are pinned exactly; on ESP-IDF projects that
    ``src/idf_component.yml`` pins esp-tflite-micro exactly and the CMake
    files exist; on Arm projects that the TFLM tree is pinned to a commit.
    ``board`` enables the board-specific checks (inferred from the files
    otherwise).
    """
    problems: list[str] = []
    project_dir = Path(project_dir)
    src = project_dir / "src"
    runtime = src / RUNTIME_SOURCE
    if not runtime.is_file():
        return [f"{runtime} is missing"]
    text = runtime.read_text(encoding="utf-8")
    size, calls = parse_resolver(text)
    wanted = set(graph.opcodes)
    seen: list[str] = []
    for method, argument in calls:
        opcode = METHOD_TO_OP.get(method)
        if opcode is None:
            problems.append(f"resolver calls {method}, which mnmcu does not know")
            continue
        seen.append(opcode)
        if opcode not in wanted:
            problems.append(f"resolver registers {opcode}, which the model does not use")
            continue
        expected = expected_kernel(graph, opcode)
        if argument != expected:
            problems.append(
                f"resolver registers {opcode} with '{argument or 'the default kernel'}', "
                f"expected '{expected or 'the default kernel'}'"
            )
        header = KERNEL_HEADERS.get(argument)
        if header is not None and f'#include "{header}"' not in text:
            problems.append(f"{runtime.name} calls {argument} without including {header}")
    for opcode in sorted(wanted - set(seen)):
        problems.append(f"resolver lacks {opcode}, which the model uses")
    for opcode in sorted({op for op in seen if seen.count(op) > 1}):
        problems.append(f"resolver registers {opcode} {seen.count(opcode)} times")
    if size is None:
        problems.append(f"{runtime.name} has no MicroMutableOpResolver<N>")
    elif size != len(wanted) or size != len(calls):
        problems.append(
            f"MicroMutableOpResolver<{size}>: the model has {len(wanted)} op types and "
            f"the resolver {len(calls)} registrations"
        )
    arena = re.search(r"#define\s+MNMCU_TFLM_ARENA_BYTES\s+(\d+)u?\b", text)
    if arena is None:
        problems.append(f"{runtime.name} defines no MNMCU_TFLM_ARENA_BYTES")
    else:
        value = int(arena.group(1))
        if value < measured_arena + ALIGNMENT:
            problems.append(
                f"arena {value} B is smaller than the measured {measured_arena} B + "
                f"{ALIGNMENT} B alignment"
            )
        if value % ALIGNMENT:
            problems.append(f"arena {value} B is not a multiple of {ALIGNMENT}")
    model = src / MODEL_SOURCE
    if not model.is_file() or not _ALIGNED_MODEL.search(model.read_text(encoding="utf-8")[:8000]):
        problems.append(f"{model} is missing or does not define a 16-byte aligned const g_model")
    problems += _ini_problems(project_dir / "platformio.ini", board)
    esp = (board is not None and board.runtime.kernels == "esp-nn") or (
        board is None and (src / "idf_component.yml").exists()
    )
    if esp:
        problems += esp_problems(project_dir, src)
    elif board is None or board.cpu.arch == "arm":
        problems += tree_problems(project_dir)
    return problems


def pio_lint(project_dir: Path, core_dir: Path | None = None) -> list[str]:
    """``pio project config --lint`` of a project: its errors and warnings, as problems.

    PlatformIO reports an unknown option only as a warning and exits 0 even on
    errors, so both count. Runs offline; PlatformIO's core dir is ``core_dir``
    or a temporary folder, never the user's home.
    """
    with tempfile.TemporaryDirectory(prefix="mnmcu-pio-") as tmp:
        env = dict(os.environ)
        env["PLATFORMIO_CORE_DIR"] = str(core_dir or Path(tmp) / "core")
        env.setdefault("PLATFORMIO_NO_ANSI", "true")
        proc = run_command(
            [sys.executable, "-m", "platformio", "project", "config", "--lint", "--json-output"]
            + ["-d", str(project_dir)],
            timeout=PIO_LINT_TIMEOUT_S,
            env=env,
        )
    report = _lint_report(proc.stdout.decode("utf-8", "replace"))
    problems = []
    for kind in ("errors", "warnings"):
        for item in report.get(kind, []):
            message = item.get("message", item) if isinstance(item, Mapping) else item
            problems.append(f"pio lint {kind[:-1]}: {message}")
    return problems


def _lint_report(stdout: str) -> dict[str, Any]:
    """The lint result, which PlatformIO prints as a Python literal after its banner."""
    for line in reversed(stdout.splitlines()):
        text = line.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = ast.literal_eval(text)
            if isinstance(value, dict):
                return value
    raise InvalidValue(
        "could not read the result of 'pio project config --lint'",
        f"its output was: {stdout.strip()[-400:]}",
    )
