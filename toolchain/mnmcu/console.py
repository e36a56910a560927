"""Terminal output for the CLI: one channel, verbosity levels, progress bars.

Results (tables, JSON) go to stdout; messages, warnings, errors and
progress bars go to stderr, so ``mnmcu analyze --json > a.json`` stays clean.
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mnmcu.log import logger

# Piped output (a file, a CI log) gets room for the widest table instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class _Handler(logging.Handler):
    # soft_wrap: a message stays one line in a log (the terminal still wraps it on screen)
    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.ERROR:
            err.print(f"[bold red]error:[/] {msg}", highlight=False, markup=True, soft_wrap=True)
        elif record.levelno >= logging.WARNING:
            err.print(f"[yellow]warning:[/] {_escape(msg)}", highlight=False, soft_wrap=True)
        else:
            err.print(_escape(msg), highlight=False, markup=False, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def setup_logging(verbosity: int) -> None:
    """-q: warnings and errors; default: info; -v and more: debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    logger.handlers[:] = [_Handler()]
    logger.setLevel(level)
    logger.propagate = False


class BarProgress:
    """A :class:`mnmcu.log.Progress` drawn as a rich progress bar on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        self._enabled = enabled and err.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._description = ""
        self._done = 0
        self._total: int | None = None
        self._status = ""

    def start(self, description: str, total: int | None) -> None:
        self.finish()
        self._description, self._total, self._done, self._status = description, total, 0, ""
        if self._enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[status]}"),
                console=err,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(description, total=total, status="")
        else:
            logger.info("%s...", description)

    def advance(self, steps: int = 1, status: str = "") -> None:
        self._done += steps
        if status:
            self._status = status
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=steps, status=status)
        elif status:
            logger.info("  %s", status)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
