/*
 * mnmcu HAL for ESP32 and ESP32-S3 under ESP-IDF 5.x.
 *
 * Console: the ESP-IDF console UART (CONFIG_ESP_CONSOLE_UART_NUM, UART0 on
 * the devkits), through the UART driver so that reads can time out; boot
 * messages of ESP-IDF itself go to the same UART. Clock: esp_timer (1 MHz,
 * 64 bit). Cycles: the CPU's CCOUNT register (esp_cpu_get_cycle_count()).
 * The CPU clock is ESP-IDF's (sdkconfig.defaults sets it from the board data);
 * esp_rom_get_cpu_ticks_per_us() reads back the frequency in use.
 */
#include <stdio.h>

#include "driver/uart.h"
#include "esp_cpu.h"
#include "esp_rom_sys.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "sdkconfig.h"

#include "mnmcu_hal.h"

#ifdef CONFIG_ESP_CONSOLE_UART_NUM
#define MNMCU_CONSOLE_UART ((uart_port_t)CONFIG_ESP_CONSOLE_UART_NUM)
#else
#define MNMCU_CONSOLE_UART ((uart_port_t)0)
#endif
#define MNMCU_UART_RX_BUFFER 1024

static int64_t s_start_us;
static int s_have_driver;

void mnmcu_hal_init(void)
{
    s_start_us = esp_timer_get_time();
    (void)fflush(stdout);
    s_have_driver = uart_is_driver_installed(MNMCU_CONSOLE_UART) ||
                    uart_driver_install(MNMCU_CONSOLE_UART, MNMCU_UART_RX_BUFFER, 0, 0, NULL,
                                        0) == ESP_OK;
}

void mnmcu_hal_write(const void *data, size_t len)
{
    if (s_have_driver) {
        (void)uart_write_bytes(MNMCU_CONSOLE_UART, data, len);
    } else {
        (void)fwrite(data, 1, len, stdout);
        (void)fflush(stdout);
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
    if (!s_have_driver) {
        return -1;
    }
    TickType_t wait = pdMS_TO_TICKS((timeout_us + 999u) / 1000u);
    return uart_read_bytes(MNMCU_CONSOLE_UART, &byte, 1, wait) == 1 ? byte : -1;
}

uint64_t mnmcu_hal_ticks(void)
{
    return (uint64_t)(esp_timer_get_time() - s_start_us);
}

uint32_t mnmcu_hal_tick_hz(void)
{
    return 1000000u;
}

const char *mnmcu_hal_timer_name(void)
{
    return "esp_timer";
}

int mnmcu_hal_cycles(uint32_t *cycles)
{
    *cycles = (uint32_t)esp_cpu_get_cycle_count();
    return 1;
}

int mnmcu_hal_time_is_virtual(void)
{
    return 0;
}

void mnmcu_hal_idle(void)
{
    vTaskDelay(1); /* let the idle task run (task watchdog) */
}

uint32_t mnmcu_hal_cpu_hz(void)
{
    return esp_rom_get_cpu_ticks_per_us() * 1000000u;
}

const char *mnmcu_hal_clock_source(void)
{
    return "sdkconfig";
}

int mnmcu_hal_console_opened(void)
{
    return 0;
}
