"""A standalone PlatformIO project for one model on one board.

:func:`emit_project` renders the one template tree ``firmware/templates/project``
with the board's data (STYLE rule 12: no copied project per board) and writes::

    platformio.ini        the environment: platform, board, framework, flags, deps
    README.md             how to build, run or flash it, and what it prints
    mnmcu_project.json    what mnmcu generated (read back by build and sim)
    .gitignore
    src/main.c            the application (main.cpp for Arduino cores)
    src/mnmcu_app.h, mnmcu_app_config.h, mnmcu_sample.h
    src/mnmcu_runtime.h   the runtime interface, and its implementation:
                          aot:  mnmcu_runtime_aot.c + the AOT model and kernels
                          tflm: what mnmcu.emit.tflm.emit_tflm_sources writes
    src/mnmcu_hal.h       the board interface, and the HAL of the board's family
    CMakeLists.txt, src/CMakeLists.txt, sdkconfig.defaults   (ESP-IDF boards only)

The same inputs give byte-identical files. The one absolute path is the
local PlatformIO platform of the QEMU boards, which PlatformIO needs
absolute; such a project is tied to the mnmcu installation that wrote it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnmcu import __version__, escape
from mnmcu.boards import HAL_FAMILIES, Board, PlatformIO, hal_family
from mnmcu.emit import cgen
from mnmcu.errors import InvalidValue, ToolMissing, UnsupportedModel
from mnmcu.escape import hash_comment, html_comment, py_string
from mnmcu.graph import Graph, load_graph
from mnmcu.log import logger
from mnmcu.model.spec import check_class_names
from mnmcu.outdir import output_folder, write_file
from mnmcu.paths import data_dir
from mnmcu.qmath import ARITHMETICS

RUNTIMES = ("aot", "tflm")
_REFERENCE_NAMES = {
    "tflm": "TFLite Micro's reference kernels",
    "litert": "LiteRT's reference kernels",
}
DEFAULT_SAMPLE_SOURCE = "mnmcu's synthetic image, seed 0"
RANDOM_SAMPLE_SOURCE = "seeded random int8 values (seed 0)"
GIVEN_SAMPLE_SOURCE = "a caller-supplied input"
PROJECT_FILE = "mnmcu_project.json"
PROJECT_CORE_DIR = ".pio/core"
"""PlatformIO's core dir of a project on a local platform (``[platformio] core_dir``)."""
SRC_DIR = "src"
TEMPLATE_DIR = "project"
# The device side of the serial protocol (firmware/protocol), copied into src/.
PROTOCOL_FILES = ("mnmcu_proto.h", "mnmcu_proto.c", "mnmcu_proto_device.c")
# HAL families whose code uses the DWT cycle counter header.
_DWT_FAMILIES = frozenset({"stm32cube", "arduino", "stm32_baremetal"})
# HAL families whose code uses the SysTick tick counter header.
_SYSTICK_FAMILIES = frozenset({"qemu_mps", "stm32_baremetal"})
# HAL families that set up the STM32 clock (firmware/hal/stm32_clock, mnmcu_clock_config.h).
CLOCK_FAMILIES = frozenset({"stm32cube", "stm32_baremetal"})
CLOCK_CONFIG = "mnmcu_clock_config.h"
# Keys emit_tflm_sources may return (see _merge_extras).
_EXTRA_KEYS = frozenset(
    {
        "ini_options",
        "build_flags",
        "lib_deps",
        "notes",
        "files",
        "model_sources",
        "model_symbols",
        "arena_symbols",
        "arena_bytes",
    }
)
AOT_ARENA_SYMBOLS = ("s_arena",)
SAMPLE_SYMBOLS = ("mnmcu_sample_input", "mnmcu_sample_expected", "mnmcu_class_names")
_RUNTIME_TITLES = {
    "aot": "ahead-of-time (AOT) runtime: generated C, int8 kernels, one static arena",
    "tflm": "TensorFlow Lite Micro runtime",
}


