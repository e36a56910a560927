"""Board definitions: one checked TOML file per board in the ``boards/`` data folder.

Each ``boards/<id>.toml`` is validated against ``boards/schema.json`` (JSON Schema
draft 2020-12) and loaded into a frozen :class:`Board`. A file that breaks a rule
raises :class:`~mnmcu.errors.BoardFileError` naming the file and the field.

Fields that do not apply to the ``host`` board (clock, memory limits, UART baud,
PlatformIO environment) are ``None`` there; :func:`fits` treats a missing limit as
"no limit".
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from mnmcu import paths
from mnmcu.clocks import Clock, check_clock, clock_from_data
from mnmcu.errors import BoardFileError, BoardNotFound, InvalidValue

Core = Literal["cortex-m4f", "cortex-m7", "cortex-m55", "xtensa-lx6", "xtensa-lx7", "native"]
Arch = Literal["arm", "xtensa", "host"]
Fpu = Literal["none", "sp", "dp"]
Framework = Literal["espidf", "arduino", "stm32cube", "none"]
RuntimeName = Literal["tflm", "aot"]
Kernels = Literal["cmsis-nn", "esp-nn", "reference"]
TimerSource = Literal["dwt", "systick", "esp_timer", "clock_gettime"]
UploadMethod = Literal["esptool", "stlink", "sam-ba", "none"]

SCHEMA_FILE = "schema.json"
BOARD_SUFFIX = ".toml"
BOARDS_PLACEHOLDER = "{boards}"
"""Stands for the boards data folder in a local ``platformio.platform`` spec."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "core",
    "clock (MHz)",
    "flash",
    "RAM",
    "PSRAM",
    "runtime",
    "kernels",
    "simulator",
)
"""Column titles matching :meth:`Board.summary_row`."""

_KIB = 1024
_MIB = 1024 * 1024
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


@dataclass(frozen=True)
class Cpu:
    """The core, its extensions and the clock the firmware runs it at."""

    core: Core
    arch: Arch
    fpu: Fpu
    dsp: bool
    helium: bool
    clock_hz: int | None
    gcc_flags: tuple[str, ...]

    @property
    def clock_mhz(self) -> float | None:
        """Clock in MHz, or ``None`` where no figure applies (host)."""
        return None if self.clock_hz is None else self.clock_hz / 1e6


@dataclass(frozen=True)
class Memory:
    """Memory sizes in bytes; ``None`` means "no limit" (host only)."""

    flash_bytes: int | None
    flash_total_bytes: int | None
    ram_bytes: int | None
    sram_total_bytes: int | None
    psram_bytes: int


@dataclass(frozen=True)
class PlatformIO:
    """The PlatformIO environment that builds firmware for the board."""

    platform: str
    board: str
    framework: Framework
    build_flags: tuple[str, ...]
    lib_deps: tuple[str, ...]
    ini_options: tuple[tuple[str, str], ...]

    @property
    def is_local_platform(self) -> bool:
        """True for a platform shipped in the boards folder rather than the registry."""
        return self.platform.startswith("file://")

    @property
    def framework_option(self) -> str | None:
        """The ``framework =`` value for platformio.ini, or ``None`` for bare metal."""
        return None if self.framework == "none" else self.framework

    def platform_spec(self, boards_dir: Path | None = None) -> str:
        """Return the ``platform =`` value with ``{boards}`` replaced by a real path.

        ``boards_dir`` defaults to the installed boards data folder.
        """
        if BOARDS_PLACEHOLDER not in self.platform:
            return self.platform
        folder = boards_dir if boards_dir is not None else paths.data_dir("boards")
        return self.platform.replace(BOARDS_PLACEHOLDER, folder.resolve().as_posix())


@dataclass(frozen=True)
class Runtime:
    """Which inference runtime and kernel library a build uses by default."""

    default: RuntimeName
    kernels: Kernels


@dataclass(frozen=True)
class Serial:
    """Where the firmware's console and protocol appear on the host."""

    baud: int | None
    usb_cdc: bool
    usb_ids: tuple[str, ...]
    console: str

    @property
    def usb_vid_pids(self) -> tuple[tuple[int, int], ...]:
        """The ``usb_ids`` as ``(vid, pid)`` integers, in order of preference."""
        pairs = (usb_id.split(":") for usb_id in self.usb_ids)
        return tuple((int(vid, 16), int(pid, 16)) for vid, pid in pairs)


@dataclass(frozen=True)
class Timer:
    """The clock the firmware measures latency with."""

    source: TimerSource


