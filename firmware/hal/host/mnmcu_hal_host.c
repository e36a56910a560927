/*
 * mnmcu HAL for the build machine (POSIX): the console is stdin/stdout, the
 * clock is CLOCK_MONOTONIC in nanoseconds. There is no cycle counter.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mnmcu_hal.h"

#define NS_PER_S 1000000000u

static struct timespec s_start;

void mnmcu_hal_init(void)
{
    (void)clock_gettime(CLOCK_MONOTONIC, &s_start);
    (void)setvbuf(stdout, NULL, _IONBF, 0);
}

void mnmcu_hal_putc(char c)
{
    (void)fputc((unsigned char)c, stdout);
}

void mnmcu_hal_puts(const char *s)
{
    (void)fputs(s, stdout);
}

void mnmcu_hal_write(const void *data, size_t len)
{
    (void)fwrite(data, 1, len, stdout);
}

int mnmcu_hal_getc_timeout(uint32_t timeout_us)
{
    struct pollfd fd = {STDIN_FILENO, POLLIN, 0};
    unsigned char byte;
    int timeout_ms = (int)((timeout_us + 999u) / 1000u);
    if (poll(&fd, 1, timeout_ms) <= 0 || read(STDIN_FILENO, &byte, 1) != 1) {
        return -1;
    }
    return byte;
}

uint64_t mnmcu_hal_ticks(void)
{
    struct timespec now;
    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - s_start.tv_sec) * (int64_t)NS_PER_S +
                 (int64_t)(now.tv_nsec - s_start.tv_nsec);
    return ns < 0 ? 0u : (uint64_t)ns;
}

uint32_t mnmcu_hal_tick_hz(void)
{
    return NS_PER_S;
}

const char *mnmcu_hal_timer_name(void)
{
    return "clock_gettime";
}

int mnmcu_hal_cycles(uint32_t *cycles)
{
    (void)cycles;
    return 0;
}

int mnmcu_hal_time_is_virtual(void)
{
    return 0;
}

void mnmcu_hal_idle(void)
{
    struct timespec nap = {0, 1000000};
    (void)nanosleep(&nap, NULL);
}

uint32_t mnmcu_hal_cpu_hz(void)
{
    return 0u;
}

const char *mnmcu_hal_clock_source(void)
{
    return "host";
}

int mnmcu_hal_console_opened(void)
{
    return 0;
}
