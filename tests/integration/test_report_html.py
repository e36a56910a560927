"""``report.html``: written by every build, self-contained, opens in headless Chromium
without console messages, shows its figures, and every number on it is the one in
report.json.

The build here is the real pipeline on an untrained model (no training in the test
suite's fast path; the pipeline spreads an untrained classifier's biases so the int8
conversion has a usable softmax scale).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnmcu.boards import get_board
from mnmcu.model.spec import ModelSpec
from mnmcu.pipeline import TrainOptions, build
from mnmcu.report_html import REPORT_HTML, render_report_html

from ..conftest import require_tool

pytestmark = pytest.mark.slow

CHROMIUM_INSTALL = "apt-get install -y chromium"
CHROMIUM_TIMEOUT_S = 120
FIGURES = ("fig-macs", "fig-activations", "fig-plan", "fig-memory", "fig-training", "fig-confusion")


def _image_folder(root: Path) -> Path:
    """Three classes of 32x32 images that differ in brightness and colour."""
    rng = np.random.default_rng(0)
    for name in ("dark", "light", "red"):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(10):
            if name == "dark":
                pixels = rng.integers(0, 40, (32, 32, 3))
            elif name == "light":
                pixels = rng.integers(215, 256, (32, 32, 3))
            else:
                pixels = rng.integers(0, 60, (32, 32, 3))
                pixels[..., 0] = 255
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A qemu-m4 build trained 3 epochs (firmware compiled when arm-none-eabi-gcc is there)."""
    root = tmp_path_factory.mktemp("report")
    data = _image_folder(root / "data")
    build(
        ModelSpec(arch="v1", alpha=0.25, resolution=32, classes=3),
        get_board("qemu-m4"),
        root / "out",
        TrainOptions(data=str(data), epochs=3, batch_size=8),
        train_model=True,
        representative=8,
        classes_from_data=True,
        compile_firmware=shutil.which("arm-none-eabi-gcc") is not None,
    )
    yield root / "out"


def test_report_html_is_written_from_report_json(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    page = (built / REPORT_HTML).read_text(encoding="utf-8")
    assert page == render_report_html(report), "the page is a function of report.json alone"
    assert "http://" not in page.replace("http://www.w3.org/", "")
    assert "<script" not in page


def test_training_section_from_train_json(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    training = report["training"]
    assert training["epochs_run"] == len(training["history"]) == 3
    page = (built / REPORT_HTML).read_text(encoding="utf-8")
    section = page[page.index('<section id="training">') :]
    section = section[: section.index("</section>")]
    assert f'data-json="training.best_epoch" data-format="int">{training["best_epoch"]}<' in section
    assert 'id="fig-training"' in section


def test_memory_bars_show_a_small_share_of_a_large_board(built: Path) -> None:
    """qemu-m4 has 4 MiB of each: the bars are shares of the limit, with the bytes written."""
    report = json.loads((built / "report.json").read_text())
    page = (built / REPORT_HTML).read_text(encoding="utf-8")
    figure = page[page.index('id="fig-memory"') :]
    figure = figure[: figure.index("</figure>")]
    assert "of the board" in figure
    ram = report["analysis"]["estimates"]["aot"]["ram_bytes"]
    limit = report["board_limits"]["ram_bytes"]
    assert f"{ram:,} B of {limit:,} B ({100 * ram / limit:.1f}%)" in figure


def test_input_channels_read_as_english(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    for channels, words in ((1, "</span> channel</td>"), (3, "</span> channels</td>")):
        page = render_report_html({**report, "channels": channels})
        assert words in page, channels
        assert "1</span> channels" not in page


def test_confusion_matrices_match_the_accuracy(built: Path) -> None:
    acc = json.loads((built / "report.json").read_text())["accuracy"]
    for key, top1 in (("confusion_float", "float"), ("confusion_int8", "int8")):
        m = np.array(acc[key])
        assert m.shape == (3, 3)
        assert m.sum() == acc["images"]
        assert np.trace(m) / m.sum() == pytest.approx(acc[top1])


def test_report_records_the_memory_plan(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    plan = report["memory_plan"]
    assert plan["arena_bytes"] == max(b["offset"] + b["size"] for b in plan["buffers"])
    fw = report["firmware"]
    if fw.get("footprint"):
        assert fw["footprint"]["arena_bytes"] == plan["arena_bytes"]


class _Marked(HTMLParser):
    """Collects the text of every element with data-json, and the figures' SVG."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[tuple[str, str, str]] = []
        self.figures: dict[str, int] = {}
        self._open: list[tuple[str, str] | None] = []
        self._text: list[str] = []
        self._figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and a.get("id"):
            self._figure = a["id"]
            self.figures[self._figure] = 0
        if self._figure and tag in ("path", "rect", "use"):
            self.figures[self._figure] += 1
        if tag == "span" and a.get("data-json"):
            self._open.append((a["data-json"] or "", a.get("data-format") or ""))
            self._text = []
        elif tag == "span":
            self._open.append(None)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        if tag == "span" and self._open:
            item = self._open.pop()
            if item is not None:
                self.numbers.append((item[0], item[1], "".join(self._text)))

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def _lookup(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={cwd / 'chromium-profile'}",
            "--enable-logging=stderr",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_S,
        cwd=cwd,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def chromium() -> None:
    require_tool("chromium", CHROMIUM_INSTALL, "MNMCU_REQUIRE_CHROMIUM")


def test_console_check_catches_a_broken_page(chromium: None, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'\"></head><body>"
        '<img src="http://example.invalid/x.png"></body></html>'
    )
    result = _chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert _console(result.stderr), "a blocked network load must show on the console"


def test_report_opens_in_chromium_with_its_figures_and_numbers(
    chromium: None, built: Path, tmp_path: Path
) -> None:
    page = (built / REPORT_HTML).resolve()
    dom = _chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not _console(dom.stderr), _console(dom.stderr)
    parsed = _Marked()
    parsed.feed(dom.stdout)
    for fig in FIGURES:
        assert parsed.figures.get(fig, 0) > 10, f"figure {fig} missing or empty"
    report = json.loads((built / "report.json").read_text())
    assert len(parsed.numbers) > 2 * len(report["analysis"]["layers"])
    for path, kind, text in parsed.numbers:
        value = _lookup(report, path)
        if value is None:
            assert text == "-", path
        elif kind == "int":
            assert int(text.replace(",", "")) == value, (path, text, value)
        elif kind == "pct":
            assert float(text.rstrip("%")) == pytest.approx(100 * value, abs=0.05), (path, text)
        else:
            assert text == str(value), (path, text, value)
    shot = tmp_path / "report.png"
    result = _chromium(
        "--screenshot=" + str(shot), "--window-size=1200,3000", page.as_uri(), cwd=tmp_path
    )
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (3000, 1200)
    assert (pixels < 128).mean() > 0.005, "the screenshot is blank"
