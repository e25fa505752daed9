//! `Layout`: the client's areas (or, for the administrator, another client's), like
//! `/proc/self/maps`, read page by page through the data area of the shared buffer.
//! Neighbours: `mem_protocol::layout` (entries), the server's `layout.rs`.

use crate::*;

impl Client {
    /// The areas of `target` from address `from` on: calls `each` for every entry in
    /// address order, as many requests as it takes. The last answer's [`LayoutInfo`]
    /// (`max_va`: one past the highest mapped address; `areas`: how many there are).
    pub fn layout(
        &mut self,
        target: Target,
        from: u64,
        mut each: impl FnMut(&LayoutEntry),
    ) -> Result<LayoutInfo, Errno> {
        let mut from = from;
        loop {
            let buf = Self::data_bufref(0, DATA_BYTES - DATA_BYTES % LayoutEntry::BYTES);
            let r = self.call_with_buf(&Request::Layout { target, from, buf }, Some(buf));
            let info = match self.keep_error(r)? {
                (Value::Layout(i), _) => i,
                _ => return Err(self.bad_reply()),
            };
            for i in 0..info.written as usize {
                let at = i * LayoutEntry::BYTES;
                let entry = LayoutEntry::from_bytes(&self.data_mut()[at..at + LayoutEntry::BYTES]);
                match entry {
                    Some(e) => each(&e),
                    None => return Err(self.bad_reply()),
                }
            }
            if info.next == 0 || info.next <= from {
                return Ok(info);
            }
            from = info.next;
        }
    }

    /// One past the highest address mapped in the client's own space (0 if none): the
    /// seed's `max_va`.
    pub fn max_va(&mut self) -> Result<u64, Errno> {
        let buf = Self::data_bufref(0, LayoutEntry::BYTES);
        let r = self.call_with_buf(&Request::Layout { target: Target::Own, from: u64::MAX, buf }, Some(buf));
        match self.keep_error(r)? {
            (Value::Layout(i), _) => Ok(i.max_va),
            _ => Err(self.bad_reply()),
        }
    }
}
