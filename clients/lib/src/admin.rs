//! Administrator requests (the root task): acting on another client's space, creating,
//! cloning and destroying spaces, exporting a frame cap. The server refuses them (EPERM)
//! to anybody but the administrator. Neighbours: `lib.rs`, `transport.rs`.

use crate::*;

impl Client {
    // --- Administration (root task only) -----------------------------------------------

    /// Create the address space of client `client` (owner `uid`/`gid`, `quota_pages`).
    pub fn create_space(
        &mut self,
        client: u32,
        uid: u32,
        gid: u32,
        quota_pages: u64,
    ) -> Result<(), Errno> {
        self.unit(&Request::CreateSpace {
            client,
            uid,
            gid,
            quota_pages,
        })
    }

    /// Destroy the address space of client `client`.
    pub fn destroy_space(&mut self, client: u32) -> Result<(), Errno> {
        self.unit(&Request::DestroySpace { client })
    }

    /// Create client `child`'s address space as a copy-on-write clone of `source`.
    pub fn clone_space(&mut self, source: Target, child: u32, quota_pages: u64) -> Result<(), Errno> {
        self.unit(&Request::Clone {
            source,
            child,
            quota_pages,
        })
    }

    /// Ask for a copy of the frame cap behind the page at `addr` of `target`. The cap comes
    /// with the reply: set the receive slot of this thread's IPC buffer first, and check
    /// [`Client::last_reply_caps`] afterwards.
    pub fn export_frame(&mut self, target: Target, addr: u64) -> Result<(), Errno> {
        self.unit(&Request::ExportFrame { target, addr })
    }
}
