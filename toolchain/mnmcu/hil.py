"""Hardware-in-the-loop runs: inputs to a device, outputs checked against the host.

:func:`load_target` says which model the device must run (from a generated
project's ``mnmcu_project.json`` and/or the ``.tflite``); :func:`check_device`
compares the device's handshake with it; :func:`run_hil` sends inputs over a
:class:`~mnmcu.link.session.DeviceSession`, compares every output byte with
TFLite's reference kernels (LiteRT ``BUILTIN_REF``) and appends one JSON line
per input to a log as results arrive; :func:`write_json` and
:func:`write_junit` write the reports.

Timing: microseconds and cycles where the device measures them; under QEMU
(virtual time, ``-icount shift=0``) the figures are guest instruction counts
and are reported as such, never as time.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree

import numpy as np

from mnmcu.emit.cgen import sha256_file
from mnmcu.errors import InvalidValue, MnmcuError
from mnmcu.escape import visible, xml_text
from mnmcu.link.protocol import DeviceInfo
from mnmcu.link.session import DeviceSession, ModelMismatch
from mnmcu.log import NullProgress, Progress, logger
from mnmcu.outdir import write_file

DEFAULT_COUNT = 50


class HilMismatch(MnmcuError):
    """At least one device output differs from the host reference."""


@dataclass(frozen=True)
class HilTarget:
    """The model a device must run: its file, hash and tensor shapes."""

    model_path: Path
    model_sha256: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    board_id: str | None = None
    project_dir: Path | None = None
    class_names: tuple[str, ...] = ()
    """The model's class names, from the project (empty without one)."""
    arithmetic: str = "tflm"
    """The reference the firmware's outputs equal, from the project (TFLite Micro's
    without one: TFLite Micro firmware and the AOT runtime by default)."""

    @property
    def flatbuffer(self) -> bytes:
        """The .tflite bytes."""
        return self.model_path.read_bytes()


def _project_model(project_dir: Path, model_file: str) -> Path | None:
    for folder in (project_dir, project_dir.parent):
        candidate = folder / model_file
        if candidate.is_file():
            return candidate
    return None


def load_target(
    project: Path | None = None, model: Path | None = None, arithmetic: str | None = None
) -> HilTarget:
    """The model to check a device against, from ``project`` and/or ``model``.

    With a project, the model is ``model`` or the file its manifest names,
    looked up in the project folder and its parent (``mnmcu build`` puts the
    project in ``<out>/firmware`` beside ``<out>/model_int8.tflite``); its
    SHA-256 must equal the manifest's. ``arithmetic`` names the reference the
    outputs must equal; with a project it must be the project's own.
    """
    from mnmcu.emit.project import load_project
    from mnmcu.graph import load_graph

    if project is None and model is None:
        raise InvalidValue(
            "no model to check the device against",
            "pass --project DIR (a project mnmcu generated) or --model MODEL.tflite",
        )
    info = load_project(project) if project is not None else None
    path = model
    if path is None and info is not None:
        path = _project_model(info.project_dir, info.model_file)
        if path is None:
            raise InvalidValue(
                f"the model {info.model_file} of project {info.project_dir} is not in the "
                "project folder or its parent",
                "pass it with --model MODEL.tflite",
            )
    if path is None or not Path(path).is_file():
        raise InvalidValue(f"model {path} does not exist", "check the path given to --model")
    sha = sha256_file(Path(path))
    if info is not None and sha != info.model_sha256:
        raise InvalidValue(
            f"model {path} has SHA-256 {sha[:12]}, but project {info.project_dir} was built "
            f"for {info.model_sha256[:12]}",
            "pass the project's own model with --model, or emit the project again",
        )
    if info is not None and arithmetic not in (None, info.arithmetic):
        raise InvalidValue(
            f"project {info.project_dir} was generated with --arithmetic {info.arithmetic}, "
            f"not {arithmetic}",
            "leave out --arithmetic, or emit the project again with it",
        )
    graph = load_graph(Path(path))
    return HilTarget(
        model_path=Path(path),
        model_sha256=sha,
        input_shape=tuple(graph.input.shape),
        output_shape=tuple(graph.output.shape),
        board_id=info.board_id if info is not None else None,
        project_dir=info.project_dir if info is not None else None,
        class_names=info.class_names if info is not None else (),
        arithmetic=info.arithmetic if info is not None else arithmetic or "tflm",
    )


