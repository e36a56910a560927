"""The TFLite Micro runtime emitter on a small synthetic graph (no TensorFlow, no PlatformIO).

Scratch-buffer sizes are worked out by hand from the kernel libraries' own
formulas (CMSIS-NN Source/*/arm_*_get_buffer_sizes_s8.c, ESP-NN
esp_nn_get_*_scratch_size_esp32s3), the arena from the rule in
mnmcu.emit.tflm.ArenaSize.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnmcu.boards import get_board
from mnmcu.emit import tflm
from mnmcu.emit.project import platformio_options
from mnmcu.emit.tflm import check as tflm_check
from mnmcu.emit.tflm import resolver as tflm_resolver
from mnmcu.errors import InvalidValue, UnsupportedModel
from mnmcu.graph import Graph, Op, Quantization, Tensor
from mnmcu.reference import TflmRun

Q = Quantization(scale=(0.05,), zero_point=(-3,))
MEASURED = TflmRun(outputs=None, arena_total=20_000, arena_head=12_000, arena_tail=8_000)


class GraphBuilder:
    """Tensors and ops of a hand-made graph."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []

    def tensor(self, shape: tuple[int, ...], dtype: str = "int8", const: bool = False) -> int:
        data = np.zeros(shape, dtype=dtype) if const else None
        index = len(self.tensors)
        self.tensors.append(Tensor(index, f"t{index}", shape, dtype, Q, data))
        return index

    def op(self, opcode: str, inputs: list[int], outputs: list[int], **options: object) -> None:
        self.ops.append(Op(len(self.ops), opcode, tuple(inputs), tuple(outputs), dict(options)))

    def conv(
        self, x: int, out_hw: int, out_c: int, k: int, stride: int, depthwise: bool = False
    ) -> int:
        in_c = self.tensors[x].shape[3]
        shape = (1, k, k, out_c) if depthwise else (out_c, k, k, in_c)
        w = self.tensor(shape, const=True)
        b = self.tensor((out_c,), "int32", const=True)
        y = self.tensor((1, out_hw, out_hw, out_c))
        options: dict[str, object] = {"padding": "SAME", "stride_h": stride, "stride_w": stride}
        if depthwise:
            options["depth_multiplier"] = 1
        self.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [x, w, b], [y], **options)
        return y

    def graph(self, inputs: list[int], outputs: list[int]) -> Graph:
        return Graph(tuple(self.tensors), tuple(self.ops), tuple(inputs), tuple(outputs), 0)


def small_graph(softmax_out: str = "int8") -> Graph:
    """conv 3x3/2 -> dw 5x5 -> conv 1x1 -> mean -> FC -> softmax, on 16x16x3."""
    g = GraphBuilder()
    x = g.tensor((1, 16, 16, 3))
    y = g.conv(x, 8, 16, 3, 2)  # op 0: CMSIS-NN DSP: 2 * align4(27) * 2 = 112
    y = g.conv(y, 8, 16, 5, 1, depthwise=True)  # op 1: 16 * 25 * 2 = 800
    y = g.conv(y, 8, 32, 1, 1)  # op 2: 1x1 fast path, 0 on CMSIS-NN
    axes = g.tensor((2,), "int32", const=True)
    m = g.tensor((1, 1, 1, 32))
    g.op("MEAN", [y, axes], [m], keep_dims=True)
    w = g.tensor((4, 32), const=True)
    b = g.tensor((4,), "int32", const=True)
    f = g.tensor((1, 4))
    g.op("FULLY_CONNECTED", [m, w, b], [f])
    s = g.tensor((1, 4), softmax_out)
    g.op("SOFTMAX", [f], [s], beta=1.0)
    return g.graph([x], [s])


