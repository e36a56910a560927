"""``mnmcu fit``: its shape-only graphs equal converted models, its recommendation for a
128 KiB / 512 KiB board fits while the next grid points do not, and budgets nothing meets
give one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnmcu.analyze import analyze
from mnmcu.bench import convert_untrained
from mnmcu.boards import get_board
from mnmcu.emit.aot import inplace_ops, scratch_bound, scratch_bytes
from mnmcu.fit import (
    ALPHAS,
    SAFETY_MARGIN,
    SIZES,
    auto_config,
    candidate,
    fit,
    predict,
)
from mnmcu.graph import Graph, load_graph
from mnmcu.model.spec import ModelSpec
from mnmcu.plan import plan_memory
from mnmcu.synth import synth_graph

from ..conftest import run_mnmcu
from .test_cli_errors import one_error_line

KIB = 1024


def signature(graph: Graph) -> list[tuple[object, ...]]:
    """Op types, input shapes, output shape and options of every op."""
    return [
        (
            op.opcode,
            tuple(graph.tensor(i).shape for i in op.inputs if i >= 0),
            graph.tensor(op.outputs[0]).shape,
            tuple(
                sorted((k, str(v)) for k, v in op.options.items() if k in ("padding", "stride_h"))
            ),
        )
        for op in graph.ops
    ]


def converted(arch: str, alpha: float, size: int, classes: int, folder: Path) -> Graph:
    path = folder / f"{arch}_{alpha:g}_{size}.tflite"
    if not path.exists():
        spec = ModelSpec(arch=arch, alpha=alpha, resolution=size, classes=classes)
        path.write_bytes(convert_untrained(spec))
    return load_graph(path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "alpha", "size"),
    [
        ("v1", 0.35, 40),
        ("v1", 0.2, 66),
        ("v1", 0.5, 45),
        ("v2", 0.5, 48),
        ("v2", 0.35, 37),
        ("v3-small", 0.4, 45),
    ],
)
def test_shape_model_equals_the_converted_graph(
    arch: str, alpha: float, size: int, tmp_path: Path
) -> None:
    """Odd sizes included: Keras's padding before stride-2 layers becomes PAD ops there."""
    real = converted(arch, alpha, size, 3, tmp_path)
    synth = synth_graph(arch, alpha, size, 3)
    assert signature(synth) == signature(real)
    plan = plan_memory(real, scratch_bytes(real), inplace_ops(real))
    assert (
        plan_memory(synth, scratch_bytes(synth), inplace_ops(synth)).arena_bytes == plan.arena_bytes
    )
    for kernels in ("dsp", "helium"):
        # The derived graph's scratch bound covers what the real weights ask for.
        bound, real_scratch = scratch_bound(synth, kernels), scratch_bytes(real, kernels)
        assert all(bound.get(i, 0) >= size for i, size in real_scratch.items())
        assert (
            plan_memory(synth, bound, inplace_ops(synth)).arena_bytes
            >= plan_memory(real, real_scratch, inplace_ops(real)).arena_bytes
        )
    a, b = analyze(real), analyze(synth)
    assert (a.macs, a.params, a.weight_bytes, a.bias_bytes) == (
        b.macs,
        b.params,
        b.weight_bytes,
        b.bias_bytes,
    )
    for board_id in ("qemu-m4", "qemu-m55"):
        # analyze (the generator's own lowering of the real weights) == fit (shapes alone)
        board = get_board(board_id)
        est = analyze(real, board).estimates["aot"]
        c = candidate(board, arch, alpha, size, "aot", classes=3)
        code = "kernel_code"
        assert {k: v for k, v in est.flash_parts.items() if k != code} == {
            k: v for k, v in c.flash_parts.items() if k != code
        }, board_id
        # Shapes cannot tell whether a MEAN's scales allow the fast kernel (on 2x2 maps
        # they may not): fit counts the fast MEAN, analyze what the generator linked.
        assert abs(est.flash_parts[code] - c.flash_parts[code]) <= 1024, board_id
        assert est.ram_bytes == c.ram_bytes, board_id


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted models, shared by the tests of this module."""
    return tmp_path_factory.mktemp("fit_models")


def _next_points(alpha: float, size: int) -> list[tuple[float, int]]:
    points = []
    if alpha != ALPHAS[-1]:
        points.append((ALPHAS[ALPHAS.index(alpha) + 1], size))
    if size != SIZES[-1]:
        points.append((alpha, SIZES[SIZES.index(size) + 1]))
    return points


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["aot", "tflm"])
def test_nucleo_f446re_recommendation_fits_and_the_next_grid_point_does_not(
    runtime: str, models_dir: Path
) -> None:
    board = get_board("nucleo_f446re")
    assert (board.memory.flash_bytes, board.memory.ram_bytes) == (512 * KIB, 128 * KIB)
    result = fit(board, "v1", runtime)
    best = result.recommended
    usable = 1 + SAFETY_MARGIN
    # the recommendation, with its margin, within the board's flash and RAM
    assert best.flash_bytes * usable <= 512 * KIB and best.ram_bytes * usable <= 128 * KIB
    assert best.fits and best in result.front
    # it is the largest: every grid point with more MACs does not fit
    assert all(not c.fits for c in result.candidates if c.macs > best.macs)
    nxt = _next_points(best.alpha, best.size)
    assert nxt, "the recommendation is the largest grid point: the board is not a test"
    for alpha, size in nxt:
        c = candidate(board, "v1", alpha, size, runtime, limits=result.limits)
        assert c.macs > best.macs
        assert not c.fits
        assert c.flash_bytes * usable > 512 * KIB or c.ram_bytes * usable > 128 * KIB
    # the real converted graphs give the same figures as the shape model
    for alpha, size in [(best.alpha, best.size), *nxt]:
        real = predict(converted("v1", alpha, size, 2, models_dir), board, runtime)
        synth = predict(synth_graph("v1", alpha, size, 2), board, runtime)
        assert real[1] == synth[1], (alpha, size)  # RAM
        if runtime == "aot":  # (TFLM's flatbuffer size is estimated from the constants)
            assert real[0] == synth[0], (alpha, size)


@pytest.mark.slow
@pytest.mark.parametrize(("arch", "alpha", "size"), [("v1", 0.5, 56), ("v2", 0.5, 80)])
def test_tflm_arena_prediction_covers_the_measured_arena(
    arch: str, alpha: float, size: int, models_dir: Path
) -> None:
    """The TFLM arena fit predicts, against the tflite-micro runtime's, for unseen models."""
    from mnmcu.reference import tflm_run

    converted(arch, alpha, size, 2, models_dir)
    measured = tflm_run(models_dir / f"{arch}_{alpha:g}_{size}.tflite").arena_total
    c = candidate(get_board("nucleo_f446re"), arch, alpha, size, "tflm")
    predicted = c.ram_parts["arena_estimated"]
    print(f"{arch} {alpha:g} {size}: TFLM arena predicted {predicted:,}, measured {measured:,}")
    assert measured <= predicted <= 1.35 * measured