@dataclass(frozen=True)
class ProjectInfo:
    """What :func:`emit_project` wrote, as saved in ``mnmcu_project.json``.

    Paths in ``files`` and ``model_sources`` are relative to ``project_dir``
    (POSIX separators). ``model_sources`` are the source files whose
    constants are the model's weights and ``arena_symbols`` the names of the
    tensor arena, for :func:`mnmcu.build.footprint`. ``kernels`` is the AOT
    kernel set (``portable``, ``dsp``, ``helium``) or, for tflm, TFLM's kernel
    library (the board's ``runtime.kernels``: ``cmsis-nn``, ``esp-nn``).
    """

    project_dir: Path
    board_id: str
    runtime: str
    env_name: str
    model_file: str
    model_sha256: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sample_source: str
    expected_output: tuple[int, ...]
    class_names: tuple[str, ...]
    arena_bytes: int
    files: tuple[str, ...]
    model_sources: tuple[str, ...]
    arena_symbols: tuple[str, ...]
    notes: tuple[str, ...] = ()
    kernels: str = "portable"
    profile: bool = False
    model_symbols: tuple[str, ...] = ()
    """Global names of model constants (a source's local ones are found by its file)."""
    arithmetic: str = "tflm"
    """The reference the firmware's outputs equal: ``tflm`` or ``litert`` (see
    :data:`mnmcu.qmath.ARITHMETICS`); TFLite Micro firmware is always ``tflm``."""
    schedule: str = "layer"
    """The AOT schedule the firmware runs: ``layer`` or ``stream`` (:mod:`mnmcu.stream`)."""
    streamed_ops: int = 0
    """Ops the stream schedule runs row by row (0 with the layer schedule)."""
    layer_arena_bytes: int = 0
    """The layer schedule's arena, for comparison (AOT; 0 for TFLite Micro)."""

    @property
    def build_dir(self) -> Path:
        """PlatformIO's build folder of the environment."""
        return self.project_dir / ".pio" / "build" / self.env_name

    @property
    def elf_path(self) -> Path:
        """Where ``pio run`` puts the firmware ELF."""
        return self.build_dir / "firmware.elf"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, ``project_dir`` included."""
        return {"project_dir": str(self.project_dir), **self._manifest()}

    def _manifest(self) -> dict[str, Any]:
        return {
            "generator": f"mnmcu {__version__}",
            "board": self.board_id,
            "runtime": self.runtime,
            "env_name": self.env_name,
            "model_file": self.model_file,
            "model_sha256": self.model_sha256,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "sample_source": self.sample_source,
            "expected_output": list(self.expected_output),
            "class_names": list(self.class_names),
            "arena_bytes": self.arena_bytes,
            "files": list(self.files),
            "model_sources": list(self.model_sources),
            "arena_symbols": list(self.arena_symbols),
            "model_symbols": list(self.model_symbols),
            "notes": list(self.notes),
            "kernels": self.kernels,
            "profile": self.profile,
            "arithmetic": self.arithmetic,
            "schedule": self.schedule,
            "streamed_ops": self.streamed_ops,
            "layer_arena_bytes": self.layer_arena_bytes,
        }


def load_project(project_dir: Path) -> ProjectInfo:
    """Read the :class:`ProjectInfo` of a project :func:`emit_project` wrote."""
    path = Path(project_dir) / PROJECT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidValue(
            f"{project_dir} is not a project mnmcu generated (no {PROJECT_FILE})",
            "generate one with 'mnmcu emit MODEL.tflite --board B --out DIR'",
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidValue(f"cannot read {path} ({exc})", "emit the project again") from None
    try:
        return ProjectInfo(
            project_dir=Path(project_dir),
            board_id=str(data["board"]),
            runtime=str(data["runtime"]),
            env_name=str(data["env_name"]),
            model_file=str(data["model_file"]),
            model_sha256=str(data["model_sha256"]),
            input_shape=tuple(int(d) for d in data["input_shape"]),
            output_shape=tuple(int(d) for d in data["output_shape"]),
            sample_source=str(data["sample_source"]),
            expected_output=tuple(int(v) for v in data["expected_output"]),
            class_names=tuple(str(n) for n in data["class_names"]),
            arena_bytes=int(data["arena_bytes"]),
            files=tuple(str(f) for f in data["files"]),
            model_sources=tuple(str(f) for f in data["model_sources"]),
            arena_symbols=tuple(str(s) for s in data["arena_symbols"]),
            model_symbols=tuple(str(s) for s in data.get("model_symbols", [])),
            notes=tuple(str(n) for n in data.get("notes", ())),
            kernels=str(data.get("kernels", "portable")),
            profile=bool(data.get("profile", False)),
            # projects written before the choice existed requantised as LiteRT
            arithmetic=_arithmetic(data.get("arithmetic", "litert")),
            schedule=_schedule(data.get("schedule", "layer")),
            streamed_ops=int(data.get("streamed_ops", 0)),
            layer_arena_bytes=int(data.get("layer_arena_bytes", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidValue(
            f"{path} is incomplete or malformed ({exc!r})", "emit the project again"
        ) from None


def check_arithmetic(arithmetic: str, runtime: str) -> None:
    """Refuse an unknown arithmetic, and LiteRT's for TFLite Micro firmware."""
    if arithmetic not in ARITHMETICS:
        raise InvalidValue(
            f"unknown arithmetic {arithmetic!r}", f"use one of {', '.join(ARITHMETICS)}"
        )
    if runtime == "tflm" and arithmetic != "tflm":
        raise InvalidValue(
            "TFLite Micro firmware has TFLite Micro's arithmetic, not LiteRT's",
            "leave out --arithmetic, or use --runtime aot",
        )


def check_schedule(schedule: str, runtime: str) -> None:
    """Refuse an unknown schedule, and a streamed one for TFLite Micro firmware."""
    from mnmcu.stream import check_schedule_choice

    check_schedule_choice(schedule)
    if runtime == "tflm" and schedule != "layer":
        raise InvalidValue(
            f"the {schedule} schedule is the AOT runtime's; TFLite Micro runs op by op",
            "leave out --schedule, or use --runtime aot",
        )


def _schedule(value: object) -> str:
    if value not in ("layer", "stream"):
        raise ValueError(f"schedule {value!r} is not layer or stream")
    return str(value)


def _arithmetic(value: object) -> str:
    if value not in ARITHMETICS:
        raise ValueError(f"arithmetic {value!r} is not one of {', '.join(ARITHMETICS)}")
    return str(value)