@dataclass(frozen=True)
class Upload:
    """How firmware gets onto the board."""

    method: UploadMethod
    speed: int
    touch_1200bps: bool


@dataclass(frozen=True)
class Simulator:
    """Simulators that model the board; ``None`` where there is none."""

    qemu_machine: str | None
    qemu_serial_index: int | None
    renode_platform: str | None
    renode_uart: str | None

    @property
    def names(self) -> tuple[str, ...]:
        """Short labels of the available simulators, e.g. ``("qemu mps2-an386",)``."""
        found: list[str] = []
        if self.qemu_machine is not None:
            found.append(f"qemu {self.qemu_machine}")
        if self.renode_platform is not None:
            found.append("renode")
        return tuple(found)


@dataclass(frozen=True)
class Baremetal:
    """The bare-metal build of a board: AOT runtime on the local platform, no framework."""

    platformio_board: str


LOCAL_PLATFORM = f"file://{BOARDS_PLACEHOLDER}/platforms/mnmcu-qemu"
"""The local PlatformIO platform (QEMU machines and bare-metal STM32F4)."""


@dataclass(frozen=True)
class Board:
    """One board definition, as loaded from ``boards/<id>.toml``."""

    id: str
    name: str
    description: str
    cpu: Cpu
    memory: Memory
    platformio: PlatformIO | None
    runtime: Runtime
    serial: Serial
    timer: Timer
    upload: Upload
    simulator: Simulator
    path: Path = dataclasses.field(compare=False, repr=False)
    baremetal: Baremetal | None = None
    clock: Clock | None = None

    def bare_metal(self) -> Board:
        """This board as its bare-metal build: the local platform, no framework, AOT.

        Raises :class:`~mnmcu.errors.InvalidValue` if the board has none.
        """
        if self.baremetal is None:
            from mnmcu.errors import InvalidValue

            have = [b.id for b in all_boards() if b.baremetal is not None]
            raise InvalidValue(
                f"board {self.id} has no bare-metal build",
                f"boards with one: {', '.join(have) or 'none'}; or leave out --bare-metal",
            )
        return dataclasses.replace(
            self,
            platformio=PlatformIO(
                platform=LOCAL_PLATFORM,
                board=self.baremetal.platformio_board,
                framework="none",
                build_flags=(),
                lib_deps=(),
                ini_options=(),
            ),
            runtime=dataclasses.replace(self.runtime, default="aot"),
            timer=Timer(source="systick"),
        )

    @property
    def has_limits(self) -> bool:
        """True if the board limits flash or RAM (every board but the host)."""
        return self.memory.flash_bytes is not None or self.memory.ram_bytes is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the board as JSON-ready data, shaped like its TOML file.

        Fields the file leaves out are ``None``; ``platformio`` is ``None`` on the host.
        """
        data: dict[str, Any] = {"id": self.id, "name": self.name, "description": self.description}
        data["cpu"] = _plain(self.cpu)
        data["memory"] = _plain(self.memory)
        if self.platformio is None:
            data["platformio"] = None
        else:
            data["platformio"] = _plain(self.platformio)
            data["platformio"]["ini_options"] = dict(self.platformio.ini_options)
        for name in ("runtime", "serial", "timer", "upload", "simulator"):
            data[name] = _plain(getattr(self, name))
        data["baremetal"] = None if self.baremetal is None else _plain(self.baremetal)
        data["clock"] = None if self.clock is None else _plain(self.clock)
        return data

    def summary_row(self) -> tuple[str, ...]:
        """Return one table row of strings, in the order of :data:`SUMMARY_COLUMNS`."""
        mhz = self.cpu.clock_mhz
        clock = "-" if mhz is None else f"{mhz:g}"
        return (
            self.id,
            self.name,
            self.cpu.core,
            clock,
            _limit_text(self.memory.flash_bytes),
            _limit_text(self.memory.ram_bytes),
            format_bytes(self.memory.psram_bytes) if self.memory.psram_bytes else "-",
            self.runtime.default,
            self.runtime.kernels,
            ", ".join(self.simulator.names) or "-",
        )


@dataclass(frozen=True)
class ResourceFit:
    """How one resource (flash or RAM) compares with the board's limit.

    ``margin_bytes`` is ``limit - used`` (negative when over); ``margin_percent`` is
    that margin as a percentage of the limit. Both are ``None`` when there is no limit.
    """

    resource: str
    used_bytes: int
    limit_bytes: int | None
    margin_bytes: int | None
    margin_percent: float | None
    fits: bool

    def describe(self) -> str:
        """One line for reports, e.g. ``flash: 300 KiB of 1 MiB, 724 KiB (70.7%) free``."""
        used = format_bytes(self.used_bytes)
        if self.limit_bytes is None or self.margin_bytes is None:
            return f"{self.resource}: {used}, no limit"
        limit = format_bytes(self.limit_bytes)
        if self.fits:
            return (
                f"{self.resource}: {used} of {limit}, "
                f"{format_bytes(self.margin_bytes)} ({self.margin_percent:.1f}%) free"
            )
        return f"{self.resource}: {used} exceeds {limit} by {format_bytes(-self.margin_bytes)}"


@dataclass(frozen=True)
class FitVerdict:
    """Whether a firmware image fits a board, resource by resource."""

    board_id: str
    flash: ResourceFit
    ram: ResourceFit

    @property
    def fits(self) -> bool:
        """True if both flash and RAM fit."""
        return self.flash.fits and self.ram.fits

    @property
    def overflows(self) -> tuple[ResourceFit, ...]:
        """The resources that do not fit (empty when everything fits)."""
        return tuple(item for item in (self.flash, self.ram) if not item.fits)

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as JSON-ready data."""
        return {
            "board": self.board_id,
            "fits": self.fits,
            "flash": _plain(self.flash),
            "ram": _plain(self.ram),
        }


