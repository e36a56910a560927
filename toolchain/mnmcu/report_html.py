"""``report.html``: the build's ``report.json`` as one self-contained page.

No network, no scripts: the figures are matplotlib SVG drawn inline, and a
Content-Security-Policy forbids loading anything. Every figure on the page
that comes from ``report.json`` is wrapped in an element with
``data-json="<path>"`` (dotted keys, list indices as numbers) so a test or a
reader can check it against the JSON; ``data-format`` says how it is shown
(``int``: thousands separators, ``pct``: a fraction shown as a percentage
with one decimal). Output is deterministic for the same report.

Sections: model summary; per-layer MACs and activation bytes; the memory
plan as a timeline (which tensors occupy which arena bytes at each op);
flash and RAM against the board's limits; float vs int8 accuracy with
confusion matrices; per-layer latency from a profile
(:func:`latency_section`, empty until a profile is given).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnmcu import __version__
from mnmcu.escape import visible
from mnmcu.outdir import write_file

REPORT_HTML = "report.html"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #eee; text-align: right; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.note { color: #666; font-size: 0.9em; }
"""


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "int":
        return f"{int(value):,}"
    return html.escape(str(value))


def num(path: str, value: Any, kind: str = "int", unit: str = "") -> str:
    """A number from report.json, marked with its path."""
    suffix = f" {unit}" if unit else ""
    return (
        f'<span data-json="{html.escape(path)}" data-format="{kind}">{_fmt(value, kind)}</span>'
        f"{suffix}"
    )


def _svg(fig: Any) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "mnmcu"
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    # the RDF metadata block only names the generator and the format
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
    return text[text.index("<svg") :]


