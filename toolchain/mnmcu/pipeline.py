"""The stages chained: model -> train -> quantize -> analyze, into one folder.

A model folder holds ``model.json`` (the :class:`ModelSpec`), ``model.keras``,
after training ``train.json``, after quantization ``model_int8.tflite`` and
``quantize.json``, and after ``build`` a ``report.json`` that gathers them.
Each function here is one CLI command and also the scripting API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mnmcu import __version__
from mnmcu.analyze import Analysis, analyze
from mnmcu.boards import Board
from mnmcu.errors import InvalidValue, MnmcuError, ModelError, OutputExists
from mnmcu.estimate import estimate_against
from mnmcu.graph import load_graph
from mnmcu.log import NullProgress, Progress, logger
from mnmcu.model.augment import DEFAULT_AUGMENT, check_augment
from mnmcu.model.spec import ModelSpec, check_class_names
from mnmcu.outdir import OutputFolder, output_folder, sha256_bytes, sha256_of
from mnmcu.report_html import REPORT_HTML, render_report_html

SPEC_FILE = "model.json"
KERAS_FILE = "model.keras"
TRAIN_FILE = "train.json"
TFLITE_FILE = "model_int8.tflite"
QUANT_FILE = "quantize.json"
REPORT_FILE = "report.json"


# Every file a model or build folder can hold, and the ones a fresh model makes stale.
MODEL_FILES = (SPEC_FILE, KERAS_FILE)
STALE_AFTER_NEW_MODEL = (TRAIN_FILE, TFLITE_FILE, QUANT_FILE, REPORT_FILE, REPORT_HTML)


def check_not_inside(out: Path, data: str, option: str = "--out") -> None:
    """Refuse an output folder inside the dataset folder ``data`` (it would become a class)."""
    if data == "builtin" or data.startswith("builtin:"):
        return
    try:
        inside = Path(out).resolve().is_relative_to(Path(data).resolve())
    except (OSError, RuntimeError):
        return
    if inside:
        raise InvalidValue(
            f"{option} {out} is inside the dataset folder {data}, where it would be read as a "
            "class of images",
            f"choose an {option} outside {data}",
        )


def _read_json(path: Path, what: str, hint: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{what} {path} is missing", hint) from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{what} {path} is unreadable ({exc})", hint) from None


def create_model(
    spec: ModelSpec, out: Path, force: bool = False, seed: int = 0, untrained: bool = False
) -> Path:
    """Build the model described by ``spec`` and save it in folder ``out``.

    ``seed`` seeds the random initial weights, so a build is repeatable.
    ``untrained`` marks a model that goes to int8 without training: its
    classifier biases are spread so that the logits have a range TFLite accepts
    (ImageNet backbones keep their weights either way). With ``force`` the
    outputs of an earlier model in ``out`` (training record, .tflite, reports)
    are deleted when mnmcu wrote them and they are unchanged.
    """
    with output_folder(out, force, "mnmcu model") as folder:
        folder.check_writable(MODEL_FILES)
        from mnmcu.model.mobilenet import build_model, set_random_seed, spread_classifier_biases
        from mnmcu.model.train import save_model

        set_random_seed(seed)
        model = build_model(spec)
        if untrained:
            spread_classifier_biases(model)
        folder.remove_stale(STALE_AFTER_NEW_MODEL)
        folder.write_with(KERAS_FILE, lambda tmp: save_model(model, tmp), suffix=".keras")
        folder.write_json(SPEC_FILE, spec.to_dict())
        folder.save_manifest()
        params = model_params(spec)
        counted = f"{params:,} parameters (int8 weights and biases), " if params else ""
        logger.info("%s: %ssaved to %s", spec.name, counted, out)
    return out


def model_params(spec: ModelSpec) -> int | None:
    """The parameters of ``spec``'s int8 model (:func:`mnmcu.analyze.count_params`).

    Counted on the graph :mod:`mnmcu.synth` derives from the architecture, which
    equals the converted model's; None for an architecture it has no shape model for.
    """
    from mnmcu.analyze import count_params
    from mnmcu.synth import SYNTH_ARCHS, synth_graph

    if spec.arch not in SYNTH_ARCHS:
        return None
    return count_params(
        synth_graph(spec.arch, spec.alpha, spec.resolution, spec.classes, spec.channels)
    )


def load_spec(model_dir: Path) -> ModelSpec:
    """The :class:`ModelSpec` saved in a model folder."""
    if not model_dir.is_dir():
        raise ModelError(
            f"model folder {model_dir} does not exist", "create one with 'mnmcu model --out DIR'"
        )
    return ModelSpec.load(model_dir / SPEC_FILE)


@dataclass(frozen=True)
class TrainOptions:
    """What ``train`` needs besides the model: the data and the schedule."""

    data: str = "builtin"
    epochs: int | None = None  # None: TrainConfig's default, likewise below
    batch_size: int | None = None
    learning_rate: float | None = None
    patience: int | None = None
    seed: int = 0
    augment: str = DEFAULT_AUGMENT
    """One of :data:`mnmcu.model.augment.AUGMENTATIONS`."""
    val_fraction: float = 0.2
    builtin_train: int = 2000
    builtin_val: int = 480


def load_data(
    data: str, resolution: int, channels: int, classes: int | None, options: TrainOptions
) -> Any:
    """The dataset ``data`` ('builtin' or an image folder) at the model's input size."""
    from mnmcu.model.data import load_dataset

    builtin = data == "builtin" or data.startswith("builtin:")
    return load_dataset(
        data,
        resolution,
        channels,
        val_fraction=options.val_fraction,
        seed=options.seed,
        n_train=options.builtin_train,
        n_val=options.builtin_val,
        classes=classes if builtin else None,
    )


