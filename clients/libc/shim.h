/*
 * The OS shim under picolibc (shim.c) as the C programs of libc-client see it.
 */
#ifndef LIBC_SHIM_H
#define LIBC_SHIM_H
#include <stdint.h>

/* Put the process's heap in strict commit mode; call first. */
void libc_shim_init(void);
/* Nanoseconds since the platform counter started. */
uint64_t libc_shim_ns(void);

#endif