def every_op_graph() -> Graph:
    """An int8 graph with one op of each type that has an int8 registration, and a few more."""
    g = GraphBuilder()
    x = g.tensor((1, 16, 16, 3))
    pads = g.tensor((4, 2), "int32", const=True)
    p = g.tensor((1, 18, 18, 3))
    g.op("PAD", [x, pads], [p])
    y = g.conv(p, 8, 16, 3, 2)
    y = g.conv(y, 8, 16, 3, 1, depthwise=True)
    a = g.tensor((1, 8, 8, 16))
    g.op("ADD", [y, y], [a])
    m = g.tensor((1, 8, 8, 16))
    g.op("MUL", [a, y], [m])
    h = g.tensor((1, 8, 8, 16))
    g.op("HARD_SWISH", [m], [h])
    pool = {"padding": "VALID", "stride_h": 2, "stride_w": 2, "filter_h": 2, "filter_w": 2}
    ap = g.tensor((1, 4, 4, 16))
    g.op("AVERAGE_POOL_2D", [h], [ap], **pool)
    mp = g.tensor((1, 2, 2, 16))
    g.op("MAX_POOL_2D", [ap], [mp], **pool)
    shape = g.tensor((2,), "int32", const=True)
    r = g.tensor((1, 64))
    g.op("RESHAPE", [mp, shape], [r])
    w = g.tensor((4, 64), const=True)
    b = g.tensor((4,), "int32", const=True)
    f = g.tensor((1, 4))
    g.op("FULLY_CONNECTED", [r, w, b], [f])
    s = g.tensor((1, 4))
    g.op("SOFTMAX", [f], [s], beta=1.0)
    return g.graph([x], [s])


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.tflite"
    path.write_bytes(bytes(range(256)) * 3)
    return path


def emit(graph: Graph, model: Path, board_id: str, project: Path) -> tflm.TflmSources:
    board = get_board(board_id)
    sources = tflm.emit_tflm_sources(graph, model, board, project / "src", project, MEASURED)
    write_ini(project, board_id, sources)
    return sources


def write_ini(project: Path, board_id: str, sources: tflm.TflmSources) -> None:
    pio = get_board(board_id).platformio
    assert pio is not None
    lines = [f"[env:{board_id}]", f"platform = {pio.platform}", f"board = {pio.board}"]
    lines += [f"framework = {pio.framework}", *(f"{k} = {v}" for k, v in pio.ini_options)]
    for key, values in sources.platformio_options().items():
        lines += [f"{key} =", *(f"    {v}" for v in values)]
    (project / "platformio.ini").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------


def test_registrations_use_int8_kernels() -> None:
    calls = {r.opcode: r.call for r in tflm.resolver_registrations(small_graph())}
    assert calls == {
        "CONV_2D": "resolver.AddConv2D(tflite::Register_CONV_2D_INT8())",
        "DEPTHWISE_CONV_2D": (
            "resolver.AddDepthwiseConv2D(tflite::Register_DEPTHWISE_CONV_2D_INT8())"
        ),
        "FULLY_CONNECTED": "resolver.AddFullyConnected(tflite::Register_FULLY_CONNECTED_INT8())",
        "MEAN": "resolver.AddMean()",
        "SOFTMAX": "resolver.AddSoftmax(tflite::Register_SOFTMAX_INT8())",
    }


def test_int16_softmax_output_takes_the_int8_int16_kernel() -> None:
    graph = small_graph(softmax_out="int16")
    assert tflm.expected_kernel(graph, "SOFTMAX") == "tflite::Register_SOFTMAX_INT8_INT16()"


def test_every_int8_registration_has_its_declaring_header_included(
    model_file: Path, tmp_path: Path
) -> None:
    # micro_mutable_op_resolver.h includes conv.h, add.h and the like, not pad.h: a
    # runtime that relied on it called Register_PAD_INT8() undeclared.
    graph = every_op_graph()
    sources = emit(graph, model_file, "disco_f407vg", tmp_path / "p")
    kernels = {r.kernel for r in sources.registrations if r.kernel}
    assert kernels == set(tflm.KERNEL_HEADERS) - {"tflite::Register_SOFTMAX_INT8_INT16()"}
    runtime = (tmp_path / "p" / "src" / tflm.RUNTIME_SOURCE).read_text()
    includes = re.findall(r'^#include "(tensorflow/lite/micro/kernels/\w+\.h)"$', runtime, re.M)
    assert includes == sorted({tflm.KERNEL_HEADERS[k] for k in kernels})
    assert "tensorflow/lite/micro/kernels/pad.h" in includes
    assert tflm.check_tflm_project(tmp_path / "p", graph, MEASURED.arena_total) == []
    stripped = runtime.replace('#include "tensorflow/lite/micro/kernels/pad.h"\n', "")
    (tmp_path / "p" / "src" / tflm.RUNTIME_SOURCE).write_text(stripped)
    assert tflm.check_tflm_project(tmp_path / "p", graph, MEASURED.arena_total) == [
        f"{tflm.RUNTIME_SOURCE} calls tflite::Register_PAD_INT8() without including "
        "tensorflow/lite/micro/kernels/pad.h"
    ]


