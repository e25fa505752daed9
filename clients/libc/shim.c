/*
 * The OS under picolibc for client components of the seL4 memory server: everything
 * picolibc (Debian's package, unmodified) expects from an operating system, in one file.
 * Built by clients/libc-client/build.rs and linked with picolibc's libc.a and mem-capi.
 *
 * - Memory: malloc/calloc/realloc/free are mem-capi's (mem-heap over the server, one heap
 *   per process); picolibc's own allocator is never linked. The heap is put in strict
 *   commit mode at start (libc_shim_init): memory it maps is populated at once, so an
 *   exhausted quota shows as malloc returning NULL (errno ENOMEM), never as a fault the
 *   server cannot resolve. aligned_alloc/posix_memalign/memalign are not provided: a
 *   program that needs them fails to link rather than getting a wrong alignment.
 * - Console: stdout and stderr write through the kernel's debug console (seL4's
 *   DebugPutChar, via the Rust side's libc_client_putc); stdin reads end of file.
 * - errno: picolibc's own, thread-local (local-exec TLS in the process's TLS block, set up
 *   by the Rust runtime for every thread).
 * - Time: gettimeofday/time/clock from the platform counter (aarch64 CNTVCT_EL0, which the
 *   kernel exports to user level; riscv64 `rdtime`), counted from LIBC_SHIM_EPOCH.
 * - Ending: exit/_exit/abort end the component with a report to the root task
 *   (libc_client_exit: FAIL with the status), as a process that dies would be reported.
 * - Files: there are none. open fails with ENOENT; read/close/lseek with EBADF; write
 *   goes to the console for descriptors 1 and 2 (picolibc's fopen, which Lua's auxiliary
 *   library reaches, needs these five). No processes or signals are needed by the
 *   programs we run, so none are provided: a program that needs them fails to link.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mem_server.h"
#include "shim.h"

/* Provided by the Rust side of the component (clients/libc-client/src/main.rs). */
extern void libc_client_putc(uint8_t c);
extern _Noreturn void libc_client_exit(int status);

/* 2026-01-01T00:00:00Z: the time of day the counter starts from (there is no RTC driver). */
#define LIBC_SHIM_EPOCH 1767225600ULL

static int console_put(char c, FILE *f)
{
    (void)f;
    libc_client_putc((uint8_t)c);
    return (unsigned char)c;
}

static int console_get(FILE *f)
{
    (void)f;
    return EOF;
}

static FILE console = FDEV_SETUP_STREAM(console_put, console_get, NULL, _FDEV_SETUP_RW);
FILE *const stdin = &console;
FILE *const stdout = &console;
FILE *const stderr = &console;

void libc_shim_init(void)
{
    mem_heap_strict(1);
}

/* --- time ----------------------------------------------------------------------------- */

static uint64_t counter(void)
{
    uint64_t v;
#if defined(__aarch64__)
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
#elif defined(__riscv)
    __asm__ volatile("rdtime %0" : "=r"(v));
#else
#error "no counter for this architecture"
#endif
    return v;
}

static uint64_t counter_hz(void)
{
#if defined(__aarch64__)
    uint64_t f;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(f));
    return f ? f : 62500000;
#else
    return 10000000; /* QEMU virt's timebase-frequency */
#endif
}

uint64_t libc_shim_ns(void)
{
    uint64_t c = counter(), hz = counter_hz();
    return (c / hz) * 1000000000ULL + (c % hz) * 1000000000ULL / hz;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    if (tv) {
        uint64_t ns = libc_shim_ns();
        tv->tv_sec = (time_t)(LIBC_SHIM_EPOCH + ns / 1000000000ULL);
        tv->tv_usec = (suseconds_t)(ns % 1000000000ULL / 1000);
    }
    return 0;
}

/* Processor time: this component has the processor for as long as it runs. */
clock_t clock(void)
{
    return (clock_t)(libc_shim_ns() / (1000000000ULL / CLOCKS_PER_SEC));
}

/* --- ending --------------------------------------------------------------------------- */

void _exit(int status)
{
    libc_client_exit(status);
}

void abort(void)
{
    libc_client_exit(134); /* as a shell reports SIGABRT */
}

/* --- atomics ------------------------------------------------------------------------------ */

#if defined(__aarch64__)
/* picolibc's aarch64 package is built with Linux's gcc, whose default is outline atomics:
 * its stdio calls libgcc's __aarch64_swp2_relax, whose runtime CPU check needs Linux's
 * auxiliary vector. Ours is the plain exclusive-load/store swap (this file is compiled
 * with -mno-outline-atomics). */
uint16_t __aarch64_swp2_relax(uint16_t v, volatile uint16_t *p);
uint16_t __aarch64_swp2_relax(uint16_t v, volatile uint16_t *p)
{
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
#endif

/* --- files: none (picolibc's fopen/freopen, reached from Lua's luaL_loadfilex, need these) */

int open(const char *path, int flags, ...)
{
    (void)path;
    (void)flags;
    errno = ENOENT;
    return -1;
}

int close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

ssize_t read(int fd, void *buf, size_t n)
{
    (void)fd;
    (void)buf;
    (void)n;
    errno = EBADF;
    return -1;
}

/* Descriptors 1 and 2 are the console. */
ssize_t write(int fd, const void *buf, size_t n)
{
    if (fd == 1 || fd == 2) {
        const char *p = buf;
        for (size_t i = 0; i < n; i++)
            libc_client_putc((uint8_t)p[i]);
        return (ssize_t)n;
    }
    errno = EBADF;
    return -1;
}

off_t lseek(int fd, off_t off, int whence)
{
    (void)fd;
    (void)off;
    (void)whence;
    errno = EBADF;
    return -1;
}
