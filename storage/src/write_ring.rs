//! Writes of a [`PlacedRecords`] into a log file, from the memory the record set is in: a
//! vectored `pwritev` on the shard for small appends, and for large ones an io_uring `WRITEV`
//! on a small ring of the shard's own.
//!
//! Why a ring of our own: glommio's `BufferedFile::write_at` takes an owned `Vec<u8>`, so
//! writing through it meant copying every produced byte out of the request frame first (7–10 %
//! of the broker's CPU under produce load; `perf-reports/2026-12-05-zero-copy-append`), and
//! glommio's blocking thread, the other way to write memory it did not allocate, cost more per
//! write than that copy. The ring (`shardlog_side_ring::SideRing`) carries only these writes;
//! its driver wakes the writers through glommio. io_uring hands a buffered write that would
//! block to a kernel worker of the shard's thread, as it did for glommio's writes.
//!
//! Memory safety: the kernel reads the iovecs' memory until the write completes. Every
//! submitted write's slot owns what it points into (the record set, the iovec array, the
//! file) until its completion is reaped, even when the task that waits for it is dropped; a
//! submitted write is never cancelled. Everything is `Rc`/`RefCell` in a thread-local: one ring
//! per shard, nothing shared across cores.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use glommio::io::BufferedFile;
use io_uring::{opcode, types};
use shardlog_side_ring::{owner_for_this_executor, Reap, SideRing};

use crate::placed_records::PlacedRecords;

/// Submission queue depth. A shard has at most `MAX_WRITES_IN_FLIGHT` writes per active
/// segment in flight; more outstanding writes than this are fine: a full queue is submitted
/// first, and completions never drop (`IORING_FEAT_NODROP`).
const RING_ENTRIES: u32 = 256;
/// Iovecs per `pwritev`/`WRITEV` (Linux's `IOV_MAX`); a record set of more batches is written
/// in several calls.
const IOVECS_PER_WRITE_MAX: usize = 1024;

/// Writes all of `records` at `position` of `fd` from the shard's thread (a small append: the
/// copy into the page cache costs less than a hand-off to a kernel worker).
pub(crate) fn pwrite_all(fd: RawFd, records: &PlacedRecords, position: u64) -> io::Result<()> {
    let mut cursor = IovecCursor::new(records);
    while !cursor.is_done() {
        let iovecs = cursor.next_slice();
        let offset = libc::off_t::try_from(position + cursor.written_bytes as u64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position beyond off_t"))?;
        // SAFETY: the iovecs point into `records`, borrowed for this whole call.
        let n = unsafe { libc::pwritev(fd, iovecs.as_ptr(), iovecs.len() as libc::c_int, offset) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        cursor.advance(n as usize)?;
    }
    Ok(())
}

/// Writes all of `records` at `position` of `file` through the shard's write ring, without
/// blocking the shard. Falls back to glommio's write of a copy if the ring cannot be set up.
pub(crate) async fn write_all_at(
    file: Rc<BufferedFile>,
    records: PlacedRecords,
    position: u64,
) -> io::Result<()> {
    let ring = match shard_ring() {
        Ok(ring) => ring,
        Err(error) => {
            tracing::warn!(%error, "no io_uring write ring; writing a copy through glommio");
            return copy_and_write(&file, &records, position).await;
        }
    };
    let records = Rc::new(records);
    let mut cursor = IovecCursor::new(&records);
    while !cursor.is_done() {
        let iovecs = cursor.next_iovecs();
        let offset = position + cursor.written_bytes as u64;
        let keep = Keep { _records: Rc::clone(&records), _file: Rc::clone(&file), iovecs };
        let n = ring.writev(file.as_raw_fd(), keep, offset)?.await?;
        cursor.advance(n)?;
    }
    Ok(())
}

async fn copy_and_write(file: &BufferedFile, records: &PlacedRecords, position: u64) -> io::Result<()> {
    crate::index_file::write_all_at(file, records.to_vec(), position).await.map_err(io::Error::other)
}

/// Walks a record set's parts as iovecs, at most [`IOVECS_PER_WRITE_MAX`] at a time, across
/// short writes.
struct IovecCursor {
    iovecs: Vec<libc::iovec>,
    /// The first iovec not wholly written.
    next: usize,
    written_bytes: usize,
    total_bytes: usize,
}

impl IovecCursor {
    fn new(records: &PlacedRecords) -> Self {
        let iovecs: Vec<libc::iovec> = records
            .parts()
            .map(|part| libc::iovec { iov_base: part.as_ptr() as *mut libc::c_void, iov_len: part.len() })
            .collect();
        IovecCursor { iovecs, next: 0, written_bytes: 0, total_bytes: records.len_bytes() }
    }

    fn is_done(&self) -> bool {
        self.written_bytes == self.total_bytes
    }

    /// The next write's iovecs.
    fn next_slice(&self) -> &[libc::iovec] {
        let end = self.iovecs.len().min(self.next + IOVECS_PER_WRITE_MAX);
        &self.iovecs[self.next..end]
    }

    /// The next write's iovecs as a copy, for the ring's slot to own until the write completes.
    fn next_iovecs(&self) -> Vec<libc::iovec> {
        self.next_slice().to_vec()
    }

    /// Steps over `n` bytes just written. A write of nothing would loop for ever: an error.
    fn advance(&mut self, mut n: usize) -> io::Result<()> {
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "a log write wrote nothing"));
        }
        assert!(n <= self.total_bytes - self.written_bytes, "wrote more than was asked");
        self.written_bytes += n;
        while n > 0 {
            let iovec = &mut self.iovecs[self.next];
            if n >= iovec.iov_len {
                n -= iovec.iov_len;
                self.next += 1;
            } else {
                // SAFETY: stays within the part this iovec describes.
                iovec.iov_base = unsafe { (iovec.iov_base as *mut u8).add(n) } as *mut libc::c_void;
                iovec.iov_len -= n;
                n = 0;
            }
        }
        Ok(())
    }
}

