"""Model specification: alpha, rho and resolution rules."""

from __future__ import annotations

import pytest

from mnmcu.errors import InvalidValue
from mnmcu.model.spec import ModelSpec, check_alpha, parse_float, resolution_from


@pytest.mark.parametrize(
    ("rho", "expected"),
    # round(224 * rho), the MobileNet paper's resolution multiplier
    [(1.0, 224), (0.857, 192), (0.714, 160), (0.571, 128), (0.4286, 96), (0.25, 56)],
)
def test_resolution_from_rho(rho: float, expected: int) -> None:
    assert resolution_from(rho, None) == expected


def test_explicit_resolution_and_default() -> None:
    assert resolution_from(None, 97) == 97
    assert resolution_from(None, None) == 224


@pytest.mark.parametrize("rho", [0, -0.5, 1.5, 0.1])
def test_bad_rho(rho: float) -> None:
    with pytest.raises(InvalidValue, match=f"rho {rho:g}"):
        resolution_from(rho, None)


@pytest.mark.parametrize("resolution", [8, 31, 5000])
def test_bad_resolution(resolution: int) -> None:
    with pytest.raises(InvalidValue, match=f"resolution {resolution} .*32 to 1024"):
        resolution_from(None, resolution)


def test_rho_and_resolution_together() -> None:
    with pytest.raises(InvalidValue, match="give one of"):
        resolution_from(0.5, 96)


@pytest.mark.parametrize("alpha", [0.0, -1.0, 2.0, 1.41])
def test_bad_alpha(alpha: float) -> None:
    with pytest.raises(InvalidValue, match=r"\(0, 1.4\]"):
        check_alpha(alpha)


def test_alpha_too_thin_for_v1() -> None:
    # v1's first layer has int(32 * alpha) channels
    with pytest.raises(InvalidValue, match="0 channels"):
        check_alpha(0.03, "v1")
    assert check_alpha(0.03, "v2") == 0.03


def test_alpha_not_a_number() -> None:
    with pytest.raises(InvalidValue, match="'abc' is not a number"):
        parse_float("alpha", "abc")
    with pytest.raises(InvalidValue, match="not a finite number"):
        parse_float("alpha", "nan")


def test_spec_checks() -> None:
    with pytest.raises(InvalidValue, match="classes 1"):
        ModelSpec(classes=1)
    with pytest.raises(InvalidValue, match="arch 'v4'"):
        ModelSpec(arch="v4")
    with pytest.raises(InvalidValue, match="no ImageNet weights for v1 alpha 0.3"):
        ModelSpec(alpha=0.3, pretrained="imagenet")
    with pytest.raises(InvalidValue, match="3-channel"):
        ModelSpec(alpha=0.25, channels=1, pretrained="imagenet")


def test_spec_roundtrip(tmp_path) -> None:
    spec = ModelSpec(arch="v3-small", alpha=0.6, resolution=77, classes=5, channels=1)
    spec.save(tmp_path / "m.json")
    assert ModelSpec.load(tmp_path / "m.json") == spec
    assert spec.name == "mobilenet_v3_small_a0.6_77_gray"