def dataset_inputs(
    target: HilTarget, data: str, count: int, seed: int = 0
) -> tuple[np.ndarray, list[int | None], tuple[str, ...]]:
    """``count`` held-out images of ``data``, quantized, with their labels and the class names.

    The images are a seeded draw that covers every class
    (:func:`mnmcu.model.data.balanced_pick`), at the model's input size. The
    held-out split is the one training made with its default seed. A model
    whose class names (from its project) differ from the dataset's is refused:
    the labels would not mean its outputs.
    """
    from mnmcu.emit.project import is_image_input
    from mnmcu.graph import load_graph
    from mnmcu.model.data import balanced_pick, load_dataset
    from mnmcu.quantize import quantize_input

    graph = load_graph(target.model_path)
    shape = graph.input.shape
    if not is_image_input(graph):
        raise InvalidValue(
            f"--data gives square images, but the model input is {list(shape)}, not [1, H, H, C]",
            "leave out --data to send random inputs",
        )
    builtin = data == "builtin" or data.startswith("builtin:")
    classes = int(graph.output.shape[-1]) if builtin else None
    dataset = load_dataset(data, int(shape[1]), int(shape[3]), classes=classes)
    names = tuple(dataset.class_names)
    numbered = tuple(str(i) for i in range(len(target.class_names)))
    if target.class_names and target.class_names not in (names, numbered):
        raise InvalidValue(
            f"the model's classes ({', '.join(target.class_names)}) are not those of {data} "
            f"({', '.join(names)})",
            "pass the dataset the model was trained on",
        )
    if len(names) != int(graph.output.shape[-1]):
        raise InvalidValue(
            f"{data} has {len(names)} classes but the model has {graph.output.shape[-1]} outputs",
            "pass the dataset the model was trained on",
        )
    pick = balanced_pick(dataset.y_val, count, seed)
    images = quantize_input(dataset.x_val[pick], graph)
    return images, [int(dataset.y_val[i]) for i in pick], names


def check_device(info: DeviceInfo, target: HilTarget, board_id: str | None = None) -> list[str]:
    """Compare a handshake with ``target``: raise :class:`ModelMismatch`, return warnings."""
    if info.model_sha256 != target.model_sha256:
        raise ModelMismatch(
            f"the device runs model {visible(info.model_sha256[:12])} but the host expects "
            f"{target.model_sha256[:12]} ({target.model_path.name}): the board runs another "
            "model",
            "flash the firmware built for this model ('mnmcu flash'), or pass the project or "
            "model the board was built with",
        )
    if info.input_shape != target.input_shape or info.output_shape != target.output_shape:
        raise ModelMismatch(
            f"the device's tensors are {list(info.input_shape)} -> {list(info.output_shape)}; "
            f"the model's {list(target.input_shape)} -> {list(target.output_shape)}",
            "rebuild the firmware from this model",
        )
    if info.input_dtype != "int8" or info.output_dtype != "int8":
        raise ModelMismatch(
            f"the device's tensors are {visible(info.input_dtype)} -> {visible(info.output_dtype)}"
        )
    warnings = []
    if board_id is not None and info.board != board_id:
        warnings.append(f"the device says it is board {visible(info.board)}, not {board_id}")
    return warnings


@dataclass(frozen=True)
class HilSample:
    """One input's result."""

    index: int
    bit_exact: bool
    top1_device: int
    top1_reference: int
    output: tuple[int, ...]
    expected: tuple[int, ...]
    ticks: int
    micros: int | None
    cycles: int | None
    instructions: int | None
    host_seconds: float
    layers: tuple[tuple[int, int], ...] = ()
    label: int | None = None
    """The input's true class, for a dataset image."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "index": self.index,
            "label": self.label,
            "bit_exact": self.bit_exact,
            "top1_device": self.top1_device,
            "top1_reference": self.top1_reference,
            "output": list(self.output),
            "expected": list(self.expected),
            "ticks": self.ticks,
            "micros": self.micros,
            "cycles": self.cycles,
            "instructions": self.instructions,
            "host_seconds": round(self.host_seconds, 4),
            "layers": [list(layer) for layer in self.layers],
        }


def percentiles(values: Sequence[int]) -> dict[str, float] | None:
    """min, median and p99 (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, math.ceil(0.99 * len(ordered)) - 1)
    return {
        "min": float(ordered[0]),
        "median": float(np.median(ordered)),
        "p99": float(ordered[rank]),
        "max": float(ordered[-1]),
    }


