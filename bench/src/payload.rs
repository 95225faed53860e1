//! Message payloads: a small header carrying the intended send time, then filler.
//!
//! The header lets any consumer compute end-to-end latency without shared state with the
//! producer. Filler is pseudo-random so compression codecs see realistic, not trivial, input.

/// `magic u32 | producer u32 | sequence u64 | send_ns u64`, little endian.
pub const HEADER_BYTES: usize = 24;
const MAGIC: u32 = 0x5348_4c42; // "SHLB"

/// A reusable payload buffer for one producer; librdkafka copies it on send.
pub struct Payload {
    buf: Vec<u8>,
}

impl Payload {
    /// `size_bytes` must be at least [`HEADER_BYTES`] (checked by the workload).
    pub fn new(size_bytes: usize, producer: u32, seed: u64) -> Payload {
        let mut rng = XorShift::new(seed);
        let mut buf = vec![0u8; size_bytes.max(HEADER_BYTES)];
        for chunk in buf[HEADER_BYTES..].chunks_mut(8) {
            let bytes = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        buf[4..8].copy_from_slice(&producer.to_le_bytes());
        Payload { buf }
    }

    /// Stamps the sequence number and intended send time, and returns the bytes to send.
    pub fn stamp(&mut self, sequence: u64, send_ns: u64) -> &[u8] {
        self.buf[8..16].copy_from_slice(&sequence.to_le_bytes());
        self.buf[16..24].copy_from_slice(&send_ns.to_le_bytes());
        &self.buf
    }
}

/// The intended send time in a payload, or `None` if it is not one of ours.
pub fn send_ns(payload: &[u8]) -> Option<u64> {
    let header = payload.get(..HEADER_BYTES)?;
    if u32::from_le_bytes(header[0..4].try_into().ok()?) != MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(header[16..24].try_into().ok()?))
}

/// xorshift64*: fast, deterministic, good enough for filler bytes and random keys.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_time_reads_back() {
        let mut p = Payload::new(100, 3, 7);
        let bytes = p.stamp(42, 123_456_789).to_vec();
        assert_eq!(bytes.len(), 100);
        assert_eq!(send_ns(&bytes), Some(123_456_789));
        assert_eq!(send_ns(&bytes[..10]), None);
        assert_eq!(send_ns(&[0u8; 64]), None);
    }
}
