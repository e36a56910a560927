"""The generated Nano 33 BLE projects compiled against ArduinoCore-mbed 4.5.0 (issue 16).

Runs only where ``MNMCU_ARDUINO_MBED_SOURCES`` names ArduinoCore-mbed 4.5.0
(arduino/ArduinoCore-mbed, tag 4.5.0) with the ``api/`` folder of
ArduinoCore-API 1.5.2 placed at ``cores/arduino/api``, as Arduino's release
archives and PlatformIO's framework-arduino-mbed ~4.5.0 have it; it skips
otherwise. The tflm case also needs ``MNMCU_TFLM_SOURCES`` (see
:mod:`framework_sources`).

PlatformIO's nordicnrf52 10.11.0 builds the nano33ble with
``builder/frameworks/arduino/mbed-core/arduino-core-mbed.py`` (platform.py
names it; it is platformio/builder-framework-arduino-core-mbed at 66ff9c5,
the submodule of platformio/builder-framework-arduino-nrf5 at 652df28, the
platform's submodule at v10.11.0). :func:`arduino_mbed_framework` appends
what it does: the variant's ``cflags.txt``, ``cxxflags.txt`` and
``defines.txt`` (their common flags in CCFLAGS), ``-iprefix`` the core and
``@includes.txt``, ``-nostdlib``, ``ARDUINO=10810`` and ``ARDUINO_ARCH_MBED``,
the core's and variant's folders, and last ``-mfloat-abi=soft
-mfpu=fpv4-sp-d16`` (``configure_fpu_flags``), which, coming after the
variant's ``-mfloat-abi=softfp``, is the one GCC uses. The board's
``build.extra_flags`` and the project's ``platformio.ini`` are applied as
:func:`pio_build.platformio_env` describes.

Every generated source is compiled (with PlatformIO's flags, and again with
``-Werror`` and the framework and TFLM folders as ``-isystem``; the variant's
flags already hold ``-Wall -Wextra``), the core and the variant, and for tflm
the TFLM library of ``lib/tflite-micro``. Nothing is linked: the precompiled
``libmbed.a`` need not be there.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mnmcu.boards import get_board
from mnmcu.emit.project import emit_project
from mnmcu.emit.tflm import load_versions

from .framework_sources import (
    ARDUINO_MBED,
    TFLM,
    install_tflm_tree,
    sample_model,
    tflm_project_tree,
    tree_fingerprint,
)
from .pio_build import (
    STRICT,
    BuildEnv,
    Compiled,
    Compiler,
    Library,
    case_id,
    platformio_env,
    project_env,
    project_library,
    project_sources,
    require_arm_gcc,
    require_compiled,
    shorten,
    split_warnings,
    warning_summary,
)

BOARD = "nano33ble"
# platform-nordicnrf52 v10.11.0 boards/nano33ble.json: build.extra_flags, build.variant,
# build.core, build.cpu.
EXTRA_FLAGS = "-DARDUINO_ARDUINO_NANO33BLE -DARDUINO_ARCH_NRF52840"
VARIANT = "ARDUINO_NANO33BLE"
CORE = "arduino"
CPU = "cortex-m4"
CASES = [(BOARD, "aot"), (BOARD, "tflm")]


def load_flags(root: Path, name: str) -> list[str]:
    """The builder's ``load_flags``: the variant's ``<name>.txt``, one flag a line."""
    path = root / "variants" / VARIANT / f"{name}.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def arduino_mbed_framework(root: Path) -> BuildEnv:
    """What ``arduino-core-mbed.py`` appends for the nano33ble (compile-related scopes).

    Flags and defines from the text files go through the shell PlatformIO runs
    commands with, so ``\\"cmsis_nvic.h\\"`` reaches GCC as ``"cmsis_nvic.h"``.
    """
    core = root / "cores" / CORE
    variant = root / "variants" / VARIANT
    cflags = set(load_flags(root, "cflags"))
    cxxflags = set(load_flags(root, "cxxflags"))
    ccflags = cflags & cxxflags
    fpu = ["-mfloat-abi=soft", "-mfpu=fpv4-sp-d16"]  # configure_fpu_flags, cortex-m4
    env = BuildEnv()
    env.append(
        ASFLAGS=[f for f in ccflags if f.startswith("-m")],
        ASPPFLAGS=["-x", "assembler-with-cpp"],
        CFLAGS=sorted(cflags - ccflags),
        CCFLAGS=sorted(ccflags),
        CPPDEFINES=[shlex.split(d.replace("-D", ""))[0] for d in load_flags(root, "defines")],
        CXXFLAGS=sorted(cxxflags - ccflags),
    )
    env.append(
        ASFLAGS=[f"-iprefix{core}", f"@{variant / 'includes.txt'}"],
        CCFLAGS=[f"-iprefix{core}", f"@{variant / 'includes.txt'}", "-nostdlib"],
        CPPDEFINES=["ARDUINO=10810", "ARDUINO_ARCH_MBED"],
        CPPPATH=[
            str(core),
            str(core / "api" / "deprecated"),
            str(core / "api" / "deprecated-avr-comp"),
        ],
    )
    env.append(ASFLAGS=fpu, CCFLAGS=fpu)
    env.append(CPPPATH=[str(variant)])
    return env


@dataclass
class ArduinoBuild:
    """A generated nano33ble project compiled the PlatformIO way, and strictly."""

    runtime: str
    project: Path
    env: BuildEnv
    strict: list[Compiled]
    ours: list[Compiled]
    framework: list[Compiled]
    roots: dict[str, Path | None]
    library_objects: list[Compiled] = field(default_factory=list)


@pytest.fixture(scope="module")
def arduino_builds() -> dict[str, ArduinoBuild]:
    """Builds made so far in this module, by runtime."""
    return {}


@pytest.fixture
def case(
    request: pytest.FixtureRequest,
    arduino_builds: dict[str, ArduinoBuild],
    tmp_path_factory: pytest.TempPathFactory,
    framework_cache: Path,
) -> ArduinoBuild:
    """The build of the test's (board, runtime)."""
    _, runtime = request.param
    if runtime not in arduino_builds:
        arduino_builds[runtime] = build(runtime, tmp_path_factory, framework_cache)
    return arduino_builds[runtime]


