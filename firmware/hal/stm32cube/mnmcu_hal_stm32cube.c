/*
 * mnmcu HAL for STM32 boards with the STM32Cube HAL (PlatformIO framework
 * "stm32cube"): the console is the USART of the ST-LINK virtual COM port,
 * time is the DWT cycle counter (CYCCNT) on the core clock, extended to
 * 64 bits.
 *
 * Clock: mnmcu_stm32_clock_setup() (mnmcu_stm32_clock.c) brings the chip to
 * the board's planned frequency, or back to the internal oscillator when a
 * step is never confirmed; SystemCoreClockUpdate() and HAL_InitTick() then
 * give the HAL the clock actually running, and the boot line reports it
 * (cpu_hz, clock). On Cortex-M7 chips the instruction and data caches are
 * enabled (no DMA touches memory here, so there is nothing to keep coherent).
 *
 * Under a simulator whose DWT does not count (QEMU), cycles are left out,
 * ticks come from SysTick (the HAL's 1 ms interrupt plus the counter) and
 * are virtual time, at MNMCU_QEMU_SYSCLK_HZ when the build defines it.
 */
#if defined(STM32F4)
#include "stm32f4xx_hal.h"
#elif defined(STM32F7)
#include "stm32f7xx_hal.h"
#elif defined(STM32H7)
#include "stm32h7xx_hal.h"
#else
#error "unsupported STM32 family: expected STM32F4, STM32F7 or STM32H7"
#endif

#include "mnmcu_dwt.h"
#include "mnmcu_hal.h"
#include "mnmcu_stm32_clock.h"

/*
 * The console USART and its pins, per board (mnmcu defines MNMCU_BOARD_<ID>).
 * CONSOLE_CLOCKS() is a statement: ST's __HAL_RCC_*_CLK_ENABLE() macros are
 * do { } while (0) blocks, not expressions.
 */
#if defined(MNMCU_BOARD_DISCO_F407VG)
/* USART2 on PA2 (TX) / PA3 (RX); wire them to the ST-LINK/V2-A VCP. */
#define CONSOLE_USART USART2
#define CONSOLE_CLOCKS()                                                                      \
    do {                                                                                      \
        __HAL_RCC_USART2_CLK_ENABLE();                                                        \
        __HAL_RCC_GPIOA_CLK_ENABLE();                                                         \
    } while (0)
#define CONSOLE_TX_PORT GPIOA
#define CONSOLE_TX_PIN GPIO_PIN_2
#define CONSOLE_RX_PORT GPIOA
#define CONSOLE_RX_PIN GPIO_PIN_3
#define CONSOLE_AF GPIO_AF7_USART2
#elif defined(MNMCU_BOARD_NUCLEO_F446RE)
/* USART2 on PA2 (TX) / PA3 (RX), the ST-LINK/V2-1 VCP (UM1724). */
#define CONSOLE_USART USART2
#define CONSOLE_CLOCKS()                                                                      \
    do {                                                                                      \
        __HAL_RCC_USART2_CLK_ENABLE();                                                        \
        __HAL_RCC_GPIOA_CLK_ENABLE();                                                         \
    } while (0)
#define CONSOLE_TX_PORT GPIOA
#define CONSOLE_TX_PIN GPIO_PIN_2
#define CONSOLE_RX_PORT GPIOA
#define CONSOLE_RX_PIN GPIO_PIN_3
#define CONSOLE_AF GPIO_AF7_USART2
#elif defined(MNMCU_BOARD_DISCO_F746NG)
/* USART1 on PA9 (TX) / PB7 (RX), the ST-LINK/V2-1 VCP. */
#define CONSOLE_USART USART1
#define CONSOLE_CLOCKS()                                                                      \
    do {                                                                                      \
        __HAL_RCC_USART1_CLK_ENABLE();                                                        \
        __HAL_RCC_GPIOA_CLK_ENABLE();                                                         \
        __HAL_RCC_GPIOB_CLK_ENABLE();                                                         \
    } while (0)
#define CONSOLE_TX_PORT GPIOA
#define CONSOLE_TX_PIN GPIO_PIN_9
#define CONSOLE_RX_PORT GPIOB
#define CONSOLE_RX_PIN GPIO_PIN_7
#define CONSOLE_AF GPIO_AF7_USART1
#elif defined(MNMCU_BOARD_NUCLEO_H743ZI)
/* USART3 on PD8 (TX) / PD9 (RX), the ST-LINK/V3 VCP. */
#define CONSOLE_USART USART3
#define CONSOLE_CLOCKS()                                                                      \
    do {                                                                                      \
        __HAL_RCC_USART3_CLK_ENABLE();                                                        \
        __HAL_RCC_GPIOD_CLK_ENABLE();                                                         \
    } while (0)
#define CONSOLE_TX_PORT GPIOD
#define CONSOLE_TX_PIN GPIO_PIN_8
#define CONSOLE_RX_PORT GPIOD
#define CONSOLE_RX_PIN GPIO_PIN_9
#define CONSOLE_AF GPIO_AF7_USART3
#else
#error "no console USART known for this board: add it above"
#endif

#ifndef MNMCU_CONSOLE_BAUD
#define MNMCU_CONSOLE_BAUD 115200u
#endif

