"""The fast AOT kernels (Arm DSP extension, mnmcu_conv_dsp.c) are bit-exact.

* On the host, where the DSP operations are plain C, the fast requantisation
  equals the portable one over random and extreme values, and models
  generated with ``kernels="dsp"`` give TFLite's reference outputs (op zoo
  with odd shapes, and the AOT verify configurations).
* In QEMU (qemu-m4: Cortex-M4, qemu-m55: Cortex-M55), the same
  requantisation check runs with the Arm instructions themselves (and on the
  M55 Helium's four lanes), and the firmware built with
  the board's fast kernels runs the Arm instructions themselves; each model
  embeds a random int8 input and its reference output and reports ``ok=1``
  only when every output byte matches.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mnmcu.bench_sim import kernel_code_bytes, parse_layer_lines
from mnmcu.boards import boards_dir, get_board
from mnmcu.emit.aot import default_kernels, emit_aot, fast_conv, inplace_ops, scratch_bytes
from mnmcu.emit.host import compile_host, run_host, run_host_layers
from mnmcu.graph import DYNAMIC_SHAPE_OPS, load_graph
from mnmcu.paths import data_dir
from mnmcu.plan import check_plan, plan_memory
from mnmcu.proc import run_command

from ..conftest import require_qemu_tools
from .conftest import MOBILENETS
from .test_aot import (
    RUN_TIMEOUT_S,
    TinyModel,
    _act_tensor,
    _out_size,
    conv_zoo,
    litert_outputs,
    litert_tensors,
    make_inputs,
)

REQUANT_CHECK = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mnmcu_mve.h"

#ifndef CHECK_COUNT
#define CHECK_COUNT 4000000
#endif

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint32_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

int main(void)
{
    static const int32_t edges[] = {0, 1, -1, 2, -2, (1 << 30) - 1, -(1 << 30) + 1, 12345, -12345};
    long bad = 0, n = 0, n_pre = 0, n_mve = 0;
    int32_t ring[4][4] = {{0}}; /* the last four cases: acc, multiplier, shift, want */
    for (long i = 0; i < CHECK_COUNT; ++i) {
        int32_t acc = (int32_t)(next() % ((1u << 31) - 1u)) - ((1 << 30) - 1);
        int32_t mult = (int32_t)((1u << 30) + next() % (1u << 30));
        const int32_t shift = -1 - (int32_t)(next() % 31u);
        if (i % 3 == 1) {
            acc = (int32_t)(next() % 400001u) - 200000;
        } else if (i % 3 == 2) {
            acc = edges[next() % (sizeof(edges) / sizeof(edges[0]))];
        }
        if (i % 11 == 0) {
            mult = i % 22 == 0 ? 0 : (int32_t)((1u << 31) - 1u);
        }
        const int32_t offset = (int32_t)(next() % 256u) - 128;
        const int32_t lo = -128 + (int32_t)(next() % 4u) * 40;
        const int32_t hi = 127 - (int32_t)(next() % 4u) * 40;
        if (i % 5 == 0) {
            /* Accumulators near the extremes, with the largest output offsets. */
            acc = (i % 10 == 0 ? 1 : -1) * ((1 << 30) - 1 - (int32_t)(next() % 1000u));
        }
        const int32_t want = mnmcu_mbqm(acc, mult, shift);
        const int8_t out = (int8_t)mnmcu_clamp(want + offset, lo, hi);
        int ok = mnmcu_requant_fast(acc, mult, shift) == want &&
                 mnmcu_output_fast(acc, mult, shift, offset, lo, hi) == out &&
                 mnmcu_output_act(acc, mult, shift, offset, lo, hi, mnmcu_act_full(lo, hi)) == out;
        ++n;
        if (shift >= -22) {
            const mnmcu_requant_t rq = mnmcu_requant_prepare(mult, shift, offset);
            ++n_pre;
            ok = ok && mnmcu_requant_pre(acc, &rq) == want + offset &&
                 mnmcu_output_pre(acc, &rq, lo, hi, 0) == out &&
                 mnmcu_output_pre(acc, &rq, lo, hi, mnmcu_act_full(lo, hi)) == out;
        }
#if MNMCU_HAVE_MVE
        /* Four lanes of different cases (this offset and clamp), then four
         * accumulators of one channel (this multiplier and shift). */
        ring[i & 3][0] = acc;
        ring[i & 3][1] = mult;
        ring[i & 3][2] = shift;
        ring[i & 3][3] = want;
        if (i >= 3) {
            int32_t lanes[4], one[4];
            const int32x4_t a4 = mnmcu_vec4(ring[0][0], ring[1][0], ring[2][0], ring[3][0]);
            vst1q_s32(lanes, mnmcu_output_mve(
                                 a4, mnmcu_vec4(ring[0][1], ring[1][1], ring[2][1], ring[3][1]),
                                 mnmcu_vec4(ring[0][2], ring[1][2], ring[2][2], ring[3][2]),
                                 offset, lo, hi));
            vst1q_s32(one, mnmcu_output1_mve(a4, mult, shift, offset, lo, hi));
            for (int k = 0; k < 4; ++k) {
                const int32_t w1 = mnmcu_mbqm(ring[k][0], mult, shift);
                ok = ok && lanes[k] == mnmcu_clamp(ring[k][3] + offset, lo, hi) &&
                     one[k] == mnmcu_clamp(w1 + offset, lo, hi);
            }
            ++n_mve;
        }
#else
        (void)ring;
#endif
        if (!ok && bad++ < 3) {
            printf("acc=%d mult=%d shift=%d offset=%d\n", (int)acc, (int)mult, (int)shift,
                   (int)offset);
        }
    }
    printf("checked=%ld prepared=%ld vectors=%ld mismatches=%ld\n", n, n_pre, n_mve, bad);
    exit(bad != 0);
}
"""