/// What a submitted write points into, owned by its slot until the completion is reaped.
struct Keep {
    _records: Rc<PlacedRecords>,
    _file: Rc<BufferedFile>,
    iovecs: Vec<libc::iovec>,
}

enum Slot {
    Waiting {
        waker: Option<Waker>,
        _keep: Keep,
    },
    /// The write completed with this result (bytes written, or -errno).
    Done(i32),
    /// The waiter went away; the slot keeps the memory until the completion arrives.
    Abandoned(Keep),
}

struct WriteRing {
    side: Rc<SideRing>,
    slots: RefCell<HashMap<u64, Slot>>,
    next_id: Cell<u64>,
}

thread_local! {
    static RING: RefCell<Option<Rc<WriteRing>>> = const { RefCell::new(None) };
}

impl WriteRing {
    fn new(side: Rc<SideRing>) -> WriteRing {
        WriteRing { side, slots: RefCell::new(HashMap::new()), next_id: Cell::new(0) }
    }

    /// Submits one `WRITEV`; the returned future resolves to the bytes written.
    fn writev(self: &Rc<Self>, fd: RawFd, keep: Keep, offset: u64) -> io::Result<WriteCompletion> {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        let entry = opcode::Writev::new(types::Fd(fd), keep.iovecs.as_ptr(), keep.iovecs.len() as u32)
            .offset(offset)
            .build()
            .user_data(id);
        // The slot owns the memory before the kernel can see the entry.
        self.slots.borrow_mut().insert(id, Slot::Waiting { waker: None, _keep: keep });
        // SAFETY: the entry's iovecs, the memory they describe and the file are owned by its
        // slot until its completion is reaped (see the module comment).
        if let Err(error) = unsafe { self.side.submit(&entry) } {
            self.slots.borrow_mut().remove(&id);
            return Err(error);
        }
        Ok(WriteCompletion { ring: Rc::clone(self), id, finished: false })
    }
}

impl Reap for WriteRing {
    fn side_ring(&self) -> &Rc<SideRing> {
        &self.side
    }

    /// Moves every completion into its slot (dropping what an abandoned one kept) and wakes
    /// the waiters.
    fn reap(&self) {
        let mut woken = Vec::new();
        {
            let mut slots = self.slots.borrow_mut();
            for (id, result) in self.side.completions() {
                match slots.remove(&id) {
                    Some(Slot::Waiting { waker, .. }) => {
                        woken.extend(waker);
                        slots.insert(id, Slot::Done(result));
                    }
                    Some(Slot::Abandoned(_)) | Some(Slot::Done(_)) | None => {}
                }
            }
        }
        // Wake outside the borrows: a waker may poll synchronously in some executors.
        for waker in woken {
            waker.wake();
        }
    }

    fn fail_all(&self, _kind: io::ErrorKind) {
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .values_mut()
            .filter_map(|slot| if let Slot::Waiting { waker, .. } = slot { waker.take() } else { None })
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }
}

/// The future of one submitted write.
struct WriteCompletion {
    ring: Rc<WriteRing>,
    id: u64,
    finished: bool,
}

