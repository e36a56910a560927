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
"""

from __future__ import annotations

import ast
import configparser
import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnmcu import escape, paths
from mnmcu.boards import Board
from mnmcu.emit import cgen
from mnmcu.errors import InvalidValue, UnsupportedModel
from mnmcu.graph import Graph, Op
from mnmcu.log import logger
from mnmcu.outdir import write_file
from mnmcu.proc import run_command
from mnmcu.reference import TflmRun

ALIGNMENT = 16
"""Bytes TFLM wants beyond ``arena_used_bytes()`` to align the arena's head
(tensorflow/lite/micro/micro_interpreter.h, comment of ``arena_used_bytes``)."""
SLACK_FRACTION = 0.02
SLACK_MIN_BYTES = 1024
PIO_LINT_TIMEOUT_S = 120.0

RUNTIME_SOURCE = "mnmcu_runtime_tflm.cpp"
MODEL_HEADER = "mnmcu_tflm_model.h"
MODEL_SOURCE = "mnmcu_tflm_model.c"
TREE_DIR = "lib/tflite-micro"
FETCH_SCRIPT = "tools/tflm_fetch.py"
PRE_SCRIPT = "tools/tflm_pio_pre.py"
# Include folders of TFLM's third-party code in the tree create_tflm_tree.py writes.
THIRD_PARTY_INCLUDES = (
    "third_party/flatbuffers/include",
    "third_party/gemmlowp",
    "third_party/ruy",
    "third_party/kissfft",
    "third_party/cmsis_nn",
    "third_party/cmsis_nn/Include",
)
DOC_FILE = "TFLM.md"
ARENA_SYMBOL = "mnmcu_tflm_arena"
MODEL_SYMBOL = "g_model"  # the flatbuffer array (mnmcu_tflm_model.c.j2)

_VERSIONS_FILE = ("tflm", "versions.toml")
_SOFTMAX_INT16_OUT = "tflite::Register_SOFTMAX_INT8_INT16()"

# MicroMutableOpResolver method of each op, and its int8-specialised registration
# with the header that declares it where TFLM has one: at the pinned commit
# tensorflow/lite/micro/kernels/{conv,depthwise_conv,fully_connected,add,mul,
# softmax,pooling,pad}.h. micro_mutable_op_resolver.h includes most of these
# headers but not pad.h, so the runtime includes each one it calls itself
# (tests/integration/test_tflm_project.py checks every entry against the
# headers of a TFLM tree). Under CMSIS_NN these are CMSIS-NN kernels; elsewhere
# (ESP-NN, whose CMake replaces the plain kernels) the headers define them as
# the plain registration. MEAN, HARD_SWISH and the rest have no int8 variant.
_KERNELS_DIR = "tensorflow/lite/micro/kernels"
_RESOLVER: dict[str, tuple[str, str | None]] = {
    "CONV_2D": ("AddConv2D", "tflite::Register_CONV_2D_INT8()"),
    "DEPTHWISE_CONV_2D": ("AddDepthwiseConv2D", "tflite::Register_DEPTHWISE_CONV_2D_INT8()"),
    "FULLY_CONNECTED": ("AddFullyConnected", "tflite::Register_FULLY_CONNECTED_INT8()"),
    "ADD": ("AddAdd", "tflite::Register_ADD_INT8()"),
    "MUL": ("AddMul", "tflite::Register_MUL_INT8()"),
    "SOFTMAX": ("AddSoftmax", "tflite::Register_SOFTMAX_INT8()"),
    "AVERAGE_POOL_2D": ("AddAveragePool2D", "tflite::Register_AVERAGE_POOL_2D_INT8()"),
    "MAX_POOL_2D": ("AddMaxPool2D", "tflite::Register_MAX_POOL_2D_INT8()"),
    "PAD": ("AddPad", "tflite::Register_PAD_INT8()"),
    "MEAN": ("AddMean", None),
    "HARD_SWISH": ("AddHardSwish", None),
    "RESHAPE": ("AddReshape", None),
    "QUANTIZE": ("AddQuantize", None),
    "DEQUANTIZE": ("AddDequantize", None),
    "RELU": ("AddRelu", None),
    "RELU6": ("AddRelu6", None),
    "SHAPE": ("AddShape", None),
    "STRIDED_SLICE": ("AddStridedSlice", None),
    "PACK": ("AddPack", None),
    "CONCATENATION": ("AddConcatenation", None),
    "LOGISTIC": ("AddLogistic", None),
    "TANH": ("AddTanh", None),
    "SQUEEZE": ("AddSqueeze", None),
    "EXPAND_DIMS": ("AddExpandDims", None),
}
KERNEL_HEADERS: dict[str, str] = {
    "tflite::Register_CONV_2D_INT8()": f"{_KERNELS_DIR}/conv.h",
    "tflite::Register_DEPTHWISE_CONV_2D_INT8()": f"{_KERNELS_DIR}/depthwise_conv.h",
    "tflite::Register_FULLY_CONNECTED_INT8()": f"{_KERNELS_DIR}/fully_connected.h",
    "tflite::Register_ADD_INT8()": f"{_KERNELS_DIR}/add.h",
    "tflite::Register_MUL_INT8()": f"{_KERNELS_DIR}/mul.h",
    "tflite::Register_SOFTMAX_INT8()": f"{_KERNELS_DIR}/softmax.h",
    _SOFTMAX_INT16_OUT: f"{_KERNELS_DIR}/softmax.h",
    "tflite::Register_AVERAGE_POOL_2D_INT8()": f"{_KERNELS_DIR}/pooling.h",
    "tflite::Register_MAX_POOL_2D_INT8()": f"{_KERNELS_DIR}/pooling.h",
    "tflite::Register_PAD_INT8()": f"{_KERNELS_DIR}/pad.h",
}
"""The TFLM header that declares each registration the generator can emit."""
_METHOD_TO_OP = {method: opcode for opcode, (method, _) in _RESOLVER.items()}
# Ops whose int8 registration needs int8 weights too (not int4/int16 variants).
_WEIGHTED = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})


# --------------------------------------------------------------------------
# Pinned versions
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """One pinned dependency: what, which version, where the pin was read."""

    name: str
    version: str
    source: str


@dataclass(frozen=True)
class TflmVersions:
    """The contents of ``boards/tflm/versions.toml``."""

    tflm_repository: str
    tflm_commit: str
    tflm_commit_date: str
    makefile_options: str
    cmsis_nn_commit: str
    cmsis_nn_md5: str
    arm_toolchains: tuple[tuple[str, str], ...]
    esp_component: str
    esp_version: str
    esp_nn_component: str
    esp_nn_version: str
    idf_version: str
    notes: tuple[tuple[str, str], ...]
    """(route, how far a pin of that route could be verified)."""

    def toolchain_for(self, platform: str) -> str | None:
        """The ``platform_packages`` toolchain pin for a platform spec, if any."""
        name = platform.split("@", 1)[0].strip()
        return dict(self.arm_toolchains).get(name)


def load_versions(path: Path | None = None) -> TflmVersions:
    """Read the pinned TFLM versions (default: the shipped ``boards/tflm/versions.toml``)."""
    path = path or paths.data_dir("boards").joinpath(*_VERSIONS_FILE)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        tflm, cmsis, esp = data["tflm"], data["tflm"]["cmsis_nn"], data["esp"]
        return TflmVersions(
            tflm_repository=tflm["repository"],
            tflm_commit=tflm["commit"],
            tflm_commit_date=tflm["commit_date"],
            makefile_options=tflm["makefile_options"],
            cmsis_nn_commit=cmsis["commit"],
            cmsis_nn_md5=cmsis["md5"],
            arm_toolchains=tuple(sorted(data["arm"]["toolchain"].items())),
            esp_component=esp["component"],
            esp_version=esp["version"],
            esp_nn_component=esp["nn_component"],
            esp_nn_version=esp["nn_version"],
            idf_version=esp["idf_version"],
            notes=(
                ("tflm-tree", f"tflite-micro {tflm['commit'][:12]}: {tflm['verified']}"),
                ("tflm-tree", f"CMSIS-NN {cmsis['commit'][:12]}: {cmsis['verified']}"),
                ("esp-idf", f"{esp['component']} {esp['version']}: {esp['verified']}"),
                ("esp-idf", f"{esp['nn_component']} {esp['nn_version']}: {esp['nn_verified']}"),
            ),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise InvalidValue(
            f"cannot read the pinned TFLM versions from {path} ({exc!r})",
            "reinstall mnmcu or restore boards/tflm/versions.toml",
        ) from None


# --------------------------------------------------------------------------
# Op resolver
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class OpRegistration:
    """One line of the generated resolver: ``resolver.<method>(<kernel>)``."""

    opcode: str
    method: str
    kernel: str

    @property
    def call(self) -> str:
        return f"resolver.{self.method}({self.kernel})"

    @property
    def header(self) -> str | None:
        """The TFLM header declaring :attr:`kernel` (``None`` for the default kernel)."""
        return KERNEL_HEADERS[self.kernel] if self.kernel else None


def kernel_headers(registrations: Sequence[OpRegistration]) -> tuple[str, ...]:
    """The headers the runtime includes for its registrations, sorted, each once."""
    return tuple(sorted({r.header for r in registrations if r.header}))


def _dtypes(graph: Graph, ops: Sequence[Op], slot: int, outputs: bool = False) -> set[str]:
    found = set()
    for op in ops:
        indices = op.outputs if outputs else op.inputs
        if slot < len(indices) and indices[slot] >= 0:
            found.add(graph.tensor(indices[slot]).dtype)
    return found


def expected_kernel(graph: Graph, opcode: str) -> str:
    """The registration the resolver should pass for ``opcode`` ("" = TFLM's default).

    The int8 variant where TFLM has one and every op of that type is int8
    (int8 weights for conv, depthwise and fully connected); a softmax with an
    int16 output takes ``Register_SOFTMAX_INT8_INT16()``.
    """
    if opcode not in _RESOLVER:
        raise UnsupportedModel(
            f"TFLite Micro op {opcode} is not in mnmcu's resolver table",
            "supported: " + ", ".join(sorted(_RESOLVER)),
        )
    int8_kernel = _RESOLVER[opcode][1]
    ops = [op for op in graph.ops if op.opcode == opcode]
    if int8_kernel is None or not ops or _dtypes(graph, ops, 0) != {"int8"}:
        return ""
    if opcode in _WEIGHTED and _dtypes(graph, ops, 1) != {"int8"}:
        return ""
    if opcode == "SOFTMAX":
        out = _dtypes(graph, ops, 0, outputs=True)
        if out == {"int16"}:
            return _SOFTMAX_INT16_OUT
        if out != {"int8"}:
            return ""
    return int8_kernel


def resolver_registrations(graph: Graph) -> tuple[OpRegistration, ...]:
    """One registration per distinct op of ``graph``, in op-name order."""
    unknown = sorted(set(graph.opcodes) - set(_RESOLVER))
    if unknown:
        raise UnsupportedModel(
            f"{graph.source or 'the model'} uses ops mnmcu cannot register with TFLite Micro: "
            + ", ".join(unknown),
            "use the aot runtime or a model with MobileNet ops only",
        )
    return tuple(
        OpRegistration(opcode, _RESOLVER[opcode][0], expected_kernel(graph, opcode))
        for opcode in graph.opcodes
    )


# --------------------------------------------------------------------------
# Arena size
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ArenaSize:
    """The tensor arena of a generated project and how it was derived.

    ``arena_bytes = align16(measured_total + kernel_scratch + kernel_persistent
    + slack + 16)``: the arena the tflite-micro runtime measured for the model
    (reference kernels, 64-bit host), plus the largest scratch buffer the
    target's optimised kernels request for one op (the reference kernels request
    none; scratch buffers live only during their op, so the largest one bounds
    the growth), plus persistent buffers those kernels add, plus a slack of
    max(1 KiB, 2 %) for per-op data of the optimised kernels and the difference
    between the measured TFLM build and the target's, plus the 16 bytes TFLM
    needs to align the arena. 32-bit targets store smaller pointers than the
    64-bit host, which leaves a little more room still.
    """

    measured_total: int
    measured_head: int
    measured_tail: int
    kernels: str
    kernel_scratch: int
    scratch_op: str
    kernel_persistent: int
    slack: int
    alignment: int
    arena_bytes: int

    def describe(self) -> str:
        """One sentence for reports and the project README."""
        where = f" (at {self.scratch_op})" if self.scratch_op else ""
        return (
            f"{self.arena_bytes} B = align16({self.measured_total} B measured by the "
            f"tflite-micro runtime [{self.measured_head} B activations + "
            f"{self.measured_tail} B persistent] + {self.kernel_scratch} B largest "
            f"{self.kernels} scratch buffer{where} + {self.kernel_persistent} B {self.kernels} "
            f"persistent buffers + {self.slack} B slack + {self.alignment} B alignment)"
        )


@dataclass(frozen=True)
class _ConvShape:
    in_h: int
    in_w: int
    in_c: int
    f_h: int
    f_w: int
    f_c: int
    out_h: int
    out_w: int
    out_c: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_h: int
    pad_w: int
    depth_multiplier: int


def _tflm_padding(stride: int, dilation: int, in_size: int, f_size: int, out_size: int) -> int:
    """tflite::ComputePaddingWithOffset (kernels/padding.h): the leading padding."""
    effective = (f_size - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def _conv_shape(graph: Graph, op: Op) -> _ConvShape:
    _, in_h, in_w, in_c = graph.tensor(op.inputs[0]).shape
    _, f_h, f_w, f_c = graph.tensor(op.inputs[1]).shape
    _, out_h, out_w, out_c = graph.tensor(op.outputs[0]).shape
    o = op.options
    s_h, s_w = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    d_h, d_w = int(o.get("dilation_h_factor", 1)), int(o.get("dilation_w_factor", 1))
    return _ConvShape(
        in_h, in_w, in_c, f_h, f_w, f_c, out_h, out_w, out_c, s_h, s_w, d_h, d_w,
        _tflm_padding(s_h, d_h, in_h, f_h, out_h),
        _tflm_padding(s_w, d_w, in_w, f_w, out_w),
        int(o.get("depth_multiplier", 1)),
    )  # fmt: skip


def _align(value: int, to: int) -> int:
    return -(-value // to) * to


# CMSIS-NN at the commit TFLM pins (ARM-software/CMSIS-NN 4ab83cc):
# Source/ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c,
# arm_depthwise_conv_get_buffer_sizes_s8.c, FullyConnectedFunctions/
# arm_fully_connected_get_buffer_sizes_s8.c, PoolingFunctions/
# arm_avgpool_get_buffer_sizes_s8.c, built with GCC (the 1x1 fast path
# needs no buffer there).
def _cmsis_conv(s: _ConvShape, mve: bool) -> int:
    is_1x1 = s.pad_w == 0 and s.pad_h == 0 and s.f_w == 1 and s.f_h == 1
    if is_1x1 and s.dil_w == 1 and s.dil_h == 1 and s.in_c == s.f_c:
        return 0
    cols = s.f_w * s.f_h * s.in_c
    if mve:
        return 4 * _align(cols, 16)
    return 2 * _align(cols, 4) * 2


def _cmsis_depthwise(s: _ConvShape, mve: bool, dsp: bool) -> int:
    if mve and s.in_c == 1 and s.out_c > 1:
        # arm_deptwise_conv_s8_one_in_ch_get_buffer_size_mve: a conv buffer + the filter
        return 4 * _align(s.f_w * s.f_h, 16) + s.f_w * s.f_h * s.out_c
    if s.in_c != s.out_c or s.dil_w != 1 or s.dil_h != 1:
        return 0
    if not mve and s.f_w == 3 and s.f_h == 3 and s.pad_h <= 1 and s.pad_w <= 1:
        return 0
    if mve:
        return 4 * 124 * s.f_w * s.f_h  # CH_IN_BLOCK_MVE = 124
    return s.in_c * s.f_w * s.f_h * 2 if dsp else 0


# ESP-NN 1.2.3: src/convolution/esp_nn_conv_esp32s3.c and
# esp_nn_depthwise_conv_s8_esp32s3.c (esp_nn_get_*_scratch_size_esp32s3); the
# generic ESP32 versions (esp_nn_conv_opt.c, esp_nn_depthwise_conv_opt.c)
# need none. Softmax: width * 4 on both (esp-tflite-micro passes dims[1]).
def _esp_s3_conv(s: _ConvShape) -> int:
    align_buf = 64
    if (s.f_w, s.f_h, s.pad_w, s.pad_h, s.stride_w, s.stride_h) == (1, 1, 0, 0, 1, 1):
        ch8 = (s.in_c + 7) & ~7
        transpose = 0 if s.in_w * s.in_h < 8 else 2 * 8 * ch8
        input_scratch = s.in_w * s.in_h * ch8 if s.in_c % 8 else 0
        return input_scratch + ch8 * s.out_c + transpose + align_buf
    row, window = s.f_w * s.in_c, s.f_w * s.f_h * s.in_c
    if row < 16 and window >= 16:
        wa = _align(window, 16)
        return s.out_c * 4 + 16 + s.out_c * wa + 16 + wa + align_buf
    ch16 = (s.in_c + 15) & ~15
    padded = (s.in_w + 2 * s.pad_w) * (s.in_h + 2 * s.pad_h) * s.in_c
    input_scratch = padded if s.pad_w or s.pad_h else 0
    pad_right = max(0, s.out_w * s.stride_w + s.f_w - 1 - s.in_w)
    pad_bottom = max(0, s.out_h * s.stride_h + s.f_h - 1 - s.in_h)
    boundary = (s.in_w + pad_right) * (s.in_h + pad_bottom) * s.in_c
    return (
        input_scratch
        + s.f_w * s.f_h * ch16 * s.out_c
        + _align(row, 16) * s.f_h * s.out_c
        + (boundary if pad_right > 0 or pad_bottom > 0 else 0)
        + align_buf
        + s.out_c * 4
    )


def _esp_s3_depthwise(s: _ConvShape) -> int:
    ch, mult = s.in_c, s.depth_multiplier
    filter_size = s.f_w * s.f_h * ch * mult
    input_size = s.in_w * s.in_h * ch
    if mult == 1 and ch % 8 == 0:
        if (s.f_w, s.f_h) == (3, 3) and ch % 16 == 0:
            if s.pad_w or s.pad_h:
                pw, ph = 2 * s.pad_w, 2 * s.pad_h
            else:
                pw = s.out_w * s.stride_w + s.f_w - 1 - s.in_w
                ph = s.out_h * s.stride_h + s.f_h - 1 - s.in_h
            if not (pw or ph):
                return filter_size + 16
            full = (s.in_w + pw) * (s.in_h + ph) * ch
            if full <= 40 * 1024:
                return filter_size + full + 16
            return filter_size + (s.in_w + pw) * s.f_h * ch + 16
        if (s.f_w, s.f_h) == (3, 3) and ch >= 12:
            ch16 = (ch + 15) & ~15
            tpw = 2 * s.pad_w + max(0, s.out_w * s.stride_w + 2 - s.in_w)
            tph = 2 * s.pad_h + max(0, s.out_h * s.stride_h + 2 - s.in_h)
            return 9 * ch16 + (s.in_w + tpw) * (s.in_h + tph) * ch16 + s.out_w * s.out_h * ch16 + 64
        total = 2 * (filter_size + input_size)
        if (s.f_w, s.f_h) == (3, 3) or total <= 48 * 1024:
            return total + 32
        return 2 * filter_size + 2 * s.in_w * s.f_h * ch + 32
    if mult == 1 and ch > 3:
        ch8 = (ch + 7) & ~7
        in_start = _align(s.f_w * s.f_h * ch8 * 2, 16)
        out_start = _align(in_start + s.in_w * s.in_h * ch8 * 2, 16)
        bias_start = _align(out_start + s.out_w * s.out_h * ch8, 16)
        return bias_start + 3 * ch8 * 4 + 16
    if mult % 4 == 0:
        return 2 * (filter_size + input_size) + 32
    return 32


def kernel_buffers(graph: Graph, board: Board) -> tuple[int, str, int]:
    """(largest scratch bytes, the op it belongs to, persistent bytes) of the board's kernels.

    The formulas are those of the kernel library the project links (CMSIS-NN at
    the pinned commit for Arm, with its DSP or Helium variant; ESP-NN 1.2.3 for
    ESP32-S3 and ESP32); the reference kernels the arena was measured with
    request none of these buffers.
    """
    kernels, cpu = board.runtime.kernels, board.cpu
    best, where, persistent = 0, "", 0
    for op in graph.ops:
        size = 0
        if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            s = _conv_shape(graph, op)
            if kernels == "cmsis-nn":
                size = (
                    _cmsis_conv(s, cpu.helium)
                    if op.opcode == "CONV_2D"
                    else _cmsis_depthwise(s, cpu.helium, cpu.dsp)
                )
            elif kernels == "esp-nn" and cpu.core == "xtensa-lx7":
                size = _esp_s3_conv(s) if op.opcode == "CONV_2D" else _esp_s3_depthwise(s)
        elif op.opcode == "AVERAGE_POOL_2D" and kernels == "cmsis-nn" and cpu.dsp:
            size = 0 if cpu.helium else graph.tensor(op.inputs[0]).shape[-1] * 4
        elif op.opcode == "FULLY_CONNECTED" and kernels == "cmsis-nn" and cpu.helium:
            # KERNELS_OPTIMIZED_FOR_SPEED keeps the kernel sums in persistent memory.
            persistent += graph.tensor(op.outputs[0]).shape[-1] * 4
        elif op.opcode == "SOFTMAX" and kernels == "esp-nn":
            shape = graph.tensor(op.inputs[0]).shape
            size = (shape[1] if len(shape) > 1 else 1) * 4
        if size > best:
            best, where = size, f"op {op.index} {op.opcode}"
    return best, where, persistent


def arena_size(graph: Graph, board: Board, measured: TflmRun) -> ArenaSize:
    """The arena for ``graph`` on ``board``, from the measured one (see :class:`ArenaSize`)."""
    if measured.arena_total <= 0:
        raise InvalidValue(
            "the tflite-micro runtime reported no arena for the model",
            "check that 'tflite-micro' is installed and runs the model (mnmcu verify)",
        )
    scratch, where, persistent = kernel_buffers(graph, board)
    slack = max(SLACK_MIN_BYTES, _align(int(measured.arena_total * SLACK_FRACTION), ALIGNMENT))
    total = _align(measured.arena_total + scratch + persistent + slack + ALIGNMENT, ALIGNMENT)
    return ArenaSize(
        measured_total=measured.arena_total,
        measured_head=measured.arena_head,
        measured_tail=measured.arena_tail,
        kernels=board.runtime.kernels,
        kernel_scratch=scratch,
        scratch_op=where,
        kernel_persistent=persistent,
        slack=slack,
        alignment=ALIGNMENT,
        arena_bytes=total,
    )


# --------------------------------------------------------------------------
# Emitting
# --------------------------------------------------------------------------


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


def _flash_size_text(size: int | None) -> str | None:
    if size is None or size % (1 << 20):
        return None
    return f"{size >> 20}MB"


_PARTITION_CONFIGS = {
    "partitions_singleapp.csv": "CONFIG_PARTITION_TABLE_SINGLE_APP=y",
    "partitions_singleapp_large.csv": "CONFIG_PARTITION_TABLE_SINGLE_APP_LARGE=y",
    "partitions_two_ota.csv": "CONFIG_PARTITION_TABLE_TWO_OTA=y",
}


def _sdkconfig_lines(board: Board) -> list[tuple[str, str]]:
    """(comment, setting) pairs of ``sdkconfig.defaults``."""
    assert board.platformio is not None
    out: list[tuple[str, str]] = []
    mhz = board.cpu.clock_mhz
    if mhz is not None and int(mhz) in (80, 160, 240):
        out.append(
            (
                f"CPU clock {int(mhz)} MHz (board file cpu.clock_hz)",
                f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{int(mhz)}=y\n"
                f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ={int(mhz)}",
            )
        )
    flash = _flash_size_text(board.memory.flash_total_bytes)
    if flash is not None:
        out.append(
            (
                f"Flash chip of the module: {flash} (memory.flash_total_bytes; PlatformIO "
                "warns when it differs from the board's upload.flash_size)",
                f'CONFIG_ESPTOOLPY_FLASHSIZE_{flash}=y\nCONFIG_ESPTOOLPY_FLASHSIZE="{flash}"',
            )
        )
    partitions = dict(board.platformio.ini_options).get("board_build.partitions")
    if partitions:
        setting = _PARTITION_CONFIGS.get(
            partitions,
            "CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME="
            + escape.kconfig_string(partitions, "board_build.partitions"),
        )
        out.append((f"Partition table {partitions}, as board_build.partitions says", setting))
    if board.serial.baud:
        out.append(
            (
                "Console baud rate (serial.baud)",
                f"CONFIG_ESP_CONSOLE_UART_BAUDRATE={board.serial.baud}",
            )
        )
    out.append(
        (
            "Optimise for speed (-O2), as esp-tflite-micro's examples do",
            "CONFIG_COMPILER_OPTIMIZATION_PERF=y",
        )
    )
    target = (
        "ESP32-S3: its SIMD assembly kernels"
        if board.cpu.core == "xtensa-lx7"
        else ("ESP32: ESP-NN's generic optimised C kernels")
    )
    out.append(
        (
            f"ESP-NN optimised kernels ({target}); bit-exact requantisation (no SKIP_NUDGE), "
            "so outputs match TFLite's reference kernels",
            "CONFIG_NN_OPTIMIZED=y\n# CONFIG_NN_ANSI_C is not set\n"
            "# CONFIG_NN_SKIP_NUDGE is not set",
        )
    )
    if board.cpu.core == "xtensa-lx7":
        out.append(
            (
                "ESP32-S3 caches as in esp-tflite-micro's person_detection "
                "sdkconfig.defaults.esp32s3: weights stream from flash through the data cache",
                "CONFIG_ESP32S3_INSTRUCTION_CACHE_32KB=y\nCONFIG_ESP32S3_DATA_CACHE_64KB=y\n"
                "CONFIG_ESP32S3_DATA_CACHE_8WAYS=y\nCONFIG_ESP32S3_DATA_CACHE_LINE_64B=y",
            )
        )
    out.append(
        (
            "Stack of the task that runs app_main and the interpreter",
            "CONFIG_ESP_MAIN_TASK_STACK_SIZE=8192",
        )
    )
    return out


@dataclass
class _Writer:
    """Renders templates of ``firmware/templates/tflm`` into a project, remembering the files."""

    project_dir: Path
    model_name: str
    sha: str
    context: dict[str, Any]
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = cgen.template_env("tflm")

    def banner(self, path: Path, what: str, style: str) -> str:
        """The generated-file banner as a C comment, ``#`` lines or an HTML comment."""
        if style == "c":
            return cgen.banner(path.name, self.model_name, self.sha, what)
        lines = cgen.banner_lines(path.name, self.model_name, self.sha, what)
        if style == "html":
            return "<!--\n" + "".join(escape.html_comment(line) + "\n" for line in lines) + "-->"
        return "".join(escape.hash_comment(line) + "\n" for line in lines)

    def render(self, template: str, path: Path, what: str, style: str, **extra: Any) -> str:
        banner = self.banner(path, what, style) if what else ""
        text: str = self.env.get_template(template).render(banner=banner, **self.context, **extra)
        write_file(path, text)
        self.written.append(path)
        return text


