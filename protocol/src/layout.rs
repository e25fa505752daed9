//! The `Layout` request's answer: a client's areas, like `/proc/self/maps`.
//!
//! The reply carries a [`LayoutInfo`] (highest mapped address, how many areas there are,
//! how many entries were written, where to continue); the entries themselves are written
//! into the sender's shared buffer at the request's `BufRef`, [`LayoutEntry::BYTES`] bytes
//! each in the fixed little-endian form of [`LayoutEntry::to_bytes`] (so that a C caller can
//! read them as a plain struct). A long layout is read page by page: the next request starts
//! `from` the `next` address of the previous answer. Users: the client library (`layout`),
//! allocators and debuggers; the server side is `mem-core`'s `layout.rs`.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use crate::prot::Prot;

/// What backs an area (the `kind` byte of a [`LayoutEntry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AreaKindCode {
    /// Private anonymous memory (`mmap` anonymous, `Region`).
    Anon = 0,
    /// Shared memory: a System V segment, shared anonymous memory, a shared backend mapping.
    Shared = 1,
    /// A private mapping of a backend object.
    PrivateBackend = 2,
    /// Device memory (`MapPhys`).
    Phys = 3,
    /// Memory a pager supplies.
    Pager = 4,
    /// The object behind the area is gone (pages already private stay).
    Dead = 5,
}

impl AreaKindCode {
    /// The kind a byte names, if any.
    pub const fn from_u8(b: u8) -> Option<AreaKindCode> {
        Some(match b {
            0 => AreaKindCode::Anon,
            1 => AreaKindCode::Shared,
            2 => AreaKindCode::PrivateBackend,
            3 => AreaKindCode::Phys,
            4 => AreaKindCode::Pager,
            5 => AreaKindCode::Dead,
            _ => return None,
        })
    }
}

/// One area of an address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayoutEntry {
    /// First address of the area (page aligned).
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// Its protection now.
    pub prot: Prot,
    /// The most `mprotect` may give it.
    pub max_prot: Prot,
    /// What backs it.
    pub kind: AreaKindCode,
    /// Pages of it present (mapped) now.
    pub resident_pages: u32,
}

impl LayoutEntry {
    /// Bytes of one entry in the shared buffer.
    pub const BYTES: usize = 24;

    /// The wire form: `start` (u64 LE), `end` (u64 LE), `prot` (u8, `PROT_*` bits),
    /// `max_prot` (u8), `kind` (u8, [`AreaKindCode`]), a zero byte, `resident_pages` (u32 LE).
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut b = [0u8; Self::BYTES];
        b[0..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..16].copy_from_slice(&self.end.to_le_bytes());
        b[16] = self.prot.bits();
        b[17] = self.max_prot.bits();
        b[18] = self.kind as u8;
        b[20..24].copy_from_slice(&self.resident_pages.to_le_bytes());
        b
    }

    /// An entry from its wire form; `None` if a field does not decode.
    pub fn from_bytes(b: &[u8]) -> Option<LayoutEntry> {
        if b.len() < Self::BYTES {
            return None;
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Some(LayoutEntry {
            start: word(0),
            end: word(8),
            prot: Prot::from_bits(b[16])?,
            max_prot: Prot::from_bits(b[17])?,
            kind: AreaKindCode::from_u8(b[18])?,
            resident_pages: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
        })
    }
}

/// The answer to `Layout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize, MaxSize)]
pub struct LayoutInfo {
    /// One past the highest address of any area (0 when there is none).
    pub max_va: u64,
    /// Areas in the address space.
    pub areas: u64,
    /// Entries written into the buffer by this answer.
    pub written: u32,
    /// Where the next request should start (`from`), or 0 when this answer reached the
    /// last area.
    pub next: u64,
}
