/*
 * mnmcu HAL for Arduino cores on Cortex-M (Arduino Nano 33 BLE: mbed core,
 * nRF52840): the console is Serial (USB CDC on the Nano 33 BLE), the clock
 * is micros() extended to 64 bits, cycles come from the DWT cycle counter.
 * Build with -DMNMCU_CONSOLE_SERIAL=Serial1 to put the console on the
 * hardware UART (pins D0/D1; Renode's sysbus.uart0, which models no USB).
 *
 * At boot the firmware waits up to MNMCU_CONSOLE_WAIT_MS (3 s) for a host to
 * open the USB serial port, then runs the sample whether or not one did; a
 * boot line nobody was listening to is lost, so the application prints it
 * again whenever a host opens the port later (the host raises DTR:
 * mnmcu_hal_console_opened()). Cycles come from the DWT only where it
 * counts (the nRF52840 has one; a simulator may not).
 */
#include <Arduino.h>

#include "mnmcu_dwt.h"
#include "mnmcu_hal.h"

#ifndef MNMCU_CONSOLE_SERIAL
#define MNMCU_CONSOLE_SERIAL Serial
#endif
#ifndef MNMCU_CONSOLE_BAUD
#define MNMCU_CONSOLE_BAUD 115200
#endif
/* How long to wait at boot for the host to open the USB serial port. */
#ifndef MNMCU_CONSOLE_WAIT_MS
#define MNMCU_CONSOLE_WAIT_MS 3000u
#endif

static uint64_t s_micros_high;
static uint32_t s_micros_last;
static int s_have_cycles;
static bool s_console_open;

/* Whether a host holds the port open: DTR on USB CDC ports (USBSerial::dtr()). */
template <typename Port>
static auto host_holds_port(Port &port, int) -> decltype(port.dtr())
{
    return port.dtr();
}

/* Ports without DTR (a hardware UART) count as always open. */
template <typename Port>
static bool host_holds_port(Port &, long)
{
    return true;
}

void mnmcu_hal_init(void)
{
    MNMCU_CONSOLE_SERIAL.begin(MNMCU_CONSOLE_BAUD);
    const uint32_t start = millis();
    while (!MNMCU_CONSOLE_SERIAL && millis() - start < MNMCU_CONSOLE_WAIT_MS) {
        delay(10);
    }
    s_console_open = host_holds_port(MNMCU_CONSOLE_SERIAL, 0);
    s_have_cycles = mnmcu_dwt_start();
    s_micros_high = 0u;
    s_micros_last = micros();
}

void mnmcu_hal_putc(char c)
{
    MNMCU_CONSOLE_SERIAL.write(static_cast<uint8_t>(c));
}

void mnmcu_hal_puts(const char *s)
{
    MNMCU_CONSOLE_SERIAL.print(s);
}

void mnmcu_hal_write(const void *data, size_t len)
{
    MNMCU_CONSOLE_SERIAL.write(static_cast<const uint8_t *>(data), len);
}

int mnmcu_hal_getc_timeout(uint32_t timeout_us)
{
    const uint32_t start = micros();
    do {
        if (MNMCU_CONSOLE_SERIAL.available() > 0) {
            return MNMCU_CONSOLE_SERIAL.read();
        }
    } while (micros() - start < timeout_us);
    return -1;
}

uint64_t mnmcu_hal_ticks(void)
{
    /* micros() wraps every 71 minutes; called more often than that while timing. */
    const uint32_t now = micros();
    if (now < s_micros_last) {
        s_micros_high += static_cast<uint64_t>(1) << 32;
    }
    s_micros_last = now;
    return s_micros_high | now;
}

uint32_t mnmcu_hal_tick_hz(void)
{
    return 1000000u;
}

const char *mnmcu_hal_timer_name(void)
{
    return "micros";
}

int mnmcu_hal_cycles(uint32_t *cycles)
{
    if (!s_have_cycles) {
        return 0;
    }
    *cycles = mnmcu_dwt_cycles();
    return 1;
}

int mnmcu_hal_time_is_virtual(void)
{
    return 0;
}

void mnmcu_hal_idle(void)
{
    yield();
}

uint32_t mnmcu_hal_cpu_hz(void)
{
    return SystemCoreClock; /* CMSIS: the core clock the mbed target set up */
}

const char *mnmcu_hal_clock_source(void)
{
    return "fixed";
}

int mnmcu_hal_console_opened(void)
{
    const bool open = host_holds_port(MNMCU_CONSOLE_SERIAL, 0);
    const bool opened = open && !s_console_open;
    s_console_open = open;
    return opened ? 1 : 0;
}