@dataclass(frozen=True)
class _RouteFiles:
    """What a route adds to platformio.ini, and its pins."""

    build_flags: tuple[str, ...] = ()
    build_unflags: tuple[str, ...] = ()
    build_src_flags: tuple[str, ...] = ()
    platform_packages: tuple[str, ...] = ()
    extra_scripts: tuple[str, ...] = ()
    pins: tuple[Pin, ...] = ()


_VERSIONS_SOURCE = "boards/tflm/versions.toml"


def _emit_esp_idf(out: _Writer, board: Board, versions: TflmVersions, src_dir: Path) -> _RouteFiles:
    """CMake files, component manifest and sdkconfig.defaults of an ESP-IDF project."""
    root = out.project_dir
    # Named after the model, not the folder, so that emits into two folders are identical.
    project = cgen.c_identifier(Path(out.model_name).stem, prefix="mnmcu_").lower()
    src = os.path.relpath(src_dir, root).replace(os.sep, "/")
    out.render(
        "esp/CMakeLists.txt.j2", root / "CMakeLists.txt", "ESP-IDF project file.", "#",
        project=project, src_dir=src,
    )  # fmt: skip
    out.render("esp/src_CMakeLists.txt.j2", src_dir / "CMakeLists.txt", "The app component.", "#")
    out.render(
        "esp/idf_component.yml.j2", src_dir / "idf_component.yml",
        "ESP-IDF component manifest: TFLM with ESP-NN, exact versions.", "#",
        yaml_string=escape.yaml_string, yaml_key=escape.yaml_key,
    )  # fmt: skip
    out.render(
        "esp/sdkconfig.defaults.j2", root / "sdkconfig.defaults",
        f"ESP-IDF settings for {board.name}.", "#", settings=_sdkconfig_lines(board),
        hash_comment=escape.hash_comment,
    )  # fmt: skip
    return _RouteFiles(
        build_flags=("-DTF_LITE_STATIC_MEMORY",),
        pins=(
            Pin(versions.esp_component, versions.esp_version, _VERSIONS_SOURCE),
            Pin(versions.esp_nn_component, versions.esp_nn_version, _VERSIONS_SOURCE),
            Pin(
                "ESP-IDF (framework-espidf of the platform)", versions.idf_version, _VERSIONS_SOURCE
            ),
        ),
    )


