"""The firmware project pieces that need no toolchain: tool-scons provisioning,
platformio.ini values per board, the local QEMU platform's board files, HAL
choice, the QEMU command line and boot-line parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnmcu.boards import all_boards, get_board, hal_family
from mnmcu.build import PlatformMissing, _check_platform, pio_environment
from mnmcu.emit.project import (
    _merge_extras,
    board_macro,
    hal_sources,
    platformio_options,
)
from mnmcu.errors import InvalidValue
from mnmcu.paths import data_dir
from mnmcu.provision import provision_offline, scons_package_version
from mnmcu.sim.qemu import parse_boot_line, parse_output, qemu_command

PIO_BOARDS = [b.id for b in all_boards() if b.platformio is not None]
QEMU_BOARDS = ["qemu-m4", "qemu-m7", "qemu-m55"]
PLATFORM_DIR = data_dir("boards") / "platforms" / "mnmcu-qemu"
NO_EXTRAS: dict[str, object] = {}


# --------------------------------------------------------------------------
# tool-scons
# --------------------------------------------------------------------------


def test_scons_package_version_follows_platformio_scheme() -> None:
    assert scons_package_version("4.11.1") == "4.41101.0"
    assert scons_package_version("4.8.0") == "4.40800.0"
    with pytest.raises(InvalidValue):
        scons_package_version("4.x")


def test_provision_offline_layout_and_metadata(tmp_path: Path) -> None:
    provision_offline(tmp_path)
    package = tmp_path / "packages" / "tool-scons"
    assert (package / "SCons" / "__init__.py").is_file()
    assert (package / "SCons" / "Script" / "__init__.py").is_file()
    assert (package / "scons.py").is_file()
    manifest = json.loads((package / "package.json").read_text())
    assert manifest["name"] == "tool-scons"
    meta = json.loads((package / ".piopm").read_text())
    assert meta["type"] == "tool"
    assert meta["name"] == "tool-scons"
    assert meta["spec"]["owner"] == "platformio"
    assert meta["version"] == manifest["version"]
    assert not list(package.rglob("__pycache__"))


def test_platformio_finds_the_provisioned_scons(tmp_path: Path) -> None:
    """PlatformIO's own package manager accepts the package for its requirement."""
    from platformio.dependencies import get_core_dependencies
    from platformio.package.manager.tool import ToolPackageManager
    from platformio.package.meta import PackageSpec

    provision_offline(tmp_path)
    requirement = get_core_dependencies()["tool-scons"]
    manager = ToolPackageManager(package_dir=str(tmp_path / "packages"))
    spec = PackageSpec(owner="platformio", name="tool-scons", requirements=requirement)
    found = manager.get_package(spec)
    assert found is not None
    assert Path(found.path) == tmp_path / "packages" / "tool-scons"


def test_provision_offline_is_idempotent(tmp_path: Path) -> None:
    provision_offline(tmp_path)
    launcher = tmp_path / "packages" / "tool-scons" / "scons.py"
    launcher.write_text("# kept\n")
    provision_offline(tmp_path)
    assert launcher.read_text() == "# kept\n"


def test_pio_environment_is_offline(tmp_path: Path) -> None:
    env = pio_environment(tmp_path)
    assert env["PLATFORMIO_CORE_DIR"] == str(tmp_path)
    assert env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] == "no"
    assert env["PLATFORMIO_DISABLE_UPGRADE_CHECK"] == "true"


def test_missing_registry_platform_names_the_install_command(tmp_path: Path) -> None:
    core, project = tmp_path / "core", tmp_path / "proj"
    with pytest.raises(PlatformMissing) as info:
        _check_platform("platformio/espressif32@6.13.0", core, project, "esp32s3")
    text = str(info.value)
    assert "platformio/espressif32@6.13.0" in text
    assert "network" in text
    assert f"PLATFORMIO_CORE_DIR={core} pio pkg install -d {project} -e esp32s3" in text
    installed = core / "platforms" / "espressif32"
    installed.mkdir(parents=True)
    meta = {"type": "platform", "name": "espressif32", "version": "6.13.0"}
    meta["spec"] = {"owner": "platformio", "id": None, "name": "espressif32"}  # type: ignore[assignment]
    (installed / ".piopm").write_text(json.dumps(meta))
    _check_platform("platformio/espressif32@6.13.0", core, project, "esp32s3")
    _check_platform("file:///somewhere/mnmcu-qemu", core, project, "qemu-m4")


# --------------------------------------------------------------------------
# platformio.ini from board data
# --------------------------------------------------------------------------


@pytest.mark.parametrize("board_id", PIO_BOARDS)
def test_platformio_options_come_from_board_data(board_id: str) -> None:
    board = get_board(board_id)
    assert board.platformio is not None
    options = platformio_options(board, board.runtime.default, NO_EXTRAS)
    assert options["env_name"] == board.id
    assert options["board"] == board.platformio.board
    assert options["framework"] == board.platformio.framework_option
    assert f"-D{board_macro(board)}" in options["build_flags"]
    assert f"-DMNMCU_CPU_HZ={board.cpu.clock_hz}" in options["build_flags"]
    assert options["monitor_speed"] == board.serial.baud
    for key, value in board.platformio.ini_options:
        assert (key, value) in options["options"]
    if board.platformio.is_local_platform:
        path = Path(options["platform"].removeprefix("file://"))
        assert path.is_absolute() and (path / "platform.json").is_file()
        cpu_flags = dict(options["options"])["board_build.cpu_flags"]
        assert cpu_flags == " ".join(board.cpu.gcc_flags)
    else:
        assert "@" in options["platform"], "registry platforms are pinned"


