"""The TensorFlow Lite Micro (TFLM) runtime inside a generated PlatformIO project.

:func:`emit_tflm_sources` writes what a project needs to run a model with
TFLM's ``MicroInterpreter`` behind ``mnmcu_runtime.h``: the model as a C
array, ``mnmcu_runtime_tflm.cpp`` with a ``MicroMutableOpResolver<N>`` of
exactly the model's ops (registered with the int8-specialised kernels), a
tensor arena sized from the arena the ``tflite-micro`` runtime measures plus a
stated margin, and the files of one of two routes to TFLM itself:

* ``esp-idf``: ESP32 / ESP32-S3 boards on the ESP-IDF framework get the
  ``espressif/esp-tflite-micro`` component (TFLM with ESP-NN kernels) from an
  exact-version ``src/idf_component.yml``, plus the CMake files and
  ``sdkconfig.defaults`` an ESP-IDF PlatformIO project needs;
* ``tflm-tree``: Arm boards get TFLM with CMSIS-NN kernels as a local library
  ``lib/tflite-micro``, generated once from a pinned tflite-micro commit by
  TFLM's own ``create_tflm_tree.py`` (``tools/tflm_fetch.py``, run by a
  PlatformIO ``pre:`` script when the tree is missing).

Versions come from ``boards/tflm/versions.toml``. :func:`check_tflm_project`
and :func:`pio_lint` check generated projects structurally, without TFLM's
sources; the tests compile and run them against a TFLM tree where
``MNMCU_TFLM_SOURCES`` names one.

The submodules, each importing only its siblings (never this package):

* :mod:`~mnmcu.emit.tflm.versions`: the pins of ``boards/tflm/versions.toml``
  (:class:`TflmVersions`, :class:`Pin`, :func:`load_versions`);
* :mod:`~mnmcu.emit.tflm.resolver`: the op resolver table, the int8
  registration and kernel header of each op (:func:`resolver_registrations`);
* :mod:`~mnmcu.emit.tflm.arena`: the arena size, with the scratch and
  persistent buffers of CMSIS-NN and ESP-NN (:func:`arena_size`);
* :mod:`~mnmcu.emit.tflm.writer`: the template writer both routes use and
  what a route adds to ``platformio.ini``;
* :mod:`~mnmcu.emit.tflm.espidf`: the ``esp-idf`` route and its checks;
* :mod:`~mnmcu.emit.tflm.tree`: the ``tflm-tree`` route and its checks;
* :mod:`~mnmcu.emit.tflm.sources`: :func:`emit_tflm_sources` and
  :class:`TflmSources`, which pick the route and write the common files;
* :mod:`~mnmcu.emit.tflm.check`: :func:`check_tflm_project`,
  :func:`pio_lint` and :func:`pin_problem`.
"""

from __future__ import annotations

from mnmcu.emit.tflm.arena import (
    ALIGNMENT,
    SLACK_FRACTION,
    SLACK_MIN_BYTES,
    ArenaSize,
    arena_size,
    kernel_buffers,
)
from mnmcu.emit.tflm.check import (
    PIO_LINT_TIMEOUT_S,
    check_tflm_project,
    parse_resolver,
    pin_problem,
    pio_lint,
)
from mnmcu.emit.tflm.resolver import (
    KERNEL_HEADERS,
    OpRegistration,
    expected_kernel,
    kernel_headers,
    resolver_registrations,
)
from mnmcu.emit.tflm.sources import (
    ARENA_SYMBOL,
    DOC_FILE,
    MODEL_HEADER,
    MODEL_SOURCE,
    MODEL_SYMBOL,
    RUNTIME_SOURCE,
    TflmSources,
    emit_tflm_sources,
)
from mnmcu.emit.tflm.tree import FETCH_SCRIPT, PRE_SCRIPT, THIRD_PARTY_INCLUDES, TREE_DIR
from mnmcu.emit.tflm.versions import Pin, TflmVersions, load_versions

__all__ = [
    "ALIGNMENT",
    "ARENA_SYMBOL",
    "DOC_FILE",
    "FETCH_SCRIPT",
    "KERNEL_HEADERS",
    "MODEL_HEADER",
    "MODEL_SOURCE",
    "MODEL_SYMBOL",
    "PIO_LINT_TIMEOUT_S",
    "PRE_SCRIPT",
    "RUNTIME_SOURCE",
    "SLACK_FRACTION",
    "SLACK_MIN_BYTES",
    "THIRD_PARTY_INCLUDES",
    "TREE_DIR",
    "ArenaSize",
    "OpRegistration",
    "Pin",
    "TflmSources",
    "TflmVersions",
    "arena_size",
    "check_tflm_project",
    "emit_tflm_sources",
    "expected_kernel",
    "kernel_buffers",
    "kernel_headers",
    "load_versions",
    "parse_resolver",
    "pin_problem",
    "pio_lint",
    "resolver_registrations",
]
