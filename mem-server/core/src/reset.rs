//! reset: remove every user area of a client (axmem's `unmap_user_areas`), keeping the
//! address space itself and its *system* areas (`Area::system`: the pages the
//! administrator exported — the threads' IPC buffers, which the kernel goes on using, and
//! the boot page — and the shared buffer, which the server uses), so that the administrator
//! can load a new program into it and restart its thread (an exec). What the client had is
//! gone with its areas: private pages, attachments (a segment marked for removal goes with
//! its last one), mappings of shared objects and backends. Page tables stay (charged,
//! reused). Removing whole areas splits nothing, so Reset needs no memory and cannot fail
//! on the budget. Destroying a space clears every area (`clear_space`).
//! Neighbours: `munmap.rs` (`remove_range`), `pin.rs`, `lifecycle.rs` (`destroy_space`).

use mem_protocol::Errno;

use crate::kernel::Kernel;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Unmap all user areas of `client` but its system areas.
    pub fn reset(&mut self, client: u32) -> Result<(), Errno> {
        self.settle();
        let mut at = self.spaces.get(&client).ok_or(Errno::Srch)?.areas.user_range().0;
        loop {
            let sp = self.spaces.get(&client).ok_or(Errno::Srch)?;
            let Some((s, e)) = sp.areas.iter_from(at).find(|(_, a)| !a.system).map(|(s, a)| (s, a.end)) else { break };
            self.remove_range(client, s, e)?;
            at = e;
        }
        Ok(())
    }
}

/// Remove all areas (and so all pages) of `client`.
pub(crate) fn clear_space<K: Kernel>(core: &mut MemCore<K>, client: u32) -> Result<(), Errno> {
    let (lo, hi) = core.spaces.get(&client).ok_or(Errno::Srch)?.areas.user_range();
    core.remove_range(client, lo, hi)
}
