//! Argument types carried inside [`crate::Request`] variants.
//!
//! Small enums and checked flag sets that describe *how* an operation is to be done: which
//! address space it acts on ([`Target`]), where bulk data lies ([`BufRef`]), how `mmap`
//! chooses an address ([`Placement`]), sharing and backing of a mapping ([`Share`],
//! [`Backing`]), `msync` flags ([`MsyncFlags`]) and the System V shared-memory arguments
//! ([`ShmKey`], [`ShmCmd`]). Flag sets decode only when valid, like [`crate::Prot`]; raw
//! numbers (addresses, lengths, ids) are left to the server to validate.

use postcard::experimental::max_size::MaxSize;
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The address space an operation acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub enum Target {
    /// The sender's own address space (the usual case).
    #[default]
    Own,
    /// The address space of client `id`. Privileged: the server only accepts this from a
    /// sender with authority over that client (e.g. the root task or a loader).
    Client(u32),
}

/// A byte range inside the sender's shared buffer (the frame(s) it shares with the server
/// for bulk data). The data itself is never part of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub struct BufRef {
    /// Byte offset from the start of the shared buffer.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

impl BufRef {
    /// A range of `len` bytes starting at `offset`.
    pub const fn new(offset: u32, len: u32) -> BufRef {
        BufRef { offset, len }
    }

    /// One past the last byte, or `None` if `offset + len` overflows.
    pub const fn end(self) -> Option<u32> {
        self.offset.checked_add(self.len)
    }

    /// Whether the range lies within a shared buffer of `buffer_len` bytes.
    pub const fn fits_in(self, buffer_len: u64) -> bool {
        match self.end() {
            Some(end) => end as u64 <= buffer_len,
            None => false,
        }
    }
}

/// How `mmap` uses the requested address (`MAP_FIXED`, `MAP_FIXED_NOREPLACE` in Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub enum Placement {
    /// The server picks any free address; the requested address is ignored.
    #[default]
    Anywhere,
    /// Use the requested address if the range is free, else pick another one.
    Hint,
    /// Exactly at the requested address, replacing whatever is mapped there.
    Fixed,
    /// Exactly at the requested address; fail with `EEXIST` if anything is mapped there.
    FixedNoReplace,
}

/// Whether writes to a mapping are private (copy-on-write) or shared (`MAP_PRIVATE` /
/// `MAP_SHARED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub enum Share {
    /// Writes are private to this mapping (copy-on-write for backed mappings and clones).
    #[default]
    Private,
    /// Writes are visible to every mapping of the same memory.
    Shared,
}

/// What a mapping's contents come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub enum Backing {
    /// Zero-filled memory (`MAP_ANONYMOUS`).
    #[default]
    Anonymous,
    /// The backend object `id` (made by `BackendCreate`), starting at byte `offset`.
    Backend { id: u32, offset: u64 },
    /// Private memory whose pages the pager `id` (made by `PagerCreate`) supplies on first
    /// touch: a fault on a page not present goes to the pager (`PagerWait`), which answers
    /// with `PagerReply`. Private mappings only.
    Pager { id: u32 },
}

/// A pager's answer to one fault (`Request::PagerReply`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum PagerAnswer {
    /// The page's contents: one page (4 KiB) in the pager's shared buffer (like
    /// `UFFDIO_COPY`).
    Copy(BufRef),
    /// A page of zeroes (like `UFFDIO_ZEROPAGE`).
    Zero,
    /// No page: the faulting thread is reported as an unresolved fault (reason
    /// `UNRESOLVED_PAGER`) and stays stopped.
    Fail,
}

/// `msync` flags, with the Linux bit values (`MS_ASYNC`, `MS_INVALIDATE`, `MS_SYNC`).
///
/// Checked: only those three bits, and never `ASYNC` together with `SYNC` (which Linux
/// rejects with `EINVAL`). The empty set is valid. Decoding enforces the same rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MsyncFlags(u8);

