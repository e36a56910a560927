/*
 * Polled output on the console UART, for the startup code's fault report
 * and newlib's _write. The board files of this platform define which UART:
 * MNMCU_QEMU_UART0_BASE, the CMSDK APB UART0 of QEMU's MPS2/MPS3 machines,
 * or MNMCU_STM32_USART_BASE, an STM32F4 USART (RM0090 section 30.6) that the
 * firmware's HAL sets up (clock, pins, baud rate) at boot.
 */
#ifndef MNMCU_QEMU_UART_H
#define MNMCU_QEMU_UART_H

#include <stdint.h>

#if defined(MNMCU_STM32_USART_BASE)

#define MNMCU_STM32_USART_SR (*(volatile uint32_t *)(MNMCU_STM32_USART_BASE + 0x00u))
#define MNMCU_STM32_USART_DR (*(volatile uint32_t *)(MNMCU_STM32_USART_BASE + 0x04u))
#define MNMCU_STM32_USART_CR1 (*(volatile uint32_t *)(MNMCU_STM32_USART_BASE + 0x0Cu))
#define MNMCU_STM32_USART_SR_TXE (1u << 7)
#define MNMCU_STM32_USART_CR1_UE (1u << 13)
#define MNMCU_STM32_USART_CR1_TE (1u << 3)

/* Before the HAL has run (a fault at boot) the USART may be off: turn its
 * transmitter on; without the HAL's clock and pin setup a real board stays
 * silent, a simulator prints. */
static inline void mnmcu_qemu_uart_enable(void)
{
    MNMCU_STM32_USART_CR1 |= MNMCU_STM32_USART_CR1_UE | MNMCU_STM32_USART_CR1_TE;
}

static inline void mnmcu_qemu_uart_putc(char c)
{
    uint32_t budget = 1000000u; /* never hang in a fault report */
    while ((MNMCU_STM32_USART_SR & MNMCU_STM32_USART_SR_TXE) == 0u && budget-- > 0u) {
    }
    MNMCU_STM32_USART_DR = (uint8_t)c;
}

#elif defined(MNMCU_QEMU_UART0_BASE)

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

#else
#error "no console UART: build with a board of the mnmcu-qemu platform (MNMCU_QEMU_UART0_BASE or MNMCU_STM32_USART_BASE)"
#endif

#endif /* MNMCU_QEMU_UART_H */
