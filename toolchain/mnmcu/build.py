"""Build a generated PlatformIO project offline, and measure the firmware.

* :func:`pio_run` runs ``pio run`` on a project with PlatformIO's core dir
  inside the build area (unless ``PLATFORMIO_CORE_DIR`` is set), telemetry
  and update checks off, after :func:`mnmcu.provision.provision_offline` has
  put PlatformIO's ``tool-scons`` there, so nothing is downloaded. A board
  whose platform PlatformIO would have to download raises
  :class:`PlatformMissing` with the command that fetches it.
  A project that compiles TensorFlow Lite Micro gets a longer timeout, and
  ``tflm_sources`` names the tflite-micro checkout its pre-build step
  generates the library from.
* :func:`footprint` reads the ELF: flash (text + rodata + data) and RAM
  (data + bss + stack reserve), split into model weights, runtime code and
  arena.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mnmcu.emit.project import PROJECT_CORE_DIR, SAMPLE_SYMBOLS, ProjectInfo, load_project
from mnmcu.errors import CommandFailed, InvalidValue, MnmcuError, ToolMissing
from mnmcu.escape import shell_join, shell_quote, visible
from mnmcu.log import NullProgress, Progress, logger
from mnmcu.proc import run_command
from mnmcu.provision import PIOPM, provision_offline

PIO_RUN_TIMEOUT_S = 900.0
"""Time allowed for one ``pio run`` (a first build of a large model included)."""
TFLM_PIO_RUN_TIMEOUT_S = 3600.0
"""Time allowed when the project compiles TensorFlow Lite Micro (about 300 sources)."""


# Output of a pio run that wanted to download something.
_DOWNLOAD_FAILURE = re.compile(
    r"InternetConnectionError|HTTPClientError|Could not resolve|Max retries exceeded|"
    r"Failed to establish a new connection|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|UnknownPackageError|UnknownPlatform",
    re.IGNORECASE,
)


class PlatformMissing(MnmcuError):
    """A PlatformIO platform, toolchain or framework must be downloaded first."""


class BuildFailed(CommandFailed):
    """``pio run`` failed (compile or link error)."""


# --------------------------------------------------------------------------
# pio run
# --------------------------------------------------------------------------


def default_core_dir(project_dir: Path) -> Path:
    """``$PLATFORMIO_CORE_DIR`` if set, else ``<project>/.pio/core``.

    The second is where the ``platformio.ini`` of a project on a local platform
    keeps its core dir, so ``mnmcu build`` and a plain ``pio run`` share it.
    """
    configured = os.environ.get("PLATFORMIO_CORE_DIR")
    if configured:
        return Path(configured)
    return Path(project_dir).resolve() / PROJECT_CORE_DIR


def pio_environment(core_dir: Path) -> dict[str, str]:
    """The environment for PlatformIO commands: the core dir, no telemetry, no update checks."""
    env = dict(os.environ)
    env["PLATFORMIO_CORE_DIR"] = str(core_dir)
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "no"
    env["PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL"] = "3650"
    env["PLATFORMIO_DISABLE_UPGRADE_CHECK"] = "true"
    env["PLATFORMIO_NO_ANSI"] = "true"
    env.setdefault("PLATFORMIO_CALLER", "mnmcu")
    return env


def pio_command(*args: str | Path) -> list[str]:
    """``pio ARGS`` run by this Python (PlatformIO is installed beside mnmcu)."""
    return [sys.executable, "-m", "platformio", *(str(a) for a in args)]


def _read_ini(project_dir: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    ini = project_dir / "platformio.ini"
    try:
        parser.read_string(ini.read_text(encoding="utf-8"), source=str(ini))
    except (OSError, configparser.Error) as exc:
        raise InvalidValue(
            f"cannot read {ini} ({exc})", "generate the project with 'mnmcu emit'"
        ) from None
    return parser


def uses_local_platform(project_dir: Path, env: str) -> bool:
    """True if the project's environment ``env`` builds with a local (``file://``) platform."""
    parser = _read_ini(Path(project_dir))
    return parser.get(f"env:{env}", "platform", fallback="").strip().startswith("file://")


def _env_name(parser: configparser.ConfigParser, env: str | None, project_dir: Path) -> str:
    if env is not None:
        name = env
    else:
        default = parser.get("platformio", "default_envs", fallback="").split(",")[0].strip()
        envs = [s[4:] for s in parser.sections() if s.startswith("env:")]
        name = default or (envs[0] if envs else "")
    if not parser.has_section(f"env:{name}"):
        raise InvalidValue(
            f"{project_dir}/platformio.ini has no environment {name!r}", "pass env=NAME"
        )
    return name


