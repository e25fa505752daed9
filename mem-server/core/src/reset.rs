//! reset: remove every user area of a client (axmem's `unmap_user_areas`), keeping the
//! address space itself; also the first step of destroying a space.
//! Neighbours: `munmap.rs` (`remove_range`), `lib.rs` (`destroy_space`).

use mem_protocol::Errno;

use crate::kernel::Kernel;
use crate::MemCore;

impl<K: Kernel> MemCore<K> {
    /// Unmap all user areas of `client`.
    pub fn reset(&mut self, client: u32) -> Result<(), Errno> {
        self.settle();
        clear_space(self, client)
    }
}

/// Remove all areas (and so all pages) of `client`.
pub(crate) fn clear_space<K: Kernel>(core: &mut MemCore<K>, client: u32) -> Result<(), Errno> {
    let (lo, hi) = core.spaces.get(&client).ok_or(Errno::Srch)?.areas.user_range();
    core.remove_range(client, lo, hi)
}
