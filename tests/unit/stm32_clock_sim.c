/*
 * A simulated STM32 RCC, PWR and flash interface for the clock setup
 * (firmware/hal/stm32_clock/mnmcu_stm32_clock.c built with
 * -DMNMCU_STM32_CLOCK_SIMULATED and a board's mnmcu_clock_config.h).
 *
 * Usage: stm32_clock_sim MODE, MODE one of
 *   ready        every oscillator, the PLL, over-drive and the regulator
 *                become ready a few reads after they are asked for
 *   unmodelled   reads give 0 and writes are lost (QEMU's netduinoplus2)
 *   no_hse       the external clock never becomes ready
 *   no_pll       the PLL never locks
 *
 * The model enforces the reference manuals' rules that matter here and
 * counts each breach as a violation: the PLL or HSE bypass reconfigured
 * while running, a switch to the PLL before it locked, before enough flash
 * wait states, with a bus above its limit, above 168/180 MHz without
 * over-drive (F446/F7), without voltage scale 1 and a configured supply
 * (H7). It prints one "key=value" line for the test to read.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mnmcu_clock_config.h"
#include "mnmcu_stm32_clock.h"
#include "mnmcu_stm32_clock_regs.h"

#define READY_AFTER 5u /* reads until a requested ready flag rises */
#define SLOTS 32

static enum { READY, UNMODELLED, NO_HSE, NO_PLL } s_mode;
static struct {
    uint32_t address;
    uint32_t value;
} s_regs[SLOTS];
static unsigned s_reg_count;
static unsigned long s_reads;
static unsigned long s_writes;
static unsigned s_violations;
static char s_first_violation[160];
static uint32_t s_hse_countdown;
static uint32_t s_pll_countdown;

static uint32_t *reg(uint32_t address)
{
    for (unsigned i = 0; i < s_reg_count; i++) {
        if (s_regs[i].address == address) {
            return &s_regs[i].value;
        }
    }
    s_regs[s_reg_count].address = address;
    s_regs[s_reg_count].value = 0u;
    return &s_regs[s_reg_count++].value;
}

static void violation(const char *what)
{
    if (s_violations++ == 0u) {
        snprintf(s_first_violation, sizeof s_first_violation, "%s", what);
    }
}

static uint32_t bits(uint32_t value, unsigned pos, unsigned width)
{
    return (value >> pos) & ((1u << width) - 1u);
}

/* The PLL output from the registers, decoded here from the manuals' layouts. */
static uint64_t pll_hz(void)
{
#if defined(MNMCU_CLOCK_FAMILY_F4F7)
    const uint32_t cfg = *reg(MNMCU_RCC_PLLCFGR);
    const uint32_t m = bits(cfg, 0, 6), n = bits(cfg, 6, 9), p = 2u * (bits(cfg, 16, 2) + 1u);
    const uint64_t in = bits(cfg, 22, 1) ? MNMCU_CLOCK_HSE_HZ : MNMCU_CLOCK_HSI_HZ;
#else
    const uint32_t sel = *reg(MNMCU_RCC_PLLCKSELR), div = *reg(MNMCU_RCC_PLL1DIVR);
    const uint32_t m = bits(sel, 4, 6), n = bits(div, 0, 9) + 1u, p = bits(div, 9, 7) + 1u;
    const uint64_t in = bits(sel, 0, 2) == 2u ? MNMCU_CLOCK_HSE_HZ : MNMCU_CLOCK_HSI_HZ;
#endif
    return m == 0u ? 0u : in * n / m / p;
}

static uint32_t divider(uint32_t code, int ahb)
{
    if (ahb) {
        static const uint32_t table[8] = {2, 4, 8, 16, 64, 128, 256, 512};
        return code < 8u ? 1u : table[code - 8u];
    }
    return code < 4u ? 1u : 1u << (code - 3u);
}

