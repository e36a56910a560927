"""One error family for everything a user can get wrong or the world can refuse.

Every message says what failed, with the offending value, and what to try.
The CLI prints ``error: <message>`` on one line and exits with ``exit_code``;
tracebacks are shown only with ``-vv``.
"""

from __future__ import annotations


class MnmcuError(Exception):
    """Base class: a failure the user can act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class InvalidValue(MnmcuError):
    """A flag or parameter value outside what is allowed."""

    exit_code = 2


class BoardNotFound(MnmcuError):
    """No board definition with that id."""

    exit_code = 2


class BoardFileError(MnmcuError):
    """A board data file that does not match the schema."""


class DataError(MnmcuError):
    """A dataset folder or image that cannot be used."""


class ModelError(MnmcuError):
    """A model that cannot be built, loaded or saved."""


class UnsupportedModel(MnmcuError):
    """A .tflite graph outside what mnmcu handles (float, unknown ops...)."""


class QuantizationError(MnmcuError):
    """Conversion to full int8 failed or produced a model runtimes reject."""


class OutputExists(MnmcuError):
    """An output folder that already holds files the user made."""


class ToolMissing(MnmcuError):
    """An external program or Python package is not installed."""


class CommandFailed(MnmcuError):
    """An external command exited with an error."""


class DoesNotFit(MnmcuError):
    """No model configuration satisfies the board's memory and the budgets given."""


class OutputBusy(MnmcuError):
    """An output folder another mnmcu command is writing into right now."""


class InvalidModel(UnsupportedModel):
    """A .tflite file that is corrupt or does not hold together (indices, shapes, buffers...)."""
