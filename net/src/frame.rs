//! Kafka's framing: every request is a big-endian `i32` size followed by that many bytes.
//!
//! [`read_frame`] checks the size against `socket.request.max.bytes` before it allocates
//! anything, so a client cannot make the broker reserve memory by announcing a large frame.
//! Even an allowed size is not allocated up front: the buffer grows as bytes actually arrive
//! (first [`EAGER_ALLOC_BYTES`], then by [`READ_CHUNK_BYTES`] steps, each step zeroed once), so
//! a client that announces 100 MiB and sends 10 bytes costs the broker about 1 MiB.
//!
//! A connection reads through its shard's [`FramePool`]: the buffer of a finished request is
//! taken back when nothing references it any more and given to the next frame that fits, so its
//! bytes are zeroed once instead of for every request (zeroing 1 MiB frames was ~5 % of the
//! broker's CPU under produce load). The pool is bounded in buffers and in each buffer's size.
//!
//! `read_frame` is not cancel-safe: if the caller drops it (an idle or request timeout), part
//! of a frame may have been consumed, and the connection must be closed.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncReadExt};

/// Bytes of the size prefix.
pub const SIZE_PREFIX_BYTES: usize = 4;
/// A frame up to this size is allocated whole when its size arrives: typical produce requests
/// then need one allocation and no regrowth.
pub const EAGER_ALLOC_BYTES: usize = 1 << 20;
/// Growth step beyond [`EAGER_ALLOC_BYTES`].
pub const READ_CHUNK_BYTES: usize = 1 << 20;

/// Why no frame could be read. Every variant means: close the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame size {size_bytes}")]
    NegativeSize { size_bytes: i32 },
    #[error("frame size {size_bytes} exceeds socket.request.max.bytes = {max_frame_bytes}")]
    TooLarge { size_bytes: usize, max_frame_bytes: usize },
    #[error("connection closed mid-frame: {received_bytes} of {expected_bytes} bytes received")]
    Truncated { received_bytes: usize, expected_bytes: usize },
    #[error("reading a frame: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame's payload (without its size prefix), into fresh memory.
///
/// `Ok(None)`: the peer closed the connection cleanly between frames.
pub async fn read_frame<R>(stream: &mut R, max_frame_bytes: usize) -> Result<Option<Bytes>, FrameError>
where
    R: AsyncRead + Unpin,
{
    FramePool::new(0).read_frame(stream, max_frame_bytes).await
}

/// Finished frames' buffers, for the next frames of one shard (`Rc`-shared, single-threaded).
#[derive(Debug)]
pub struct FramePool {
    /// Spare buffers; each one's `len()` bytes are initialised (the previous frame's bytes).
    spare: RefCell<Vec<BytesMut>>,
    buffers_max: usize,
}

/// A buffer larger than this is not kept: the pool holds at most `buffers_max` × this.
pub const POOLED_BUFFER_BYTES_MAX: usize = EAGER_ALLOC_BYTES;

impl FramePool {
    /// A pool keeping up to `buffers_max` buffers (0: never reuses).
    pub fn new(buffers_max: usize) -> Self {
        FramePool { spare: RefCell::new(Vec::new()), buffers_max }
    }