def _emit_tflm_tree(out: _Writer, board: Board, versions: TflmVersions) -> _RouteFiles:
    """The library manifest of lib/tflite-micro, its fetch script and the pre-build step."""
    assert board.platformio is not None
    root = out.project_dir
    description = json.dumps(
        f"TensorFlow Lite Micro {versions.tflm_commit[:12]} with CMSIS-NN "
        f"{versions.cmsis_nn_commit[:12]}, generated by {FETCH_SCRIPT} (mnmcu)"
    )
    out.render(
        "arm/library.json.j2", root / TREE_DIR / "library.json", "", "#",
        description=description, third_party_includes=THIRD_PARTY_INCLUDES,
    )  # fmt: skip
    paths = {
        "tree_dir": TREE_DIR,
        "fetch_script": FETCH_SCRIPT,
        "third_party_includes": THIRD_PARTY_INCLUDES,
    }
    out.render(
        "arm/tflm_fetch.py.j2", root / FETCH_SCRIPT,
        "Generate lib/tflite-micro: TFLM with CMSIS-NN at a pinned commit.", "#", **paths,
    )  # fmt: skip
    out.render(
        "arm/tflm_pio_pre.py.j2", root / PRE_SCRIPT,
        "PlatformIO pre-build step: make sure lib/tflite-micro is there.", "#", **paths,
    )  # fmt: skip
    toolchain = versions.toolchain_for(board.platformio.platform)
    pins = (
        Pin("tensorflow/tflite-micro", versions.tflm_commit, _VERSIONS_SOURCE),
        Pin("ARM-software/CMSIS-NN", versions.cmsis_nn_commit, _VERSIONS_SOURCE),
    )
    defines = ("-DTF_LITE_STATIC_MEMORY", "-DCMSIS_NN", "-DTF_LITE_MCU_DEBUG_LOG")
    # TFLM needs C++17 (library.json gives it to the library). An Arduino core compiles
    # its own C++ with the project's flags, and ArduinoCore-mbed's Arduino.h defines an
    # abs() macro that breaks libstdc++'s C++17 <chrono> (std::chrono::abs), which its
    # mbed headers include: there C++17 goes to src/ only, the core keeps gnu++14.
    arduino = board.platformio.framework == "arduino"
    return _RouteFiles(
        build_flags=defines if arduino else (*defines, "-std=gnu++17"),
        build_unflags=() if arduino else ("-std=gnu++11", "-std=gnu++14"),
        build_src_flags=("-std=gnu++17",) if arduino else (),
        platform_packages=(toolchain,) if toolchain else (),
        extra_scripts=(f"pre:{PRE_SCRIPT}",),
        pins=pins + ((Pin("toolchain", toolchain, _VERSIONS_SOURCE),) if toolchain else ()),
    )  # fmt: skip


