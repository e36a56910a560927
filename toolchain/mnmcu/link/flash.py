"""Put a built firmware on a board: PlatformIO's upload, or esptool for ESP32 boards.

:func:`flash_command` builds the command (for review and tests);
:func:`flash` runs it through :func:`mnmcu.proc.run_command`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mnmcu.boards import Board
from mnmcu.build import default_core_dir, pio_command, pio_environment
from mnmcu.emit.project import ProjectInfo, load_project
from mnmcu.errors import InvalidValue, ToolMissing
from mnmcu.escape import shell_join
from mnmcu.log import NullProgress, Progress
from mnmcu.proc import run_command

FLASH_TIMEOUT_S = 60.0
"""Base time for an upload; :data:`FLASH_TIMEOUT_PER_MB_S` more per MB of image."""
FLASH_TIMEOUT_PER_MB_S = 60.0
# ESP-IDF's default layout: bootloader (0x0 on the S3, 0x1000 on the ESP32), partition table, app.
_ESP_BOOTLOADER_OFFSET = {"esp32s3": "0x0", "esp32": "0x1000"}
_ESP_CHIPS = {"esp32s3": "esp32s3", "esp32": "esp32"}


def flash_timeout(image_bytes: int) -> float:
    """The upload timeout for an image of ``image_bytes``, scaled per MB."""
    return FLASH_TIMEOUT_S + FLASH_TIMEOUT_PER_MB_S * image_bytes / 1e6


def flash_command(board: Board, info: ProjectInfo, port: str) -> list[str]:
    """The upload command for ``board``: esptool for ESP32 boards, else ``pio run -t upload``."""
    if board.upload.method == "none":
        raise InvalidValue(
            f"board {board.id} cannot be flashed (it is simulated)",
            f"run it with 'mnmcu sim --board {board.id}' or 'mnmcu hil --board {board.id}'",
        )
    build = info.build_dir
    if board.upload.method == "esptool" and board.id in _ESP_CHIPS:
        images = {
            _ESP_BOOTLOADER_OFFSET[board.id]: build / "bootloader.bin",
            "0x8000": build / "partitions.bin",
            "0x10000": build / "firmware.bin",
        }
        missing = [str(p) for p in images.values() if not p.is_file()]
        if missing:
            raise InvalidValue(
                f"the firmware of {info.project_dir} is not built ({missing[0]} is missing)",
                f"build it first: {shell_join(['pio', 'run', '-d', info.project_dir])}",
            )
        cmd = [sys.executable, "-m", "esptool", "--chip", _ESP_CHIPS[board.id], "--port", port]
        cmd += ["--baud", str(board.upload.speed or 460800), "write_flash"]
        for offset, image in images.items():
            cmd += [offset, str(image)]
        return cmd
    return [
        str(c)
        for c in pio_command(
            "run",
            "-d",
            info.project_dir,
            "-e",
            info.env_name,
            "-t",
            "upload",
            "--upload-port",
            port,
        )
    ]


def flash(
    board: Board, project_dir: Path, port: str, progress: Progress | None = None
) -> list[str]:
    """Upload ``project_dir``'s firmware to ``board`` on ``port``; returns the command run."""
    info = load_project(project_dir)
    if info.board_id != board.id:
        raise InvalidValue(
            f"project {project_dir} was generated for board {info.board_id}, not {board.id}",
            f"pass --board {info.board_id} or the project of {board.id}",
        )
    cmd = flash_command(board, info, port)
    if cmd[1:3] == ["-m", "esptool"] and importlib.util.find_spec("esptool") is None:
        raise ToolMissing("esptool is not installed", "pip install esptool")
    image = info.build_dir / "firmware.bin"
    size = image.stat().st_size if image.is_file() else info.elf_path.stat().st_size
    progress = progress or NullProgress()
    progress.start(f"flashing {board.id} on {port}", None)
    try:
        env = pio_environment(default_core_dir(info.project_dir))
        run_command(cmd, timeout=flash_timeout(size), env=env)
    finally:
        progress.finish()
    return cmd