def test_unknown_op_is_refused() -> None:
    graph = small_graph()
    odd = dataclasses.replace(graph.ops[0], opcode="LSTM")
    graph = dataclasses.replace(graph, ops=(odd, *graph.ops[1:]))
    with pytest.raises(UnsupportedModel, match="LSTM"):
        tflm.resolver_registrations(graph)


# --------------------------------------------------------------------------
# Arena
# --------------------------------------------------------------------------


def test_cmsis_nn_scratch_is_the_largest_layer_buffer() -> None:
    scratch, where, persistent = tflm.kernel_buffers(small_graph(), get_board("disco_f407vg"))
    assert (scratch, where, persistent) == (800, "op 1 DEPTHWISE_CONV_2D", 0)


def test_cmsis_nn_helium_formulas() -> None:
    # MVE: conv 4 * align16(27) = 128; dw 4 * 124 * 25 = 12400; FC kernel sums 4 * 4 persistent.
    board = get_board("qemu-m55")
    board = dataclasses.replace(
        board, runtime=dataclasses.replace(board.runtime, kernels="cmsis-nn")
    )
    assert tflm.kernel_buffers(small_graph(), board) == (12400, "op 1 DEPTHWISE_CONV_2D", 16)


def test_esp_nn_s3_scratch() -> None:
    # op 2, 1x1 16 -> 32 on 8x8: filter copy 16 * 32 + transpose 2 * 8 * 16 + 64 = 832.
    # op 1, dw 5x5 16 ch: 2 * (25 * 16 + 8 * 8 * 16) + 32 = 2880.
    # op 0, 3x3 on 3 ch: row 9 < 16, window 27: 16 * 4 + 16 + 16 * 32 + 16 + 32 + 64 = 704.
    assert tflm.kernel_buffers(small_graph(), get_board("esp32s3")) == (
        2880,
        "op 1 DEPTHWISE_CONV_2D",
        0,
    )
    # The generic ESP32 kernels use no conv scratch; softmax takes width * 4.
    assert tflm.kernel_buffers(small_graph(), get_board("esp32")) == (16, "op 5 SOFTMAX", 0)


def test_arena_rule() -> None:
    arena = tflm.arena_size(small_graph(), get_board("disco_f746ng"), MEASURED)
    slack = max(1024, 400)  # 2 % of 20 000
    assert arena.arena_bytes == -(-(20_000 + 800 + slack + 16) // 16) * 16
    assert arena.arena_bytes % 16 == 0
    assert "20000 B measured" in arena.describe()


def test_arena_needs_a_measurement() -> None:
    with pytest.raises(InvalidValue, match="no arena"):
        tflm.arena_size(small_graph(), get_board("esp32"), TflmRun(None, 0, 0, 0))


# --------------------------------------------------------------------------
# Pins
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "platformio/ststm32@19.6.0",
        "platformio/toolchain-gccarmnoneeabi @ 1.120301.0",
        "https://github.com/tensorflow/tflite-micro.git#90b983c2b3f1480642e040bbd2ddb37b998f3424",
        "https://github.com/owner/lib#v1.2.3",
        "file:///opt/mnmcu/boards/platforms/mnmcu-qemu",
        "symlink://lib/local",
    ],
)
def test_pinned_specs(spec: str) -> None:
    assert tflm.pin_problem(spec) is None


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("espressif32", "no version"),
        ("platformio/ststm32", "no version"),
        ("platformio/ststm32@^19.6.0", "range"),
        ("platformio/ststm32@~19.6.0", "range"),
        ("platformio/ststm32@>=19", "range"),
        ("platformio/ststm32@19.6", "range or an incomplete"),
        ("https://github.com/owner/lib.git", "without '#<commit>'"),
        ("https://github.com/owner/lib#main", "without '#<commit>'"),
    ],
)
def test_unpinned_specs(spec: str, why: str) -> None:
    problem = tflm.pin_problem(spec)
    assert problem is not None and why in problem


def test_versions_file_pins_exact_versions() -> None:
    versions = tflm.load_versions()
    assert re.fullmatch(r"[0-9a-f]{40}", versions.tflm_commit)
    assert re.fullmatch(r"[0-9a-f]{40}", versions.cmsis_nn_commit)
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions.esp_version)
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions.esp_nn_version)
    for _, spec in versions.arm_toolchains:
        assert tflm.pin_problem(spec) is None


