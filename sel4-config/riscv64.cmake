# seL4 kernel configuration for QEMU's riscv64 'virt' machine (cmake -C initial cache).
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

set(KernelArch riscv CACHE STRING "" FORCE)
set(KernelSel4Arch riscv64 CACHE STRING "" FORCE)
set(KernelPlatform qemu-riscv-virt CACHE STRING "" FORCE)
