"""The generated ESP32 and ESP32-S3 projects type-checked against ESP-IDF 5.5.3 (issue 16).

Runs only where ``MNMCU_ESP_IDF_SOURCES`` names an ESP-IDF v5.5.3 tree
(espressif/esp-idf tag v5.5.3, submodules not needed: the ESP-IDF of
PlatformIO's framework-espidf ~3.50503.0, which platform-espressif32 6.13.0
installs); it skips otherwise. The tflm cases also need ``MNMCU_TFLM_SOURCES``
(see :mod:`framework_sources`). ``sdkconfig.h`` is generated with ESP-IDF's
own ``kconfgen`` (PyPI ``esp-idf-kconfig``, the 2.x line ESP-IDF 5.5 uses;
the test skips when it cannot be imported).

No Xtensa compiler is at hand, so this is a type check, not a build: every
generated C source (HAL, ``main.c``, protocol, AOT runtime, kernels and
model) goes through ``arm-none-eabi-gcc -fsyntax-only``, a GCC for a 32-bit
little-endian target with newlib like the Xtensa one, with:

* ``sdkconfig.h`` from ESP-IDF's ``Kconfig`` for the target and the project's
  ``sdkconfig.defaults``, generated as ``tools/cmake/kconfig.cmake`` does
  (every component's ``Kconfig``, ``Kconfig.projbuild`` and
  ``sdkconfig.rename``);
* ESP-IDF's flags of ``tools/cmake/build.cmake`` (``-std=gnu17``,
  ``-std=gnu++2b``, the warning options, ``ESP_PLATFORM``, ``IDF_VER``,
  ``_GNU_SOURCE``), the project's ``build_flags``, and ``-Wall -Wextra -Werror``;
* the public include folders of the components the sources reach, as each
  component's ``CMakeLists.txt`` lists them for the target (:data:`INCLUDE_DIRS`);
* the Xtensa compiler's predefined ``__XTENSA__``, ``__xtensa__``,
  ``__XTENSA_EL__`` and ``__XTENSA_WINDOWED_ABI__``, so ESP-IDF's headers take
  their Xtensa branches;
* one shim: Debian's newlib 3.3 declares ``_global_impure_ptr`` ``const`` and
  ESP-IDF's ``newlib/platform_include/sys/reent.h`` (written for Espressif's
  newlib 4.3 fork, which does not declare it) declares it without; the shim's
  ``sys/reent.h`` renames Debian's declaration, nothing else.

For tflm, ``mnmcu_runtime_tflm.cpp`` is checked against upstream TFLM's
headers from ``MNMCU_TFLM_SOURCES`` (the project's build uses the TFLM copy
in espressif/esp-tflite-micro 1.3.8, whose API it calls is the same).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnmcu.boards import get_board
from mnmcu.emit.project import emit_project

from .framework_sources import ESP_IDF, TFLM, sample_model, tflm_include_dirs
from .pio_build import (
    STRICT,
    BuildEnv,
    Compiled,
    Compiler,
    Toolchain,
    case_id,
    parse_flags,
    project_sources,
    read_env,
    require_arm_gcc,
    require_compiled,
    shorten,
    split_warnings,
    warning_summary,
)

IDF_VERSION = "5.5.3"
TARGETS = {"esp32": "esp32", "esp32s3": "esp32s3"}  # board id -> IDF_TARGET
CASES = [(b, r) for b in TARGETS for r in ("aot", "tflm")]
CHECKER = Toolchain("arm-none-eabi-gcc", "arm-none-eabi-g++")
KCONFGEN_HINT = "pip install 'esp-idf-kconfig>=2.5,<3' (ESP-IDF 5.5's kconfgen)"

# Public include folders ({target} substituted; folders absent for a target are
# dropped, as the CMakeLists' "if(EXISTS ...)" do), from components/<name>/CMakeLists.txt.
INCLUDE_DIRS = {
    "freertos": (
        "config/include",
        "config/include/freertos",
        "config/xtensa/include",
        "FreeRTOS-Kernel/include",
        "FreeRTOS-Kernel/portable/xtensa/include",
        "FreeRTOS-Kernel/portable/xtensa/include/freertos",
        "esp_additions/include",
    ),
    "esp_hw_support": (
        "include",
        "include/soc",
        "include/soc/{target}",
        "dma/include",
        "ldo/include",
        "debug_probe/include",
        "mspi_timing_tuning/include",
        "mspi_timing_tuning/tuning_scheme_impl/include",
        "power_supply/include",
    ),
    "esp_rom": ("include", "{target}/include", "{target}/include/{target}"),
    "soc": ("include", "{target}", "{target}/include", "{target}/register"),
    "hal": ("platform_port/include", "{target}/include", "include"),
    "xtensa": ("{target}/include", "include", "deprecated_include"),
    "heap": ("include", "tlsf"),
    "newlib": ("platform_include",),
    "esp_common": ("include",),
    "esp_system": ("include",),
    "log": ("include",),
    "esp_timer": ("include",),
    "esp_driver_uart": ("include",),
    "esp_driver_gpio": ("include",),
    "esp_pm": ("include",),
    "esp_ringbuf": ("include",),
}
# tools/cmake/build.cmake (__build_set_default_build_specifications), v5.5.3.
IDF_OPTIONS = [
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Werror",
    "-Wno-error=unused-function",
    "-Wno-error=unused-variable",
    "-Wno-error=unused-but-set-variable",
    "-Wno-error=deprecated-declarations",
    "-Wextra",
    "-Wno-error=extra",
    "-Wno-unused-parameter",
    "-Wno-sign-compare",
    "-Wno-enum-conversion",
]
IDF_DEFINES = [
    "_GLIBCXX_USE_POSIX_SEMAPHORE",
    "_GLIBCXX_HAVE_POSIX_SEMAPHORE",
    "_GNU_SOURCE",
    "ESP_PLATFORM",
    f'IDF_VER="v{IDF_VERSION}"',
]
XTENSA_MACROS = ["__XTENSA__", "__xtensa__", "__XTENSA_EL__", "__XTENSA_WINDOWED_ABI__"]
REENT_SHIM = """\
/* Debian's newlib 3.3 declares _global_impure_ptr const; ESP-IDF's wrapper, written
 * for Espressif's newlib fork, declares it without: keep Debian's under another name. */