impl Future for WriteCompletion {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // Completions are in shared memory: looking costs no syscall.
        self.ring.reap();
        let id = self.id;
        let broken = self.ring.side.broken();
        let ring = Rc::clone(&self.ring);
        let mut slots = ring.slots.borrow_mut();
        let (slot, outcome) = match slots.remove(&id) {
            Some(Slot::Done(result)) if result < 0 => {
                (None, Poll::Ready(Err(io::Error::from_raw_os_error(-result))))
            }
            Some(Slot::Done(result)) => (None, Poll::Ready(Ok(result as usize))),
            // The driver is gone: nothing will reap this write. Its slot keeps the memory for
            // as long as the ring lives.
            Some(Slot::Waiting { _keep, .. }) if broken.is_some() => {
                let kind = broken.unwrap_or(io::ErrorKind::Other);
                (
                    Some(Slot::Abandoned(_keep)),
                    Poll::Ready(Err(io::Error::new(kind, "shard write ring failed"))),
                )
            }
            Some(Slot::Waiting { _keep, .. }) => {
                (Some(Slot::Waiting { waker: Some(cx.waker().clone()), _keep }), Poll::Pending)
            }
            Some(Slot::Abandoned(keep)) => {
                (Some(Slot::Abandoned(keep)), Poll::Ready(Err(io::Error::other("write slot lost"))))
            }
            None => (None, Poll::Ready(Err(io::Error::other("write slot lost")))),
        };
        if let Some(slot) = slot {
            slots.insert(id, slot);
        }
        drop(slots);
        if outcome.is_ready() {
            self.finished = true;
        }
        outcome
    }
}

impl Drop for WriteCompletion {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut slots = self.ring.slots.borrow_mut();
        match slots.remove(&self.id) {
            // Still in the kernel's hands: keep its memory until the completion is reaped.
            Some(Slot::Waiting { _keep, .. }) => {
                slots.insert(self.id, Slot::Abandoned(_keep));
            }
            Some(Slot::Abandoned(keep)) => {
                slots.insert(self.id, Slot::Abandoned(keep));
            }
            Some(Slot::Done(_)) | None => {}
        }
    }
}

impl Drop for WriteRing {
    /// Closing the ring does not wait for the kernel's workers, which may still be reading the
    /// memory the slots keep: wait for every submitted write first (page-cache writes finish
    /// quickly; this runs when a shard's thread ends).
    fn drop(&mut self) {
        let slots = self.slots.get_mut();
        let pending = slots.values().filter(|slot| !matches!(slot, Slot::Done(_))).count();
        self.side.wait_for(pending, |id, _| {
            slots.remove(&id);
        });
    }
}

/// This shard's ring, created (with its driver task) on first use by each executor.
fn shard_ring() -> io::Result<Rc<WriteRing>> {
    owner_for_this_executor(&RING, RING_ENTRIES, WriteRing::new)
}

