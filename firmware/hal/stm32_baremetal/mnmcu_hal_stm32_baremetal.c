/*
 * mnmcu HAL for bare-metal STM32F4 (the '--bare-metal' build: no STM32Cube,
 * registers only). One ELF for the real board, Renode's stm32f4_discovery
 * and QEMU's netduinoplus2 (an STM32F405 with the F407's memory and
 * peripheral map).
 *
 * Clock: the board's plan (mnmcu_stm32_clock.c: HSE, PLL, wait states),
 * every wait bounded; where a step is never confirmed (QEMU models no RCC)
 * the chip stays on the 16 MHz HSI (RM0090 6.2.2) and the boot line says so.
 * Console: one USART at register level (RM0090 30.6), 115200 Bd 8N1 from
 * the clock actually running, its pins switched to their alternate
 * function; which USART, pins and AF come from the mnmcu-qemu platform's
 * board file (MNMCU_STM32_* macros). Timing: SysTick on the processor clock
 * (ticks are cycles), and the DWT cycle counter when it counts. QEMU models
 * no DWT: a CYCCNT that stays 0 after being enabled means a simulator, whose
 * SysTick runs on its modelled system clock (MNMCU_QEMU_SYSCLK_HZ, QEMU's
 * netduinoplus2: 168 MHz) and counts virtual time (with -icount shift=0, one
 * guest instruction per nanosecond).
 */
#include "mnmcu_dwt.h"
#include "mnmcu_hal.h"
#include "mnmcu_stm32_clock.h"
#include "mnmcu_systick.h"

#if !defined(MNMCU_STM32_USART_BASE) || !defined(MNMCU_STM32_USART_APB) ||                   \
    !defined(MNMCU_STM32_USART_RCC_BIT) || !defined(MNMCU_STM32_GPIO_PORT) ||                 \
    !defined(MNMCU_STM32_TX_PIN) || !defined(MNMCU_STM32_RX_PIN) || !defined(MNMCU_STM32_USART_AF)
#error "the MNMCU_STM32_* console macros are not defined; build with a bare-metal STM32 board"
#endif
#ifndef MNMCU_CPU_HZ
#error "MNMCU_CPU_HZ (the core clock) is not defined; mnmcu emit sets it from the board data"
#endif
#ifndef MNMCU_QEMU_SYSCLK_HZ
#define MNMCU_QEMU_SYSCLK_HZ MNMCU_CPU_HZ
#endif

#define REG32(address) (*(volatile uint32_t *)(uintptr_t)(address))

/* RM0090 2.3 memory map and 7.3 RCC registers. */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR REG32(RCC_BASE + 0x30u)
#define RCC_APB1ENR REG32(RCC_BASE + 0x40u)
#define RCC_APB2ENR REG32(RCC_BASE + 0x44u)
#define GPIO_BASE (0x40020000u + 0x400u * (uint32_t)MNMCU_STM32_GPIO_PORT)
#define GPIO_MODER REG32(GPIO_BASE + 0x00u)
#define GPIO_AFR(pin) REG32(GPIO_BASE + 0x20u + 4u * ((uint32_t)(pin) / 8u))
#define GPIO_MODE_AF 0x2u

#define USART_SR REG32(MNMCU_STM32_USART_BASE + 0x00u)
#define USART_DR REG32(MNMCU_STM32_USART_BASE + 0x04u)
#define USART_BRR REG32(MNMCU_STM32_USART_BASE + 0x08u)
#define USART_CR1 REG32(MNMCU_STM32_USART_BASE + 0x0Cu)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)
#define USART_BAUD 115200u

static int s_dwt_counts;
static mnmcu_clock_t s_clock;

static void pin_alternate(uint32_t pin)
{
    GPIO_MODER = (GPIO_MODER & ~(0x3u << (2u * pin))) | (GPIO_MODE_AF << (2u * pin));
    const uint32_t shift = 4u * (pin % 8u);
    GPIO_AFR(pin) = (GPIO_AFR(pin) & ~(0xFu << shift)) |
                    ((uint32_t)MNMCU_STM32_USART_AF << shift);
}

void mnmcu_hal_init(void)
{
    (void)mnmcu_stm32_clock_setup(&s_clock);
    RCC_AHB1ENR |= 1u << MNMCU_STM32_GPIO_PORT;
#if MNMCU_STM32_USART_APB == 1
    RCC_APB1ENR |= 1u << MNMCU_STM32_USART_RCC_BIT;
    (void)RCC_APB1ENR; /* a read-back lets the enable take effect (RM0090 7.3) */
#else
    RCC_APB2ENR |= 1u << MNMCU_STM32_USART_RCC_BIT;
    (void)RCC_APB2ENR;
#endif
    pin_alternate(MNMCU_STM32_TX_PIN);
    pin_alternate(MNMCU_STM32_RX_PIN);
    /* Oversampling by 16: BRR holds USARTDIV in 12.4 fixed point = bus clock / baud. */
#if MNMCU_STM32_USART_APB == 1
    const uint32_t bus_hz = s_clock.pclk1_hz;
#else
    const uint32_t bus_hz = s_clock.pclk2_hz;
#endif
    USART_BRR = (bus_hz + USART_BAUD / 2u) / USART_BAUD;
    USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;

    mnmcu_systick_start();
    s_dwt_counts = mnmcu_dwt_start();
}

void mnmcu_hal_putc(char c)
{
    while ((USART_SR & USART_SR_TXE) == 0u) {
    }
    USART_DR = (uint8_t)c;
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
    const uint64_t budget = (uint64_t)timeout_us * (uint64_t)mnmcu_hal_tick_hz() / 1000000u;
    for (;;) {
        if (USART_SR & USART_SR_RXNE) {
            return (int)(USART_DR & 0xFFu);
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
    return s_dwt_counts ? s_clock.core_hz : (uint32_t)MNMCU_QEMU_SYSCLK_HZ;
}

const char *mnmcu_hal_timer_name(void)
{
    return "systick";
}

int mnmcu_hal_cycles(uint32_t *cycles)
{
    if (!s_dwt_counts) {
        return 0;
    }
    *cycles = mnmcu_dwt_cycles();
    return 1;
}

int mnmcu_hal_time_is_virtual(void)
{
    return !s_dwt_counts;
}

void mnmcu_hal_idle(void)
{
    __asm volatile("wfi" ::: "memory");
}

uint32_t mnmcu_hal_cpu_hz(void)
{
    return s_clock.core_hz;
}

const char *mnmcu_hal_clock_source(void)
{
    return mnmcu_stm32_clock_source(s_clock.status);
}

int mnmcu_hal_console_opened(void)
{
    return 0;
}