# ESP-IDF's dram0_0_seg on the ESP32 (components/esp_system/ld/esp32/memory.ld.in,
# DRAM0_0_SEG_LEN): static data, the arena included, must fit it; the rest of the
# DRAM is heap only.
_ESP32_STATIC_DRAM = 0x2C200


def _fit_warnings(board: Board, route: str, arena: ArenaSize) -> tuple[str, ...]:
    """Say so when the arena alone cannot fit the RAM the linker gives static data."""
    limit, where = board.memory.ram_bytes, "the RAM the linker gives"
    if route == "esp-idf" and board.cpu.core == "xtensa-lx6":
        limit, where = _ESP32_STATIC_DRAM, "ESP-IDF's static DRAM segment (dram0_0_seg)"
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
    of the board's route (see the module docstring). ``measured`` is the
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
    out = _Writer(project_dir, model_name, cgen.sha256_file(tflite_path), context)

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
        extra = _emit_esp_idf(out, board, versions, src_dir)
    else:
        extra = _emit_tflm_tree(out, board, versions)
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


# --------------------------------------------------------------------------
# Structural checks
# --------------------------------------------------------------------------

_EXACT_VERSION = r"(?:==?)?\s*v?\d+\.\d+\.\d+(?:~\d+)?(?:[-+][0-9A-Za-z.+-]+)?"
_REGISTRY_PIN = re.compile(rf"^[\w.-]+/[\w.-]+\s*@\s*{_EXACT_VERSION}$")
_URL_PIN = re.compile(rf"^(?:[\w.+-]+://|git@)\S+#(?:[0-9a-fA-F]{{7,40}}|{_EXACT_VERSION})$")
_LOCAL = re.compile(r"^(?:file|symlink)://")
_COMMIT = re.compile(r"\b[0-9a-f]{40}\b")
_ALIGNED_MODEL = re.compile(
    r"(?:alignas|MNMCU_ALIGN)\(16\)\s+(?:static\s+)?const\s+(?:uint8_t|unsigned char)\s+g_model\["
)


