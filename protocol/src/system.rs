//! The seL4 system contract: how the root task, the memory server and the clients are
//! wired together. Every number both sides must agree on lives here, so the three
//! components (`root-task/`, `mem-server/sel4/`, `clients/`) cannot drift apart.
//!
//! IPC: a request is a `Call` on the server endpoint with label [`REQUEST_LABEL`] and the
//! request in message registers ([`crate::encode_request_words`]); the reply comes back the
//! same way. VM faults arrive on the same endpoint with the kernel's fault label and the
//! faulting client's badge. The root task's endpoint cap carries [`ADMIN_BADGE`]; clients
//! get badges from [`FIRST_CLIENT_BADGE`] up. Bulk data travels through a shared page set
//! per client ([`SharedLayout`]): descriptor rings of `sel4-shared-ring-buffer` plus a data
//! area that [`crate::BufRef`]s point into.
//!
//! Cap lifetimes (what makes reclaim exact): the server replies to `CreateSpace` and
//! `Clone` with a copy of the new VSpace cap, and to `ExportFrame` with a copy of a frame
//! cap (the IPC buffer, made private first). The root task must delete the client's TCB
//! and those copies before `DestroySpace`; when no client space is left the server trims
//! its pools, so every untyped it was given is back to its initial state.
//!
//! The server learns its resources from a [`ServerBoot`] record that the root task writes
//! (postcard) at [`SERVER_BOOT_VADDR`] in the server's address space; a client learns its
//! parameters from a [`ClientBoot`] record at [`CLIENT_BOOT_VADDR`] in its own.