def test_fit_json_on_the_cli() -> None:
    result = run_mnmcu("fit", "--board", "nucleo_f446re", "--runtime", "aot", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    best = data["recommended"]
    assert best["fits"] and best in data["front"]
    assert data["calibration_error_percent"] is not None
    assert "QEMU instruction count" in data["latency_source"]
    assert max(c["macs"] for c in data["candidates"] if c["fits"]) == best["macs"]


def test_latency_limit_lowers_the_recommendation() -> None:
    board = get_board("nucleo_f446re")
    free = fit(board, "v1", "aot").recommended
    assert free.latency_ms is not None
    # Half the unconstrained pick's latency: a limit that pick cannot meet.
    limit = free.latency_ms / 2
    limited = fit(board, "v1", "aot", max_latency_ms=limit).recommended
    assert limited.latency_ms is not None and limited.latency_ms <= limit
    assert limited.macs < free.macs


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--board", "qemu-m4", "--ram-budget", "8K"], ["RAM 8,192 B", "alpha 0.1 32x32"]),
        (["--board", "nucleo_f446re", "--flash-budget", "20000"], ["flash 20,000 B", "smallest"]),
        (["--board", "nucleo_f446re", "--max-latency-ms", "1"], ["latency 1 ms", "smallest"]),
    ],
)
def test_budgets_nothing_meets_give_one_line(args: list[str], fragments: list[str]) -> None:
    result = run_mnmcu("fit", *args)
    line = one_error_line(result, "no v1 configuration fits", *fragments)
    assert "B flash and" in line and "B RAM" in line


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--ram-budget", "lots"], "--ram-budget 'lots'"),
        (["--flash-budget", "0"], "--flash-budget '0'"),
        (["--max-latency-ms", "-5"], "'--max-latency-ms': '-5' is not in (0,"),
        (["--max-latency-ms", "nan"], "'--max-latency-ms': 'nan'"),
        (["--classes", "1"], "'--classes': 1 is not in the range 2<=x<=1000"),
    ],
)
def test_bad_fit_values(args: list[str], fragment: str) -> None:
    one_error_line(run_mnmcu("fit", "--board", "qemu-m4", *args), fragment, code=2)


