/*
 * The DWT cycle counter (CYCCNT) of Armv7-M and Armv8-M Mainline cores
 * (Cortex-M3/M4/M7/M33/M55), at the architectural addresses, so the HALs
 * that use it need no vendor header. QEMU does not model it: use
 * mnmcu_dwt_start(), which says whether the counter really counts.
 */
#ifndef MNMCU_DWT_H
#define MNMCU_DWT_H

#include <stdint.h>

#define MNMCU_DWT_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define MNMCU_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define MNMCU_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define MNMCU_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)
#define MNMCU_DWT_DEMCR_TRCENA (1u << 24)
#define MNMCU_DWT_CTRL_CYCCNTENA 1u
#define MNMCU_DWT_CTRL_NOCYCCNT (1u << 25)
#define MNMCU_DWT_LAR_KEY 0xC5ACCE55u

/* Start the counter; returns 0 where the DWT has no cycle counter. */
static inline int mnmcu_dwt_enable(void)
{
    MNMCU_DWT_DEMCR |= MNMCU_DWT_DEMCR_TRCENA;
    MNMCU_DWT_LAR = MNMCU_DWT_LAR_KEY; /* unlock where required (Cortex-M7) */
    if (MNMCU_DWT_CTRL & MNMCU_DWT_CTRL_NOCYCCNT) {
        return 0;
    }
    MNMCU_DWT_CYCCNT = 0u;
    MNMCU_DWT_CTRL |= MNMCU_DWT_CTRL_CYCCNTENA;
    return 1;
}

static inline uint32_t mnmcu_dwt_cycles(void)
{
    return MNMCU_DWT_CYCCNT;
}

/*
 * Start the counter and check that it counts: 1 if it does, 0 where there
 * is none or it stands still (QEMU accepts the writes and reads 0).
 */
static inline int mnmcu_dwt_start(void)
{
    if (!mnmcu_dwt_enable()) {
        return 0;
    }
    const uint32_t first = mnmcu_dwt_cycles();
    for (int spin = 0; spin < 16; spin++) {
        __asm volatile("nop");
    }
    return mnmcu_dwt_cycles() != first;
}

#endif /* MNMCU_DWT_H */
