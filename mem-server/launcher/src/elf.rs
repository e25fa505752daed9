//! ELF loading into a new VSpace (used for the memory server only: clients are loaded by
//! the server itself, through `Region` requests).
//!
//! Every `PT_LOAD` segment is backed by fresh 4 KiB frames (zeroed by the kernel), its
//! file bytes are copied in through a scratch page of the root task's own VSpace, and the
//! frames are mapped into the target with the union of the rights of the segments that
//! touch the page (lld may let two segments share a page).

use alloc::collections::BTreeMap;

use object::elf::{PF_R, PF_W, PF_X};
use object::{Object, ObjectSegment, SegmentFlags};

use crate::objects::Objects;
use crate::vspace::{Tables, PAGE};

/// Rights wanted for one page of the image.
#[derive(Clone, Copy, Default)]
struct PageRights {
    read: bool,
    write: bool,
    exec: bool,
}

/// A scratch page of the root task's VSpace (its leaf table mapped), through which frames
/// are filled before they are mapped elsewhere.
pub struct Scratch {
    pub vaddr: u64,
    pub root_vspace: sel4::cap::VSpace,
}

impl Scratch {
    /// Map `frame` at the scratch page, run `f` on its bytes, unmap it again.
    pub fn with_frame<R>(&self, frame: sel4::cap::Granule, f: impl FnOnce(&mut [u8]) -> R) -> sel4::Result<R> {
        frame.frame_map(
            self.root_vspace,
            self.vaddr as usize,
            sel4::CapRights::read_write(),
            sel4::VmAttributes::default() | sel4::VmAttributes::EXECUTE_NEVER,
        )?;
        // SAFETY: the frame was just mapped read-write at `vaddr`, a page that nothing else
        // in the root task uses, and stays mapped until `frame_unmap` below.
        let bytes = unsafe { core::slice::from_raw_parts_mut(self.vaddr as *mut u8, PAGE as usize) };
        let r = f(bytes);
        frame.frame_unmap()?;
        Ok(r)
    }
}

fn flags_of(flags: SegmentFlags) -> (bool, bool, bool) {
    match flags {
        SegmentFlags::Elf { p_flags } => (p_flags & PF_R != 0, p_flags & PF_W != 0, p_flags & PF_X != 0),
        _ => (true, false, false),
    }
}

/// Load `image` into `tables`' VSpace; returns the entry point. The frames stay in the
/// root task's CNode (the server image lives as long as the system).
pub fn load(image: &[u8], objs: &mut Objects, tables: &mut Tables, scratch: &Scratch) -> sel4::Result<u64> {
    let file = object::File::parse(image).map_err(|_| sel4::Error::InvalidArgument)?;
    let mut pages: BTreeMap<u64, PageRights> = BTreeMap::new();
    for seg in file.segments() {
        if seg.size() == 0 {
            continue;
        }
        let (r, w, x) = flags_of(seg.flags());
        let start = seg.address() & !(PAGE - 1);
        let end = (seg.address() + seg.size()).next_multiple_of(PAGE);
        for page in (start..end).step_by(PAGE as usize) {
            let p = pages.entry(page).or_default();
            p.read |= r;
            p.write |= w;
            p.exec |= x;
        }
    }
    let mut frames: BTreeMap<u64, sel4::cap::Granule> = BTreeMap::new();
    for &page in pages.keys() {
        frames.insert(page, objs.alloc_fixed::<sel4::cap_type::Granule>()?);
    }
    for seg in file.segments() {
        let data = seg.data().map_err(|_| sel4::Error::InvalidArgument)?;
        let mut addr = seg.address();
        let mut rest = data;
        while !rest.is_empty() {
            let page = addr & !(PAGE - 1);
            let off = (addr - page) as usize;
            let n = rest.len().min(PAGE as usize - off);
            scratch.with_frame(frames[&page], |bytes| bytes[off..off + n].copy_from_slice(&rest[..n]))?;
            addr += n as u64;
            rest = &rest[n..];
        }
    }
    for (&page, rights) in &pages {
        tables.ensure(objs, page, crate::vspace::LEAF_LEVEL)?;
        let cap_rights = sel4::CapRightsBuilder::none().read(rights.read || rights.exec).write(rights.write).build();
        tables.map_page(frames[&page], page, cap_rights, rights.exec)?;
    }
    Ok(file.entry())
}