def test_fit_answers_for_one_configuration_off_the_grid() -> None:
    result = run_mnmcu(
        "fit",
        "--board",
        "qemu-m4",
        "--arch",
        "v2",
        "--alpha",
        "0.5",
        "--resolution",
        "72",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(c["alpha"], c["size"]) for c in data["candidates"]] == [(0.5, 72)]
    one = data["recommended"]
    board = get_board("qemu-m4")
    assert (one["flash_bytes"], one["ram_bytes"]) == predict(
        synth_graph("v2", 0.5, 72), board, "aot"
    )[:2]
    # a configuration that does not fit is answered too, not refused
    small = run_mnmcu(
        "fit", "--board", "nucleo_f446re", "--arch", "v1", "--alpha", "1", "--resolution", "99"
    )
    assert small.returncode == 0, small.stderr
    assert "v1 alpha 1 99x99 does not fit nucleo_f446re" in " ".join(small.stdout.split())
    one_error_line(
        run_mnmcu("fit", "--board", "qemu-m4", "--alpha", "0.01", "--resolution", "64"),
        "alpha 0.01 leaves v1's first layer with 0 channels",
    )


def test_auto_config_follows_fixed_values() -> None:
    board = get_board("nucleo_f446re")
    free = auto_config(board, "v1", runtime="aot")
    assert free == fit(board, "v1", "aot").recommended
    fixed_size = auto_config(board, "v1", size=64, runtime="aot")
    assert fixed_size.size == 64
    # the largest alpha that fits at 64x64: the next grid alpha does not
    following = [a for a in ALPHAS if a > fixed_size.alpha]
    if following:
        assert not candidate(board, "v1", following[0], 64, "aot").fits
    fixed_alpha = auto_config(board, "v1", alpha=0.2, runtime="aot")
    assert fixed_alpha.alpha == 0.2 and fixed_alpha.fits


def test_build_auto_refuses_two_input_sizes(tmp_path: Path) -> None:
    result = run_mnmcu(
        "build",
        "--board",
        "qemu-m4",
        "--rho",
        "auto",
        "--resolution",
        "96",
        "--out",
        str(tmp_path / "b"),
    )
    one_error_line(result, "--rho auto and --resolution", code=2)
    assert not (tmp_path / "b").exists()


def test_build_auto_without_a_size_model(tmp_path: Path) -> None:
    result = run_mnmcu(
        "build",
        "--board",
        "qemu-m4",
        "--arch",
        "v3-large",
        "--alpha",
        "auto",
        "--out",
        str(tmp_path / "b"),
    )
    one_error_line(result, "--arch v3-large", "v1 or v2 or v3-small", code=2)
