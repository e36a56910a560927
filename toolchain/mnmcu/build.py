"""Build a generated PlatformIO project offline, and measure the firmware.

* :func:`provision_offline` puts PlatformIO's ``tool-scons`` package (the
  SCons it runs builds with) into a core dir from the ``scons`` Python
  package installed beside mnmcu, so ``pio run`` needs no registry.
* :func:`pio_run` runs ``pio run`` on a project with PlatformIO's core dir
  inside the build area (unless ``PLATFORMIO_CORE_DIR`` is set), telemetry
  and update checks off. A board whose platform PlatformIO would have to
  download raises :class:`PlatformMissing` with the command that fetches it.
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

from mnmcu.emit.project import SAMPLE_SYMBOLS, ProjectInfo, load_project
from mnmcu.errors import CommandFailed, InvalidValue, MnmcuError, ToolMissing
from mnmcu.escape import shell_join, shell_quote
from mnmcu.log import NullProgress, Progress, logger
from mnmcu.proc import run_command

PIO_RUN_TIMEOUT_S = 900.0
"""Time allowed for one ``pio run`` (a first build of a large model included)."""

CORE_DIR_NAME = "core"
"""Default core dir: ``<project>/.pio/core``, inside the project's build area."""

SCONS_PACKAGE = "tool-scons"
_PIOPM = ".piopm"
# SCons's DocBook tool carries 20 MB of XSL stylesheets PlatformIO never uses.
_SCONS_IGNORE = ("__pycache__", "*.pyc", "docbook-xsl-*")
_SCONS_LAUNCHER = '''\
"""SCons launcher of the tool-scons package mnmcu provisioned offline."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import SCons.Script  # noqa: E402

SCons.Script.main()
'''
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
# tool-scons
# --------------------------------------------------------------------------


def scons_package_version(scons_version: str) -> str:
    """PlatformIO's version of a tool-scons package: SCons 4.11.1 -> ``4.41101.0``."""
    parts = scons_version.split(".")
    if len(parts) < 3 or not all(p.isdigit() for p in parts[:3]):
        raise InvalidValue(f"unexpected SCons version {scons_version!r}")
    major, minor, patch = (int(p) for p in parts[:3])
    return f"{major}.{major}{minor:02d}{patch:02d}.0"


def _required_scons() -> str:
    """The tool-scons requirement of the installed PlatformIO, e.g. ``~4.41101.0``."""
    try:
        from platformio.dependencies import get_core_dependencies
    except ImportError:
        raise ToolMissing("PlatformIO is not installed", "pip install platformio") from None
    return str(get_core_dependencies()[SCONS_PACKAGE])


def _scons_source() -> tuple[Path, str]:
    try:
        import SCons
    except ImportError:
        raise ToolMissing(
            "the scons Python package is not installed", "pip install scons==4.11.1"
        ) from None
    return Path(SCons.__file__).resolve().parent, str(SCons.__version__)


def _satisfies(version: str, requirement: str) -> bool:
    import semantic_version

    return semantic_version.Version(version) in semantic_version.NpmSpec(requirement)


def provision_offline(core_dir: Path) -> None:
    """Install PlatformIO's ``tool-scons`` package into ``core_dir`` from PyPI's scons.

    Writes ``<core_dir>/packages/tool-scons`` with the ``SCons`` package, a
    ``scons.py`` launcher, a ``package.json`` and the ``.piopm`` metadata
    PlatformIO's package manager reads (spec owner ``platformio``), so
    ``pio run`` finds the package it would otherwise download. Does nothing
    when a version PlatformIO accepts is already there (provisioned or
    downloaded). Raises :class:`ToolMissing`
    when the installed scons does not satisfy the installed PlatformIO.
    """
    source, scons_version = _scons_source()
    version = scons_package_version(scons_version)
    requirement = _required_scons()
    if not _satisfies(version, requirement):
        raise ToolMissing(
            f"PlatformIO needs tool-scons {requirement} but the installed scons is "
            f"{scons_version} (package version {version})",
            "install the scons release PlatformIO expects (pyproject.toml pins it)",
        )
    package = Path(core_dir) / "packages" / SCONS_PACKAGE
    meta = package / _PIOPM
    if meta.is_file():
        try:
            present = str(json.loads(meta.read_text(encoding="utf-8")).get("version"))
            if _satisfies(present, requirement):
                return  # ours or PlatformIO's own download: either serves
        except (OSError, ValueError):
            pass
    if package.exists():
        shutil.rmtree(package)
    package.mkdir(parents=True)
    shutil.copytree(source, package / "SCons", ignore=shutil.ignore_patterns(*_SCONS_IGNORE))
    (package / "scons.py").write_text(_SCONS_LAUNCHER, encoding="utf-8")
    manifest = {
        "name": SCONS_PACKAGE,
        "version": version,
        "description": f"SCons {scons_version}, provisioned offline by mnmcu from PyPI's scons",
        "keywords": ["build tool"],
        "homepage": "https://scons.org",
        "license": "MIT",
        "system": "*",
    }
    (package / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    # The metadata PlatformIO writes for an installed package (platformio/package/meta.py,
    # PackageMetadata.as_dict); written last, so a half-copied package is not used.
    metadata = {
        "type": "tool",
        "name": SCONS_PACKAGE,
        "version": version,
        "spec": {
            "owner": "platformio",
            "id": None,
            "name": SCONS_PACKAGE,
            "requirements": None,
            "uri": None,
        },
    }
    meta.write_text(json.dumps(metadata), encoding="utf-8")
    logger.debug(
        "provisioned %s %s (SCons %s) in %s", SCONS_PACKAGE, version, scons_version, package
    )


# --------------------------------------------------------------------------
# pio run
# --------------------------------------------------------------------------


def default_core_dir(project_dir: Path) -> Path:
    """``$PLATFORMIO_CORE_DIR`` if set, else ``<project>/.pio/core``."""
    configured = os.environ.get("PLATFORMIO_CORE_DIR")
    if configured:
        return Path(configured)
    return Path(project_dir).resolve() / ".pio" / CORE_DIR_NAME


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
    for meta in sorted((core_dir / "platforms").glob(f"*/{_PIOPM}")):
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
        if rel == _PIOPM or "__pycache__" in rel:
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
) -> Path:
    """Run ``pio run`` on ``project_dir`` offline; return the firmware ELF's path.

    ``env`` defaults to the project's default environment; ``core_dir`` to
    :func:`default_core_dir`. ``tool-scons`` is provisioned there first.
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
    cmd = pio_command("run", "-d", project_dir, "-e", env_name)
    progress.start(f"pio run ({env_name})", None)
    try:
        proc = run_command(cmd, timeout=timeout, env=pio_environment(core))
    except CommandFailed as exc:
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
        elif source in model_files and in_flash:
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
