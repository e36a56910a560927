"""The ``mnmcu`` command line: parses options and calls the library.

All commands are registered here; each one is a few lines over a function
of :mod:`mnmcu.pipeline`, :mod:`mnmcu.boards` or :mod:`mnmcu.analyze`.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from mnmcu import __version__
from mnmcu.errors import InvalidValue, MnmcuError
from mnmcu.model.spec import ARCHS, ModelSpec, check_alpha, parse_float, resolution_from

_verbosity = 0


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
            "--alpha", default="0.25", show_default=True, help="Width multiplier, in (0, 1.4]."
        ),
        click.option("--rho", default=None, help="Resolution multiplier: input = round(224*rho)."),
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
            type=click.FloatRange(0, 1, min_open=True),
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
        click.option("--seed", type=int, default=0, show_default=True),
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
) -> Any:
    from mnmcu.pipeline import TrainOptions

    return TrainOptions(
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        patience=patience,
        seed=seed,
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
    out: Path | None,
    force: bool,
) -> None:
    """Train or fine-tune the model in MODEL_DIR."""
    from mnmcu.pipeline import train as train_fn

    summary = train_fn(
        model_dir,
        _train_opts(data, epochs, batch_size, lr, patience, seed),
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def analyze(tflite: Path, board: str | None, as_json: bool) -> None:
    """Per-layer MACs, parameters and memory of an int8 .tflite; fit on a board."""
    from mnmcu.boards import get_board
    from mnmcu.pipeline import analyze_file
    from mnmcu.render import analysis_tables

    b = get_board(board) if board else None
    result = analyze_file(tflite, b)
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
@click.option(
    "--no-compile", is_flag=True, help="Generate the firmware project but do not build it."
)
@click.option("--representative", type=click.IntRange(1, 100000), default=200, show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: build/<model>-<board>).",
)
@click.option("--force", is_flag=True, help="Write into an output folder that holds files.")
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
    no_train: bool,
    runtime: str | None,
    no_compile: bool,
    representative: int,
    out: Path | None,
    force: bool,
) -> None:
    """Build, train, quantize and analyse a MobileNet, then its firmware for --board.

    Everything goes into one folder: the Keras model, model_int8.tflite,
    report.json and, for boards with a PlatformIO environment, the firmware
    project (firmware/) built with `pio run`.
    """
    from mnmcu.boards import get_board
    from mnmcu.console import err
    from mnmcu.pipeline import REPORT_FILE
    from mnmcu.pipeline import build as build_fn
    from mnmcu.render import analysis_tables

    b = get_board(board)
    spec = _spec_from_flags(arch, alpha, rho, resolution, classes or "2", grayscale, pretrained)
    out = out or Path("build") / f"{spec.name}-{b.id}"

    def on_stage(name: str, seconds: float) -> None:
        err.print(f"[green]done[/] {name} in {seconds:.1f} s", highlight=False)

    result = build_fn(
        spec,
        b,
        out,
        _train_opts(data, epochs, batch_size, lr, patience, seed),
        train_model=not no_train,
        representative=representative,
        force=force,
        progress=_progress(),
        on_stage=on_stage,
        classes_from_data=classes is None,
        runtime=runtime,
        compile_firmware=not no_compile,
    )
    report = result.report
    analysis_tables(result.analysis, b, layers=False)
    acc = report["accuracy"]
    total = sum(report["stage_seconds"].values())
    click.echo(
        f"top-1 on {acc['images']} held-out images: float {100 * acc['float']:.1f}%, "
        f"int8 {100 * acc['int8']:.1f}%, agreement {100 * acc['agreement']:.1f}%"
    )
    fw = report.get("firmware")
    if fw and fw.get("footprint"):
        fp = fw["footprint"]
        click.echo(
            f"firmware ({fw['runtime']}): flash {fp['flash_bytes']:,} B (model "
            f"{fp['model_weights_bytes']:,}, runtime code {fp['runtime_code_bytes']:,}, sample "
            f"{fp['sample_data_bytes']:,}); RAM {fp['ram_bytes']:,} B (arena "
            f"{fp['arena_bytes']:,}, stack {fp['stack_bytes']:,}, other "
            f"{fp['other_data_bss_bytes']:,}); {fw['elf']}"
        )
    elif fw:
        click.echo(f"firmware project ({fw['runtime']}): {fw['project']}")
    click.echo(f"{out / REPORT_FILE} written; total {total:.1f} s")


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
    no_sanitize: bool,
    keep: Path | None,
    as_json: bool,
) -> None:
    """Compile the AOT C of TFLITE and compare it bit for bit with TFLite and TFLite Micro."""
    from mnmcu.errors import MnmcuError
    from mnmcu.verify import verify as verify_fn

    samples = _dataset_inputs(tflite, data, count) if data else None
    if keep is not None:
        from mnmcu.pipeline import prepare_output

        prepare_output(keep, force=False)
    result = verify_fn(
        tflite,
        count,
        samples,
        layers,
        sanitize=not no_sanitize,
        workdir=keep,
        progress=_progress(),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        kinds = ", ".join(f"{v} {k}" for k, v in result.input_kinds.items() if v)
        click.echo(
            f"{tflite}: {result.ops} ops, arena {result.arena_bytes:,} B; {result.inputs} inputs "
            f"({kinds}); output bytes differing from LiteRT reference: "
            f"{result.litert_mismatches}, from TFLite Micro: {result.tflm_mismatches}"
            + (f"; {result.layers_compared} layers compared" if result.layers_compared else "")
            + ("; ASan/UBSan clean" if result.sanitized else "")
        )
    if not result.bit_exact:
        where = ""
        if result.first_bad_layer is not None:
            b = result.first_bad_layer
            where = (
                f"; first differing layer: op {b.op} {b.opcode} ({b.differing_bytes} bytes, "
                f"max difference {b.max_abs_diff})"
            )
        raise MnmcuError(f"the AOT runtime is not bit-exact on {tflite}{where}")


def _dataset_inputs(tflite: Path, data: str, count: int) -> Any:
    """Quantized held-out images of ``data`` at the model's input size."""
    from mnmcu.graph import load_graph
    from mnmcu.model.data import load_dataset
    from mnmcu.quantize import quantize_input

    graph = load_graph(tflite)
    _, h, _, c = graph.input.shape
    ds = load_dataset(data, h, c)
    return quantize_input(ds.x_val[:count], graph)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--board",
    default=None,
    help="QEMU board (qemu-m4, qemu-m55): time the AOT kernels, portable vs fast, in instructions.",
)
def bench(as_json: bool, board: str | None) -> None:
    """Compare the AOT memory plan with TFLite Micro's arena on reference models.

    With --board, build the VWW-shape model with the portable and with the
    fast kernels and count their instructions in QEMU instead.
    """
    from rich.table import Table

    from mnmcu.bench import memory_bench
    from mnmcu.console import out

    if board is not None:
        from mnmcu.bench_sim import kernel_bench, report_lines
        from mnmcu.boards import get_board

        result = kernel_bench(get_board(board), progress=_progress())
        text = (
            json.dumps(result.to_dict(), indent=2) if as_json else "\n".join(report_lines(result))
        )
        click.echo(text)
        return

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
def emit(tflite: Path, board: str, runtime: str | None, out: Path, force: bool) -> None:
    """Write a standalone PlatformIO project that runs TFLITE on --board."""
    from mnmcu.boards import get_board
    from mnmcu.emit.project import emit_project
    from mnmcu.graph import check_int8_mobilenet, load_graph

    b = get_board(board)
    if b.platformio is None:
        raise InvalidValue(
            f"board {b.id!r} has no PlatformIO environment",
            "use 'mnmcu verify --target host' to run the model on this machine",
        )
    check_int8_mobilenet(load_graph(tflite))
    info = emit_project(tflite, b, out, runtime=runtime, force=force)
    click.echo(
        f"{info.project_dir}: PlatformIO project for {b.id} ({info.runtime}); "
        f"build it with 'pio run -d {info.project_dir}'"
    )