    /// Gives a finished frame's memory back. Kept only if nothing else references the frame
    /// (a slice still held elsewhere keeps it alive, and it is simply dropped later), it fits
    /// [`POOLED_BUFFER_BYTES_MAX`] and the pool has room.
    pub fn give_back(&self, frame: Bytes) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() >= self.buffers_max || frame.len() > POOLED_BUFFER_BYTES_MAX {
            return;
        }
        if let Ok(buf) = frame.try_into_mut() {
            if buf.capacity() <= POOLED_BUFFER_BYTES_MAX {
                spare.push(buf);
            }
        }
    }

    pub fn spare_buffers(&self) -> usize {
        self.spare.borrow().len()
    }

    /// The smallest spare buffer whose capacity holds `size` bytes (so a small request, which
    /// a long poll may hold for a while, does not take a buffer a large one could use),
    /// trimmed to `size` initialised bytes where it has them (the read overwrites them all;
    /// `read_frame` zeroes only the rest).
    fn take(&self, size: usize) -> Option<BytesMut> {
        let mut spare = self.spare.borrow_mut();
        let (at, _) = spare
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= size)
            .min_by_key(|(_, b)| b.capacity())?;
        let mut buf = spare.swap_remove(at);
        buf.truncate(size);
        Some(buf)
    }

    /// Reads one frame's payload (without its size prefix), into a spare buffer when one fits.
    ///
    /// `Ok(None)`: the peer closed the connection cleanly between frames.
    pub async fn read_frame<R>(
        &self,
        stream: &mut R,
        max_frame_bytes: usize,
    ) -> Result<Option<Bytes>, FrameError>
    where
        R: AsyncRead + Unpin,
    {
        let mut prefix = [0u8; SIZE_PREFIX_BYTES];
        let mut filled = 0;
        while filled < SIZE_PREFIX_BYTES {
            let n = stream.read(&mut prefix[filled..]).await?;
            if n == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    received_bytes: filled,
                    expected_bytes: SIZE_PREFIX_BYTES,
                });
            }
            filled += n;
        }

        let size = i32::from_be_bytes(prefix);
        let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize { size_bytes: size })?;
        if size > max_frame_bytes {
            return Err(FrameError::TooLarge { size_bytes: size, max_frame_bytes });
        }

        let mut buf = self.take(size).unwrap_or_else(|| BytesMut::with_capacity(size.min(EAGER_ALLOC_BYTES)));
        // `buf.len()` is the initialised (readable-into) part; `received` counts bytes really
        // read, so no byte is zeroed twice however little each read returns.
        let mut received = 0;
        while received < size {
            if received == buf.len() {
                let target = size.min(buf.capacity().max(received + READ_CHUNK_BYTES));
                buf.resize(target, 0);
            }
            let n = stream.read(&mut buf[received..]).await?;
            if n == 0 {
                return Err(FrameError::Truncated { received_bytes: received, expected_bytes: size });
            }
            received += n;
        }
        assert_eq!(buf.len(), size, "a frame is exactly its announced size");
        Ok(Some(buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A reader that hands out at most `step` bytes per read, to exercise partial reads.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = self.step.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Poll::Ready(Ok(n))
        }
    }

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            out.extend_from_slice(&(p.len() as i32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn reads_frames_then_clean_eof() {
        let big = vec![7u8; 3 * READ_CHUNK_BYTES + 5];
        let data = framed(&[b"abc", b"", &big]);
        for step in [1, 3, 4096, usize::MAX] {
            let mut r = Trickle { data: data.clone(), pos: 0, step };
            block_on(async {
                assert_eq!(read_frame(&mut r, 1 << 26).await.unwrap().unwrap(), &b"abc"[..]);
                assert_eq!(read_frame(&mut r, 1 << 26).await.unwrap().unwrap(), &b""[..]);
                if step >= 4096 {
                    assert_eq!(read_frame(&mut r, 1 << 26).await.unwrap().unwrap(), &big[..]);
                    assert!(read_frame(&mut r, 1 << 26).await.unwrap().is_none());
                }
            });
        }
    }

    #[test]
    fn oversize_and_negative_sizes_fail_before_allocating() {
        let mut r = Cursor::new(framed(&[&[0u8; 11]]));
        let err = block_on(read_frame(&mut r, 10)).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { size_bytes: 11, max_frame_bytes: 10 }));

        let mut r = Cursor::new((-5i32).to_be_bytes().to_vec());
        assert!(matches!(block_on(read_frame(&mut r, 10)), Err(FrameError::NegativeSize { size_bytes: -5 })));

        // An absurd size with no body: rejected from the 4 prefix bytes alone.
        let mut r = Cursor::new(i32::MAX.to_be_bytes().to_vec());
        assert!(matches!(block_on(read_frame(&mut r, 100 << 20)), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn eof_inside_a_frame_is_an_error() {
        let mut r = Cursor::new(vec![0, 0]);
        assert!(matches!(
            block_on(read_frame(&mut r, 10)),
            Err(FrameError::Truncated { received_bytes: 2, expected_bytes: 4 })
        ));
        let mut data = framed(&[b"hello"]);
        data.truncate(7);
        let mut r = Cursor::new(data);
        assert!(matches!(
            block_on(read_frame(&mut r, 10)),
            Err(FrameError::Truncated { received_bytes: 3, expected_bytes: 5 })
        ));
    }

    #[test]
    fn large_announced_frame_with_few_bytes_is_truncated() {
        // 100 MiB announced, 10 bytes sent, then EOF (the buffer held at most 1 MiB).
        let mut data = (100i32 << 20).to_be_bytes().to_vec();
        data.extend_from_slice(&[1; 10]);
        let mut r = Cursor::new(data);
        let err = block_on(read_frame(&mut r, 100 << 20)).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { received_bytes: 10, .. }));
    }

    #[test]
    fn a_pool_reuses_a_finished_frame_only_when_nothing_holds_it() {
        let pool = FramePool::new(2);
        let data = framed(&[&[1u8; 300], &[2u8; 250], &[3u8; 200], &[4u8; 500]]);
        let mut r = Cursor::new(data);
        block_on(async {
            let first = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            let held = first.slice(10..20);
            pool.give_back(first);
            assert_eq!(pool.spare_buffers(), 0, "a slice still references the frame");
            drop(held);

            let second = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            assert_eq!(&second[..], &[2u8; 250][..]);
            let second_ptr = second.as_ptr();
            pool.give_back(second);
            assert_eq!(pool.spare_buffers(), 1);

            // Smaller than the spare buffer's old contents: exactly the new bytes, no stale tail.
            let third = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            assert_eq!(third.as_ptr(), second_ptr);
            assert_eq!(&third[..], &[3u8; 200][..]);
            pool.give_back(third);
            assert_eq!(pool.spare_buffers(), 1);

            // Larger than the spare buffer's capacity: fresh memory, the spare stays.
            let fourth = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            assert_eq!(&fourth[..], &[4u8; 500][..]);
            assert_ne!(fourth.as_ptr(), second_ptr);
            assert_eq!(pool.spare_buffers(), 1);
        });
    }

    #[test]
    fn a_pooled_buffer_is_reused_in_place_and_fully_overwritten() {
        let pool = FramePool::new(1);
        let data = framed(&[&[7u8; 1000], &[8u8; 600], &[9u8; 900]]);
        for step in [1, 7, usize::MAX] {
            let mut r = Trickle { data: data.clone(), pos: 0, step };
            block_on(async {
                let a = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
                let a_ptr = a.as_ptr();
                // As a connection does: a clone kept while the request (holding `a`) is served.
                let kept = a.clone();
                drop(a);
                pool.give_back(kept);
                let b = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
                assert_eq!(b.as_ptr(), a_ptr, "the spare buffer was reused");
                assert_eq!(&b[..], &[8u8; 600][..]);
                pool.give_back(b);
                // Longer than the reused buffer's initialised part (600 of 1000 bytes).
                let c = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
                assert_eq!(c.as_ptr(), a_ptr);
                assert_eq!(&c[..], &[9u8; 900][..]);
                pool.give_back(c);
            });
        }
    }

    #[test]
    fn a_frame_takes_the_smallest_spare_buffer_that_fits() {
        let pool = FramePool::new(2);
        let mut r = Cursor::new(framed(&[&[1u8; 900], &[2u8; 100], &[3u8; 50], &[4u8; 800]]));
        block_on(async {
            let big = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            let small = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            let (big_ptr, small_ptr) = (big.as_ptr(), small.as_ptr());
            pool.give_back(big);
            pool.give_back(small);
            let tiny = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            assert_eq!(tiny.as_ptr(), small_ptr, "the 100-byte buffer, not the 900-byte one");
            let large = pool.read_frame(&mut r, 1 << 20).await.unwrap().unwrap();
            assert_eq!(large.as_ptr(), big_ptr);
            assert_eq!(&large[..], &[4u8; 800][..]);
        });
    }

    #[test]
    fn the_pool_is_bounded_in_buffers_and_buffer_size() {
        let pool = FramePool::new(1);
        let big = vec![5u8; POOLED_BUFFER_BYTES_MAX + 1];
        let mut r = Cursor::new(framed(&[&big, b"a", b"b"]));
        block_on(async {
            let f = pool.read_frame(&mut r, 1 << 26).await.unwrap().unwrap();
            pool.give_back(f);
            assert_eq!(pool.spare_buffers(), 0, "larger than a pooled buffer may be");
            let a = pool.read_frame(&mut r, 1 << 26).await.unwrap().unwrap();
            let b = pool.read_frame(&mut r, 1 << 26).await.unwrap().unwrap();
            pool.give_back(a);
            pool.give_back(b);
            assert_eq!(pool.spare_buffers(), 1);
        });
    }
}
