"""The protocol's C frame decoder under AddressSanitizer and UndefinedBehaviorSanitizer,
driven with 120,000 random, valid and mutated frames (tests/fuzz/mnmcu_proto_fuzz.c)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mnmcu.paths import data_dir

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 120_000


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed: apt-get install gcc")
    proto = data_dir("firmware") / "protocol"
    exe = tmp_path_factory.mktemp("fuzz") / "mnmcu_proto_fuzz"
    cmd = [
        "gcc", "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pedantic",
        "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{proto}",
        str(ROOT / "tests" / "fuzz" / "mnmcu_proto_fuzz.c"), str(proto / "mnmcu_proto.c"),
        "-o", str(exe),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=120)
    return exe


@pytest.mark.parametrize("seed", [1, 2])
def test_c_decoder_survives_random_and_mutated_frames(
    fuzzer: Path, seed: int, record_property: pytest.RecordProperty
) -> None:
    proc = subprocess.run(
        [str(fuzzer), str(ITERATIONS), str(seed)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", proc.stdout)}
    print(f"\nseed {seed}: {proc.stdout.strip()}")
    record_property("counts", proc.stdout.strip())
    assert counts["iterations"] == ITERATIONS and counts["wrong"] == 0
    assert counts["valid_decoded"] + counts["too_long_refused"] == counts["valid"]
    assert counts["too_long_refused"] > 0 and counts["resync_ok"] > 0
    for code in ("err_cobs", "err_too_long", "err_short", "err_length", "err_crc"):
        assert counts[code] > 0, f"no frame was rejected with {code}: {proc.stdout}"