/* Rules for switching SYSCLK to the PLL. */
static void check_switch(void)
{
    const uint32_t cr = *reg(MNMCU_RCC_CR);
    if (!bits(cr, MNMCU_RCC_CR_PLLRDY_POS, 1)) {
        violation("switch to the PLL before it locked");
    }
    const uint64_t sys = pll_hz();
    const uint32_t latency = bits(*reg(MNMCU_FLASH_ACR), 0, 4);
#if defined(MNMCU_CLOCK_FAMILY_F4F7)
    const uint32_t cfgr = *reg(MNMCU_RCC_CFGR);
    const uint64_t hclk = sys / divider(bits(cfgr, 4, 4), 1);
    const uint64_t apb1 = hclk / divider(bits(cfgr, 10, 3), 0);
    const uint64_t apb2 = hclk / divider(bits(cfgr, 13, 3), 0);
    /* One wait state per 30 MHz at 2.7-3.6 V (RM0090 Table 10, RM0390 Table 5, RM0385 Table 5). */
    if (latency < (hclk + 29999999u) / 30000000u - 1u) {
        violation("too few flash wait states for HCLK");
    }
#if defined(MNMCU_CLOCK_CHIP_STM32F40X)
    const uint64_t apb1_max = 42000000u, apb2_max = 84000000u, od_above = 168000000u;
    if (!bits(*reg(MNMCU_PWR_CR), 14, 1)) {
        violation("168 MHz without voltage scale 1");
    }
#elif defined(MNMCU_CLOCK_CHIP_STM32F446)
    const uint64_t apb1_max = 45000000u, apb2_max = 90000000u, od_above = 168000000u;
#else
    const uint64_t apb1_max = 54000000u, apb2_max = 108000000u, od_above = 180000000u;
#endif
    if (sys > od_above && !bits(*reg(MNMCU_PWR_CSR), MNMCU_PWR_CSR_ODSWRDY_POS, 1)) {
        violation("above the no-over-drive limit without over-drive");
    }
#else
    const uint64_t hclk = sys / divider(bits(*reg(MNMCU_RCC_D1CFGR), 0, 4), 1);
    const uint64_t apb1 = hclk / divider(bits(*reg(MNMCU_RCC_D2CFGR), 4, 3), 0);
    const uint64_t apb2 = hclk / divider(bits(*reg(MNMCU_RCC_D2CFGR), 8, 3), 0);
    const uint64_t apb1_max = 100000000u, apb2_max = 100000000u;
    if (hclk > 200000000u) {
        violation("AXI/AHB above 200 MHz");
    }
    if (latency < 2u) {
        violation("too few flash wait states for a 200 MHz AXI clock");
    }
    if (bits(*reg(MNMCU_PWR_D3CR), MNMCU_PWR_D3CR_VOS_POS, 2) != 3u ||
        !bits(*reg(MNMCU_PWR_D3CR), MNMCU_PWR_D3CR_VOSRDY_POS, 1)) {
        violation("400 MHz without voltage scale 1 ready");
    }
    if (bits(*reg(MNMCU_PWR_CR3), MNMCU_PWR_CR3_SCUEN_POS, 1)) {
        violation("supply configuration never written");
    }
#endif
    if (apb1 > apb1_max || apb2 > apb2_max) {
        violation("an APB bus above its limit");
    }
}

uint32_t mnmcu_stm32_sim_read(uint32_t address);
void mnmcu_stm32_sim_write(uint32_t address, uint32_t value);

uint32_t mnmcu_stm32_sim_read(uint32_t address)
{
    s_reads++;
    if (s_mode == UNMODELLED) {
        return 0u;
    }
    uint32_t *cr = reg(MNMCU_RCC_CR);
    if (address == MNMCU_RCC_CR) {
        if (bits(*cr, MNMCU_RCC_CR_HSEON_POS, 1) && s_mode != NO_HSE && s_hse_countdown > 0u &&
            --s_hse_countdown == 0u) {
            *cr |= 1u << MNMCU_RCC_CR_HSERDY_POS;
        }
        if (bits(*cr, MNMCU_RCC_CR_PLLON_POS, 1) && s_mode == READY && s_pll_countdown > 0u &&
            --s_pll_countdown == 0u) {
            *cr |= 1u << MNMCU_RCC_CR_PLLRDY_POS;
        }
    }
    return *reg(address);
}