#define _global_impure_ptr _mnmcu_newlib_global_impure_ptr
#include_next <sys/reent.h>
#undef _global_impure_ptr
"""


def require_kconfgen() -> None:
    """Skip when ESP-IDF's ``kconfgen`` cannot be imported."""
    if importlib.util.find_spec("kconfgen") is None:
        pytest.skip(f"kconfgen is not importable: {KCONFGEN_HINT}")


def sdkconfig_header(idf: Path, target: str, defaults: list[Path], out: Path) -> Path:
    """``sdkconfig.h`` for ``target`` as ``tools/cmake/kconfig.cmake`` has kconfgen make it.

    Every component's Kconfig files take part (a real build takes those of the
    components it builds; the main component requires them all).
    """
    out.mkdir(parents=True, exist_ok=True)
    components = idf / "components"

    def listed(pattern: str) -> str:
        return ";".join(sorted(glob.glob(str(components / pattern))))

    env = {
        "COMPONENT_KCONFIGS": listed("*/Kconfig"),
        "COMPONENT_KCONFIGS_PROJBUILD": listed("*/Kconfig.projbuild"),
        "COMPONENT_SDKCONFIG_RENAMES": ";".join(
            filter(None, (listed("*/sdkconfig.rename"), listed(f"*/sdkconfig.rename.{target}")))
        ),
        "IDF_TARGET": target,
        "IDF_TOOLCHAIN": "gcc",
        "IDF_VERSION": IDF_VERSION,
        "IDF_ENV_FPGA": "",
        "IDF_PATH": str(idf),
        "COMPONENT_KCONFIGS_SOURCE_FILE": str(out / "kconfigs.in"),
        "COMPONENT_KCONFIGS_PROJBUILD_SOURCE_FILE": str(out / "kconfigs_projbuild.in"),
    }
    (out / "config.env").write_text(json.dumps(env, indent=2))
    prepare = idf / "tools" / "kconfig_new" / "prepare_kconfig_files.py"
    commands = [
        [sys.executable, str(prepare), "--list-separator=semicolon"]
        + ["--env-file", str(out / "config.env")],
        [sys.executable, "-m", "kconfgen", "--list-separator=semicolon"]
        + ["--kconfig", str(idf / "Kconfig"), "--sdkconfig-rename", str(idf / "sdkconfig.rename")]
        + ["--config", str(out / "sdkconfig")]
        + [arg for path in defaults for arg in ("--defaults", str(path))]
        + ["--env", "IDF_MINIMAL_BUILD=n", "--env-file", str(out / "config.env")]
        + [f"--env=IDF_TARGET={target}", "--env=IDF_TOOLCHAIN=gcc", "--env=IDF_ENV_FPGA="]
        + [f"--env=IDF_INIT_VERSION={IDF_VERSION}", "--output", "header", str(out / "sdkconfig.h")],
    ]
    for command in commands:
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{' '.join(command)}:\n{(run.stdout + run.stderr)[-3000:]}"
    return out / "sdkconfig.h"


