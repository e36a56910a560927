/*
 * The STM32 clock setup at register level (see mnmcu_stm32_clock.h).
 *
 * The order of the steps follows the reference manuals' procedures, and
 * ST's HAL (HAL_RCC_OscConfig, HAL_PWREx_EnableOverDrive,
 * HAL_PWREx_ConfigSupply, HAL_RCC_ClockConfig) does the same:
 *   F4/F7  power interface clock on; voltage scale 1 (RM0090 5.4.1,
 *          RM0390 5.4.1, RM0385 4.4.1: takes effect once the PLL runs);
 *          HSE on (bypass first for an external clock), wait HSERDY;
 *          PLL source, M, N, P, Q (and R on the F446) while the PLL is off; PLL on,
 *          wait PLLRDY; over-drive on the F446 above 168 MHz and on the F7
 *          above 180 MHz (ODEN, wait ODRDY, ODSWEN, wait ODSWRDY: RM0390
 *          5.1.4, RM0385 4.1.4); flash wait states, checked by reading them
 *          back (RM0090 3.5.1); AHB and APB prescalers; switch to the PLL,
 *          wait until SWS says so.
 *   H7     LDO supply (PWR_CR3, writable once after reset), wait ACTVOSRDY
 *          (RM0433 6.8.4); voltage scale 1, wait VOSRDY; HSE as above; PLL1
 *          source and DIVM1, DIVN1/P1/Q1/R1, input range and wide VCO,
 *          outputs enabled; PLL1 on, wait PLL1RDY; flash latency (read back);
 *          D1/D2/D3 prescalers; switch to PLL1.
 * A step that is never confirmed undoes what came before it (back to the
 * HSI, every prescaler /1, PLL and HSE off) and is reported.
 *
 * MNMCU_STM32_CLOCK_SIMULATED routes every register access through
 * mnmcu_stm32_sim_read()/mnmcu_stm32_sim_write(), for a test against a
 * simulated RCC on the host.
 */
#include "mnmcu_stm32_clock.h"

#include <stdint.h>

#include "mnmcu_clock_config.h"
#include "mnmcu_stm32_clock_regs.h"

#ifndef MNMCU_CLOCK_HSI_HZ
#error "mnmcu_clock_config.h does not define MNMCU_CLOCK_HSI_HZ"
#endif

/*
 * Register reads a wait may take: each poll is a load, a test and a branch,
 * at least 4 cycles, so HSI/40 polls last at least 100 ms at the reset clock
 * (the HAL's HSE_STARTUP_TIMEOUT).
 */
#ifndef MNMCU_CLOCK_WAIT_POLLS
#define MNMCU_CLOCK_WAIT_POLLS ((uint32_t)MNMCU_CLOCK_HSI_HZ / 40u)
#endif

#define BIT(pos) (1u << (pos))
#define FIELD(value, pos) ((uint32_t)(value) << (pos))

#if defined(MNMCU_STM32_CLOCK_SIMULATED)
uint32_t mnmcu_stm32_sim_read(uint32_t address);
void mnmcu_stm32_sim_write(uint32_t address, uint32_t value);

static uint32_t reg_read(uint32_t address)
{
    return mnmcu_stm32_sim_read(address);
}

static void reg_write(uint32_t address, uint32_t value)
{
    mnmcu_stm32_sim_write(address, value);
}
#else
static uint32_t reg_read(uint32_t address)
{
    return *(volatile uint32_t *)(uintptr_t)address;
}

static void reg_write(uint32_t address, uint32_t value)
{
    *(volatile uint32_t *)(uintptr_t)address = value;
}
#endif

static void reg_modify(uint32_t address, uint32_t clear, uint32_t set)
{
    reg_write(address, (reg_read(address) & ~clear) | set);
}

