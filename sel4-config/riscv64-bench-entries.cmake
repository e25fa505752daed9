# The benchmark kernel that logs every kernel entry (`make bench-sel4` counts kernel
# entries per operation with it; its instruction counts are not used).
include("${CMAKE_CURRENT_LIST_DIR}/riscv64-bench.cmake")
set(KernelBenchmarks track_kernel_entries CACHE STRING "" FORCE)