def pin_problem(spec: str) -> str | None:
    """Why a PlatformIO package spec is not pinned exactly, or ``None`` if it is.

    Pinned: ``owner/name@x.y.z``, a URL ending ``#<commit>`` or ``#<x.y.z tag>``,
    or a local ``file://``/``symlink://`` path.
    """
    text = spec.strip()
    if _LOCAL.match(text) or _REGISTRY_PIN.match(text) or _URL_PIN.match(text):
        return None
    if "://" in text or text.startswith("git@"):
        return f"'{text}' is a URL without '#<commit>' or '#<x.y.z tag>'"
    if "@" not in text:
        return f"'{text}' has no version (write owner/name@x.y.z)"
    return f"'{text}' is a range or an incomplete version (write owner/name@x.y.z)"


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";",), comment_prefixes=(";", "#"), interpolation=None
    )
    parser.read(path, encoding="utf-8")
    return parser


def _values(raw: str) -> list[str]:
    return [v.strip() for line in raw.splitlines() for v in line.split(",") if v.strip()]


def _ini_problems(ini: Path, board: Board | None) -> list[str]:
    problems: list[str] = []
    if not ini.is_file():
        return [f"{ini} is missing"]
    try:
        config = _ini(ini)
    except configparser.Error as exc:
        return [f"{ini}: {exc}"]
    sections = [s for s in config.sections() if s == "env" or s.startswith("env:")]
    if not sections:
        problems.append(f"{ini} has no [env:...] section")
    common = config["env"] if config.has_section("env") else {}
    for section in sections:
        options = config[section]
        if section != "env" and "platform" not in options and "platform" not in common:
            problems.append(f"{ini} [{section}] has no platform")
        for key in ("platform", "platform_packages", "lib_deps"):
            for value in _values(options.get(key, "")):
                problem = pin_problem(value)
                if problem:
                    problems.append(f"{ini} [{section}] {key}: {problem}")
        flags = " ".join(_values(options.get("build_flags", "")))
        if board is not None and board.cpu.arch == "arm" and "-DCMSIS_NN" not in flags.split():
            problems.append(f"{ini} [{section}] build_flags do not select CMSIS-NN (-DCMSIS_NN)")
        if board is not None and board.cpu.arch == "arm":
            scripts = _values(options.get("extra_scripts", ""))
            if f"pre:{PRE_SCRIPT}" not in scripts:
                problems.append(f"{ini} [{section}] extra_scripts lacks pre:{PRE_SCRIPT}")
    return problems


