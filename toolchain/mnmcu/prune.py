"""Channels whose values do not depend on the input, found once and left out.

Trained networks carry "dead" channels: an output channel of a convolution
whose ReLU clamps every accumulator the channel can reach to the same value
(typical after ReLU6 training, and marked by a tiny requantisation
multiplier and a bias near 2^30). Such a channel is the same number at every
pixel for every input. :func:`constant_channels` proves it per channel: the
accumulator's range over all int8 inputs (and the constant channels it
reads) requantised at both ends gives one value. Requantisation is monotonic,
so the proof is exact; a range that could overflow int32 proves nothing.

:func:`prune_constant_channels` then rewrites the graph so that such
channels are neither computed nor stored, wherever every reader of the
tensor can do without them: a 1x1 convolution or a fully connected layer
adds the channel's constant contribution to its bias; any convolution skips
a channel that holds its input zero point (it adds nothing, padding
included); a depthwise convolution, an average pool and a reshape that keeps
the channel axis carry the channel to their output, where the same rule
applies again. Every value the pruned graph computes equals the value the
model computes, so the outputs stay bit-exact; :meth:`Pruning.expand`
restores a pruned tensor for comparison with a reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mnmcu.errors import UnsupportedModel
from mnmcu.graph import Graph, Op, Quantization, Tensor
from mnmcu.qmath import INT32_MAX, INT32_MIN, activation_range, conv_multiplier, mbqm, padding

CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")
# Ops that map input channel c to output channel c.
_CHANNELWISE = ("DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE")

Constants = dict[int, int]
"""Channel index -> the int8 value that channel holds at every pixel."""


class _ConvParts(NamedTuple):
    inp: Tensor
    filt: Tensor
    bias: Tensor
    out: Tensor
    weights: np.ndarray
    input_qp: tuple[float, int]
    output_qp: tuple[float, int]


class _FcParts(NamedTuple):
    inp: Tensor
    filt: Tensor
    bias: Tensor


@dataclass(frozen=True)
class ChannelMap:
    """Which channels of a model tensor the pruned graph stores."""

    channels: int
    kept: tuple[int, ...]
    constants: tuple[tuple[int, int], ...]

    def expand(self, stored: np.ndarray) -> np.ndarray:
        """The model tensor from the stored one (channels last): constants put back."""
        full = np.empty((*stored.shape[:-1], self.channels), dtype=stored.dtype)
        full[..., list(self.kept)] = stored
        for channel, value in self.constants:
            full[..., channel] = value
        return full


@dataclass(frozen=True)
class Pruning:
    """The pruned graph and, per pruned tensor, its :class:`ChannelMap`."""

    graph: Graph
    maps: Mapping[int, ChannelMap]
    stored: Mapping[int, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    """Tensor -> its constant channels that stay stored (a reader needs them)."""

    @property
    def dropped_channels(self) -> int:
        """Channels left out, over all tensors."""
        return sum(len(m.constants) for m in self.maps.values())

    def expand(self, tensor: int, stored: np.ndarray) -> np.ndarray:
        """``stored`` (tensor ``tensor`` of the pruned graph) as the model's tensor."""
        found = self.maps.get(tensor)
        return stored if found is None else found.expand(stored)


# --------------------------------------------------------------------------
# Which channels are constant
# --------------------------------------------------------------------------


def _scale_zp(t: Tensor) -> tuple[float, int] | None:
    q = t.quantization
    if t.dtype != "int8" or q is None or len(q.scale) != 1 or len(q.zero_point) != 1:
        return None
    return float(q.scale[0]), int(q.zero_point[0])


def _weight_users(graph: Graph) -> dict[int, int]:
    users: dict[int, int] = {}
    for op in graph.ops:
        for index in op.inputs[1:]:
            if index >= 0:
                users[index] = users.get(index, 0) + 1
    return users