@dataclass
class HilReport:
    """A HIL run: the device, the model, every sample and the link's statistics."""

    device: DeviceInfo
    target: HilTarget
    url: str
    samples: list[HilSample] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    link: dict[str, int] = field(default_factory=dict)
    op_names: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    failure: MnmcuError | None = field(default=None, repr=False)
    class_names: tuple[str, ...] = ()

    @property
    def mismatches(self) -> list[HilSample]:
        """Samples whose output differs from the reference."""
        return [s for s in self.samples if not s.bit_exact]

    @property
    def top1_agreement(self) -> float:
        """Share of samples whose top-1 class equals the reference's."""
        if not self.samples:
            return 0.0
        return sum(s.top1_device == s.top1_reference for s in self.samples) / len(self.samples)

    def class_name(self, index: int) -> str:
        """The name of class ``index`` (its number without names)."""
        return self.class_names[index] if 0 <= index < len(self.class_names) else str(index)

    def accuracy(self) -> dict[str, Any] | None:
        """Top-1 against the true labels of the dataset images, device and host int8.

        The host's int8 top-1 is that of TFLite's reference kernels on the same
        inputs (what the device must equal). None when no input has a label.
        """
        labelled = [s for s in self.samples if s.label is not None]
        if not labelled:
            return None

        def tally(samples: Sequence[HilSample]) -> dict[str, Any]:
            device = sum(s.top1_device == s.label for s in samples)
            host = sum(s.top1_reference == s.label for s in samples)
            return {
                "images": len(samples),
                "device_correct": device,
                "device_top1": device / len(samples),
                "host_int8_correct": host,
                "host_int8_top1": host / len(samples),
            }

        per_class = []
        for label in sorted({s.label for s in labelled if s.label is not None}):
            row = tally([s for s in labelled if s.label == label])
            per_class.append({"class": label, "name": self.class_name(label), **row})
        total = tally(labelled)
        total["device_matches_host"] = sum(s.top1_device == s.top1_reference for s in labelled)
        return {**total, "per_class": per_class}

    def latency(self) -> dict[str, dict[str, float] | None]:
        """Statistics of microseconds, cycles and (QEMU) instructions per inference."""

        def column(name: str) -> list[int]:
            return [v for s in self.samples if (v := getattr(s, name)) is not None]

        return {
            "micros": percentiles(column("micros")),
            "cycles": percentiles(column("cycles")),
            "instructions": percentiles(column("instructions")),
            "ticks": percentiles([s.ticks for s in self.samples]),
        }

    def layer_table(self) -> list[dict[str, Any]]:
        """Per-layer median ticks (and instructions under QEMU), when the device profiled."""
        per_op: dict[int, list[int]] = {}
        for sample in self.samples:
            for index, ticks in sample.layers:
                per_op.setdefault(index, []).append(ticks)
        hz = self.device.tick_hz
        rows = []
        for index, op_ticks in per_op.items():
            median = float(np.median(op_ticks))
            row: dict[str, Any] = {
                "op": index,
                "opcode": self.op_names.get(index, "?"),
                "ticks_median": median,
            }
            if self.device.virtual_time and hz:
                row["instructions_median"] = round(median * 1e9 / hz)
            elif hz:
                row["micros_median"] = round(median * 1e6 / hz, 1)
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "url": self.url,
            "device": self.device.to_dict(),
            "model": {
                "path": str(self.target.model_path),
                "sha256": self.target.model_sha256,
                "input_shape": list(self.target.input_shape),
                "output_shape": list(self.target.output_shape),
            },
            "count": len(self.samples),
            "bit_exact": len(self.samples) - len(self.mismatches),
            "mismatches": [s.index for s in self.mismatches],
            "top1_agreement": self.top1_agreement,
            "class_names": list(self.class_names),
            "accuracy": self.accuracy(),
            "latency": self.latency(),
            "time_is_virtual": self.device.virtual_time,
            "layers": self.layer_table(),
            "link": self.link,
            "warnings": self.warnings,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "samples": [s.to_dict() for s in self.samples],
        }


