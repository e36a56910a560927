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


def _margin(verdict: dict[str, Any], what: str) -> str:
    res = verdict[what]
    if res["margin_bytes"] is None:
        return "no limit"
    return f"{res['margin_bytes']:,} B ({res['margin_percent']:.1f}%)"