@cli.command()
@click.option("--board", required=True, help="A QEMU board: qemu-m4, qemu-m7, qemu-m55.")
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    default=None,
    help="Built firmware project (default: the newest build/*-BOARD/firmware).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the boot line.",
)
def sim(board: str, project: Path | None, timeout: float) -> None:
    """Run the built firmware in QEMU and print its boot line."""
    from mnmcu.boards import get_board
    from mnmcu.emit.project import load_project
    from mnmcu.sim import run_qemu

    b = get_board(board)
    if not b.simulator.qemu_machine:
        raise InvalidValue(
            f"board {b.id!r} has no QEMU machine", "use qemu-m4, qemu-m7 or qemu-m55"
        )
    project = project or _newest_project(b.id)
    info = load_project(project)
    if not info.elf_path.is_file():
        raise InvalidValue(
            f"{project} has no built firmware ({info.elf_path})",
            f"build it with 'mnmcu build --board {b.id}' or 'pio run -d {project}'",
        )
    run = run_qemu(b, info.elf_path, timeout=timeout)
    click.echo(run.boot_line)
    if run.instructions is not None:
        click.echo(
            f"{run.instructions:,} instructions per inference (QEMU -icount shift=0: "
            "an instruction count, not a time)"
        )
    if not run.ok:
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
