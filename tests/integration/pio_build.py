"""PlatformIO's compile and link commands, rebuilt so that tests can run them on vendor sources.

:class:`BuildEnv` holds the flag variables of one SCons construction
environment. Flags given as text go through SCons's own ``ParseFlags``, which
PlatformIO's ``ProcessFlags`` calls (platformio-core 6.1,
``builder/tools/piobuild.py``), so every flag lands where PlatformIO puts it:
``-D`` in CPPDEFINES, ``-I`` in CPPPATH, ``-std=`` in CFLAGS or CXXFLAGS,
``-Wl,`` in LINKFLAGS and every other ``-m...`` or ``-f...`` in CCFLAGS only,
that is, on the C and C++ command lines, not on the assembler's nor the
linker's. :func:`platformio_env` applies a generated project's
``platformio.ini`` in ``ProcessProgramDeps``'s order: ``pre:`` extra scripts,
the ``PLATFORMIO`` macro, the board's ``build.extra_flags``, ``build_flags``,
the framework's builder, ``build_unflags``. Command lines follow SCons 4's
``CCCOM``, ``CXXCOM``, ``ASPPCOM`` and ``LINKCOM``.

:class:`Compiler` runs commands at most two at a time (``MNMCU_BUILD_JOBS``
overrides it) and keeps framework objects in a cache keyed by the command,
the source's bytes and a fingerprint of the source trees, so a second run of
the suite compiles only the generated project.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SCOPES = (
    "ASFLAGS",
    "ASPPFLAGS",
    "CCFLAGS",
    "CFLAGS",
    "CXXFLAGS",
    "CPPDEFINES",
    "CPPPATH",
    "LINKFLAGS",
    "LIBS",
    "LIBPATH",
)
# platformio-core 6.1 builder/tools/piobuild.py: SRC_C_EXT, SRC_CXX_EXT, SRC_ASM_EXT.
C_EXT = ("c",)
CXX_EXT = ("cc", "cpp", "cxx", "c++")
ASM_EXT = ("S", "spp", "SPP", "sx", "s", "asm", "ASM")
SOURCE_EXT = C_EXT + CXX_EXT + ASM_EXT
SRC_FILTER_DEFAULT = "+<*> -<.git/> -<.svn/>"  # piobuild.py SRC_FILTER_DEFAULT
OBJECT = "@OBJECT@"
STRICT = ("-Wall", "-Wextra", "-Werror")
WARNING = re.compile(r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?:\d+:)? warning: (?P<text>.*)$")


def shell_word(text: str) -> str:
    """``text`` as the shell PlatformIO runs commands through passes it on (quotes removed)."""
    words = shlex.split(text)
    return words[0] if len(words) == 1 else text


@dataclass
class BuildEnv:
    """The flag variables of one SCons construction environment.

    CPPDEFINES hold the compiler's view, ``NAME`` or ``NAME=VALUE``; CPPPATH
    absolute folders.
    """

    scopes: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SCOPES})

    def __getitem__(self, scope: str) -> list[str]:
        return self.scopes[scope]

    def append(self, **values: Iterable[str]) -> None:
        """SCons ``Append``."""
        for scope, items in values.items():
            self.scopes[scope].extend(items)

    def prepend_unique(self, **values: Iterable[str]) -> None:
        """SCons ``PrependUnique``: new items go first, in order; present ones stay put."""
        for scope, items in values.items():
            new = [i for i in dict.fromkeys(items) if i not in self.scopes[scope]]
            self.scopes[scope][:0] = new

    def clone(self) -> BuildEnv:
        """An independent copy (SCons ``Clone``)."""
        return BuildEnv({scope: list(items) for scope, items in self.scopes.items()})

    def process_flags(self, flags: str, cwd: Path | None = None) -> None:
        """PlatformIO's ``ProcessFlags``: ``flags`` through SCons ``ParseFlags``, appended.

        Relative CPPPATH entries are taken relative to ``cwd`` when they are
        folders there (PlatformIO processes a library's flags in its folder).
        """
        for scope, items in parse_flags(flags, cwd).items():
            self.append(**{scope: items})

    def process_unflags(self, flags: str) -> None:
        """PlatformIO's ``ProcessUnFlags``: every parsed flag leaves every scope."""
        unflags = {item for items in parse_flags(flags).values() for item in items}

        def kept(scope: str, item: str) -> bool:
            return item not in unflags and (
                scope != "CPPDEFINES" or item.split("=")[0] not in unflags
            )

        for scope, items in self.scopes.items():
            self.scopes[scope] = [item for item in items if kept(scope, item)]

    def command(
        self,
        source: Path,
        system: Sequence[Path] = (),
        extra: Sequence[str] = (),
        tools: Toolchain | None = None,
    ) -> list[str]:
        """The SCons command that compiles ``source`` into :data:`OBJECT`.

        CPPPATH entries under one of ``system`` are passed as ``-isystem``
        instead of ``-I``; ``extra`` goes after the flags (before the source).
        """
        tools = tools or ARM
        defines = [f"-D{d}" for d in self["CPPDEFINES"]]
        includes: list[str] = []
        for path in self["CPPPATH"]:
            under = any(Path(path).is_relative_to(root) for root in system)
            includes += ["-isystem", path] if under else [f"-I{path}"]
        ext = source.suffix[1:]
        if ext in C_EXT:
            flags = [*self["CFLAGS"], *self["CCFLAGS"], *defines, *includes]
            return [tools.cc, "-o", OBJECT, "-c", *flags, *extra, str(source)]
        if ext in CXX_EXT:
            flags = [*self["CXXFLAGS"], *self["CCFLAGS"], *defines, *includes]
            return [tools.cxx, "-o", OBJECT, "-c", *flags, *extra, str(source)]
        if ext in ASM_EXT:
            # SCons asm tool: ASPPFLAGS defaults to '$ASFLAGS', builders append to it.
            aspp = [*self["ASFLAGS"], *self["ASPPFLAGS"]]
            return [tools.cc, *aspp, *defines, *includes, *extra, "-c", "-o", OBJECT, str(source)]
        raise ValueError(f"{source} is not a source PlatformIO compiles")

    def link_command(
        self, linker: str, objects: Sequence[Path], libraries: Sequence[Path], elf: Path
    ) -> list[str]:
        """SCons ``LINKCOM`` with PlatformIO's ``--start-group``/``--end-group`` around LIBS.

        ``linker`` is what SCons's ``SMARTLINK`` picks: the C++ driver when a
        source is C++, else the C driver.
        """
        libs = [str(p) for p in libraries] + [f"-l{name}" for name in self["LIBS"]]
        return [
            linker,
            "-o",
            str(elf),
            *self["LINKFLAGS"],
            *map(str, objects),
            *(f"-L{p}" for p in self["LIBPATH"]),
            "-Wl,--start-group",
            *libs,
            "-Wl,--end-group",
        ]


@dataclass(frozen=True)
class Toolchain:
    """The compiler drivers of one toolchain."""

    cc: str
    cxx: str
    size: str = ""


ARM = Toolchain("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size")
HOST = Toolchain("gcc", "g++")


def parse_flags(flags: str, cwd: Path | None = None) -> dict[str, list[str]]:
    """SCons 4 ``ParseFlags`` in PlatformIO's reading (``ParseFlagsExtended``), non-empty scopes.

    A define's value keeps its quotes, as the compiler sees it after PlatformIO
    escaped them for the shell.
    """
    from SCons.Environment import Base

    parsed: dict[str, list[Any]] = Base(tools=[]).ParseFlags(flags)
    out: dict[str, list[str]] = {}
    for scope, items in parsed.items():
        if not items:
            continue
        if scope not in SCOPES:
            raise ValueError(f"flags {flags!r} set {scope}, which these tests do not model")
        values: list[str] = []
        for item in items:
            if scope == "CPPDEFINES":
                values.append(item if isinstance(item, str) else f"{item[0]}={item[1]}")
            elif scope == "CPPPATH":
                path = Path(cwd or ".", item)
                values.append(str(path.resolve()) if path.is_dir() else str(item))
            elif isinstance(item, tuple):
                values += [item[0], str(item[1])]
            else:
                values.append(str(item))
        out[scope] = values
    return out


# --------------------------------------------------------------------------
# A generated project's platformio.ini and extra scripts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PioEnv:
    """The environment section of a generated ``platformio.ini``."""

    project: Path
    name: str
    options: dict[str, str]

    def get(self, key: str) -> str:
        """An option's value, ``""`` when absent."""
        return self.options.get(key, "")

    def extra_scripts(self, when: str) -> list[Path]:
        """``extra_scripts`` run ``when`` (``pre`` or ``post``; no prefix means post)."""
        scripts = []
        for entry in filter(None, re.split(r"[,\n]\s*", self.get("extra_scripts").strip())):
            prefix, _, path = entry.rpartition(":")
            if (prefix or "post") == when:
                scripts.append(self.project / path.strip())
        return scripts


def read_env(project: Path) -> PioEnv:
    """The one ``[env:...]`` section of the project's ``platformio.ini``."""
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    ini.read(project / "platformio.ini")
    (section,) = [s for s in ini.sections() if s.startswith("env:")]
    return PioEnv(project, section[4:], dict(ini[section]))


# Stand-in for PlatformIO's SCons environment: runs one extra script and prints,
# as its last line, the flag changes it made as JSON.
_SCRIPT_HARNESS = r"""
import json, runpy, sys

calls = []
variables = json.loads(sys.argv[2])


class Env:
    def subst(self, text):
        for key, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
            text = text.replace("$" + key, value)
        return text

    def Exit(self, code=0):
        print(json.dumps(calls))
        sys.exit(code)

    def __getattr__(self, name):
        if name in ("Append", "Prepend", "AppendUnique", "PrependUnique", "Replace"):
            return lambda **kw: calls.append([name, kw])
        raise AttributeError("the test's stand-in for PlatformIO's env has no " + name)


env = Env()
runpy.run_path(sys.argv[1], init_globals={"env": env, "Import": lambda *names: None})
print(json.dumps(calls))
"""


def run_extra_script(script: Path, env: BuildEnv, project: Path) -> None:
    """Run a project's extra script in a subprocess and apply its flag changes to ``env``."""
    variables = {"PROJECT_DIR": str(project), "PYTHONEXE": sys.executable}
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT_HARNESS, str(script), json.dumps(variables)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode != 0:
        raise AssertionError(
            f"extra script {script} failed ({run.returncode}): {run.stderr[-2000:]}"
        )
    for method, scopes in json.loads(run.stdout.strip().splitlines()[-1]):
        if method != "Append":
            raise AssertionError(f"{script} calls env.{method}, which these tests do not model")
        for scope, values in scopes.items():
            env.append(**{scope: [values] if isinstance(values, str) else values})


def platformio_version_macro() -> str:
    """``PLATFORMIO=<MMmmpp>`` of the installed PlatformIO core (``_append_pio_macros``)."""
    from platformio import __version__

    match = re.match(r"(\d+)\.(\d+)\.(\d+)", __version__)
    assert match is not None, __version__
    major, minor, patch = map(int, match.groups())
    return f"PLATFORMIO={major * 10000 + minor * 100 + patch}"


def platformio_env(
    project: Path, board_extra_flags: str, framework: Callable[[BuildEnv], None]
) -> tuple[BuildEnv, PioEnv]:
    """The project-wide environment PlatformIO builds ``project`` with.

    ``framework`` appends what the framework's builder script does.
    """
    pio = read_env(project)
    env = BuildEnv()
    for script in pio.extra_scripts("pre"):
        run_extra_script(script, env, project)
    env.append(CPPDEFINES=[platformio_version_macro()])
    env.process_flags(board_extra_flags)
    env.process_flags(pio.get("build_flags"))
    framework(env)
    env.process_unflags(pio.get("build_unflags"))
    if pio.extra_scripts("post"):
        raise AssertionError(f"{project}: post extra scripts are not modelled by these tests")
    return env, pio


@dataclass(frozen=True)
class Library:
    """A project library (``lib/<name>/library.json``): its environment and sources."""

    name: str
    path: Path
    env: BuildEnv
    sources: tuple[Path, ...]


def project_library(path: Path, global_env: BuildEnv, src_root: Path | None = None) -> Library:
    """PlatformIO's library builder for ``path``: its flags, include folders and sources.

    ``src_root`` stands in for the library folder when its sources live
    elsewhere (the same tree shared by several projects).
    """
    from platformio.fs import match_src_files

    manifest = json.loads((path / "library.json").read_text())
    root = src_root or path
    build = manifest.get("build", {})
    env = global_env.clone()
    env.prepend_unique(CPPPATH=[str((root / build.get("includeDir", "include")).resolve())])
    env.process_flags(" ".join(build.get("flags", [])), cwd=root)
    src_dir = root / build.get("srcDir", "src")
    names = match_src_files(str(src_dir), build.get("srcFilter"), SOURCE_EXT)
    return Library(manifest["name"], path, env, tuple(src_dir / n for n in names))


# --------------------------------------------------------------------------
# Running compilers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    """One compile: its command, object, output and whether the cache supplied it."""

    source: Path
    obj: Path
    command: tuple[str, ...]
    returncode: int
    output: str
    cached: bool

    @property
    def warnings(self) -> list[str]:
        """The compiler's warning lines."""
        return [line for line in self.output.splitlines() if WARNING.match(line)]


@cache
def _compiler_identity(program: str) -> str:
    run = subprocess.run([program, "--version"], capture_output=True, text=True, check=True)
    return run.stdout.splitlines()[0]


def build_jobs() -> int:
    """Parallel compiles: ``MNMCU_BUILD_JOBS`` or 2."""
    return max(1, int(os.environ.get("MNMCU_BUILD_JOBS", "2")))


class Compiler:
    """Runs compile commands in parallel; with a cache folder, keeps and reuses objects.

    Objects of uncached compiles go to ``obj_dir``. The cache key covers the
    command, the compiler's version, the source's bytes and ``fingerprint``
    (see :func:`framework_sources.tree_fingerprint`); in the key, each prefix
    of ``neutral`` is replaced by its placeholder, so that a framework source
    compiled with the same flags for another generated project (whose folder
    is on the include path, as PlatformIO puts it there, but whose files the
    framework never includes) reuses the object.
    """

    def __init__(
        self,
        obj_dir: Path,
        cache_dir: Path | None = None,
        fingerprint: str = "",
        neutral: Mapping[str, str] | None = None,
    ) -> None:
        self.obj_dir = obj_dir
        self.cache_dir = cache_dir
        self.fingerprint = fingerprint
        self.neutral = dict(neutral or {})

    def _key(self, source: Path, command: Sequence[str]) -> str:
        neutral = list(command)
        for prefix, placeholder in self.neutral.items():
            neutral = [arg.replace(prefix, placeholder) for arg in neutral]
        data = [_compiler_identity(command[0]), neutral, self.fingerprint]
        data.append(hashlib.sha256(source.read_bytes()).hexdigest())
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()

    def compile(self, commands: Sequence[tuple[Path, list[str]]]) -> list[Compiled]:
        """Run every ``(source, command)``; results in the same order."""
        self.obj_dir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=build_jobs()) as pool:
            return list(pool.map(self._one, enumerate(commands)))

    def _one(self, item: tuple[int, tuple[Path, list[str]]]) -> Compiled:
        index, (source, command) = item
        if self.cache_dir is None:
            obj = self.obj_dir / f"{index:04d}_{source.name}.o"
        else:
            key = self._key(source, command)
            obj = self.cache_dir / key[:2] / f"{key}.o"
            log = obj.with_suffix(".log")
            if obj.is_file() and log.is_file():
                return Compiled(source, obj, tuple(command), 0, log.read_text(), True)
            obj.parent.mkdir(parents=True, exist_ok=True)
        argv = [str(obj) if arg == OBJECT else arg for arg in command]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        output = run.stdout + run.stderr
        if self.cache_dir is not None and run.returncode == 0:
            obj.with_suffix(".log").write_text(output)
        return Compiled(source, obj, tuple(argv), run.returncode, output, False)