def hal_sources(family: str) -> list[Path]:
    """The HAL files copied into ``src/`` for ``family``, header first."""
    hal = data_dir("firmware") / "hal"
    folder = hal / family
    if family not in HAL_FAMILIES or not folder.is_dir():
        raise InvalidValue(f"unknown HAL family {family!r}", f"use one of {HAL_FAMILIES}")
    files = [hal / "mnmcu_hal.h", *sorted(p for p in folder.iterdir() if p.is_file())]
    if family in _DWT_FAMILIES:
        files.append(hal / "arm_dwt" / "mnmcu_dwt.h")
    if family in _SYSTICK_FAMILIES:
        files.append(hal / "arm_systick" / "mnmcu_systick.h")
    if family in CLOCK_FAMILIES:
        files.extend(sorted((hal / "stm32_clock").iterdir()))
    return files


def clock_config(board: Board) -> str:
    """The body of ``mnmcu_clock_config.h``: the board's clock plan as macros."""
    clock = board.clock
    if clock is None:
        raise InvalidValue(
            f"board {board.id} has no [clock] plan, which its STM32 firmware needs",
            f"add one to {board.path} (see boards/disco_f407vg.toml)",
        )
    source = "HSE crystal" if clock.source == "hse_crystal" else "external HSE clock"
    text: str = (
        cgen.template_env(TEMPLATE_DIR)
        .get_template(CLOCK_CONFIG + ".j2")
        .render(
            guard=cgen.guard_macro(CLOCK_CONFIG),
            board_name=cgen.c_comment(board.name),
            board_id=board.id,
            sysclk_mhz=f"{clock.sysclk_hz / 1e6:g}",
            source_text=f"{clock.hse_hz / 1e6:g} MHz {source} through the PLL",
            fallback_mhz=f"{clock.fallback_hz / 1e6:g}",
            macros=clock.macros(),
        )
    )
    return text


FLOAT_ABI_SCRIPT = "tools/mnmcu_float_abi.py"
"""PlatformIO pre-build script that gives the linker the hard-float flags."""


def _float_abi_flags(board: Board) -> tuple[str, ...]:
    """The board's ``-mfpu``/``-mfloat-abi`` flags where a vendor framework would leave them out.

    PlatformIO's stm32cube builder (platform-ststm32 19.6.0,
    ``builder/frameworks/stm32cube.py``) passes only ``-mthumb -mcpu=...``, so
    without these the firmware is soft-float on Cortex-M4F/M7 cores.
    """
    pio = board.platformio
    if pio is None or pio.framework != "stm32cube" or board.cpu.fpu == "none":
        return ()
    return tuple(f for f in board.cpu.gcc_flags if f.startswith(("-mfpu=", "-mfloat-abi=")))


def _float_abi_script(board: Board, model_file: str, sha: str) -> str:
    banner = _text_banner(
        FLOAT_ABI_SCRIPT, model_file, sha, "PlatformIO pre-build step: the float ABI.", hash_comment
    )
    flags = ", ".join(py_string(flag) for flag in _float_abi_flags(board))
    return (
        f"{banner}\n#\n"
        "# platformio.ini's build_flags reach the compiler only; the linker needs the same\n"
        "# float ABI to pick the C library's hard-float variant, and the assembler too.\n"
        'Import("env")  # noqa: F821 - provided by PlatformIO (SCons)\n\n'
        f"FLAGS = [{flags}]\n"
        "env.Append(ASFLAGS=FLAGS, LINKFLAGS=FLAGS)  # noqa: F821\n"
    )


def board_macro(board: Board) -> str:
    """The macro the HALs use to recognise the board, e.g. ``MNMCU_BOARD_DISCO_F407VG``."""
    return "MNMCU_BOARD_" + cgen.c_identifier(board.id).upper()


def is_image_input(graph: Graph) -> bool:
    """A square image input, [1, H, H, C]: the default sample is then a synthetic image."""
    shape = graph.input.shape
    return len(shape) == 4 and shape[1] == shape[2]


def default_sample(graph: Graph) -> np.ndarray:
    """A deterministic int8 input: mnmcu's synthetic image (seed 0), quantized, for a
    square image input; seeded random int8 values of the input's shape for any other
    (audio features, sensor vectors, non-square images)."""
    from mnmcu.bench import synthetic_images
    from mnmcu.quantize import quantize_input

    shape = graph.input.shape
    if not is_image_input(graph):
        rng = np.random.default_rng(0)
        values: np.ndarray = rng.integers(-128, 128, size=tuple(shape[1:]), dtype=np.int8)
        return values
    image = synthetic_images(shape[1], shape[3], count=1, seed=0)
    sample: np.ndarray = quantize_input(image, graph)[0]
    return sample


def reference_output(
    tflite_bytes: bytes, sample: np.ndarray, arithmetic: str = "tflm"
) -> np.ndarray:
    """The int8 output the reference of ``arithmetic`` gives for ``sample``
    (:func:`mnmcu.reference.expected_outputs`)."""
    from mnmcu.reference import expected_outputs

    outputs = np.asarray(expected_outputs(tflite_bytes, sample[None], arithmetic))
    first: np.ndarray = outputs[0]
    return first


