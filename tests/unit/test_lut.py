"""Element-wise functions of one int8 input as 256-entry tables (mnmcu.qmath).

Each table must equal, on all 256 inputs, the portable C kernel that
implements the reference arithmetic step by step (mnmcu_hard_swish_s8_run,
mnmcu_requantize_s8_run: bit-exact with LiteRT in the AOT tests) for
quantisation parameters across their range; and mnmcu_lut_s8_run must
apply a table as it says. Needs the host's gcc.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from mnmcu.paths import data_dir
from mnmcu.qmath import hard_swish_params, hard_swish_table, requantize_params, requantize_table

from ..conftest import require_tool

AOT = data_dir("firmware") / "aot"
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mnmcu_kernels.h"

/* argv: kind (h = hard swish, r = requantize, l = lut), then its integer parameters;
 * prints the output for the inputs -128..127. */
int main(int argc, char **argv)
{
    int8_t in[256], out[256], table[256];
    int32_t p[16] = {0};
    int i;
    for (i = 0; i < 256; ++i) in[i] = (int8_t)(i - 128);
    for (i = 2; i < argc && i < 18; ++i) p[i - 2] = (int32_t)strtol(argv[i], NULL, 10);
    if (argv[1][0] == 'h') {
        mnmcu_hard_swish_params_t h = {256, p[0], p[1], (int16_t)p[2], (int16_t)p[3], p[4], p[5]};
        if (mnmcu_hard_swish_s8_run(&h, in, out) != MNMCU_OK) return 1;
    } else if (argv[1][0] == 'r') {
        mnmcu_requantize_params_t r = {256, p[0], p[1], p[2], p[3], p[4], p[5]};
        if (mnmcu_requantize_s8_run(&r, in, out) != MNMCU_OK) return 1;
    } else {
        mnmcu_lut_params_t l = {256};
        for (i = 0; i < 256; ++i) table[i] = (int8_t)(255 - i);
        if (mnmcu_lut_s8_run(&l, in, table, in) != MNMCU_OK) return 1; /* in place */
        for (i = 0; i < 256; ++i) out[i] = in[i];
    }
    for (i = 0; i < 256; ++i) printf("%d\n", out[i]);
    return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("gcc", "apt-get install gcc", "MNMCU_REQUIRE_GCC")
    root = tmp_path_factory.mktemp("lut")
    (root / "main.c").write_text(HARNESS)
    exe = root / "lut"
    command = [
        "gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
        f"-I{AOT / 'include'}", f"-I{AOT / 'src'}", str(root / "main.c"),
        str(AOT / "src" / "mnmcu_elementwise.c"), str(AOT / "src" / "mnmcu_common.c"),
        "-o", str(exe),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def run(exe: Path, kind: str, *params: int) -> np.ndarray:
    result = subprocess.run(
        [str(exe), kind, *map(str, params)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return np.array(result.stdout.split(), dtype=np.int64).astype(np.int8)


def quant_cases(count: int, seed: int) -> list[tuple[float, int, float, int]]:
    rng = np.random.default_rng(seed)
    cases = [(0.02, -128, 0.02, -128), (0.1, 0, 0.05, 10), (1.0 / 256, -128, 6.0 / 255, -128)]
    for _ in range(count):
        cases.append(
            (
                float(10 ** rng.uniform(-3, 0)),
                int(rng.integers(-128, 128)),
                float(10 ** rng.uniform(-3, 0)),
                int(rng.integers(-128, 128)),
            )
        )
    return cases


@pytest.mark.parametrize("case", quant_cases(60, 1))
def test_hard_swish_table_equals_the_reference_kernel(
    harness: Path, case: tuple[float, int, float, int]
) -> None:
    si, zi, so, zo = case
    try:
        om, oe, rm, re_ = hard_swish_params(si, so)
    except Exception:
        pytest.skip("TFLite refuses this scale pair too")
    expected = run(harness, "h", zi, zo, om, rm, oe, re_)
    assert np.array_equal(hard_swish_table(si, zi, so, zo), expected)


@pytest.mark.parametrize("opcode", ["QUANTIZE", "RELU", "RELU6"])
@pytest.mark.parametrize("case", quant_cases(20, 2))
def test_requantize_table_equals_the_reference_kernel(
    harness: Path, opcode: str, case: tuple[float, int, float, int]
) -> None:
    si, zi, so, zo = case
    multiplier, shift, act_min, act_max = requantize_params(opcode, si, so, zo)
    expected = run(harness, "r", -zi, zo, multiplier, shift, act_min, act_max)
    assert np.array_equal(requantize_table(opcode, si, zi, so, zo), expected)


def test_lut_kernel_applies_its_table_in_place(harness: Path) -> None:
    # table[i] = 255 - i, so input x (index x + 128) maps to 127 - x.
    expected = (127 - np.arange(-128, 128)).astype(np.int8)
    assert np.array_equal(run(harness, "l"), expected)