def _figure(fig_id: str, caption: str, fig: Any) -> str:
    return (
        f'<figure id="{fig_id}" class="mnmcu-figure">{_svg(fig)}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _layers_figure(layers: Sequence[dict[str, Any]], key: str, label: str, color: str) -> Any:
    fig = _new_figure(9, 2.6)
    ax = fig.add_subplot()
    ax.bar([layer["index"] for layer in layers], [layer[key] for layer in layers], color=color)
    ax.set_xlabel("op")
    ax.set_ylabel(label)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _plan_figure(plan: dict[str, Any], n_ops: int) -> Any:
    fig = _new_figure(9, 3.4)
    ax = fig.add_subplot()
    colors = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
    for i, b in enumerate(plan["buffers"]):
        ax.broken_barh(
            [(b["first_op"] - 0.4, b["last_op"] - b["first_op"] + 0.8)],
            (b["offset"], b["size"]),
            facecolors=colors[i % len(colors)],
            edgecolors="white",
            linewidth=0.5,
        )
    ax.axhline(plan["arena_bytes"], color="black", linestyle="--", linewidth=1)
    streamed = (plan.get("schedule") or {}).get("streamed_ops", 0)
    if streamed:
        ax.axvline(streamed - 0.5, color="black", linestyle=":", linewidth=1)
        ax.text(streamed - 0.4, plan["arena_bytes"] * 0.97, "hand-over", va="top", fontsize=8)
    ax.set_xlim(-1, max(n_ops, 1))
    ax.set_ylim(0, plan["arena_bytes"] * 1.05 or 1)
    ax.set_xlabel("op (time)")
    ax.set_ylabel("arena offset (bytes)")
    return fig


def _memory_figure(rows: Sequence[tuple[str, int, int | None]]) -> Any:
    """Each figure as a share of its board limit, so that a small model on a board
    with megabytes still shows a bar; the bytes are written beside it."""
    fig = _new_figure(9, 0.6 + 0.5 * len(rows))
    ax = fig.add_subplot()
    names = [r[0] for r in rows]
    shares = [100 * used / limit if limit else 0.0 for _, used, limit in rows]
    top = max([100.0, *shares]) * 1.05
    y = list(range(len(rows)))
    ax.barh(y, [100.0 if limit else 0.0 for *_, limit in rows], color="#dddddd",
            label="board limit")  # fmt: skip
    ax.barh(y, shares, height=0.5, color="#4c72b0", label="needed")
    for i, (_, used, limit) in enumerate(rows):
        text = f"{used:,} B" + (f" of {limit:,} B ({shares[i]:.1f}%)" if limit else "")
        ax.text(max(shares[i], 0) + top * 0.01, i, text, va="center", fontsize=8)
    ax.set_xlim(0, top)
    ax.set_yticks(y, names)
    ax.set_xlabel("% of the board's limit")
    ax.legend(loc="lower right")
    return fig


def _training_figure(history: Sequence[dict[str, float]], best_epoch: int | None) -> Any:
    fig = _new_figure(9, 3.0)
    epochs = list(range(1, len(history) + 1))
    for i, (metric, label) in enumerate((("loss", "loss"), ("accuracy", "top-1"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for key, name in ((metric, "training"), (f"val_{metric}", "held-out")):
            values = [h.get(key) for h in history]
            if all(v is not None for v in values):
                ax.plot(epochs, values, marker="o", markersize=3, label=name)
        if best_epoch:
            ax.axvline(best_epoch, color="#888888", linestyle="--", linewidth=1,
                       label="kept (best held-out)")  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _training(report: dict[str, Any]) -> str:
    """Epochs, best epoch, time and the curves of train.json, when the model was trained."""
    training = report.get("training")
    if not isinstance(training, dict):
        return ""
    history = [h for h in training.get("history") or [] if isinstance(h, dict)]
    rows = [
        ("epochs run", num("training.epochs_run", training.get("epochs_run"))),
        ("kept epoch (best held-out)", num("training.best_epoch", training.get("best_epoch"))),
        ("stopped early", html.escape("yes" if training.get("stopped_early") else "no")),
        ("training time", num("training.seconds", training.get("seconds"), "text", unit="s")),
        ("training / held-out images",
         num("training.train_images", training.get("train_images")) + " / "
         + num("training.val_images", training.get("val_images"))),
    ]  # fmt: skip
    table = "<table>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"
    figure = ""
    if history:
        best = training.get("best_epoch")
        figure = _figure(
            "fig-training",
            "Training curves: loss and top-1 per epoch, on the training and held-out images",
            _training_figure(history, best if isinstance(best, int) else None),
        )
    return f'<section id="training"><h2>Training</h2>{table}{figure}</section>'


def _confusion_figure(matrices: Sequence[tuple[str, list[list[int]]]], names: list[str]) -> Any:
    fig = _new_figure(4.2 * len(matrices), 3.8)
    for i, (title, m) in enumerate(matrices):
        ax = fig.add_subplot(1, len(matrices), i + 1)
        ax.imshow(m, cmap="Blues")
        for r, row in enumerate(m):
            for c, value in enumerate(row):
                ax.text(c, r, str(value), ha="center", va="center", fontsize=8)
        ticks = list(range(len(m)))
        # class names are the user's: never matplotlib's $...$ mathtext
        labels = [visible(str(n)) for n in names[: len(m)]]
        ax.set_xticks(ticks, labels, rotation=45, ha="right", parse_math=False)
        ax.set_yticks(ticks, labels, parse_math=False)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _summary(report: dict[str, Any]) -> str:
    source = report.get("source_tflite")
    model_rows = (
        [("model", html.escape(f"{source} (built elsewhere, mnmcu build --tflite)"))]
        if source
        else [
            ("architecture", html.escape(str(report.get("arch")))),
            ("alpha", num("alpha", report.get("alpha"), "text")),
        ]
    )
    shape = (report.get("analysis") or {}).get("input_shape")
    rows = [
        ("board", html.escape(str(report.get("board")))),
        *model_rows,
        (
            "input",
            num("resolution", report.get("resolution"))
            + " px square, "
            + num("channels", report.get("channels"))
            + (" channel" if report.get("channels") == 1 else " channels")
            if report.get("resolution") is not None or not shape
            else html.escape(" x ".join(str(d) for d in shape)),
        ),
        ("classes", num("classes", report.get("classes"))),
        ("parameters", num("params", report.get("params"))),
        ("MACs", num("macs", report.get("macs"))),
        ("int8 .tflite", num("tflite_bytes", report.get("tflite_bytes"), unit="B")),
        (
            "activation peak",
            num(
                "analysis.activation_peak_bytes",
                report["analysis"]["activation_peak_bytes"],
                unit="B",
            ),
        ),
    ]
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<section id="summary"><h2>Model</h2><table>{body}</table></section>'


def _layers(report: dict[str, Any]) -> str:
    layers = report["analysis"]["layers"]
    rows = "".join(
        f"<tr><td>{i}</td><td>{html.escape(layer['op'])}</td>"
        f"<td>{'x'.join(str(d) for d in layer['output_shape'])}</td>"
        f"<td>{num(f'analysis.layers.{i}.macs', layer['macs'])}</td>"
        f"<td>{num(f'analysis.layers.{i}.activation_bytes', layer['activation_bytes'])}</td></tr>"
        for i, layer in enumerate(layers)
    )
    return (
        '<section id="layers"><h2>Layers</h2>'
        + _figure("fig-macs", "MACs per op", _layers_figure(layers, "macs", "MACs", "#4c72b0"))
        + _figure(
            "fig-activations",
            "Bytes of each op's output (int8 activations)",
            _layers_figure(layers, "activation_bytes", "bytes", "#dd8452"),
        )
        + "<details><summary>Table</summary><table><tr><th>#</th><th>op</th><th>output</th>"
        + f"<th>MACs</th><th>output bytes</th></tr>{rows}</table></details></section>"
    )


def _plan(report: dict[str, Any]) -> str:
    plan = report.get("memory_plan")
    if not plan:
        return (
            '<section id="plan"><h2>Memory plan</h2><p>No memory plan in this report.</p></section>'
        )
    n_ops = len(report["analysis"]["layers"])
    return (
        '<section id="plan"><h2>Memory plan (AOT runtime)</h2>'
        f"<p>Arena {num('memory_plan.arena_bytes', plan['arena_bytes'], unit='B')}; "
        f"{num('memory_plan.peak_live_bytes', plan['peak_live_bytes'], unit='B')} live at the "
        f"busiest op. Each bar is a buffer: it occupies its bytes of the arena (vertical) "
        f"from the op that writes it to the last op that reads it (horizontal).</p>"
        + _stream_text(plan)
        + _figure("fig-plan", "Arena timeline", _plan_figure(plan, n_ops))
        + "</section>"
    )


def _stream_text(plan: dict[str, Any]) -> str:
    """What the stream schedule does to the timeline (nothing for the layer schedule)."""
    schedule = plan.get("schedule") or {}
    streamed = schedule.get("streamed_ops", 0)
    if not streamed:
        return ""
    return (
        f"<p>Stream schedule: ops 0-{streamed - 1} run row by row. Until the hand-over (the "
        f"dotted line) the bars of their outputs are windows of a few rows, and one bar is "
        f"the scratch their row calls share; op {streamed - 1} writes its whole output, from "
        f"which the layer plan runs the rest. The layer schedule's arena: "
        f"{num('memory_plan.schedule.layer_arena_bytes', schedule['layer_arena_bytes'], unit='B')}"
        ".</p>"
    )


def _limits(report: dict[str, Any]) -> tuple[str, list[tuple[str, int, int | None]]]:
    limits = report.get("board_limits") or {}
    flash_limit, ram_limit = limits.get("flash_bytes"), limits.get("ram_bytes")
    rows_html = []
    bars: list[tuple[str, int, int | None]] = []
    for name, est in sorted(report["analysis"]["estimates"].items()):
        base = f"analysis.estimates.{name}"
        rows_html.append(
            f"<tr><td>{html.escape(name)} (estimate)</td>"
            f"<td>{num(base + '.flash_bytes', est['flash_bytes'])}</td>"
            f"<td>{num(base + '.ram_bytes', est['ram_bytes'])}</td></tr>"
        )
        bars += [(f"{name} flash (est.)", est["flash_bytes"], flash_limit)]
        bars += [(f"{name} RAM (est.)", est["ram_bytes"], ram_limit)]
    fw = report.get("firmware") or {}
    fp = fw.get("footprint")
    if fp:
        arithmetic = fw.get("arithmetic")
        what = str(fw.get("runtime")) + (f", {arithmetic} arithmetic" if arithmetic else "")
        rows_html.append(
            f"<tr><td>{html.escape(what)} firmware (ELF)</td>"
            f"<td>{num('firmware.footprint.flash_bytes', fp['flash_bytes'])}</td>"
            f"<td>{num('firmware.footprint.ram_bytes', fp['ram_bytes'])}</td></tr>"
        )
        bars += [("firmware flash", fp["flash_bytes"], flash_limit)]
        bars += [("firmware RAM", fp["ram_bytes"], ram_limit)]
    rows_html.append(
        f"<tr><td>board limit</td><td>{num('board_limits.flash_bytes', flash_limit)}</td>"
        f"<td>{num('board_limits.ram_bytes', ram_limit)}</td></tr>"
    )
    table = "<table><tr><th></th><th>flash (B)</th><th>RAM (B)</th></tr>" + "".join(rows_html)
    return table + "</table>", bars


def _memory(report: dict[str, Any]) -> str:
    table, bars = _limits(report)
    return (
        f'<section id="memory"><h2>Flash and RAM on {html.escape(str(report.get("board")))}</h2>'
        + table
        + _figure("fig-memory", "Needed vs the board's limits", _memory_figure(bars))
        + "</section>"
    )


def _accuracy(report: dict[str, Any]) -> str:
    if report.get("source_tflite"):
        return (
            '<section id="accuracy"><h2>Accuracy</h2><p class="note">Not measured: the '
            "model was built elsewhere (mnmcu build --tflite); 'mnmcu hil --data DIR' "
            "measures the device's top-1 on labelled images.</p></section>"
        )
    acc = report.get("accuracy") or {}
    trained = report.get("training") is not None
    note = "" if trained else '<p class="note">The model was not trained (--no-train).</p>'
    text = (
        f"<p>Top-1 on {num('accuracy.images', acc.get('images'))} held-out images: float "
        f"{num('accuracy.float', acc.get('float'), 'pct')}, int8 "
        f"{num('accuracy.int8', acc.get('int8'), 'pct')}, agreement "
        f"{num('accuracy.agreement', acc.get('agreement'), 'pct')}.</p>"
    )
    matrices = [
        (title, acc[key])
        for title, key in (("float", "confusion_float"), ("int8", "confusion_int8"))
        if acc.get(key)
    ]
    figure = ""
    if matrices:
        names = [str(n) for n in report.get("class_names") or range(len(matrices[0][1]))]
        figure = _figure(
            "fig-confusion",
            "Confusion matrices (rows: true class, columns: predicted)",
            _confusion_figure(matrices, names),
        )
    return f'<section id="accuracy"><h2>Accuracy</h2>{note}{text}{figure}</section>'


def latency_section(report: dict[str, Any], profile: Sequence[dict[str, Any]] | None) -> str:
    """The per-layer latency section: from ``profile`` when given, else a placeholder.

    ``profile`` holds one dict per op: ``op`` (the op index, as in
    ``report["analysis"]["layers"]``) and ``cycles`` (int), optionally ``us``
    (float). The HIL profiling run supplies it.
    """
    if not profile:
        return (
            '<section id="latency"><h2>Per-layer latency</h2>'
            "<p>No per-layer profile in this report.</p></section>"
        )
    layers = {layer["index"]: layer for layer in report["analysis"]["layers"]}
    fig = _new_figure(9, 2.6)
    ax = fig.add_subplot()
    ax.bar([int(p["op"]) for p in profile], [int(p["cycles"]) for p in profile], color="#55a868")
    ax.set_xlabel("op")
    ax.set_ylabel("cycles")
    rows = "".join(
        f"<tr><td>{int(p['op'])}</td><td>{html.escape(layers.get(int(p['op']), {}).get('op', '?'))}"
        f"</td><td>{int(p['cycles']):,}</td><td>{'' if p.get('us') is None else p['us']}</td></tr>"
        for p in profile
    )
    return (
        '<section id="latency"><h2>Per-layer latency</h2>'
        + _figure("fig-latency", "Cycles per op", fig)
        + "<table><tr><th>op</th><th>type</th><th>cycles</th><th>µs</th></tr>"
        + rows
        + "</table></section>"
    )


def render_report_html(
    report: dict[str, Any], profile: Sequence[dict[str, Any]] | None = None
) -> str:
    """The whole page for ``report`` (the dict written to report.json)."""
    title = (
        f"mnmcu report: {report['source_tflite']} on {report.get('board')}"
        if report.get("source_tflite")
        else f"mnmcu report: {report.get('arch')} alpha {report.get('alpha')} "
        f"{report.get('resolution')}px on {report.get('board')}"
    )
    body = "".join(
        [
            f"<h1>{html.escape(title)}</h1>",
            f'<p class="note">Generated by mnmcu {html.escape(__version__)} from report.json.</p>',
            _summary(report),
            _layers(report),
            _plan(report),
            _memory(report),
            _training(report),
            _accuracy(report),
            latency_section(report, profile),
        ]
    )
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def write_report_html(
    out_dir: Path, report: dict[str, Any], profile: Sequence[dict[str, Any]] | None = None
) -> Path:
    """Write ``report.html`` for ``report`` into ``out_dir``; return its path."""
    return write_file(Path(out_dir) / REPORT_HTML, render_report_html(report, profile))