def _installed_platforms(core_dir: Path) -> list[dict[str, Any]]:
    found = []
    for meta in sorted((core_dir / "platforms").glob(f"*/{PIOPM}")):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        data["path"] = meta.parent
        found.append(data)
    return found


def _registry_spec(spec: str) -> tuple[str, str, str] | None:
    """``owner/name@version`` -> its parts; None for URLs and local paths."""
    match = re.fullmatch(r"([\w.-]+)/([\w.-]+)\s*@\s*([\w.+-]+)", spec.strip())
    return (match.group(1), match.group(2), match.group(3)) if match else None


def _install_command(core_dir: Path, project_dir: Path, env_name: str) -> str:
    """The shell command that downloads what the project's environment needs."""
    return f"PLATFORMIO_CORE_DIR={shell_quote(core_dir)} " + shell_join(
        ["pio", "pkg", "install", "-d", project_dir, "-e", env_name]
    )


def _check_platform(spec: str, core_dir: Path, project_dir: Path, env_name: str) -> None:
    """Raise PlatformMissing if a registry platform is not installed in ``core_dir``."""
    parts = _registry_spec(spec)
    if parts is None:
        return
    owner, name, version = parts
    for item in _installed_platforms(core_dir):
        owner_ok = (item.get("spec") or {}).get("owner") in (owner, None)
        if item.get("name") == name and owner_ok and item.get("version") == version:
            return
    raise PlatformMissing(
        f"PlatformIO needs the platform {owner}/{name}@{version} (with its toolchain and "
        f"framework), which is not installed in {core_dir}; downloading it needs a network "
        "connection once",
        f"run: {_install_command(core_dir, project_dir, env_name)} (or set "
        "PLATFORMIO_CORE_DIR to a PlatformIO core dir that has it, e.g. ~/.platformio)",
    )


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel == PIOPM or "__pycache__" in rel:
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _refresh_local_platform(spec: str, core_dir: Path, project_dir: Path) -> None:
    """Drop PlatformIO's copy of a ``file://`` platform when its source has changed.

    PlatformIO copies a local platform into the core dir once and keeps
    using that copy; removing it makes the next ``pio run`` copy it again.
    A relative path is relative to the project, as for PlatformIO.
    """
    if not spec.startswith("file://"):
        return
    source = project_dir / spec[len("file://") :]
    for item in _installed_platforms(core_dir):
        if (item.get("spec") or {}).get("uri") != spec:
            continue
        installed = Path(item["path"])
        if not source.is_dir() or _tree_digest(installed) != _tree_digest(source):
            logger.debug("local platform %s changed; PlatformIO will copy it again", source)
            shutil.rmtree(installed)


def pio_run(
    project_dir: Path,
    env: str | None = None,
    timeout: float = PIO_RUN_TIMEOUT_S,
    progress: Progress | None = None,
    core_dir: Path | None = None,
    tflm_sources: Path | None = None,
) -> Path:
    """Run ``pio run`` on ``project_dir`` offline; return the firmware ELF's path.

    ``env`` defaults to the project's default environment; ``core_dir`` to
    :func:`default_core_dir`. ``tool-scons`` is provisioned there first. A
    project with ``lib/tflite-micro`` gets a longer timeout; ``tflm_sources``
    (default ``$MNMCU_TFLM_SOURCES``) is the tflite-micro checkout its
    pre-build step generates the library from.
    Raises :class:`PlatformMissing` when PlatformIO would have to download
    the board's platform (or its packages), :class:`BuildFailed` on a
    compile or link error, :class:`ToolMissing` when the toolchain is absent.
    """
    project_dir = Path(project_dir).resolve()
    progress = progress or NullProgress()
    parser = _read_ini(project_dir)
    env_name = _env_name(parser, env, project_dir)
    core = Path(core_dir).resolve() if core_dir is not None else default_core_dir(project_dir)
    spec = parser.get(f"env:{env_name}", "platform", fallback="").strip()
    provision_offline(core)
    _check_platform(spec, core, project_dir, env_name)
    _refresh_local_platform(spec, core, project_dir)
    if spec.startswith("file://") and shutil.which("arm-none-eabi-gcc") is None:
        raise ToolMissing(
            "arm-none-eabi-gcc is not installed (the QEMU boards build with it)",
            "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
        )
    from mnmcu.emit.tflm import TREE_DIR  # where a TFLite Micro project keeps the library

    cmd = pio_command("run", "-d", project_dir, "-e", env_name)
    environment = pio_environment(core)
    if (project_dir / TREE_DIR).is_dir():
        timeout = max(timeout, TFLM_PIO_RUN_TIMEOUT_S)
        if tflm_sources is not None:
            environment["MNMCU_TFLM_SOURCES"] = str(Path(tflm_sources).resolve())
    progress.start(f"pio run ({env_name})", None)
    try:
        proc = run_command(cmd, timeout=timeout, env=environment)
    except CommandFailed as exc:
        # what the project's pre-build step prints when it cannot write the library
        if f"could not generate {TREE_DIR}" in exc.message:
            raise BuildFailed(
                f"TensorFlow Lite Micro's sources are missing: {visible(str(project_dir))}"
                f"/{TREE_DIR} could not be generated (its tools/tflm_fetch.py clones "
                "tflite-micro, which needs the network)",
                "set MNMCU_TFLM_SOURCES (or --tflm-sources) to a tflite-micro checkout with its "
                "downloads; the README's 'TensorFlow Lite Micro sources' says how to make one",
            ) from None
        if _DOWNLOAD_FAILURE.search(exc.message):
            raise PlatformMissing(
                f"PlatformIO tried to download packages for {env_name} ({spec}) and could "
                "not; it needs a network connection once",
                f"run: {_install_command(core, project_dir, env_name)}",
            ) from None
        raise BuildFailed(
            exc.message, "fix the error above; 'pio run -v' shows every command"
        ) from None
    finally:
        progress.finish()
    logger.debug("pio run output:\n%s", proc.stdout.decode("utf-8", "replace").rstrip())
    build_dir = os.environ.get("PLATFORMIO_BUILD_DIR") or project_dir / ".pio" / "build"
    elf = Path(build_dir) / env_name / "firmware.elf"
    if not elf.is_file():
        raise BuildFailed(f"pio run succeeded but {elf} is missing")
    return elf


