"""Code generation: C sources and projects from a parsed model.

* :mod:`mnmcu.emit.cgen` - C literal helpers (arrays, identifiers, banners);
* :mod:`mnmcu.emit.aot` - the ahead-of-time int8 runtime (:func:`emit_aot`);
* :mod:`mnmcu.emit.host` - compile and run generated C on the host.
"""

from __future__ import annotations

from mnmcu.emit.aot import emit_aot, inplace_ops, scratch_bytes

__all__ = ["emit_aot", "inplace_ops", "scratch_bytes"]