def _conv_parts(graph: Graph, op: Op, users: Mapping[int, int]) -> _ConvParts | None:
    """What the constant-channel proof and the rewrite need of a convolution, or ``None``."""
    if op.opcode not in CONV_OPS or len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    inp, filt, bias_t, out = (
        graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0])
    )
    in_qp, out_qp = _scale_zp(inp), _scale_zp(out)
    q = filt.quantization
    if in_qp is None or out_qp is None or filt.data is None or bias_t.data is None:
        return None
    if filt.dtype != "int8" or bias_t.dtype != "int32" or q is None or any(q.zero_point):
        return None
    if len(filt.shape) != 4 or len(inp.shape) != 4 or len(out.shape) != 4:
        return None
    if users.get(filt.index, 0) != 1 or users.get(bias_t.index, 0) != 1:
        return None
    channels = int(out.shape[3])
    weights = np.asarray(filt.data, dtype=np.int64)
    if op.opcode == "DEPTHWISE_CONV_2D":
        if weights.shape[0] != 1 or weights.shape[3] != channels or inp.shape[3] != channels:
            return None
    elif weights.shape[0] != channels or weights.shape[3] != inp.shape[3]:
        return None
    if len(q.scale) not in (1, channels) or bias_t.data.size != channels:
        return None
    return _ConvParts(inp, filt, bias_t, out, weights, in_qp, out_qp)


def _has_padding(op: Op, inp: Tensor, weights: np.ndarray, out: Tensor) -> bool:
    """Whether some output pixel's window reaches outside the input."""
    dil = (int(op.options.get("dilation_h_factor", 1)), int(op.options.get("dilation_w_factor", 1)))
    strides = (int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1)))
    for axis in (0, 1):
        k, i, o = int(weights.shape[1 + axis]), int(inp.shape[1 + axis]), int(out.shape[1 + axis])
        if padding(i, k, strides[axis], dil[axis], o) > 0:
            return True
        reach = (o - 1) * strides[axis] + (k - 1) * dil[axis] + 1
        if reach > i:
            return True
    return False


def _conv_constants(op: Op, parts: _ConvParts, in_const: Constants) -> Constants:
    """The constant output channels of a convolution, with their values."""
    inp, filt, bias_t, out, weights, (in_scale, in_zp), (out_scale, out_zp) = parts
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    channels = int(out.shape[3])
    scale = filt.quantization.scale if filt.quantization is not None else (1.0,)
    scales = list(scale) if len(scale) == channels else list(scale) * channels
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), out_scale, out_zp
    )
    offset = -in_zp
    padded = _has_padding(op, inp, weights, out)
    # Per input channel: the value range of (x + offset), or its constant.
    depth = int(inp.shape[3])
    lo = np.full(depth, -128 + offset, dtype=np.int64)
    hi = np.full(depth, 127 + offset, dtype=np.int64)
    for channel, value in in_const.items():
        lo[channel] = hi[channel] = value + offset
    bias = np.asarray(bias_t.data, dtype=np.int64).reshape(-1)
    constants: Constants = {}
    for c in range(channels):
        if depthwise:
            w = weights[0, :, :, c].reshape(-1, 1)
            a, b = w * lo[c], w * hi[c]
        else:
            w = weights[c].reshape(-1, depth)
            a, b = w * lo, w * hi
        low, high = np.minimum(a, b), np.maximum(a, b)
        if padded:  # a tap in the padding adds 0
            low, high = np.minimum(low, 0), np.maximum(high, 0)
        acc_min = int(bias[c] + low.sum())
        acc_max = int(bias[c] + high.sum())
        if acc_min < INT32_MIN or acc_max > INT32_MAX:
            continue
        try:
            multiplier, shift = conv_multiplier(in_scale, float(scales[c]), out_scale)
        except UnsupportedModel:
            continue  # the generator refuses this channel's rescale: no proof either
        low_end, high_end = mbqm(acc_min, multiplier, shift), mbqm(acc_max, multiplier, shift)
        if low_end is None or high_end is None:
            continue
        values = {min(max(v + out_zp, act_min), act_max) for v in (low_end, high_end)}
        if len(values) == 1:
            constants[c] = values.pop()
    return constants


