/*
 * mnmcu HAL for STM32 boards with the STM32Cube HAL (PlatformIO framework
 * "stm32cube"): the console is the USART of the ST-LINK virtual COM port,
 * the clock and the cycle count are the DWT cycle counter (CYCCNT) on the
 * core clock, extended to 64 bits.
 *
 * The core runs at its reset clock (HSI) unless the application defines
 * mnmcu_stm32_clock_config() (e.g. CubeMX's SystemClock_Config()) to raise
 * it; ticks follow SystemCoreClock either way.
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
static uint64_t s_cycles_high;
static uint32_t s_cycles_last;

void SysTick_Handler(void);
void mnmcu_stm32_clock_config(void);

void SysTick_Handler(void)
{
    HAL_IncTick();
}

__attribute__((weak)) void mnmcu_stm32_clock_config(void)
{
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
    mnmcu_stm32_clock_config();
    SystemCoreClockUpdate();
    (void)mnmcu_dwt_enable();
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
    return SystemCoreClock;
}

const char *mnmcu_hal_timer_name(void)
{
    return "dwt";
}

int mnmcu_hal_cycles(uint32_t *cycles)
{
    *cycles = mnmcu_dwt_cycles();
    return 1;
}

int mnmcu_hal_time_is_virtual(void)
{
    return 0;
}

void mnmcu_hal_idle(void)
{
    __WFI();
}
