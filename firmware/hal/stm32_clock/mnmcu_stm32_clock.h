/*
 * mnmcu_stm32_clock.h - the core clock of STM32 boards, at register level.
 *
 * mnmcu_stm32_clock_setup() brings the chip from its reset clock (the
 * internal HSI oscillator) to the board's planned frequency: the external
 * clock (HSE crystal, or the ST-LINK's 8 MHz MCO in bypass mode), the main
 * PLL, voltage scaling and over-drive where the frequency needs them, flash
 * wait states and bus prescalers. The plan comes from the board data
 * (boards/<id>.toml [clock]) through the generated mnmcu_clock_config.h.
 *
 * Every wait is bounded (MNMCU_CLOCK_WAIT_POLLS register reads, at least
 * 100 ms at the reset clock). When a step is never confirmed (no crystal,
 * the ST-LINK's MCO not wired, a simulator that does not model the RCC) the
 * chip is put back on the HSI at its reset frequency with every bus
 * undivided, and the result says which step failed: the firmware reports it
 * in its boot line (clock=hsi_fallback:<step>).
 *
 * Used by the stm32cube and the stm32_baremetal HALs; needs no ST header.
 */
#ifndef MNMCU_STM32_CLOCK_H
#define MNMCU_STM32_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How the clock setup ended. */
typedef enum {
    MNMCU_CLOCK_PLL = 0,            /**< running from the PLL at the planned frequency */
    MNMCU_CLOCK_FAIL_SUPPLY = 1,    /**< H7: power supply configuration locked or not ready */
    MNMCU_CLOCK_FAIL_VOLTAGE = 2,   /**< H7: voltage scaling never ready */
    MNMCU_CLOCK_FAIL_HSE = 3,       /**< the external clock never became ready */
    MNMCU_CLOCK_FAIL_PLL = 4,       /**< the PLL never locked */
    MNMCU_CLOCK_FAIL_OVERDRIVE = 5, /**< over-drive never ready */
    MNMCU_CLOCK_FAIL_FLASH = 6,     /**< the flash did not take the wait states */
    MNMCU_CLOCK_FAIL_SWITCH = 7     /**< the switch to the PLL was never confirmed */
} mnmcu_clock_status_t;

/** The clocks after mnmcu_stm32_clock_setup(). */
typedef struct {
    mnmcu_clock_status_t status; /**< MNMCU_CLOCK_PLL, or the step that failed */
    uint32_t sysclk_hz;          /**< system clock */
    uint32_t core_hz;            /**< CPU clock (SYSCLK / D1CPRE on the H7) */
    uint32_t hclk_hz;            /**< AHB clock */
    uint32_t pclk1_hz;           /**< APB1 clock */
    uint32_t pclk2_hz;           /**< APB2 clock */
} mnmcu_clock_t;

/**
 * Set up the board's clock; returns the same as clock->status.
 * @param[out] clock the clocks actually running afterwards (never NULL)
 */
mnmcu_clock_status_t mnmcu_stm32_clock_setup(mnmcu_clock_t *clock);

/**
 * The outcome for the boot line: "hse_pll", or "hsi_fallback:<step>" with
 * step one of supply, voltage, hse, pll, overdrive, flash, switch.
 */
const char *mnmcu_stm32_clock_source(mnmcu_clock_status_t status);

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_STM32_CLOCK_H */