def _load_data(spec: ModelSpec, options: TrainOptions) -> Any:
    return load_data(options.data, spec.resolution, spec.channels, spec.classes, options)


def train(
    model_dir: Path,
    options: TrainOptions,
    out: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    dataset: Any = None,
) -> dict[str, Any]:
    """Train the model in ``model_dir`` on ``options.data``; save it to ``out``.

    ``out`` defaults to ``model_dir``; a folder that already holds a trained
    model is only written over with ``force``. The dataset's class names are
    checked before training (they go into the firmware).
    """
    spec = load_spec(model_dir)
    out = out or model_dir
    check_not_inside(out, options.data)
    check_augment(options.augment)
    own = Path(out).resolve() == Path(model_dir).resolve()
    if (out / TRAIN_FILE).exists() and not force:
        raise OutputExists(
            f"{out} already holds a trained model ({TRAIN_FILE})",
            "pass --force to train again over it, or choose another --out",
        )
    with output_folder(out, force, "mnmcu train", exists_ok=own) as folder:
        folder.check_writable([*MODEL_FILES, TRAIN_FILE])
        from mnmcu.model.train import TrainConfig, load_model, save_model, train_model

        model = load_model(model_dir / KERAS_FILE)
        if dataset is None:
            dataset = _load_data(spec, options)
        _check_class_names(dataset, options)
        if spec.class_names != tuple(dataset.class_names):
            if len(dataset.class_names) != spec.classes:
                raise ModelError(
                    f"the model has {spec.classes} classes but {options.data} has "
                    f"{len(dataset.class_names)} ({', '.join(dataset.class_names)})",
                    f"build the model with --classes {len(dataset.class_names)}",
                )
            spec = replace(spec, class_names=tuple(dataset.class_names))
        chosen = {
            "epochs": options.epochs,
            "batch_size": options.batch_size,
            "learning_rate": options.learning_rate,
            "patience": options.patience,
        }
        given: dict[str, Any] = {k: v for k, v in chosen.items() if v is not None}
        warmup = int(TrainConfig().warmup_epochs)
        if given.get("epochs", warmup + 1) <= warmup:  # too short to warm up
            given["warmup_epochs"] = 0
        config = TrainConfig(seed=options.seed, augment=options.augment, **given)
        result = train_model(model, dataset, config, progress)
        folder.write_with(KERAS_FILE, lambda tmp: save_model(model, tmp), suffix=".keras")
        folder.write_json(SPEC_FILE, spec.to_dict())
        summary = {
            "data": dataset.source,
            "options": asdict(options),
            "classes": list(dataset.class_names),
            "train_images": len(dataset.y_train),
            "val_images": len(dataset.y_val),
            "skipped_files": [list(s) for s in dataset.skipped],
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "float_accuracy": result.float_accuracy,
            "seconds": result.seconds,
            "history": list(result.history),
            "keras_sha256": folder.written[KERAS_FILE],
        }
        folder.write_json(TRAIN_FILE, summary)
        folder.save_manifest()
    return summary