def _text_banner(
    filename: str, model_file: str, sha: str, what: str, comment: Callable[[str], str]
) -> str:
    """cgen's banner lines, each through ``comment``: the comment helper of the file's format."""
    return "\n".join(comment(line) for line in cgen.banner_lines(filename, model_file, sha, what))


def _check_sample(sample: np.ndarray, graph: Graph) -> np.ndarray:
    array = np.asarray(sample)
    shape = tuple(graph.input.shape)
    if array.shape == shape[1:]:
        array = array.reshape(shape)
    if array.shape != shape:
        raise InvalidValue(
            f"the sample input has shape {list(array.shape)}; the model takes {list(shape)}",
            "pass one input of the model's shape (with or without the batch dimension)",
        )
    if array.dtype != np.int8:
        raise InvalidValue(
            f"the sample input is {array.dtype}, not int8",
            "quantize it first (mnmcu.quantize.quantize_input)",
        )
    return array.reshape(shape[1:])


def _class_names(names: Sequence[str], count: int) -> tuple[str, ...]:
    if not names:
        return tuple(str(i) for i in range(count))
    if len(names) != count:
        raise InvalidValue(
            f"{len(names)} class names for a model with {count} outputs",
            "give one name per output",
        )
    check_class_names(names)
    return tuple(names)


def _merge_extras(extras: Any) -> dict[str, Any]:
    """Check what emit_tflm_sources returned.

    Recognised keys: ``ini_options`` (mapping or pairs: extra ``key = value``
    lines), ``build_flags`` and ``lib_deps`` (lists of strings), ``notes``
    (README lines), ``files`` (paths it wrote, relative to the project or
    absolute inside it), ``model_sources`` (files whose constants are the
    model), ``model_symbols`` (global names of model constants), ``arena_symbols``
    (names of the arena) and ``arena_bytes``.
    """
    if not isinstance(extras, Mapping):
        raise InvalidValue(f"emit_tflm_sources returned {type(extras).__name__}, not a dict")
    unknown = sorted(set(extras) - _EXTRA_KEYS)
    if unknown:
        logger.debug("ignoring keys from emit_tflm_sources: %s", ", ".join(unknown))
    merged: dict[str, Any] = {}
    options = extras.get("ini_options", {})
    pairs = options.items() if isinstance(options, Mapping) else options
    merged["ini_options"] = [(str(k), str(v)) for k, v in pairs]
    lists = ("build_flags", "lib_deps", "notes", "files", "model_sources", "model_symbols")
    for key in (*lists, "arena_symbols"):
        value = extras.get(key, ())
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise InvalidValue(f"emit_tflm_sources returned {key}={value!r}, not a list")
        merged[key] = [str(v) for v in value]
    arena = extras.get("arena_bytes", 0)
    if not isinstance(arena, int) or arena < 0:
        raise InvalidValue(f"emit_tflm_sources returned arena_bytes={arena!r}")
    merged["arena_bytes"] = arena
    return merged


def _tflm_sources(
    graph: Graph, tflite: Path, board: Board, src: Path, project_dir: Path
) -> dict[str, Any]:
    try:
        from mnmcu.emit import tflm
    except ImportError as exc:
        raise ToolMissing(
            f"the TFLite Micro runtime emitter (mnmcu.emit.tflm) is not available ({exc})",
            "use --runtime aot, or update mnmcu",
        ) from None
    return _merge_extras(tflm.emit_tflm_sources(graph, tflite, board, src, project_dir))


def _relative(path: Path, root: Path) -> str:
    """``path`` (absolute, or relative to ``root``) relative to ``root``, POSIX style."""
    absolute = path if path.is_absolute() else root / path
    try:
        return absolute.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise InvalidValue(f"{path} is outside the project {root}") from None


def _write(path: Path, data: str | bytes) -> None:
    write_file(path, data)