def test_runtime_extras_are_merged_and_checked() -> None:
    board = get_board("esp32s3")
    extras = _merge_extras(
        {"build_flags": ["-DX=1"], "lib_deps": ["a/b@1.0.0"], "ini_options": {"k": "v"}}
    )
    options = platformio_options(board, "tflm", extras)
    assert "-DX=1" in options["build_flags"]
    assert options["lib_deps"] == ["a/b@1.0.0"]
    assert ("k", "v") in options["options"]
    with pytest.raises(InvalidValue):
        _merge_extras({"lib_deps": "a/b@1.0.0"})
    with pytest.raises(InvalidValue):
        _merge_extras(["not", "a", "dict"])
    duplicate = _merge_extras({"ini_options": {"board_build.partitions": "x.csv"}})
    with pytest.raises(InvalidValue):
        platformio_options(board, "tflm", duplicate)


# --------------------------------------------------------------------------
# The local QEMU platform
# --------------------------------------------------------------------------


@pytest.mark.parametrize("board_id", QEMU_BOARDS)
def test_local_platform_board_matches_board_data(board_id: str) -> None:
    board = get_board(board_id)
    assert board.platformio is not None
    data = json.loads((PLATFORM_DIR / "boards" / f"{board.platformio.board}.json").read_text())
    build = data["build"]
    assert build["cpu_flags"].split() == list(board.cpu.gcc_flags)
    assert int(build["f_cpu"].rstrip("L")) == board.cpu.clock_hz
    assert data["qemu"]["machine"] == board.simulator.qemu_machine
    assert data["upload"]["maximum_size"] == board.memory.flash_bytes
    assert data["upload"]["maximum_ram_size"] == board.memory.ram_bytes
    assert (PLATFORM_DIR / "ldscripts" / build["ldscript"]).is_file()
    assert "-DMNMCU_QEMU_UART0_BASE=" in build["extra_flags"]


def test_local_platform_manifest() -> None:
    manifest = json.loads((PLATFORM_DIR / "platform.json").read_text())
    assert manifest["name"] == "mnmcu-qemu"
    assert manifest["packages"] == {}, "the platform must not download packages"
    assert (PLATFORM_DIR / "builder" / "main.py").is_file()
    assert "class MnmcuqemuPlatform" in (PLATFORM_DIR / "platform.py").read_text()


# --------------------------------------------------------------------------
# HAL choice
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("board_id", "family"),
    [
        ("qemu-m4", "qemu_mps"),
        ("qemu-m55", "qemu_mps"),
        ("host", "host"),
        ("esp32s3", "esp32"),
        ("esp32", "esp32"),
        ("disco_f407vg", "stm32cube"),
        ("nucleo_h743zi", "stm32cube"),
        ("nano33ble", "arduino"),
    ],
)
def test_hal_family(board_id: str, family: str) -> None:
    assert hal_family(get_board(board_id)) == family
    names = [p.name for p in hal_sources(family)]
    assert names[0] == "mnmcu_hal.h"
    assert len(names) >= 2
    assert ("mnmcu_dwt.h" in names) == (family in ("stm32cube", "arduino"))


@pytest.mark.parametrize("board_id", ["disco_f407vg", "disco_f746ng", "nucleo_h743zi"])
def test_stm32_hal_knows_each_stm32_board(board_id: str) -> None:
    source = (data_dir("firmware") / "hal" / "stm32cube" / "mnmcu_hal_stm32cube.c").read_text()
    assert f"defined({board_macro(get_board(board_id))})" in source


# --------------------------------------------------------------------------
# QEMU command line and boot line
# --------------------------------------------------------------------------


def test_qemu_command() -> None:
    cmd = qemu_command(get_board("qemu-m55"), Path("fw.elf"), 4321)
    assert cmd[:3] == ["qemu-system-arm", "-M", "mps3-an547"]
    assert ["-icount", "shift=0"] == cmd[cmd.index("-icount") : cmd.index("-icount") + 2]
    assert "tcp:127.0.0.1:4321,server=on,wait=on,nodelay=on" in cmd
    assert cmd[-2:] == ["-kernel", "fw.elf"]
    assert "-icount" not in qemu_command(get_board("qemu-m4"), Path("f"), 1, icount=False)
    # USART2 of netduinoplus2 is QEMU's second serial port.
    second = qemu_command(get_board("disco_f407vg"), Path("f"), 1)
    assert second[second.index("-serial") + 1] == "null"
    with pytest.raises(InvalidValue):
        qemu_command(get_board("esp32s3"), Path("f"), 1)


def test_parse_boot_line() -> None:
    line = (
        "mnmcu: board=qemu-m4 runtime=aot model=463658295e57 label=person class=1 "
        "score=123 (98.0%) latency_us=- cycles=- ticks=3917890 tick_hz=25000000 "
        "timer=systick icount_insns=156715600 output=-123,123 ok=1"
    )
    fields = parse_boot_line(line)
    assert fields["board"] == "qemu-m4"
    assert fields["label"] == "person"
    assert fields["score"] == "123 (98.0%)"
    assert fields["icount_insns"] == "156715600"
    assert fields["ok"] == "1"
    assert parse_output(fields["output"]) == (-123, 123)
    with pytest.raises(InvalidValue):
        parse_output("1,2,...")