def _yml_dependencies(text: str) -> dict[str, str]:
    """``name -> version`` of an idf_component.yml's dependencies (both YAML forms)."""
    deps: dict[str, str] = {}
    in_deps, current, indent = False, "", 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            in_deps, indent = line.strip() == "dependencies:", 0
            continue
        if not in_deps:
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip().strip("\"'")
        if indent == 0 or depth <= indent:
            indent, current = depth, key.strip().strip("\"'")
            deps[current] = value
        elif key.strip() == "version" and current:
            deps[current] = value
    return deps


def _exact_component_version(version: str) -> bool:
    return re.fullmatch(r"(?:==)?\d+\.\d+\.\d+(?:~\d+)?(?:-[0-9A-Za-z.]+)?", version) is not None


def parse_resolver(text: str) -> tuple[int | None, list[tuple[str, str]]]:
    """``(N of MicroMutableOpResolver<N>, [(method, argument), ...])`` of a runtime source."""
    size = re.search(r"MicroMutableOpResolver<\s*(\d+)\s*>", text)
    calls = re.findall(r"\bresolver\.(Add\w+)\(([^;]*?)\)\s*!=", text)
    return (int(size.group(1)) if size else None), [(m, a.strip()) for m, a in calls]


def check_tflm_project(
    project_dir: Path, graph: Graph, measured_arena: int, board: Board | None = None
) -> list[str]:
    """Structural problems of a generated TFLM project (empty list: none found).

    Checks that the resolver registers exactly ``graph``'s ops, once each, with
    ``MicroMutableOpResolver<N>`` N equal to their count and the int8 kernel
    where TFLM has one; that the arena constant is at least ``measured_arena``
    + 16 and a multiple of 16; that platform, packages and libraries in
    platformio.ini are pinned exactly; on ESP-IDF projects that
    ``src/idf_component.yml`` pins esp-tflite-micro exactly and the CMake
    files exist; on Arm projects that the TFLM tree is pinned to a commit.
    ``board`` enables the board-specific checks (inferred from the files
    otherwise).
    """
    problems: list[str] = []
    project_dir = Path(project_dir)
    src = project_dir / "src"
    runtime = src / RUNTIME_SOURCE
    if not runtime.is_file():
        return [f"{runtime} is missing"]
    text = runtime.read_text(encoding="utf-8")
    size, calls = parse_resolver(text)
    wanted = set(graph.opcodes)
    seen: list[str] = []
    for method, argument in calls:
        opcode = _METHOD_TO_OP.get(method)
        if opcode is None:
            problems.append(f"resolver calls {method}, which mnmcu does not know")
            continue
        seen.append(opcode)
        if opcode not in wanted:
            problems.append(f"resolver registers {opcode}, which the model does not use")
            continue
        expected = expected_kernel(graph, opcode)
        if argument != expected:
            problems.append(
                f"resolver registers {opcode} with '{argument or 'the default kernel'}', "
                f"expected '{expected or 'the default kernel'}'"
            )
        header = KERNEL_HEADERS.get(argument)
        if header is not None and f'#include "{header}"' not in text:
            problems.append(f"{runtime.name} calls {argument} without including {header}")
    for opcode in sorted(wanted - set(seen)):
        problems.append(f"resolver lacks {opcode}, which the model uses")
    for opcode in sorted({op for op in seen if seen.count(op) > 1}):
        problems.append(f"resolver registers {opcode} {seen.count(opcode)} times")
    if size is None:
        problems.append(f"{runtime.name} has no MicroMutableOpResolver<N>")
    elif size != len(wanted) or size != len(calls):
        problems.append(
            f"MicroMutableOpResolver<{size}>: the model has {len(wanted)} op types and "
            f"the resolver {len(calls)} registrations"
        )
    arena = re.search(r"#define\s+MNMCU_TFLM_ARENA_BYTES\s+(\d+)u?\b", text)
    if arena is None:
        problems.append(f"{runtime.name} defines no MNMCU_TFLM_ARENA_BYTES")
    else:
        value = int(arena.group(1))
        if value < measured_arena + ALIGNMENT:
            problems.append(
                f"arena {value} B is smaller than the measured {measured_arena} B + "
                f"{ALIGNMENT} B alignment"
            )
        if value % ALIGNMENT:
            problems.append(f"arena {value} B is not a multiple of {ALIGNMENT}")
    model = src / MODEL_SOURCE
    if not model.is_file() or not _ALIGNED_MODEL.search(model.read_text(encoding="utf-8")[:8000]):
        problems.append(f"{model} is missing or does not define a 16-byte aligned const g_model")
    problems += _ini_problems(project_dir / "platformio.ini", board)
    esp = (board is not None and board.runtime.kernels == "esp-nn") or (
        board is None and (src / "idf_component.yml").exists()
    )
    if esp:
        problems += _esp_problems(project_dir, src)
    elif board is None or board.cpu.arch == "arm":
        problems += _tree_problems(project_dir)
    return problems