/* Wait until (register & mask) == value; 1 when it did, 0 after the bound. */
static int wait_for(uint32_t address, uint32_t mask, uint32_t value)
{
    for (uint32_t poll = 0u; poll < MNMCU_CLOCK_WAIT_POLLS; poll++) {
        if ((reg_read(address) & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* The AHB prescaler field (HPRE) for a divider: 0 = /1, 8.. = /2, /4, ... /512. */
static uint32_t hpre_code(uint32_t divider)
{
    static const uint16_t dividers[] = {2u, 4u, 8u, 16u, 64u, 128u, 256u, 512u};
    for (uint32_t i = 0u; i < sizeof dividers / sizeof dividers[0]; i++) {
        if (dividers[i] == divider) {
            return 8u + i;
        }
    }
    return 0u;
}

/* An APB prescaler field (PPRE) for a divider: 0 = /1, 4.. = /2, /4, /8, /16. */
static uint32_t ppre_code(uint32_t divider)
{
    static const uint8_t dividers[] = {2u, 4u, 8u, 16u};
    for (uint32_t i = 0u; i < sizeof dividers / sizeof dividers[0]; i++) {
        if (dividers[i] == divider) {
            return 4u + i;
        }
    }
    return 0u;
}

static void hse_on(void)
{
#if MNMCU_CLOCK_HSE_BYPASS
    /* An external clock (the ST-LINK's MCO): bypass the oscillator before HSEON. */
    reg_modify(MNMCU_RCC_CR, 0u, BIT(MNMCU_RCC_CR_HSEBYP_POS));
#endif
    reg_modify(MNMCU_RCC_CR, 0u, BIT(MNMCU_RCC_CR_HSEON_POS));
}

/* Back to the reset clock: HSI selected, prescalers /1, PLL and HSE off. */
static void back_to_hsi(void)
{
    reg_modify(MNMCU_RCC_CR, 0u, BIT(MNMCU_RCC_CR_HSION_POS));
    (void)wait_for(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_HSIRDY_POS), BIT(MNMCU_RCC_CR_HSIRDY_POS));
    reg_modify(MNMCU_RCC_CFGR, FIELD(MNMCU_RCC_CFGR_SW_MASK, MNMCU_RCC_CFGR_SW_POS), 0u);
    (void)wait_for(MNMCU_RCC_CFGR, FIELD(MNMCU_RCC_CFGR_SW_MASK, MNMCU_RCC_CFGR_SWS_POS), 0u);
#if defined(MNMCU_CLOCK_FAMILY_F4F7)
    reg_modify(MNMCU_RCC_CFGR,
               FIELD(0xFu, MNMCU_RCC_CFGR_HPRE_POS) | FIELD(7u, MNMCU_RCC_CFGR_PPRE1_POS) |
                   FIELD(7u, MNMCU_RCC_CFGR_PPRE2_POS),
               0u);
#if MNMCU_CLOCK_OVERDRIVE
    reg_modify(MNMCU_PWR_CR, BIT(MNMCU_PWR_CR_ODEN_POS) | BIT(MNMCU_PWR_CR_ODSWEN_POS), 0u);
#endif
#else
    reg_modify(MNMCU_RCC_D1CFGR,
               FIELD(0xFu, MNMCU_RCC_D1CFGR_HPRE_POS) | FIELD(7u, MNMCU_RCC_D1CFGR_D1PPRE_POS) |
                   FIELD(0xFu, MNMCU_RCC_D1CFGR_D1CPRE_POS),
               0u);
    reg_modify(MNMCU_RCC_D2CFGR,
               FIELD(7u, MNMCU_RCC_D2CFGR_D2PPRE1_POS) | FIELD(7u, MNMCU_RCC_D2CFGR_D2PPRE2_POS),
               0u);
    reg_modify(MNMCU_RCC_D3CFGR, FIELD(7u, MNMCU_RCC_D3CFGR_D3PPRE_POS), 0u);
#endif
    reg_modify(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_PLLON_POS), 0u);
    reg_modify(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_HSEON_POS), 0u);
    reg_modify(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_HSEBYP_POS), 0u);
}

