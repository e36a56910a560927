"""``mnmcu hil --data DIR`` on an image folder of ten classes, over QEMU.

The held-out split is sorted by class; the inputs must be a seeded draw that
covers every class, and the run reports the device's top-1 against the true
labels (per class and overall) beside the host's int8 top-1 on the same
images, on screen and in report.json. The model is untrained (the test is
about what is sent and reported, not about accuracy), 32x32 grayscale so that
the inputs cross QEMU's UART quickly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..conftest import require_qemu_tools, run_mnmcu
from ..imagesets import write_digits

pytestmark = [pytest.mark.sim, pytest.mark.slow]

CLASSES = 10
COUNT = 30  # all -128, all 127 and 28 images: at least two of each class


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require_qemu_tools()
    root = tmp_path_factory.mktemp("hil_digits")
    data = write_digits(root / "digits", per_class=15, size=32, digits=CLASSES)
    out = root / "build"
    result = run_mnmcu(
        "build",
        "--board",
        "qemu-m4",
        "--alpha",
        "0.25",
        "--resolution",
        "32",
        "--grayscale",
        "--data",
        str(data),
        "--no-train",
        "--representative",
        "20",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return data, out


def test_hil_on_an_image_folder_covers_every_class_and_reports_accuracy(
    digits_build: tuple[Path, Path], tmp_path: Path
) -> None:
    data, out = digits_build
    report = tmp_path / "hil" / "report.json"
    args = ["hil", "--board", "qemu-m4", "--project", str(out / "firmware")]
    result = run_mnmcu(*args, "--data", str(data), "--count", str(COUNT), "--report", str(report))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    saved = json.loads(report.read_text())
    labels = [s["label"] for s in saved["samples"]]
    assert labels[:2] == [None, None]  # all -128 and all 127 carry no label
    drawn = labels[2:]
    assert len(drawn) == COUNT - 2
    assert {drawn.count(c) for c in range(CLASSES)} <= {2, 3}  # every class, equal shares
    assert saved["class_names"] == [str(c) for c in range(CLASSES)]

    acc = saved["accuracy"]
    assert acc["images"] == COUNT - 2
    assert [row["name"] for row in acc["per_class"]] == [str(c) for c in range(CLASSES)]
    samples = [s for s in saved["samples"] if s["label"] is not None]
    device = sum(s["top1_device"] == s["label"] for s in samples)
    host = sum(s["top1_reference"] == s["label"] for s in samples)
    assert (acc["device_correct"], acc["host_int8_correct"]) == (device, host)
    assert acc["device_matches_host"] == COUNT - 2  # bit-exact outputs, same top-1
    assert sum(row["images"] for row in acc["per_class"]) == COUNT - 2
    assert saved["bit_exact"] == COUNT

    lines = result.stdout.splitlines()
    image_lines = [line for line in lines if line.startswith("input ")]
    assert len(image_lines) == COUNT - 2
    assert all(" label " in line and " host int8 " in line for line in image_lines)
    summary = next(line for line in lines if line.startswith("top-1 against the labels"))
    assert f"device {device}/{COUNT - 2}" in summary and f"host int8 {host}/{COUNT - 2}" in summary
    table = lines[lines.index(summary) + 1 :]
    assert table[0].split() == ["class", "images", "device", "top-1", "host", "int8", "top-1"]
    assert [row.split()[0] for row in table[1 : 1 + CLASSES]] == [str(c) for c in range(CLASSES)]

    # another seed draws other images, still covering every class
    again = tmp_path / "again" / "report.json"
    result = run_mnmcu(
        *args, "--data", str(data), "--count", "12", "--seed", "7", "--report", str(again)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    other = [s["label"] for s in json.loads(again.read_text())["samples"]][2:]
    assert sorted(other) == sorted(set(range(CLASSES)))
