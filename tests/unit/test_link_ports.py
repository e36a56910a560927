"""Port selection by USB VID:PID, the flash commands built, and the CLI with no device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnmcu.boards import get_board
from mnmcu.emit.project import ProjectInfo
from mnmcu.link.flash import flash_command, flash_timeout
from mnmcu.link.ports import PortInfo, PortNotFound, select_port

TOOLCHAIN = Path(__file__).resolve().parents[2] / "toolchain"
ACM0 = PortInfo("/dev/ttyACM0", 0x0483, 0x374B, "STM32 STLink")
USB0 = PortInfo("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART")
USB1 = PortInfo("/dev/ttyUSB1", 0x1A86, 0x7523, "USB-Serial CH340")
S0 = PortInfo("/dev/ttyS0", None, None, "n/a")


def test_the_one_matching_port_is_chosen() -> None:
    assert select_port(get_board("nucleo_h743zi"), None, [S0, USB0, ACM0]) == "/dev/ttyACM0"
    assert select_port(get_board("esp32s3"), None, [S0, USB0, ACM0]) == "/dev/ttyUSB0"


def test_an_explicit_port_wins() -> None:
    assert select_port(get_board("esp32s3"), "socket://127.0.0.1:1234", []) == (
        "socket://127.0.0.1:1234"
    )


def test_no_matching_port_lists_the_ports_seen() -> None:
    with pytest.raises(PortNotFound) as error:
        select_port(get_board("nucleo_h743zi"), None, [S0, USB0])
    text = str(error.value)
    assert "nucleo_h743zi" in text and "0483:374B" in text
    assert "/dev/ttyS0" in text and "/dev/ttyUSB0 (10C4:EA60 CP2102 USB to UART)" in text
    assert "--port" in text


def test_several_matching_ports_ask_for_one() -> None:
    with pytest.raises(PortNotFound) as error:
        select_port(get_board("esp32s3"), None, [USB0, USB1, ACM0])
    text = str(error.value)
    assert "2 serial ports fit" in text and "/dev/ttyUSB1" in text and "--port" in text
    assert "ttyACM0" not in text


def test_without_a_board_no_port_is_guessed() -> None:
    with pytest.raises(PortNotFound) as error:
        select_port(None, None, [S0])  # the one port there is, a legacy UART
    text = str(error.value)
    assert "no --port given" in text and "/dev/ttyS0" in text and "--port" in text
    hostile = PortInfo("/dev/ttyACM9", 0x1234, 0x5678, "evil\nerror: injected\x1b[2J")
    with pytest.raises(PortNotFound) as error:
        select_port(None, None, [hostile])
    assert "\n" not in str(error.value) and "\x1b" not in str(error.value)


def test_simulated_board_has_no_port() -> None:
    with pytest.raises(PortNotFound, match="without --port to start QEMU"):
        select_port(get_board("qemu-m4"), None, [ACM0])


def _project(tmp_path: Path, board_id: str, files: tuple[str, ...] = ()) -> ProjectInfo:
    info = ProjectInfo(
        project_dir=tmp_path, board_id=board_id, runtime="aot", env_name=board_id,
        model_file="m.tflite", model_sha256="0" * 64, input_shape=(1, 96, 96, 3),
        output_shape=(1, 2), sample_source="", expected_output=(0, 0), class_names=("a", "b"),
        arena_bytes=1, files=(), model_sources=(), arena_symbols=(),
    )  # fmt: skip
    for name in files:
        (info.build_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (info.build_dir / name).write_bytes(b"\0")
    return info


def test_esp32s3_flashes_with_esptool_at_its_offsets(tmp_path: Path) -> None:
    images = ("bootloader.bin", "partitions.bin", "firmware.bin")
    info = _project(tmp_path, "esp32s3", images)
    cmd = flash_command(get_board("esp32s3"), info, "/dev/ttyUSB0")
    assert cmd[1:3] == ["-m", "esptool"]
    assert cmd[cmd.index("--chip") + 1] == "esp32s3" and cmd[cmd.index("--port") + 1] == (
        "/dev/ttyUSB0"
    )
    assert cmd[cmd.index("--baud") + 1] == "460800"
    tail = cmd[cmd.index("write_flash") + 1 :]
    assert tail[0::2] == ["0x0", "0x8000", "0x10000"]
    assert [Path(p).name for p in tail[1::2]] == list(images)


def test_esp32_bootloader_sits_at_0x1000(tmp_path: Path) -> None:
    info = _project(tmp_path, "esp32", ("bootloader.bin", "partitions.bin", "firmware.bin"))
    cmd = flash_command(get_board("esp32"), info, "/dev/ttyUSB0")
    assert cmd[cmd.index("write_flash") + 1] == "0x1000"


def test_unbuilt_esp_project_says_to_build(tmp_path: Path) -> None:
    from mnmcu.errors import InvalidValue

    with pytest.raises(InvalidValue, match="pio run -d"):
        flash_command(get_board("esp32s3"), _project(tmp_path, "esp32s3"), "/dev/ttyUSB0")


def test_stm32_flashes_through_platformio_upload(tmp_path: Path) -> None:
    info = _project(tmp_path, "nucleo_h743zi")
    cmd = flash_command(get_board("nucleo_h743zi"), info, "/dev/ttyACM0")
    assert cmd[cmd.index("run") + 1 : cmd.index("run") + 3] == ["-d", str(tmp_path)]
    assert cmd[cmd.index("-t") + 1] == "upload" and cmd[-1] == "/dev/ttyACM0"
    assert cmd[cmd.index("-e") + 1] == "nucleo_h743zi"


def test_flash_timeout_scales_with_the_image() -> None:
    assert flash_timeout(2_000_000) > flash_timeout(100_000) > 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TOOLCHAIN)}
    return subprocess.run(
        [sys.executable, "-m", "mnmcu", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ("flash", "--board", "nucleo_h743zi"),
        ("monitor", "--board", "esp32s3"),
        ("hil", "--board", "disco_f407vg"),
    ],
)
def test_commands_without_a_device_list_ports_and_exit_nonzero(args: tuple[str, ...]) -> None:
    from mnmcu.link.ports import list_ports

    if any(p.vid is not None for p in list_ports()):
        pytest.skip("a USB serial device is attached")
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "ports seen:" in proc.stderr and "--port" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_pytest_plugin_is_the_packages_pytest11_entry_point() -> None:
    import tomllib

    from mnmcu import pytest_plugin

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    entry = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["pytest11"]
    assert entry == {"mnmcu": pytest_plugin.__name__}
    assert callable(getattr(pytest_plugin, "pytest_addoption", None))
