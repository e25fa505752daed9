//! A heap for the whole process: [`ServerHeap`] is `mem_heap::Heap` over [`ServerPages`],
//! which maps (private anonymous read-write memory, faulted in lazily) and unmaps through
//! the server's `Mmap`/`Munmap`, from whichever thread allocates.
//!
//! ```ignore
//! #[global_allocator]
//! static HEAP: ServerHeap = ServerHeap::new(ServerPages::new(client_slot::SERVER));
//! ```
//!
//! Out of memory is an allocation failure, never a fault the server cannot resolve:
//! dlmalloc's segments (below [`HEAP_LARGE`]) are populated when mapped (`Populate`; on
//! `ENOMEM` they are unmapped again and the allocation fails), and large blocks, which stay
//! lazy (a large `calloc` costs nothing until used), are refused up front when the client's
//! remaining quota could never back them, like Linux's heuristic overcommit (one `Stats`
//! round trip per large block). A large block can still meet the quota at a later touch if
//! the client spends its quota elsewhere in between, as overcommitted memory can on Linux.
//! In strict commit mode ([`set_strict_commit`], for C runtimes whose programs expect
//! `malloc` to return null when memory runs out: SQLite, Lua) large blocks are populated
//! when mapped too, so no touch of heap memory can ever meet the quota.
//!
//! What a heap of this kind costs the client is charged to it like any mapping: pages
//! when first touched, areas in its metadata budget. When the server refuses (quota,
//! memory), the allocation fails, [`ServerPages::out_of_memory`] prints one line saying
//! why, and Rust's alloc-error path (or the C caller's null check) takes over.
//! Neighbours: `mem-heap` (the policy), `transport.rs` ([`crate::call_plain`]).

use mem_protocol::{Backing, Placement, Prot, Request, Share, Target, Value};

use core::sync::atomic::{AtomicBool, Ordering};

use crate::transport::call_plain;

/// Large blocks populated when mapped too (see the module's documentation).
static STRICT_COMMIT: AtomicBool = AtomicBool::new(false);

/// Strict commit for every [`ServerPages`] of this process: from now on every block the
/// heap maps is populated at once, so an exhausted quota fails the allocation (null)
/// instead of a later touch.
pub fn set_strict_commit(on: bool) {
    STRICT_COMMIT.store(on, Ordering::Relaxed);
}

/// The heap of a process whose memory the server provides.
pub type ServerHeap = mem_heap::Heap<ServerPages>;
pub use mem_heap::{Heap, HeapStats, Pages, LARGE as HEAP_LARGE, PAGE as HEAP_PAGE};

/// Pages from the memory server through the endpoint cap at `server` in this CSpace.
#[derive(Clone, Copy, Debug)]
pub struct ServerPages {
    server: sel4::cap::Endpoint,
}

impl ServerPages {
    /// A provider calling the server through the endpoint cap at slot `server` (the
    /// client's badged cap, `client_slot::SERVER` in processes the root task starts).
    pub const fn new(server: u64) -> ServerPages {
        ServerPages { server: sel4::cap::Endpoint::from_bits(server) }
    }
}

impl Pages for ServerPages {
    fn map(&self, len: usize) -> Result<usize, i32> {
        // Like Linux's default (heuristic) overcommit: a large mapping that the client's
        // quota could never back is refused at once, rather than handed out to fail at
        // the first touch beyond the quota. Small ones (dlmalloc's segments) are not
        // checked: the quota stops them at their first touch anyway.
        let strict = STRICT_COMMIT.load(Ordering::Relaxed);
        if len >= mem_heap::LARGE && !strict {
            let stats = call_plain(self.server, &Request::Stats { target: Target::Own });
            if let Ok(Value::Stats(s)) = stats {
                let room = s.quota_pages.saturating_sub(s.charged_pages);
                if (len as u64).div_ceil(mem_heap::PAGE as u64) > room {
                    return Err(mem_protocol::Errno::NoMem.linux());
                }
            }
        }
        let req = Request::Mmap {
            target: Target::Own,
            addr: 0,
            len: len as u64,
            prot: Prot::RW,
            max_prot: Prot::RW,
            placement: Placement::Anywhere,
            share: Share::Private,
            backing: Backing::Anonymous,
            populate: false,
        };
        let addr = match call_plain(self.server, &req) {
            Ok(Value::Addr(a)) => a,
            Ok(_) => return Err(mem_protocol::Errno::Inval.linux()),
            Err(e) => return Err(e.errno().linux()),
        };
        // dlmalloc's segments are populated now: it writes its own headers into them and
        // hands their bytes out piecemeal, so a page the quota cannot back must fail here
        // (null from the allocator) rather than at some later touch (an unresolved fault).
        if len < mem_heap::LARGE || strict {
            let populate = Request::Populate { target: Target::Own, addr, len: len as u64 };
            if let Err(e) = call_plain(self.server, &populate) {
                let _ = call_plain(self.server, &Request::Munmap { target: Target::Own, addr, len: len as u64 });
                return Err(e.errno().linux());
            }
        }
        usize::try_from(addr).map_err(|_| mem_protocol::Errno::Fault.linux())
    }

    fn unmap(&self, addr: usize, len: usize) -> Result<(), i32> {
        let req = Request::Munmap { target: Target::Own, addr: addr as u64, len: len as u64 };
        match call_plain(self.server, &req) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.errno().linux()),
        }
    }

    fn out_of_memory(&self, bytes: usize, errno: i32) {
        let why = match errno {
            12 => "ENOMEM: the client's page quota or metadata budget, or the server's memory",
            38 => "ENOSYS: the memory server is dead",
            _ => "the server refused the mapping",
        };
        sel4::debug_println!("mem-heap: out of memory: {bytes} bytes: errno {errno} ({why})");
    }
}