@pytest.fixture(autouse=True)
def _gcc() -> None:
    if shutil.which("gcc") is None:
        if os.environ.get("MNMCU_REQUIRE_GCC") == "1":
            pytest.fail("gcc is required (MNMCU_REQUIRE_GCC=1): apt-get install gcc")
        pytest.skip("gcc is not installed: apt-get install gcc")


def test_fast_requantisation_equals_portable(tmp_path: Path) -> None:
    aot = data_dir("firmware") / "aot"
    source = tmp_path / "requant.c"
    source.write_text(REQUANT_CHECK)
    exe = tmp_path / "requant"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined"]
    run_command(
        ["gcc", *flags, "-fno-sanitize-recover", f"-I{aot / 'include'}", f"-I{aot / 'src'}"]
        + [str(source), "-o", str(exe)],
        timeout=120,
    )
    result = run_command([str(exe)], timeout=120)
    text = result.stdout.decode()
    assert "mismatches=0" in text and "checked=4000000" in text, text
    assert int(text.split("prepared=")[1].split()[0]) > 2_000_000, text


def _host_build(src: Path, work: Path, kernels: str) -> tuple[Path, str]:
    graph = load_graph(src)
    plan = plan_memory(graph, scratch_bytes(graph, kernels), inplace_ops(graph))
    assert check_plan(graph, plan) == []
    c_dir = work / "c"
    emit_aot(graph, plan, c_dir, "fast", str(src), kernels=kernels)
    model_c = (c_dir / "mnmcu_model_fast.c").read_text()
    return compile_host(c_dir, work / "fast", sanitize=True), model_c


