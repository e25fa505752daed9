# seL4 kernel configuration for QEMU's aarch64 'virt' machine with a Cortex-A57
# (cmake -C initial cache). QEMU runs it with -machine virt,virtualization=on.
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

set(KernelArch arm CACHE STRING "" FORCE)
set(KernelSel4Arch aarch64 CACHE STRING "" FORCE)
set(KernelPlatform qemu-arm-virt CACHE STRING "" FORCE)
set(ARM_CPU cortex-a57 CACHE STRING "" FORCE)
# The kernel runs at EL2 (as a hypervisor), which is where QEMU with virtualization=on
# starts the loader. Note: with this option seL4's qemu-arm-virt device tree reserves the
# first 512 MiB of RAM (0x40000000..0x60000000) for a guest VM, so of QEMU_MEMORY=2048 only
# 1.5 GiB (0x60000000..0xc0000000) reaches user level as untyped memory.
set(KernelArmHypervisorSupport ON CACHE BOOL "" FORCE)
# Lets threads holding the SMC cap make SMC calls (e.g. PSCI) through the kernel.
set(KernelAllowSMCCalls ON CACHE BOOL "" FORCE)
# User-level reads of the virtual counter (CNTVCT_EL0, CNTFRQ_EL0): the time of day of
# C programs on picolibc (clients/libc/shim.c).
set(KernelArmExportVCNTUser ON CACHE BOOL "" FORCE)
