/*
 * A 64-bit tick count from SysTick on the processor clock, for the HALs of
 * cores that have no usable cycle counter (QEMU models none). SysTick counts
 * down from 2^24 - 1 with an interrupt per wrap that extends it to 64 bits;
 * a wrap whose interrupt is still pending, and the counter's 0 state at the
 * end of a period, are accounted for. Include it in exactly one HAL source:
 * it defines SysTick_Handler.
 */
#ifndef MNMCU_SYSTICK_H
#define MNMCU_SYSTICK_H

#include <stdint.h>

#define MNMCU_SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define MNMCU_SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define MNMCU_SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define MNMCU_SYST_CSR_ENABLE 0x1u
#define MNMCU_SYST_CSR_TICKINT 0x2u
#define MNMCU_SYST_CSR_CLKSOURCE_CPU 0x4u
#define MNMCU_SYST_RELOAD 0x00FFFFFFu
#define MNMCU_SYST_WRAP_SHIFT 24u
#define MNMCU_SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define MNMCU_SCB_ICSR_PENDSTSET (1u << 26)

static volatile uint32_t s_mnmcu_systick_wraps;

void SysTick_Handler(void);

void SysTick_Handler(void)
{
    s_mnmcu_systick_wraps = s_mnmcu_systick_wraps + 1u;
}

/* Start counting from 0 on the processor clock. */
static inline void mnmcu_systick_start(void)
{
    s_mnmcu_systick_wraps = 0u;
    MNMCU_SYST_CSR = 0u;
    MNMCU_SYST_RVR = MNMCU_SYST_RELOAD;
    MNMCU_SYST_CVR = 0u; /* any write clears the counter: it reloads on the next tick */
    MNMCU_SYST_CSR = MNMCU_SYST_CSR_CLKSOURCE_CPU | MNMCU_SYST_CSR_TICKINT | MNMCU_SYST_CSR_ENABLE;
    while ((MNMCU_SYST_CVR & MNMCU_SYST_RELOAD) == 0u) {
        /* Tick 0 is the first reload; until then the counter reads 0. */
    }
}

/* Ticks since mnmcu_systick_start(). */
static inline uint64_t mnmcu_systick_ticks(void)
{
    uint32_t wraps;
    uint32_t count;
    uint32_t pending;
    do {
        wraps = s_mnmcu_systick_wraps;
        count = MNMCU_SYST_CVR & MNMCU_SYST_RELOAD;
        pending = MNMCU_SCB_ICSR & MNMCU_SCB_ICSR_PENDSTSET;
    } while (wraps != s_mnmcu_systick_wraps);
    if (pending) {
        wraps++; /* the period ended; its interrupt has not run yet */
    }
    if (count == 0u) {
        /* The counter shows 0 for the last tick of a period, whose wrap is counted. */
        return ((uint64_t)wraps << MNMCU_SYST_WRAP_SHIFT) - 1u;
    }
    return ((uint64_t)wraps << MNMCU_SYST_WRAP_SHIFT) + (MNMCU_SYST_RELOAD - count);
}

#endif /* MNMCU_SYSTICK_H */