def fast_zoo() -> bytes:
    """A chain of convolutions through every path of the fast kernels.

    From a 48x48 RGB input: the first-layer 3x3 window of three channels;
    depthwise 3x3 and 5x5 filters at strides 1 and 2 on maps held as a ring of
    rows (48 wide) and whole (small), in blocks of four, with a last block
    stepped back (widths 10, 5 at stride 2), with whole blocks past the row
    (width 5 at stride 1, width 2), in blocks of three (width 3); 1x1 and
    window convolutions of depths that leave 0 to 3 groups of four over, an
    odd number of output channels, int16 and int8 weights (by output pixels),
    windows at the border, fewer than three output pixels; activation ranges
    full and narrower.
    """
    rng = np.random.default_rng(7)
    m = TinyModel()
    x = m.tensor([1, 48, 48, 3], scale=0.05, zp=-3)
    shape = [48, 48, 3]
    y = x

    def layer(kind: str, k: int, stride: int, pad: str, cout: int, act: str) -> None:
        nonlocal y, shape
        h, w, c = shape
        oh, ow = _out_size(pad, h, k, stride, 1), _out_size(pad, w, k, stride, 1)
        out_c = c if kind == "dw" else cout
        fs = rng.uniform(0.002, 0.02, size=out_c)
        if kind == "dw":
            filt = rng.integers(-127, 128, size=(1, k, k, c))
            f = m.tensor(list(filt.shape), scale=fs, data=filt, axis=3)
        else:
            filt = rng.integers(-127, 128, size=(cout, k, k, c))
            f = m.tensor(list(filt.shape), scale=fs, data=filt)
        b = m.tensor([out_c], "int32", scale=0.05 * fs, data=rng.integers(-3000, 3000, size=out_c))
        out = _act_tensor(m, rng, [1, oh, ow, out_c], 0.02, 0.2)
        name, options = (
            ("DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions")
            if kind == "dw"
            else ("CONV_2D", "Conv2DOptions")
        )
        extra = {"depthMultiplier": 1} if kind == "dw" else {}
        m.op(
            name,
            [y, f, b],
            [out],
            options,
            padding=pad,
            strideW=stride,
            strideH=stride,
            dilationWFactor=1,
            dilationHFactor=1,
            fusedActivationFunction=act,
            **extra,
        )
        y, shape = out, [oh, ow, out_c]

    layer("conv", 3, 1, "SAME", 8, "RELU6")  # RGB 3x3 windows, int16 weights
    layer("dw", 3, 1, "SAME", 0, "NONE")  # 48 wide: a ring of rows, blocks of four
    layer("dw", 3, 2, "SAME", 0, "RELU6")  # ring, stride 2 -> 24
    layer("conv", 1, 1, "VALID", 12, "NONE")  # depth 8: two groups of four
    layer("dw", 5, 2, "SAME", 0, "RELU")  # the whole map, 24 -> 12
    layer("dw", 5, 1, "SAME", 0, "NONE")
    layer("conv", 3, 1, "VALID", 12, "RELU6")  # 12 -> 10
    layer("dw", 3, 1, "SAME", 0, "NONE")  # width 10: a block stepped back by two
    layer("dw", 5, 2, "SAME", 0, "RELU6")  # 10 -> 5: stepped back by three at stride 2
    layer("dw", 3, 1, "SAME", 0, "NONE")  # width 5 at stride 1: whole blocks past it
    layer("conv", 1, 1, "VALID", 13, "RELU")  # depth 12, odd C_out, int8 weights
    layer("dw", 5, 2, "SAME", 0, "NONE")  # 5 -> 3: blocks of three
    layer("dw", 3, 1, "SAME", 0, "RELU6")
    layer("dw", 5, 1, "SAME", 0, "NONE")
    layer("conv", 1, 1, "VALID", 24, "NONE")  # depth 13: the last group partial
    layer("conv", 3, 2, "SAME", 10, "RELU6")  # 3 -> 2: every window at the border
    layer("dw", 3, 1, "SAME", 0, "NONE")  # shorter than a block
    layer("dw", 5, 2, "SAME", 0, "NONE")  # 2 -> 1
    layer("conv", 1, 1, "VALID", 5, "NONE")  # one pixel
    return m.build([x], [y])


def _zoo_kernels_used(model_c: str, kernels: str) -> None:
    conv = "mve" if kernels == "helium" else "dsp"
    for function in (f"conv2d_1x1_s8_{conv}", f"conv2d_s8_{conv}", "depthwise_conv2d_s8_dsp"):
        assert f"mnmcu_{function}" in model_c
    if kernels == "dsp":
        assert "_dsp16_run(" in model_c and "mnmcu_conv2d_1x1_s8_dsp_run(" in model_c
    assert "mnmcu_conv2d_s8_run(" not in model_c
    assert "mnmcu_depthwise_conv2d_s8_run(" not in model_c


