//! The seL4 root task: the first and only thread the kernel starts.
//!
//! For now it reports what the kernel handed over (untyped memory, free slots of its CNode)
//! on the debug console, prints the end marker that the QEMU harness waits for
//! (`scripts/qemu-run.sh`), and idles.

#![no_std]
#![no_main]

use sel4_root_task::{root_task, Never};

/// Printed last; `scripts/qemu-run.sh` stops QEMU when it sees this line.
const DONE_MARKER: &str = "SIMULATE-DONE";

const ARCH: &str = if cfg!(target_arch = "riscv64") {
    "riscv64"
} else if cfg!(target_arch = "aarch64") {
    "aarch64"
} else {
    "unknown"
};

#[root_task]
fn main(bootinfo: &sel4::BootInfoPtr) -> sel4::Result<Never> {
    sel4::debug_println!("root-task: hello from {ARCH}");

    let untypeds = bootinfo.untyped_list();
    let empty = bootinfo.empty().range();
    sel4::debug_println!(
        "root-task: untypeds: {}, empty slots: {}..{}",
        untypeds.len(),
        empty.start,
        empty.end,
    );

    let (mut ram_caps, mut ram_bytes) = (0usize, 0u64);
    for desc in untypeds.iter().filter(|desc| !desc.is_device()) {
        ram_caps += 1;
        ram_bytes += 1u64 << desc.size_bits();
    }
    sel4::debug_println!(
        "root-task: RAM untypeds: {} ({} KiB), device untypeds: {}",
        ram_caps,
        ram_bytes >> 10,
        untypeds.len() - ram_caps,
    );

    sel4::debug_println!("{DONE_MARKER}");
    sel4::init_thread::suspend_self()
}
