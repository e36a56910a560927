"""C literal helpers and the generation-time requantisation arithmetic.

Expected multipliers are derived by hand from the definition
real = multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from mnmcu import __version__
from mnmcu.emit import cgen
from mnmcu.emit.aot import (
    activation_range,
    add_params,
    double_parts,
    mean_multiplier,
    padding,
    quantize_multiplier,
    softmax_params,
)

# --------------------------------------------------------------------------
# Identifiers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", ["int", "static", "default", "restrict", "class", "bool", "alignas", "NULL"]
)
def test_keywords_get_a_suffix(word: str) -> None:
    assert cgen.c_identifier(word) == word + "_"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vww", "vww"),
        ("my-model v2.tflite", "my_model_v2_tflite"),
        ("3x3", "m_3x3"),
        ("__reserved", "reserved"),
        ("_Bool", "Bool"),  # leading underscores are reserved; dropped
        ("a//b;;c", "a_b_c"),
        ("", "m"),
        ("Ünïcode", "n_code"),
    ],
)
def test_identifiers_are_valid_c(text: str, expected: str) -> None:
    name = cgen.c_identifier(text)
    assert name == expected
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name)


def test_identifier_prefix_for_leading_digit() -> None:
    assert cgen.c_identifier("96", prefix="t") == "t96"


# --------------------------------------------------------------------------
# Arrays and numbers
# --------------------------------------------------------------------------


def test_array_layout() -> None:
    text = cgen.c_array("w", np.array([[1, -2], [3, 127]], dtype=np.int8), "int8_t", "weights")
    assert text == (
        "/* weights */\n"
        "enum { w_size = 4 };\n"
        "MNMCU_ALIGN(16) static const int8_t w[4] = {\n"
        "    1, -2, 3, 127\n"
        "};\n"
    )


def test_array_wraps_lines_and_is_deterministic() -> None:
    values = np.arange(-128, 128, dtype=np.int8)
    first = cgen.c_array("big", values, "int8_t")
    assert first == cgen.c_array("big", values.copy(), "int8_t")
    body = first.split("{\n", 1)[1].rsplit("\n};", 1)[0]
    assert all(len(line) <= cgen.LINE_WIDTH for line in body.splitlines())
    numbers = [int(v) for v in re.findall(r"-?\d+", body)]
    assert numbers == list(range(-128, 128))


def test_array_int32_min_and_int64() -> None:
    text = cgen.c_array("b", [-(2**31), 2**31 - 1], "int32_t")
    assert "(-2147483647 - 1), 2147483647" in text
    assert "INT64_C(9007199254740991)" in cgen.c_array("m", [2**53 - 1], "int64_t")


@pytest.mark.parametrize(
    ("name", "values", "ctype"),
    [("x", [128], "int8_t"), ("x", [-1], "uint8_t"), ("int", [1], "int8_t"), ("x", [], "int8_t")],
)
def test_array_rejects_bad_input(name: str, values: list[int], ctype: str) -> None:
    with pytest.raises(ValueError):
        cgen.c_array(name, np.array(values, dtype=np.int64), ctype)


def test_float_literal_round_trips_float32() -> None:
    for v in (0.0078431377, 1 / 256, 1.0, 3e-9, 123456.7):
        lit = cgen.c_float(v)
        assert lit.endswith("f")
        assert np.float32(float(lit[:-1])) == np.float32(v)
    assert cgen.c_float(1.0) == "1.0f"


def test_string_and_comment_escaping() -> None:
    assert cgen.c_string('a"b\\c') == '"a\\"b\\\\c"'
    assert "*/" not in cgen.c_comment("evil */ name /* here")


def test_banner() -> None:
    text = cgen.banner("m.c", "vww.tflite", "ab" * 32, "The model.")
    assert text.startswith("/*\n") and text.endswith(" */\n")
    assert f"mnmcu {__version__}" in text and "vww.tflite" in text and "ab" * 32 in text
    assert "Do not edit" in text


# --------------------------------------------------------------------------
# QuantizeMultiplier and friends
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("real", "expected"),
    [
        (0.5, (1 << 30, 0)),  # 0.5 = 2^30 * 2^(0 - 31)
        (0.25, (1 << 30, -1)),
        (1.0, (1 << 30, 1)),
        (0.75, (3 << 29, 0)),
        (2.0**-32, (1 << 30, -31)),
        (1 / 3, (1431655765, -1)),  # 2^31 * 2/3 = 1431655765.33
        (1 - 2.0**-40, (1 << 30, 1)),  # mantissa rounds to 2^31: halved, shift + 1
        (2.0**-40, (0, 0)),  # shift below -31 flushes to zero
        (0.0, (0, 0)),
        (1000.0, (2097152000, 10)),  # 1000 = (125/128) * 2^10, 125 * 2^24
    ],
)
def test_quantize_multiplier(real: float, expected: tuple[int, int]) -> None:
    assert quantize_multiplier(real) == expected


def test_quantize_multiplier_is_close() -> None:
    rng = np.random.default_rng(0)
    for real in np.exp(rng.uniform(-20, 5, size=500)):
        m, s = quantize_multiplier(float(real))
        assert 1 << 30 <= m < 1 << 31
        assert abs(m * 2.0 ** (s - 31) - real) <= 2.0 ** (s - 32)


def test_double_parts_are_exact() -> None:
    for real in (1.0, 0.1, 7.84313680668447e-09 * 0.2374 / 0.0157, 2.0**-60):
        mantissa, exponent = double_parts(real)
        assert mantissa < 2**53 and math.ldexp(mantissa, exponent) == real


def test_activation_ranges() -> None:
    assert activation_range("NONE", 0.1, -10) == (-128, 127)
    assert activation_range("RELU", 0.1, -10) == (-10, 127)
    assert activation_range("RELU6", 0.1, -10) == (-10, 50)  # 6 / 0.1 = 60 steps
    assert activation_range("RELU6", 6 / 255, -128) == (-128, 127)
    assert activation_range("RELU_N1_TO_1", 0.01, 0) == (-100, 100)


def test_softmax_params_power_of_two_scale() -> None:
    # beta * scale * 2^26 = 2^-4 * 2^26 = 2^22 = 2^30 * 2^(23 - 31);
    # radius = floor(31 * 2^26 / 2^23) = 248.
    assert softmax_params(1.0, 2.0**-4) == (1 << 30, 23, -248)


def test_mean_folds_the_element_count() -> None:
    # scale ratio 1 -> (2^30, 1); 9 elements: shift 3, (2^30 << 3) // 9.
    assert mean_multiplier(0.5, 0.5, 9) == ((2**30 << 3) // 9, 1 - 3)


def test_add_params_left_shift_20() -> None:
    p = add_params(0.5, 0.25, 0.5)
    assert p["left_shift"] == 20
    assert (p["input1_multiplier"], p["input1_shift"]) == (1 << 30, 0)  # 0.5 / 1.0
    assert (p["input2_multiplier"], p["input2_shift"]) == (1 << 30, -1)  # 0.25 / 1.0
    assert (p["output_multiplier"], p["output_shift"]) == (1 << 30, -18)  # 1 / (2^20 * 0.5)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "out", "expected"),
    [(96, 3, 2, 1, 48, 0), (97, 3, 2, 1, 49, 1), (11, 3, 1, 2, 11, 2), (11, 3, 1, 2, 7, 0)],
)
def test_padding(
    size: int, kernel: int, stride: int, dilation: int, out: int, expected: int
) -> None:
    assert padding(size, kernel, stride, dilation, out) == expected