void mnmcu_stm32_sim_write(uint32_t address, uint32_t value)
{
    s_writes++;
    if (s_mode == UNMODELLED) {
        return;
    }
    uint32_t *slot = reg(address);
    const uint32_t old = *slot;
    if (address == MNMCU_RCC_CR) {
        const uint32_t ready = (1u << MNMCU_RCC_CR_HSERDY_POS) | (1u << MNMCU_RCC_CR_PLLRDY_POS) |
                               (1u << MNMCU_RCC_CR_HSIRDY_POS);
        value = (value & ~ready) | (old & ready); /* ready flags are read-only */
        if (bits(old, MNMCU_RCC_CR_HSEON_POS, 1) &&
            bits(old ^ value, MNMCU_RCC_CR_HSEBYP_POS, 1)) {
            violation("HSE bypass changed while the HSE is on");
        }
        if (!bits(old, MNMCU_RCC_CR_HSEON_POS, 1) && bits(value, MNMCU_RCC_CR_HSEON_POS, 1)) {
            s_hse_countdown = READY_AFTER;
        }
        if (!bits(value, MNMCU_RCC_CR_HSEON_POS, 1)) {
            value &= ~(1u << MNMCU_RCC_CR_HSERDY_POS);
        }
        if (!bits(old, MNMCU_RCC_CR_PLLON_POS, 1) && bits(value, MNMCU_RCC_CR_PLLON_POS, 1)) {
            if (!bits(value, MNMCU_RCC_CR_HSERDY_POS, 1)) {
                violation("PLL on before its HSE source is ready");
            }
            s_pll_countdown = READY_AFTER;
        }
        if (!bits(value, MNMCU_RCC_CR_PLLON_POS, 1)) {
            value &= ~(1u << MNMCU_RCC_CR_PLLRDY_POS);
        }
        *slot = value;
        return;
    }
#if defined(MNMCU_CLOCK_FAMILY_F4F7)
    if (address == MNMCU_RCC_PLLCFGR && bits(*reg(MNMCU_RCC_CR), MNMCU_RCC_CR_PLLON_POS, 1)) {
        violation("PLL reconfigured while on");
    }
    if (address == MNMCU_RCC_CFGR) {
        const uint32_t sw = bits(value, MNMCU_RCC_CFGR_SW_POS, 2);
        if (sw == MNMCU_RCC_CFGR_SW_PLL) {
            check_switch();
        }
        const uint32_t sws = sw == MNMCU_RCC_CFGR_SW_PLL &&
                                     !bits(*reg(MNMCU_RCC_CR), MNMCU_RCC_CR_PLLRDY_POS, 1)
                                 ? bits(old, MNMCU_RCC_CFGR_SWS_POS, 2)
                                 : sw;
        *slot = (value & ~(3u << MNMCU_RCC_CFGR_SWS_POS)) | (sws << MNMCU_RCC_CFGR_SWS_POS);
        return;
    }
    if (address == MNMCU_PWR_CR) {
        uint32_t *csr = reg(MNMCU_PWR_CSR);
        *csr = (*csr & ~(3u << 16)) | (bits(value, MNMCU_PWR_CR_ODEN_POS, 1) << 16) |
               ((bits(value, MNMCU_PWR_CR_ODSWEN_POS, 1) & bits(value, 16, 1)) << 17);
        if (bits(value, MNMCU_PWR_CR_ODEN_POS, 1) && !bits(*reg(MNMCU_RCC_CR), 25, 1)) {
            violation("over-drive before the PLL runs");
        }
    }
#else
    if ((address == MNMCU_RCC_PLLCKSELR || address == MNMCU_RCC_PLL1DIVR ||
         address == MNMCU_RCC_PLLCFGR) &&
        bits(*reg(MNMCU_RCC_CR), MNMCU_RCC_CR_PLLON_POS, 1)) {
        violation("PLL1 reconfigured while on");
    }
    if (address == MNMCU_RCC_CFGR) {
        const uint32_t sw = bits(value, MNMCU_RCC_CFGR_SW_POS, 3);
        if (sw == MNMCU_RCC_CFGR_SW_PLL) {
            check_switch();
        }
        *slot = (value & ~(7u << MNMCU_RCC_CFGR_SWS_POS)) | (sw << MNMCU_RCC_CFGR_SWS_POS);
        return;
    }
    if (address == MNMCU_PWR_CR3) {
        if (!bits(old, MNMCU_PWR_CR3_SCUEN_POS, 1)) {
            return; /* locked until reset */
        }
        *reg(MNMCU_PWR_CSR1) |= 1u << MNMCU_PWR_CSR1_ACTVOSRDY_POS;
        *slot = value & ~(1u << MNMCU_PWR_CR3_SCUEN_POS);
        return;
    }
    if (address == MNMCU_PWR_D3CR) {
        if (!bits(*reg(MNMCU_PWR_CSR1), MNMCU_PWR_CSR1_ACTVOSRDY_POS, 1)) {
            violation("voltage scaling before the supply is configured");
        }
        *slot = value | (1u << MNMCU_PWR_D3CR_VOSRDY_POS);
        return;
    }
#endif
    *slot = value;
}

