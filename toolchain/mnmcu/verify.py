"""Check the AOT runtime bit for bit against TFLite's reference kernels and TFLite Micro.

``verify`` generates the AOT C for a model, compiles it for the host with
warnings as errors (and a second time with AddressSanitizer and
UndefinedBehaviorSanitizer), runs it on a set of inputs and compares every
output byte with LiteRT's reference interpreter (``BUILTIN_REF``) and with
the tflite-micro runtime. With ``layers`` it also compares every
intermediate tensor and names the first op that differs.

The two references do not always agree (LiteRT requantizes a fully
connected layer in double precision, TFLite Micro in fixed point): where
they differ on an input, ``verify`` names the op where their intermediate
tensors first part, so that "the references disagree" is told apart from
"the AOT runtime differs". The AOT C is generated with one arithmetic
(:data:`mnmcu.qmath.ARITHMETICS`, TFLite Micro's by default); it is
bit-exact when it equals that reference on every output byte (and, with
``layers``, on every intermediate tensor of the inputs it compared).
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mnmcu.errors import InvalidValue
from mnmcu.graph import Graph, check_int8_mobilenet, load_graph
from mnmcu.graph_types import Op
from mnmcu.log import NullProgress, Progress, logger
from mnmcu.outdir import output_folder
from mnmcu.prune import Pruning
from mnmcu.quantize import check_softmax_scale
from mnmcu.validate import check_single_image

RUN_TIMEOUT_S = 60.0
RUN_TIMEOUT_PER_INPUT_S = 5.0
# The inputs of one run, all in memory at once (and again as outputs of each runtime).
MAX_INPUT_BYTES = 256 << 20


@dataclass(frozen=True)
class LayerDiff:
    """The first op whose output differs from the reference."""

    op: int
    opcode: str
    tensor: int
    differing_bytes: int
    max_abs_diff: int


@dataclass(frozen=True)
class InputDiff:
    """Where one input's tensors first differ between two runs (None: only the output)."""

    input: int
    layer: LayerDiff | None


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of one ``verify`` run."""

    model: str
    sha256: str
    inputs: int
    input_kinds: dict[str, int]
    output_bytes: int
    litert_mismatches: int
    tflm_mismatches: int
    sanitized: bool
    arena_bytes: int
    ops: int
    first_bad_layer: LayerDiff | None = None
    layers_compared: int = 0
    notes: list[str] = field(default_factory=list)
    reference_mismatches: int = 0
    """Output bytes where LiteRT and TFLite Micro disagree (-1: TFLite Micro did not run)."""
    reference_mismatch_inputs: int = 0
    reference_splits: list[InputDiff] = field(default_factory=list)
    """Where LiteRT's and TFLite Micro's tensors first differ: the first input they disagree
    on, or (``layers``) every one."""
    bad_layers: list[InputDiff] = field(default_factory=list)
    """Where the AOT runtime's tensors first differ from its reference's: the first
    differing input, or (``layers``) every one."""
    arithmetic: str = "tflm"
    """The reference the AOT C was generated to equal: ``tflm`` or ``litert``."""
    schedule: str = "layer"
    """The AOT schedule verified: ``layer`` or ``stream`` (:mod:`mnmcu.stream`)."""
    streamed_ops: int = 0
    """Ops the stream schedule runs row by row (0: none, the layer plan)."""

    @property
    def own_mismatches(self) -> int:
        """Output bytes differing from the reference of :attr:`arithmetic`."""
        return self.tflm_mismatches if self.arithmetic == "tflm" else self.litert_mismatches

    @property
    def bit_exact(self) -> bool:
        """Every output equal to its reference's, and no intermediate tensor differing."""
        return self.own_mismatches == 0 and all(d.layer is None for d in self.bad_layers)

    @property
    def references_agree(self) -> bool:
        return self.reference_mismatches == 0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["bit_exact"] = self.bit_exact
        d["references_agree"] = self.references_agree
        return d


def make_inputs(
    graph: Graph, count: int, samples: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, dict[str, int]]:
    """``count`` int8 inputs: all -128, all 127, dataset samples if given, then random.

    Refuses models of another batch than 1 and (before allocating) more than
    :data:`MAX_INPUT_BYTES` of inputs.
    """
    check_single_image(graph)
    shape = graph.input.shape[1:]
    size = graph.input.nbytes
    if count * size > MAX_INPUT_BYTES:
        raise InvalidValue(
            f"{count} inputs of {size:,} bytes need {count * size:,} bytes, more than the "
            f"{MAX_INPUT_BYTES // (1 << 20)} MiB mnmcu holds at once",
            f"use a count of {max(MAX_INPUT_BYTES // size, 1)} or fewer",
        )
    parts = [np.full((1, *shape), -128, np.int8), np.full((1, *shape), 127, np.int8)]
    kinds = {"min": 1, "max": 1, "dataset": 0, "random": 0}
    if samples is not None and len(samples):
        take = samples[: max(0, count - 2)]
        parts.append(take.astype(np.int8))
        kinds["dataset"] = len(take)
    rest = count - sum(len(p) for p in parts)
    if rest > 0:
        rng = np.random.default_rng(seed)
        parts.append(rng.integers(-128, 128, size=(rest, *shape), dtype=np.int16).astype(np.int8))
        kinds["random"] = rest
    return np.concatenate(parts)[:count], kinds


