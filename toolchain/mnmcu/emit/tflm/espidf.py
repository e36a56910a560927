"""The esp-idf route: the esp-tflite-micro component of an ESP-IDF project, and its checks."""

from __future__ import annotations

import os
import re
from pathlib import Path

from mnmcu import escape
from mnmcu.boards import Board
from mnmcu.emit import cgen
from mnmcu.emit.tflm.versions import VERSIONS_SOURCE, Pin, TflmVersions, load_versions
from mnmcu.emit.tflm.writer import RouteFiles, Writer

# ESP-IDF's dram0_0_seg on the ESP32 (components/esp_system/ld/esp32/memory.ld.in,
# DRAM0_0_SEG_LEN): static data, the arena included, must fit it; the rest of the
# DRAM is heap only.
ESP32_STATIC_DRAM = 0x2C200


def _flash_size_text(size: int | None) -> str | None:
    if size is None or size % (1 << 20):
        return None
    return f"{size >> 20}MB"


_PARTITION_CONFIGS = {
    "partitions_singleapp.csv": "CONFIG_PARTITION_TABLE_SINGLE_APP=y",
    "partitions_singleapp_large.csv": "CONFIG_PARTITION_TABLE_SINGLE_APP_LARGE=y",
    "partitions_two_ota.csv": "CONFIG_PARTITION_TABLE_TWO_OTA=y",
}


def _sdkconfig_lines(board: Board) -> list[tuple[str, str]]:
    """(comment, setting) pairs of ``sdkconfig.defaults``."""
    assert board.platformio is not None
    out: list[tuple[str, str]] = []
    mhz = board.cpu.clock_mhz
    if mhz is not None and int(mhz) in (80, 160, 240):
        out.append(
            (
                f"CPU clock {int(mhz)} MHz (board file cpu.clock_hz)",
                f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{int(mhz)}=y\n"
                f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ={int(mhz)}",
            )
        )
    flash = _flash_size_text(board.memory.flash_total_bytes)
    if flash is not None:
        out.append(
            (
                f"Flash chip of the module: {flash} (memory.flash_total_bytes; PlatformIO "
                "warns when it differs from the board's upload.flash_size)",
                f'CONFIG_ESPTOOLPY_FLASHSIZE_{flash}=y\nCONFIG_ESPTOOLPY_FLASHSIZE="{flash}"',
            )
        )
    partitions = dict(board.platformio.ini_options).get("board_build.partitions")
    if partitions:
        setting = _PARTITION_CONFIGS.get(
            partitions,
            "CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME="
            + escape.kconfig_string(partitions, "board_build.partitions"),
        )
        out.append((f"Partition table {partitions}, as board_build.partitions says", setting))
    if board.serial.baud:
        out.append(
            (
                "Console baud rate (serial.baud)",
                f"CONFIG_ESP_CONSOLE_UART_BAUDRATE={board.serial.baud}",
            )
        )
    out.append(
        (
            "Optimise for speed (-O2), as esp-tflite-micro's examples do",
            "CONFIG_COMPILER_OPTIMIZATION_PERF=y",
        )
    )
    target = (
        "ESP32-S3: its SIMD assembly kernels"
        if board.cpu.core == "xtensa-lx7"
        else ("ESP32: ESP-NN's generic optimised C kernels")
    )
    out.append(
        (
            f"ESP-NN optimised kernels ({target}); bit-exact requantisation (no SKIP_NUDGE), "
            "so outputs match TFLite's reference kernels",
            "CONFIG_NN_OPTIMIZED=y\n# CONFIG_NN_ANSI_C is not set\n"
            "# CONFIG_NN_SKIP_NUDGE is not set",
        )
    )
    if board.cpu.core == "xtensa-lx7":
        out.append(
            (
                "ESP32-S3 caches as in esp-tflite-micro's person_detection "
                "sdkconfig.defaults.esp32s3: weights stream from flash through the data cache",
                "CONFIG_ESP32S3_INSTRUCTION_CACHE_32KB=y\nCONFIG_ESP32S3_DATA_CACHE_64KB=y\n"
                "CONFIG_ESP32S3_DATA_CACHE_8WAYS=y\nCONFIG_ESP32S3_DATA_CACHE_LINE_64B=y",
            )
        )
    out.append(
        (
            "Stack of the task that runs app_main and the interpreter",
            "CONFIG_ESP_MAIN_TASK_STACK_SIZE=8192",
        )
    )
    return out


