"""Logging and progress reporting for library code.

Library functions never print. They log through :data:`logger` and report
long-running work through a :class:`Progress` object that the caller passes
in; the CLI supplies one that draws progress bars, scripts can pass none.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Protocol

logger = logging.getLogger("mnmcu")


class Progress(Protocol):
    """Receives progress of one long task at a time."""

    def start(self, description: str, total: int | None) -> None:
        """A task begins; ``total`` steps, or None when unknown."""

    def advance(self, steps: int = 1, status: str = "") -> None:
        """``steps`` more steps are done; ``status`` is a short live summary."""

    def finish(self) -> None:
        """The current task has ended."""


class NullProgress:
    """A :class:`Progress` that shows nothing."""

    def start(self, description: str, total: int | None) -> None:
        logger.debug("%s (%s steps)", description, total)

    def advance(self, steps: int = 1, status: str = "") -> None:
        pass

    def finish(self) -> None:
        pass


class Captured:
    """What a :func:`captured_output` block wrote; ``text`` is set when the block ends."""

    text = ""


@contextlib.contextmanager
def captured_output(what: str) -> Iterator[Captured]:
    """Run a block with the process's stdout/stderr file descriptors captured.

    TensorFlow, its converter and the TFLite runtimes write straight to file
    descriptors 1 and 2; this keeps that noise off the user's terminal, logs
    it at debug level and hands it to the caller as ``Captured.text``.
    """
    captured = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")
            if captured.text.strip():
                logger.debug("output of %s:\n%s", what, captured.text.rstrip())
