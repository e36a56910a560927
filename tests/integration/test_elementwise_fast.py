"""The fast element-wise kernels (mnmcu_elementwise_dsp.c) are bit-exact.

``elementwise_check.c`` runs each fast kernel (table lookups, MEAN, ADD
through tables, MUL by one value per channel) and its portable counterpart
on the same random and extreme cases and compares every output byte: on
the host (the kernels' C forms) and bare-metal in QEMU, where qemu-m4 runs
the DSP-extension code and qemu-m55 the Helium code. A chain of these ops
(:func:`se_zoo`) generated with the fast kernels gives LiteRT's reference
tensors on the host and its output in QEMU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnmcu.boards import boards_dir, get_board
from mnmcu.emit.aot import emit_aot, inplace_ops, scratch_bytes
from mnmcu.emit.host import compile_host, run_host_layers
from mnmcu.graph import load_graph
from mnmcu.paths import data_dir
from mnmcu.plan import check_plan, plan_memory
from mnmcu.proc import run_command

from ..conftest import require_qemu_tools
from .test_aot import RUN_TIMEOUT_S, TinyModel, litert_outputs, litert_tensors, make_inputs

CHECK = Path(__file__).with_name("elementwise_check.c")
SOURCES = (
    "mnmcu_common.c",
    "mnmcu_elementwise.c",
    "mnmcu_elementwise_dsp.c",
    "mnmcu_pool.c",
)
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _sources() -> list[str]:
    src = data_dir("firmware") / "aot" / "src"
    return [str(CHECK), *(str(src / name) for name in SOURCES)]


def _includes() -> list[str]:
    aot = data_dir("firmware") / "aot"
    return [f"-I{aot / 'include'}", f"-I{aot / 'src'}"]


def _cases(text: str) -> int:
    assert "mismatches=0" in text, text
    return int(text.split("cases=")[1].split()[0])


def test_fast_elementwise_equal_portable_on_host(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: apt-get install gcc")
    exe = tmp_path / "check"
    sanitize = ["-fsanitize=undefined,address", "-fno-sanitize-recover"]
    run_command(
        ["gcc", *WARNINGS, "-O2", *sanitize, *_includes(), *_sources(), "-o", str(exe)],
        timeout=120,
    )
    assert _cases(run_command([str(exe)], timeout=120).stdout.decode()) == 3000


@pytest.mark.sim
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
def test_fast_elementwise_equal_portable_in_qemu(board_id: str, tmp_path: Path) -> None:
    """The same cases built for the board's core, with the -Os of the firmware builds."""
    require_qemu_tools()
    board = get_board(board_id)
    assert board.platformio is not None
    platform = boards_dir() / "platforms" / "mnmcu-qemu"
    spec = json.loads((platform / "boards" / f"{board.platformio.board}.json").read_text())
    startup = platform / "startup"
    elf = tmp_path / "check.elf"
    run_command(
        ["arm-none-eabi-gcc", *board.cpu.gcc_flags, "-Os", *WARNINGS, "-DCHECK_CASES=1500"]
        + ["-DMNMCU_QEMU", "-DMNMCU_SEMIHOSTING_EXIT"]
        + spec["build"]["extra_flags"].split()
        + [*_includes(), f"-I{startup}", *_sources()]
        + [str(startup / "mnmcu_qemu_startup.c"), str(startup / "mnmcu_qemu_syscalls.c")]
        + [f"-L{platform / 'ldscripts'}", f"-T{spec['build']['ldscript']}"]
        + ["--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections"]
        + ["-Wl,--no-warn-rwx-segments", "-o", str(elf)],
        timeout=180,
    )
    machine = board.simulator.qemu_machine
    assert machine is not None
    result = run_command(
        ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none"]
        + ["-serial", "stdio", "-semihosting-config", "enable=on,target=native"]
        + ["-kernel", str(elf)],
        timeout=300,
    )
    assert _cases(result.stdout.decode()) == 1500


# --------------------------------------------------------------------------
# A model of these ops against LiteRT
# --------------------------------------------------------------------------

FAST_CALLS = {
    "mnmcu_lut_s8_dsp_run(": 3,
    "mnmcu_mean_s8_dsp_run(": 2,
    "mnmcu_mul_channels_s8_dsp_run(": 2,
    "mnmcu_add_s8_tables_dsp_run(": 2,
}