static UART_HandleTypeDef s_console;
static mnmcu_clock_t s_clock;
static int s_dwt_counts;
static uint64_t s_cycles_high;
static uint32_t s_cycles_last;

void SysTick_Handler(void);

void SysTick_Handler(void)
{
    HAL_IncTick();
}

/* Ticks from the HAL's millisecond count and SysTick's down-counter. */
static uint64_t systick_ticks(void)
{
    const uint32_t period = (SysTick->LOAD & SysTick_LOAD_RELOAD_Msk) + 1u;
    uint32_t ms;
    uint32_t count;
    uint32_t pending;
    do {
        ms = HAL_GetTick();
        count = SysTick->VAL & SysTick_VAL_CURRENT_Msk;
        pending = SCB->ICSR & SCB_ICSR_PENDSTSET_Msk;
    } while (ms != HAL_GetTick());
    uint64_t periods = ms / (uint32_t)HAL_GetTickFreq();
    if (pending && count > period / 2u) {
        periods++; /* the counter reloaded; its interrupt has not run yet */
    }
    return periods * period + (period - 1u - count);
}

static void console_init(void)
{
    GPIO_InitTypeDef pin = {0};
    CONSOLE_CLOCKS();
    pin.Mode = GPIO_MODE_AF_PP;
    pin.Pull = GPIO_PULLUP;
    pin.Speed = GPIO_SPEED_FREQ_VERY_HIGH;
    pin.Alternate = CONSOLE_AF;
    pin.Pin = CONSOLE_TX_PIN;
    HAL_GPIO_Init(CONSOLE_TX_PORT, &pin);
    pin.Pin = CONSOLE_RX_PIN;
    HAL_GPIO_Init(CONSOLE_RX_PORT, &pin);

    s_console.Instance = CONSOLE_USART;
    s_console.Init.BaudRate = MNMCU_CONSOLE_BAUD;
    s_console.Init.WordLength = UART_WORDLENGTH_8B;
    s_console.Init.StopBits = UART_STOPBITS_1;
    s_console.Init.Parity = UART_PARITY_NONE;
    s_console.Init.Mode = UART_MODE_TX_RX;
    s_console.Init.HwFlowCtl = UART_HWCONTROL_NONE;
    s_console.Init.OverSampling = UART_OVERSAMPLING_16;
    (void)HAL_UART_Init(&s_console);
}

void mnmcu_hal_init(void)
{
    (void)HAL_Init();
    (void)mnmcu_stm32_clock_setup(&s_clock);
    SystemCoreClockUpdate();
    (void)HAL_InitTick(TICK_INT_PRIORITY);
#if defined(STM32F7) || defined(STM32H7)
    SCB_EnableICache();
    SCB_EnableDCache();
#endif
    s_dwt_counts = mnmcu_dwt_start();
    s_cycles_high = 0u;
    s_cycles_last = mnmcu_dwt_cycles();
    console_init();
}

void mnmcu_hal_write(const void *data, size_t len)
{
    const uint8_t *bytes = (const uint8_t *)data;
    while (len > 0u) {
        uint16_t chunk = len > 0xFFFFu ? 0xFFFFu : (uint16_t)len;
        (void)HAL_UART_Transmit(&s_console, (uint8_t *)bytes, chunk, HAL_MAX_DELAY);
        bytes += chunk;
        len -= chunk;
    }
}

void mnmcu_hal_putc(char c)
{
    mnmcu_hal_write(&c, 1);
}

void mnmcu_hal_puts(const char *s)
{
    size_t len = 0;
    while (s[len] != '\0') {
        len++;
    }
    mnmcu_hal_write(s, len);
}

int mnmcu_hal_getc_timeout(uint32_t timeout_us)
{
    uint8_t byte;
    uint32_t timeout_ms = (timeout_us + 999u) / 1000u;
    return HAL_UART_Receive(&s_console, &byte, 1, timeout_ms) == HAL_OK ? byte : -1;
}

uint64_t mnmcu_hal_ticks(void)
{
    if (!s_dwt_counts) {
        return systick_ticks();
    }
    /* Called at least once per 2^32 cycles (26 s at 168 MHz) while timing. */
    uint32_t now = mnmcu_dwt_cycles();
    if (now < s_cycles_last) {
        s_cycles_high += (uint64_t)1u << 32;
    }
    s_cycles_last = now;
    return s_cycles_high | now;
}

uint32_t mnmcu_hal_tick_hz(void)
{
#if defined(MNMCU_QEMU_SYSCLK_HZ)
    if (!s_dwt_counts) {
        return (uint32_t)MNMCU_QEMU_SYSCLK_HZ;
    }
#endif
    return SystemCoreClock;
}

const char *mnmcu_hal_timer_name(void)
{
    return s_dwt_counts ? "dwt" : "systick";
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

uint32_t mnmcu_hal_cpu_hz(void)
{
    return SystemCoreClock;
}

const char *mnmcu_hal_clock_source(void)
{
    return mnmcu_stm32_clock_source(s_clock.status);
}

int mnmcu_hal_console_opened(void)
{
    return 0;
}

void mnmcu_hal_idle(void)
{
    __WFI();
}