static mnmcu_clock_status_t fail(mnmcu_clock_t *clock, mnmcu_clock_status_t status)
{
    back_to_hsi();
    clock->status = status;
    clock->sysclk_hz = (uint32_t)MNMCU_CLOCK_HSI_HZ;
    clock->core_hz = clock->sysclk_hz;
    clock->hclk_hz = clock->sysclk_hz;
    clock->pclk1_hz = clock->sysclk_hz;
    clock->pclk2_hz = clock->sysclk_hz;
    return status;
}

/* Flash wait states (and the accelerators), confirmed by reading them back. */
static int set_flash_latency(void)
{
    uint32_t set = FIELD(MNMCU_CLOCK_FLASH_LATENCY, MNMCU_FLASH_ACR_LATENCY_POS);
#if defined(MNMCU_CLOCK_CHIP_STM32F7)
    set |= BIT(MNMCU_FLASH_ACR_PRFTEN_POS) | BIT(MNMCU_FLASH_ACR_ARTEN_POS);
#elif defined(MNMCU_CLOCK_FAMILY_F4F7)
    /* Prefetch as ST's HAL_Init does (PREFETCH_ENABLE in the HAL config), caches on. */
    set |= BIT(MNMCU_FLASH_ACR_PRFTEN_POS) | BIT(MNMCU_FLASH_ACR_ICEN_POS) |
           BIT(MNMCU_FLASH_ACR_DCEN_POS);
#endif
    reg_modify(MNMCU_FLASH_ACR, FIELD(0xFu, MNMCU_FLASH_ACR_LATENCY_POS), set);
    return wait_for(MNMCU_FLASH_ACR, FIELD(0xFu, MNMCU_FLASH_ACR_LATENCY_POS),
                    FIELD(MNMCU_CLOCK_FLASH_LATENCY, MNMCU_FLASH_ACR_LATENCY_POS));
}

static int switch_to_pll(void)
{
    reg_modify(MNMCU_RCC_CFGR, FIELD(MNMCU_RCC_CFGR_SW_MASK, MNMCU_RCC_CFGR_SW_POS),
               FIELD(MNMCU_RCC_CFGR_SW_PLL, MNMCU_RCC_CFGR_SW_POS));
    return wait_for(MNMCU_RCC_CFGR, FIELD(MNMCU_RCC_CFGR_SW_MASK, MNMCU_RCC_CFGR_SWS_POS),
                    FIELD(MNMCU_RCC_CFGR_SW_PLL, MNMCU_RCC_CFGR_SWS_POS));
}

