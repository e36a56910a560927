"""Where mnmcu finds its data folders (``boards/``, ``firmware/``).

In a source checkout (or an editable install) they are the repository's
top-level folders; an installed wheel carries them as ``mnmcu/_data/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``"boards"`` or ``"firmware"``)."""
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE.parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"mnmcu data folder '{name}' not found in {installed} or {checkout}; reinstall mnmcu"
    )