_FILE_ROLES = {
    "platformio.ini": "PlatformIO environment",
    "README.md": "this file",
    PROJECT_FILE: "what mnmcu generated (read by mnmcu build and sim)",
    ".gitignore": "ignores PlatformIO's build folder",
    "src/main.c": "the application: boot, sample run, boot line, poll loop",
    "src/main.cpp": "the application: boot, sample run, boot line, poll loop",
    "src/mnmcu_app.h": "the application's hooks (mnmcu_app_poll for the serial protocol)",
    "src/mnmcu_app_config.h": "board, runtime and model identity",
    "src/mnmcu_sample.h": "the sample input, its expected output, the class names",
    "src/mnmcu_runtime.h": "the runtime interface both runtimes implement",
    "src/mnmcu_runtime_aot.c": "the runtime interface over the AOT model",
    "src/mnmcu_model.h": "generic names for the AOT model",
    "src/mnmcu_hal.h": "the board interface: console and clock",
    "src/mnmcu_dwt.h": "the DWT cycle counter",
    "src/mnmcu_systick.h": "SysTick extended to a 64-bit tick count",
    "src/mnmcu_stm32_clock.h": "the STM32 clock setup",
    "src/mnmcu_stm32_clock.c": "the STM32 clock setup: HSE, PLL, wait states, fallback to the HSI",
    "src/mnmcu_stm32_clock_regs.h": "the registers the STM32 clock setup touches",
    f"src/{CLOCK_CONFIG}": "the board's clock plan (from its board file)",
    FLOAT_ABI_SCRIPT: "PlatformIO pre-build step: hard-float flags for the linker",
    "CMakeLists.txt": "ESP-IDF project file",
    "src/CMakeLists.txt": "ESP-IDF main component (all of src/)",
    "sdkconfig.defaults": "ESP-IDF settings: CPU clock, main task stack",
    "src/mnmcu_kernels.h": "the AOT int8 kernels' interface",
    "src/mnmcu_fixedpoint.h": "fixed-point arithmetic of the AOT kernels",
    "src/mnmcu_proto.h": "serial protocol frames: COBS, CRC-32 (firmware/protocol/PROTOCOL.md)",
    "src/mnmcu_proto.c": "serial protocol frames: COBS, CRC-32 (firmware/protocol/PROTOCOL.md)",
    "src/mnmcu_proto_device.c": "serial protocol commands: info, ping, input, infer",
    "src/mnmcu_kernels_fast.h": "the fast AOT kernels' interface",
    "src/mnmcu_dsp.h": "the Arm DSP operations of the fast kernels",
    "src/mnmcu_mve.h": "the Helium requantisation of the fast kernels",
}


def _role(rel: str, model_sources: Sequence[str]) -> str:
    if rel in _FILE_ROLES:
        return _FILE_ROLES[rel]
    name = Path(rel).name
    if rel in model_sources:
        return "the model: weights, requantisation constants, arena, invoke"
    if name.startswith("mnmcu_model_") and name.endswith(".h"):
        return "the model's interface"
    if name.startswith("mnmcu_hal_"):
        return "the HAL of this board's family"
    if name.startswith("mnmcu_") and name.endswith(".c"):
        return "AOT int8 kernels"
    return "TFLite Micro runtime" if rel.startswith("src/") else "project file"


def emit_project(
    tflite: Path,
    board: Board,
    out_dir: Path,
    runtime: str | None = None,
    sample: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    force: bool = False,
    bare_metal: bool = False,
    kernels: str | None = None,
    profile: bool = False,
    sample_source: str | None = None,
    arithmetic: str | None = None,
    schedule: str = "layer",
) -> ProjectInfo:
    """Write a standalone PlatformIO project running ``tflite`` on ``board`` into ``out_dir``.

    ``runtime`` is ``"aot"`` or ``"tflm"`` (default: the board's). ``sample``
    is one int8 input the firmware runs at boot (default: a deterministic
    synthetic image); its expected output comes from TFLite's reference
    kernels on the host. ``sample_source`` says where the sample comes from
    (e.g. "the first held-out image of ...", default "a caller-supplied
    input"), for the sources and README. ``class_names`` name the outputs (default ``0``,
    ``1``, ...). A folder that holds files is refused unless ``force``;
    with ``force`` the files of a previous emit are replaced. Two calls with
    the same inputs write byte-identical files. For ``tflm`` the runtime's
    files come from :func:`mnmcu.emit.tflm.emit_tflm_sources` (its result is
    checked by :func:`_merge_extras`); ESP-IDF boards also get the CMake
    files and ``sdkconfig.defaults`` unless that runtime wrote its own.
    ``bare_metal`` builds the board's bare-metal variant (:meth:`Board.bare_metal`:
    the AOT runtime on the local platform, no vendor framework).
    ``kernels`` picks the AOT kernel set (default: the fastest the board's
    core has, see :func:`mnmcu.emit.aot.default_kernels`); ``profile``
    builds the AOT firmware with per-layer timing lines (``MNMCU_PROFILE``).
    ``arithmetic`` picks the AOT runtime's FULLY_CONNECTED requantisation
    (:data:`mnmcu.qmath.ARITHMETICS`, default ``tflm``); TFLite Micro
    firmware has TFLite Micro's. ``schedule`` (one of
    :data:`mnmcu.stream.SCHEDULE_CHOICES`) is the AOT runtime's: whole
    tensors op by op, the first ops row by row, or the one with the smaller
    arena; TFLite Micro firmware takes only ``layer``.
    """
    tflite = Path(tflite)
    if bare_metal:
        if runtime not in (None, "aot"):
            raise InvalidValue(
                f"the bare-metal build runs the aot runtime, not {runtime}",
                "leave out --runtime, or leave out --bare-metal",
            )
        board = board.bare_metal()
    runtime = runtime or board.runtime.default
    if runtime not in RUNTIMES:
        raise InvalidValue(f"unknown runtime {runtime!r}", f"use one of {', '.join(RUNTIMES)}")
    arithmetic = arithmetic or "tflm"
    check_arithmetic(arithmetic, runtime)
    check_schedule(schedule, runtime)
    pio = board.platformio
    if pio is None:
        raise InvalidValue(
            f"board {board.id} has no PlatformIO environment",
            "pick a microcontroller board ('mnmcu boards'); test on the host with 'mnmcu verify'",
        )
    with output_folder(Path(out_dir), force, "mnmcu emit", manifest=PROJECT_FILE) as folder:
        with folder.staging() as stage:
            info, manifest = _generate(
                stage, folder.path, tflite, board, pio, runtime, sample, class_names, kernels,
                profile, sample_source, arithmetic, schedule,
            )  # fmt: skip
            folder.commit(stage, manifest)
    logger.debug("project for %s (%s) written to %s", board.id, runtime, folder.path)
    return info


