"""The ``mnmcu`` command line: parses options and calls the library.

All commands are registered here; each one is a few lines over a function
of :mod:`mnmcu.pipeline`, :mod:`mnmcu.boards` or :mod:`mnmcu.analyze`.
"""

from __future__ import annotations

import json
import math
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mnmcu import __version__
from mnmcu.errors import InvalidValue, MnmcuError, ToolMissing
from mnmcu.escape import shell_join, visible
from mnmcu.model.augment import AUGMENTATIONS, DEFAULT_AUGMENT
from mnmcu.model.spec import (
    ARCHS,
    MAX_CLASSES,
    ModelSpec,
    check_alpha,
    parse_float,
    resolution_from,
)

_verbosity = 0
MAX_SEED = 2**32 - 1
MAX_BAUD = 20_000_000
MAX_LATENCY_MS = 3_600_000.0


if TYPE_CHECKING:
    _FloatParam = click.ParamType[float, Any]
else:  # click before 8.2 has no generic ParamType
    _FloatParam = click.ParamType


class Finite(_FloatParam):
    """A float option: finite (no nan or inf) and within [low, high] (``low`` open if asked).

    click's FloatRange lets ``nan`` through (every comparison with it is false).
    """

    name = "number"

    def __init__(self, low: float, high: float, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        too_low = number <= self.low if self.low_open else number < self.low
        if too_low or number > self.high:
            bracket = "(" if self.low_open else "["
            self.fail(f"{value!r} is not in {bracket}{self.low:g}, {self.high:g}]", param, ctx)
        return number

    def __repr__(self) -> str:
        return f"Finite({self.low:g}, {self.high:g})"


def _int(name: str, text: str, allowed: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidValue(f"{name} {text!r} is not a whole number", allowed) from None


def _spec_from_flags(
    arch: str,
    alpha: str,
    rho: str | None,
    resolution: str | None,
    classes: str,
    grayscale: bool,
    pretrained: str | None,
) -> ModelSpec:
    a = check_alpha(parse_float("alpha", alpha), arch)
    r = parse_float("rho", rho) if rho is not None else None
    n = (
        _int("resolution", resolution, "use an input size from 32 to 1024 pixels, e.g. 96")
        if resolution is not None
        else None
    )
    k = _int("classes", classes, "use at least 2 classes")
    return ModelSpec(
        arch=arch,
        alpha=a,
        resolution=resolution_from(r, n),
        classes=k,
        channels=1 if grayscale else 3,
        pretrained=pretrained,
    )


def _model_options(f: Any) -> Any:
    opts = [
        click.option(
            "--arch",
            type=click.Choice(ARCHS),
            default="v1",
            show_default=True,
            help="MobileNet version.",
        ),
        click.option(
            "--alpha",
            default="0.25",
            show_default=True,
            help="Width multiplier, in (0, 1.4] ('auto' in build: chosen by mnmcu fit).",
        ),
        click.option(
            "--rho",
            default=None,
            help="Resolution multiplier: input = round(224*rho) ('auto' in build: mnmcu fit).",
        ),
        click.option(
            "--resolution", default=None, help="Input size in pixels (instead of --rho), >= 32."
        ),
        click.option("--grayscale", is_flag=True, help="One-channel input instead of RGB."),
        click.option(
            "--pretrained",
            type=click.Choice(["imagenet"]),
            default=None,
            help="Start from Keras's ImageNet weights (cached or downloadable).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _progress() -> Any:
    from mnmcu.console import BarProgress

    return BarProgress(enabled=_verbosity >= 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnmcu")
@click.option("-v", "--verbose", count=True, help="More output; -vv shows tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """Put int8 MobileNet on microcontrollers.

    \b
    Typical use:
      mnmcu boards
      mnmcu build --board qemu-m4 --alpha 0.25 --resolution 96
      mnmcu analyze build/mobilenet_v1_a0.25_96-qemu-m4/model_int8.tflite --board esp32s3
    """
    global _verbosity
    from mnmcu.console import setup_logging

    _verbosity = -1 if quiet else verbose
    setup_logging(_verbosity)
    if _verbosity >= 1:
        from mnmcu.model import show_tensorflow_log

        show_tensorflow_log()


_ARITHMETIC_HELP = (
    "FULLY_CONNECTED requantisation of the AOT runtime: tflm (TFLite Micro's fixed point, "
    "the bytes a TFLite Micro firmware gives) or litert (LiteRT's double precision). "
    "Every other op is the same in both."
)


def _arithmetic_option(f: Any) -> Any:
    return click.option(
        "--arithmetic",
        type=click.Choice(["tflm", "litert"]),
        default="tflm",
        show_default=True,
        help=_ARITHMETIC_HELP,
    )(f)


_SCHEDULE_HELP = (
    "AOT schedule: layer (every op over whole tensors), stream (the first, high-resolution "
    "ops row by row into small windows: a smaller arena, a few % more instructions) or auto "
    "(the one with the smaller arena; layer on a tie)."
)


def _schedule_option(f: Any) -> Any:
    return click.option(
        "--schedule",
        type=click.Choice(["layer", "stream", "auto"]),
        default="layer",
        show_default=True,
        help=_SCHEDULE_HELP,
    )(f)


def _tflm_sources_option(help_text: str) -> Callable[[Any], Any]:
    """``--tflm-sources DIR``, read from ``$MNMCU_TFLM_SOURCES`` when not given."""
    return click.option(
        "--tflm-sources",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        envvar="MNMCU_TFLM_SOURCES",
        default=None,
        help=help_text,
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def boards(as_json: bool) -> None:
    """List the boards mnmcu knows."""
    from mnmcu import boards as boards_mod
    from mnmcu.render import boards_table

    all_boards = boards_mod.all_boards()
    if as_json:
        click.echo(json.dumps([b.to_dict() for b in all_boards], indent=2))
    else:
        boards_table(all_boards)


@cli.command()
@_model_options
@click.option("--classes", default="2", show_default=True, help="Number of output classes.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model folder.")
@click.option("--force", is_flag=True, help="Write into a folder that already holds files.")
def model(
    arch: str,
    alpha: str,
    rho: str | None,
    resolution: str | None,
    grayscale: bool,
    pretrained: str | None,
    classes: str,
    out: Path,
    force: bool,
) -> None:
    """Build a MobileNet (untrained, or from ImageNet weights) into a model folder."""
    from mnmcu.pipeline import create_model

    spec = _spec_from_flags(arch, alpha, rho, resolution, classes, grayscale, pretrained)
    create_model(spec, out, force)
    click.echo(f"{spec.name}: {spec.resolution}x{spec.resolution}x{spec.channels}, {out}")


class _TrainDefaults:
    """TrainConfig's defaults, shown in --help without importing TensorFlow."""

    epochs = 15
    batch_size = 32
    learning_rate = 1e-2
    patience = 4


_TRAIN_DEFAULTS = _TrainDefaults()


def _train_options(f: Any) -> Any:
    opts = [
        click.option(
            "--data",
            default="builtin",
            show_default=True,
            help="Image folder (one sub-folder per class) or 'builtin' (procedural shapes).",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(1, 1000),
            default=None,
            help=f"Training epochs [default: {_TRAIN_DEFAULTS.epochs}].",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1, 4096),
            default=None,
            help=f"Images per step [default: {_TRAIN_DEFAULTS.batch_size}].",
        ),
        click.option(
            "--lr",
            type=Finite(0, 1, low_open=True),
            default=None,
            help="Peak Adam learning rate, cosine decay "
            f"[default: {_TRAIN_DEFAULTS.learning_rate:g}].",
        ),
        click.option(
            "--patience",
            type=click.IntRange(1, 1000),
            default=None,
            help="Stop after this many epochs without held-out improvement "
            f"[default: {_TRAIN_DEFAULTS.patience}].",
        ),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True),
        click.option(
            "--augment",
            type=click.Choice(tuple(AUGMENTATIONS)),
            default=DEFAULT_AUGMENT,
            show_default=True,
            help="What training does to each image, every epoch: "
            + "; ".join(f"{name}: {what}" for name, what in AUGMENTATIONS.items())
            + ". Mirroring is wrong for digits, text or arrows.",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _train_opts(
    data: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    patience: int | None,
    seed: int,
    augment: str,
) -> Any:
    from mnmcu.pipeline import TrainOptions

    return TrainOptions(
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        patience=patience,
        seed=seed,
        augment=augment,
    )


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@_train_options
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to save the trained model (default: MODEL_DIR).",
)
@click.option("--force", is_flag=True, help="Train again over an already trained model.")
def train(
    model_dir: Path,
    data: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    patience: int | None,
    seed: int,
    augment: str,
    out: Path | None,
    force: bool,
) -> None:
    """Train or fine-tune the model in MODEL_DIR."""
    from mnmcu.pipeline import train as train_fn

    summary = train_fn(
        model_dir,
        _train_opts(data, epochs, batch_size, lr, patience, seed, augment),
        out=out,
        force=force,
        progress=_progress(),
    )
    click.echo(
        f"float top-1 {100 * summary['float_accuracy']:.1f}% on {summary['val_images']} "
        f"held-out images after {summary['epochs_run']} epochs ({summary['seconds']:.0f} s)"
    )


@cli.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option(
    "--data",
    default=None,
    help="Dataset for calibration and evaluation (default: the one the model was trained on).",
)
@click.option(
    "--representative",
    type=click.IntRange(1, 100000),
    default=200,
    show_default=True,
    help="Number of training images used to calibrate int8 ranges.",
)
def quantize(model_dir: Path, data: str | None, representative: int) -> None:
    """Convert the model in MODEL_DIR to full int8 (.tflite) and compare accuracy."""
    from mnmcu.pipeline import TFLITE_FILE
    from mnmcu.pipeline import quantize as quantize_fn

    summary = quantize_fn(model_dir, data, representative, progress=_progress())
    acc = summary["accuracy"]
    click.echo(
        f"{model_dir / TFLITE_FILE}: {summary['tflite_bytes']} bytes; top-1 on {acc['images']} "
        f"held-out images: float {100 * acc['float']:.1f}%, int8 {100 * acc['int8']:.1f}%, "
        f"agreement {100 * acc['agreement']:.1f}%"
    )


@cli.command()
@click.argument("tflite", type=click.Path(path_type=Path))
@click.option("--board", default=None, help="Judge whether the model fits this board.")
@_schedule_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def analyze(tflite: Path, board: str | None, schedule: str, as_json: bool) -> None:
    """Per-layer MACs, parameters and memory of an int8 .tflite; fit on a board."""
    from mnmcu.boards import get_board
    from mnmcu.pipeline import analyze_file
    from mnmcu.render import analysis_tables

    b = get_board(board) if board else None
    result = analyze_file(tflite, b, schedule=schedule)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        analysis_tables(result, b)


@cli.command()
@click.option("--board", required=True, help="Target board id (see 'mnmcu boards').")
@_model_options
@click.option("--classes", default=None, help="Number of classes (default: from --data).")
@_train_options
@click.option("--no-train", is_flag=True, help="Skip training (untrained or ImageNet weights).")
@click.option(
    "--runtime",
    type=click.Choice(["aot", "tflm"]),
    default=None,
    help="Firmware runtime (default: the board's).",
)
@_arithmetic_option
@_schedule_option
@click.option(
    "--no-compile", is_flag=True, help="Generate the firmware project but do not build it."
)
@click.option(
    "--bare-metal",
    is_flag=True,
    help="Bare-metal firmware (AOT, no vendor framework, built offline) where the board has one.",
)
@click.option("--representative", type=click.IntRange(1, 100000), default=200, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: build/<model>-<board>).",
)
@click.option("--force", is_flag=True, help="Write into an output folder that holds files.")
@click.option(
    "--tflite",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An int8 .tflite made elsewhere: skip the model, training and quantization stages "
    "and build its firmware and reports (no model or training option with it).",
)
def build(
    board: str,
    arch: str,
    alpha: str,
    rho: str | None,
    resolution: str | None,
    grayscale: bool,
    pretrained: str | None,
    classes: str | None,
    data: str,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    patience: int | None,
    seed: int,
    augment: str,
    no_train: bool,
    runtime: str | None,
    arithmetic: str,
    schedule: str,
    no_compile: bool,
    bare_metal: bool,
    representative: int,
    out: Path | None,
    force: bool,
    tflite: Path | None,
) -> None:
    """Build, train, quantize and analyse a MobileNet, then its firmware for --board.

    Everything goes into one folder: the Keras model, model_int8.tflite,
    report.json and, for boards with a PlatformIO environment, the firmware
    project (firmware/) built with `pio run`. With --tflite, a model made
    elsewhere goes straight to analysis, firmware and reports.
    """
    from mnmcu.boards import get_board
    from mnmcu.console import err
    from mnmcu.pipeline import REPORT_FILE
    from mnmcu.pipeline import build as build_fn
    from mnmcu.render import analysis_tables

    b = get_board(board)

    def on_stage(name: str, seconds: float) -> None:
        err.print(f"[green]done[/] {name} in {seconds:.1f} s", highlight=False)

    if tflite is not None:
        _refuse_model_options(click.get_current_context(), "--tflite")
        from mnmcu.pipeline import deploy

        out = out or Path("build") / f"{Path(tflite).stem}-{b.id}"
        result = deploy(
            tflite, b, out, runtime=runtime, force=force, progress=_progress(),
            on_stage=on_stage, compile_firmware=not no_compile, bare_metal=bare_metal,
            arithmetic=arithmetic, schedule=schedule,
        )  # fmt: skip
        analysis_tables(result.analysis, b, layers=False)
        _print_firmware(result.report)
        total = sum(result.report["stage_seconds"].values())
        click.echo(f"{visible(str(out / REPORT_FILE))} written; total {total:.1f} s")
        return
    if "auto" in (alpha, rho):
        alpha, rho, resolution = _auto_size(
            b, arch, alpha, rho, resolution, classes, runtime, schedule
        )
    spec = _spec_from_flags(arch, alpha, rho, resolution, classes or "2", grayscale, pretrained)
    out = out or Path("build") / f"{spec.name}-{b.id}"
    result = build_fn(
        spec,
        b,
        out,
        _train_opts(data, epochs, batch_size, lr, patience, seed, augment),
        train_model=not no_train,
        representative=representative,
        force=force,
        progress=_progress(),
        on_stage=on_stage,
        classes_from_data=classes is None,
        runtime=runtime,
        compile_firmware=not no_compile,
        bare_metal=bare_metal,
        arithmetic=arithmetic,
        schedule=schedule,
    )
    report = result.report
    analysis_tables(result.analysis, b, layers=False)
    acc = report["accuracy"]
    total = sum(report["stage_seconds"].values())
    click.echo(
        f"top-1 on {acc['images']} held-out images: float {100 * acc['float']:.1f}%, "
        f"int8 {100 * acc['int8']:.1f}%, agreement {100 * acc['agreement']:.1f}%"
    )
    _print_firmware(report)
    click.echo(f"{visible(str(out / REPORT_FILE))} written; total {total:.1f} s")


# build's options that make, train or quantize a model (none applies to --tflite).
_MODEL_OPTIONS = (
    "arch", "alpha", "rho", "resolution", "grayscale", "pretrained", "classes", "data",
    "epochs", "batch_size", "lr", "patience", "seed", "augment", "no_train", "representative",
)  # fmt: skip


def _refuse_model_options(ctx: click.Context, option: str) -> None:
    """One clear line when a model or training option comes with ``option``."""
    given = [
        "--" + name.replace("_", "-")
        for name in _MODEL_OPTIONS
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise InvalidValue(
            f"{', '.join(given)} cannot be used with {option}: the model is already built",
            f"leave {'them' if len(given) > 1 else 'it'} out, or build a model without {option}",
        )


def _footprint_line(what: str, fp: dict[str, Any], elf: str) -> str:
    """A firmware's flash and RAM from its footprint (:meth:`Footprint.to_dict`), one line."""
    return (
        f"firmware ({visible(what)}): flash {fp['flash_bytes']:,} B (model "
        f"{fp['model_weights_bytes']:,}, runtime code {fp['runtime_code_bytes']:,}, sample "
        f"{fp['sample_data_bytes']:,}); RAM {fp['ram_bytes']:,} B (arena "
        f"{fp['arena_bytes']:,}, stack {fp['stack_bytes']:,}, other "
        f"{fp['other_data_bss_bytes']:,}); {visible(elf)}"
    )


def _print_firmware(report: dict[str, Any]) -> None:
    """The firmware's footprint and the estimate beside it, as build prints them."""
    fw = report.get("firmware")
    if fw and fw.get("footprint"):
        click.echo(_footprint_line(str(fw["runtime"]), fw["footprint"], str(fw["elf"])))
        est = fw.get("estimate")
        if est:
            click.echo(
                f"estimated before compiling (mnmcu analyze): flash {est['flash_estimated']:,} B "
                f"({est['flash_error_percent']:+.2f}%), RAM {est['ram_estimated']:,} B "
                f"({est['ram_difference_bytes']:+,} B)"
            )
    elif fw:
        click.echo(f"firmware project ({fw['runtime']}): {visible(str(fw['project']))}")


@cli.command()
@click.argument("tflite", type=click.Path(path_type=Path))
@click.option(
    "--target",
    type=click.Choice(["host"]),
    default="host",
    show_default=True,
    help="Where the generated C runs (host: this machine's gcc).",
)
@click.option(
    "--count",
    type=click.IntRange(3, 100000),
    default=20,
    show_default=True,
    help="Inputs to compare: all -128, all 127, dataset images, then random.",
)
@click.option("--data", default=None, help="Also take inputs from this dataset (or 'builtin').")
@click.option("--layers", is_flag=True, help="Compare every intermediate tensor too.")
@_arithmetic_option
@_schedule_option
@click.option("--no-sanitize", is_flag=True, help="Skip the ASan/UBSan build.")
@click.option(
    "--keep",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep the generated C and binaries in this folder.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(
    tflite: Path,
    target: str,
    count: int,
    data: str | None,
    layers: bool,
    arithmetic: str,
    schedule: str,
    no_sanitize: bool,
    keep: Path | None,
    as_json: bool,
) -> None:
    """Compile the AOT C of TFLITE and compare it bit for bit with TFLite and TFLite Micro."""
    from mnmcu.errors import MnmcuError
    from mnmcu.verify import verify as verify_fn

    samples = _dataset_inputs(tflite, data, count) if data else None
    result = verify_fn(
        tflite,
        count,
        samples,
        layers,
        sanitize=not no_sanitize,
        workdir=keep,
        progress=_progress(),
        arithmetic=arithmetic,
        schedule=schedule,
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        kinds = ", ".join(f"{v} {k}" for k, v in result.input_kinds.items() if v)
        click.echo(
            f"{visible(str(tflite))}: {result.ops} ops, arena {result.arena_bytes:,} B"
            + _schedule_text(result)
            + "; "
            f"{result.inputs} inputs "
            f"({kinds}); output bytes differing from LiteRT reference: "
            f"{result.litert_mismatches}, from TFLite Micro: {result.tflm_mismatches}"
            + (f"; {result.layers_compared} layers compared" if result.layers_compared else "")
            + ("; ASan/UBSan clean" if result.sanitized else "")
        )
        for line in _verify_lines(result):
            click.echo(line)
    if not result.bit_exact:
        where = ""
        if result.first_bad_layer is not None:
            b = result.first_bad_layer
            where = (
                f"; first differing layer: op {b.op} {b.opcode} ({b.differing_bytes} bytes, "
                f"max difference {b.max_abs_diff})"
            )
        raise MnmcuError(
            f"the AOT runtime is not bit-exact on {visible(str(tflite))}: it differs from "
            f"{_REFERENCE[result.arithmetic]}, the reference of --arithmetic "
            f"{result.arithmetic}{where}"
        )


def _project_schedule(info: Any) -> str:
    """The AOT schedule of an emitted project and its arena, for emit's line."""
    from mnmcu.stream import schedule_text

    if info.runtime != "aot":
        return ""
    text = schedule_text(info.schedule, info.streamed_ops, info.arena_bytes, info.layer_arena_bytes)
    return f", {text}"


def _schedule_text(result: Any) -> str:
    """How the stream schedule ran, for verify's line (nothing for the layer schedule)."""
    if result.schedule != "stream":
        return ""
    if not result.streamed_ops:
        return " (stream schedule: no op streams, the layer plan is smaller)"
    return f" (stream schedule: ops 0-{result.streamed_ops - 1} row by row)"


_MAX_INPUT_LINES = 10
_REFERENCE = {"tflm": "TFLite Micro", "litert": "LiteRT"}
_OTHER = {"tflm": "litert", "litert": "tflm"}


def _layer_text(d: Any) -> str:
    """One input's first differing op, for verify's lines."""
    if d.layer is None:
        return f"input {d.input}: no intermediate tensor differs, only the output"
    b = d.layer
    return (
        f"input {d.input}: op {b.op} {b.opcode} (tensor {b.tensor}, {b.differing_bytes} bytes, "
        f"max difference {b.max_abs_diff})"
    )


def _verify_lines(result: Any) -> list[str]:
    """What verify found beyond the counts: where the references part, where AOT differs."""
    lines = []
    if result.reference_mismatches > 0:
        lines.append(
            f"the two references disagree: LiteRT and TFLite Micro differ in "
            f"{result.reference_mismatches} output bytes of {result.reference_mismatch_inputs} "
            "inputs; their tensors first differ at"
        )
        lines += [f"  {_layer_text(d)}" for d in result.reference_splits[:_MAX_INPUT_LINES]]
        if len(result.reference_splits) > _MAX_INPUT_LINES:
            lines.append(f"  ... and {len(result.reference_splits) - _MAX_INPUT_LINES} more")
        own, other = _REFERENCE[result.arithmetic], _REFERENCE[_OTHER[result.arithmetic]]
        if result.own_mismatches == 0:
            lines.append(
                f"the AOT runtime equals {own} (--arithmetic {result.arithmetic}) on every "
                f"output byte: the differences from {other} are the references', not the "
                "AOT runtime's"
            )
    bad = [d for d in result.bad_layers if result.own_mismatches or d.layer is not None]
    if bad:
        lines.append(
            f"the AOT runtime's tensors first differ from {_REFERENCE[result.arithmetic]}'s at"
        )
        lines += [f"  {_layer_text(d)}" for d in bad[:_MAX_INPUT_LINES]]
        if len(bad) > _MAX_INPUT_LINES:
            lines.append(f"  ... and {len(bad) - _MAX_INPUT_LINES} more")
    return lines


def _dataset_inputs(tflite: Path, data: str, count: int) -> Any:
    """Quantized held-out images of ``data`` at the model's input size."""
    from mnmcu.emit.project import is_image_input
    from mnmcu.graph import load_graph
    from mnmcu.model.data import load_dataset
    from mnmcu.quantize import quantize_input

    graph = load_graph(tflite)
    shape = graph.input.shape
    if not is_image_input(graph):
        raise InvalidValue(
            f"--data gives square images, but the model input is {list(shape)}",
            "leave out --data to compare on random inputs",
        )
    _, h, _, c = shape
    ds = load_dataset(data, h, c)
    return quantize_input(ds.x_val[:count], graph)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--board",
    default=None,
    help="QEMU board (qemu-m4, qemu-m55): time the AOT kernels, portable vs fast, in instructions.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --board: an int8 .tflite to time (default: the VWW-shape model, untrained).",
)
@click.option(
    "--arch",
    type=click.Choice(ARCHS),
    default=None,
    help="With --board, instead of --model: an untrained MobileNet of this architecture "
    "(seeded weights, 2 classes).",
)
@click.option("--alpha", type=float, default=None, help="With --arch: width multiplier.")
@click.option("--resolution", type=int, default=None, help="With --arch: input size (pixels).")
@click.option(
    "--compare",
    type=click.Choice(["tflm"]),
    default=None,
    help="With --board: also build and run the model on TensorFlow Lite Micro with CMSIS-NN "
    "(its library comes from --tflm-sources).",
)
@_tflm_sources_option(
    "A tflite-micro checkout at the pinned commit with its Makefile downloads in place "
    "(see the README, 'TensorFlow Lite Micro sources'); default $MNMCU_TFLM_SOURCES. "
    "Without it, --compare tflm clones tflite-micro (network needed)."
)
@click.option(
    "--schedule",
    type=click.Choice(["layer", "stream", "auto"]),
    default="layer",
    show_default=True,
    help="With --board: also run each kernel set with this AOT schedule, beside the layer "
    "one (instructions and arena side by side).",
)
def bench(
    as_json: bool,
    board: str | None,
    model_path: Path | None,
    arch: str | None,
    alpha: float | None,
    resolution: int | None,
    compare: str | None,
    tflm_sources: Path | None,
    schedule: str,
) -> None:
    """Compare the AOT memory plan with TFLite Micro's arena on reference models.

    With --board, build a model (--model, or the VWW-shape one) with the
    portable and with the fast kernels and count their instructions in QEMU
    instead: per inference, per MAC, per op type and per layer, with each
    convolution's kernel and the channels it computes. --compare tflm adds
    TensorFlow Lite Micro with CMSIS-NN, built and run the same way (its
    first build compiles about 300 TFLM sources: 15 minutes on 2 cores;
    later runs take them from PlatformIO's build cache).
    """
    from rich.table import Table

    from mnmcu.bench import memory_bench
    from mnmcu.console import out

    if board is not None:
        from mnmcu.bench_sim import kernel_bench, report_lines
        from mnmcu.boards import get_board

        spec = None
        if arch is not None:
            if model_path is not None:
                raise InvalidValue("--arch and --model exclude each other", "give one of them")
            spec = ModelSpec(arch=arch, alpha=alpha or 0.25, resolution=resolution or 96)
        elif alpha is not None or resolution is not None:
            raise InvalidValue(
                "--alpha and --resolution need --arch", "add --arch v1, v2 or v3-small"
            )
        result = kernel_bench(
            get_board(board),
            model_path,
            progress=_progress(),
            spec=spec,
            compare_tflm=compare == "tflm",
            tflm_sources=tflm_sources,
            schedule=schedule,
        )
        text = (
            json.dumps(result.to_dict(), indent=2) if as_json else "\n".join(report_lines(result))
        )
        click.echo(text)
        return

    if model_path is not None or arch is not None or compare is not None or schedule != "layer":
        raise InvalidValue(
            "--model, --arch, --compare and --schedule need --board",
            "add --board qemu-m4 (or qemu-m55)",
        )
    rows = memory_bench(progress=_progress())
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    table = Table(title="RAM for activations and runtime data (bytes), measured in this run")
    for col in [
        "model",
        "MACs",
        "AOT arena",
        "TFLM arena",
        "(activations",
        "+ persistent)",
        "AOT / TFLM",
    ]:
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(
            r.model,
            f"{r.macs:,}",
            f"{r.aot_arena_bytes:,}",
            f"{r.tflm_arena_bytes:,}",
            f"{r.tflm_activation_bytes:,}",
            f"{r.tflm_persistent_bytes:,}",
            f"{r.ratio:.2f}",
        )
    out.print(table)
    out.print(
        "TFLM arena: tflite-micro Python runtime (reference kernels, 64-bit host), "
        "RecordingMicroAllocator total; AOT arena: mnmcu's static plan (per-channel "
        "data stays in flash)."
    )


@cli.command()
@click.argument("tflite", type=click.Path(path_type=Path))
@click.option("--board", required=True, help="Target board id (see 'mnmcu boards').")
@click.option(
    "--runtime",
    type=click.Choice(["aot", "tflm"]),
    default=None,
    help="Runtime (default: the board's).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Project folder.")
@click.option("--force", is_flag=True, help="Replace a folder that already holds files.")
@click.option(
    "--bare-metal",
    is_flag=True,
    help="Bare-metal project (AOT, no vendor framework, built offline) where the board has one.",
)
@_arithmetic_option
@_schedule_option
def emit(
    tflite: Path,
    board: str,
    runtime: str | None,
    out: Path,
    force: bool,
    bare_metal: bool,
    arithmetic: str,
    schedule: str,
) -> None:
    """Write a standalone PlatformIO project that runs TFLITE on --board."""
    from mnmcu.boards import get_board
    from mnmcu.emit.project import emit_project
    from mnmcu.graph import check_int8_mobilenet, load_graph
    from mnmcu.provision import provision_project
    from mnmcu.validate import check_single_image

    b = get_board(board)
    if b.platformio is None:
        raise InvalidValue(
            f"board {b.id!r} has no PlatformIO environment",
            "use 'mnmcu verify --target host' to run the model on this machine",
        )
    graph = load_graph(tflite)
    check_int8_mobilenet(graph)
    check_single_image(graph)
    info = emit_project(
        tflite, b, out, runtime=runtime, force=force, bare_metal=bare_metal,
        arithmetic=arithmetic, schedule=schedule,
    )  # fmt: skip
    core = provision_project(info.project_dir)
    where = (
        f"offline: its platformio.ini keeps PlatformIO's packages in {visible(str(core))}"
        if core is not None
        else "PlatformIO downloads the board's platform and toolchain once"
    )
    click.echo(
        f"{visible(str(info.project_dir))}: PlatformIO project for {b.id} ({info.runtime}"
        f"{_project_schedule(info)}); build it with: "
        f"{shell_join([*_mnmcu(), 'compile', info.project_dir])} or "
        f"{shell_join([*_pio(), 'run', '-d', info.project_dir])} ({where})"
    )


@cli.command(name="compile")
@click.argument("project", type=click.Path(file_okay=False, path_type=Path))
@_tflm_sources_option(
    "For a TFLite Micro project: a tflite-micro checkout to generate lib/tflite-micro "
    "from (README, 'TensorFlow Lite Micro sources'); default $MNMCU_TFLM_SOURCES."
)
def compile_project(project: Path, tflm_sources: Path | None) -> None:
    """Build a project 'mnmcu emit' wrote (offline where its platform is local).

    Prints the firmware's flash and RAM from its ELF, split into model,
    runtime code and arena as 'mnmcu build' reports them.
    """
    from mnmcu.build import footprint, pio_run
    from mnmcu.emit.project import load_project

    info = load_project(project)
    elf = pio_run(project, progress=_progress(), tflm_sources=tflm_sources)
    fp = footprint(elf, info).to_dict()
    click.echo(_footprint_line(f"{info.runtime}, {info.board_id}", fp, str(elf)))


def _command(program: str, module: str) -> list[str]:
    """How to run ``program`` here: itself when it is on PATH, else this Python's ``module``."""
    import shutil

    return [program] if shutil.which(program) else [sys.executable, "-m", module]


def _mnmcu() -> list[str]:
    return _command("mnmcu", "mnmcu")


def _pio() -> list[str]:
    return _command("pio", "platformio")


@cli.command()
@click.option(
    "--board",
    required=True,
    help="qemu-m4, qemu-m7, qemu-m55, disco_f407vg (netduinoplus2); Renode: disco_f407vg, "
    "disco_f746ng, nucleo_h743zi, nano33ble.",
)
@click.option(
    "--simulator",
    type=click.Choice(["qemu", "renode"]),
    default="qemu",
    show_default=True,
    help="QEMU (runs here and in CI) or Renode (where it is installed).",
)
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    default=None,
    help="Built firmware project (default: the newest build/*-BOARD/firmware).",
)
@click.option(
    "--elf",
    type=click.Path(path_type=Path),
    default=None,
    help="A firmware ELF built elsewhere (e.g. by the repository's platformio.ini); QEMU only.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Renode: write the .resc and .robot files and print the command, run nothing.",
)
@click.option(
    "--port",
    type=click.IntRange(1024, 65535),
    default=None,
    help="Renode: TCP port of the console socket (default: a free one).",
)
@click.option(
    "--timeout",
    type=Finite(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the boot line.",
)
def sim(
    board: str,
    simulator: str,
    project: Path | None,
    elf: Path | None,
    dry_run: bool,
    port: int | None,
    timeout: float,
) -> None:
    """Run the built firmware in a simulator and print its boot line."""
    from mnmcu.boards import get_board
    from mnmcu.emit.project import load_project
    from mnmcu.sim import run_qemu

    b = get_board(board)
    if simulator == "renode":
        _sim_renode(b, project, elf, dry_run, port, timeout)
        return
    if dry_run or port is not None:
        raise InvalidValue(
            "--dry-run and --port apply to --simulator renode",
            "leave them out for QEMU, or add --simulator renode",
        )
    if not b.simulator.qemu_machine:
        raise InvalidValue(
            f"board {b.id!r} has no QEMU machine",
            "use qemu-m4, qemu-m7, qemu-m55 or disco_f407vg (its --bare-metal build), or "
            "--simulator renode",
        )
    if elf is not None:
        if project is not None:
            raise InvalidValue("--elf and --project both name the firmware", "pass one of them")
        if not elf.is_file():
            raise InvalidValue(f"no firmware ELF at {elf}", "build it first, or check the path")
    else:
        project = project or _newest_project(b.id)
        info = load_project(project)
        if not info.elf_path.is_file():
            raise InvalidValue(
                f"{project} has no built firmware ({info.elf_path})",
                f"build it with 'mnmcu build --board {b.id}' or "
                f"'{shell_join([*_pio(), 'run', '-d', project])}'",
            )
        _check_simulated_build(b, info.board_id, project)
        elf = info.elf_path
    run = run_qemu(b, elf, timeout=timeout)
    click.echo(run.boot_line)
    if run.instructions is not None:
        click.echo(
            f"{run.instructions:,} instructions per inference (QEMU -icount shift=0: "
            "an instruction count, not a time)"
        )
    if not run.ok:
        raise MnmcuError("the firmware's output differs from the host reference (ok=0)")


def _check_simulated_build(b: Any, built_for: str, project: Path) -> None:
    """QEMU runs the local platform's firmware only (QEMU boards, bare-metal builds)."""
    from mnmcu.build import uses_local_platform

    if built_for != b.id:
        raise InvalidValue(
            f"{project} was built for {built_for}, not {b.id}", f"pass --board {built_for}"
        )
    if not uses_local_platform(project, b.id):
        raise InvalidValue(
            f"{project} is {b.id}'s vendor-framework firmware, which QEMU does not run",
            f"build the bare-metal one: mnmcu build --board {b.id} --bare-metal",
        )


def _sim_renode(
    b: Any, project: Path | None, elf: Path | None, dry_run: bool, port: int | None, timeout: float
) -> None:
    from mnmcu.emit.project import load_project
    from mnmcu.sim.renode import check_board, find_renode, run_renode, write_scripts

    check_board(b)
    if elf is not None:
        raise InvalidValue(
            "--elf is for QEMU; Renode's scripts check the project's expected output",
            "pass --project DIR (a project mnmcu generated)",
        )
    project = project or _newest_project(b.id)
    info = load_project(project)
    if info.board_id != b.id:
        raise InvalidValue(
            f"{project} was built for {info.board_id}, not {b.id}",
            f"pass --board {info.board_id}",
        )
    renode = find_renode()
    if renode is None and not dry_run:
        from mnmcu.sim.renode import INSTALL_HINT

        raise ToolMissing("renode is not installed (or pass --dry-run)", INSTALL_HINT)
    scripts = write_scripts(
        b,
        info.elf_path,
        project / "renode",
        info.model_sha256,
        info.expected_output,
        port=port,
        renode=renode,
    )
    click.echo(f"wrote {scripts.resc} and {scripts.robot}")
    click.echo(scripts.shell_command())
    click.echo(f"console: {scripts.url} (e.g. mnmcu monitor --port {scripts.url})")
    if dry_run:
        if not info.elf_path.is_file():
            click.echo(f"note: {info.elf_path} is not built yet", err=True)
        return
    if not info.elf_path.is_file():
        raise InvalidValue(
            f"{project} has no built firmware ({info.elf_path})",
            f"build it first ({shell_join([*_pio(), 'run', '-d', project])})",
        )
    line = run_renode(scripts, timeout=timeout)
    click.echo(line)
    if " ok=1" not in line:
        raise MnmcuError("the firmware's output differs from the host reference (ok=0)")


def _newest_project(board_id: str) -> Path:
    found = sorted(
        Path("build").glob(f"*{board_id}*/firmware/mnmcu_project.json"),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        raise InvalidValue(
            f"no built firmware for {board_id} under build/",
            f"run 'mnmcu build --board {board_id}' first or pass --project",
        )
    return found[-1].parent


# --- mnmcu fit, and --alpha auto / --rho auto for build -----------------------


@cli.command()
@click.option("--board", required=True, help="Target board id (see 'mnmcu boards').")
@click.option(
    "--arch", type=click.Choice(["v1", "v2", "v3-small"]), default="v1", show_default=True
)
@click.option(
    "--runtime",
    type=click.Choice(["aot", "tflm"]),
    default=None,
    help="Runtime (default: the board's).",
)
@click.option(
    "--max-latency-ms",
    type=Finite(0, MAX_LATENCY_MS, low_open=True),
    default=None,
    help="Latency limit (estimated).",
)
@click.option("--ram-budget", default=None, help="RAM for the model, e.g. 65536 or 64K.")
@click.option("--flash-budget", default=None, help="Flash for the model, e.g. 262144 or 256K.")
@click.option(
    "--classes",
    type=click.IntRange(2, MAX_CLASSES),
    default=2,
    show_default=True,
    help="Output classes.",
)
@click.option(
    "--alpha",
    type=Finite(0, 1.4, low_open=True),
    default=None,
    help="Only this width multiplier (any value, not only the grid's).",
)
@click.option(
    "--resolution",
    type=click.IntRange(32, 1024),
    default=None,
    help="Only this input size in pixels (any size from 32). With --alpha: one configuration.",
)
@_schedule_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def fit(
    board: str,
    arch: str,
    runtime: str | None,
    max_latency_ms: float | None,
    ram_budget: str | None,
    flash_budget: str | None,
    classes: int,
    alpha: float | None,
    resolution: int | None,
    schedule: str,
    as_json: bool,
) -> None:
    """Find the largest MobileNet (alpha, input size) that fits --board, without training.

    With --alpha and --resolution, the figures of that one configuration
    (the same as 'mnmcu analyze --board' gives for the converted model).
    """
    from mnmcu.boards import get_board
    from mnmcu.fit import ALPHAS, SIZES, fit_config, parse_bytes
    from mnmcu.fit import fit as fit_fn
    from mnmcu.render import config_table, fit_tables

    if alpha is not None:
        check_alpha(alpha, arch)
    options: dict[str, Any] = {
        "max_latency_ms": max_latency_ms,
        "ram_budget": parse_bytes("--ram-budget", ram_budget) if ram_budget else None,
        "flash_budget": parse_bytes("--flash-budget", flash_budget) if flash_budget else None,
        "classes": classes,
        "schedule": schedule,
    }
    if alpha is not None and resolution is not None:
        result = fit_config(get_board(board), arch, alpha, resolution, runtime, **options)
    else:
        result = fit_fn(
            get_board(board),
            arch,
            runtime,
            alphas=ALPHAS if alpha is None else (alpha,),
            sizes=SIZES if resolution is None else (resolution,),
            **options,
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif alpha is not None and resolution is not None:
        config_table(result)
    else:
        fit_tables(result)


def _auto_size(
    board: Any,
    arch: str,
    alpha: str,
    rho: str | None,
    resolution: str | None,
    classes: str | None,
    runtime: str | None,
    schedule: str = "layer",
) -> tuple[str, str | None, str | None]:
    """Replace ``auto`` in --alpha/--rho by ``mnmcu fit``'s recommendation for the board."""
    from mnmcu.console import err
    from mnmcu.fit import auto_config

    if rho == "auto" and resolution is not None:
        raise InvalidValue("--rho auto and --resolution both set the input size", "drop one")
    a = None if alpha == "auto" else check_alpha(parse_float("alpha", alpha), arch)
    size = None
    if rho != "auto":
        r = parse_float("rho", rho) if rho is not None else None
        n = _int("resolution", resolution, "use an input size, e.g. 96") if resolution else None
        size = resolution_from(r, n)
    k = _int("classes", classes, "use at least 2 classes") if classes else 2
    best = auto_config(board, arch, a, size, runtime, k, schedule)
    err.print(
        f"[green]fit[/] {board.id}: alpha {best.alpha:g}, {best.size}x{best.size} "
        f"({best.macs:,} MACs, flash {best.flash_bytes:,} B, RAM {best.ram_bytes:,} B predicted)",
        highlight=False,
    )
    return f"{best.alpha:g}", None, str(best.size)


# -- The device link: flash, monitor, hil ------------------------------------


def _link_board(board: str | None) -> Any:
    from mnmcu.boards import get_board

    return get_board(board) if board else None


def _is_qemu_board(board: Any) -> bool:
    """A board whose firmware runs only in QEMU (qemu-m4, qemu-m7, qemu-m55)."""
    pio = board.platformio
    return bool(pio is not None and pio.is_local_platform and board.simulator.qemu_machine)


def _runs_in_qemu(board: Any, project: Path | None) -> bool:
    """A QEMU board, or a bare-metal project (local platform) of a board QEMU models."""
    if _is_qemu_board(board):
        return True
    if board.simulator.qemu_machine is None or project is None:
        return False
    from mnmcu.build import uses_local_platform

    try:
        return uses_local_platform(Path(project), board.id)
    except InvalidValue:
        return False


@cli.command()
@click.option("--board", required=True, help="Target board id (see 'mnmcu boards').")
@click.option("--port", default=None, help="Serial port (default: found by USB VID:PID).")
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    default=None,
    help="Built firmware project (default: the newest build/*-BOARD/firmware).",
)
def flash(board: str, port: str | None, project: Path | None) -> None:
    """Upload a built firmware to a board (PlatformIO, or esptool for ESP32)."""
    from mnmcu.link.flash import flash as upload
    from mnmcu.link.ports import select_port

    b = _link_board(board)
    url = select_port(b, port)
    project = project or _newest_project(b.id)
    upload(b, project, url, progress=_progress())
    click.echo(f"flashed {project} to {b.id} on {url}")


@cli.command()
@click.option("--port", default=None, help="Any pyserial URL (default: the one port found).")
@click.option("--baud", type=click.IntRange(1, MAX_BAUD), default=115200, show_default=True)
@click.option("--board", default=None, help="Find the port by this board's USB VID:PID.")
@click.option("--list", "list_only", is_flag=True, help="List the serial ports and exit.")
def monitor(port: str | None, baud: int, board: str | None, list_only: bool) -> None:
    """Show a device's output: text as is, protocol frames decoded. Ctrl-C ends."""
    from mnmcu.link.monitor import monitor as watch
    from mnmcu.link.ports import list_ports, select_port

    if list_only:
        ports = list_ports()
        for seen in ports:
            click.echo(seen.describe())
        if not ports:
            click.echo("no serial ports", err=True)
        return
    url = select_port(_link_board(board), port)
    click.echo(f"monitoring {url} at {baud} baud (Ctrl-C ends)", err=True)
    watch(url, baud, click.echo)


@cli.command()
@click.option("--board", default=None, help="Board id (default: the project's).")
@click.option("--port", default=None, help="Any pyserial URL; without it QEMU boards start QEMU.")
@click.option("--baud", type=click.IntRange(1, MAX_BAUD), default=115200, show_default=True)
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    default=None,
    help="The generated project the device runs (default: the newest build/*-BOARD/firmware).",
)
@click.option("--model", type=click.Path(path_type=Path), default=None, help="The .tflite.")
@click.option(
    "--data",
    default=None,
    help="Held-out images of an image folder or 'builtin', a seeded draw covering every class; "
    "their labels give the device's top-1 accuracy.",
)
@click.option(
    "--count",
    type=click.IntRange(1, 100000),
    default=50,
    show_default=True,
    help="Inputs: all -128, all 127, then --data images (or random ones).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of the --data draw.",
)
@click.option("--profile", is_flag=True, help="Per-layer ticks (firmware built with it).")
@click.option(
    "--arithmetic",
    type=click.Choice(["tflm", "litert"]),
    default=None,
    help="The reference the device's outputs must equal (default: the project's, tflm "
    "without a project); see 'mnmcu emit --help'.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON report (default: PROJECT/hil/report.json); .junit.xml and .jsonl beside it.",
)
@click.option(
    "--timeout",
    type=Finite(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the handshake and for each inference.",
)
def hil(
    board: str | None,
    port: str | None,
    baud: int,
    project: Path | None,
    model: Path | None,
    data: str | None,
    count: int,
    seed: int,
    profile: bool,
    arithmetic: str | None,
    report: Path | None,
    timeout: float,
) -> None:
    """Run inputs on a device and compare every output with the host reference.

    With --data, each image's true class is known: the device's top-1 is
    reported against it, per class and overall, beside the host's int8 top-1.
    """
    from mnmcu import hil as hil_lib
    from mnmcu.graph import load_graph
    from mnmcu.link.ports import select_port
    from mnmcu.link.session import LinkError
    from mnmcu.sim import qemu_session
    from mnmcu.verify import make_inputs

    b = _link_board(board)
    simulated = port is None and b is not None and _runs_in_qemu(b, project)
    if b is not None and not simulated:
        port = select_port(b, port)  # no device: say so before loading anything
    if project is None and model is None:
        if b is None:
            raise InvalidValue(
                "hil needs --board, --project or --model", "e.g. mnmcu hil --board qemu-m4"
            )
        project = _newest_project(b.id)
    target = hil_lib.load_target(project, model, arithmetic)
    if b is None and target.board_id is not None:
        b = _link_board(target.board_id)
        simulated = port is None and _runs_in_qemu(b, target.project_dir)
    if not simulated:
        port = select_port(b, port)
    report_json, junit, jsonl = hil_lib.report_paths(report or hil_lib.default_report_path(target))
    hil_lib.check_report_paths(report_json, junit, jsonl)  # before the run, not after it
    samples: Any = None
    sample_labels: list[int | None] = []
    class_names: tuple[str, ...] = ()
    if data:
        samples, sample_labels, class_names = hil_lib.dataset_inputs(
            target, data, max(count - 2, 0), seed
        )
    inputs, _ = make_inputs(load_graph(target.model_path), count, samples)
    labels: list[int | None] = [None, None, *sample_labels]  # after all -128 and all 127

    def run_on(url: str) -> None:
        from mnmcu.link.session import open_session

        session = open_session(url, baud, handshake_timeout=timeout, infer_timeout=timeout)
        with session:
            # A device that runs another model is refused before any report file is made.
            hil_lib.check_device(session.info or session.handshake(), target)
            jsonl.parent.mkdir(parents=True, exist_ok=True)
            with jsonl.open("a", encoding="utf-8") as log:
                result = hil_lib.run_hil(
                    session,
                    target,
                    inputs,
                    profile=profile,
                    log=log,
                    progress=_progress(),
                    board_id=b.id if b is not None else None,
                    labels=labels,
                    class_names=class_names,
                )
        hil_lib.write_json(result, report_json)
        hil_lib.write_junit(result, junit)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        for line in [*hil_lib.image_lines(result), *hil_lib.summary_lines(result)]:
            click.echo(line)
        for line in hil_lib.accuracy_lines(result):
            click.echo(line)
        for line in hil_lib.layer_lines(result):
            click.echo(line)
        click.echo(f"reports: {report_json}, {junit}, {jsonl}")
        hil_lib.finish(result)

    from mnmcu.outdir import output_folder

    with output_folder(report_json.parent, False, "mnmcu hil", option="--report", exists_ok=True):
        if simulated and b is not None:
            from mnmcu.emit.project import load_project

            if target.project_dir is None:
                raise InvalidValue(
                    f"starting QEMU for {b.id} needs the built project", "pass --project DIR"
                )
            elf = load_project(target.project_dir).elf_path
            if not elf.is_file():
                raise InvalidValue(
                    f"{target.project_dir} has no built firmware ({elf})",
                    f"build it with '{shell_join([*_pio(), 'run', '-d', target.project_dir])}' or "
                    "'mnmcu build'",
                )
            qemu_log = report_json.with_name("qemu.log")
            with qemu_session(b, elf, log_path=qemu_log) as url:
                try:
                    run_on(url)
                except LinkError as exc:
                    hint = f"{exc.hint}; QEMU's log: {qemu_log}" if exc.hint else f"see {qemu_log}"
                    raise type(exc)(exc.message, hint) from None
            return
        run_on(str(port))


def main() -> None:
    """Entry point: run the CLI, turning every failure into one clear line."""
    try:
        cli.main(standalone_mode=False, prog_name="mnmcu")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _print_error("aborted")
        sys.exit(130)
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "mnmcu"
        msg = exc.format_message().replace("\n", " ")
        _print_error(f"{msg[0].lower()}{msg[1:]} (see '{cmd} --help')")
        sys.exit(2)
    except click.ClickException as exc:
        _print_error(exc.format_message())
        sys.exit(exc.exit_code)
    except MnmcuError as exc:
        if _verbosity >= 2:
            traceback.print_exc()
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _print_error("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: say so, keep the traceback for -vv
        if _verbosity >= 2:
            traceback.print_exc()
        _print_error(
            f"internal error: {type(exc).__name__}: {exc} (run with -vv for the traceback "
            "and report it)"
        )
        sys.exit(70)


def _print_error(message: str) -> None:
    click.echo(f"error: {message}", err=True)