def _top1(values: Sequence[int]) -> int:
    return int(np.argmax(np.asarray(values)))


def run_hil(
    session: DeviceSession,
    target: HilTarget,
    inputs: np.ndarray,
    profile: bool = False,
    log: TextIO | None = None,
    progress: Progress | None = None,
    board_id: str | None = None,
    labels: Sequence[int | None] = (),
    class_names: Sequence[str] = (),
) -> HilReport:
    """Run every input on the device and compare it with the host reference.

    ``labels`` gives the true class of each input that has one (a dataset
    image; None for the others), ``class_names`` their names (default: the
    target's): the report then has top-1 accuracy against them, of the device
    and of the host's int8 reference. Each result is appended to ``log`` (one
    JSON line, flushed) as it arrives.
    A link failure ends the run: the report keeps what was measured,
    ``error`` says what failed, and :func:`finish` raises it once the caller
    has written the reports.
    """
    from mnmcu.graph import load_graph
    from mnmcu.reference import expected_outputs

    info = session.info or session.handshake()
    report = HilReport(
        device=info,
        target=target,
        url=session.url,
        class_names=tuple(class_names or target.class_names),
    )
    report.warnings.extend(check_device(info, target, board_id))
    if profile and not info.profiling:
        raise InvalidValue(
            "the firmware was built without per-layer profiling",
            "rebuild it with PLATFORMIO_BUILD_FLAGS=-DMNMCU_PROFILE (e.g. "
            "'PLATFORMIO_BUILD_FLAGS=-DMNMCU_PROFILE pio run -d PROJECT'), or drop --profile",
        )
    flatbuffer = target.flatbuffer
    report.op_names = {op.index: op.opcode for op in load_graph(flatbuffer).ops}
    batch = np.asarray(inputs, dtype=np.int8).reshape((-1, *target.input_shape[1:]))
    expected = np.asarray(expected_outputs(flatbuffer, batch, target.arithmetic))
    expected = expected.reshape(len(batch), -1)
    progress = progress or NullProgress()
    progress.start(f"HIL on {info.board} ({session.url})", len(batch))
    started = time.monotonic()
    try:
        for index, (x, want) in enumerate(zip(batch, expected, strict=True)):
            result = session.infer(x.tobytes(), profile=profile)
            got = tuple(int(v) for v in np.frombuffer(result.output, dtype=np.int8))
            ref = tuple(int(v) for v in want.astype(np.int8))
            sample = HilSample(
                index=index,
                bit_exact=got == ref,
                top1_device=_top1(got),
                top1_reference=_top1(ref),
                output=got,
                expected=ref,
                ticks=result.ticks,
                micros=result.micros,
                cycles=result.cycles,
                instructions=result.instructions,
                host_seconds=result.host_seconds,
                layers=result.layers,
                label=labels[index] if index < len(labels) else None,
            )
            report.samples.append(sample)
            if log is not None:
                log.write(json.dumps(sample.to_dict()) + "\n")
                log.flush()
            bad = len(report.mismatches)
            progress.advance(1, f"{len(report.samples) - bad} exact, {bad} differ")
    except MnmcuError as exc:
        report.error = f"after {len(report.samples)} of {len(batch)} inputs: {exc}"
        report.failure = exc
    finally:
        progress.finish()
        report.seconds = time.monotonic() - started
        report.link = session.stats.to_dict()
    return report


def write_json(report: HilReport, path: Path) -> Path:
    """The report as JSON."""
    write_file(path, json.dumps(report.to_dict(), indent=2) + "\n")
    return path