def _avgpool_constants(graph: Graph, op: Op, in_const: Constants) -> Constants:
    inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if _scale_zp(inp) is None or _scale_zp(inp) != _scale_zp(out):
        return {}
    scale, zp = _scale_zp(out) or (1.0, 0)
    act_min, act_max = activation_range(
        str(op.options.get("fused_activation_function", "NONE")), scale, zp
    )
    # The average of equal values is that value (TFLite rounds (sum +- n/2) / n).
    return {c: min(max(v, act_min), act_max) for c, v in in_const.items()}


def _keeps_channel_axis(graph: Graph, op: Op) -> bool:
    inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    return bool(inp.shape) and bool(out.shape) and inp.shape[-1] == out.shape[-1]


def constant_channels(graph: Graph) -> dict[int, Constants]:
    """Tensor index -> its channels that hold one value for every input, with the value."""
    users = _weight_users(graph)
    found: dict[int, Constants] = {}
    for op in graph.ops:
        if not op.inputs or not op.outputs or op.inputs[0] < 0:
            continue
        in_const = found.get(op.inputs[0], {})
        parts = _conv_parts(graph, op, users)
        if parts is not None:
            result = _conv_constants(op, parts, in_const)
        elif op.opcode == "AVERAGE_POOL_2D":
            result = _avgpool_constants(graph, op, in_const)
        elif op.opcode == "RESHAPE" and _keeps_channel_axis(graph, op):
            result = dict(in_const)
        else:
            continue
        if result:
            found[op.outputs[0]] = result
    return found


# --------------------------------------------------------------------------
# Which constant channels every reader can do without
# --------------------------------------------------------------------------


def _absorbable(
    graph: Graph, op: Op, tensor: int, chans: Constants, users: Mapping[int, int]
) -> set[int]:
    """The channels of ``tensor`` that ``op`` can do without (ignoring channel-wise ties)."""
    if op.inputs[0] != tensor or tensor in op.inputs[1:]:
        return set()
    if op.opcode in ("AVERAGE_POOL_2D",) or (
        op.opcode == "RESHAPE" and _keeps_channel_axis(graph, op)
    ):
        return set(chans)
    parts = _conv_parts(graph, op, users)
    if parts is not None:
        inp, _, _, out, weights, (_, in_zp), _ = parts
        if op.opcode == "DEPTHWISE_CONV_2D":
            return set(chans)
        if not _has_padding(op, inp, weights, out):
            return set(chans)
        return {c for c, v in chans.items() if v == in_zp}
    if op.opcode == "FULLY_CONNECTED" and _fc_parts(graph, op, users) is not None:
        return set(chans)
    return set()


def _fc_parts(graph: Graph, op: Op, users: Mapping[int, int]) -> _FcParts | None:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    inp, filt, bias_t = (graph.tensor(i) for i in op.inputs[:3])
    io = _scale_zp(inp)
    if io is None or filt.data is None or bias_t.data is None or bias_t.dtype != "int32":
        return None
    if filt.dtype != "int8" or len(filt.shape) != 2 or len(inp.shape) != 2:
        return None
    if filt.shape[1] != inp.shape[1] or inp.shape[0] != 1:
        return None
    if users.get(filt.index, 0) != 1 or users.get(bias_t.index, 0) != 1:
        return None
    return _FcParts(inp, filt, bias_t)


