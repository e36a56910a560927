"""The clock setup's register map (mnmcu_stm32_clock_regs.h) against ST's own headers.

The clock code addresses registers without ST's headers (the bare-metal
build has none), so every address, offset and bit position it uses is
compared here, at compile time, with ST's CMSIS device headers. Runs when
``MNMCU_STM32CUBE_SOURCES`` names a folder holding ST's ``cmsis_device_f4``,
``cmsis_device_f7``, ``cmsis_device_h7`` repositories and ``CMSIS_5`` (for
``CMSIS/Core/Include``); skipped otherwise. Needs ``arm-none-eabi-gcc``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mnmcu.paths import data_dir

ENV = "MNMCU_STM32CUBE_SOURCES"
CLOCK_DIR = data_dir("firmware") / "hal" / "stm32_clock"

# chip: (ST's device macro, its repository, its header, -mcpu, PWR_TypeDef members of the
# control and status registers, their bit-name prefixes)
CHIPS = {
    "stm32f40x": ("STM32F407xx", "cmsis_device_f4", "stm32f4xx.h", "cortex-m4",
                  ("CR", "CSR"), "PWR_CR", "PWR_CSR"),
    "stm32f446": ("STM32F446xx", "cmsis_device_f4", "stm32f4xx.h", "cortex-m4",
                  ("CR", "CSR"), "PWR_CR", "PWR_CSR"),
    "stm32f7": ("STM32F746xx", "cmsis_device_f7", "stm32f7xx.h", "cortex-m7",
                ("CR1", "CSR1"), "PWR_CR1", "PWR_CSR1"),
    "stm32h7": ("STM32H743xx", "cmsis_device_h7", "stm32h7xx.h", "cortex-m7", ("", ""), "", ""),
}  # fmt: skip


def f4f7_checks(chip: str, pwr: tuple[str, str], cr: str, csr: str) -> list[tuple[str, str]]:
    checks = [
        ("MNMCU_RCC_BASE", "RCC_BASE"),
        ("MNMCU_RCC_CR", "RCC_BASE + offsetof(RCC_TypeDef, CR)"),
        ("MNMCU_RCC_PLLCFGR", "RCC_BASE + offsetof(RCC_TypeDef, PLLCFGR)"),
        ("MNMCU_RCC_CFGR", "RCC_BASE + offsetof(RCC_TypeDef, CFGR)"),
        ("MNMCU_RCC_APB1ENR", "RCC_BASE + offsetof(RCC_TypeDef, APB1ENR)"),
        ("MNMCU_RCC_CFGR_SW_PLL", "RCC_CFGR_SW_PLL >> RCC_CFGR_SW_Pos"),
        ("MNMCU_RCC_CFGR_SW_MASK", "RCC_CFGR_SW_Msk >> RCC_CFGR_SW_Pos"),
        ("MNMCU_PWR_BASE", "PWR_BASE"),
        ("MNMCU_PWR_CR", f"PWR_BASE + offsetof(PWR_TypeDef, {pwr[0]})"),
        ("MNMCU_PWR_CSR", f"PWR_BASE + offsetof(PWR_TypeDef, {pwr[1]})"),
        ("MNMCU_PWR_CR_VOS_POS", f"{cr}_VOS_Pos"),
        ("MNMCU_FLASH_BASE", "FLASH_R_BASE"),
        ("MNMCU_FLASH_ACR", "FLASH_R_BASE + offsetof(FLASH_TypeDef, ACR)"),
        ("MNMCU_FLASH_ACR_LATENCY_POS", "FLASH_ACR_LATENCY_Pos"),
        ("MNMCU_FLASH_ACR_PRFTEN_POS", "FLASH_ACR_PRFTEN_Pos"),
        ("MNMCU_RCC_APB1ENR_PWREN_POS", "RCC_APB1ENR_PWREN_Pos"),
    ]
    checks += [(f"MNMCU_RCC_CR_{b}_POS", f"RCC_CR_{b}_Pos") for b in
               ("HSION", "HSIRDY", "HSEON", "HSERDY", "HSEBYP", "PLLON", "PLLRDY")]  # fmt: skip
    checks += [(f"MNMCU_RCC_PLLCFGR_{f}_POS", f"RCC_PLLCFGR_{f}_Pos") for f in
               ("PLLM", "PLLN", "PLLP", "PLLSRC", "PLLQ")]  # fmt: skip
    checks += [(f"MNMCU_RCC_CFGR_{f}_POS", f"RCC_CFGR_{f}_Pos") for f in
               ("SW", "SWS", "HPRE", "PPRE1", "PPRE2")]  # fmt: skip
    if chip == "stm32f446":
        checks.append(("MNMCU_RCC_PLLCFGR_PLLR_POS", "RCC_PLLCFGR_PLLR_Pos"))
    if chip != "stm32f40x":
        checks += [
            ("MNMCU_PWR_CR_ODEN_POS", f"{cr}_ODEN_Pos"),
            ("MNMCU_PWR_CR_ODSWEN_POS", f"{cr}_ODSWEN_Pos"),
            ("MNMCU_PWR_CSR_ODRDY_POS", f"{csr}_ODRDY_Pos"),
            ("MNMCU_PWR_CSR_ODSWRDY_POS", f"{csr}_ODSWRDY_Pos"),
        ]
    if chip == "stm32f7":
        checks.append(("MNMCU_FLASH_ACR_ARTEN_POS", "FLASH_ACR_ARTEN_Pos"))
    else:
        checks += [
            ("MNMCU_FLASH_ACR_ICEN_POS", "FLASH_ACR_ICEN_Pos"),
            ("MNMCU_FLASH_ACR_DCEN_POS", "FLASH_ACR_DCEN_Pos"),
        ]
    return checks


def h7_checks() -> list[tuple[str, str]]:
    checks = [("MNMCU_RCC_BASE", "RCC_BASE"), ("MNMCU_PWR_BASE", "PWR_BASE")]
    rcc = ("CR", "CFGR", "D1CFGR", "D2CFGR", "D3CFGR", "PLLCKSELR", "PLLCFGR", "PLL1DIVR")
    checks += [(f"MNMCU_RCC_{r}", f"RCC_BASE + offsetof(RCC_TypeDef, {r})") for r in rcc]
    checks += [(f"MNMCU_PWR_{r}", f"PWR_BASE + offsetof(PWR_TypeDef, {r})") for r in
               ("CSR1", "CR3", "D3CR")]  # fmt: skip
    checks += [(f"MNMCU_RCC_CR_{b}_POS", f"RCC_CR_{b}_Pos") for b in
               ("HSION", "HSIRDY", "HSEON", "HSERDY", "HSEBYP")]  # fmt: skip
    checks += [
        ("MNMCU_RCC_CR_PLLON_POS", "RCC_CR_PLL1ON_Pos"),
        ("MNMCU_RCC_CR_PLLRDY_POS", "RCC_CR_PLL1RDY_Pos"),
        ("MNMCU_RCC_CFGR_SW_POS", "RCC_CFGR_SW_Pos"),
        ("MNMCU_RCC_CFGR_SWS_POS", "RCC_CFGR_SWS_Pos"),
        ("MNMCU_RCC_CFGR_SW_PLL", "RCC_CFGR_SW_PLL1 >> RCC_CFGR_SW_Pos"),
        ("MNMCU_RCC_CFGR_SW_MASK", "RCC_CFGR_SW_Msk >> RCC_CFGR_SW_Pos"),
        ("MNMCU_RCC_D1CFGR_HPRE_POS", "RCC_D1CFGR_HPRE_Pos"),
        ("MNMCU_RCC_D1CFGR_D1PPRE_POS", "RCC_D1CFGR_D1PPRE_Pos"),
        ("MNMCU_RCC_D1CFGR_D1CPRE_POS", "RCC_D1CFGR_D1CPRE_Pos"),
        ("MNMCU_RCC_D2CFGR_D2PPRE1_POS", "RCC_D2CFGR_D2PPRE1_Pos"),
        ("MNMCU_RCC_D2CFGR_D2PPRE2_POS", "RCC_D2CFGR_D2PPRE2_Pos"),
        ("MNMCU_RCC_D3CFGR_D3PPRE_POS", "RCC_D3CFGR_D3PPRE_Pos"),
        ("MNMCU_RCC_PLLCKSELR_PLLSRC_POS", "RCC_PLLCKSELR_PLLSRC_Pos"),
        ("MNMCU_RCC_PLLCKSELR_DIVM1_POS", "RCC_PLLCKSELR_DIVM1_Pos"),
        ("MNMCU_PWR_CSR1_ACTVOSRDY_POS", "PWR_CSR1_ACTVOSRDY_Pos"),
        ("MNMCU_PWR_D3CR_VOSRDY_POS", "PWR_D3CR_VOSRDY_Pos"),
        ("MNMCU_PWR_D3CR_VOS_POS", "PWR_D3CR_VOS_Pos"),
        ("MNMCU_FLASH_BASE", "FLASH_R_BASE"),
        ("MNMCU_FLASH_ACR", "FLASH_R_BASE + offsetof(FLASH_TypeDef, ACR)"),
        ("MNMCU_FLASH_ACR_LATENCY_POS", "FLASH_ACR_LATENCY_Pos"),
    ]
    pllcfgr = ("PLL1FRACEN", "PLL1VCOSEL", "PLL1RGE", "DIVP1EN", "DIVQ1EN", "DIVR1EN")
    checks += [(f"MNMCU_RCC_PLLCFGR_{f}_POS", f"RCC_PLLCFGR_{f}_Pos") for f in pllcfgr]
    checks += [(f"MNMCU_RCC_PLL1DIVR_{f}_POS", f"RCC_PLL1DIVR_{f}_Pos") for f in
               ("N1", "P1", "Q1", "R1")]  # fmt: skip
    checks += [(f"MNMCU_PWR_CR3_{b}_POS", f"PWR_CR3_{b}_Pos") for b in
               ("BYPASS", "LDOEN", "SCUEN")]  # fmt: skip
    return checks


@pytest.mark.parametrize("chip", sorted(CHIPS))
def test_register_map_matches_st_headers(chip: str, tmp_path: Path) -> None:
    root = os.environ.get(ENV)
    if not root:
        pytest.skip(
            f"set {ENV} to a folder holding ST's cmsis_device_f4, cmsis_device_f7 and "
            "cmsis_device_h7 repositories and ARM's CMSIS_5 (CMSIS/Core/Include)"
        )
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed: apt-get install gcc-arm-none-eabi")
    device, folder, header, cpu, pwr, cr, csr = CHIPS[chip]
    checks = h7_checks() if chip == "stm32h7" else f4f7_checks(chip, pwr, cr, csr)
    lines = [
        "#include <stddef.h>",
        f'#include "{header}"',
        f"#define MNMCU_CLOCK_CHIP_{chip.upper()} 1",
        '#include "mnmcu_stm32_clock_regs.h"',
    ]
    lines += [f'_Static_assert(({a}) == ({b}), "{a} != {b}");' for a, b in checks]
    source = tmp_path / "check.c"
    source.write_text("\n".join(lines) + "\n")
    base = Path(root)
    command = [
        gcc, f"-mcpu={cpu}", "-mthumb", "-std=c11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
        f"-D{device}", f"-I{CLOCK_DIR}", f"-isystem{base / folder / 'Include'}",
        f"-isystem{base / 'CMSIS_5' / 'CMSIS' / 'Core' / 'Include'}", str(source),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(checks) >= 25