impl MsyncFlags {
    /// No flags.
    pub const NONE: MsyncFlags = MsyncFlags(0);
    /// `MS_ASYNC` (1): schedule the write-back, do not wait.
    pub const ASYNC: MsyncFlags = MsyncFlags(1);
    /// `MS_INVALIDATE` (2): invalidate other mappings of the same memory.
    pub const INVALIDATE: MsyncFlags = MsyncFlags(2);
    /// `MS_SYNC` (4): write back and wait for completion.
    pub const SYNC: MsyncFlags = MsyncFlags(4);

    const KNOWN: u8 = 1 | 2 | 4;

    /// Checked constructor: `None` for unknown bits or `ASYNC | SYNC`.
    pub const fn from_bits(bits: u8) -> Option<MsyncFlags> {
        let both = MsyncFlags::ASYNC.0 | MsyncFlags::SYNC.0;
        if bits & !MsyncFlags::KNOWN != 0 || bits & both == both {
            None
        } else {
            Some(MsyncFlags(bits))
        }
    }

    /// Checked conversion from the Linux `flags` argument of `msync`.
    pub const fn from_linux(flags: i32) -> Option<MsyncFlags> {
        if flags < 0 || flags > u8::MAX as i32 {
            None
        } else {
            MsyncFlags::from_bits(flags as u8)
        }
    }

    /// The raw bits (Linux values).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: MsyncFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both flag sets, or `None` if the union is invalid (`ASYNC | SYNC`).
    pub const fn union(self, other: MsyncFlags) -> Option<MsyncFlags> {
        MsyncFlags::from_bits(self.0 | other.0)
    }

    /// `MS_ASYNC` is set.
    pub const fn is_async(self) -> bool {
        self.0 & MsyncFlags::ASYNC.0 != 0
    }

    /// `MS_SYNC` is set.
    pub const fn is_sync(self) -> bool {
        self.0 & MsyncFlags::SYNC.0 != 0
    }

    /// `MS_INVALIDATE` is set.
    pub const fn invalidates(self) -> bool {
        self.0 & MsyncFlags::INVALIDATE.0 != 0
    }
}

impl Serialize for MsyncFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for MsyncFlags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bits = u8::deserialize(deserializer)?;
        MsyncFlags::from_bits(bits).ok_or_else(|| {
            D::Error::invalid_value(
                Unexpected::Unsigned(u64::from(bits)),
                &"msync flags within ASYNC | INVALIDATE | SYNC, not ASYNC | SYNC",
            )
        })
    }
}

impl MaxSize for MsyncFlags {
    const POSTCARD_MAX_SIZE: usize = u8::POSTCARD_MAX_SIZE;
}

/// The key argument of `shmget`.
///
/// The client library maps Linux `IPC_PRIVATE` (0) to [`ShmKey::Private`]; on the wire
/// `Key(n)` is an ordinary key for every `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum ShmKey {
    /// `IPC_PRIVATE`: always a new segment, not findable by key.
    Private,
    /// A key shared between cooperating clients.
    Key(u32),
}

impl ShmKey {
    /// From a Linux `key_t` (`0` is `IPC_PRIVATE`).
    pub const fn from_linux(key: i32) -> ShmKey {
        if key == 0 {
            ShmKey::Private
        } else {
            ShmKey::Key(key as u32)
        }
    }

    /// The key, if not private.
    pub const fn key(self) -> Option<u32> {
        match self {
            ShmKey::Private => None,
            ShmKey::Key(k) => Some(k),
        }
    }
}

/// The command of `shmctl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum ShmCmd {
    /// `IPC_STAT`: replied with [`crate::Value::ShmStat`].
    Stat,
    /// `IPC_RMID`: mark for removal; the segment goes away after the last detach.
    Remove,
    /// `IPC_SET`: change owner and permission bits (only the low 9 bits of `mode` count).
    Set { uid: u32, gid: u32, mode: u16 },
}
