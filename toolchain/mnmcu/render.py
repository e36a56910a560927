"""Tables for the terminal (rich), kept apart from the commands that call them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from mnmcu.analyze import Analysis
from mnmcu.boards import SUMMARY_COLUMNS, Board
from mnmcu.console import out


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape)


def boards_table(boards: Sequence[Board]) -> None:
    """Print one row per board."""
    table = Table(title="Boards")
    for col in SUMMARY_COLUMNS:
        table.add_column(col)
    for b in boards:
        table.add_row(*b.summary_row())
    out.print(table)


def analysis_tables(a: Analysis, board: Board | None, layers: bool = True) -> None:
    """Print the per-layer table, the totals and, with a board, the verdicts."""
    if layers:
        t = Table(title="Layers")
        for col, justify in [
            ("#", "right"),
            ("op", "left"),
            ("input", "left"),
            ("output", "left"),
            ("MACs", "right"),
            ("params", "right"),
            ("act. bytes", "right"),
        ]:
            t.add_column(col, justify=justify)  # type: ignore[arg-type]
        for layer in a.layers:
            t.add_row(
                str(layer.index),
                layer.op,
                ", ".join(_shape(s) for s in layer.input_shapes),
                _shape(layer.output_shape),
                f"{layer.macs:,}",
                f"{layer.params:,}",
                f"{layer.activation_bytes:,}",
            )
        out.print(t)
    s = Table(title="Totals", show_header=False)
    s.add_column("what")
    s.add_column("value", justify="right")
    s.add_row("input -> output", f"{_shape(a.input_shape)} -> {_shape(a.output_shape)}")
    s.add_row("ops", ", ".join(f"{k} x{v}" for k, v in a.ops.items()))
    s.add_row("MACs", f"{a.macs:,}")
    s.add_row("parameters", f"{a.params:,}")
    s.add_row("weights (int8)", f"{a.weight_bytes:,} B")
    s.add_row("biases (int32)", f"{a.bias_bytes:,} B")
    s.add_row("activation peak", f"{a.activation_peak_bytes:,} B (at op {a.peak_op})")
    s.add_row(".tflite", f"{a.tflite_bytes:,} B")
    out.print(s)
    m = Table(title="Memory estimate per runtime" + (f" on {board.id}" if board else ""))
    for col in ["runtime", "flash", "RAM"] + (
        ["fits", "flash margin", "RAM margin"] if board else []
    ):
        m.add_column(col, justify="left" if col in ("runtime", "fits") else "right")
    for name, est in a.estimates.items():
        row = [name, f"{est.flash_bytes:,} B", f"{est.ram_bytes:,} B"]
        if board is not None:
            v = a.verdicts[name]
            row += [
                "[green]yes[/]" if v["fits"] else "[red]no[/]",
                _margin(v, "flash"),
                _margin(v, "ram"),
            ]
        m.add_row(*row)
    out.print(m)
    aot = a.estimates.get("aot")
    if aot is not None and aot.schedule is not None:
        out.print(schedule_line(aot.schedule), highlight=False)


def schedule_line(plan: dict[str, Any]) -> str:
    """The AOT schedule an estimate planned for, and its arena beside the layer one's."""
    from mnmcu.stream import schedule_text

    return "AOT " + schedule_text(
        plan["schedule"], plan["streamed_ops"], plan["arena_bytes"], plan["layer_arena_bytes"]
    )


def _margin(verdict: dict[str, Any], what: str) -> str:
    res = verdict[what]
    if res["margin_bytes"] is None:
        return "no limit"
    return f"{res['margin_bytes']:,} B ({res['margin_percent']:.1f}%)"


def config_table(result: Any) -> None:
    """Print one configuration of ``mnmcu fit`` (a :class:`FitResult` of one candidate)."""
    c, limits = result.recommended, result.limits
    t = Table(
        title=f"{c.label} on {result.board} ({result.runtime} runtime): "
        f"{c.macs:,} MACs, {c.params:,} parameters"
    )
    for col in ["", "needs", "limit", "fits"]:
        t.add_column(col, justify="left" if not col else "right")
    grow = 1.0 + limits.margin
    for name, used, limit, parts in (
        ("flash", c.flash_bytes, limits.flash_bytes, c.flash_parts),
        ("RAM", c.ram_bytes, limits.ram_bytes, c.ram_parts),
    ):
        verdict = "-" if limit is None else ("yes" if used * grow <= limit else "[red]no[/]")
        t.add_row(name, f"{used:,} B", "none" if limit is None else f"{limit:,} B", verdict)
        for part, value in parts.items():
            if value:
                t.add_row(f"  {part}", f"{value:,} B", "", "")
    if c.latency_ms is not None:
        ok = limits.latency_ms is None or c.latency_ms <= limits.latency_ms
        t.add_row(
            "latency",
            f"{c.latency_ms:,.1f} ms",
            "none" if limits.latency_ms is None else f"{limits.latency_ms:g} ms",
            "yes" if ok else "[red]no[/]",
        )
    out.print(t)
    out.print(f"size model: {result.size_model}")
    if result.latency_source:
        out.print(f"latency: {result.latency_source}; clock: {result.clock}")
    verdict = "fits" if c.fits else "does not fit"
    out.print(
        f"[bold]{c.label} {verdict}[/] {result.board} with a {limits.margin:.0%} margin",
        highlight=False,
    )


def fit_tables(result: Any) -> None:
    """Print ``mnmcu fit``'s Pareto front and its recommendation (a :class:`FitResult`)."""
    limits = result.limits
    t = Table(
        title=f"Configurations that fit {result.board} ({result.arch}, {result.runtime} runtime, "
        f"{limits.margin:.0%} margin): Pareto front of MACs vs memory"
    )
    for col in ["alpha", "input", "MACs", "params", "flash", "RAM", "latency"]:
        t.add_column(col, justify="right")
    for c in result.front:
        mark = "[bold green]" if c == result.recommended else ""
        t.add_row(
            f"{mark}{c.alpha:g}",
            f"{c.size}x{c.size}",
            f"{c.macs:,}",
            f"{c.params:,}",
            f"{c.flash_bytes:,} B",
            f"{c.ram_bytes:,} B",
            "-" if c.latency_ms is None else f"{c.latency_ms:,.1f} ms",
        )
    out.print(t)
    r = result.recommended
    limit_text = ", ".join(
        f"{name} {value:,} B"
        for name, value in (("flash", limits.flash_bytes), ("RAM", limits.ram_bytes))
        if value is not None
    )
    if limits.latency_ms is not None:
        limit_text += f", latency {limits.latency_ms:g} ms"
    out.print(f"limits: {limit_text or 'none'}")
    error = result.calibration_error_percent
    out.print(
        f"size model: {result.size_model}"
        + (f" (largest error on those builds: {error:g}%)" if error is not None else "")
    )
    out.print(f"latency: {result.latency_source or 'no cycles-per-MAC figure for this board'}")
    if result.latency_source:
        out.print(f"clock: {result.clock}")
    latency = "" if r.latency_ms is None else f", about {r.latency_ms:,.1f} ms"
    out.print(
        f"[bold]recommended:[/] --arch {r.arch} --alpha {r.alpha:g} --resolution {r.size}: "
        f"{r.macs:,} MACs, flash {r.flash_bytes:,} B, RAM {r.ram_bytes:,} B{latency}",
        highlight=False,
    )
