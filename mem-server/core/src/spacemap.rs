//! The spaces by client id: a map with the interface of a `BTreeMap<u32, Space>` (iteration
//! in id order included) that finds the spaces of small ids — every seL4 badge — by
//! indexing. Every fault and request looks its client's space up several times; a tree
//! search costs tens of instructions each time, an index a few.
//!
//! Ids below [`DIRECT_IDS`] live in a vector of boxes (a null pointer per unused id: 8 KiB,
//! the server's own); larger ids, which only tests and unusual configurations use, in a
//! `BTreeMap`. Neighbours: `lib.rs` (`MemCore::spaces`), `space.rs`.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::space::Space;

/// Ids found by indexing.
pub const DIRECT_IDS: u32 = 1024;

#[derive(Default)]
pub struct SpaceMap {
    direct: Vec<Option<Box<Space>>>,
    other: BTreeMap<u32, Space>,
    len: usize,
}

impl SpaceMap {
    pub fn get(&self, id: &u32) -> Option<&Space> {
        if *id < DIRECT_IDS {
            self.direct.get(*id as usize)?.as_deref()
        } else {
            self.other.get(id)
        }
    }

    pub fn get_mut(&mut self, id: &u32) -> Option<&mut Space> {
        if *id < DIRECT_IDS {
            self.direct.get_mut(*id as usize)?.as_deref_mut()
        } else {
            self.other.get_mut(id)
        }
    }

    pub fn contains_key(&self, id: &u32) -> bool {
        self.get(id).is_some()
    }

    /// Insert `sp` as `id`'s space; the space it replaces, if any.
    pub fn insert(&mut self, id: u32, sp: Space) -> Option<Space> {
        let old = if id < DIRECT_IDS {
            let i = id as usize;
            if self.direct.len() <= i {
                self.direct.resize_with(i + 1, || None);
            }
            self.direct[i].replace(Box::new(sp)).map(|b| *b)
        } else {
            self.other.insert(id, sp)
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, id: &u32) -> Option<Space> {
        let old = if *id < DIRECT_IDS {
            self.direct.get_mut(*id as usize)?.take().map(|b| *b)
        } else {
            self.other.remove(id)
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every `(id, space)`, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Space)> {
        self.direct
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_deref().map(|s| (i as u32, s)))
            .chain(self.other.iter().map(|(&id, s)| (id, s)))
    }

    pub fn values(&self) -> impl Iterator<Item = &Space> {
        self.iter().map(|(_, s)| s)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Space> {
        self.direct.iter_mut().filter_map(|s| s.as_deref_mut()).chain(self.other.values_mut())
    }
}

impl core::ops::Index<&u32> for SpaceMap {
    type Output = Space;
    /// The space of `id`, which must exist.
    fn index(&self, id: &u32) -> &Space {
        self.get(id).expect("space exists")
    }
}