def _differing_inputs(a: np.ndarray, b: np.ndarray) -> list[int]:
    """Indices of the inputs whose outputs differ between ``a`` and ``b`` (N x ...)."""
    return [int(i) for i in np.flatnonzero(np.any((a != b).reshape(len(a), -1), axis=1))]


def _layer_diff(op: Op, a: np.ndarray, b: np.ndarray) -> LayerDiff | None:
    """How ``op``'s output differs between two runs (``a`` and ``b``), or None."""
    a = a.reshape(-1).astype(np.int16)
    b = b.reshape(-1).astype(np.int16)
    if a.shape == b.shape and not np.any(a != b):
        return None
    diff = np.abs(a - b) if a.shape == b.shape else np.array([999])
    return LayerDiff(
        op=op.index,
        opcode=op.opcode,
        tensor=op.outputs[0],
        differing_bytes=int(np.count_nonzero(diff)),
        max_abs_diff=int(diff.max()),
    )


def _first_bad_layer(
    pruning: Pruning, model: Path, exe: Path, x: np.ndarray, timeout: float, arithmetic: str
) -> tuple[LayerDiff | None, int]:
    from mnmcu.emit.host import run_host_layers
    from mnmcu.reference import reference_intermediates

    ours = run_host_layers(exe, x[None], timeout)[0]
    graph = pruning.graph
    outputs = [op.outputs[0] for op in graph.ops if op.outputs]
    ref = reference_intermediates(model, x, outputs, arithmetic)
    compared = 0
    for op in graph.ops:
        if op.index not in ours or op.outputs[0] not in ref:
            continue
        stored = ours[op.index]
        if op.outputs[0] in pruning.maps and stored.size == graph.tensor(op.outputs[0]).elements:
            # A tensor without its constant channels: put them back for the comparison.
            stored = pruning.expand(
                op.outputs[0], stored.reshape(graph.tensor(op.outputs[0]).shape)
            )
        compared += 1
        found = _layer_diff(op, stored, ref[op.outputs[0]])
        if found is not None:
            return found, compared
    return None, compared


def _first_reference_split(model: Path, graph: Graph, x: np.ndarray) -> LayerDiff | None:
    """The first op whose output LiteRT and TFLite Micro compute differently for ``x``."""
    from mnmcu.reference import litert_intermediates, tflm_intermediates

    outputs = [op.outputs[0] for op in graph.ops if op.outputs]
    theirs = tflm_intermediates(model, x, outputs)
    ref = litert_intermediates(Path(model).read_bytes(), x)
    for op in graph.ops:
        if not op.outputs or op.outputs[0] not in ref or op.outputs[0] not in theirs:
            continue
        found = _layer_diff(op, ref[op.outputs[0]], theirs[op.outputs[0]])
        if found is not None:
            return found
    return None