def write_junit(report: HilReport, path: Path) -> Path:
    """The report as JUnit XML: one test case per input, a failure for each mismatch.

    Text the device or the link supplied (board, runtime, error messages) goes
    through :func:`mnmcu.escape.xml_text`, so the document stays valid XML.
    """
    x = xml_text
    suite = ElementTree.Element(
        "testsuite",
        name=x(f"mnmcu-hil.{report.device.board}"),
        tests=str(len(report.samples) + (1 if report.error else 0)),
        failures=str(len(report.mismatches)),
        errors="1" if report.error else "0",
        time=f"{report.seconds:.3f}",
    )
    props = ElementTree.SubElement(suite, "properties")
    for key, value in (
        ("board", report.device.board),
        ("runtime", report.device.runtime),
        ("model_sha256", report.device.model_sha256),
        ("url", report.url),
    ):
        ElementTree.SubElement(props, "property", name=key, value=x(value))
    for sample in report.samples:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=x(f"hil.{report.device.board}"),
            name=f"input_{sample.index:04d}",
            time=f"{sample.host_seconds:.4f}",
        )
        if not sample.bit_exact:
            failure = ElementTree.SubElement(case, "failure", message="output differs")
            failure.text = f"device {list(sample.output)} != reference {list(sample.expected)}"
    if report.error:
        case = ElementTree.SubElement(suite, "testcase", classname="hil.link", name="link")
        ElementTree.SubElement(case, "error", message=x(report.error))
    data = ElementTree.tostring(suite, encoding="utf-8", xml_declaration=True)
    write_file(path, data)
    return path


def summary_lines(report: HilReport) -> list[str]:
    """The human summary the CLI prints."""
    n = len(report.samples)
    exact = n - len(report.mismatches)
    lines = [
        # what the device announced, shown on one line whatever it sent
        visible(
            f"device: board={report.device.board} runtime={report.device.runtime} "
            f"model={report.device.model_sha256[:12]} timer={report.device.timer} "
            f"arena={report.device.arena_bytes} B"
        ),
        f"{exact}/{n} outputs bit-exact with TFLite's reference kernels; "
        f"top-1 agreement {report.top1_agreement:.1%}",
    ]
    latency = report.latency()
    for key, unit in (("micros", "us"), ("cycles", "cycles"), ("instructions", "instructions")):
        stats = latency[key]
        if stats is not None:
            lines.append(
                f"latency ({unit}): min {stats['min']:,.0f}  median {stats['median']:,.0f}  "
                f"p99 {stats['p99']:,.0f}"
            )
    if report.device.virtual_time:
        lines.append(
            "time is QEMU's virtual time (-icount shift=0): the figures are guest instruction "
            "counts, not microseconds"
        )
    elif latency["cycles"] is None:
        lines.append("cycles: the device has no cycle counter")
    link = report.link
    if link.get("retransmissions") or link.get("bad_frames_received"):
        lines.append(
            f"link: {link.get('retransmissions', 0)} retransmissions, "
            f"{link.get('bad_frames_received', 0)} bad frames received, "
            f"{link.get('device_framing_errors', 0)} frames the device could not read"
        )
    return lines


MAX_IMAGE_LINES = 50
"""Per-image lines :func:`image_lines` prints at most (all of them are in report.jsonl)."""


def _score(report: HilReport, sample: HilSample) -> float:
    """The device's top output, dequantized (a probability for a softmax output)."""
    device = report.device
    return (sample.output[sample.top1_device] - device.output_zero_point) * device.output_scale


def _cost(report: HilReport, sample: HilSample) -> str:
    if sample.instructions is not None:
        return f"{sample.instructions:,} instructions"
    if sample.micros is not None:
        return f"{sample.micros:,} us"
    return f"{sample.ticks:,} ticks"


def image_lines(report: HilReport, limit: int = MAX_IMAGE_LINES) -> list[str]:
    """One line per dataset image: true label, the device's top-1 and score, the host's.

    "match" says the device's top-1 equals the label; "bit-exact" (or
    "DIFFERS") compares every output byte with the host's int8 reference.
    """
    labelled = [s for s in report.samples if s.label is not None]
    if not labelled:
        return []
    width = max(len(report.class_name(i)) for s in labelled for i in (s.label or 0, s.top1_device))
    width = max(width, len("label"))
    lines = []
    for sample in labelled[:limit]:
        label = sample.label if sample.label is not None else -1
        lines.append(
            visible(
                f"input {sample.index:>3}  label {report.class_name(label):<{width}}  device "
                f"{report.class_name(sample.top1_device):<{width}} "
                f"({_score(report, sample):6.1%})  host int8 "
                f"{report.class_name(sample.top1_reference):<{width}}  {_cost(report, sample)}  "
                f"{'match' if sample.top1_device == label else 'WRONG'}, "
                f"{'bit-exact' if sample.bit_exact else 'DIFFERS'}"
            )
        )
    if len(labelled) > limit:
        lines.append(f"... {len(labelled) - limit} more images in report.jsonl")
    return lines