@pytest.mark.parametrize("kernels", ["dsp", "helium"])
def test_fast_zoo_every_layer_bit_exact_on_host(kernels: str, tmp_path: Path) -> None:
    """Every layer of the chain equals LiteRT's tensor, over extreme and random inputs
    (the kernels' C forms, which take the layouts and block orders of the Arm ones)."""
    src = tmp_path / "zoo.tflite"
    src.write_bytes(fast_zoo())
    graph = load_graph(src)
    plan = plan_memory(graph, scratch_bytes(graph, kernels), inplace_ops(graph))
    assert check_plan(graph, plan) == []
    c_dir = tmp_path / "c"
    emit_aot(graph, plan, c_dir, "zoo", str(src), kernels=kernels)
    _zoo_kernels_used((c_dir / "mnmcu_model_zoo.c").read_text(), kernels)
    exe = compile_host(c_dir, tmp_path / "zoo", sanitize=True, extra_flags=["-DMNMCU_DUMP_LAYERS"])
    xs = make_inputs(graph.input.shape, 6, seed=9)
    for x, dump in zip(xs, run_host_layers(exe, xs, timeout=RUN_TIMEOUT_S), strict=True):
        ref = litert_tensors(src.read_bytes(), x)
        for op in graph.ops:
            np.testing.assert_array_equal(
                dump[op.index], ref[op.outputs[0]].reshape(-1), err_msg=f"op {op.index}"
            )


def narrow_zoo() -> bytes:
    """Depthwise convolutions over maps one and two columns wide and many rows tall: the
    kernel's blocks of four outputs run past each row (into the next rows, or a buffer)."""
    rng = np.random.default_rng(17)
    m = TinyModel()
    x = m.tensor([1, 13, 1, 8], scale=0.05, zp=-3)
    y, shape = x, [13, 1, 8]
    for k, stride, width in ((3, 1, 1), (3, 2, 1), (5, 1, 1)):
        h, w, c = shape
        oh = _out_size("SAME", h, k, stride, 1)
        fs = rng.uniform(0.002, 0.02, size=c)
        filt = rng.integers(-127, 128, size=(1, k, k, c))
        f = m.tensor(list(filt.shape), scale=fs, data=filt, axis=3)
        b = m.tensor([c], "int32", scale=0.05 * fs, data=rng.integers(-3000, 3000, size=c))
        out = _act_tensor(m, rng, [1, oh, width, c], 0.02, 0.2)
        m.op("DEPTHWISE_CONV_2D", [y, f, b], [out], "DepthwiseConv2DOptions", padding="SAME",
             strideW=stride, strideH=stride, dilationWFactor=1, dilationHFactor=1,
             fusedActivationFunction="NONE", depthMultiplier=1)  # fmt: skip
        y, shape = out, [oh, width, c]
    return m.build([x], [y])


@pytest.mark.parametrize("kernels", ["dsp", "helium"])
def test_depthwise_one_column_wide_stays_in_its_output(kernels: str, tmp_path: Path) -> None:
    """Blocks past a one-column row reach three rows ahead: they must not write past the
    output tensor (under ASan), and every layer equals LiteRT's."""
    src = tmp_path / "narrow.tflite"
    src.write_bytes(narrow_zoo())
    exe, model_c = _host_build(src, tmp_path, kernels)
    graph = load_graph(src)
    assert model_c.count("mnmcu_depthwise_conv2d_s8_dsp_run(") == len(graph.ops) == 3
    xs = make_inputs(graph.input.shape, 6, seed=3)
    np.testing.assert_array_equal(
        run_host(exe, xs, timeout=RUN_TIMEOUT_S), litert_outputs(src.read_bytes(), xs)
    )