# --------------------------------------------------------------------------
# Footprint
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SectionSize:
    """One allocated ELF section."""

    name: str
    size: int
    kind: str  # "text", "rodata", "data", "bss", "heap" or "stack"


@dataclass(frozen=True)
class Footprint:
    """Flash and RAM of a firmware ELF, split by what uses them.

    flash = text + rodata + data (the load image of initialised data);
    RAM = data + bss + heap + stack reserve. In flash, ``model_weights`` are
    the model's constants (weights, biases, requantisation data, op
    parameters), ``sample_data`` the embedded sample input and expected
    output, and ``runtime_code`` everything else (code, libc, strings). In
    RAM, ``arena`` is the tensor arena and ``other_data_bss`` the rest of
    data and bss. ``protocol_code`` (functions and constants) and
    ``protocol_ram`` are the serial protocol's share (firmware/protocol),
    already counted in the figures above.
    """

    flash_bytes: int
    ram_bytes: int
    text_bytes: int
    rodata_bytes: int
    data_bytes: int
    bss_bytes: int
    heap_bytes: int
    stack_bytes: int
    model_weights_bytes: int
    sample_data_bytes: int
    runtime_code_bytes: int
    arena_bytes: int
    other_data_bss_bytes: int
    sections: tuple[SectionSize, ...] = ()
    protocol_code_bytes: int = 0
    protocol_ram_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        data = asdict(self)
        data["sections"] = [asdict(s) for s in self.sections]
        return data


def _section_lma(elf: Any, section: Any) -> int:
    for segment in elf.iter_segments():
        if segment["p_type"] != "PT_LOAD":
            continue
        start, size = segment["p_vaddr"], segment["p_memsz"]
        if start <= section["sh_addr"] < start + max(size, 1):
            return int(segment["p_paddr"] + section["sh_addr"] - start)
    return int(section["sh_addr"])


def _section_kind(section: Any, lma: int) -> str:
    from elftools.elf.constants import SH_FLAGS

    flags = section["sh_flags"]
    name = section.name
    if section["sh_type"] == "SHT_NOBITS":
        if name == ".stack" or name.startswith(".stack"):
            return "stack"
        if name == ".heap" or name.startswith(".heap"):
            return "heap"
        return "bss"
    if flags & SH_FLAGS.SHF_EXECINSTR:
        return "text"
    if flags & SH_FLAGS.SHF_WRITE and lma != section["sh_addr"]:
        return "data"
    return "rodata"


def _symbols_by_file(elf: Any) -> Iterable[tuple[str, Any]]:
    """(defining source file or "", symbol) for each symbol; locals follow their STT_FILE."""
    symtab = elf.get_section_by_name(".symtab")
    if symtab is None:
        return []
    current = ""
    result = []
    for sym in symtab.iter_symbols():
        kind = sym["st_info"]["type"]
        bind = sym["st_info"]["bind"]
        if kind == "STT_FILE":
            current = Path(sym.name).name
            continue
        result.append((current if bind == "STB_LOCAL" else "", sym))
    return result


