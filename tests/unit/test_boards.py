"""Board data files: they load, they match published facts, and mistakes are reported well."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from mnmcu import boards
from mnmcu.errors import BoardFileError, BoardNotFound, InvalidValue

INVALID_DIR = Path(__file__).parent / "invalid_boards"
KIB = 1024
MIB = 1024 * 1024

EXPECTED_BOARDS = {
    "esp32s3",
    "esp32",
    "disco_f407vg",
    "disco_f746ng",
    "nucleo_h743zi",
    "nucleo_f446re",
    "nano33ble",
    "qemu-m4",
    "qemu-m7",
    "qemu-m55",
    "host",
}


def _schema() -> dict[str, object]:
    with (boards.boards_dir() / boards.SCHEMA_FILE).open(encoding="utf-8") as stream:
        data: dict[str, object] = json.load(stream)
    return data


# --- the shipped boards -------------------------------------------------------------


@pytest.mark.parametrize("board_id", boards.board_ids())
def test_every_shipped_board_loads_and_validates(board_id: str) -> None:
    board = boards.load_board_file(boards.boards_dir() / f"{board_id}.toml")
    assert board.id == board_id
    assert board.path.stem == board_id


def test_the_agreed_boards_are_shipped() -> None:
    assert EXPECTED_BOARDS <= set(boards.board_ids())


def test_ids_are_unique_and_match_file_names() -> None:
    loaded = boards.all_boards()
    ids = [board.id for board in loaded]
    assert len(ids) == len(set(ids))
    assert ids == boards.board_ids()
    assert all(board.path.name == f"{board.id}.toml" for board in loaded)


def test_schema_is_draft_2020_12_and_closed_everywhere() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                closed = node.get("additionalProperties") is False or "propertyNames" in node
                assert closed, f"{where} accepts unknown keys"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "#")


# Published facts, stated independently of the board files. Sources:
#  STM32F407xx datasheet (DS8626) features: 1 Mbyte flash, 192 Kbytes SRAM including
#   64 Kbytes CCM data RAM, 168 MHz; PlatformIO disco_f407vg.json maximum_ram_size 131072.
#  STM32F746xx datasheet (DS10916): 1 Mbyte flash, 320 Kbytes SRAM, 216 MHz.
#  STM32H743xI datasheet (DS12110): 2 Mbytes flash, 512 Kbytes AXI SRAM; PlatformIO 400 MHz.
#  Nordic nRF52840 product specification: 1 MB flash, 256 KB RAM, 64 MHz Cortex-M4F;
#   the Arduino bootloader takes the first 64 KB (app at 0x10000).
#  Espressif ESP32-S3 datasheet: 512 KB SRAM, 240 MHz LX7; the DevKitC-1-N8 module has 8 MB flash.
#  Espressif ESP32 datasheet: 520 KB SRAM, 240 MHz LX6; esp32dev has 4 MB flash.
#  ESP-IDF partitions_singleapp_large.csv: factory app partition 1500K.
#  ST DS10693 (STM32F446xC/E): 512 Kbytes flash, 128 Kbytes SRAM, 180 MHz Cortex-M4F.
PUBLISHED = [
    # id, core, clock_hz, flash_bytes, flash_total, ram_bytes, sram_total
    ("disco_f407vg", "cortex-m4f", 168_000_000, 1 * MIB, 1 * MIB, 128 * KIB, 192 * KIB),
    ("nucleo_f446re", "cortex-m4f", 180_000_000, 512 * KIB, 512 * KIB, 128 * KIB, 128 * KIB),
    ("disco_f746ng", "cortex-m7", 216_000_000, 1 * MIB, 1 * MIB, 320 * KIB, 336 * KIB),
    ("nucleo_h743zi", "cortex-m7", 400_000_000, 2 * MIB, 2 * MIB, 512 * KIB, 1056 * KIB),
    ("nano33ble", "cortex-m4f", 64_000_000, 1 * MIB - 64 * KIB, 1 * MIB, 256 * KIB, 256 * KIB),
    ("esp32s3", "xtensa-lx7", 240_000_000, 1500 * KIB, 8 * MIB, 320 * KIB, 512 * KIB),
    ("esp32", "xtensa-lx6", 240_000_000, 1500 * KIB, 4 * MIB, 320 * KIB, 520 * KIB),
]


@pytest.mark.parametrize(
    ("board_id", "core", "clock_hz", "flash", "flash_total", "ram", "sram_total"), PUBLISHED
)
def test_published_facts(
    board_id: str,
    core: str,
    clock_hz: int,
    flash: int,
    flash_total: int,
    ram: int,
    sram_total: int,
) -> None:
    board = boards.get_board(board_id)
    assert board.cpu.core == core
    assert board.cpu.clock_hz == clock_hz
    assert board.memory.flash_bytes == flash
    assert board.memory.flash_total_bytes == flash_total
    assert board.memory.ram_bytes == ram
    assert board.memory.sram_total_bytes == sram_total
    assert board.memory.psram_bytes == 0


# QEMU docs/system/arm/mps2.rst: mps2-an386 is a Cortex-M4, mps2-an500 a Cortex-M7,
# mps3-an547 a Cortex-M55; hw/arm/mps2.c SYSCLK_FRQ 25 MHz, mps2-tz.c AN547 sysclk 32 MHz;
# QEMU netduinoplus2 models the F405 and USART2 is QEMU's second -serial.
@pytest.mark.parametrize(
    ("board_id", "machine", "core", "clock_hz", "serial_index"),
    [
        ("qemu-m4", "mps2-an386", "cortex-m4f", 25_000_000, 0),
        ("qemu-m7", "mps2-an500", "cortex-m7", 25_000_000, 0),
        ("qemu-m55", "mps3-an547", "cortex-m55", 32_000_000, 0),
        ("disco_f407vg", "netduinoplus2", "cortex-m4f", 168_000_000, 1),
    ],
)
def test_qemu_mapping(
    board_id: str, machine: str, core: str, clock_hz: int, serial_index: int
) -> None:
    board = boards.get_board(board_id)
    assert board.simulator.qemu_machine == machine
    assert board.simulator.qemu_serial_index == serial_index
    assert board.cpu.core == core
    assert board.cpu.clock_hz == clock_hz


def test_only_the_m55_has_helium_and_qemu_boards_use_systick() -> None:
    loaded = {board.id: board for board in boards.all_boards()}
    assert {board_id for board_id, board in loaded.items() if board.cpu.helium} == {"qemu-m55"}
    for board_id in ("qemu-m4", "qemu-m7", "qemu-m55"):
        assert loaded[board_id].timer.source == "systick"
        assert loaded[board_id].runtime.default == "aot"
        assert loaded[board_id].upload.method == "none"


def test_renode_mapping_names_platform_and_uart_together() -> None:
    for board in boards.all_boards():
        sim = board.simulator
        assert (sim.renode_platform is None) == (sim.renode_uart is None), board.id
    disco = boards.get_board("disco_f407vg")
    assert disco.simulator.renode_platform == "platforms/boards/stm32f4_discovery-kit.repl"
    assert disco.simulator.renode_uart == "sysbus.usart2"
    assert boards.get_board("esp32s3").simulator.renode_platform is None


def test_registry_platforms_are_pinned_and_local_ones_resolve(tmp_path: Path) -> None:
    for board in boards.all_boards():
        if board.platformio is None:
            continue
        if board.platformio.is_local_platform:
            spec = board.platformio.platform_spec(tmp_path)
            assert spec == f"file://{tmp_path.resolve().as_posix()}/platforms/mnmcu-qemu"
        else:
            name, _, version = board.platformio.platform.partition("@")
            assert name and version.count(".") == 2, board.id


def test_host_has_no_limits_and_no_platformio() -> None:
    host = boards.get_board("host")
    assert not host.has_limits
    assert host.platformio is None
    assert host.cpu.clock_hz is None
    assert host.summary_row()[4:6] == ("unlimited", "unlimited")
    assert all(board.has_limits for board in boards.all_boards() if board.id != "host")


@pytest.mark.parametrize(
    "board_id",
    [b.id for b in boards.all_boards() if b.platformio and b.platformio.framework == "stm32cube"],
)
def test_stm32_boards_run_at_the_clock_their_plan_gives(board_id: str) -> None:
    """Latency in ms (mnmcu fit) uses cpu.clock_hz: the clock the firmware sets up."""
    board = boards.get_board(board_id)
    assert board.clock is not None
    plan = board.clock
    assert board.cpu.clock_hz == plan.hse_hz * plan.pll_n // (plan.pll_m * plan.pll_p)


def test_usb_ids_parse_to_integers() -> None:
    nano = boards.get_board("nano33ble")
    assert nano.serial.usb_cdc
    assert (0x2341, 0x805A) in nano.serial.usb_vid_pids


def test_boards_are_frozen() -> None:
    board = boards.get_board("esp32")
    with pytest.raises(dataclasses.FrozenInstanceError):
        board.id = "other"  # type: ignore[misc]


def test_to_dict_is_json_and_mirrors_the_file() -> None:
    for board in boards.all_boards():
        data = json.loads(json.dumps(board.to_dict()))
        assert data["id"] == board.id
        assert set(data) == {
            "id",
            "name",
            "description",
            "cpu",
            "memory",
            "platformio",
            "runtime",
            "serial",
            "timer",
            "upload",
            "simulator",
            "baremetal",
            "clock",
        }
    disco = boards.get_board("disco_f407vg")
    assert disco.to_dict()["baremetal"] == {"platformio_board": "mnmcu_stm32f407vg"}
    assert disco.to_dict()["clock"]["pll_n"] == 336
    assert boards.get_board("qemu-m4").to_dict()["clock"] is None
    assert boards.get_board("esp32s3").to_dict()["baremetal"] is None
    esp = boards.get_board("esp32s3").to_dict()
    assert esp["platformio"]["ini_options"] == {
        "board_build.partitions": "partitions_singleapp_large.csv"
    }


def test_summary_rows_match_the_columns() -> None:
    for board in boards.all_boards():
        row = board.summary_row()
        assert len(row) == len(boards.SUMMARY_COLUMNS)
        assert all(isinstance(cell, str) and cell for cell in row)
    disco_row = boards.get_board("disco_f407vg").summary_row()
    cells = dict(zip(boards.SUMMARY_COLUMNS, disco_row, strict=True))
    assert cells["clock (MHz)"] == "168"
    assert (cells["flash"], cells["RAM"], cells["PSRAM"]) == ("1 MiB", "128 KiB", "-")


# --- lookup -------------------------------------------------------------------------


def test_unknown_board_suggests_the_closest_id() -> None:
    with pytest.raises(BoardNotFound) as caught:
        boards.get_board("esp32-s3")
    assert caught.value.message == "unknown board 'esp32-s3'"
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("did you mean esp32s3?")
    assert "known boards: " in caught.value.hint and "qemu-m55" in caught.value.hint


def test_unknown_board_without_a_close_match_lists_the_boards() -> None:
    with pytest.raises(BoardNotFound) as caught:
        boards.get_board("arduino-uno-r4")
    assert caught.value.hint is not None
    assert "did you mean" not in caught.value.hint
    assert "esp32s3" in caught.value.hint


def test_boards_folder_can_be_chosen(tmp_path: Path) -> None:
    shutil.copy(boards.boards_dir() / "qemu-m4.toml", tmp_path / "qemu-m4.toml")
    assert boards.board_ids(tmp_path) == ["qemu-m4"]
    assert boards.get_board("qemu-m4", tmp_path).path == tmp_path / "qemu-m4.toml"
    with pytest.raises(BoardNotFound):
        boards.get_board("esp32", tmp_path)


# --- invalid files --------------------------------------------------------------------


def _expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# expect: "
    assert first.startswith(prefix), f"{path.name} must start with '{prefix}<substring>'"
    return first[len(prefix) :]


@pytest.mark.parametrize("path", sorted(INVALID_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_invalid_board_file_is_reported_with_file_and_field(path: Path) -> None:
    with pytest.raises(BoardFileError) as caught:
        boards.load_board_file(path)
    message = caught.value.message
    assert path.name in message
    assert _expectation(path) in message


def test_invalid_examples_cover_the_usual_mistakes() -> None:
    names = {path.stem for path in INVALID_DIR.glob("*.toml")}
    assert {
        "missing_required",
        "wrong_type",
        "negative_ram",
        "unknown_key",
        "id_mismatch",
        "bad_syntax",
        "unknown_runtime",
    } <= names


def test_missing_file_is_a_board_file_error(tmp_path: Path) -> None:
    with pytest.raises(BoardFileError, match="cannot read board file"):
        boards.load_board_file(tmp_path / "nope.toml")


# --- fits -----------------------------------------------------------------------------


def test_fits_reports_margins_in_bytes_and_percent() -> None:
    disco = boards.get_board("disco_f407vg")
    verdict = boards.fits(disco, flash_bytes=MIB // 4, ram_bytes=96 * KIB)
    assert verdict.fits and verdict.overflows == ()
    assert verdict.flash.margin_bytes == 3 * MIB // 4
    assert verdict.flash.margin_percent == pytest.approx(75.0)
    assert verdict.ram.margin_bytes == 32 * KIB
    assert verdict.ram.margin_percent == pytest.approx(25.0)
    assert verdict.ram.describe() == "ram: 96 KiB of 128 KiB, 32 KiB (25.0%) free"


def test_fits_flags_each_overflowing_resource() -> None:
    disco = boards.get_board("disco_f407vg")
    verdict = boards.fits(disco, flash_bytes=MIB // 2, ram_bytes=160 * KIB)
    assert not verdict.fits
    assert [item.resource for item in verdict.overflows] == ["ram"]
    assert verdict.ram.margin_bytes == -32 * KIB
    assert verdict.ram.margin_percent == pytest.approx(-25.0)
    assert verdict.ram.describe() == "ram: 160 KiB exceeds 128 KiB by 32 KiB"
    assert verdict.to_dict()["fits"] is False


def test_everything_fits_the_host() -> None:
    verdict = boards.fits(boards.get_board("host"), flash_bytes=10**10, ram_bytes=10**10)
    assert verdict.fits
    assert verdict.flash.margin_bytes is None and verdict.ram.margin_percent is None


def test_fits_rejects_negative_usage() -> None:
    with pytest.raises(ValueError, match="flash usage"):
        boards.fits(boards.get_board("esp32"), flash_bytes=-1, ram_bytes=0)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (700, "700 B"),
        (192 * KIB, "192 KiB"),
        (MIB, "1 MiB"),
        (1_536_000, "1500 KiB"),
        (1_300_000, "1.2 MiB"),
        (-32 * KIB, "-32 KiB"),
    ],
)
def test_format_bytes(count: int, text: str) -> None:
    assert boards.format_bytes(count) == text


def test_bare_metal_variant_builds_on_the_local_platform() -> None:
    disco = boards.get_board("disco_f407vg")
    bare = disco.bare_metal()
    assert bare.platformio is not None and bare.platformio.is_local_platform
    assert bare.platformio.board == "mnmcu_stm32f407vg" and bare.platformio.framework == "none"
    # The bare-metal firmware sets up the same clock plan as the STM32Cube one.
    assert bare.runtime.default == "aot" and bare.cpu.clock_hz == 168_000_000
    assert bare.clock == disco.clock
    assert bare.memory == disco.memory and bare.simulator == disco.simulator
    folder = boards.boards_dir() / "platforms" / "mnmcu-qemu" / "boards"
    spec = json.loads((folder / "mnmcu_stm32f407vg.json").read_text())
    assert spec["upload"]["maximum_size"] == disco.memory.flash_bytes
    assert spec["upload"]["maximum_ram_size"] == disco.memory.ram_bytes
    assert spec["build"]["f_cpu"] == f"{bare.cpu.clock_hz}L"
    assert spec["build"]["cpu_flags"] == " ".join(disco.cpu.gcc_flags)
    with pytest.raises(InvalidValue, match="esp32s3 has no bare-metal build"):
        boards.get_board("esp32s3").bare_metal()