# --------------------------------------------------------------------------
# Emitted projects and their checks
# --------------------------------------------------------------------------


@pytest.mark.parametrize("board_id", ["esp32s3", "disco_f407vg", "nano33ble"])
def test_emitted_project_passes_its_checks(board_id: str, model_file: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    sources = emit(small_graph(), model_file, board_id, project)
    board = get_board(board_id)
    assert tflm.check_tflm_project(project, small_graph(), MEASURED.arena_total, board) == []
    assert tflm.check_tflm_project(project, small_graph(), MEASURED.arena_total) == []
    assert sources.ops == ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX")
    for rel in sources.files:
        assert (project / rel).is_file()
    assert sources.route == ("esp-idf" if board_id == "esp32s3" else "tflm-tree")


def test_mapping_view_is_what_the_project_emitter_merges(model_file: Path, tmp_path: Path) -> None:
    sources = emit(small_graph(), model_file, "disco_f407vg", tmp_path / "p")
    assert set(sources) == {
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
    assert sources["model_symbols"] == ("g_model",)
    assert dict(sources["ini_options"]) == {
        "build_unflags": "-std=gnu++11 -std=gnu++14",
        "platform_packages": "platformio/toolchain-gccarmnoneeabi@1.120301.0",
        "extra_scripts": "pre:tools/tflm_pio_pre.py",
    }
    assert "-DCMSIS_NN" in sources["build_flags"]
    assert sources["model_sources"] == ("src/mnmcu_tflm_model.c",)
    assert sources["arena_bytes"] == sources.arena.arena_bytes
    runtime = (tmp_path / "p" / "src" / "mnmcu_runtime_tflm.cpp").read_text()
    assert f"uint8_t {sources['arena_symbols'][0]}[MNMCU_TFLM_ARENA_BYTES]" in runtime


def test_arduino_core_keeps_its_cxx_standard(model_file: Path, tmp_path: Path) -> None:
    # ArduinoCore-mbed's abs() macro breaks C++17's <chrono>: C++17 for src/ and TFLM only.
    sources = emit(small_graph(), model_file, "nano33ble", tmp_path / "p")
    options = dict(sources["ini_options"])
    assert options["build_src_flags"] == "-std=gnu++17" and "build_unflags" not in options
    assert not any(flag.startswith("-std=") for flag in sources["build_flags"])
    library = json.loads((tmp_path / "p" / "lib" / "tflite-micro" / "library.json").read_text())
    assert "-std=gnu++17" in library["build"]["flags"]
    # What the project's [env:nano33ble] gets: no -std= for the core, C++17 for src/.
    env = platformio_options(get_board("nano33ble"), "tflm", sources)
    assert ("build_src_flags", "-std=gnu++17") in env["options"]
    assert not any(flag.startswith("-std=") for flag in env["build_flags"])
    assert "build_unflags" not in dict(env["options"])


def test_two_emits_are_identical(model_file: Path, tmp_path: Path) -> None:
    for board_id in ("esp32", "nucleo_h743zi"):
        a, b = tmp_path / f"a-{board_id}", tmp_path / f"b-{board_id}"
        files = emit(small_graph(), model_file, board_id, a).files
        assert emit(small_graph(), model_file, board_id, b).files == files
        match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
        assert (mismatch, errors) == ([], [])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("board_id", "file", "old", "new", "problem"),
    [
        (
            "disco_f407vg",
            "src/mnmcu_runtime_tflm.cpp",
            "    if (resolver.AddMean() != kTfLiteOk) return kTfLiteError;\n",
            "",
            "resolver lacks MEAN",
        ),
        (
            "disco_f407vg",
            "src/mnmcu_runtime_tflm.cpp",
            "MicroMutableOpResolver<5>",
            "MicroMutableOpResolver<6>",
            "MicroMutableOpResolver<6>",
        ),
        (
            "disco_f407vg",
            "src/mnmcu_runtime_tflm.cpp",
            "tflite::Register_CONV_2D_INT8()",
            "",
            "registers CONV_2D with 'the default kernel'",
        ),
        (
            "esp32s3",
            "src/mnmcu_runtime_tflm.cpp",
            "resolver.AddMean()",
            "resolver.AddMean()) return kTfLiteError;\n    if (resolver.AddPad()",
            "registers PAD",
        ),
        (
            "disco_f407vg",
            "src/mnmcu_runtime_tflm.cpp",
            "#define MNMCU_TFLM_ARENA_BYTES 21840u",
            "#define MNMCU_TFLM_ARENA_BYTES 20000u",
            "smaller than the measured",
        ),
        ("disco_f407vg", "platformio.ini", "ststm32@19.6.0", "ststm32@^19.6.0", "range"),
        ("disco_f407vg", "platformio.ini", "    -DCMSIS_NN\n", "", "select CMSIS-NN"),
        (
            "nano33ble",
            "platformio.ini",
            "gccarmnoneeabi@1.120301.0",
            "gccarmnoneeabi",
            "has no version",
        ),
        ("esp32s3", "src/idf_component.yml", '"==1.3.8"', '"^1.3.8"', "not one exact version"),
        ("esp32", "src/idf_component.yml", '"==1.3.8"', '"*"', "not one exact version"),
        ("esp32", "CMakeLists.txt", "project.cmake", "other.cmake", "project.cmake"),
        ("nucleo_h743zi", "tools/tflm_fetch.py", "90b983c2b3f1", "00000000000", "TFLM commit"),
    ],
)
def test_checks_find_broken_projects(
    board_id: str, file: str, old: str, new: str, problem: str, model_file: Path, tmp_path: Path
) -> None:
    project = tmp_path / "p"
    emit(small_graph(), model_file, board_id, project)
    edit(project / file, old, new)
    found = tflm.check_tflm_project(
        project, small_graph(), MEASURED.arena_total, get_board(board_id)
    )
    assert any(problem in p for p in found), found


def test_arena_of_the_checked_cases_is_as_expected(model_file: Path, tmp_path: Path) -> None:
    # The parametrized case above edits this exact constant.
    sources = emit(small_graph(), model_file, "disco_f407vg", tmp_path / "p")
    assert sources.arena.arena_bytes == 21840


def test_boards_without_a_route_are_refused(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidValue, match="no TensorFlow Lite Micro route"):
        tflm.emit_tflm_sources(
            small_graph(), model_file, get_board("host"), tmp_path / "src", tmp_path, MEASURED
        )


def test_lint_report_reads_platformio_python_literal() -> None:
    out = "banner\n{'errors': [], 'warnings': ['Ignore unknown configuration option `x`']}\n"
    assert tflm_check._lint_report(out)["warnings"] == ["Ignore unknown configuration option `x`"]


@pytest.mark.parametrize(("board_id", "limit"), [("esp32", 180_736), ("disco_f407vg", 131_072)])
def test_an_arena_too_large_for_static_ram_is_reported(
    board_id: str, limit: int, model_file: Path, tmp_path: Path
) -> None:
    big = TflmRun(None, 190_000, 150_000, 40_000)
    sources = tflm.emit_tflm_sources(
        small_graph(), model_file, get_board(board_id), tmp_path / "src", tmp_path, big
    )
    assert any(f"exceeds the {limit} B" in note for note in sources.notes)
    assert f"exceeds the {limit} B" in (tmp_path / "TFLM.md").read_text()


def test_generated_scripts_are_valid_python(model_file: Path, tmp_path: Path) -> None:
    sources = emit(small_graph(), model_file, "nucleo_h743zi", tmp_path)
    for rel in (tflm.FETCH_SCRIPT, tflm.PRE_SCRIPT):
        compile((tmp_path / rel).read_text(), rel, "exec")
    assert "tools/tflm_fetch.py" in sources.files


# --------------------------------------------------------------------------
# Against TFLM's headers at the pinned commit (MNMCU_TFLM_SOURCES)
# --------------------------------------------------------------------------


def test_every_registration_is_declared_where_the_generator_says() -> None:
    from ..integration.framework_sources import TFLM

    root = TFLM.locate()
    for kernel, header in tflm.KERNEL_HEADERS.items():
        name = kernel.removeprefix("tflite::").removesuffix("()")
        text = (root / header).read_text()
        assert re.search(rf"\bTFLMRegistration\s+{name}\(\)", text), f"{header} lacks {name}"
    resolver = (root / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    for method, _ in tflm_resolver._RESOLVER.values():
        assert re.search(rf"\bTfLiteStatus\s+{method}\(", resolver), method


@pytest.mark.parametrize("board_id", ["disco_f407vg", "esp32s3"])
@pytest.mark.parametrize("kernels", ["-DCMSIS_NN", "-DESP_NN", ""])
def test_runtime_of_every_op_compiles_against_tflm_headers(
    board_id: str, kernels: str, model_file: Path, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    from mnmcu.paths import data_dir

    from ..integration.framework_sources import TFLM, tflm_include_dirs

    root = TFLM.locate()
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed: apt-get install g++")
    emit(every_op_graph(), model_file, board_id, tmp_path / "p")
    src = tmp_path / "p" / "src"
    for header in ("common/mnmcu_runtime.h", "hal/mnmcu_hal.h"):
        shutil.copy(data_dir("firmware") / header, src)
    flags = [
        "-std=c++17",
        "-fsyntax-only",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-DTF_LITE_STATIC_MEMORY",
    ]
    flags += [kernels] if kernels else []
    includes = [f"-isystem{d}" for d in tflm_include_dirs(root)]
    command = [gxx, *flags, *includes, f"-I{src}", str(src / tflm.RUNTIME_SOURCE)]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]


# --------------------------------------------------------------------------
# tools/tflm_fetch.py
# --------------------------------------------------------------------------


def run_fetch(project: Path, *args: str, python: tuple[str, ...] = ()) -> Any:
    import subprocess
    import sys

    command = [*(python or (sys.executable,)), str(project / tflm.FETCH_SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


def test_fetch_names_pillow_and_numpy_when_missing(model_file: Path, tmp_path: Path) -> None:
    import sys

    emit(small_graph(), model_file, "disco_f407vg", tmp_path / "p")
    # -S: no site-packages, so neither Pillow nor numpy is importable.
    run = run_fetch(tmp_path / "p", "--source", str(tmp_path), python=(sys.executable, "-S"))
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line.startswith("error: Pillow and numpy missing from ")
    assert "-m pip install pillow numpy" in line


def test_fetch_refuses_a_folder_that_is_no_checkout(model_file: Path, tmp_path: Path) -> None:
    emit(small_graph(), model_file, "disco_f407vg", tmp_path / "p")
    run = run_fetch(tmp_path / "p", "--source", str(tmp_path / "nothing"))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"error: {tmp_path / 'nothing'} is not a tflite-micro checkout (no "
        "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py)"
    ]


def test_fetch_writes_the_tree_from_a_checkout_without_downloading(
    model_file: Path, tmp_path: Path
) -> None:
    import shutil

    from ..integration.framework_sources import TFLM, TFLM_DOWNLOADS, _link, _top_level

    root = TFLM.locate()
    # A copy of hard links: TFLM's Makefile writes gen/ into the checkout it runs in.
    checkout = tmp_path / "tflite-micro"
    shutil.copytree(root, checkout, ignore=_top_level({".git", "gen"}, root), copy_function=_link)
    emit(small_graph(), model_file, "disco_f407vg", tmp_path / "p")
    run = run_fetch(tmp_path / "p", "--source", str(checkout))
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    tree = tmp_path / "p" / tflm.TREE_DIR
    versions = tflm.load_versions()
    assert (tree / "MNMCU_TFLM_COMMIT").read_text().split()[0] == versions.tflm_commit
    assert (tree / "tensorflow/lite/micro/micro_interpreter.cc").is_file()
    assert (tree / "third_party/cmsis_nn/Include/arm_nnfunctions.h").is_file()
    assert (tree / "library.json").is_file()
    assert not (checkout / TFLM_DOWNLOADS / "gcc_embedded").exists(), "Arm's GCC was downloaded"


def test_arm_toolchains_are_ones_tflm_builds_with() -> None:
    # PlatformIO's toolchain-gccarmnoneeabi 1.MMmmpp.0 is GCC MM.mm.pp. TFLM at the pinned
    # commit builds with Arm GNU 14.3 and was compiled here with GCC 12; GCC 7 (what
    # nordicnrf52 picks for nano33ble) was never seen to build it.
    for platform, spec in tflm.load_versions().arm_toolchains:
        version = re.fullmatch(r"platformio/toolchain-gccarmnoneeabi@1\.(\d+)\.0", spec)
        assert version is not None, spec
        assert int(version.group(1)) // 10000 >= 12, f"{platform}: {spec}"
