//! Protection bits and the other small value types shared by requests, replies and the core.
//!
//! These are the *checked* forms: [`Prot::from_bits`] rejects unknown bits, and so does
//! `Prot`'s `Deserialize` impl, so a value of these types inside the server is always
//! meaningful — a message carrying unknown protection bits fails to decode
//! ([`crate::ProtocolError::Malformed`]) instead of reaching the server's logic.
//! Used by [`crate::request`] and [`crate::reply`], and directly by the memory-server core.

use postcard::experimental::max_size::MaxSize;
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Page protection: a subset of read / write / execute (`PROT_*` in Linux, same bit values).
///
/// On the wire this is one byte holding the bits; decoding rejects any other bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Prot(u8);

impl Serialize for Prot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for Prot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bits = u8::deserialize(deserializer)?;
        Prot::from_bits(bits).ok_or_else(|| {
            D::Error::invalid_value(
                Unexpected::Unsigned(u64::from(bits)),
                &"protection bits within READ | WRITE | EXEC",
            )
        })
    }
}

impl MaxSize for Prot {
    const POSTCARD_MAX_SIZE: usize = u8::POSTCARD_MAX_SIZE;
}

impl Prot {
    pub const NONE: Prot = Prot(0);
    pub const READ: Prot = Prot(1);
    pub const WRITE: Prot = Prot(2);
    pub const EXEC: Prot = Prot(4);
    pub const RW: Prot = Prot(3);
    pub const RWX: Prot = Prot(7);

    /// Checked constructor: `None` if `bits` has anything but the three protection bits.
    pub const fn from_bits(bits: u8) -> Option<Prot> {
        if bits & !7 == 0 {
            Some(Prot(bits))
        } else {
            None
        }
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, other: Prot) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn union(self, other: Prot) -> Prot {
        Prot(self.0 | other.0)
    }
    pub const fn without(self, other: Prot) -> Prot {
        Prot(self.0 & !other.0)
    }
    pub const fn intersect(self, other: Prot) -> Prot {
        Prot(self.0 & other.0)
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn readable(self) -> bool {
        self.0 & 1 != 0
    }
    pub const fn writable(self) -> bool {
        self.0 & 2 != 0
    }
    pub const fn executable(self) -> bool {
        self.0 & 4 != 0
    }
}

/// The kind of access that caused a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum Access {
    Read,
    Write,
    Exec,
}

impl Access {
    /// The protection bit this access needs.
    pub const fn needs(self) -> Prot {
        match self {
            Access::Read => Prot::READ,
            Access::Write => Prot::WRITE,
            Access::Exec => Prot::EXEC,
        }
    }
}

/// Size of a mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum PageSize {
    /// 4 KiB.
    Small,
    /// 2 MiB.
    Large,
}

impl PageSize {
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Small => 4096,
            PageSize::Large => 2 * 1024 * 1024,
        }
    }
}

/// Base page size in bytes.
pub const PAGE_SIZE: u64 = 4096;
/// Large page size in bytes.
pub const LARGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;
/// Most page entries the server releases for one request before it answers
/// [`crate::Errno::Again`] (a bounded step; the request is sent again to go on).
pub const STEP_PAGES: u64 = 48;
/// Most pages an mmap with `populate` maps itself (the client library asks for the rest
/// with Populate, which goes in steps of its own).
pub const MMAP_POPULATE_PAGES: u64 = 16;
