# Benchmark kernel for QEMU riscv64 'virt' (`make bench-sel4`): the platform settings and
# the benchmark settings (user level reads `instret` directly).
include("${CMAKE_CURRENT_LIST_DIR}/riscv64.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/bench.cmake")
