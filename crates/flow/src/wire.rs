//! A bounds-checked big-endian reader: every read returns `None` past the end.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    /// What is left, without consuming it.
    pub fn peek_rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.take(4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
    pub fn ipv6(&mut self) -> Option<Ipv6Addr> {
        let b: [u8; 16] = self.take(16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    }
}

/// An unsigned big-endian integer of 1 to 8 bytes (IPFIX reduced-size
/// encoding); wider fields keep their low 8 bytes.
#[inline]
pub(crate) fn be_uint(bytes: &[u8]) -> u64 {
    // The common widths directly: this runs for most fields of every record.
    match bytes.len() {
        1 => u64::from(bytes[0]),
        2 => u64::from(u16::from_be_bytes([bytes[0], bytes[1]])),
        4 => u64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
        8 => u64::from_be_bytes(bytes.try_into().unwrap_or_default()),
        n if n > 8 => be_uint(&bytes[n - 8..]),
        _ => bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    }
}
