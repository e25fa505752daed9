# Kernel settings shared by every platform of this project. Included by the per-platform
# files (riscv64.cmake, aarch64.cmake), which are passed to CMake as an initial cache:
#   cmake -G Ninja -C sel4-config/<arch>.cmake ... -S <seL4 sources> -B <build dir>
# Values are FORCEd so that they win over anything cached earlier in the same build dir.

# Not the configuration of seL4's proofs: lets us use the options below.
set(KernelVerificationBuild OFF CACHE BOOL "" FORCE)
# Debug kernel with printing: the root task writes to the serial port through
# seL4_DebugPutChar (sel4::debug_println!).
set(KernelDebugBuild ON CACHE BOOL "" FORCE)
set(KernelPrinting ON CACHE BOOL "" FORCE)
# Classic (non-MCS) kernel on two cores: scenario `threads` runs client threads on both.
# QEMU gets the same -smp (the Makefile reads it from the kernel's configuration). The
# benchmark kernels (bench.cmake) use one core: deterministic counts.
set(KernelIsMCS OFF CACHE BOOL "" FORCE)
set(KernelMaxNumNodes 2 CACHE STRING "" FORCE)
# A root CNode of 2^20 slots: room for the caps of all frames the memory server hands out.
set(KernelRootCNodeSizeBits 20 CACHE STRING "" FORCE)
# RAM of the QEMU machine, in MiB. The kernel build asks QEMU for the device tree of a
# machine with this much memory, so the QEMU command line must use the same -m.
set(QEMU_MEMORY 2048 CACHE STRING "" FORCE)
