/*
 * mnmcu HAL for QEMU's MPS2/MPS3 machines (mps2-an386, mps2-an500,
 * mps3-an547): the console is the CMSDK APB UART0, the clock is SysTick.
 *
 * QEMU models no DWT cycle counter on these machines, so time comes from
 * SysTick on the processor clock (MNMCU_CPU_HZ: 25 MHz on MPS2, 32 MHz on
 * the AN547), counting down from 2^24 - 1 with an interrupt per wrap that
 * extends it to 64 bits (a wrap whose interrupt is still pending, and the
 * counter's 0 state at the end of a period, are accounted for). It is QEMU's virtual time: with -icount shift=0
 * every guest instruction advances it by 1 ns, so
 * instructions = ticks * 10^9 / MNMCU_CPU_HZ (to within one tick).
 *
 * MNMCU_QEMU_UART0_BASE comes from the mnmcu-qemu platform's board files;
 * MNMCU_CPU_HZ from the mnmcu board data (platformio.ini build_flags).
 */
#include "mnmcu_hal.h"

#ifndef MNMCU_QEMU_UART0_BASE
#error "MNMCU_QEMU_UART0_BASE is not defined; build with a board of the mnmcu-qemu platform"
#endif
#ifndef MNMCU_CPU_HZ
#error "MNMCU_CPU_HZ (the SysTick clock) is not defined; mnmcu emit sets it from the board data"
#endif

#define REG32(address) (*(volatile uint32_t *)(uintptr_t)(address))

#define UART_DATA REG32(MNMCU_QEMU_UART0_BASE + 0x00u)
#define UART_STATE REG32(MNMCU_QEMU_UART0_BASE + 0x04u)
#define UART_CTRL REG32(MNMCU_QEMU_UART0_BASE + 0x08u)
#define UART_BAUDDIV REG32(MNMCU_QEMU_UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 0x1u
#define UART_STATE_RXFULL 0x2u
#define UART_CTRL_TXEN 0x1u
#define UART_CTRL_RXEN 0x2u
#define UART_BAUD 115200u

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define SYST_CSR_ENABLE 0x1u
#define SYST_CSR_TICKINT 0x2u
#define SYST_CSR_CLKSOURCE_CPU 0x4u
#define SYST_RELOAD 0x00FFFFFFu
#define SYST_WRAP_SHIFT 24u
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)

static volatile uint32_t s_systick_wraps;

void SysTick_Handler(void);

void SysTick_Handler(void)
{
    s_systick_wraps = s_systick_wraps + 1u;
}

void mnmcu_hal_init(void)
{
    UART_BAUDDIV = (uint32_t)MNMCU_CPU_HZ / UART_BAUD; /* QEMU ignores it but checks >= 16 */
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;

    s_systick_wraps = 0u;
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u; /* any write clears the counter: it reloads on the next tick */
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
    while ((SYST_CVR & SYST_RELOAD) == 0u) {
        /* Tick 0 is the first reload; until then the counter reads 0. */
    }
}

void mnmcu_hal_putc(char c)
{
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = (uint8_t)c;
}

void mnmcu_hal_puts(const char *s)
{
    while (*s != '\0') {
        mnmcu_hal_putc(*s++);
    }
}

void mnmcu_hal_write(const void *data, size_t len)
{
    const char *bytes = (const char *)data;
    for (size_t i = 0; i < len; i++) {
        mnmcu_hal_putc(bytes[i]);
    }
}

int mnmcu_hal_getc_timeout(uint32_t timeout_us)
{
    const uint64_t start = mnmcu_hal_ticks();
    const uint64_t budget = (uint64_t)timeout_us * (uint64_t)MNMCU_CPU_HZ / 1000000u;
    for (;;) {
        if (UART_STATE & UART_STATE_RXFULL) {
            return (int)(UART_DATA & 0xFFu);
        }
        if (mnmcu_hal_ticks() - start >= budget) {
            return -1;
        }
    }
}

uint64_t mnmcu_hal_ticks(void)
{
    uint32_t wraps;
    uint32_t count;
    uint32_t pending;
    do {
        wraps = s_systick_wraps;
        count = SYST_CVR & SYST_RELOAD;
        pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
    } while (wraps != s_systick_wraps);
    if (pending) {
        wraps++; /* the period ended; its interrupt has not run yet */
    }
    if (count == 0u) {
        /* The counter shows 0 for the last tick of a period, whose wrap is counted. */
        return ((uint64_t)wraps << SYST_WRAP_SHIFT) - 1u;
    }
    return ((uint64_t)wraps << SYST_WRAP_SHIFT) + (SYST_RELOAD - count);
}

uint32_t mnmcu_hal_tick_hz(void)
{
    return (uint32_t)MNMCU_CPU_HZ;
}

const char *mnmcu_hal_timer_name(void)
{
    return "systick";
}

int mnmcu_hal_cycles(uint32_t *cycles)
{
    (void)cycles;
    return 0;
}

int mnmcu_hal_time_is_virtual(void)
{
    return 1;
}

void mnmcu_hal_idle(void)
{
    __asm volatile("wfi" ::: "memory");
}