def emit_esp_idf(out: Writer, board: Board, versions: TflmVersions, src_dir: Path) -> RouteFiles:
    """CMake files, component manifest and sdkconfig.defaults of an ESP-IDF project."""
    root = out.project_dir
    # Named after the model, not the folder, so that emits into two folders are identical.
    project = cgen.c_identifier(Path(out.model_name).stem, prefix="mnmcu_").lower()
    src = os.path.relpath(src_dir, root).replace(os.sep, "/")
    out.render(
        "esp/CMakeLists.txt.j2", root / "CMakeLists.txt", "ESP-IDF project file.", "#",
        project=project, src_dir=src,
    )  # fmt: skip
    out.render("esp/src_CMakeLists.txt.j2", src_dir / "CMakeLists.txt", "The app component.", "#")
    out.render(
        "esp/idf_component.yml.j2", src_dir / "idf_component.yml",
        "ESP-IDF component manifest: TFLM with ESP-NN, exact versions.", "#",
        yaml_string=escape.yaml_string, yaml_key=escape.yaml_key,
    )  # fmt: skip
    out.render(
        "esp/sdkconfig.defaults.j2", root / "sdkconfig.defaults",
        f"ESP-IDF settings for {board.name}.", "#", settings=_sdkconfig_lines(board),
        hash_comment=escape.hash_comment,
    )  # fmt: skip
    return RouteFiles(
        build_flags=("-DTF_LITE_STATIC_MEMORY",),
        pins=(
            Pin(versions.esp_component, versions.esp_version, VERSIONS_SOURCE),
            Pin(versions.esp_nn_component, versions.esp_nn_version, VERSIONS_SOURCE),
            Pin(
                "ESP-IDF (framework-espidf of the platform)", versions.idf_version, VERSIONS_SOURCE
            ),
        ),
    )


def esp_problems(project_dir: Path, src: Path) -> list[str]:
    """Problems of an esp-idf project: its component manifest, CMake files, sdkconfig."""
    problems: list[str] = []
    versions = load_versions()
    manifest = src / "idf_component.yml"
    if not manifest.is_file():
        return [f"{manifest} is missing"]
    deps = _yml_dependencies(manifest.read_text(encoding="utf-8"))
    if versions.esp_component not in deps:
        problems.append(f"{manifest} does not depend on {versions.esp_component}")
    for name, version in sorted(deps.items()):
        if name != "idf" and not _exact_component_version(version):
            problems.append(f"{manifest}: {name} version '{version}' is not one exact version")
    top = project_dir / "CMakeLists.txt"
    if not top.is_file() or "tools/cmake/project.cmake" not in top.read_text(encoding="utf-8"):
        problems.append(f"{top} is missing or does not include ESP-IDF's project.cmake")
    component = src / "CMakeLists.txt"
    if not component.is_file() or "idf_component_register" not in component.read_text(
        encoding="utf-8"
    ):
        problems.append(f"{component} is missing or does not call idf_component_register")
    if not (project_dir / "sdkconfig.defaults").is_file():
        problems.append(f"{project_dir / 'sdkconfig.defaults'} is missing")
    return problems


def _yml_dependencies(text: str) -> dict[str, str]:
    """``name -> version`` of an idf_component.yml's dependencies (both YAML forms)."""
    deps: dict[str, str] = {}
    in_deps, current, indent = False, "", 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            in_deps, indent = line.strip() == "dependencies:", 0
            continue
        if not in_deps:
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip().strip("\"'")
        if indent == 0 or depth <= indent:
            indent, current = depth, key.strip().strip("\"'")
            deps[current] = value
        elif key.strip() == "version" and current:
            deps[current] = value
    return deps


def _exact_component_version(version: str) -> bool:
    return re.fullmatch(r"(?:==)?\d+\.\d+\.\d+(?:~\d+)?(?:-[0-9A-Za-z.]+)?", version) is not None
