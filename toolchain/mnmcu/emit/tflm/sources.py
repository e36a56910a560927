"""Writing a project's TFLM runtime: :func:`emit_tflm_sources` and what it returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnmcu.boards import Board
from mnmcu.emit import cgen
from mnmcu.emit.tflm.arena import ArenaSize, arena_size
from mnmcu.emit.tflm.espidf import ESP32_STATIC_DRAM, emit_esp_idf
from mnmcu.emit.tflm.resolver import OpRegistration, kernel_headers, resolver_registrations
from mnmcu.emit.tflm.tree import emit_tflm_tree
from mnmcu.emit.tflm.versions import Pin, load_versions
from mnmcu.emit.tflm.writer import Writer
from mnmcu.errors import InvalidValue
from mnmcu.graph import Graph
from mnmcu.log import logger
from mnmcu.reference import TflmRun

RUNTIME_SOURCE = "mnmcu_runtime_tflm.cpp"
MODEL_HEADER = "mnmcu_tflm_model.h"
MODEL_SOURCE = "mnmcu_tflm_model.c"
DOC_FILE = "TFLM.md"
ARENA_SYMBOL = "mnmcu_tflm_arena"
MODEL_SYMBOL = "g_model"  # the flatbuffer array (mnmcu_tflm_model.c.j2)


@dataclass(frozen=True)
class TflmSources(Mapping[str, Any]):
    """What :func:`emit_tflm_sources` wrote and what ``platformio.ini`` must add.

    Typed fields for scripts; read as a mapping it gives what
    :func:`mnmcu.emit.project.emit_project` merges into the project:
    ``ini_options`` (``(key, value)`` lines), ``build_flags``, ``lib_deps``,
    ``notes`` (README lines), ``files`` and ``model_sources`` (relative to the
    project folder), ``arena_symbols`` and ``arena_bytes``.
    """

    route: str
    kernels: str
    build_flags: tuple[str, ...]
    build_unflags: tuple[str, ...]
    lib_deps: tuple[str, ...]
    platform_packages: tuple[str, ...]
    extra_scripts: tuple[str, ...]
    files: tuple[str, ...]
    model_sources: tuple[str, ...]
    registrations: tuple[OpRegistration, ...]
    arena: ArenaSize
    pins: tuple[Pin, ...]
    readme_section: str
    notes: tuple[str, ...]
    build_src_flags: tuple[str, ...] = ()

    @property
    def ops(self) -> tuple[str, ...]:
        """The op names the resolver registers, in order."""
        return tuple(r.opcode for r in self.registrations)

    def platformio_options(self) -> dict[str, tuple[str, ...]]:
        """The non-empty platformio.ini options to add, each with its values."""
        options = {
            "build_flags": self.build_flags,
            "build_unflags": self.build_unflags,
            "build_src_flags": self.build_src_flags,
            "lib_deps": self.lib_deps,
            "platform_packages": self.platform_packages,
            "extra_scripts": self.extra_scripts,
        }
        return {key: values for key, values in options.items() if values}

    def _extras(self) -> dict[str, Any]:
        ini = [
            (key, (" " if key in ("build_unflags", "build_src_flags") else ", ").join(values))
            for key, values in self.platformio_options().items()
            if key not in ("build_flags", "lib_deps")
        ]
        return {
            "ini_options": tuple(ini),
            "build_flags": self.build_flags,
            "lib_deps": self.lib_deps,
            "notes": self.notes,
            "files": self.files,
            "model_sources": self.model_sources,
            "arena_symbols": (ARENA_SYMBOL,),
            "model_symbols": (MODEL_SYMBOL,),
            "arena_bytes": self.arena.arena_bytes,
        }

    def __getitem__(self, key: str) -> Any:
        return self._extras()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._extras())

    def __len__(self) -> int:
        return len(self._extras())


_ROUTE_SUMMARY = {
    "esp-idf": "ESP-IDF component espressif/esp-tflite-micro from src/idf_component.yml",
    "tflm-tree": "lib/tflite-micro generated once from a pinned tflite-micro commit by "
    "TFLM's create_tflm_tree.py",
}


def _route(board: Board) -> str:
    pio = board.platformio
    if pio is not None and pio.framework == "espidf" and board.runtime.kernels == "esp-nn":
        return "esp-idf"
    if pio is not None and board.cpu.arch == "arm":
        return "tflm-tree"
    raise InvalidValue(
        f"board {board.id} has no TensorFlow Lite Micro route "
        f"(framework {pio.framework if pio else 'none'}, arch {board.cpu.arch})",
        "the tflm runtime needs an ESP-IDF board with ESP-NN or an Arm board; use --runtime aot",
    )


def _fit_warnings(board: Board, route: str, arena: ArenaSize) -> tuple[str, ...]:
    """Say so when the arena alone cannot fit the RAM the linker gives static data."""
    limit, where = board.memory.ram_bytes, "the RAM the linker gives"
    if route == "esp-idf" and board.cpu.core == "xtensa-lx6":
        limit, where = ESP32_STATIC_DRAM, "ESP-IDF's static DRAM segment (dram0_0_seg)"
    if limit is None or arena.arena_bytes <= limit:
        return ()
    return (
        f"The arena alone ({arena.arena_bytes} B) exceeds the {limit} B of {where} on "
        f"{board.id}: the firmware will not link; use a smaller model or another board.",
    )


def emit_tflm_sources(
    graph: Graph,
    tflite_path: Path,
    board: Board,
    src_dir: Path,
    project_dir: Path,
    measured: TflmRun | None = None,
) -> TflmSources:
    """Write the TFLM runtime of ``graph`` for ``board`` into a PlatformIO project.

    Writes into ``src_dir`` the model C array (``mnmcu_tflm_model.h/.c``) and
    ``mnmcu_runtime_tflm.cpp``; into ``project_dir`` ``TFLM.md`` and the files
    of the board's route (see :mod:`mnmcu.emit.tflm`). ``measured`` is the
    tflite-micro runtime's report for the model; when omitted it is measured
    here (a subprocess, a few seconds). The same inputs give byte-identical
    files. Raises :class:`InvalidValue` for a board without a TFLM route and
    :class:`UnsupportedModel` for ops the resolver table lacks.
    """
    from mnmcu.reference import tflm_run

    route = _route(board)
    assert board.platformio is not None
    versions = load_versions()
    registrations = resolver_registrations(graph)
    arena = arena_size(graph, board, measured or tflm_run(tflite_path))
    model_name = Path(graph.source or tflite_path).name
    context = {"arena": arena, "versions": versions, "board": board, "route": route}
    out = Writer(project_dir, model_name, cgen.sha256_file(tflite_path), context)

    data = np.frombuffer(tflite_path.read_bytes(), dtype=np.uint8)
    out.render(
        "mnmcu_tflm_model.h.j2", src_dir / MODEL_HEADER,
        "The .tflite model as a C array (declaration).", "c",
        guard=cgen.guard_macro(MODEL_HEADER), size=len(data),
    )  # fmt: skip
    out.render(
        "mnmcu_tflm_model.c.j2", src_dir / MODEL_SOURCE,
        "The .tflite model as a C array, 16-byte aligned, const.", "c",
        header=MODEL_HEADER,
        array=cgen.c_array("g_model", data, "uint8_t", comment=model_name, static=False),
    )  # fmt: skip
    out.render(
        "mnmcu_runtime_tflm.cpp.j2", src_dir / RUNTIME_SOURCE,
        "mnmcu_runtime.h over TensorFlow Lite Micro.", "c",
        model_header=MODEL_HEADER, registrations=registrations, kernels=board.runtime.kernels,
        kernel_headers=kernel_headers(registrations),
        debug_log_callback=route == "tflm-tree", arena_symbol=ARENA_SYMBOL,
    )  # fmt: skip
    if route == "esp-idf":
        extra = emit_esp_idf(out, board, versions, src_dir)
    else:
        extra = emit_tflm_tree(out, board, versions)
    pins: tuple[Pin, ...] = (
        Pin("platformio platform", board.platformio.platform, f"boards/{board.id}.toml"),
    )
    pins += extra.pins
    warnings = _fit_warnings(board, route, arena)
    for warning in warnings:
        logger.warning("tflm: %s", warning)
    doc = out.render(
        "TFLM.md.j2", project_dir / DOC_FILE, "The TFLite Micro runtime.", "html",
        registrations=registrations, pins=pins, build_flags=extra.build_flags,
        build_src_flags=extra.build_src_flags,
        platform_packages=extra.platform_packages, warnings=warnings,
        verification=[text for where, text in versions.notes if where == route],
    )  # fmt: skip
    notes = (
        f"TensorFlow Lite Micro with {board.runtime.kernels} kernels, route {route} "
        f"({_ROUTE_SUMMARY[route]}); details in {DOC_FILE}.",
        "Pinned: " + "; ".join(f"{p.name} {p.version}" for p in pins) + ".",
        f"Op resolver: MicroMutableOpResolver<{len(registrations)}>: "
        + ", ".join(r.call.removeprefix("resolver.") for r in registrations)
        + "; a boot-time check names any op of the model it lacks.",
        f"Tensor arena: {arena.describe()}. The boot line prints arena_used_bytes.",
        "mnmcu checked this project structurally when it wrote it (the resolver holds "
        "exactly the model's ops, the arena is at least the measured one, every version "
        "is pinned); TFLM itself is compiled by the project's first PlatformIO build.",
        *warnings,
    )
    files = tuple(sorted(p.relative_to(project_dir).as_posix() for p in out.written))
    logger.debug(
        "tflm: wrote %s (route %s, arena %d B)", ", ".join(files), route, arena.arena_bytes
    )
    return TflmSources(
        route=route,
        kernels=board.runtime.kernels,
        build_flags=extra.build_flags,
        build_unflags=extra.build_unflags,
        build_src_flags=extra.build_src_flags,
        lib_deps=(),
        platform_packages=extra.platform_packages,
        extra_scripts=extra.extra_scripts,
        files=files,
        model_sources=((src_dir / MODEL_SOURCE).relative_to(project_dir).as_posix(),),
        registrations=registrations,
        arena=arena,
        pins=pins,
        readme_section=doc,
        notes=notes,
    )
