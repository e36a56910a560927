"""Vendor framework sources for the tests that compile generated projects against them.

CI cannot reach the frameworks PlatformIO downloads, so these tests run only
where a developer has fetched the sources and names them in an environment
variable; without it each test skips and says which variable to set and what
to put in it. A variable that is set but names a folder without the expected
layout fails the test (with the missing paths), so a typo is never a silent skip.

``MNMCU_STM32CUBE_SOURCES``
    A folder with ST's standalone repositories at the versions the packages of
    PlatformIO's platform-ststm32 19.6.0 carry (framework-stm32cubef4 ~1.28.1,
    f7 ~1.17.2, h7 ~1.12.1)::

        stm32f4xx_hal_driver/   STMicroelectronics/stm32f4xx_hal_driver v1.8.3
        cmsis_device_f4/        STMicroelectronics/cmsis_device_f4 v2.6.10
        stm32f7xx_hal_driver/   STMicroelectronics/stm32f7xx_hal_driver v1.3.1
        cmsis_device_f7/        STMicroelectronics/cmsis_device_f7 v1.2.9
        stm32h7xx_hal_driver/   STMicroelectronics/stm32h7xx_hal_driver v1.11.3
        cmsis_device_h7/        STMicroelectronics/cmsis_device_h7 v1.10.4
        CMSIS_5/CMSIS/Core/Include/   ARM-software/CMSIS_5 5.9.0 (only this folder is needed)

``MNMCU_TFLM_SOURCES``
    A tensorflow/tflite-micro checkout at the commit mnmcu pins
    (``boards/tflm/versions.toml``) whose ``tensorflow/lite/micro/tools/make/downloads/``
    holds what ``make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads``
    puts there: ``flatbuffers`` (v25.9.23 with TFLM's patch), ``gemmlowp``, ``ruy``,
    ``kissfft`` (v130 with TFLM's patch), ``cmsis_nn`` (the commit TFLM's
    ``cmsis_nn_download.sh`` names), ``cmsis`` (CMSIS_6 with ``Cortex_DFP`` inside)
    and ``pigweed`` (may be empty). The host test of ``test_tflm_project.py`` also
    accepts an espressif/esp-tflite-micro checkout.

``MNMCU_ARDUINO_MBED_SOURCES``
    ArduinoCore-mbed 4.5.0 (arduino/ArduinoCore-mbed, tag 4.5.0) with the ``api/``
    folder of ArduinoCore-API 1.5.2 placed at ``cores/arduino/api``, as Arduino's
    release archives (and PlatformIO's framework-arduino-mbed ~4.5.0) have it. The
    precompiled ``variants/ARDUINO_NANO33BLE/libs/libmbed.a`` may be missing: the
    test compiles, it does not link.

``MNMCU_ESP_IDF_SOURCES``
    ESP-IDF v5.5.3 (espressif/esp-idf, tag v5.5.3; PlatformIO's framework-espidf
    ~3.50503.0). Submodules are not needed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

TFLM_DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
CREATE_TFLM_TREE = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"


@dataclass(frozen=True)
class SourceTree:
    """A framework source folder named by an environment variable.

    ``contents`` says what the folder must hold (the skip and failure messages
    quote it); ``required`` are paths in it the tests read.
    """

    variable: str
    contents: str
    required: tuple[str, ...]

    def value(self) -> Path:
        """The folder the variable names; skip (saying what to set) when it is unset."""
        value = os.environ.get(self.variable, "").strip()
        if not value:
            pytest.skip(f"{self.variable} is not set: set it to {self.contents}")
        return Path(value).expanduser().resolve()

    def locate(self) -> Path:
        """:meth:`value`, failing when the folder lacks a required path."""
        root = self.value()
        missing = [rel for rel in self.required if not (root / rel).exists()]
        if missing:
            pytest.fail(
                f"{self.variable}={root} lacks {', '.join(missing)}; it must be {self.contents}"
            )
        return root


STM32CUBE = SourceTree(
    "MNMCU_STM32CUBE_SOURCES",
    "a folder with ST's standalone repositories at the versions platform-ststm32 19.6.0 "
    "pins: stm32f4xx_hal_driver/ (v1.8.3), cmsis_device_f4/ (v2.6.10), "
    "stm32f7xx_hal_driver/ (v1.3.1), cmsis_device_f7/ (v1.2.9), stm32h7xx_hal_driver/ "
    "(v1.11.3), cmsis_device_h7/ (v1.10.4) and CMSIS_5/CMSIS/Core/Include/ (CMSIS 5.9.0)",
    tuple(
        f"{path}"
        for family in ("f4", "f7", "h7")
        for path in (
            f"stm32{family}xx_hal_driver/Inc/stm32{family}xx_hal_conf_template.h",
            f"stm32{family}xx_hal_driver/Src/stm32{family}xx_hal.c",
            f"cmsis_device_{family}/Include/stm32{family}xx.h",
            f"cmsis_device_{family}/Source/Templates/system_stm32{family}xx.c",
        )
    )
    + ("CMSIS_5/CMSIS/Core/Include/core_cm4.h",),
)

TFLM = SourceTree(
    "MNMCU_TFLM_SOURCES",
    "a tensorflow/tflite-micro checkout (commit 90b983c, see boards/tflm/versions.toml) "
    f"whose {TFLM_DOWNLOADS}/ holds flatbuffers, gemmlowp, ruy, kissfft, cmsis_nn, "
    "cmsis (CMSIS_6 with Cortex_DFP) and pigweed (may be empty), as "
    "'make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads' leaves it",
    (
        CREATE_TFLM_TREE,
        f"{TFLM_DOWNLOADS}/flatbuffers/include/flatbuffers/flatbuffers.h",
        f"{TFLM_DOWNLOADS}/gemmlowp/fixedpoint/fixedpoint.h",
        f"{TFLM_DOWNLOADS}/ruy/ruy/profiler/instrumentation.h",
        f"{TFLM_DOWNLOADS}/kissfft/kiss_fft.h",
        f"{TFLM_DOWNLOADS}/cmsis_nn/Include/arm_nnfunctions.h",
        f"{TFLM_DOWNLOADS}/cmsis/CMSIS/Core/Include/cmsis_compiler.h",
        f"{TFLM_DOWNLOADS}/cmsis/Cortex_DFP",
        f"{TFLM_DOWNLOADS}/pigweed",
    ),
)

ARDUINO_MBED = SourceTree(
    "MNMCU_ARDUINO_MBED_SOURCES",
    "ArduinoCore-mbed 4.5.0 (arduino/ArduinoCore-mbed tag 4.5.0) with ArduinoCore-API "
    "1.5.2's api/ folder at cores/arduino/api, as Arduino's release archives have it "
    "(variants/ARDUINO_NANO33BLE/libs/libmbed.a may be missing: nothing is linked)",
    tuple(
        f"variants/ARDUINO_NANO33BLE/{name}.txt"
        for name in ("cflags", "cxxflags", "defines", "includes")
    )
    + ("cores/arduino/Arduino.h", "cores/arduino/api/ArduinoAPI.h", "cores/arduino/mbed"),
)

ESP_IDF = SourceTree(
    "MNMCU_ESP_IDF_SOURCES",
    "an ESP-IDF v5.5.3 tree (espressif/esp-idf tag v5.5.3, submodules not needed), the "
    "ESP-IDF of PlatformIO's framework-espidf ~3.50503.0",
    (
        "components/esp_common/include/esp_idf_version.h",
        "components/freertos/FreeRTOS-Kernel/include/freertos/FreeRTOS.h",
        "components/esp_driver_uart/include/driver/uart.h",
        "components/esp_timer/include/esp_timer.h",
        "Kconfig",
    ),
)

# Third-party headers TFLM includes: (download folder, include root in it, a header).
TFLM_THIRD_PARTY = (
    ("flatbuffers", "include", "flatbuffers/flatbuffers.h"),
    ("gemmlowp", "", "fixedpoint/fixedpoint.h"),
    ("ruy", "", "ruy/profiler/instrumentation.h"),
)


def tflm_include_dirs(root: Path) -> list[Path]:
    """TFLM's root and the include roots of its third-party headers.

    Looks in ``third_party/`` (espressif/esp-tflite-micro) and in TFLM's
    download folder (a tflite-micro checkout), keeping the first that holds the
    header itself: in a tflite-micro checkout ``third_party/ruy`` and the like
    are Bazel stubs with only a BUILD file.
    """
    dirs = [root]
    for name, sub, header in TFLM_THIRD_PARTY:
        for base in (root / "third_party", root / TFLM_DOWNLOADS):
            if (base / name / sub / header).is_file():
                dirs.append(base / name / sub)
                break
        else:
            pytest.fail(
                f"{TFLM.variable}={root} has no {header} under third_party/{name} or "
                f"{TFLM_DOWNLOADS}/{name}; it must be {TFLM.contents}"
            )
    return dirs


def tree_fingerprint(roots: Iterable[Path]) -> str:
    """A digest of every file's path, size and modification time under ``roots``.

    Part of the object cache's key, so that objects compiled against other
    sources (a new checkout, an edited header) are not reused.
    """
    digest = hashlib.sha256()
    for root in roots:
        digest.update(str(root).encode())
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in sorted(filenames):
                stat = os.stat(os.path.join(dirpath, name))
                digest.update(f"{dirpath}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def tflm_project_tree(root: Path, makefile_options: str, cache: Path) -> Path:
    """The TFLM library tree a generated Arm project's ``tools/tflm_fetch.py`` writes.

    Runs TFLM's own ``create_tflm_tree.py`` with the project's Makefile options,
    as ``tflm_fetch.py`` does, but in a copy of ``root`` made of hard links (the
    Makefile's ``find`` does not descend into symbolic links) so that its
    ``gen/`` folder lands in ``cache``, not in the checkout. Two
    additions keep it offline: ``TARGET_TOOLCHAIN_ROOT`` names the installed
    ``arm-none-eabi-gcc`` (otherwise TFLM's cortex_m_generic makefile downloads
    Arm's toolchain even though ``TARGET_ARCH=project_generation`` compiles
    nothing), and this interpreter's folder leads ``PATH`` so that the
    ``python3`` the Makefile runs for its example arrays has Pillow. The tree is
    kept in ``cache`` and made again when ``root`` or the options change.
    """
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed: apt-get install gcc-arm-none-eabi")
    options = f"{makefile_options} TARGET_TOOLCHAIN_ROOT={Path(gcc).parent}/"
    key = hashlib.sha256(f"{root}\0{options}\0{tree_fingerprint([root / 'tensorflow'])}".encode())
    out = cache / f"tflm-tree-{key.hexdigest()[:16]}"
    tree = out / "tree"
    if (out / "done").is_file():
        return tree
    shutil.rmtree(out, ignore_errors=True)
    work = out / "work"
    shutil.copytree(root, work, ignore=_top_level({".git", "gen"}, root), copy_function=_link)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, CREATE_TFLM_TREE, f"--makefile_options={options}", str(tree)]
    run = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} (in {work}) exited with {run.returncode}:\n"
            f"{(run.stdout + run.stderr)[-3000:]}"
        )
    shutil.rmtree(work)
    (out / "done").write_text(options + "\n")
    return tree


def _top_level(names: set[str], root: Path) -> Callable[[str, list[str]], set[str]]:
    """A copytree filter leaving out ``names`` at the top of ``root`` only."""

    def ignore(folder: str, entries: list[str]) -> set[str]:
        return names & set(entries) if Path(folder) == root else set()

    return ignore


def _link(source: str, target: str) -> None:
    """A hard link, or a copy where the two folders are on different file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def install_tflm_tree(project: Path, tree: Path) -> Path:
    """Put ``tree`` in ``project/lib/tflite-micro`` as the project's ``tools/tflm_fetch.py`` would.

    The tree's top-level entries are linked (not copied) beside the generated
    ``library.json``, and the stamp the fetch script writes, read by the
    project's pre-build script, says the tree is current.
    """
    fetch = (project / "tools" / "tflm_fetch.py").read_text()
    pins = dict(re.findall(r'^(COMMIT|CMSIS_NN_COMMIT|MAKEFILE_OPTIONS) = "([^"]*)"$', fetch, re.M))
    lib = project / "lib" / "tflite-micro"
    for item in tree.iterdir():
        if not (lib / item.name).exists():
            (lib / item.name).symlink_to(item)
    stamp = f"{pins['COMMIT']}\n{pins['MAKEFILE_OPTIONS']}\nCMSIS-NN {pins['CMSIS_NN_COMMIT']}\n"
    (lib / "MNMCU_TFLM_COMMIT").write_text(stamp)
    return lib


def sample_model() -> Path:
    """The small trained MobileNet the repository ships (``firmware/sample``)."""
    from mnmcu.paths import data_dir

    return data_dir("firmware") / "sample" / "mnmcu_sample.tflite"