def include_dirs(idf: Path, target: str) -> list[str]:
    """:data:`INCLUDE_DIRS` for ``target``, the folders that exist."""
    dirs = []
    for component, subs in INCLUDE_DIRS.items():
        for sub in subs:
            path = idf / "components" / component / sub.format(target=target)
            if path.is_dir():
                dirs.append(str(path))
    return dirs


@dataclass
class EspCheck:
    """The type check of one generated project."""

    board_id: str
    runtime: str
    project: Path
    sdkconfig: Path
    strict: list[Compiled]
    visible: list[Compiled]
    roots: dict[str, Path | None]


@pytest.fixture
def case(request: pytest.FixtureRequest, tmp_path: Path) -> EspCheck:
    """The checked project of the test's (board, runtime)."""
    board_id, runtime = request.param
    idf = ESP_IDF.locate()
    tflm_root = TFLM.value() if runtime == "tflm" else None
    require_arm_gcc()
    require_kconfgen()
    target = TARGETS[board_id]
    info = emit_project(sample_model(), get_board(board_id), tmp_path / "project", runtime=runtime)
    project = info.project_dir
    defaults = [project / "sdkconfig.defaults"]
    defaults += [p for p in [project / f"sdkconfig.defaults.{target}"] if p.is_file()]
    config = sdkconfig_header(idf, target, defaults, tmp_path / "config")
    shim = tmp_path / "shim"
    (shim / "sys").mkdir(parents=True)
    (shim / "sys" / "reent.h").write_text(REENT_SHIM)

    env = BuildEnv()
    env.append(
        CCFLAGS=[*IDF_OPTIONS, "-fsyntax-only"],
        CFLAGS=["-std=gnu17"],
        CXXFLAGS=["-std=gnu++2b"],
        CPPDEFINES=[*XTENSA_MACROS, *IDF_DEFINES],
        CPPPATH=[str(project / "src"), str(config.parent), *include_dirs(idf, target)],
    )
    tflm_dirs = [str(d) for d in tflm_include_dirs(tflm_root)] if tflm_root else []
    env.append(CPPPATH=[*tflm_dirs, str(shim)])
    for scope, items in parse_flags(read_env(project).get("build_flags")).items():
        env.append(**{scope: items})

    sources = project_sources(project)
    # The shim comes after newlib/platform_include in the search order either way.
    system = [idf, shim, *([tflm_root] if tflm_root else [])]
    strict = Compiler(tmp_path / "strict").compile(
        [(s, env.command(s, system=system, extra=STRICT, tools=CHECKER)) for s in sources]
    )
    visible = Compiler(tmp_path / "visible").compile(
        [(s, env.command(s, extra=["-Wno-error"], tools=CHECKER)) for s in sources]
    )
    roots = {ESP_IDF.variable: idf, TFLM.variable: tflm_root}
    return EspCheck(board_id, runtime, project, config, strict, visible, roots)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, indirect=True, ids=case_id)
def test_generated_sources_type_check_against_esp_idf(
    case: EspCheck, build_summary: dict[str, list[str]]
) -> None:
    require_compiled(case.strict, "generated sources (arm-none-eabi-gcc -fsyntax-only)")
    require_compiled(case.visible, "generated sources (ESP-IDF folders as -I)")
    ours, headers = split_warnings(case.visible, case.project / "src")
    generated = project_sources(case.project)
    assert [r.source for r in case.strict] == generated
    defines = case.sdkconfig.read_text().count("#define CONFIG_")
    build_summary.setdefault(f"{case.board_id} {case.runtime}", []).extend(
        [
            f"{len(generated)} generated sources type-check (-fsyntax-only, ESP-IDF's warning "
            f"options plus -Wall -Wextra -Werror, ESP-IDF folders -isystem) against ESP-IDF "
            f"{IDF_VERSION}; sdkconfig.h from kconfgen: {defines} CONFIG_ macros",
            f"with ESP-IDF's folders -I as its build passes them: {warning_summary(ours)} in our "
            f"files, {warning_summary(headers)} in ESP-IDF/TFLM headers",
            *(f"  {shorten(line, case.roots)}" for line in sorted(set(headers))[:10]),
        ]
    )
    assert ours == [], "\n".join(ours)