/// Writes submitted on this shard's ring whose completion has not been consumed yet.
#[cfg(test)]
fn pending_writes() -> usize {
    RING.with(|r| {
        r.borrow().as_ref().map_or(0, |ring| {
            ring.reap();
            ring.slots.borrow().values().filter(|slot| !matches!(slot, Slot::Done(_))).count()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placed_records::tests::placed;
    use crate::record_batch::tests::build_batch;
    use bytes::Bytes;
    use std::time::Duration;

    /// `count` batches of one record each, written unchanged: two parts per batch.
    fn record_set(count: usize) -> PlacedRecords {
        let source: Vec<u8> = (0..count).flat_map(|i| build_batch(i as i64, 1, i % 7)).collect();
        let batches = placed(&source);
        PlacedRecords::unchanged(Bytes::from(source), batches)
    }

    async fn open(path: &std::path::Path) -> Rc<BufferedFile> {
        let options = glommio::io::OpenOptions::new().create(true).read(true).write(true).clone();
        Rc::new(options.buffered_open(path).await.unwrap())
    }

    fn remaining(cursor: &IovecCursor) -> Vec<u8> {
        let mut bytes = Vec::new();
        for iovec in &cursor.iovecs[cursor.next..] {
            // SAFETY: the iovecs point into the record set the test still holds.
            bytes.extend_from_slice(unsafe {
                std::slice::from_raw_parts(iovec.iov_base as *const u8, iovec.iov_len)
            });
        }
        bytes
    }

    #[test]
    fn the_cursor_resumes_exactly_where_a_short_write_stopped() {
        let records = record_set(40);
        let all = records.to_vec();
        let mut cursor = IovecCursor::new(&records);
        let mut written = 0;
        // Steps that end inside a header, inside a body, on a boundary, and across several parts.
        for step in [1, 60, 2, 69, 137, 500, 3].iter().cycle() {
            if cursor.is_done() {
                break;
            }
            assert_eq!(remaining(&cursor), all[written..]);
            let n = (*step).min(all.len() - written);
            cursor.advance(n).unwrap();
            written += n;
        }
        assert_eq!(written, all.len());
        assert!(cursor.advance(0).is_err(), "a write of nothing is an error, not a loop");
    }

    #[test]
    fn more_parts_than_one_call_takes_are_written_whole_on_both_paths() {
        let records = record_set(700); // 1,400 parts: two calls of at most 1,024 iovecs
        let expected = records.to_vec();
        assert!(records.parts().count() > IOVECS_PER_WRITE_MAX);
        let dir = tempfile::tempdir().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            let path = dir.path().join("set.log");
            let file = open(&path).await;
            pwrite_all(file.as_raw_fd(), &records, 10).unwrap();
            let ring_at = 10 + expected.len() as u64;
            write_all_at(Rc::clone(&file), record_set(700), ring_at).await.unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk[10..ring_at as usize], expected[..]);
            assert_eq!(on_disk[ring_at as usize..], expected[..]);
            assert_eq!(pending_writes(), 0);
        });
    }

    #[test]
    fn the_fallback_writes_every_part_at_its_position() {
        // Offsets assigned by placement: the headers written are copies, not the source's.
        let source: Vec<u8> = (0..30).flat_map(|i| build_batch(0, 1 + i % 3, i as usize)).collect();
        let records =
            crate::partition_log::place_as_leader(Bytes::from(source.clone()), 500, 3, None, 1 << 20)
                .unwrap();
        let expected = records.to_vec();
        assert_ne!(expected, source, "placement rewrote the headers");
        let dir = tempfile::tempdir().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            let path = dir.path().join("fallback.log");
            let file = open(&path).await;
            copy_and_write(&file, &records, 7).await.unwrap();
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk[..7], [0; 7]);
            assert_eq!(on_disk[7..], expected[..]);
        });
    }

    #[test]
    fn dropping_a_ring_waits_for_its_writes_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            for round in 0..5 {
                let path = dir.path().join(format!("dropped-{round}.log"));
                let file = open(&path).await;
                // Large (16 MiB) so that the kernel is still copying when the ring goes.
                let source: Vec<u8> = (0..256).flat_map(|i| build_batch(i, 1, 64 << 10)).collect();
                let batches = placed(&source);
                let records = Rc::new(PlacedRecords::unchanged(Bytes::from(source), batches));
                let expected = records.to_vec();
                let cursor = IovecCursor::new(&records);
                assert!(cursor.iovecs.len() <= IOVECS_PER_WRITE_MAX);
                let keep = Keep {
                    _records: Rc::clone(&records),
                    _file: Rc::clone(&file),
                    iovecs: cursor.next_iovecs(),
                };
                // A ring of its own, without a driver: only its drop reaps.
                let ring = Rc::new(WriteRing::new(SideRing::new(RING_ENTRIES).unwrap()));
                drop(ring.writev(file.as_raw_fd(), keep, 0).unwrap());
                drop((records, file));
                drop(ring);
                let on_disk = std::fs::read(&path).unwrap();
                // Not assert_eq: a failure would print 16 MiB.
                assert!(on_disk == expected, "round {round}: {} of {} bytes", on_disk.len(), expected.len());
            }
        });
    }

    #[test]
    fn a_write_whose_waiter_went_away_still_lands_and_then_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async move {
            let path = dir.path().join("abandoned.log");
            let file = open(&path).await;
            let records = Rc::new(record_set(50));
            let expected = records.to_vec();
            let cursor = IovecCursor::new(&records);
            let keep =
                Keep { _records: Rc::clone(&records), _file: Rc::clone(&file), iovecs: cursor.next_iovecs() };
            let ring = shard_ring().unwrap();
            let write = ring.writev(file.as_raw_fd(), keep, 0).unwrap();
            // Dropped before it was ever polled: the slot alone keeps the record set and the
            // file until the kernel is done with them (whether or not it already is).
            drop(write);
            drop(records);
            drop(file);
            for _ in 0..1000 {
                if pending_writes() == 0 {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(pending_writes(), 0, "the completion is reaped and its memory freed");
            assert_eq!(std::fs::read(&path).unwrap(), expected);
        });
    }
}