def _generate(
    stage: Path,
    final_dir: Path,
    tflite: Path,
    board: Board,
    pio: PlatformIO,
    runtime: str,
    sample: np.ndarray | None,
    class_names: Sequence[str],
    kernels: str | None,
    profile: bool,
    given_source: str | None = None,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> tuple[ProjectInfo, dict[str, Any]]:
    """Write the project into ``stage``; its ProjectInfo (at ``final_dir``) and manifest."""
    try:
        flatbuffer = tflite.read_bytes()
    except OSError as exc:
        raise InvalidValue(f"cannot read {tflite} ({exc.strerror})", "check the path") from None
    graph = load_graph(flatbuffer)
    sha = cgen.sha256_file(tflite)
    input_t, output_t = graph.input, graph.output
    if input_t.dtype != "int8" or output_t.dtype != "int8":
        raise UnsupportedModel(
            f"the model's input is {input_t.dtype} and output {output_t.dtype}, not int8",
            "convert it to full int8 with 'mnmcu quantize'",
        )
    if sample is None:
        sample_source = DEFAULT_SAMPLE_SOURCE if is_image_input(graph) else RANDOM_SAMPLE_SOURCE
    else:
        sample_source = " ".join((given_source or GIVEN_SAMPLE_SOURCE).split())
    sample_array = _check_sample(sample if sample is not None else default_sample(graph), graph)
    expected = reference_output(flatbuffer, sample_array, arithmetic).astype(np.int8).reshape(-1)
    names = _class_names(tuple(class_names), int(expected.size))
    family = hal_family(board)

    project_dir = stage
    src = project_dir / SRC_DIR
    src.mkdir(exist_ok=True)
    written: list[Path] = []

    def banner(filename: str, what: str) -> str:
        return cgen.banner(filename, tflite.name, sha, what)

    env = cgen.template_env(TEMPLATE_DIR)
    model_ident = cgen.c_identifier(tflite.stem).lower() or "model"
    if runtime == "aot":
        from mnmcu.emit.aot import board_kernels

        kernel_set = kernels or board_kernels(board)
        extras = _emit_aot_runtime(
            graph, tflite, src, model_ident, banner, env, written, kernel_set, profile,
            arithmetic, schedule,
        )  # fmt: skip
    else:
        kernel_set = board.runtime.kernels  # TFLM's kernel library (cmsis-nn, esp-nn)
        extras = _tflm_sources(graph, tflite, board, src, project_dir)
        written.extend(project_dir / f for f in extras["files"])

    for source in (
        data_dir("firmware") / "common" / "mnmcu_runtime.h",
        data_dir("firmware") / "common" / "mnmcu_app.h",
        *hal_sources(family),
        *(data_dir("firmware") / "protocol" / name for name in PROTOCOL_FILES),
    ):
        _write(src / source.name, source.read_bytes())
        written.append(src / source.name)

    main_name = "main.cpp" if pio.framework == "arduino" else "main.c"
    context: dict[str, Any] = {
        "c_string": cgen.c_string,
        "c_comment": cgen.c_comment,
        "version": __version__,
        "board_id": board.id,
        "runtime": runtime,
        "model_file": tflite.name,
        "model_sha256": sha,
    }
    headers = {
        "mnmcu_app_config.h": ("mnmcu_app_config.h.j2", "Identity of this firmware."),
        "mnmcu_sample.h": ("mnmcu_sample.h.j2", "The boot-time sample and its expected output."),
        main_name: ("main.c.j2", "The firmware application."),
    }
    sample_context = {
        "sample_source": sample_source,
        "input_size": int(sample_array.size),
        "output_size": int(expected.size),
        "class_names": names,
        "input_array": cgen.c_array(
            "mnmcu_sample_input",
            sample_array,
            "int8_t",
            f"sample input {list(input_t.shape)}, {sample_source}",
        ),
        "expected_array": cgen.c_array(
            "mnmcu_sample_expected",
            expected,
            "int8_t",
            f"expected output ({_REFERENCE_NAMES[arithmetic]} on the host)",
        ),
    }
    for filename, (template, what) in headers.items():
        text = env.get_template(template).render(
            guard=cgen.guard_macro(filename), **context, **sample_context
        )
        _write(src / filename, banner(filename, what) + text)
        written.append(src / filename)

    if family in CLOCK_FAMILIES:
        _write(
            src / CLOCK_CONFIG,
            banner(CLOCK_CONFIG, "The board's clock plan.") + clock_config(board),
        )
        written.append(src / CLOCK_CONFIG)
    if pio.framework == "espidf":
        written.extend(_espidf_files(board, project_dir, tflite.name, sha, env))
    if _float_abi_flags(board):
        script = project_dir / FLOAT_ABI_SCRIPT
        _write(script, _float_abi_script(board, tflite.name, sha))
        written.append(script)

    ini = _platformio_ini(board, runtime, extras, tflite.name, sha, env)
    _write(project_dir / "platformio.ini", ini)
    written.append(project_dir / "platformio.ini")
    gitignore = _text_banner(".gitignore", tflite.name, sha, "Git ignore rules.", hash_comment)
    _write(project_dir / ".gitignore", gitignore + "\n.pio/\n")
    written.append(project_dir / ".gitignore")

    arena_bytes = int(extras.get("arena_bytes", 0))
    info = ProjectInfo(
        project_dir=final_dir,
        board_id=board.id,
        runtime=runtime,
        env_name=board.id,
        model_file=tflite.name,
        model_sha256=sha,
        input_shape=tuple(input_t.shape),
        output_shape=tuple(output_t.shape),
        sample_source=sample_source,
        expected_output=tuple(int(v) for v in expected),
        class_names=names,
        arena_bytes=arena_bytes,
        files=(),
        model_sources=tuple(_relative(Path(p), project_dir) for p in extras["model_sources"]),
        arena_symbols=tuple(extras["arena_symbols"]),
        model_symbols=tuple(extras.get("model_symbols", ())),
        notes=tuple(extras["notes"]),
        kernels=kernel_set,
        profile=profile and runtime == "aot",
        arithmetic=arithmetic,
        schedule=str(extras.get("schedule", "layer")),
        streamed_ops=int(extras.get("streamed_ops", 0)),
        layer_arena_bytes=int(extras.get("layer_arena_bytes", 0)),
    )
    rels = sorted({_relative(p, project_dir) for p in written} | {"README.md", PROJECT_FILE})
    info = dataclasses.replace(info, files=tuple(rels))
    readme = _readme(board, pio, info, env, sha)
    _write(project_dir / "README.md", readme)
    return info, info._manifest()


def _emit_aot_runtime(
    graph: Graph,
    tflite: Path,
    src: Path,
    ident: str,
    banner: Any,
    env: Any,
    written: list[Path],
    kernels: str = "portable",
    profile: bool = False,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> dict[str, Any]:
    """The AOT model, its kernels and the runtime adapter; the extras for the project."""
    from mnmcu.emit.aot import emit_aot, firmware_graph
    from mnmcu.stream import check_stream_plan, schedule_of, schedule_plan

    graph = firmware_graph(graph)
    plan = schedule_plan(graph, kernels, schedule)
    problems = check_stream_plan(graph, plan)
    if problems:  # a planner bug: never generate code over a broken plan
        raise RuntimeError("memory plan overlaps: " + "; ".join(problems[:3]))
    ran = schedule_of(plan)
    written.extend(
        emit_aot(
            graph,
            plan,
            src,
            ident,
            str(tflite),
            kernels=kernels,
            arithmetic=arithmetic,
            schedule=ran,
        )  # fmt: skip
    )
    adapter = "mnmcu_runtime_aot.c"
    text = env.get_template("aot/mnmcu_runtime_aot.c.j2").render()
    _write(src / adapter, banner(adapter, "The runtime interface over the AOT model.") + text)
    written.append(src / adapter)
    return {
        "ini_options": [],
        "build_flags": ["-DMNMCU_PROFILE"] if profile else [],
        "lib_deps": [],
        "notes": [],
        "model_sources": [f"{SRC_DIR}/mnmcu_model_{ident}.c"],
        "arena_symbols": list(AOT_ARENA_SYMBOLS),
        "arena_bytes": max(plan.arena_bytes, 16),
        "schedule": ran,
        "streamed_ops": plan.streamed,
        "layer_arena_bytes": max(plan.layer_arena_bytes, 16),
    }


ESP_MAIN_TASK_STACK_BYTES = 16384
"""Stack of ESP-IDF's main task, where the firmware runs inference (default 3584)."""


def _espidf_files(
    board: Board, project_dir: Path, model_file: str, sha: str, env: Any
) -> list[Path]:
    """ESP-IDF's CMake files and sdkconfig defaults, unless the runtime wrote its own."""
    clock_mhz = (board.cpu.clock_hz or 240_000_000) // 1_000_000
    files = {
        "CMakeLists.txt": ("espidf/CMakeLists.txt.j2", "ESP-IDF project."),
        "src/CMakeLists.txt": ("espidf/src_CMakeLists.txt.j2", "ESP-IDF main component."),
        "sdkconfig.defaults": ("espidf/sdkconfig.defaults.j2", "ESP-IDF configuration."),
    }
    written = []
    for rel, (template, what) in files.items():
        path = project_dir / rel
        if path.exists():
            continue
        banner = _text_banner(rel, model_file, sha, what, hash_comment)
        text = env.get_template(template).render(
            banner=banner,
            project_name=cgen.c_identifier(f"mnmcu_{board.id}").lower(),
            clock_mhz=clock_mhz,
            main_stack_bytes=ESP_MAIN_TASK_STACK_BYTES,
        )
        _write(path, text)
        written.append(path)
    return written


def platformio_options(board: Board, runtime: str, extras: Mapping[str, Any]) -> dict[str, Any]:
    """The values of the ``[env:<board>]`` section, from the board data and the runtime."""
    pio = board.platformio
    if pio is None:
        raise InvalidValue(f"board {board.id} has no PlatformIO environment")
    options: list[tuple[str, str]] = list(pio.ini_options)
    if pio.is_local_platform:
        # The local platform takes the compiler's CPU flags from the board data.
        options.append(("board_build.cpu_flags", " ".join(board.cpu.gcc_flags)))
    extra_options = list(extras.get("ini_options", ()))
    scripts = [f"pre:{FLOAT_ABI_SCRIPT}"] if _float_abi_flags(board) else []
    scripts += [v for k, v in extra_options if k == "extra_scripts"]
    options.extend((k, v) for k, v in extra_options if k != "extra_scripts")
    if scripts:
        options.append(("extra_scripts", ", ".join(scripts)))
    flags = [f"-D{board_macro(board)}"]
    if board.cpu.clock_hz is not None:
        flags.append(f"-DMNMCU_CPU_HZ={board.cpu.clock_hz}")
    if board.serial.baud is not None:
        flags.append(f"-DMNMCU_CONSOLE_BAUD={board.serial.baud}")
    flags.extend(_float_abi_flags(board))
    if board.clock is not None and pio.framework == "stm32cube":
        # The HAL's HSE_VALUE (its config template says 25 MHz) for SystemCoreClockUpdate().
        flags.append(f"-DHSE_VALUE={board.clock.hse_hz}U")
    flags.extend(pio.build_flags)
    flags.extend(extras.get("build_flags", ()))
    deps = [*pio.lib_deps, *extras.get("lib_deps", ())]
    keys = [k for k, _ in options]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise InvalidValue(
            f"platformio.ini option {dupes[0]} is set twice (board data and {runtime} runtime)"
        )
    return {
        "env_name": board.id,
        "platform": pio.platform_spec(),
        "board": pio.board,
        "framework": pio.framework_option,
        "options": options,
        "build_flags": flags,
        "lib_deps": deps,
        "monitor_speed": board.serial.baud,
    }


def _platformio_ini(
    board: Board, runtime: str, extras: Mapping[str, Any], model_file: str, sha: str, env: Any
) -> str:
    banner = _text_banner(
        "platformio.ini",
        model_file,
        sha,
        f"PlatformIO project for {board.id} ({runtime}).",
        escape.ini_comment,
    )
    local = board.platformio is not None and board.platformio.is_local_platform
    text: str = env.get_template("platformio.ini.j2").render(
        banner=banner,
        core_dir=PROJECT_CORE_DIR if local else None,
        **ini_safe_options(platformio_options(board, runtime, extras)),
    )
    return text


def ini_safe_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`platformio_options` with every key and value put through :mod:`mnmcu.escape`.

    Raises :class:`mnmcu.escape.UnsafeText` naming the option for a value
    platformio.ini cannot hold (a line break, ``${``, a leading ``!`` flag...).
    """

    def value(text: Any, what: str) -> str:
        return escape.ini_value(str(text), f"platformio.ini {what}")

    env_name = escape.ini_key(str(values["env_name"]))
    return {
        "env_name": env_name,
        "platform": value(values["platform"], "platform"),
        "board": value(values["board"], "board"),
        "framework": value(values["framework"], "framework") if values["framework"] else None,
        "options": [(escape.ini_key(k), value(v, f"option {k}")) for k, v in values["options"]],
        "build_flags": [
            escape.ini_flag(flag, "platformio.ini build_flags entry")
            for flag in values["build_flags"]
        ],
        "lib_deps": [value(dep, "lib_deps entry") for dep in values["lib_deps"]],
        "monitor_speed": int(values["monitor_speed"]) if values["monitor_speed"] else None,
    }


def _readme(board: Board, pio: PlatformIO, info: ProjectInfo, env: Any, sha: str) -> str:
    banner = _text_banner("README.md", info.model_file, sha, "About this project.", html_comment)
    regenerate = [
        "mnmcu",
        "emit",
        info.model_file,
        "--board",
        board.id,
        "--runtime",
        info.runtime,
        *(["--arithmetic", info.arithmetic] if info.arithmetic != "tflm" else []),
        "--out",
        "DIR",
    ]
    text: str = env.get_template("README.md.j2").render(
        banner=banner,
        md_text=escape.md_text,
        md_code=escape.md_code,
        regenerate=escape.shell_join(regenerate),
        version=__version__,
        board_id=board.id,
        board_name=board.name,
        board_description=board.description,
        model_file=info.model_file,
        model_sha256=sha,
        runtime=info.runtime,
        runtime_title=_RUNTIME_TITLES[info.runtime],
        env_name=info.env_name,
        qemu_machine=board.simulator.qemu_machine if pio.is_local_platform else None,
        local_platform=pio.is_local_platform,
        core_dir=PROJECT_CORE_DIR,
        platform=pio.platform_spec(),
        framework=pio.framework_option,
        monitor_speed=board.serial.baud,
        sample_source=info.sample_source,
        reference=_REFERENCE_NAMES[info.arithmetic],
        class_names=info.class_names,
        timer=board.timer.source,
        files=[(rel, _role(rel, info.model_sources)) for rel in info.files],
        notes=info.notes,
    )
    return text
