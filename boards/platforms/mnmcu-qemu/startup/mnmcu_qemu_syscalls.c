/*
 * The few system calls newlib-nano needs on the mnmcu-qemu platform:
 * stdout/stderr go to UART0, there is no file system, and the heap is the
 * linker script's .heap section (0 bytes unless __heap_size is set), so
 * malloc fails cleanly rather than growing into the stack.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mnmcu_qemu_uart.h"

extern char __heap_start__[], __heap_end__[];
extern void mnmcu_qemu_exit(int status) __attribute__((noreturn));

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
void *_sbrk(ptrdiff_t increment);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
void _exit(int status);
int _kill(int pid, int sig);
int _getpid(void);

int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    mnmcu_qemu_uart_enable();
    for (int i = 0; i < len; i++) {
        mnmcu_qemu_uart_putc(buf[i]);
    }
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0; /* end of file: the console is read through the HAL, not stdio */
}

void *_sbrk(ptrdiff_t increment)
{
    static char *s_break = __heap_start__;
    if (increment < 0 ? (__heap_start__ - s_break) > increment
                      : (__heap_end__ - s_break) < increment) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *previous = s_break;
    s_break += increment;
    return previous;
}

int _close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

void _exit(int status)
{
    mnmcu_qemu_exit(status);
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
