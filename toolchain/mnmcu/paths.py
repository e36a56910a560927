"""Where mnmcu finds its data folders (``boards/``, ``firmware/``) and keeps its cache.

In a source checkout (or an editable install) they are the repository's
top-level folders; an installed wheel carries them as ``mnmcu/_data/``.
"""

from __future__ import annotations

import os
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


def cache_dir(name: str) -> Path:
    """``$MNMCU_CACHE_DIR/name``, else ``$XDG_CACHE_HOME/mnmcu/name`` (``~/.cache/...``).

    What mnmcu keeps between runs to save work (nothing it cannot rebuild).
    """
    root = os.environ.get("MNMCU_CACHE_DIR") or ""
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(base) / "mnmcu")
    return Path(root) / name
