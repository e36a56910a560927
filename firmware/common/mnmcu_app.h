/*
 * mnmcu_app.h - the firmware application of an mnmcu project (main.c).
 *
 * At boot the application brings up the HAL and the runtime, runs the
 * embedded sample input once and prints one line on the console:
 *
 *   mnmcu: board=<id> runtime=<aot|tflm> model=<first 12 hex digits of the
 *   .tflite's SHA-256> label=<class name> class=<index> score=<int8>
 *   (<percent>% | <real value>) latency_us=<n|-> cycles=<n|-> ticks=<n>
 *   tick_hz=<n> timer=<name> cpu_hz=<n> clock=<source> [icount_insns=<n>]
 *   output=<int8,...> ok=<0|1>
 *
 * ok=1 when the output equals the expected output embedded at generation
 * time (TFLite's reference kernels on the host). Under QEMU time is
 * virtual: latency_us and cycles are "-", and icount_insns is the guest
 * instruction count, exact to one tick when QEMU runs with -icount shift=0.
 * cpu_hz is the core clock actually running and clock how it was set up
 * (mnmcu_hal_clock_source(): e.g. hse_pll, or hsi_fallback:hse when an STM32
 * found no external clock).
 * A failure prints "mnmcu: board=... error=<what> status=<n> (<text>)".
 *
 * Then it calls mnmcu_app_poll() forever. The default, weak, one prints the
 * boot line again when a host opens the console (mnmcu_hal_console_opened())
 * and waits for an interrupt; the device side of the serial protocol defines its own
 * mnmcu_app_poll() that reads and answers frames with mnmcu_hal_getc_timeout()
 * and mnmcu_hal_write().
 */
#ifndef MNMCU_APP_H
#define MNMCU_APP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bring up the HAL and the runtime, run the sample once and print the boot line. */
void mnmcu_app_boot(void);

/**
 * Run the embedded sample input once and print the boot line.
 * @return 0 if the output equals the expected one, 1 if it differs, or the
 *         runtime's negative status.
 */
int mnmcu_app_run_sample(void);

/** One turn of the main loop; weak, replaced by the serial protocol. */
void mnmcu_app_poll(void);

#if defined(MNMCU_PROFILE)
/**
 * Per-layer timing (AOT runtime built with MNMCU_PROFILE): the generated
 * model calls mnmcu_layer_hook() after each op, and the application keeps
 * the ticks each op took, for the boot line and the protocol's RESULT.
 */
typedef struct {
    int32_t index;      /**< the op's index in the .tflite */
    const char *op;     /**< its op name */
    uint64_t ticks;     /**< ticks since the previous op ended (mnmcu_hal_ticks) */
} mnmcu_layer_time_t;

/** Forget the previous inference's layers; the next op is timed from now. */
void mnmcu_app_profile_start(void);

/** The layers timed since mnmcu_app_profile_start(), *count of them. */
const mnmcu_layer_time_t *mnmcu_app_profile(uint32_t *count);
#endif

#ifdef __cplusplus
}
#endif

#endif /* MNMCU_APP_H */