def accuracy_lines(report: HilReport) -> list[str]:
    """Top-1 against the labels, overall and per class, device beside host int8."""
    acc = report.accuracy()
    if acc is None:
        return []
    n = acc["images"]
    lines = [
        f"top-1 against the labels on {n} dataset images: device {acc['device_correct']}/{n} "
        f"({acc['device_top1']:.1%}), host int8 {acc['host_int8_correct']}/{n} "
        f"({acc['host_int8_top1']:.1%}); device top-1 = host int8 top-1 on "
        f"{acc['device_matches_host']}/{n} ({acc['device_matches_host'] / n:.1%})"
    ]
    width = max([len("class"), *(len(row["name"]) for row in acc["per_class"])])
    lines.append(f"  {'class':<{width}}  images  device top-1  host int8 top-1")
    for row in acc["per_class"]:
        lines.append(
            visible(
                f"  {row['name']:<{width}}  {row['images']:>6}  "
                f"{row['device_correct']:>5}/{row['images']:<6}  "
                f"{row['host_int8_correct']:>8}/{row['images']}"
            )
        )
    return lines


def layer_lines(report: HilReport) -> list[str]:
    """The per-layer table as text lines."""
    rows = report.layer_table()
    if not rows:
        return []
    unit = "instructions" if report.device.virtual_time else "us"
    key = "instructions_median" if report.device.virtual_time else "micros_median"
    total = sum(float(r.get(key, 0)) for r in rows) or 1.0
    lines = [f"{'op':>4}  {'opcode':<18} {unit + ' (median)':>22} {'share':>7}"]
    for row in rows:
        value = float(row.get(key, 0))
        lines.append(f"{row['op']:>4}  {row['opcode']:<18} {value:>22,.1f} {value / total:>7.1%}")
    return lines


def default_report_path(target: HilTarget) -> Path:
    """``<project>/hil/report.json``, or ``hil-report.json`` here without a project."""
    if target.project_dir is not None:
        return target.project_dir / "hil" / "report.json"
    return Path("hil-report.json")


def report_paths(report_json: Path) -> tuple[Path, Path, Path]:
    """JSON report, JUnit XML and JSONL log paths that go together."""
    stem = report_json.with_suffix("")
    return report_json, stem.with_suffix(".junit.xml"), stem.with_suffix(".jsonl")


def check_report_paths(*paths: Path) -> None:
    """Refuse report paths that cannot be written, before the run rather than after it."""
    for path in paths:
        if path.is_dir():
            raise InvalidValue(
                f"--report {path} is a folder; the report is a file",
                f"give a file name, e.g. --report {path / 'report.json'}",
            )
        if path.exists() and not path.is_file():
            raise InvalidValue(f"--report: {path} exists and is not a regular file")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise InvalidValue(
                        f"--report {path}: {parent} is a file, not a folder",
                        "give a report path in a folder",
                    )
                break


def finish(report: HilReport) -> None:
    """Raise the run's link failure, or :class:`HilMismatch` when any output differs."""
    if report.failure is not None:
        failure = report.failure
        raise type(failure)(
            f"HIL stopped after {len(report.samples)} inputs: {failure.message}", failure.hint
        )
    bad = report.mismatches
    if bad:
        first = bad[0]
        raise HilMismatch(
            f"{len(bad)} of {len(report.samples)} outputs differ from the host reference "
            f"(first: input {first.index}, device {list(first.output)[:8]} != reference "
            f"{list(first.expected)[:8]})",
            "run 'mnmcu verify MODEL.tflite' to check the generated C on the host",
        )
    logger.debug("HIL: %d samples, all bit-exact", len(report.samples))
