/*
 * Startup code of the mnmcu-qemu platform: vector table, Reset_Handler and a
 * fault handler that reports on UART0.
 *
 * Reset_Handler enables the FPU (and, on the Cortex-M55, MVE) when the code
 * is built for hardware floating point, sets the stack limit on Armv8-M,
 * copies .data from its load image, clears .bss, runs the C/C++
 * constructors and calls main(). Symbols come from mnmcu_qemu_sections.ld.
 *
 * A fault, or any exception without a handler, prints one line, "mnmcu: fault=<name> pc=0x... lr=0x... cfsr=0x...
 * hfsr=0x... bfar=0x... mmfar=0x...", then stops: with
 * -DMNMCU_SEMIHOSTING_EXIT it ends QEMU through semihosting (QEMU must run
 * with -semihosting-config enable=on,target=native, as mnmcu sim does),
 * otherwise it spins forever.
 */
#include <stdint.h>

#include "mnmcu_qemu_uart.h"

extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[], __stack_limit__[];

extern int main(void);
extern void __libc_init_array(void);

void Reset_Handler(void);
void HardFault_Handler(void);
void mnmcu_qemu_fault_report(const uint32_t *frame, uint32_t exc_return, uint32_t ipsr);
void mnmcu_qemu_exit(int status) __attribute__((noreturn));
void _init(void);
void _fini(void);

/* Handlers an application may define; any other exception is reported as a fault. */
void NMI_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("HardFault_Handler")));

typedef void (*mnmcu_vector_t)(void);

/* The 16 system exception vectors; no external interrupt is enabled. */
__attribute__((section(".isr_vector"), used)) static const mnmcu_vector_t s_vectors[16] = {
    (mnmcu_vector_t)(uintptr_t)__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    SecureFault_Handler,
    0,
    0,
    0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)

void Reset_Handler(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* Full access to CP10 and CP11 (FPU, MVE) before any floating-point code. */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Armv8-M: a stack overflow faults (STKOF) instead of corrupting .bss. */
    __asm volatile("msr msplim, %0" ::"r"(__stack_limit__));
#endif
    /* Separate MemManage, BusFault and UsageFault reports (and SecureFault on v8-M). */
    SCB_SHCSR |= (0x7u << 16)
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
                 | (0x1u << 19)
#endif
        ;

    const uint32_t *src = __data_load__;
    for (uint32_t *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0u;
    }
    __libc_init_array();
    (void)main();
    mnmcu_qemu_exit(0);
}

/* __libc_init_array() calls these (crti.o is not linked: -nostartfiles). */
void _init(void)
{
}

void _fini(void)
{
}

/* Pass the stacked exception frame (MSP or PSP, by EXC_RETURN bit 2) to C. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "mrs r2, ipsr\n\t"
        "b mnmcu_qemu_fault_report\n\t");
}

static void put_str(const char *s)
{
    while (*s != '\0') {
        mnmcu_qemu_uart_putc(*s++);
    }
}

static void put_hex(const char *label, uint32_t value)
{
    put_str(label);
    put_str("0x");
    for (int shift = 28; shift >= 0; shift -= 4) {
        mnmcu_qemu_uart_putc("0123456789abcdef"[(value >> shift) & 0xFu]);
    }
}

static const char *fault_name(uint32_t ipsr)
{
    switch (ipsr & 0x1FFu) {
    case 2u:
        return "nmi";
    case 3u:
        return "hardfault";
    case 4u:
        return "memmanage";
    case 5u:
        return "busfault";
    case 6u:
        return "usagefault";
    case 7u:
        return "securefault";
    case 11u:
        return "svc";
    case 12u:
        return "debugmon";
    case 14u:
        return "pendsv";
    case 15u:
        return "systick";
    default:
        return "irq";
    }
}

void mnmcu_qemu_fault_report(const uint32_t *frame, uint32_t exc_return, uint32_t ipsr)
{
    (void)exc_return;
    mnmcu_qemu_uart_enable();
    put_str("\r\nmnmcu: fault=");
    put_str(fault_name(ipsr));
    put_hex(" pc=", frame[6]);
    put_hex(" lr=", frame[5]);
    put_hex(" cfsr=", SCB_CFSR);
    put_hex(" hfsr=", SCB_HFSR);
    put_hex(" bfar=", SCB_BFAR);
    put_hex(" mmfar=", SCB_MMFAR);
    put_str("\r\n");
    mnmcu_qemu_exit(1);
}

/* Stop: semihosting SYS_EXIT_EXTENDED when enabled at build time, else spin. */
void mnmcu_qemu_exit(int status)
{
#if defined(MNMCU_SEMIHOSTING_EXIT)
    /* ADP_Stopped_ApplicationExit (0x20026) with the exit status. */
    volatile uint32_t block[2] = {0x20026u, (uint32_t)status};
    register uint32_t r0 __asm("r0") = 0x20u; /* SYS_EXIT_EXTENDED */
    register volatile uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
#else
    (void)status;
#endif
    for (;;) {
        __asm volatile("wfi");
    }
}