def verify(
    model: Path,
    count: int = 20,
    samples: np.ndarray | None = None,
    layers: bool = False,
    sanitize: bool = True,
    workdir: Path | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> VerifyResult:
    """Generate, compile and run the AOT C for ``model``; compare with both references.

    ``samples`` are extra int8 inputs (e.g. quantized dataset images).
    Generated sources and binaries go to ``workdir`` (a temporary folder if
    None), which must be new or empty (the ``--keep`` folder). ``arithmetic``
    is the FULLY_CONNECTED requantisation the C is generated with, and so the
    reference it must equal. ``schedule`` is the AOT schedule generated
    (:data:`mnmcu.stream.SCHEDULES`); the arena reported is its plan's.
    """
    with contextlib.ExitStack() as stack:
        if workdir is not None:
            stack.enter_context(output_folder(workdir, False, "mnmcu verify", option="--keep"))
        return _verify(
            model, count, samples, layers, sanitize, workdir, seed, progress, arithmetic, schedule
        )


def _verify(
    model: Path,
    count: int,
    samples: np.ndarray | None,
    layers: bool,
    sanitize: bool,
    workdir: Path | None,
    seed: int,
    progress: Progress | None,
    arithmetic: str,
    schedule: str,
) -> VerifyResult:
    from mnmcu.emit.aot import check_arithmetic, emit_aot
    from mnmcu.emit.host import compile_host, run_host
    from mnmcu.prune import prune_constant_channels
    from mnmcu.reference import litert_outputs, tflm_run
    from mnmcu.stream import check_schedule_choice, check_stream_plan, schedule_of, schedule_plan

    check_arithmetic(arithmetic)
    check_schedule_choice(schedule)
    progress = progress or NullProgress()
    flatbuffer = Path(model).read_bytes()
    graph = load_graph(model)
    check_int8_mobilenet(graph)
    check_softmax_scale(graph)
    inputs, kinds = make_inputs(graph, count, samples, seed)
    timeout = RUN_TIMEOUT_S + RUN_TIMEOUT_PER_INPUT_S * len(inputs)
    steps = 5 + int(sanitize) + int(layers)
    progress.start(f"Verifying {Path(model).name}", steps)
    with tempfile.TemporaryDirectory(prefix="mnmcu-verify-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        c_dir = root / "aot"
        pruning = prune_constant_channels(graph)
        plan = schedule_plan(pruning.graph, "portable", schedule)
        problems = check_stream_plan(pruning.graph, plan)
        schedule = schedule_of(plan)
        if problems:  # a planner bug: never run code over a broken plan
            raise RuntimeError("memory plan overlaps: " + "; ".join(problems[:3]))
        emit_aot(
            pruning.graph,
            plan,
            c_dir,
            "model",
            str(model),
            arithmetic=arithmetic,
            schedule=schedule,
        )
        progress.advance(1, "generated C")
        exe = compile_host(c_dir, root / "bin" / "model")
        progress.advance(1, "compiled")
        ours = run_host(exe, inputs, timeout)
        progress.advance(1, "ran AOT")
        if sanitize:
            san = compile_host(c_dir, root / "bin" / "model_asan", sanitize=True)
            ours_san = run_host(san, inputs, timeout * 4)
            if not np.array_equal(ours, ours_san):
                raise RuntimeError("the sanitized build gives other outputs than the optimised one")
            progress.advance(1, "sanitizers clean")
        ref = litert_outputs(flatbuffer, inputs)
        progress.advance(1, "ran LiteRT reference")
        tflm = tflm_run(Path(model), inputs).outputs
        progress.advance(1, "ran TFLite Micro")
        ours = ours.reshape(ref.shape)
        litert_bad = int(np.count_nonzero(ours != ref))
        tflm_bad = ref_bad = -1
        ref_inputs: list[int] = []
        if tflm is not None:
            tflm = tflm.reshape(ref.shape)
            tflm_bad = int(np.count_nonzero(ours != tflm))
            ref_bad = int(np.count_nonzero(ref != tflm))
            ref_inputs = _differing_inputs(ref, tflm)
        splits = [
            InputDiff(i, _first_reference_split(model, graph, inputs[i]))
            for i in (ref_inputs if layers else ref_inputs[:1])
        ]
        own = tflm if arithmetic == "tflm" and tflm is not None else ref
        bad_layers: list[InputDiff] = []
        compared = 0
        if layers or np.any(ours != own):
            layer_exe = compile_host(
                c_dir, root / "bin" / "model_layers", extra_flags=["-DMNMCU_DUMP_LAYERS"]
            )
            targets = _differing_inputs(ours, own) or [0]
            for i in targets if layers else targets[:1]:
                layer, n = _first_bad_layer(
                    pruning, Path(model), layer_exe, inputs[i], timeout, arithmetic
                )
                bad_layers.append(InputDiff(i, layer))
                compared = max(compared, n)
            progress.advance(1, "compared layers")
    progress.finish()
    result = VerifyResult(
        model=str(model),
        sha256=hashlib.sha256(flatbuffer).hexdigest(),
        inputs=len(inputs),
        input_kinds=kinds,
        output_bytes=int(ref.size),
        litert_mismatches=litert_bad,
        tflm_mismatches=tflm_bad,
        sanitized=sanitize,
        arena_bytes=plan.arena_bytes,
        ops=len(graph.ops),
        first_bad_layer=next((d.layer for d in bad_layers if d.layer is not None), None),
        layers_compared=compared,
        reference_mismatches=ref_bad,
        reference_mismatch_inputs=len(ref_inputs),
        reference_splits=splits,
        bad_layers=bad_layers,
        arithmetic=arithmetic,
        schedule=schedule,
        streamed_ops=plan.streamed,
    )
    logger.debug("verify result: %s", result)
    return result
