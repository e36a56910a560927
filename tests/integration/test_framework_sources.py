"""The framework-source helpers themselves, on made-up folders (no vendor sources, fast).

Without its variable a framework-source test skips naming the variable and what
to put in it; with a wrong folder it fails naming what is missing; TFLM's
third-party headers are found where the header is, not where a folder of the
same name is (a tflite-micro checkout's ``third_party/ruy`` is a Bazel stub).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .framework_sources import (
    ARDUINO_MBED,
    ESP_IDF,
    STM32CUBE,
    TFLM,
    TFLM_DOWNLOADS,
    SourceTree,
    tflm_include_dirs,
)

HEADERS = {
    "flatbuffers": "include/flatbuffers/flatbuffers.h",
    "gemmlowp": "fixedpoint/fixedpoint.h",
    "ruy": "ruy/profiler/instrumentation.h",
}


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


@pytest.mark.parametrize("tree", [STM32CUBE, TFLM, ARDUINO_MBED, ESP_IDF], ids=lambda t: t.variable)
def test_unset_variable_skips_naming_it_and_its_contents(
    tree: SourceTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tree.variable, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        tree.locate()
    assert str(skipped.value) == f"{tree.variable} is not set: set it to {tree.contents}"


def test_a_folder_without_the_layout_fails_naming_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TFLM.variable, str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as failed:
        TFLM.locate()
    message = str(failed.value)
    assert message.startswith(f"{TFLM.variable}={tmp_path} lacks ")
    assert f"{TFLM_DOWNLOADS}/ruy/ruy/profiler/instrumentation.h" in message


def test_tflite_micro_checkout_headers_come_from_its_downloads(tmp_path: Path) -> None:
    # A tflite-micro checkout: third_party/<name> are Bazel stubs (a BUILD file only).
    for name, header in HEADERS.items():
        touch(tmp_path / "third_party" / name / "BUILD")
        touch(tmp_path / TFLM_DOWNLOADS / name / header)
    downloads = tmp_path / TFLM_DOWNLOADS
    assert tflm_include_dirs(tmp_path) == [
        tmp_path,
        downloads / "flatbuffers" / "include",
        downloads / "gemmlowp",
        downloads / "ruy",
    ]


def test_esp_tflite_micro_headers_come_from_third_party(tmp_path: Path) -> None:
    for name, header in HEADERS.items():
        touch(tmp_path / "third_party" / name / header)
    third = tmp_path / "third_party"
    assert tflm_include_dirs(tmp_path)[1:] == [
        third / "flatbuffers" / "include",
        third / "gemmlowp",
        third / "ruy",
    ]


def test_missing_header_fails_naming_it(tmp_path: Path) -> None:
    touch(tmp_path / "third_party" / "ruy" / "BUILD")
    with pytest.raises(pytest.fail.Exception, match="flatbuffers/flatbuffers.h"):
        tflm_include_dirs(tmp_path)


def test_the_arm_cxx_library_is_installed_and_documented() -> None:
    # Debian's gcc-arm-none-eabi has no C++ standard headers; every TFLM build needs them.
    import re

    root = Path(__file__).resolve().parents[2]
    script = (root / "scripts" / "install-system-packages.sh").read_text()
    (packages,) = re.findall(r'^PACKAGES="([^"]*)"$', script, re.M)
    assert "libstdc++-arm-none-eabi-newlib" in packages.split()
    readme = " ".join((root / "README.md").read_text().split())
    assert "`libstdc++-arm-none-eabi-newlib`" in readme
