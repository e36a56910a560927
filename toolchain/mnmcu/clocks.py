"""The clock plans of STM32 boards: the ``[clock]`` table of a board file.

A plan names the chip, the external clock the board gives it (a crystal, or
the ST-LINK's 8 MHz MCO in bypass mode), the PLL factors, bus dividers, flash
wait states and whether over-drive is needed. The firmware's register-level
setup (``firmware/hal/stm32_clock``) applies it through the generated
``mnmcu_clock_config.h``. :func:`check_clock` holds a plan to the chip's
documented limits, so a board file cannot promise a clock the chip cannot run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Chip = Literal["stm32f40x", "stm32f446", "stm32f7", "stm32h7"]
Source = Literal["hse_crystal", "hse_bypass"]


@dataclass(frozen=True)
class ChipLimits:
    """What one chip family's reference manual and datasheet allow (see ``LIMITS``)."""

    hsi_hz: int
    vco_in_hz: tuple[float, float]
    vco_out_hz: tuple[float, float]
    pll_n: tuple[int, int]
    pll_p: frozenset[int]
    pll_qr: tuple[int, int]
    sysclk_max_hz: int
    sysclk_max_without_overdrive_hz: int
    hclk_max_hz: int
    apb1_max_hz: int
    apb2_max_hz: int
    hz_per_wait_state: int | None
    max_wait_states: int
    source: str


_EVEN_P = frozenset(range(2, 129, 2))
LIMITS: dict[str, ChipLimits] = {
    # RM0090 Rev 19: 6.2.2 HSI 16 MHz; 6.3.2 RCC_PLLCFGR (VCO input 1-2 MHz, output
    # 100-432 MHz, PLLN 50-432, PLLP 2/4/6/8); 3.5.1 Table 10 (one wait state per
    # 30 MHz at 2.7-3.6 V); DS8626 (F407) 168 MHz, APB1 42 MHz, APB2 84 MHz.
    "stm32f40x": ChipLimits(
        16_000_000,
        (1e6, 2e6),
        (100e6, 432e6),
        (50, 432),
        frozenset({2, 4, 6, 8}),
        (2, 15),
        168_000_000,
        168_000_000,
        168_000_000,
        42_000_000,
        84_000_000,
        30_000_000,
        7,
        "RM0090 6.3.2, 3.5.1 Table 10; DS8626",
    ),
    # RM0390 Rev 6: 6.3.2 (same PLL ranges), 5.1.4 over-drive above 168 MHz, 3.4 Table 5
    # (one wait state per 30 MHz at 2.7-3.6 V); DS10693: 180 MHz, APB1 45 MHz, APB2 90 MHz.
    "stm32f446": ChipLimits(
        16_000_000,
        (1e6, 2e6),
        (100e6, 432e6),
        (50, 432),
        frozenset({2, 4, 6, 8}),
        (2, 15),
        180_000_000,
        168_000_000,
        180_000_000,
        45_000_000,
        90_000_000,
        30_000_000,
        15,
        "RM0390 6.3.2, 5.1.4, 3.4 Table 5; DS10693",
    ),
    # RM0385 Rev 8: 5.3.2 (VCO input 0.95-2.1 MHz, output 100-432 MHz), 4.1.4 over-drive
    # above 180 MHz, 3.3.2 Table 5 (one wait state per 30 MHz at 2.7-3.6 V);
    # DS10916 (F746): 216 MHz, APB1 54 MHz, APB2 108 MHz.
    "stm32f7": ChipLimits(
        16_000_000,
        (0.95e6, 2.1e6),
        (100e6, 432e6),
        (50, 432),
        frozenset({2, 4, 6, 8}),
        (2, 15),
        216_000_000,
        180_000_000,
        216_000_000,
        54_000_000,
        108_000_000,
        30_000_000,
        15,
        "RM0385 5.3.2, 4.1.4, 3.3.2 Table 5; DS10916",
    ),
    # RM0433 Rev 8: 8.5.5 HSI 64 MHz after reset; 8.7.11-13 PLL1 (reference 1-16 MHz,
    # wide VCO 192-836 MHz, DIVN1 4-512, DIVP1 even); DS12110: 400 MHz in VOS1 (480 MHz
    # needs VOS0 and revision V), AXI/AHB 200 MHz, APB 100 MHz. Wait states: ST's
    # NUCLEO-H743ZI template runs 400 MHz with 4 (STM32CubeH7
    # Projects/NUCLEO-H743ZI/Templates/Src/main.c); no per-MHz rule is checked here.
    "stm32h7": ChipLimits(
        64_000_000,
        (1e6, 16e6),
        (192e6, 836e6),
        (4, 512),
        _EVEN_P,
        (1, 128),
        400_000_000,
        400_000_000,
        200_000_000,
        100_000_000,
        100_000_000,
        None,
        7,
        "RM0433 8.7; DS12110",
    ),
}