def require_compiled(results: Sequence[Compiled], what: str) -> None:
    """Fail with every failing command and its output."""
    failed = [r for r in results if r.returncode != 0]
    if failed:
        details = "\n\n".join(f"$ {shlex.join(r.command)}\n{r.output[-3000:]}" for r in failed[:5])
        raise AssertionError(
            f"{len(failed)} of {len(results)} {what} failed to compile:\n{details}"
        )


def run_tool(command: Sequence[str], what: str, timeout: float = 600) -> str:
    """Run ``command``; fail with it, its status and its output's tail."""
    run = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise AssertionError(
            f"{what} failed ({run.returncode}):\n$ {shlex.join(command)}\n"
            f"{(run.stdout + run.stderr)[-4000:]}"
        )
    return run.stdout + run.stderr


# platform-ststm32 v19.6.0 builder/main.py SIZEPROGREGEXP and SIZEDATAREGEXP: the
# sections PlatformIO counts as flash and RAM for its "checkprogsize" report.
PROGRAM_SECTIONS = re.compile(r"^(?:\.text|\.data|\.rodata|\.text.align|\.ARM.exidx)\s+(\d+).*")
DATA_SECTIONS = re.compile(r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*")


def elf_sizes(elf: Path, tools: Toolchain = ARM) -> dict[str, int]:
    """``flash`` and ``ram`` bytes as PlatformIO reports them, and each section's size."""
    text = run_tool([tools.size, "-A", "-d", str(elf)], "size")
    sizes = {"flash": 0, "ram": 0}
    for line in text.splitlines():
        if m := PROGRAM_SECTIONS.match(line):
            sizes["flash"] += int(m.group(1))
        if m := DATA_SECTIONS.match(line):
            sizes["ram"] += int(m.group(1))
        if m := re.match(r"^(\.\S+)\s+(\d+)\s+\d+$", line):
            sizes[m.group(1)] = int(m.group(2))
    return sizes


def split_warnings(results: Iterable[Compiled], ours: Path) -> tuple[list[str], list[str]]:
    """Warning lines located in files under ``ours``, and the others."""
    mine, theirs = [], []
    for result in results:
        for line in result.warnings:
            match = WARNING.match(line)
            assert match is not None
            located = Path(match.group("file"))
            (mine if located.resolve().is_relative_to(ours.resolve()) else theirs).append(line)
    return mine, theirs


def warning_summary(lines: Sequence[str]) -> str:
    """``N warnings`` and the distinct warning options among them."""
    if not lines:
        return "0 warnings"
    kinds = sorted({line.rsplit("[", 1)[-1].rstrip("]") for line in lines if "[-W" in line})
    return f"{len(lines)} warnings ({', '.join(kinds) or 'no option named'})"


ARM_GCC_HINT = (
    "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
)


@cache
def _arm_cxx_headers() -> bool:
    """Whether ``arm-none-eabi-g++`` finds C++ standard headers (Debian ships them apart)."""
    run = subprocess.run(
        [ARM.cxx, "-x", "c++", "-std=gnu++17", "-fsyntax-only", "-"],
        input="#include <cstdint>\n#include <new>\n",
        capture_output=True,
        text=True,
    )
    return run.returncode == 0


def require_arm_gcc() -> None:
    """Skip without the Arm cross compiler and its C++ library."""
    if shutil.which(ARM.cc) is None or shutil.which(ARM.cxx) is None:
        pytest.skip(f"arm-none-eabi-gcc is not installed: {ARM_GCC_HINT}")
    if not _arm_cxx_headers():
        pytest.skip(f"arm-none-eabi-g++ has no C++ standard headers: {ARM_GCC_HINT}")


def case_id(value: tuple[str, str]) -> str:
    """``board-runtime``, the id of a parametrised case."""
    return "-".join(value)


def shorten(line: str, roots: Mapping[str, Path | None]) -> str:
    """``line`` with each root folder written as ``<label>/``."""
    for label, root in roots.items():
        if root is not None:
            line = line.replace(f"{root}/", f"<{label}>/")
    return line


def project_env(global_env: BuildEnv, pio: PioEnv, libraries: Sequence[Library]) -> BuildEnv:
    """The environment of the project's own sources (``ProjectAsLibBuilder``).

    The libraries' include folders go first (``PrependUnique``), then the
    project's ``build_src_flags`` apply (``ProjectAsLibBuilder.process_extra_options``
    in platformio-core 6.1 ``builder/tools/piolib.py``; a project has no
    ``build_src_unflags``).
    """
    env = global_env.clone()
    for library in libraries:
        env.prepend_unique(CPPPATH=library.env["CPPPATH"])
    env.prepend_unique(CPPPATH=[str(pio.project / "src")])
    env.process_flags(pio.get("build_src_flags"), cwd=pio.project)
    return env


def project_sources(project: Path) -> list[Path]:
    """The sources PlatformIO builds from a project's ``src`` (every level, default filter)."""
    from platformio.fs import match_src_files

    src = project / "src"
    return [src / name for name in match_src_files(str(src), SRC_FILTER_DEFAULT, SOURCE_EXT)]
