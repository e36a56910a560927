/*
 * mnmcu_hal.h - the little the firmware needs from a board: a console and
 * a clock.
 *
 * One implementation per platform family, chosen when mnmcu generates a
 * project (the family's folder under firmware/hal/ is copied to src/):
 *   qemu_mps   QEMU mps2-an386/an500, mps3-an547: CMSDK APB UART0, SysTick
 *   host       the build machine: stdio, clock_gettime()
 *   esp32      ESP-IDF: the console UART (UART driver), esp_timer, CPU cycle counter
 *   stm32cube  STM32Cube HAL: USART console, DWT CYCCNT, the board's clock plan
 *   stm32_baremetal  STM32F4 registers: USART console, SysTick, the board's clock plan
 *   arduino    Arduino cores (Nano 33 BLE): Serial, micros(), DWT CYCCNT
 *
 * The console carries the boot line and, later, the binary serial protocol,
 * so every write is raw (no newline translation). Ticks count up from
 * mnmcu_hal_init() at mnmcu_hal_tick_hz() and never wrap in practice (64 bit).
 * Usable from C and C++.
 */
#ifndef MNMCU_HAL_H
#define MNMCU_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bring up the console and the clock. Call once, first thing in main. */
void mnmcu_hal_init(void);

/** Write one byte to the console (blocks until it is accepted). */
void mnmcu_hal_putc(char c);

/** Write a NUL-terminated string to the console, as is. */
void mnmcu_hal_puts(const char *s);

/** Write len bytes to the console. */
void mnmcu_hal_write(const void *data, size_t len);

/**
 * Read one byte from the console, waiting at most timeout_us microseconds
 * of the board's clock (0: only look). Time is measured with
 * mnmcu_hal_ticks(), so under QEMU it is virtual time.
 * @return the byte (0..255), or -1 if none arrived in time.
 */
int mnmcu_hal_getc_timeout(uint32_t timeout_us);

/** Ticks since mnmcu_hal_init(), at mnmcu_hal_tick_hz(). */
uint64_t mnmcu_hal_ticks(void);

/** Frequency of mnmcu_hal_ticks() in Hz. */
uint32_t mnmcu_hal_tick_hz(void);

/** Name of the tick source for reports: "systick", "dwt", "esp_timer", "micros", "clock_gettime". */
const char *mnmcu_hal_timer_name(void);

/**
 * The core's free-running 32-bit cycle counter (DWT CYCCNT, the Xtensa
 * CCOUNT), where there is one. Subtract two readings (unsigned) to time an
 * interval shorter than one wrap (2^32 cycles: 17 s at 240 MHz).
 * @return 1 and *cycles set, or 0 where there is no cycle counter (QEMU,
 *         host), leaving *cycles untouched.
 */
int mnmcu_hal_cycles(uint32_t *cycles);

/**
 * 1 if ticks are a simulator's virtual time (QEMU): then they are not wall
 * time, and with QEMU's -icount shift=0 one nanosecond of virtual time is
 * one guest instruction. 0 on real hardware and the host.
 */
int mnmcu_hal_time_is_virtual(void);

/** The core clock actually running, in Hz (read back where the chip can tell; 0: unknown). */
uint32_t mnmcu_hal_cpu_hz(void);

/**
 * How the core clock was set up, for the boot line (no spaces): "hse_pll"
 * (STM32, the board's plan), "hsi_fallback:<step>" (STM32, a step of the
 * plan failed, see mnmcu_stm32_clock.h), "sdkconfig" (ESP-IDF's setting),
 * "fixed" (a clock the firmware does not change), "host".
 */
const char *mnmcu_hal_clock_source(void);

/**
 * 1 once each time a host opens the console, where the port can tell (USB
 * CDC: the host raised DTR); 0 otherwise. The application then prints its
 * boot line again, for a host that opened the port after boot.
 */
int mnmcu_hal_console_opened(void);

/** Wait for something to happen (an interrupt), or return at once. */
void mnmcu_hal_idle(void);

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_HAL_H */