def footprint(elf_path: Path, project: ProjectInfo | Path | None = None) -> Footprint:
    """Measure a firmware ELF; with the ``project`` that built it, split out model and arena.

    ``project`` is the :class:`ProjectInfo` or the project folder (its
    ``mnmcu_project.json`` names the model's source files and arena). Model
    weights are the data objects those files define in flash; the arena the
    ones they define in RAM or the symbols named as the arena.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    info = load_project(project) if isinstance(project, Path) else project
    model_files = {Path(p).name for p in info.model_sources} if info else set()
    arena_names = set(info.arena_symbols) if info else set()
    model_names = set(info.model_symbols) if info else set()
    try:
        stream = Path(elf_path).open("rb")
    except OSError as exc:
        raise InvalidValue(f"cannot open {elf_path} ({exc.strerror})", "build it first") from None
    with stream:
        try:
            elf = ELFFile(stream)
            sections = []
            kinds: dict[int, str] = {}
            for index, section in enumerate(elf.iter_sections()):
                if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                    continue
                kind = _section_kind(section, _section_lma(elf, section))
                kinds[index] = kind
                sections.append(SectionSize(section.name, int(section["sh_size"]), kind))
            symbols = list(_symbols_by_file(elf))
        except ELFError as exc:
            raise InvalidValue(f"{elf_path} is not a readable ELF file ({exc})") from None
    sizes = {k: sum(s.size for s in sections if s.kind == k) for k in _KINDS}
    weights = sample = arena = 0
    for source, sym in symbols:
        shndx = sym["st_shndx"]
        if sym["st_info"]["type"] != "STT_OBJECT" or not isinstance(shndx, int):
            continue
        sym_kind = kinds.get(shndx)
        size = int(sym["st_size"])
        if sym_kind is None or size == 0:
            continue
        in_flash = sym_kind in ("rodata", "data")
        if sym.name in SAMPLE_SYMBOLS and in_flash:
            sample += size
        elif (source in model_files or sym.name in model_names) and in_flash:
            weights += size
        elif sym_kind in ("bss", "data") and sym.name in arena_names:
            arena += size
    flash = sizes["text"] + sizes["rodata"] + sizes["data"]
    ram = sizes["data"] + sizes["bss"] + sizes["heap"] + sizes["stack"]
    proto_code, proto_ram = _protocol_cost(symbols, kinds)
    return Footprint(
        flash_bytes=flash,
        ram_bytes=ram,
        text_bytes=sizes["text"],
        rodata_bytes=sizes["rodata"],
        data_bytes=sizes["data"],
        bss_bytes=sizes["bss"],
        heap_bytes=sizes["heap"],
        stack_bytes=sizes["stack"],
        model_weights_bytes=weights,
        sample_data_bytes=sample,
        runtime_code_bytes=flash - weights - sample,
        arena_bytes=arena,
        other_data_bss_bytes=sizes["data"] + sizes["bss"] - arena,
        sections=tuple(sections),
        protocol_code_bytes=proto_code,
        protocol_ram_bytes=proto_ram,
    )


_PROTOCOL_FILES = frozenset({"mnmcu_proto.c", "mnmcu_proto_device.c"})
_PROTOCOL_GLOBALS = frozenset({"mnmcu_app_poll", "mnmcu_layer_hook"})


def _protocol_cost(symbols: Iterable[tuple[str, Any]], kinds: Mapping[int, str]) -> tuple[int, int]:
    """(flash, RAM) bytes of the serial protocol's functions and objects."""
    code = ram = 0
    for source, sym in symbols:
        name = sym.name
        ours = source in _PROTOCOL_FILES or name.startswith("mnmcu_proto_")
        shndx = sym["st_shndx"]
        if not (ours or name in _PROTOCOL_GLOBALS) or not isinstance(shndx, int):
            continue
        kind, size = kinds.get(shndx), int(sym["st_size"])
        if sym["st_info"]["type"] == "STT_FUNC" and kind == "text":
            code += size
        elif sym["st_info"]["type"] == "STT_OBJECT" and kind in ("rodata", "text"):
            code += size
        elif sym["st_info"]["type"] == "STT_OBJECT" and kind in ("data", "bss"):
            ram += size
    return code, ram


_KINDS = ("text", "rodata", "data", "bss", "heap", "stack")


def footprint_summary(fp: Footprint) -> Mapping[str, int]:
    """The headline figures, in bytes, for reports and screens."""
    return {
        "flash": fp.flash_bytes,
        "ram": fp.ram_bytes,
        "runtime_code": fp.runtime_code_bytes,
        "model_weights": fp.model_weights_bytes,
        "sample_data": fp.sample_data_bytes,
        "arena": fp.arena_bytes,
        "stack": fp.stack_bytes,
        "other_data_bss": fp.other_data_bss_bytes,
        "protocol_code": fp.protocol_code_bytes,
        "protocol_ram": fp.protocol_ram_bytes,
    }