use heapless::Vec;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Message label of a protocol request (the kernel's fault labels are small numbers).
pub const REQUEST_LABEL: u64 = 0x4d53;
/// Message label of a client's final report to the root task.
pub const REPORT_LABEL: u64 = 0x5250;
/// Message label of the server's note to the root task about an unresolved fault.
pub const UNRESOLVED_LABEL: u64 = 0x5546;
/// Label of every reply of a server that has died (panicked): the message registers hold
/// the reason as UTF-8 bytes, [`died_reason_len`] bytes packed little-endian from MR1 on
/// (MR0 is the byte length). A dead server answers every request this way and never
/// serves again.
pub const SERVER_DIED_LABEL: u64 = 0x4445;
/// Benchmark builds only (`make bench-sel4`): the administrator switches the server's
/// per-message meters on (MR0 ≠ 0) or off (MR0 = 0); the reply is empty. Any other
/// server answers it as an unknown request.
pub const BENCH_METERS_LABEL: u64 = 0x4d45;

/// Badge of the root task's (administrator's) endpoint cap to the server.
pub const ADMIN_BADGE: u32 = 1;
/// First badge (client id) the root task gives a client.
pub const FIRST_CLIENT_BADGE: u32 = 2;
/// Badge of the server's cap to the root task's report endpoint.
pub const SERVER_REPORT_BADGE: u64 = 1 << 20;
/// Set in the badge of a client's *fault* endpoint cap (the one its TCB names), never in
/// the badge of the cap it sends requests on: the server accepts VM faults only on badges
/// with this bit and requests only on badges without it. (On non-MCS seL4 the fault cap
/// lives in the client's own CSpace, so a client can still send on it; what it sends
/// there is treated as a fault of that client and can only concern its own space.)
pub const FAULT_BADGE_FLAG: u64 = 1 << 40;
/// Bits the server signals on the administrator's notification (bound to the root task's
/// TCB, so they wake its `Recv` on the report endpoint; the word read there is the OR of
/// the bits signalled since). Chosen apart from every endpoint badge the root task sees.
pub const NOTIFY_NOTE: u64 = 1 << 21;
/// The server died; the next request to it is answered with [`SERVER_DIED_LABEL`].
pub const NOTIFY_DIED: u64 = 1 << 22;
/// Badge with which the server's zeroing thread signals the notification bound to the
/// server's main thread (a batch of frames is zeroed): it wakes the main thread's `Recv`
/// on the endpoint with this badge, which no endpoint cap carries.
pub const ZEROER_DONE_BADGE: u64 = 1 << 41;
/// Priority of the server's zeroing thread: below everything, so it runs only when no
/// other thread can.
pub const ZEROER_PRIORITY: u64 = 1;

/// Length in bytes of the reason in a [`SERVER_DIED_LABEL`] message whose MR0 is `mr0`.
pub const fn died_reason_len(mr0: u64) -> usize {
    let max = (crate::IPC_BUFFER_WORDS - 1) * 8;
    if mr0 as usize > max {
        max
    } else {
        mr0 as usize
    }
}

/// log2 of the number of slots in the server's CNode (a guard makes a CPtr = slot).
/// (2^19: room for the caps of every frame the server hands out and a direct-map copy of
/// each small one.)
pub const SERVER_CNODE_BITS: u8 = 19;

/// Fixed slots in the server's CNode (the rest is described by [`ServerBoot`]).
pub mod server_slot {
    /// The server's own CNode.
    pub const CNODE: u64 = 1;
    /// The server's own VSpace (it maps client buffers and a frame window into it).
    pub const VSPACE: u64 = 2;
    /// The server's TCB.
    pub const TCB: u64 = 3;
    /// The endpoint the server receives on (requests and client faults).
    pub const ENDPOINT: u64 = 4;
    /// An ASID pool for client VSpaces.
    pub const ASID_POOL: u64 = 5;
    /// Badged endpoint to the root task's report endpoint (unresolved faults).
    pub const REPORT: u64 = 6;
    /// Where a cap sent along with a request lands.
    pub const RECV: u64 = 7;
    /// Scratch slot for a cap handed out with a reply (deleted when the next request comes).
    pub const EXPORT: u64 = 8;
    /// Badged notification cap to the administrator's notification ([`super::NOTIFY_NOTE`],
    /// [`super::NOTIFY_DIED`] are the badges of two copies: `NOTIFY` and `NOTIFY + 1`).
    pub const NOTIFY: u64 = 9;
    /// The zeroing thread's TCB (configured by the root task: the server's CSpace and
    /// VSpace, its IPC buffer at [`super::SERVER_ZEROER_IPC_VADDR`], priority
    /// [`super::ZEROER_PRIORITY`]; started by the server, which knows its entry and stack).
    pub const ZEROER_TCB: u64 = 12;
    /// Notification the zeroing thread waits on (the main thread signals a new batch).
    pub const ZEROER_WAKE: u64 = 13;
    /// Badged ([`super::ZEROER_DONE_BADGE`]) cap to the notification bound to the server's
    /// main thread, which the zeroing thread signals when a batch is done.
    pub const ZEROER_DONE: u64 = 14;
    /// Frames of the administrator's shared buffer, [`super::SharedLayout::PAGES`] of them.
    pub const ADMIN_BUFFER: u64 = 16;
}

/// Fixed slots in a client's CNode.
pub mod client_slot {
    /// Badged endpoint to the server: requests, and the TCB's fault endpoint.
    pub const SERVER: u64 = 1;
    /// Badged endpoint to the root task's report endpoint.
    pub const REPORT: u64 = 2;
    /// The TCB's fault endpoint: the server endpoint with the client's badge and
    /// [`super::FAULT_BADGE_FLAG`].
    pub const FAULT: u64 = 3;
}
/// log2 of the number of slots in a client's CNode.
pub const CLIENT_CNODE_BITS: u8 = 4;

/// Where the root task writes the [`ServerBoot`] record (one page) in the server.
pub const SERVER_BOOT_VADDR: u64 = 0x8000_0000;
/// The server's IPC buffer (same leaf table as the boot page).
pub const SERVER_IPC_BUFFER_VADDR: u64 = 0x8000_1000;
/// The IPC buffer of the server's zeroing thread (same leaf table).
pub const SERVER_ZEROER_IPC_VADDR: u64 = 0x8000_2000;
/// Two 4 KiB window pages (one 2 MiB leaf table pre-mapped by the root task) through which
/// the server zeroes, copies, reads and writes frames.
pub const SERVER_WINDOW_VADDR: u64 = 0x8020_0000;
/// Two 2 MiB window slots for large frames (no leaf table under them).
pub const SERVER_LARGE_WINDOW_VADDR: u64 = 0x8040_0000;
/// Client buffers in the server: badge `b`'s at `SERVER_BUFFERS_VADDR + b * BUFFER_STRIDE`;
/// the root task pre-maps the leaf tables of this whole region.
pub const SERVER_BUFFERS_VADDR: u64 = 0x9000_0000;
/// Distance between two clients' buffers in the server (one 2 MiB leaf table each).
pub const BUFFER_STRIDE: u64 = 0x20_0000;
/// Clients whose buffers fit the server's buffer region (badges below this).
pub const MAX_BADGES: u32 = 128;
/// The server's heap beyond its static start: the server maps 2 MiB frames of its own
/// RAM here at start; the root task creates the tables down to the 2 MiB level for
/// [`SERVER_HEAP_MAX`] bytes.
pub const SERVER_HEAP_VADDR: u64 = 0x1_0000_0000;
/// Most bytes the heap region at [`SERVER_HEAP_VADDR`] can hold (one table of 2 MiB entries).
pub const SERVER_HEAP_MAX: u64 = 1 << 30;
/// The server's direct map: the small frame in slot `s` of its CNode is mapped at
/// `SERVER_DIRECT_VADDR + s * 4 KiB` for good, so that zeroing and copying frames need no
/// mapping each time. The root task creates the tables above the leaf level for the whole
/// region (`2^SERVER_CNODE_BITS` pages); the server makes the leaf tables at start.
pub const SERVER_DIRECT_VADDR: u64 = 0x2_0000_0000;

/// A client's IPC buffer.
pub const CLIENT_IPC_BUFFER_VADDR: u64 = 0x7000_0000;
/// The client's shared buffer.
pub const CLIENT_BUFFER_VADDR: u64 = 0x7010_0000;
/// The [`ClientBoot`] record (one page, read-only).
pub const CLIENT_BOOT_VADDR: u64 = 0x7020_0000;
/// IPC buffers of a client's further threads: thread `i` (1..=[`CLIENT_MAX_THREADS`]) at
/// `CLIENT_THREAD_IPC_VADDR + (i - 1) * 4 KiB` (pinned, like the first thread's).
pub const CLIENT_THREAD_IPC_VADDR: u64 = 0x7030_0000;
/// Most further threads a client can be given.
pub const CLIENT_MAX_THREADS: u64 = 16;

/// The pages shared between a client and the server: two descriptor rings, then data.
pub struct SharedLayout;

impl SharedLayout {
    /// Pages in the whole buffer.
    pub const PAGES: u64 = 24;
    /// Byte offset of the ring the client fills (requests' bulk data going to the server).
    pub const TO_SERVER_RING: u64 = 0;
    /// Byte offset of the ring the server fills (descriptors handed back).
    pub const FROM_SERVER_RING: u64 = 4 * 4096;
    /// Byte offset and length of the data area. `BufRef` offsets count from the start of
    /// the whole buffer and must lie inside `DATA .. DATA + DATA_LEN` (else EFAULT).
    pub const DATA: u64 = 8 * 4096;
    pub const DATA_LEN: u64 = (Self::PAGES - 8) * 4096;
}

/// An untyped capability handed to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct UntypedInfo {
    pub slot: u32,
    pub paddr: u64,
    pub size_bits: u8,
    pub device: bool,
}