def quantize(
    model_dir: Path,
    data: str | None = None,
    representative: int = 200,
    seed: int = 0,
    progress: Progress | None = None,
    dataset: Any = None,
) -> dict[str, Any]:
    """Convert the model in ``model_dir`` to full int8 and compare float vs int8.

    The representative images come from the training split of ``data``
    (default: the data the model was trained on); accuracy is measured on
    the held-out split. ``model_int8.tflite`` and ``quantize.json`` are
    written only when both are ready, each atomically; ``quantize.json``
    names the SHA-256 of the .tflite and of the Keras model it came from.
    """
    from mnmcu.model.data import representative_samples
    from mnmcu.model.mobilenet import with_batch_size
    from mnmcu.model.train import load_model
    from mnmcu.quantize import compare_accuracy, convert_int8

    spec = load_spec(model_dir)
    with output_folder(model_dir, False, "mnmcu quantize", option="MODEL_DIR", exists_ok=True) as (
        folder
    ):
        model = load_model(model_dir / KERAS_FILE)  # a damaged file fails before anything else
        keras_sha = sha256_of(model_dir / KERAS_FILE)
        trained = (model_dir / TRAIN_FILE).exists()
        options = TrainOptions()
        if trained:
            saved = _read_json(model_dir / TRAIN_FILE, "training record", "train the model again")
            options = _saved_options(saved, model_dir)
        if data is not None:
            options = replace(options, data=data)
        check_not_inside(model_dir, options.data, "MODEL_DIR")
        if not trained:
            logger.warning(
                "%s has not been trained ('mnmcu train'); int8 ranges and accuracy are of "
                "random weights",
                model_dir,
            )
        if dataset is None:
            dataset = _load_data(spec, options)
        fixed = with_batch_size(model, spec, 1)
        samples = representative_samples(dataset, representative, seed)
        flatbuffer = convert_int8(fixed, samples, progress)
        acc = compare_accuracy(model, flatbuffer, dataset.x_val, dataset.y_val, progress)
        summary = {
            "tflite": TFLITE_FILE,
            "tflite_bytes": len(flatbuffer),
            "tflite_sha256": sha256_bytes(flatbuffer),
            "keras_sha256": keras_sha,
            "representative_images": int(len(samples)),
            "data": dataset.source,
            "accuracy": acc.to_dict(),
        }
        folder.write(TFLITE_FILE, flatbuffer)
        folder.write_json(QUANT_FILE, summary)
        folder.save_manifest()
    return summary


def _saved_options(saved: Any, model_dir: Path) -> TrainOptions:
    try:
        return TrainOptions(**saved["options"])
    except (KeyError, TypeError) as exc:
        raise ModelError(
            f"training record {model_dir / TRAIN_FILE} is malformed ({exc!r})",
            "train the model again",
        ) from None


def analyze_file(
    tflite: Path, board: Board | None = None, measure: bool = True, schedule: str = "layer"
) -> Analysis:
    """Parse and analyse a .tflite file (must be a full-int8 MobileNet-like model).

    With ``measure``, the TFLite Micro arena is measured with the tflite-micro
    runtime (a subprocess, a few seconds); the AOT arena always comes from the
    memory plan the generated C uses for ``schedule`` (:mod:`mnmcu.estimate`).
    """
    from mnmcu.errors import MnmcuError
    from mnmcu.graph import check_int8_mobilenet
    from mnmcu.quantize import check_softmax_scale

    graph = load_graph(tflite)
    check_int8_mobilenet(graph)
    check_softmax_scale(graph)
    tflm_arena = None
    if measure:
        from mnmcu.reference import tflm_run

        try:
            tflm_arena = tflm_run(tflite).arena_total or None
        except MnmcuError as exc:
            reason = " ".join(str(exc).split())  # one line, whatever the runtime printed
            logger.warning("TFLite Micro arena not measured (%s); estimating it", reason)
    return analyze(graph, board, tflm_arena=tflm_arena, schedule=schedule)


FIRMWARE_DIR = "firmware"


