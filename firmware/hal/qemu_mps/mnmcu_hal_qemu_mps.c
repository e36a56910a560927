/*
 * mnmcu HAL for QEMU's MPS2/MPS3 machines (mps2-an386, mps2-an500,
 * mps3-an547): the console is the CMSDK APB UART0, the clock is SysTick.
 *
 * QEMU models no DWT cycle counter on these machines, so time comes from
 * SysTick on the processor clock (MNMCU_CPU_HZ: 25 MHz on MPS2, 32 MHz on
 * the AN547), extended to 64 bits (mnmcu_systick.h). It is QEMU's virtual
 * time: with -icount shift=0
 * every guest instruction advances it by 1 ns, so
 * instructions = ticks * 10^9 / MNMCU_CPU_HZ (to within one tick).
 *
 * MNMCU_QEMU_UART0_BASE comes from the mnmcu-qemu platform's board files;
 * MNMCU_CPU_HZ from the mnmcu board data (platformio.ini build_flags).
 */
#include "mnmcu_hal.h"
#include "mnmcu_systick.h"

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

void mnmcu_hal_init(void)
{
    UART_BAUDDIV = (uint32_t)MNMCU_CPU_HZ / UART_BAUD; /* QEMU ignores it but checks >= 16 */
    UART_CTRL = UART_CTRL_TXEN | UART_CTRL_RXEN;

    mnmcu_systick_start();
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
    return mnmcu_systick_ticks();
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

uint32_t mnmcu_hal_cpu_hz(void)
{
    return (uint32_t)MNMCU_CPU_HZ; /* the machine's modelled clock */
}

const char *mnmcu_hal_clock_source(void)
{
    return "fixed";
}

int mnmcu_hal_console_opened(void)
{
    return 0;
}