def droppable_channels(graph: Graph, constants: Mapping[int, Constants]) -> dict[int, Constants]:
    """The constant channels each tensor can leave out: every reader absorbs them."""
    users = _weight_users(graph)
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for index in op.inputs:
            if index >= 0:
                readers.setdefault(index, []).append(op)
    boundary = set(graph.inputs) | set(graph.outputs)
    drop = {
        t: dict(chans) for t, chans in constants.items() if t not in boundary and readers.get(t)
    }
    changed = True
    while changed:
        changed = False
        for t in list(drop):
            keep = set(drop[t])
            for op in readers[t]:
                keep &= _absorbable(graph, op, t, drop[t], users)
                if op.opcode in _CHANNELWISE and op.inputs[0] == t:
                    keep &= set(drop.get(op.outputs[0], {}))
            # A channel-wise op's output keeps what its input keeps.
            for op in graph.ops:
                if op.opcode in _CHANNELWISE and op.outputs and op.outputs[0] == t:
                    keep &= set(drop.get(op.inputs[0], {}))
            if keep != set(drop[t]):
                drop[t] = {c: v for c, v in drop[t].items() if c in keep}
                changed = True
    return {t: chans for t, chans in drop.items() if chans}


# --------------------------------------------------------------------------
# The rewrite
# --------------------------------------------------------------------------


def _with_channels(t: Tensor, kept: list[int], axis: int) -> Tensor:
    shape = list(t.shape)
    shape[axis] = len(kept)
    data = None if t.data is None else np.take(np.asarray(t.data), kept, axis=axis)
    return dataclasses.replace(t, shape=tuple(shape), data=data)


def _subset_quant(q: Quantization | None, kept: list[int]) -> Quantization | None:
    if q is None or len(q.scale) <= 1:
        return q
    return dataclasses.replace(
        q,
        scale=tuple(q.scale[i] for i in kept),
        zero_point=tuple(q.zero_point[i] for i in kept),
    )