static void reset_state(void)
{
    /* Reset values: RM0090/RM0390/RM0385 RCC_CR 0x83, PLLCFGR 0x24003010;
     * RM0433 RCC_CR 0x25 (HSI on, ready, divided by 1), PWR_CR3 0x46 (SCUEN,
     * LDOEN), D3CR VOS scale 3, FLASH_ACR 7 wait states. */
#if defined(MNMCU_CLOCK_FAMILY_F4F7)
    *reg(MNMCU_RCC_CR) = 0x00000083u;
    *reg(MNMCU_RCC_PLLCFGR) = 0x24003010u;
#else
    *reg(MNMCU_RCC_CR) = 0x00000025u;
    *reg(MNMCU_RCC_PLLCKSELR) = 0x02020200u;
    *reg(MNMCU_RCC_PLLCFGR) = 0x01FF0000u;
    *reg(MNMCU_RCC_PLL1DIVR) = 0x01010280u;
    *reg(MNMCU_PWR_CR3) = 0x00000046u;
    *reg(MNMCU_PWR_D3CR) = 0x00004000u;
    *reg(MNMCU_FLASH_ACR) = 0x00000037u;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ready|unmodelled|no_hse|no_pll\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "ready") == 0) {
        s_mode = READY;
    } else if (strcmp(argv[1], "unmodelled") == 0) {
        s_mode = UNMODELLED;
    } else if (strcmp(argv[1], "no_hse") == 0) {
        s_mode = NO_HSE;
    } else if (strcmp(argv[1], "no_pll") == 0) {
        s_mode = NO_PLL;
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    reset_state();
    mnmcu_clock_t clock;
    memset(&clock, 0xA5, sizeof clock);
    const mnmcu_clock_status_t status = mnmcu_stm32_clock_setup(&clock);
    const uint32_t cr = s_mode == UNMODELLED ? 0u : *reg(MNMCU_RCC_CR);
    const uint32_t cfgr = s_mode == UNMODELLED ? 0u : *reg(MNMCU_RCC_CFGR);
    printf("status=%d source=%s sysclk=%u core=%u hclk=%u pclk1=%u pclk2=%u", (int)status,
           mnmcu_stm32_clock_source(status), (unsigned)clock.sysclk_hz, (unsigned)clock.core_hz,
           (unsigned)clock.hclk_hz, (unsigned)clock.pclk1_hz, (unsigned)clock.pclk2_hz);
    printf(" pll_hz=%llu sws=%u hseon=%u pllon=%u latency=%u", (unsigned long long)pll_hz(),
           (unsigned)bits(cfgr, MNMCU_RCC_CFGR_SWS_POS, 3),
           (unsigned)bits(cr, MNMCU_RCC_CR_HSEON_POS, 1),
           (unsigned)bits(cr, MNMCU_RCC_CR_PLLON_POS, 1),
           (unsigned)bits(*reg(MNMCU_FLASH_ACR), 0, 4));
#if defined(MNMCU_CLOCK_FAMILY_F4F7)
    printf(" pllcfgr=0x%08x", (unsigned)*reg(MNMCU_RCC_PLLCFGR));
#else
    printf(" pllckselr=0x%08x pll1divr=0x%08x", (unsigned)*reg(MNMCU_RCC_PLLCKSELR),
           (unsigned)*reg(MNMCU_RCC_PLL1DIVR));
#endif
    printf(" reads=%lu writes=%lu violations=%u first_violation=\"%s\"\n", s_reads, s_writes,
           s_violations, s_first_violation);
    return 0;
}