def se_zoo() -> bytes:
    """Squeeze-and-excite blocks on a 17x16 map of 21 channels.

    21 channels leave tails after blocks of 16 (Helium), 8 and 4 (DSP); the
    272 pixels are more than one int16 run of the DSP MEAN (255); the map's
    5,712 values end off every word and vector. Activations full and
    narrower (RELU, RELU6); one feature map with zero point -128 (its offset
    128 in MEAN and MUL); the per-channel vector first and second in MUL.
    """
    m = TinyModel()
    shape = [1, 17, 16, 21]
    gate_shape = [1, 1, 1, 21]
    axes = m.tensor([2], "int32", data=[1, 2])
    x = m.tensor(shape, scale=0.05, zp=-3)
    h = m.tensor(shape, scale=0.03, zp=-20)
    m.op("HARD_SWISH", [x], [h])
    g = m.tensor(gate_shape, scale=0.01, zp=5)
    m.op("MEAN", [h, axes], [g], "ReducerOptions", keepDims=True)
    m1 = m.tensor(shape, scale=0.004, zp=9)
    m.op("MUL", [h, g], [m1], "MulOptions", fusedActivationFunction="NONE")
    a1 = m.tensor(shape, scale=0.02, zp=-7)
    m.op("ADD", [m1, h], [a1], "AddOptions", fusedActivationFunction="RELU")
    q = m.tensor(shape, scale=0.015, zp=-128)
    m.op("QUANTIZE", [a1], [q])
    g2 = m.tensor(gate_shape, scale=0.012, zp=-11)
    m.op("MEAN", [q, axes], [g2], "ReducerOptions", keepDims=True)
    m2 = m.tensor(shape, scale=0.0035, zp=-60)
    m.op("MUL", [g2, q], [m2], "MulOptions", fusedActivationFunction="RELU6")
    h2 = m.tensor(shape, scale=0.01, zp=3)
    m.op("HARD_SWISH", [m2], [h2])
    y = m.tensor(shape, scale=0.06, zp=1)
    m.op("ADD", [h2, x], [y], "AddOptions", fusedActivationFunction="NONE")
    return m.build([x], [y])


def _fast_calls(model_c: str) -> None:
    for call, count in FAST_CALLS.items():
        assert model_c.count(call) == count, call
    assert "mnmcu_mean_s8_run(" not in model_c and "mnmcu_lut_s8_run(" not in model_c


@pytest.mark.parametrize("kernels", ["dsp", "helium"])
def test_se_zoo_every_layer_bit_exact_on_host(kernels: str, tmp_path: Path) -> None:
    src = tmp_path / "se.tflite"
    src.write_bytes(se_zoo())
    graph = load_graph(src)
    plan = plan_memory(graph, scratch_bytes(graph, kernels), inplace_ops(graph))
    assert check_plan(graph, plan) == []
    c_dir = tmp_path / "c"
    emit_aot(graph, plan, c_dir, "se", str(src), kernels=kernels)
    _fast_calls((c_dir / "mnmcu_model_se.c").read_text())
    exe = compile_host(c_dir, tmp_path / "se", sanitize=True, extra_flags=["-DMNMCU_DUMP_LAYERS"])
    xs = make_inputs(graph.input.shape, 6, seed=17)
    for x, dump in zip(xs, run_host_layers(exe, xs, timeout=RUN_TIMEOUT_S), strict=True):
        ref = litert_tensors(src.read_bytes(), x)
        for op in graph.ops:
            np.testing.assert_array_equal(
                dump[op.index], ref[op.outputs[0]].reshape(-1), err_msg=f"op {op.index}"
            )


@pytest.fixture(scope="module")
def pio_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("se-pio-core")


@pytest.mark.sim
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
@pytest.mark.parametrize("fill", ["random", "min", "max"])
def test_se_zoo_bit_exact_in_qemu(board_id: str, fill: str, pio_core: Path, tmp_path: Path) -> None:
    from mnmcu.build import pio_run
    from mnmcu.emit.project import emit_project
    from mnmcu.sim import run_qemu

    require_qemu_tools()
    board = get_board(board_id)
    src = tmp_path / "se.tflite"
    src.write_bytes(se_zoo())
    graph = load_graph(src)
    sample = make_inputs(graph.input.shape, 4, seed=23)[{"min": 0, "max": 1, "random": 3}[fill]]
    info = emit_project(src, board, tmp_path / "p", sample=sample)
    _fast_calls(next((info.project_dir / "src").glob("mnmcu_model_*.c")).read_text())
    run = run_qemu(board, pio_run(info.project_dir, core_dir=pio_core))
    # The firmware compares all 5,712 output bytes with LiteRT's (embedded with
    # the sample) and prints ok=1 only when every one matches; the boot line
    # shows the first ones.
    assert run.ok, run.boot_line
    expected = litert_outputs(src.read_bytes(), sample[None])[0].reshape(-1)
    shown = run.boot_line.split(" output=")[1].split(",...")[0]
    assert shown == ",".join(str(int(v)) for v in expected[:32]), run.boot_line


def test_bench_names_the_elementwise_kernels(tmp_path: Path) -> None:
    """``mnmcu bench`` reports each op's kernel, the element-wise ones included."""
    from mnmcu.bench_sim import layer_kernels

    src = tmp_path / "se.tflite"
    src.write_bytes(se_zoo())
    expected = ["lut_s8", "mean_s8", "mul_channels_s8", "add_s8_tables", "lut_s8"]
    expected += ["mean_s8", "mul_channels_s8", "lut_s8", "add_s8_tables"]
    assert [k.kernel for k in layer_kernels(src, "portable")] == expected
    for kernels in ("dsp", "helium"):
        assert [k.kernel for k in layer_kernels(src, kernels)] == [f"{e}_dsp" for e in expected]