/// Most untypeds the server can be given.
pub const MAX_UNTYPEDS: usize = 128;

/// What the server needs to know at start.
/// Encoded with postcard into the boot page (4 KiB is plenty: at most ~20 bytes each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBoot {
    pub untypeds: Vec<UntypedInfo, MAX_UNTYPEDS>,
    /// First free slot of the server's CNode (everything above is the server's).
    pub first_free_slot: u32,
    /// Highest user address + 1 for client VSpaces (seL4_UserTop).
    pub user_top: u64,
    /// Frame budget (pages) of each client the root task creates, unless it says otherwise.
    pub default_quota: u64,
    /// Secret seed for the server's randomised structures (no client can learn it).
    pub seed: u64,
}

/// What a client needs to know at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct ClientBoot {
    /// This client's badge (its id at the server).
    pub badge: u32,
    /// Which scenario program to run, and an argument (role, peer, key…).
    pub scenario: u32,
    pub arg: u64,
    pub peer: u32,
}

/// A client's report to the root task: `Call` on [`client_slot::REPORT`] with label
/// [`REPORT_LABEL`], MR0 = one of these codes, MR1 = a step or detail number, MR2.. = values.
/// The root task answers a [`REPORT_STEP`] when the client may go on; it never answers a
/// final [`REPORT_PASS`] / [`REPORT_FAIL`] (the client stays blocked until it is destroyed).
pub const REPORT_PASS: u64 = 0;
pub const REPORT_FAIL: u64 = 1;
pub const REPORT_STEP: u64 = 2;

/// Unresolved-fault note from the server: label [`UNRESOLVED_LABEL`], MR0 = client badge,
/// MR1 = fault address, MR2 = reason (`UNRESOLVED_*`). Sent without blocking.
pub const UNRESOLVED_NO_AREA: u64 = 1;
pub const UNRESOLVED_DENIED: u64 = 2;
pub const UNRESOLVED_NO_MEMORY: u64 = 3;
pub const UNRESOLVED_OTHER: u64 = 4;
/// The page's pager answered `Fail`, or is gone.
pub const UNRESOLVED_PAGER: u64 = 5;
