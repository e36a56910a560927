"""pytest plugin: the same HIL tests against a real board or a simulator.

Registered as the ``pytest11`` entry point ``mnmcu``. Options:

``--mnmcu-board B``     board id; a QEMU board without ``--mnmcu-port`` starts QEMU
``--mnmcu-port URL``    any pyserial URL (``/dev/ttyACM0``, ``socket://...``, a pty)
``--mnmcu-project DIR`` the generated project the device runs (QEMU needs its ELF)
``--mnmcu-baud N``      115200 by default

The ``device`` fixture is a :class:`mnmcu.link.session.DeviceSession` after
the handshake (``device.info``, ``device.infer(data)``, ``device.ping()``),
one per test session. Without a board or port, tests using it are skipped::

    def test_output_is_int8_of_the_right_size(device):
        result = device.infer(bytes(device.info.input_size))
        assert len(result.output) == device.info.output_size
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnmcu.link.session import DEFAULT_BAUD, DeviceSession, open_session


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--mnmcu-*`` options."""
    group = parser.getgroup("mnmcu", "mnmcu hardware-in-the-loop")
    group.addoption("--mnmcu-board", default=None, help="Board id (see 'mnmcu boards').")
    group.addoption("--mnmcu-port", default=None, help="pyserial URL of the device.")
    group.addoption("--mnmcu-project", default=None, help="Project the device runs.")
    group.addoption("--mnmcu-baud", type=int, default=DEFAULT_BAUD, help="Baud rate.")


@contextlib.contextmanager
def _device_url(config: pytest.Config) -> Iterator[str]:
    from mnmcu.boards import get_board
    from mnmcu.emit.project import load_project
    from mnmcu.link.ports import select_port
    from mnmcu.sim import qemu_session

    board_id = config.getoption("--mnmcu-board")
    port = config.getoption("--mnmcu-port")
    project = config.getoption("--mnmcu-project")
    if board_id is None and port is None:
        pytest.skip("no device: pass --mnmcu-board B and/or --mnmcu-port URL")
    board = get_board(board_id) if board_id else None
    if port is None and board is not None and board.simulator.qemu_machine:
        if project is None:
            pytest.fail(f"--mnmcu-board {board.id} without --mnmcu-port needs --mnmcu-project")
        elf = load_project(Path(project)).elf_path
        with qemu_session(board, elf) as url:
            yield url
        return
    yield select_port(board, port)


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> Iterator[DeviceSession]:
    """A protocol session with the device chosen by the ``--mnmcu-*`` options."""
    config = request.config
    with _device_url(config) as url:
        session = open_session(url, config.getoption("--mnmcu-baud"))
        with session:
            yield session