@pytest.mark.parametrize("kernels", ["dsp", "helium"])
def test_op_zoo_fast_kernels_bit_exact(kernels: str, tmp_path: Path) -> None:
    src = tmp_path / "conv.tflite"
    src.write_bytes(conv_zoo())
    exe, model_c = _host_build(src, tmp_path, kernels)
    graph = load_graph(src)
    expected_fast = [op.index for op in graph.ops if fast_conv(graph, op, kernels) is not None]
    # 1x1, window and depthwise convolutions (tails of C % 4 included) take fast kernels;
    # grouped ones, dilated depthwise ones and depth multipliers above 1 stay portable.
    conv = "mve" if kernels == "helium" else "dsp"
    for function in ("conv2d_1x1_s8_", "conv2d_s8_"):
        assert f"mnmcu_{function}{conv}" in model_c
    assert "mnmcu_depthwise_conv2d_s8_dsp_run(" in model_c
    assert "mnmcu_conv2d_s8_run(" in model_c and "mnmcu_depthwise_conv2d_s8_run(" in model_c
    fast_calls = sum(model_c.count(f"_{k}_run(") for k in ("dsp", "dsp16", "mve"))
    assert fast_calls == len(expected_fast) >= 6
    xs = make_inputs(graph.input.shape, 10, seed=5)
    got = run_host(exe, xs, timeout=RUN_TIMEOUT_S)
    np.testing.assert_array_equal(got, litert_outputs(src.read_bytes(), xs))


def test_portable_kernel_set_is_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "conv.tflite"
    src.write_bytes(conv_zoo())
    graph = load_graph(src)
    assert scratch_bytes(graph) == {}
    _, model_c = _host_build(src, tmp_path, "portable")
    assert "_dsp_run(" not in model_c and "mnmcu_kernels_fast.h" not in model_c
    assert not (tmp_path / "c" / "mnmcu_conv_dsp.c").exists()


def test_kernel_set_follows_the_core() -> None:
    expected = {
        "qemu-m4": "dsp",
        "qemu-m55": "helium",
        "disco_f407vg": "dsp",
        "esp32s3": "portable",  # Xtensa: its DSP is not Arm's
        "esp32": "portable",
        "host": "portable",
    }
    for board_id, kernels in expected.items():
        cpu = get_board(board_id).cpu
        assert default_kernels(cpu.arch, cpu.dsp, cpu.helium) == kernels, board_id


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenet_fast_kernels_bit_exact_on_host(
    name: str, verify_models: Callable[[str], Path], tmp_path: Path
) -> None:
    src = verify_models(name)
    exe, model_c = _host_build(src, tmp_path, "dsp")
    assert "mnmcu_conv2d_1x1_s8_dsp_run(" in model_c
    assert "mnmcu_depthwise_conv2d_s8_dsp_run(" in model_c
    graph = load_graph(src)
    xs = make_inputs(graph.input.shape, 6, seed=21)
    got = run_host(exe, xs, timeout=RUN_TIMEOUT_S)
    np.testing.assert_array_equal(got, litert_outputs(src.read_bytes(), xs))


# --------------------------------------------------------------------------
# QEMU: the Arm instructions themselves
# --------------------------------------------------------------------------


