//! Kafka's zigzag varints (protobuf style) and a bounds-checked reader over a record's bytes.
//!
//! Records inside a magic-2 batch encode every length and delta as a zigzag varint (`int32`, at
//! most 5 bytes) or varlong (`int64`, at most 10 bytes). The reader never slices past its buffer
//! and rejects overlong or overflowing encodings instead of silently dropping bits, so a
//! corrupt record is an error rather than a plausible-looking wrong value.

use crate::record_batch::BatchError;

const MAX_VARINT_BYTES: usize = 5;
const MAX_VARLONG_BYTES: usize = 10;

/// Appends `v` as a zigzag varint.
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends `v` as a zigzag varlong.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_unsigned(out: &mut Vec<u8>, mut z: u64) {
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A cursor over untrusted bytes. Every read checks the remaining length first.
pub struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    pub fn new(buf: &'b [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn u8(&mut self) -> Result<u8, BatchError> {
        let b = *self.buf.get(self.pos).ok_or(BatchError::InvalidRecord("record ends inside a field"))?;
        self.pos += 1;
        Ok(b)
    }

    /// `len` bytes, only if that many remain.
    pub fn bytes(&mut self, len: usize) -> Result<&'b [u8], BatchError> {
        if len > self.remaining() {
            return Err(BatchError::InvalidRecord("length field exceeds the bytes that remain"));
        }
        let s = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    pub fn varint(&mut self) -> Result<i32, BatchError> {
        let z = self.unsigned(MAX_VARINT_BYTES)?;
        let z = u32::try_from(z).map_err(|_| BatchError::InvalidRecord("varint overflows 32 bits"))?;
        Ok((z >> 1) as i32 ^ -((z & 1) as i32))
    }

    pub fn varlong(&mut self) -> Result<i64, BatchError> {
        let z = self.unsigned(MAX_VARLONG_BYTES)?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// A length-prefixed byte string where -1 means null. Any other negative length is corrupt
    /// (Kafka's reader would treat it as null; a real encoder never writes one).
    pub fn nullable_bytes(&mut self) -> Result<Option<&'b [u8]>, BatchError> {
        match self.varint()? {
            -1 => Ok(None),
            len if len < 0 => Err(BatchError::InvalidRecord("negative length other than -1")),
            len => self.bytes(len as usize).map(Some),
        }
    }

    fn unsigned(&mut self, max_bytes: usize) -> Result<u64, BatchError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.u8()?;
            let bits = (b & 0x7f) as u64;
            // The last byte of a varlong may only carry bit 63; more would be lost.
            if i == 9 && bits > 1 {
                return Err(BatchError::InvalidRecord("varlong overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(BatchError::InvalidRecord("varint is too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edge_values() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert!(b.len() <= MAX_VARINT_BYTES);
            let mut r = Reader::new(&b);
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        for v in [0, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = Vec::new();
            put_varlong(&mut b, v);
            assert!(b.len() <= MAX_VARLONG_BYTES);
            assert_eq!(Reader::new(&b).varlong().unwrap(), v);
        }
    }

    #[test]
    fn known_encodings() {
        // From Kafka's ByteUtils tests: zigzag maps -1 -> 1, 1 -> 2, 300 -> 600.
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        put_varint(&mut b, 1);
        put_varint(&mut b, 300);
        assert_eq!(b, [0x01, 0x02, 0xd8, 0x04]);
    }

    #[test]
    fn rejects_overlong_overflowing_and_truncated() {
        assert!(Reader::new(&[0x80; 5]).varint().is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x7f]).varint().is_err()); // > u32
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint().is_ok());
        assert!(Reader::new(&[0x80; 10]).varlong().is_err());
        let mut b = vec![0xff; 9];
        b.push(0x02);
        assert!(Reader::new(&b).varlong().is_err());
        assert!(Reader::new(&[0x80]).varint().is_err());
        assert!(Reader::new(&[]).varint().is_err());
    }

    #[test]
    fn lengths_are_checked_against_the_rest() {
        let mut b = Vec::new();
        put_varint(&mut b, 4);
        b.extend_from_slice(b"abc");
        assert!(Reader::new(&b).nullable_bytes().is_err());
        let mut b = Vec::new();
        put_varint(&mut b, -2);
        assert!(Reader::new(&b).nullable_bytes().is_err());
        let mut b = Vec::new();
        put_varint(&mut b, -1);
        assert_eq!(Reader::new(&b).nullable_bytes().unwrap(), None);
    }
}
