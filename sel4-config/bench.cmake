# Settings of the benchmark kernels (`make bench-sel4`), on top of a platform file: a
# release kernel (still printing, for the BENCH lines), the IPC and exception fastpaths,
# one core (QEMU runs it with -smp 1 -icount shift=0,sleep=off: deterministic counts).
set(KernelDebugBuild OFF CACHE BOOL "" FORCE)
set(KernelPrinting ON CACHE BOOL "" FORCE)
set(KernelFastpath ON CACHE BOOL "" FORCE)
set(KernelExceptionFastpath ON CACHE BOOL "" FORCE)
set(KernelMaxNumNodes 1 CACHE STRING "" FORCE)