def _int32(values: np.ndarray) -> np.ndarray:
    """Wrap to int32 as the kernels' accumulator does."""
    return ((values.astype(np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


def _constant_form(in_scale: float, out_scale: float, out_zp: int, value: int) -> tuple[float, int]:
    """A filter scale and a bias with which a channel of zero weights outputs ``value``.

    The scale makes the requantisation multiplier about 1/4 (shift -1 or -2,
    inside every fast kernel's range); the bias is the smallest accumulator
    that requantises to ``value``.
    """
    filter_scale = 0.25 * out_scale / in_scale
    multiplier, shift = conv_multiplier(in_scale, filter_scale, out_scale)
    target = value - out_zp
    guess = round(target / (multiplier * 2.0 ** (shift - 31)))
    for acc in sorted(range(guess - 8, guess + 9), key=abs):
        if mbqm(acc, multiplier, shift) == target:
            return filter_scale, acc
    raise ArithmeticError(f"no accumulator requantises to {target}")


def _rewrite_conv(
    tensors: list[Tensor],
    op: Op,
    parts: _ConvParts,
    dropped_in: Constants,
    keep_in: list[int],
    keep_out: list[int],
    stored: Constants,
) -> None:
    """The convolution without dropped channels; its stored constant channels made cheap."""
    filt, bias_t, weights = parts.filt, parts.bias, parts.weights
    bias = np.asarray(bias_t.data, dtype=np.int64).reshape(-1)
    (in_scale, in_zp), (out_scale, out_zp) = parts.input_qp, parts.output_qp
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    if depthwise:
        new_w = weights[..., keep_out].copy()
        new_bias = bias[keep_out]
    else:
        # A dropped input channel adds the same to every accumulator (no padding, or 0).
        folded = np.zeros(weights.shape[0], dtype=np.int64)
        for c, v in dropped_in.items():
            folded += weights[..., c].reshape(weights.shape[0], -1).sum(1) * (v - in_zp)
        new_w = weights[keep_out][..., keep_in]
        new_bias = (bias + folded)[keep_out]
    q = filt.quantization
    assert q is not None
    channels = weights.shape[3] if depthwise else weights.shape[0]
    scales = list(q.scale) if len(q.scale) == channels else [q.scale[0]] * channels
    scales = [scales[c] for c in keep_out]
    for position, c in enumerate(keep_out):
        if c in stored:
            scales[position], new_bias[position] = _constant_form(
                in_scale, out_scale, out_zp, stored[c]
            )
            if depthwise:
                new_w[..., position] = 0
            else:
                new_w[position] = 0
    quant = q
    if len(q.scale) > 1 or stored:
        quant = Quantization(tuple(scales), (0,) * len(scales), 3 if depthwise else 0)
    tensors[filt.index] = dataclasses.replace(
        filt, shape=tuple(new_w.shape), data=new_w.astype(np.int8), quantization=quant
    )
    tensors[bias_t.index] = dataclasses.replace(
        bias_t, shape=(len(new_bias),), data=_int32(new_bias)
    )


def _rewrite_fc(
    tensors: list[Tensor], parts: _FcParts, dropped_in: Constants, keep_in: list[int]
) -> None:
    """The fully connected layer without dropped inputs, their contribution in its bias."""
    weights = np.asarray(parts.filt.data, dtype=np.int64)
    bias = np.asarray(parts.bias.data, dtype=np.int64).reshape(-1)
    in_zp = _scale_zp(parts.inp)
    offset = -in_zp[1] if in_zp is not None else 0
    for c, v in dropped_in.items():
        bias = bias + weights[:, c] * (v + offset)
    new_w = weights[:, keep_in]
    tensors[parts.filt.index] = dataclasses.replace(
        parts.filt, shape=tuple(new_w.shape), data=new_w.astype(np.int8)
    )
    tensors[parts.bias.index] = dataclasses.replace(parts.bias, data=_int32(bias))


def prune_constant_channels(graph: Graph) -> Pruning:
    """``graph`` without its droppable constant channels (see the module docstring).

    Constant channels a reader needs stay in their tensor, but the
    convolution writes them from zero weights and a bias chosen to requantise
    to the constant (:func:`_constant_form`), so that the channel's original
    constants (a shift of -31, a bias near 2^30) cannot keep the layer off
    the fast kernels.
    """
    constants = constant_channels(graph)
    drop = droppable_channels(graph, constants)
    users = _weight_users(graph)
    tensors = list(graph.tensors)
    kept_constants: dict[int, tuple[int, ...]] = {}

    def kept_of(t: int) -> list[int]:
        channels = int(graph.tensor(t).shape[-1]) if graph.tensor(t).shape else 0
        return [c for c in range(channels) if c not in drop.get(t, {})]

    for op in graph.ops:
        if not op.inputs or op.inputs[0] < 0 or not op.outputs:
            continue
        src, dst = op.inputs[0], op.outputs[0]
        dropped_in = drop.get(src, {})
        parts = _conv_parts(graph, op, users)
        if parts is not None:
            stored = {c: v for c, v in constants.get(dst, {}).items() if c not in drop.get(dst, {})}
            if stored:
                kept_constants[dst] = tuple(sorted(stored))
            if dropped_in or dst in drop or stored:
                _rewrite_conv(tensors, op, parts, dropped_in, kept_of(src), kept_of(dst), stored)
        elif op.opcode == "FULLY_CONNECTED" and dropped_in:
            fc = _fc_parts(graph, op, users)
            assert fc is not None  # droppable_channels drops only what the layer absorbs
            _rewrite_fc(tensors, fc, dropped_in, kept_of(src))
        for t in (src, dst):
            if t in drop:
                tensors[t] = _with_channels(tensors[t], kept_of(t), len(graph.tensor(t).shape) - 1)
    maps = {
        t: ChannelMap(
            channels=int(graph.tensor(t).shape[-1]),
            kept=tuple(kept_of(t)),
            constants=tuple(sorted(chans.items())),
        )
        for t, chans in drop.items()
    }
    return Pruning(dataclasses.replace(graph, tensors=tuple(tensors)), maps, kept_constants)