@pytest.mark.sim
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
def test_fast_requantisation_with_arm_instructions_in_qemu(board_id: str, tmp_path: Path) -> None:
    """The requantisation check of the host test, built for the board's core (SMMULR,
    SMMLAR, SSAT; on the M55 also the Helium lanes) and run bare-metal in QEMU."""
    require_qemu_tools()
    board = get_board(board_id)
    assert board.platformio is not None
    platform = boards_dir() / "platforms" / "mnmcu-qemu"
    spec = json.loads((platform / "boards" / f"{board.platformio.board}.json").read_text())
    aot = data_dir("firmware") / "aot"
    source = tmp_path / "requant.c"
    source.write_text(REQUANT_CHECK)
    elf = tmp_path / "requant.elf"
    startup = platform / "startup"
    run_command(
        ["arm-none-eabi-gcc", *board.cpu.gcc_flags, "-O2", "-std=c99", "-Wall", "-Wextra"]
        + ["-Werror", "-DCHECK_COUNT=1000000", "-DMNMCU_QEMU", "-DMNMCU_SEMIHOSTING_EXIT"]
        + spec["build"]["extra_flags"].split()
        + [f"-I{aot / 'include'}", f"-I{aot / 'src'}", f"-I{startup}", str(source)]
        + [str(startup / "mnmcu_qemu_startup.c"), str(startup / "mnmcu_qemu_syscalls.c")]
        + [f"-L{platform / 'ldscripts'}", f"-T{spec['build']['ldscript']}"]
        + ["--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections"]
        + ["-Wl,--no-warn-rwx-segments", "-o", str(elf)],
        timeout=120,
    )
    machine = board.simulator.qemu_machine
    assert machine is not None
    result = run_command(
        ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none"]
        + ["-serial", "stdio", "-semihosting-config", "enable=on,target=native"]
        + ["-kernel", str(elf)],
        timeout=120,
    )
    text = result.stdout.decode()
    assert "checked=1000000" in text and "mismatches=0" in text, text
    vectors = int(text.split("vectors=")[1].split()[0])
    assert vectors == (999_997 if board.cpu.helium else 0), text


@pytest.fixture(scope="session")
def pio_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fast-pio-core")


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
@pytest.mark.parametrize("name", list(MOBILENETS))
def test_mobilenet_fast_kernels_bit_exact_in_qemu(
    name: str,
    board_id: str,
    verify_models: Callable[[str], Path],
    pio_core: Path,
    tmp_path: Path,
) -> None:
    from mnmcu.build import pio_run
    from mnmcu.emit.project import emit_project
    from mnmcu.sim import run_qemu

    require_qemu_tools()
    board = get_board(board_id)
    src = verify_models(name)
    graph = load_graph(src)
    sample = make_inputs(graph.input.shape, 4, seed=31)[3]
    info = emit_project(src, board, tmp_path / "p", sample=sample, profile=True)
    assert info.kernels == default_kernels(board.cpu.arch, board.cpu.dsp, board.cpu.helium)
    elf = pio_run(info.project_dir, core_dir=pio_core)
    run = run_qemu(board, elf)
    expected = litert_outputs(src.read_bytes(), sample[None])[0].reshape(-1)
    assert run.output == tuple(int(v) for v in expected), run.boot_line
    assert run.ok, run.boot_line
    layers = parse_layer_lines(run.lines)
    assert [layer.index for layer in layers] == [
        op.index for op in graph.ops if op.opcode not in DYNAMIC_SHAPE_OPS
    ]
    assert run.instructions is not None
    assert sum(layer.instructions for layer in layers) <= run.instructions
    assert kernel_code_bytes(elf) > 0


@pytest.mark.sim
@pytest.mark.parametrize("board_id", ["qemu-m4", "qemu-m55"])
def test_fast_zoo_bit_exact_in_qemu(board_id: str, pio_core: Path, tmp_path: Path) -> None:
    """The chain in QEMU with the board's fast kernels, the Arm instructions themselves
    (the assembly blocks of the DSP kernels on the M4, Helium's on the M55)."""
    from mnmcu.build import pio_run
    from mnmcu.emit.project import emit_project
    from mnmcu.sim import run_qemu

    require_qemu_tools()
    board = get_board(board_id)
    src = tmp_path / "zoo.tflite"
    src.write_bytes(fast_zoo())
    graph = load_graph(src)
    sample = make_inputs(graph.input.shape, 4, seed=13)[3]
    info = emit_project(src, board, tmp_path / "p", sample=sample)
    _zoo_kernels_used(
        next((info.project_dir / "src").glob("mnmcu_model_*.c")).read_text(), info.kernels
    )
    run = run_qemu(board, pio_run(info.project_dir, core_dir=pio_core))
    expected = litert_outputs(src.read_bytes(), sample[None])[0].reshape(-1)
    assert run.output == tuple(int(v) for v in expected), run.boot_line
    assert run.ok, run.boot_line