def fits(board: Board, flash_bytes: int, ram_bytes: int) -> FitVerdict:
    """Compare a firmware's flash and RAM needs with ``board``'s limits.

    Boards without a limit (the host) always fit, with ``None`` margins.
    """
    return FitVerdict(
        board_id=board.id,
        flash=_resource_fit("flash", flash_bytes, board.memory.flash_bytes),
        ram=_resource_fit("ram", ram_bytes, board.memory.ram_bytes),
    )


def format_bytes(count: int) -> str:
    """Format a byte count for people, exactly where possible.

    Whole MiB or KiB stay exact (``1 MiB``, ``192 KiB``, ``1500 KiB``); other counts
    get one decimal (``1.2 MiB``, ``3.4 KiB``); below 1 KiB, bytes (``700 B``).
    """
    size = abs(count)
    sign = "-" if count < 0 else ""
    if size < _KIB:
        return f"{count} B"
    if size % _MIB == 0:
        return f"{sign}{size // _MIB} MiB"
    if size % _KIB == 0:
        return f"{sign}{size // _KIB} KiB"
    if size >= _MIB:
        return f"{sign}{size / _MIB:.1f} MiB"
    return f"{sign}{size / _KIB:.1f} KiB"


def boards_dir() -> Path:
    """Return the folder holding the shipped board files and their schema."""
    return paths.data_dir("boards")


def board_ids(directory: Path | None = None) -> list[str]:
    """Return the ids of all board files in ``directory`` (default: the shipped boards), sorted.

    Only file names are read; use :func:`all_boards` to load and validate them.
    """
    folder = directory if directory is not None else boards_dir()
    return sorted(path.stem for path in folder.glob(f"*{BOARD_SUFFIX}"))


def get_board(board_id: str, directory: Path | None = None) -> Board:
    """Load the board ``board_id``.

    Raises :class:`BoardNotFound`, with the closest known ids as a hint, if there is
    no such board, and :class:`BoardFileError` if its file is invalid.
    """
    folder = directory if directory is not None else boards_dir()
    known = board_ids(folder)
    if board_id not in known:
        raise BoardNotFound(f"unknown board '{board_id}'", hint=_suggest(board_id, known))
    return load_board_file(folder / f"{board_id}{BOARD_SUFFIX}", schema=_schema_path(folder))


def all_boards(directory: Path | None = None) -> list[Board]:
    """Load and validate every board file, sorted by id."""
    folder = directory if directory is not None else boards_dir()
    schema = _schema_path(folder)
    return [
        load_board_file(folder / f"{board_id}{BOARD_SUFFIX}", schema=schema)
        for board_id in board_ids(folder)
    ]