@dataclass(frozen=True)
class Clock:
    """A board's clock plan (``[clock]`` in its board file)."""

    chip: Chip
    source: Source
    hse_hz: int
    pll_m: int
    pll_n: int
    pll_p: int
    pll_q: int
    pll_r: int
    ahb_div: int
    apb1_div: int
    apb2_div: int
    apb3_div: int
    apb4_div: int
    flash_latency: int
    overdrive: bool

    @property
    def sysclk_hz(self) -> int:
        """The system clock the plan gives: ``hse_hz / pll_m * pll_n / pll_p``."""
        return self.hse_hz * self.pll_n // (self.pll_m * self.pll_p)

    @property
    def hclk_hz(self) -> int:
        """The AHB clock."""
        return self.sysclk_hz // self.ahb_div

    @property
    def fallback_hz(self) -> int:
        """The internal oscillator the firmware falls back to when a step fails."""
        return LIMITS[self.chip].hsi_hz

    def macros(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs of ``mnmcu_clock_config.h``, in order."""
        return [
            (f"MNMCU_CLOCK_CHIP_{self.chip.upper()}", "1"),
            ("MNMCU_CLOCK_HSI_HZ", f"{self.fallback_hz}u"),
            ("MNMCU_CLOCK_HSE_HZ", f"{self.hse_hz}u"),
            ("MNMCU_CLOCK_HSE_BYPASS", "1" if self.source == "hse_bypass" else "0"),
            ("MNMCU_CLOCK_PLL_M", f"{self.pll_m}u"),
            ("MNMCU_CLOCK_PLL_N", f"{self.pll_n}u"),
            ("MNMCU_CLOCK_PLL_P", f"{self.pll_p}u"),
            ("MNMCU_CLOCK_PLL_Q", f"{self.pll_q}u"),
            ("MNMCU_CLOCK_PLL_R", f"{self.pll_r}u"),
            ("MNMCU_CLOCK_AHB_DIV", f"{self.ahb_div}u"),
            ("MNMCU_CLOCK_APB1_DIV", f"{self.apb1_div}u"),
            ("MNMCU_CLOCK_APB2_DIV", f"{self.apb2_div}u"),
            ("MNMCU_CLOCK_APB3_DIV", f"{self.apb3_div}u"),
            ("MNMCU_CLOCK_APB4_DIV", f"{self.apb4_div}u"),
            ("MNMCU_CLOCK_FLASH_LATENCY", f"{self.flash_latency}u"),
            ("MNMCU_CLOCK_OVERDRIVE", "1" if self.overdrive else "0"),
            ("MNMCU_CLOCK_SYSCLK_HZ", f"{self.sysclk_hz}u"),
        ]


def clock_from_data(data: Mapping[str, Any]) -> Clock:
    """The :class:`Clock` of a validated ``[clock]`` table (dividers default to 1)."""
    return Clock(
        chip=data["chip"],
        source=data["source"],
        hse_hz=data["hse_hz"],
        pll_m=data["pll_m"],
        pll_n=data["pll_n"],
        pll_p=data["pll_p"],
        pll_q=data["pll_q"],
        pll_r=data.get("pll_r", 2),
        ahb_div=data.get("ahb_div", 1),
        apb1_div=data.get("apb1_div", 1),
        apb2_div=data.get("apb2_div", 1),
        apb3_div=data.get("apb3_div", 1),
        apb4_div=data.get("apb4_div", 1),
        flash_latency=data["flash_latency"],
        overdrive=data["overdrive"],
    )


def check_clock(clock: Clock, cpu_clock_hz: int | None) -> str | None:
    """The first way ``clock`` breaks its chip's limits or the board's clock, or ``None``."""
    limits = LIMITS[clock.chip]
    vco_in = clock.hse_hz / clock.pll_m
    vco_out = vco_in * clock.pll_n
    hclk = clock.hclk_hz
    h7 = clock.chip == "stm32h7"
    apb1 = hclk / clock.apb1_div
    apb2 = hclk / clock.apb2_div
    exact = clock.hse_hz * clock.pll_n / (clock.pll_m * clock.pll_p)
    checks: list[tuple[bool, str]] = [
        (exact == clock.sysclk_hz, f"hse_hz / pll_m * pll_n / pll_p = {exact:.1f} Hz"),
        (
            cpu_clock_hz == clock.sysclk_hz,
            f"the plan gives {clock.sysclk_hz} Hz but cpu.clock_hz is {cpu_clock_hz}",
        ),
        (
            limits.vco_in_hz[0] <= vco_in <= limits.vco_in_hz[1],
            f"PLL input hse_hz / pll_m = {vco_in / 1e6:g} MHz is outside "
            f"{limits.vco_in_hz[0] / 1e6:g}-{limits.vco_in_hz[1] / 1e6:g} MHz",
        ),
        (
            limits.vco_out_hz[0] <= vco_out <= limits.vco_out_hz[1],
            f"VCO {vco_out / 1e6:g} MHz is outside "
            f"{limits.vco_out_hz[0] / 1e6:g}-{limits.vco_out_hz[1] / 1e6:g} MHz",
        ),
        (
            limits.pll_n[0] <= clock.pll_n <= limits.pll_n[1],
            f"pll_n {clock.pll_n} is outside {limits.pll_n[0]}-{limits.pll_n[1]}",
        ),
        (clock.pll_p in limits.pll_p, f"pll_p {clock.pll_p} is not one of the chip's dividers"),
        (
            all(limits.pll_qr[0] <= v <= limits.pll_qr[1] for v in (clock.pll_q, clock.pll_r)),
            f"pll_q {clock.pll_q} or pll_r {clock.pll_r} is outside "
            f"{limits.pll_qr[0]}-{limits.pll_qr[1]}",
        ),
        (
            clock.sysclk_hz <= limits.sysclk_max_hz,
            f"{clock.sysclk_hz} Hz is above the chip's {limits.sysclk_max_hz} Hz",
        ),
        (
            clock.overdrive or clock.sysclk_hz <= limits.sysclk_max_without_overdrive_hz,
            f"{clock.sysclk_hz} Hz needs over-drive (overdrive = true)",
        ),
        (
            not clock.overdrive or clock.chip in ("stm32f446", "stm32f7"),
            f"{clock.chip} has no over-drive",
        ),
        (hclk <= limits.hclk_max_hz, f"AHB {hclk} Hz is above {limits.hclk_max_hz} Hz"),
        (apb1 <= limits.apb1_max_hz, f"APB1 {apb1:.0f} Hz is above {limits.apb1_max_hz} Hz"),
        (apb2 <= limits.apb2_max_hz, f"APB2 {apb2:.0f} Hz is above {limits.apb2_max_hz} Hz"),
        (
            not h7 or max(hclk / clock.apb3_div, hclk / clock.apb4_div) <= limits.apb1_max_hz,
            f"APB3/APB4 above {limits.apb1_max_hz} Hz",
        ),
        (
            h7 or (clock.apb3_div == 1 and clock.apb4_div == 1),
            "apb3_div and apb4_div exist on the STM32H7 only",
        ),
        (
            clock.flash_latency <= limits.max_wait_states,
            f"flash_latency {clock.flash_latency} is above {limits.max_wait_states}",
        ),
    ]
    if limits.hz_per_wait_state is not None:
        needed = math.ceil(hclk / limits.hz_per_wait_state) - 1
        checks.append(
            (
                clock.flash_latency >= needed,
                f"{hclk / 1e6:g} MHz needs at least {needed} flash wait states, "
                f"not {clock.flash_latency}",
            )
        )
    for ok, problem in checks:
        if not ok:
            return f"{problem} ({limits.source})"
    return None
