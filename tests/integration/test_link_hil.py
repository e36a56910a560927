"""The serial protocol end to end: ``mnmcu hil`` against the firmware in QEMU
(socket://), against the firmware built for the host on a pseudo-terminal,
and through a proxy that damages the link.

The model is the VWW shape (MobileNetV1 0.25, 96x96x3, 2 classes), converted
untrained. Needs ``arm-none-eabi-gcc`` and ``qemu-system-arm`` (skipped with
the install command otherwise, a failure with ``MNMCU_REQUIRE_QEMU=1``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from mnmcu.bench import convert_untrained
from mnmcu.boards import get_board
from mnmcu.build import pio_run
from mnmcu.emit.project import ProjectInfo, emit_project
from mnmcu.errors import InvalidValue
from mnmcu.hil import load_target, run_hil
from mnmcu.link.hostfw import compile_host_firmware
from mnmcu.link.session import DeviceTimeout, LinkLost, open_session
from mnmcu.model.spec import ModelSpec
from mnmcu.reference import expected_outputs
from mnmcu.sim.qemu import qemu_session
from mnmcu.verify import make_inputs

from ..conftest import require_qemu_tools
from .faultproxy import FaultProxy, Faults

pytestmark = [pytest.mark.sim]

VWW = ModelSpec(arch="v1", alpha=0.25, resolution=96, classes=2)
TOOLCHAIN = Path(__file__).resolve().parents[2] / "toolchain"
HIL_TIMEOUT_S = 400


@pytest.fixture(autouse=True)
def _toolchain() -> None:
    require_qemu_tools()


@pytest.fixture(scope="module")
def vww(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProjectInfo, Path, Path]:
    """(project, model, firmware ELF) for qemu-m4, built with per-layer profiling."""
    root = tmp_path_factory.mktemp("hil")
    model = root / "vww.tflite"
    model.write_bytes(convert_untrained(VWW))
    info = emit_project(model, get_board("qemu-m4"), root / "firmware")
    saved = os.environ.get("PLATFORMIO_BUILD_FLAGS")
    os.environ["PLATFORMIO_BUILD_FLAGS"] = "-DMNMCU_PROFILE"
    try:
        elf = pio_run(info.project_dir, core_dir=root / "pio-core")
    finally:
        if saved is None:
            del os.environ["PLATFORMIO_BUILD_FLAGS"]
        else:
            os.environ["PLATFORMIO_BUILD_FLAGS"] = saved
    return info, model, elf


def mnmcu(*args: str | Path, timeout: float = HIL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would."""
    env = {**os.environ, "PYTHONPATH": str(TOOLCHAIN)}
    return subprocess.run(
        [sys.executable, "-m", "mnmcu", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def check_reports(report: Path, count: int) -> dict[str, object]:
    data = json.loads(report.read_text())
    assert data["count"] == count and data["bit_exact"] == count, data["mismatches"]
    assert data["top1_agreement"] == 1.0
    junit = ElementTree.parse(report.with_suffix(".junit.xml")).getroot()
    assert junit.get("tests") == str(count) and junit.get("failures") == "0"
    lines = report.with_suffix(".jsonl").read_text().splitlines()
    assert len(lines) == count and all(json.loads(line)["bit_exact"] for line in lines)
    return data


def test_hil_qemu_50_inputs_bit_exact(
    vww: tuple[ProjectInfo, Path, Path], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    info, model, _ = vww
    report = tmp_path / "hil" / "report.json"
    started = time.monotonic()
    proc = mnmcu(
        "hil", "--board", "qemu-m4", "--project", info.project_dir, "--model", model,
        "--count", "50", "--profile", "--report", report,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    print(out)
    assert "50/50 outputs bit-exact" in out
    assert "latency (instructions): min" in out and "latency (us)" not in out
    assert "guest instruction counts, not microseconds" in out
    assert "CONV_2D" in out and "DEPTHWISE_CONV_2D" in out  # the per-layer table
    data = check_reports(report, 50)
    latency = data["latency"]
    assert isinstance(latency, dict)
    assert latency["micros"] is None and latency["instructions"]["min"] > 1e6
    device = data["device"]
    assert isinstance(device, dict) and device["model_sha256"] == info.model_sha256
    assert device["input_shape"] == [1, 96, 96, 3] and device["arena_bytes"] == info.arena_bytes
    record_property("hil_seconds", round(time.monotonic() - started, 1))
    record_property("instructions", latency["instructions"])


@pytest.fixture(scope="module")
def host_firmware(
    vww: tuple[ProjectInfo, Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    info, _, _ = vww
    return compile_host_firmware(
        info.project_dir, tmp_path_factory.mktemp("hostfw") / "firmware", profile=True
    )


@pytest.fixture()
def pty_device(host_firmware: Path) -> Iterator[str]:
    """The host build of the firmware on one end of a pty; yields the other end's path."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no newline translation until the host opens it
    process = subprocess.Popen([host_firmware], stdin=master, stdout=master)
    os.close(master)
    try:
        yield os.ttyname(slave)
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.close(slave)


def test_hil_over_a_pty_with_the_host_build(
    vww: tuple[ProjectInfo, Path, Path], pty_device: str, tmp_path: Path
) -> None:
    info, model, _ = vww
    report = tmp_path / "report.json"
    proc = mnmcu(
        "hil", "--port", pty_device, "--project", info.project_dir, "--model", model,
        "--count", "50", "--report", report,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "50/50 outputs bit-exact" in proc.stdout
    assert "latency (us): min" in proc.stdout and "instructions" not in proc.stdout
    check_reports(report, 50)


def test_monitor_shows_the_boot_line_and_decodes_frames(pty_device: str) -> None:
    from mnmcu.link.monitor import monitor

    lines: list[str] = []
    monitor(pty_device, 115200, lines.append, duration=3.0)
    assert any(line.startswith("mnmcu: board=qemu-m4 ") for line in lines), lines
    assert any(line.startswith("[frame INFO_RESP seq=0 len=") for line in lines), lines


def test_hil_against_another_model_names_both_hashes(
    vww: tuple[ProjectInfo, Path, Path], pty_device: str, tmp_path: Path
) -> None:
    info, model, _ = vww
    other = tmp_path / "other.tflite"
    other.write_bytes(model.read_bytes() + b"\0" * 16)  # same graph, another file
    other_sha = load_target(model=other).model_sha256
    report = tmp_path / "mismatch" / "report.json"
    proc = mnmcu("hil", "--port", pty_device, "--model", other, "--count", "1", "--report", report)
    assert proc.returncode == 1
    assert info.model_sha256[:12] in proc.stderr and other_sha[:12] in proc.stderr
    assert "another model" in proc.stderr and "Traceback" not in proc.stderr
    assert not report.parent.exists(), "no report for a device that runs another model"


def test_hil_arithmetic_must_be_the_projects(vww: tuple[ProjectInfo, Path, Path]) -> None:
    info, model, _ = vww
    assert load_target(info.project_dir, model).arithmetic == info.arithmetic == "tflm"
    assert load_target(model=model, arithmetic="litert").arithmetic == "litert"
    with pytest.raises(InvalidValue, match="generated with --arithmetic tflm, not litert"):
        load_target(info.project_dir, model, "litert")


def _inputs(model: Path, count: int) -> np.ndarray:
    from mnmcu.graph import load_graph

    inputs, _ = make_inputs(load_graph(model), count, seed=7)
    return inputs


# Per byte, in both directions. At 27.7 KB per VWW input that is about 2
# faults of each kind per inference.
NOISY = Faults(flip=5e-5, drop=5e-5, dup=5e-5, garbage=5e-5, seed=11)


def test_noisy_link_still_gives_exact_outputs(
    vww: tuple[ProjectInfo, Path, Path], record_property: pytest.RecordProperty
) -> None:
    info, model, elf = vww
    target = load_target(info.project_dir, model)
    inputs = _inputs(model, 3)
    with qemu_session(get_board("qemu-m4"), elf) as url:
        proxy = FaultProxy(_address(url), NOISY)
        started = time.monotonic()
        with open_session(proxy.url, response_timeout=1.0, handshake_timeout=30) as session:
            report = run_hil(session, target, inputs)
        seconds = time.monotonic() - started
        proxy.close()
    assert report.failure is None, report.error
    expected = expected_outputs(model.read_bytes(), inputs, target.arithmetic)
    expected = expected.reshape(len(inputs), -1)
    assert [s.output for s in report.samples] == [tuple(int(v) for v in e) for e in expected]
    assert all(s.bit_exact for s in report.samples)
    injected = sum(proxy.counts[k] for k in ("flip", "drop", "dup", "garbage"))
    assert injected >= 4, proxy.counts
    assert report.link["retransmissions"] > 0, report.link
    assert seconds < 120
    record_property("faults", json.dumps(proxy.counts))
    record_property("link", json.dumps(report.link))
    print(f"\nnoisy link: faults {proxy.counts}, recovery {report.link}, {seconds:.1f} s")


def test_link_cut_mid_frame_is_a_clear_error_in_bounded_time(
    vww: tuple[ProjectInfo, Path, Path],
) -> None:
    info, model, elf = vww
    target = load_target(info.project_dir, model)
    with qemu_session(get_board("qemu-m4"), elf) as url:
        proxy = FaultProxy(_address(url), Faults(cut_after=10_000))  # inside the first input
        started = time.monotonic()
        with open_session(proxy.url, response_timeout=1.0, handshake_timeout=30) as session:
            report = run_hil(session, target, _inputs(model, 2))
        seconds = time.monotonic() - started
    assert isinstance(report.failure, LinkLost), report.error
    assert "closed" in str(report.failure) and not report.samples
    assert proxy.counts["cut"] == 1 and seconds < 30


def test_silent_device_times_out_after_bounded_retries(
    vww: tuple[ProjectInfo, Path, Path],
) -> None:
    _, _, elf = vww
    with qemu_session(get_board("qemu-m4"), elf) as url:
        proxy = FaultProxy(_address(url), Faults(drop=1.0))  # nothing gets through
        started = time.monotonic()
        with pytest.raises(DeviceTimeout) as error:
            open_session(proxy.url, response_timeout=0.5, handshake_timeout=3)
        seconds = time.monotonic() - started
        proxy.close()
    assert "no handshake" in str(error.value) and seconds < 10


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    return host, int(port)


USER_TEST = """
import numpy as np


def test_zero_input_runs(device):
    info = device.info
    result = device.infer(bytes(info.input_size))
    assert len(result.output) == info.output_size
    assert result.ticks > 0


def test_ping(device):
    assert device.ping() < 5
"""


def test_pytest_plugin_gives_a_device_fixture(
    vww: tuple[ProjectInfo, Path, Path], pty_device: str, tmp_path: Path
) -> None:
    info, _, _ = vww
    (tmp_path / "test_user_hil.py").write_text(USER_TEST)
    # Only the plugin named here: the same module may also be installed as the
    # package's pytest11 entry point, and pytest refuses to register it twice.
    env = {**os.environ, "PYTHONPATH": str(TOOLCHAIN), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    base = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "mnmcu.pytest_plugin",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    base += ["--rootdir", str(tmp_path), str(tmp_path / "test_user_hil.py")]
    run = subprocess.run(
        [*base, "--mnmcu-port", pty_device, "--mnmcu-project", str(info.project_dir)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout[-2000:]
    skipped = subprocess.run(
        base, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert "2 skipped" in skipped.stdout, skipped.stdout[-2000:]


def test_device_answers_bad_requests_with_error_frames(pty_device: str) -> None:
    from mnmcu.link.protocol import ErrorCode, FrameType, encode_frame, infer_payload
    from mnmcu.link.session import DeviceError

    with open_session(pty_device, handshake_timeout=30) as session:
        info = session.info
        assert info is not None and info.protocol_version == 1 and info.profiling
        assert session.ping(b"\x00\xff" * 100) < 5
        cases = [
            (FrameType.INFER, infer_payload(0x12345678, False), ErrorCode.INPUT_CRC),
            (FrameType.INPUT, (info.input_size).to_bytes(4, "little") + b"x", ErrorCode.ARGUMENT),
            (FrameType.INFER, b"\x01", ErrorCode.ARGUMENT),
            (0x42, b"", ErrorCode.TYPE),
        ]
        for type_, payload, code in cases:
            with pytest.raises(DeviceError) as error:
                session.request(type_, payload, FrameType.RESULT)
            assert error.value.error is not None and error.value.error.code == code
        # A frame with a bad CRC gets a framing ERROR frame (seq 0), then the link goes on.
        wire = bytearray(encode_frame(FrameType.PING, 9, b"abc"))
        wire[3] ^= 0x10
        session.port.write(bytes(wire))
        frame = session._next_frame(time.monotonic() + 5, "ERROR")
        assert frame is not None and frame.type == FrameType.ERROR and frame.payload[0] == 0xFB
        data = bytes(range(256)) * (info.input_size // 256) + bytes(info.input_size % 256)
        result = session.infer(data)
        assert len(result.output) == info.output_size and len(result.layers) == 30