def build(runtime: str, tmp_path_factory: pytest.TempPathFactory, cache: Path) -> ArduinoBuild:
    """Generate the project and compile it, its framework and its libraries."""
    root = ARDUINO_MBED.locate()
    tflm_root = TFLM.locate() if runtime == "tflm" else None
    require_arm_gcc()
    out = tmp_path_factory.mktemp(f"{BOARD}-{runtime}")
    info = emit_project(sample_model(), get_board(BOARD), out / "project", runtime=runtime)
    project = info.project_dir
    core, variant = root / "cores" / CORE, root / "variants" / VARIANT
    trees = [core, variant]
    tflm_tree = None
    if tflm_root is not None:
        tflm_tree = tflm_project_tree(tflm_root, load_versions().makefile_options, cache)
        install_tflm_tree(project, tflm_tree)
        trees.append(tflm_tree)
    framework = arduino_mbed_framework(root)
    env, pio = platformio_env(project, EXTRA_FLAGS, lambda e: e.append(**framework.scopes))
    cached = Compiler(out / "obj", cache / "objects", tree_fingerprint(trees))

    libraries: list[Library] = []
    library_objects: list[Compiled] = []
    if tflm_tree is not None:
        library = project_library(project / "lib" / "tflite-micro", env, src_root=tflm_tree)
        library_objects = cached.compile([(s, library.env.command(s)) for s in library.sources])
        libraries.append(library)
    src_env = project_env(env, pio, libraries)

    sources = project_sources(project)
    system = [root, *([tflm_tree] if tflm_tree else [])]
    strict = Compiler(out / "obj-strict").compile(
        [(s, src_env.command(s, system=system, extra=STRICT)) for s in sources]
    )
    ours = Compiler(out / "obj-ours").compile([(s, src_env.command(s)) for s in sources])
    framework_sources = _library_sources(variant) + _library_sources(core)
    framework_objects = cached.compile([(s, env.command(s)) for s in framework_sources])
    roots = {ARDUINO_MBED.variable: root, "TFLM tree": tflm_tree}
    return ArduinoBuild(
        runtime, project, env, strict, ours, framework_objects, roots, library_objects
    )


def _library_sources(folder: Path) -> list[Path]:
    """``env.BuildLibrary(..., folder)`` with PlatformIO's default source filter."""
    from platformio.fs import match_src_files

    from .pio_build import SOURCE_EXT, SRC_FILTER_DEFAULT

    names = match_src_files(str(folder), SRC_FILTER_DEFAULT, SOURCE_EXT)
    return [folder / n for n in names]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, indirect=True, ids=case_id)
def test_generated_sources_compile_with_warnings_as_errors(
    case: ArduinoBuild, build_summary: dict[str, list[str]]
) -> None:
    require_compiled(case.strict, "generated sources (-Wall -Wextra -Werror)")
    generated = project_sources(case.project)
    assert [r.source for r in case.strict] == generated
    build_summary.setdefault(f"{BOARD} {case.runtime}", []).append(
        f"{len(generated)} generated sources compile with the variant's flags plus -Werror "
        "(framework and TFLM folders -isystem)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, indirect=True, ids=case_id)
def test_platformio_build_compiles(case: ArduinoBuild, build_summary: dict[str, list[str]]) -> None:
    require_compiled(case.ours, "generated sources (PlatformIO's flags)")
    require_compiled(case.framework, "ArduinoCore-mbed core and variant sources")
    require_compiled(case.library_objects, "TFLM library sources")
    ours, headers = split_warnings(case.ours, case.project / "src")
    framework = [w for r in case.framework for w in r.warnings]
    flags = [f for f in case.env["CCFLAGS"] if not f.startswith(("-D", "@", "-iprefix"))]
    lines = [
        f"PlatformIO's flags (CCFLAGS, defines aside): {' '.join(flags)}",
        f"generated sources (the variant's -Wall -Wextra): {warning_summary(ours)} in our files, "
        f"{warning_summary(headers)} in framework/TFLM headers",
        *(f"  {shorten(line, case.roots)}" for line in sorted(set(headers))[:10]),
        f"core + variant: {len(case.framework)} sources, {warning_summary(framework)}",
        *(f"  {shorten(line, case.roots)}" for line in sorted(set(framework))[:5]),
    ]
    if case.library_objects:
        warnings = [w for r in case.library_objects for w in r.warnings]
        lines.append(
            f"TFLM library: {len(case.library_objects)} sources, {warning_summary(warnings)}"
        )
    lines.append("not linked (the precompiled libmbed.a is not needed for this check)")
    build_summary.setdefault(f"{BOARD} {case.runtime}", []).extend(lines)
    assert ours == [], "\n".join(ours)
