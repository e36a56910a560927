"""The STM32 clock setup against a simulated RCC, for every STM32 board's plan.

``stm32_clock_sim.c`` models the RCC, PWR and flash registers the setup
touches (oscillators and the PLL that become ready, or never do; reads that
give 0 as in QEMU) and counts every breach of the reference manuals' rules.
Each board's ``mnmcu_clock_config.h`` comes from its board file, as ``mnmcu
emit`` writes it; the clock code is compiled for the host with its register
accesses routed to the model. Needs the host's gcc (``MNMCU_REQUIRE_GCC=1``
turns its absence into a failure).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from mnmcu.boards import Board, get_board
from mnmcu.emit.project import clock_config
from mnmcu.paths import data_dir

from ..conftest import require_tool

HERE = Path(__file__).resolve().parent
CLOCK_DIR = data_dir("firmware") / "hal" / "stm32_clock"
STM32_BOARDS = ("disco_f407vg", "nucleo_f446re", "disco_f746ng", "nucleo_h743zi")
SW_PLL = {"stm32f40x": 2, "stm32f446": 2, "stm32f7": 2, "stm32h7": 3}


def build_sim(board: Board, out: Path, config: str | None = None) -> Path:
    """The simulator linked with the clock code and ``board``'s plan (or ``config``)."""
    require_tool("gcc", "apt-get install gcc", "MNMCU_REQUIRE_GCC")
    out.mkdir(parents=True, exist_ok=True)
    (out / "mnmcu_clock_config.h").write_text(config or clock_config(board))
    exe = out / "sim"
    command = [
        "gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic",
        "-DMNMCU_STM32_CLOCK_SIMULATED", f"-I{out}", f"-I{CLOCK_DIR}",
        str(HERE / "stm32_clock_sim.c"), str(CLOCK_DIR / "mnmcu_stm32_clock.c"), "-o", str(exe),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def run_sim(exe: Path, mode: str) -> dict[str, str]:
    result = subprocess.run([str(exe), mode], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(part.split("=", 1) for part in shlex.split(result.stdout))


@pytest.fixture(scope="module", params=STM32_BOARDS)
def sim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    board = get_board(request.param)
    return board, build_sim(board, tmp_path_factory.mktemp(board.id))


def test_ready_rcc_runs_the_plan(sim: tuple[Board, Path]) -> None:
    board, exe = sim
    clock = board.clock
    assert clock is not None
    out = run_sim(exe, "ready")
    assert out["violations"] == "0", out["first_violation"]
    assert out["source"] == "hse_pll" and out["status"] == "0"
    assert int(out["sysclk"]) == board.cpu.clock_hz == int(out["pll_hz"])
    hclk = board.cpu.clock_hz // clock.ahb_div
    assert int(out["hclk"]) == hclk
    assert int(out["pclk1"]) == hclk // clock.apb1_div
    assert int(out["pclk2"]) == hclk // clock.apb2_div
    assert int(out["sws"]) == SW_PLL[clock.chip]
    assert int(out["latency"]) == clock.flash_latency
    if clock.chip == "stm32h7":
        # RM0433 8.7.11/8.7.13: PLLSRC (1:0) = 2 (HSE), DIVM1 (9:4); DIVN1-1 (8:0), DIVP1-1 (15:9).
        sel, div = int(out["pllckselr"], 16), int(out["pll1divr"], 16)
        assert (sel & 3, sel >> 4 & 0x3F) == (2, clock.pll_m)
        assert (div & 0x1FF, div >> 9 & 0x7F) == (clock.pll_n - 1, clock.pll_p - 1)
        assert (div >> 16 & 0x7F, div >> 24 & 0x7F) == (clock.pll_q - 1, clock.pll_r - 1)
    else:
        # RM0090 7.3.2: PLLM (5:0), PLLN (14:6), PLLP (17:16) = P/2 - 1, PLLSRC (22), PLLQ (27:24).
        cfg = int(out["pllcfgr"], 16)
        assert (cfg & 0x3F, cfg >> 6 & 0x1FF) == (clock.pll_m, clock.pll_n)
        assert (cfg >> 16 & 3, cfg >> 22 & 1, cfg >> 24 & 0xF) == (
            clock.pll_p // 2 - 1,
            1,
            clock.pll_q,
        )


@pytest.mark.parametrize(
    ("mode", "step"),
    [("unmodelled", None), ("no_hse", "hse"), ("no_pll", "pll")],
)
def test_rcc_that_never_becomes_ready_falls_back(
    sim: tuple[Board, Path], mode: str, step: str | None
) -> None:
    board, exe = sim
    clock = board.clock
    assert clock is not None
    out = run_sim(exe, mode)
    assert out["violations"] == "0", out["first_violation"]
    # Reads give 0 in the unmodelled RCC: the H7 finds its supply configuration locked first.
    expected = step or ("supply" if clock.chip == "stm32h7" else "hse")
    assert out["source"] == f"hsi_fallback:{expected}"
    for key in ("sysclk", "core", "hclk", "pclk1", "pclk2"):
        assert int(out[key]) == clock.fallback_hz
    assert out["sws"] == "0" and out["hseon"] == "0" and out["pllon"] == "0"
    # Every wait is bounded: at most two waits of HSI/40 reads (the failed step, then the HSI).
    assert int(out["reads"]) <= 2 * clock.fallback_hz // 40 + 100


def test_the_model_catches_a_plan_that_breaks_the_rules(tmp_path: Path) -> None:
    """Too few flash wait states for 168 MHz: the simulated chip reports the breach."""
    board = get_board("disco_f407vg")
    config = clock_config(board).replace(
        "#define MNMCU_CLOCK_FLASH_LATENCY 5u", "#define MNMCU_CLOCK_FLASH_LATENCY 2u"
    )
    assert "LATENCY 2u" in config
    out = run_sim(build_sim(board, tmp_path, config), "ready")
    assert out["violations"] != "0"
    assert "wait states" in out["first_violation"]
