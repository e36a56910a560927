/*
 * Polled output on the CMSDK APB UART0 of the QEMU MPS2/MPS3 machines, for
 * the startup code's fault report and newlib's _write. The board files of
 * this platform define MNMCU_QEMU_UART0_BASE (build.extra_flags).
 */
#ifndef MNMCU_QEMU_UART_H
#define MNMCU_QEMU_UART_H

#include <stdint.h>

#ifndef MNMCU_QEMU_UART0_BASE
#error "MNMCU_QEMU_UART0_BASE is not defined; build with a board of the mnmcu-qemu platform"
#endif

#define MNMCU_QEMU_UART_DATA (*(volatile uint32_t *)(MNMCU_QEMU_UART0_BASE + 0x00u))
#define MNMCU_QEMU_UART_STATE (*(volatile uint32_t *)(MNMCU_QEMU_UART0_BASE + 0x04u))
#define MNMCU_QEMU_UART_CTRL (*(volatile uint32_t *)(MNMCU_QEMU_UART0_BASE + 0x08u))
#define MNMCU_QEMU_UART_BAUDDIV (*(volatile uint32_t *)(MNMCU_QEMU_UART0_BASE + 0x10u))
#define MNMCU_QEMU_UART_STATE_TXFULL 0x1u
#define MNMCU_QEMU_UART_STATE_RXFULL 0x2u
#define MNMCU_QEMU_UART_CTRL_TXEN 0x1u
#define MNMCU_QEMU_UART_CTRL_RXEN 0x2u

/* Enable the transmitter and receiver (QEMU ignores the baud divisor's value
 * but warns about one below 16, so set the real-board value for 115200 Bd). */
static inline void mnmcu_qemu_uart_enable(void)
{
    if ((MNMCU_QEMU_UART_CTRL & MNMCU_QEMU_UART_CTRL_TXEN) == 0u) {
        MNMCU_QEMU_UART_BAUDDIV = 25000000u / 115200u;
        MNMCU_QEMU_UART_CTRL = MNMCU_QEMU_UART_CTRL_TXEN | MNMCU_QEMU_UART_CTRL_RXEN;
    }
}

static inline void mnmcu_qemu_uart_putc(char c)
{
    while (MNMCU_QEMU_UART_STATE & MNMCU_QEMU_UART_STATE_TXFULL) {
    }
    MNMCU_QEMU_UART_DATA = (uint8_t)c;
}

#endif /* MNMCU_QEMU_UART_H */