#if defined(MNMCU_CLOCK_FAMILY_F4F7)
static mnmcu_clock_status_t setup(mnmcu_clock_t *clock)
{
    reg_modify(MNMCU_RCC_APB1ENR, 0u, BIT(MNMCU_RCC_APB1ENR_PWREN_POS));
    (void)reg_read(MNMCU_RCC_APB1ENR); /* the read-back lets the enable take effect */
#if defined(MNMCU_CLOCK_CHIP_STM32F40X)
    reg_modify(MNMCU_PWR_CR, 0u, FIELD(1u, MNMCU_PWR_CR_VOS_POS));
#else
    reg_modify(MNMCU_PWR_CR, FIELD(3u, MNMCU_PWR_CR_VOS_POS), FIELD(3u, MNMCU_PWR_CR_VOS_POS));
#endif

    hse_on();
    if (!wait_for(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_HSERDY_POS), BIT(MNMCU_RCC_CR_HSERDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_HSE);
    }

    uint32_t fields = FIELD(0x3Fu, MNMCU_RCC_PLLCFGR_PLLM_POS) |
                      FIELD(0x1FFu, MNMCU_RCC_PLLCFGR_PLLN_POS) |
                      FIELD(3u, MNMCU_RCC_PLLCFGR_PLLP_POS) | BIT(MNMCU_RCC_PLLCFGR_PLLSRC_POS) |
                      FIELD(0xFu, MNMCU_RCC_PLLCFGR_PLLQ_POS);
    uint32_t values = FIELD(MNMCU_CLOCK_PLL_M, MNMCU_RCC_PLLCFGR_PLLM_POS) |
                      FIELD(MNMCU_CLOCK_PLL_N, MNMCU_RCC_PLLCFGR_PLLN_POS) |
                      FIELD(MNMCU_CLOCK_PLL_P / 2u - 1u, MNMCU_RCC_PLLCFGR_PLLP_POS) |
                      BIT(MNMCU_RCC_PLLCFGR_PLLSRC_POS) |
                      FIELD(MNMCU_CLOCK_PLL_Q, MNMCU_RCC_PLLCFGR_PLLQ_POS);
#if defined(MNMCU_CLOCK_CHIP_STM32F446)
    fields |= FIELD(7u, MNMCU_RCC_PLLCFGR_PLLR_POS);
    values |= FIELD(MNMCU_CLOCK_PLL_R, MNMCU_RCC_PLLCFGR_PLLR_POS);
#endif
    reg_modify(MNMCU_RCC_PLLCFGR, fields, values);
    reg_modify(MNMCU_RCC_CR, 0u, BIT(MNMCU_RCC_CR_PLLON_POS));
    if (!wait_for(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_PLLRDY_POS), BIT(MNMCU_RCC_CR_PLLRDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_PLL);
    }

#if MNMCU_CLOCK_OVERDRIVE
    reg_modify(MNMCU_PWR_CR, 0u, BIT(MNMCU_PWR_CR_ODEN_POS));
    if (!wait_for(MNMCU_PWR_CSR, BIT(MNMCU_PWR_CSR_ODRDY_POS), BIT(MNMCU_PWR_CSR_ODRDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_OVERDRIVE);
    }
    reg_modify(MNMCU_PWR_CR, 0u, BIT(MNMCU_PWR_CR_ODSWEN_POS));
    if (!wait_for(MNMCU_PWR_CSR, BIT(MNMCU_PWR_CSR_ODSWRDY_POS),
                  BIT(MNMCU_PWR_CSR_ODSWRDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_OVERDRIVE);
    }
#endif

    if (!set_flash_latency()) {
        return fail(clock, MNMCU_CLOCK_FAIL_FLASH);
    }
    reg_modify(MNMCU_RCC_CFGR,
               FIELD(0xFu, MNMCU_RCC_CFGR_HPRE_POS) | FIELD(7u, MNMCU_RCC_CFGR_PPRE1_POS) |
                   FIELD(7u, MNMCU_RCC_CFGR_PPRE2_POS),
               FIELD(hpre_code(MNMCU_CLOCK_AHB_DIV), MNMCU_RCC_CFGR_HPRE_POS) |
                   FIELD(ppre_code(MNMCU_CLOCK_APB1_DIV), MNMCU_RCC_CFGR_PPRE1_POS) |
                   FIELD(ppre_code(MNMCU_CLOCK_APB2_DIV), MNMCU_RCC_CFGR_PPRE2_POS));
    if (!switch_to_pll()) {
        return fail(clock, MNMCU_CLOCK_FAIL_SWITCH);
    }
    clock->core_hz = (uint32_t)MNMCU_CLOCK_SYSCLK_HZ / MNMCU_CLOCK_AHB_DIV;
    return MNMCU_CLOCK_PLL;
}
#else
/* The PLL1 input range field for the reference clock HSE / DIVM1 (RM0433 8.7.12). */
static uint32_t pll_input_range(void)
{
    const uint32_t ref_hz = (uint32_t)MNMCU_CLOCK_HSE_HZ / MNMCU_CLOCK_PLL_M;
    return ref_hz < 2000000u ? 0u : ref_hz < 4000000u ? 1u : ref_hz < 8000000u ? 2u : 3u;
}

static mnmcu_clock_status_t setup(mnmcu_clock_t *clock)
{
    const uint32_t supply = BIT(MNMCU_PWR_CR3_SCUEN_POS) | BIT(MNMCU_PWR_CR3_LDOEN_POS) |
                            BIT(MNMCU_PWR_CR3_BYPASS_POS);
    const uint32_t cr3 = reg_read(MNMCU_PWR_CR3);
    if (cr3 & BIT(MNMCU_PWR_CR3_SCUEN_POS)) {
        /* The first write locks the supply configuration until the next reset. */
        reg_modify(MNMCU_PWR_CR3, supply, BIT(MNMCU_PWR_CR3_LDOEN_POS));
    } else if ((cr3 & supply) != BIT(MNMCU_PWR_CR3_LDOEN_POS)) {
        return fail(clock, MNMCU_CLOCK_FAIL_SUPPLY);
    }
    if (!wait_for(MNMCU_PWR_CSR1, BIT(MNMCU_PWR_CSR1_ACTVOSRDY_POS),
                  BIT(MNMCU_PWR_CSR1_ACTVOSRDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_SUPPLY);
    }
    reg_modify(MNMCU_PWR_D3CR, FIELD(3u, MNMCU_PWR_D3CR_VOS_POS), FIELD(3u, MNMCU_PWR_D3CR_VOS_POS));
    if (!wait_for(MNMCU_PWR_D3CR, BIT(MNMCU_PWR_D3CR_VOSRDY_POS), BIT(MNMCU_PWR_D3CR_VOSRDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_VOLTAGE);
    }

    hse_on();
    if (!wait_for(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_HSERDY_POS), BIT(MNMCU_RCC_CR_HSERDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_HSE);
    }

    reg_modify(MNMCU_RCC_PLLCKSELR,
               FIELD(3u, MNMCU_RCC_PLLCKSELR_PLLSRC_POS) | FIELD(0x3Fu, MNMCU_RCC_PLLCKSELR_DIVM1_POS),
               FIELD(2u, MNMCU_RCC_PLLCKSELR_PLLSRC_POS) |
                   FIELD(MNMCU_CLOCK_PLL_M, MNMCU_RCC_PLLCKSELR_DIVM1_POS));
    reg_write(MNMCU_RCC_PLL1DIVR, FIELD(MNMCU_CLOCK_PLL_N - 1u, MNMCU_RCC_PLL1DIVR_N1_POS) |
                                      FIELD(MNMCU_CLOCK_PLL_P - 1u, MNMCU_RCC_PLL1DIVR_P1_POS) |
                                      FIELD(MNMCU_CLOCK_PLL_Q - 1u, MNMCU_RCC_PLL1DIVR_Q1_POS) |
                                      FIELD(MNMCU_CLOCK_PLL_R - 1u, MNMCU_RCC_PLL1DIVR_R1_POS));
    reg_modify(MNMCU_RCC_PLLCFGR,
               BIT(MNMCU_RCC_PLLCFGR_PLL1FRACEN_POS) | BIT(MNMCU_RCC_PLLCFGR_PLL1VCOSEL_POS) |
                   FIELD(3u, MNMCU_RCC_PLLCFGR_PLL1RGE_POS),
               FIELD(pll_input_range(), MNMCU_RCC_PLLCFGR_PLL1RGE_POS) |
                   BIT(MNMCU_RCC_PLLCFGR_DIVP1EN_POS) | BIT(MNMCU_RCC_PLLCFGR_DIVQ1EN_POS) |
                   BIT(MNMCU_RCC_PLLCFGR_DIVR1EN_POS));
    reg_modify(MNMCU_RCC_CR, 0u, BIT(MNMCU_RCC_CR_PLLON_POS));
    if (!wait_for(MNMCU_RCC_CR, BIT(MNMCU_RCC_CR_PLLRDY_POS), BIT(MNMCU_RCC_CR_PLLRDY_POS))) {
        return fail(clock, MNMCU_CLOCK_FAIL_PLL);
    }

    if (!set_flash_latency()) {
        return fail(clock, MNMCU_CLOCK_FAIL_FLASH);
    }
    reg_modify(MNMCU_RCC_D1CFGR,
               FIELD(0xFu, MNMCU_RCC_D1CFGR_HPRE_POS) | FIELD(7u, MNMCU_RCC_D1CFGR_D1PPRE_POS) |
                   FIELD(0xFu, MNMCU_RCC_D1CFGR_D1CPRE_POS),
               FIELD(hpre_code(MNMCU_CLOCK_AHB_DIV), MNMCU_RCC_D1CFGR_HPRE_POS) |
                   FIELD(ppre_code(MNMCU_CLOCK_APB3_DIV), MNMCU_RCC_D1CFGR_D1PPRE_POS));
    reg_modify(MNMCU_RCC_D2CFGR,
               FIELD(7u, MNMCU_RCC_D2CFGR_D2PPRE1_POS) | FIELD(7u, MNMCU_RCC_D2CFGR_D2PPRE2_POS),
               FIELD(ppre_code(MNMCU_CLOCK_APB1_DIV), MNMCU_RCC_D2CFGR_D2PPRE1_POS) |
                   FIELD(ppre_code(MNMCU_CLOCK_APB2_DIV), MNMCU_RCC_D2CFGR_D2PPRE2_POS));
    reg_modify(MNMCU_RCC_D3CFGR, FIELD(7u, MNMCU_RCC_D3CFGR_D3PPRE_POS),
               FIELD(ppre_code(MNMCU_CLOCK_APB4_DIV), MNMCU_RCC_D3CFGR_D3PPRE_POS));
    if (!switch_to_pll()) {
        return fail(clock, MNMCU_CLOCK_FAIL_SWITCH);
    }
    /* D1CPRE stays /1: the core runs at SYSCLK, the AXI and AHB buses at SYSCLK / HPRE. */
    clock->core_hz = (uint32_t)MNMCU_CLOCK_SYSCLK_HZ;
    return MNMCU_CLOCK_PLL;
}
#endif

mnmcu_clock_status_t mnmcu_stm32_clock_setup(mnmcu_clock_t *clock)
{
    /* A boot loader may have left the PLL running: reconfigure it from the HSI. */
    if ((reg_read(MNMCU_RCC_CFGR) & FIELD(MNMCU_RCC_CFGR_SW_MASK, MNMCU_RCC_CFGR_SWS_POS)) != 0u) {
        back_to_hsi();
    }
    const mnmcu_clock_status_t status = setup(clock);
    if (status != MNMCU_CLOCK_PLL) {
        return status;
    }
    clock->status = MNMCU_CLOCK_PLL;
    clock->sysclk_hz = (uint32_t)MNMCU_CLOCK_SYSCLK_HZ;
    clock->hclk_hz = (uint32_t)MNMCU_CLOCK_SYSCLK_HZ / MNMCU_CLOCK_AHB_DIV;
    clock->pclk1_hz = clock->hclk_hz / MNMCU_CLOCK_APB1_DIV;
    clock->pclk2_hz = clock->hclk_hz / MNMCU_CLOCK_APB2_DIV;
    return status;
}

const char *mnmcu_stm32_clock_source(mnmcu_clock_status_t status)
{
    switch (status) {
    case MNMCU_CLOCK_PLL:
        return "hse_pll";
    case MNMCU_CLOCK_FAIL_SUPPLY:
        return "hsi_fallback:supply";
    case MNMCU_CLOCK_FAIL_VOLTAGE:
        return "hsi_fallback:voltage";
    case MNMCU_CLOCK_FAIL_HSE:
        return "hsi_fallback:hse";
    case MNMCU_CLOCK_FAIL_PLL:
        return "hsi_fallback:pll";
    case MNMCU_CLOCK_FAIL_OVERDRIVE:
        return "hsi_fallback:overdrive";
    case MNMCU_CLOCK_FAIL_FLASH:
        return "hsi_fallback:flash";
    case MNMCU_CLOCK_FAIL_SWITCH:
        return "hsi_fallback:switch";
    }
    return "hsi_fallback";
}