def _esp_problems(project_dir: Path, src: Path) -> list[str]:
    problems: list[str] = []
    versions = load_versions()
    manifest = src / "idf_component.yml"
    if not manifest.is_file():
        return [f"{manifest} is missing"]
    deps = _yml_dependencies(manifest.read_text(encoding="utf-8"))
    if versions.esp_component not in deps:
        problems.append(f"{manifest} does not depend on {versions.esp_component}")
    for name, version in sorted(deps.items()):
        if name != "idf" and not _exact_component_version(version):
            problems.append(f"{manifest}: {name} version '{version}' is not one exact version")
    top = project_dir / "CMakeLists.txt"
    if not top.is_file() or "tools/cmake/project.cmake" not in top.read_text(encoding="utf-8"):
        problems.append(f"{top} is missing or does not include ESP-IDF's project.cmake")
    component = src / "CMakeLists.txt"
    if not component.is_file() or "idf_component_register" not in component.read_text(
        encoding="utf-8"
    ):
        problems.append(f"{component} is missing or does not call idf_component_register")
    if not (project_dir / "sdkconfig.defaults").is_file():
        problems.append(f"{project_dir / 'sdkconfig.defaults'} is missing")
    return problems


def _tree_problems(project_dir: Path) -> list[str]:
    problems: list[str] = []
    fetch = project_dir / FETCH_SCRIPT
    if not fetch.is_file():
        return [f"{fetch} is missing"]
    commits = set(_COMMIT.findall(fetch.read_text(encoding="utf-8")))
    if load_versions().tflm_commit not in commits:
        problems.append(f"{fetch} does not pin the TFLM commit of boards/tflm/versions.toml")
    manifest = project_dir / TREE_DIR / "library.json"
    try:
        build = json.loads(manifest.read_text(encoding="utf-8"))["build"]
        if not any("cmsis_nn" in flag for flag in build.get("flags", [])):
            problems.append(f"{manifest} does not put CMSIS-NN on the include path")
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"{manifest} is missing or invalid ({exc!r})")
    if not (project_dir / PRE_SCRIPT).is_file():
        problems.append(f"{project_dir / PRE_SCRIPT} is missing")
    return problems


