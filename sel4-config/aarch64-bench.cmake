# Benchmark kernel for QEMU aarch64 'virt' (`make bench-sel4`): the platform settings, the
# benchmark settings, and user-level access to the PMU (the cycle counter, which counts
# guest instructions under -icount) and to the virtual counter.
include("${CMAKE_CURRENT_LIST_DIR}/aarch64.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/bench.cmake")
set(KernelArmExportPMUUser ON CACHE BOOL "" FORCE)
set(KernelArmExportVCNTUser ON CACHE BOOL "" FORCE)
