//! reset: remove every user area of a client (axmem's `unmap_user_areas`), keeping the
//! address space itself and its *system* areas (`Area::system`: the pages the
//! administrator exported — the threads' IPC buffers, which the kernel goes on using, and
//! the boot page — and the shared buffer, which the server uses), so that the administrator
//! can load a new program into it and restart its thread (an exec). What the client had is
//! gone with its areas: private pages, attachments (a segment marked for removal goes with
//! its last one), mappings of shared objects and backends. Page tables stay (charged,
//! reused). Removing whole areas splits nothing, so Reset needs no memory and cannot fail
//! on the budget. It goes in bounded steps, the last areas first (`step.rs`).
//! Neighbours: `step.rs` (`reset_step`), `munmap.rs` (`remove_range`), `pin.rs`,
//! `lifecycle.rs` (destroying a space clears every area the same way).

use mem_protocol::Errno;

use crate::kernel::Kernel;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Unmap all user areas of `client` but its system areas: every step
    /// (`step.rs`, `reset_step`) until done.
    pub fn reset(&mut self, client: u32) -> Result<(), Errno> {
        crate::step::to_the_end(|| self.reset_step(client))
    }
}