def pio_lint(project_dir: Path, core_dir: Path | None = None) -> list[str]:
    """``pio project config --lint`` of a project: its errors and warnings, as problems.

    PlatformIO reports an unknown option only as a warning and exits 0 even on
    errors, so both count. Runs offline; PlatformIO's core dir is ``core_dir``
    or a temporary folder, never the user's home.
    """
    with tempfile.TemporaryDirectory(prefix="mnmcu-pio-") as tmp:
        env = dict(os.environ)
        env["PLATFORMIO_CORE_DIR"] = str(core_dir or Path(tmp) / "core")
        env.setdefault("PLATFORMIO_NO_ANSI", "true")
        proc = run_command(
            [sys.executable, "-m", "platformio", "project", "config", "--lint", "--json-output"]
            + ["-d", str(project_dir)],
            timeout=PIO_LINT_TIMEOUT_S,
            env=env,
        )
    report = _lint_report(proc.stdout.decode("utf-8", "replace"))
    problems = []
    for kind in ("errors", "warnings"):
        for item in report.get(kind, []):
            message = item.get("message", item) if isinstance(item, Mapping) else item
            problems.append(f"pio lint {kind[:-1]}: {message}")
    return problems


def _lint_report(stdout: str) -> dict[str, Any]:
    """The lint result, which PlatformIO prints as a Python literal after its banner."""
    for line in reversed(stdout.splitlines()):
        text = line.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = ast.literal_eval(text)
            if isinstance(value, dict):
                return value
    raise InvalidValue(
        "could not read the result of 'pio project config --lint'",
        f"its output was: {stdout.strip()[-400:]}",
    )