def emit_firmware(
    out: Path,
    board: Board,
    runtime: str | None = None,
    class_names: tuple[str, ...] = (),
    sample: tuple[Any, str] | None = None,
    force: bool = True,
    bare_metal: bool = False,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> Any:
    """Write the PlatformIO project for the model in ``out`` into ``out/firmware``.

    ``sample`` is a float image batch of one and a description of where it
    comes from (the first held-out image): the project embeds it, and its
    README and sources say so; without it the project's default sample.
    """
    from mnmcu.emit.project import emit_project
    from mnmcu.provision import provision_project
    from mnmcu.quantize import quantize_input

    tflite = out / TFLITE_FILE
    image = source = None
    if sample is not None:
        image = quantize_input(sample[0], load_graph(tflite))[0]
        source = sample[1]
    info = emit_project(
        tflite,
        board,
        out / FIRMWARE_DIR,
        runtime=runtime,
        sample=image,
        class_names=class_names,
        force=force,
        bare_metal=bare_metal,
        sample_source=source,
        arithmetic=arithmetic,
        schedule=schedule,
    )
    provision_project(info.project_dir)  # a plain 'pio run' there builds offline too
    return info


@dataclass
class StageTimes:
    """Wall-clock seconds of each stage, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)
    on_stage: Callable[[str, float], None] | None = None

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        if self.on_stage is not None:
            self.on_stage(name, self.seconds[name])


@dataclass(frozen=True)
class BuildResult:
    """What ``build`` made: the report (as written to report.json) and the analysis."""

    report: dict[str, Any]
    analysis: Analysis


def build(
    spec: ModelSpec,
    board: Board,
    out: Path,
    options: TrainOptions,
    train_model: bool = True,
    representative: int = 200,
    force: bool = False,
    progress: Progress | None = None,
    on_stage: Callable[[str, float], None] | None = None,
    classes_from_data: bool = False,
    runtime: str | None = None,
    compile_firmware: bool = True,
    bare_metal: bool = False,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> BuildResult:
    """Run every stage that exists for ``spec`` on ``board`` into ``out``.

    Returns what ``report.json`` holds and the model's :class:`Analysis`.

    With ``classes_from_data`` the number of classes (and their names) come
    from the dataset instead of ``spec.classes``. ``bare_metal`` builds the
    board's bare-metal firmware (see :meth:`Board.bare_metal`); ``arithmetic``
    the AOT runtime's FULLY_CONNECTED requantisation (``tflm`` or ``litert``),
    ``schedule`` its schedule (``layer``, ``stream`` or ``auto``, see
    :mod:`mnmcu.stream`).
    """
    if bare_metal:
        board.bare_metal()  # fail before training if the board has none
    _check_firmware_options(
        arithmetic, schedule, "aot" if bare_metal else runtime or board.runtime.default
    )
    check_not_inside(out, options.data)
    check_augment(options.augment)
    with output_folder(out, force, "mnmcu build") as folder:
        outputs = [*MODEL_FILES, TFLITE_FILE, QUANT_FILE, REPORT_FILE, REPORT_HTML]
        folder.check_writable(outputs + ([TRAIN_FILE] if train_model else []))
        if board.platformio is not None:
            _check_firmware_folder(out / FIRMWARE_DIR, force)
        return _build_into(
            folder,
            spec,
            board,
            options,
            train_model,
            representative,
            progress or NullProgress(),
            StageTimes(on_stage=on_stage),
            classes_from_data,
            runtime,
            compile_firmware,
            bare_metal,
            arithmetic,
            schedule,
        )


def _check_firmware_options(arithmetic: str, schedule: str, runtime: str) -> None:
    """Refuse, before any stage runs, an arithmetic or schedule the firmware cannot have."""
    from mnmcu.emit.project import check_arithmetic, check_schedule

    check_arithmetic(arithmetic, runtime)
    check_schedule(schedule, runtime)


def _check_firmware_folder(path: Path, force: bool) -> None:
    """Refuse, before training, a firmware folder ``emit`` would refuse for its manifest."""
    from mnmcu.emit.project import PROJECT_FILE
    from mnmcu.outdir import read_manifest

    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise OutputExists(
                f"output folder {path} already holds files",
                "choose another --out, or pass --force to write over mnmcu's files there",
            )
        read_manifest(path, PROJECT_FILE)


def _check_class_names(dataset: Any, options: TrainOptions) -> None:
    """Refuse, before training, class names the firmware cannot carry."""
    builtin = options.data == "builtin" or options.data.startswith("builtin:")
    where = "" if builtin else f" in {options.data}"
    check_class_names(dataset.class_names, "class" if builtin else "class folder", where)


def _check_classes(spec: ModelSpec, dataset: Any, options: TrainOptions) -> None:
    """Refuse a --classes that the dataset folder does not have, before training."""
    if len(dataset.class_names) != spec.classes:
        names = ", ".join(dataset.class_names)
        raise InvalidValue(
            f"--classes {spec.classes} but {options.data} has {len(dataset.class_names)} class "
            f"folders ({names})",
            "leave out --classes (the folders set it) or pass "
            f"--classes {len(dataset.class_names)}",
        )


def _build_into(
    folder: OutputFolder,
    spec: ModelSpec,
    board: Board,
    options: TrainOptions,
    train_model: bool,
    representative: int,
    progress: Progress,
    times: StageTimes,
    classes_from_data: bool,
    runtime: str | None,
    compile_firmware: bool,
    bare_metal: bool,
    arithmetic: str,
    schedule: str,
) -> BuildResult:
    out = folder.path
    with times.stage("data"):
        classes = None if classes_from_data else spec.classes
        dataset = load_data(options.data, spec.resolution, spec.channels, classes, options)
        if not classes_from_data:
            _check_classes(spec, dataset, options)
        _check_class_names(dataset, options)
        spec = replace(
            spec, classes=len(dataset.class_names), class_names=tuple(dataset.class_names)
        )
    with times.stage("model"):
        create_model(spec, out, force=True, seed=options.seed, untrained=not train_model)
    train_summary: dict[str, Any] | None = None
    if train_model:
        with times.stage("train"):
            train_summary = train(out, options, progress=progress, force=True, dataset=dataset)
    with times.stage("quantize"):
        quant = quantize(
            out,
            data=options.data,
            representative=representative,
            progress=progress,
            dataset=dataset,
        )
    with times.stage("analyze"):
        analysis = analyze_file(out / TFLITE_FILE, board, schedule=schedule)
    report = {
        "mnmcu_version": __version__,
        "board": board.id,
        "arch": spec.arch,
        "alpha": spec.alpha,
        "resolution": spec.resolution,
        "channels": spec.channels,
        "classes": spec.classes,
        "class_names": list(spec.class_names),
        "params": analysis.params,
        "macs": analysis.macs,
        "tflite": TFLITE_FILE,
        "tflite_bytes": analysis.tflite_bytes,
        "tflite_sha256": quant["tflite_sha256"],
        "accuracy": quant["accuracy"],
        "training": train_summary,
    }
    sample = None
    if dataset is not None and len(dataset.x_val):
        label = dataset.class_names[int(dataset.y_val[0])]
        sample = (
            dataset.x_val[:1],
            f"the first held-out image of {dataset.source}, class {label}",
        )
    return _firmware_into(
        folder, board, analysis, report, runtime, spec.class_names, sample,
        compile_firmware, bare_metal, times, progress, arithmetic, schedule,
    )  # fmt: skip


def _firmware_into(
    folder: OutputFolder,
    board: Board,
    analysis: Analysis,
    report: dict[str, Any],
    runtime: str | None,
    class_names: tuple[str, ...],
    sample: tuple[Any, str] | None,
    compile_firmware: bool,
    bare_metal: bool,
    times: StageTimes,
    progress: Progress,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> BuildResult:
    """Complete ``report`` with the analysis, emit and compile the firmware, write the reports.

    ``sample`` is a float image batch of one and where it comes from, or None
    (the project's default sample).
    """
    out = folder.path
    firmware: dict[str, Any] | None = None
    report.update(
        {
            "analysis": analysis.to_dict(),
            "firmware": firmware,
            "stage_seconds": times.seconds,
            "board_limits": {
                "flash_bytes": board.memory.flash_bytes,
                "ram_bytes": board.memory.ram_bytes,
            },
            "memory_plan": _aot_plan(out / TFLITE_FILE, board, schedule),
        }
    )

    def write_reports(html: bool = True) -> None:
        folder.write_json(REPORT_FILE, report)
        if html:
            folder.write(REPORT_HTML, render_report_html(report))
        folder.save_manifest()

    if board.platformio is not None:
        report["firmware"] = firmware = {}
        with times.stage("emit"):
            project = emit_firmware(
                out, board, runtime, class_names, sample, bare_metal=bare_metal,
                arithmetic=arithmetic, schedule=schedule,
            )  # fmt: skip
            firmware["project"] = str(project.project_dir)
            firmware["runtime"] = project.runtime
            firmware["arithmetic"] = project.arithmetic
            if project.runtime == "aot":
                firmware["schedule"] = project.schedule
                firmware["streamed_ops"] = project.streamed_ops
                firmware["arena_bytes"] = project.arena_bytes
                firmware["layer_arena_bytes"] = project.layer_arena_bytes
        if compile_firmware:
            # what was made so far stays on record if the compiler fails
            write_reports(html=False)
            with times.stage("compile"):
                from mnmcu.build import footprint, pio_run

                try:
                    elf = pio_run(project.project_dir, progress=progress)
                except MnmcuError:
                    write_reports()
                    raise
                firmware["elf"] = str(elf)
                fp = footprint(elf, project)
                firmware["footprint"] = fp.to_dict()
                est = analysis.estimates.get(project.runtime)
                if est is not None:
                    firmware["estimate"] = estimate_against(est, fp.flash_bytes, fp.ram_bytes)
    write_reports()
    return BuildResult(report, analysis)


def deploy(
    tflite: Path,
    board: Board,
    out: Path,
    runtime: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_stage: Callable[[str, float], None] | None = None,
    compile_firmware: bool = True,
    bare_metal: bool = False,
    arithmetic: str = "tflm",
    schedule: str = "layer",
) -> BuildResult:
    """``mnmcu build --tflite``: firmware and reports for an int8 ``.tflite`` made elsewhere.

    No model, training or quantization stage: the model is checked (the ops
    mnmcu runs, full int8, batch 1), copied into ``out`` as
    ``model_int8.tflite``, analysed, emitted and compiled as ``build`` does;
    ``report.json`` has no accuracy or training (``None``) and names the
    source file. The embedded sample is the project's default one.
    """
    from mnmcu.emit.project import is_image_input
    from mnmcu.graph import check_int8_mobilenet
    from mnmcu.validate import check_single_image

    if bare_metal:
        board.bare_metal()
    _check_firmware_options(
        arithmetic, schedule, "aot" if bare_metal else runtime or board.runtime.default
    )
    graph = load_graph(tflite)
    check_int8_mobilenet(graph)
    check_single_image(graph)
    try:
        data = Path(tflite).read_bytes()
    except OSError as exc:
        raise InvalidValue(f"cannot read {tflite} ({exc.strerror})") from None
    times = StageTimes(on_stage=on_stage)
    with output_folder(out, force, "mnmcu build") as folder:
        folder.check_writable([TFLITE_FILE, REPORT_FILE, REPORT_HTML])
        if board.platformio is not None:
            _check_firmware_folder(out / FIRMWARE_DIR, force)
        with times.stage("analyze"):
            folder.write(TFLITE_FILE, data)
            analysis = analyze_file(folder.path / TFLITE_FILE, board, schedule=schedule)
        shape = graph.input.shape
        report: dict[str, Any] = {
            "mnmcu_version": __version__,
            "board": board.id,
            "source_tflite": Path(tflite).name,
            "arch": None,
            "alpha": None,
            "resolution": int(shape[1]) if is_image_input(graph) else None,
            "channels": int(shape[-1]) if len(shape) == 4 else None,
            "classes": int(graph.output.shape[-1]),
            "class_names": [],
            "params": analysis.params,
            "macs": analysis.macs,
            "tflite": TFLITE_FILE,
            "tflite_bytes": analysis.tflite_bytes,
            "tflite_sha256": sha256_bytes(data),
            "accuracy": None,
            "training": None,
        }
        return _firmware_into(
            folder, board, analysis, report, runtime, (), None, compile_firmware, bare_metal,
            times, progress or NullProgress(), arithmetic, schedule,
        )  # fmt: skip


def _aot_plan(tflite: Path, board: Board, schedule: str = "layer") -> dict[str, object]:
    """The AOT runtime's memory plan of the model, as the board's generated C uses it."""
    from mnmcu.emit.aot import board_kernels, firmware_graph
    from mnmcu.stream import schedule_plan

    graph = firmware_graph(load_graph(tflite))
    return schedule_plan(graph, board_kernels(board), schedule).to_dict()