def load_board_file(path: Path | str, schema: Path | None = None) -> Board:
    """Parse, validate and load one board file.

    ``schema`` defaults to ``schema.json`` in the shipped boards folder. Raises
    :class:`BoardFileError` naming the file (and line, for TOML syntax errors, or the
    field path, for schema violations).
    """
    path = Path(path)
    shown = _display(path)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise BoardFileError(
            f"{shown}: cannot read board file: {exc.strerror or exc}",
            hint="check the path and its permissions",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(shown, exc) from exc
    _validate(data, shown, schema if schema is not None else _schema_path(boards_dir()))
    _check_consistency(data, path, shown)
    return _build(data, path)


# --- validation -------------------------------------------------------------------


def _schema_path(folder: Path) -> Path:
    """The schema beside the board files, or the shipped one if the folder has none."""
    local = folder / SCHEMA_FILE
    return local if local.is_file() else paths.data_dir("boards") / SCHEMA_FILE


@functools.cache
def _validator(schema_path: Path) -> Draft202012Validator:
    with schema_path.open(encoding="utf-8") as stream:
        schema = json.load(stream)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _validate(data: Mapping[str, Any], shown: str, schema_path: Path) -> None:
    errors = list(_validator(schema_path.resolve()).iter_errors(data))
    if not errors:
        return
    # A misspelt key also makes the right key "missing": report the spelling first.
    unknown_keys = [item for item in errors if item.validator == "additionalProperties"]
    error = unknown_keys[0] if unknown_keys else best_match(errors)
    more = len(errors) - 1
    extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    raise BoardFileError(
        f"{shown}: {_field_path(error.absolute_path)}: {_describe(error)}{extra}",
        hint=f"fix the file; the rules are in {_display(schema_path)}",
    )


def _describe(error: ValidationError) -> str:
    """The schema error in words, with a spelling suggestion for unknown keys."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "pattern" and "description" in schema:
        return f"{error.instance!r} does not match the expected form: {schema['description']}"
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return str(error.message)
    allowed = sorted(schema.get("properties", {}))
    unknown = sorted(key for key in error.instance if key not in allowed)
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, allowed, n=1)
        suggestion = f" (did you mean '{close[0]}'?)" if close else ""
        parts.append(f"unknown key '{key}'{suggestion}")
    return "; ".join(parts) + f"; allowed keys: {', '.join(allowed)}"


def _field_path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _check_consistency(data: Mapping[str, Any], path: Path, shown: str) -> None:
    """Rules a JSON Schema cannot express: the id matches the file, sizes nest."""
    board_id = data["id"]
    if board_id != path.stem:
        raise BoardFileError(
            f"{shown}: id: '{board_id}' does not match the file name '{path.name}'",
            hint=f'rename the file to {board_id}{BOARD_SUFFIX} or set id = "{path.stem}"',
        )
    memory = data["memory"]
    for part, whole in (("ram_bytes", "sram_total_bytes"), ("flash_bytes", "flash_total_bytes")):
        if part in memory and whole in memory and memory[part] > memory[whole]:
            raise BoardFileError(
                f"{shown}: memory.{part}: {memory[part]} is larger than "
                f"memory.{whole} ({memory[whole]})",
                hint=f"{part} is the part of {whole} the linker uses; check both figures",
            )
    cpu = data["cpu"]
    framework = data.get("platformio", {}).get("framework")
    if framework == "stm32cube" and "clock" not in data:
        raise BoardFileError(
            f"{shown}: clock: an STM32Cube board needs a [clock] plan (the firmware sets it up)",
            hint="copy the [clock] table of a board with the same chip and adapt it",
        )
    if "clock" in data:
        problem = check_clock(clock_from_data(data["clock"]), cpu.get("clock_hz"))
        if problem is not None:
            raise BoardFileError(
                f"{shown}: clock: {problem}",
                hint="fix the plan from the chip's reference manual and the board's user manual",
            )
    if cpu["helium"] and cpu["arch"] != "arm":
        raise BoardFileError(
            f"{shown}: cpu.helium: Helium (MVE) needs cpu.arch = \"arm\", not '{cpu['arch']}'",
            hint="set helium = false",
        )


def _toml_error(shown: str, exc: tomllib.TOMLDecodeError) -> BoardFileError:
    message = str(exc)
    where = _TOML_POSITION.search(message)
    if where is not None:
        message = message[: where.start()]
        shown = f"{shown}:{where.group(1)}:{where.group(2)}"
    return BoardFileError(
        f"{shown}: invalid TOML: {message}",
        hint="fix the syntax (see https://toml.io)",
    )


def _display(path: Path) -> str:
    """The path relative to the working directory when it is below it, else absolute."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _suggest(board_id: str, known: Sequence[str]) -> str:
    listing = f"known boards: {', '.join(known)}" if known else "no board files were found"
    squashed = {_squash(name): name for name in known}
    close = [squashed[_squash(board_id)]] if _squash(board_id) in squashed else []
    close = close or difflib.get_close_matches(board_id, known, n=2, cutoff=0.6)
    if close:
        return f"did you mean {' or '.join(close)}? {listing}"
    return listing


def _squash(name: str) -> str:
    return re.sub(r"[-_\s]", "", name.lower())


# --- building the dataclasses -------------------------------------------------------


def _build(data: Mapping[str, Any], path: Path) -> Board:
    cpu, memory, serial, sim = data["cpu"], data["memory"], data["serial"], data["simulator"]
    pio = data.get("platformio")
    return Board(
        id=data["id"],
        name=data["name"],
        description=data["description"],
        cpu=Cpu(
            core=cpu["core"],
            arch=cpu["arch"],
            fpu=cpu["fpu"],
            dsp=cpu["dsp"],
            helium=cpu["helium"],
            clock_hz=cpu.get("clock_hz"),
            gcc_flags=tuple(cpu["gcc_flags"]),
        ),
        memory=Memory(
            flash_bytes=memory.get("flash_bytes"),
            flash_total_bytes=memory.get("flash_total_bytes"),
            ram_bytes=memory.get("ram_bytes"),
            sram_total_bytes=memory.get("sram_total_bytes"),
            psram_bytes=memory["psram_bytes"],
        ),
        platformio=None
        if pio is None
        else PlatformIO(
            platform=pio["platform"],
            board=pio["board"],
            framework=pio["framework"],
            build_flags=tuple(pio["build_flags"]),
            lib_deps=tuple(pio["lib_deps"]),
            ini_options=tuple(sorted(pio.get("ini_options", {}).items())),
        ),
        runtime=Runtime(default=data["runtime"]["default"], kernels=data["runtime"]["kernels"]),
        serial=Serial(
            baud=serial.get("baud"),
            usb_cdc=serial["usb_cdc"],
            usb_ids=tuple(serial["usb_ids"]),
            console=serial["console"],
        ),
        timer=Timer(source=data["timer"]["source"]),
        upload=Upload(
            method=data["upload"]["method"],
            speed=data["upload"]["speed"],
            touch_1200bps=data["upload"]["touch_1200bps"],
        ),
        simulator=Simulator(
            qemu_machine=sim.get("qemu_machine"),
            qemu_serial_index=sim.get("qemu_serial_index"),
            renode_platform=sim.get("renode_platform"),
            renode_uart=sim.get("renode_uart"),
        ),
        path=path,
        baremetal=None
        if "baremetal" not in data
        else Baremetal(platformio_board=data["baremetal"]["platformio_board"]),
        clock=clock_from_data(data["clock"]) if "clock" in data else None,
    )


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass instance as a dict (tuples stay tuples; json writes them as lists)."""
    return dataclasses.asdict(value)


def _limit_text(limit: int | None) -> str:
    return "unlimited" if limit is None else format_bytes(limit)


def _resource_fit(resource: str, used: int, limit: int | None) -> ResourceFit:
    if used < 0:
        raise ValueError(f"{resource} usage must be >= 0 bytes, got {used}")
    if limit is None:
        return ResourceFit(resource, used, None, None, None, fits=True)
    margin = limit - used
    return ResourceFit(resource, used, limit, margin, 100.0 * margin / limit, fits=margin >= 0)


HAL_FAMILIES = ("qemu_mps", "stm32_baremetal", "host", "esp32", "stm32cube", "arduino")
"""The firmware's board layers (folders of ``firmware/hal``)."""


def hal_family(board: Board) -> str:
    """The HAL family (a folder of ``firmware/hal``) that serves ``board``."""
    pio = board.platformio
    if board.cpu.arch == "host":
        return "host"
    if pio is not None and pio.is_local_platform and board.baremetal is not None:
        return "stm32_baremetal"
    if pio is not None and pio.is_local_platform and board.simulator.qemu_machine:
        return "qemu_mps"
    if pio is None:
        raise InvalidValue(f"board {board.id} has no PlatformIO environment")
    if pio.framework == "espidf":
        return "esp32"
    if pio.framework == "stm32cube":
        return "stm32cube"
    if pio.framework == "arduino":
        return "arduino"
    raise InvalidValue(
        f"no HAL for board {board.id} (framework {pio.framework})",
        f"add one under firmware/hal/ (existing: {', '.join(HAL_FAMILIES)})",
    )
