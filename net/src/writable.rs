//! Waiting until a socket is writable, on io_uring, without busy polling.
//!
//! Why this module: `sendfile(2)` on a full nonblocking socket returns `EAGAIN`, and we must
//! sleep until the socket drains. glommio 0.9 does exactly that inside its own write path (an
//! io_uring `POLL_ADD` for `POLLOUT`), but keeps the reactor call (`poll_write_ready`)
//! crate-private. The alternatives were worse: pushing a byte of the region through
//! `AsyncWrite::poll_write` to borrow that wait copies record bytes through user space; a
//! timer-driven retry is busy polling.
//!
//! So each shard has a small second ring (`shardlog_side_ring::SideRing`) that here only
//! carries `POLL_ADD` and `POLL_REMOVE`; its driver, woken through glommio's own ring, reaps
//! completions and wakes the waiting tasks. All of it is `Rc`/`RefCell` state in a
//! thread-local: one per shard, nothing shared across cores.
//!
//! A waiter that is dropped before its poll fires (the caller's timeout) cancels it with
//! `POLL_REMOVE` — otherwise the ring would keep a reference to the socket and the file
//! descriptor would never really close.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, types};
use shardlog_side_ring::{owner_for_this_executor, Reap, SideRing};

/// Submission queue depth of the per-shard poll ring. More outstanding waits than this are
/// fine: a full queue is flushed with a submit first, and completions never drop
/// (`IORING_FEAT_NODROP`).
const RING_ENTRIES: u32 = 256;
/// `user_data` bit that marks the completion of a `POLL_REMOVE` (which we ignore).
const REMOVE_BIT: u64 = 1 << 63;

enum Slot {
    Waiting(Option<Waker>),
    /// The poll completed with this result (revents, or -errno).
    Done(i32),
    /// The waiter went away; drop the slot when the poll's completion arrives.
    Abandoned,
}

struct Poller {
    side: Rc<SideRing>,
    slots: RefCell<HashMap<u64, Slot>>,
    next_id: RefCell<u64>,
}

thread_local! {
    static POLLER: RefCell<Option<Rc<Poller>>> = const { RefCell::new(None) };
}

/// Resolves once `fd` is writable (or in error/hang-up state, which the next write reports).
/// Must be awaited on a glommio executor.
pub(crate) fn wait_writable(fd: RawFd) -> io::Result<Writable> {
    let poller = shard_poller()?;
    let id = {
        let mut next = poller.next_id.borrow_mut();
        *next = (*next + 1) & !REMOVE_BIT;
        *next
    };
    let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLOUT as u32).build().user_data(id);
    poller.slots.borrow_mut().insert(id, Slot::Waiting(None));
    if let Err(e) = poller.submit(&entry) {
        poller.slots.borrow_mut().remove(&id);
        return Err(e);
    }
    Ok(Writable { poller, id, finished: false })
}

/// The future returned by [`wait_writable`].
pub(crate) struct Writable {
    poller: Rc<Poller>,
    id: u64,
    finished: bool,
}

impl Future for Writable {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Completions are in shared memory: looking costs no syscall, and saves a trip
        // through the driver when the socket was already writable.
        self.poller.reap();
        if let Some(kind) = self.poller.side.broken() {
            self.finished = true;
            return Poll::Ready(Err(io::Error::new(kind, "shard poll ring failed")));
        }
        let poller = Rc::clone(&self.poller);
        let mut slots = poller.slots.borrow_mut();
        match slots.get_mut(&self.id) {
            Some(Slot::Done(result)) => {
                let result = *result;
                slots.remove(&self.id);
                drop(slots);
                self.finished = true;
                if result < 0 {
                    Poll::Ready(Err(io::Error::from_raw_os_error(-result)))
                } else {
                    Poll::Ready(Ok(()))
                }
            }
            Some(Slot::Waiting(waker)) => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Some(Slot::Abandoned) | None => {
                drop(slots);
                self.finished = true;
                Poll::Ready(Err(io::Error::other("poll slot lost")))
            }
        }
    }
}

impl Drop for Writable {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut slots = self.poller.slots.borrow_mut();
        match slots.get(&self.id) {
            Some(Slot::Waiting(_)) => {
                slots.insert(self.id, Slot::Abandoned);
                drop(slots);
                let remove = opcode::PollRemove::new(self.id).build().user_data(self.id | REMOVE_BIT);
                // If even the cancel cannot be submitted the ring is unusable; the poll then
                // completes when the socket closes or becomes writable, and is reaped.
                let _ = self.poller.submit(&remove);
            }
            _ => {
                slots.remove(&self.id);
            }
        }
    }
}

impl Poller {
    fn submit(&self, entry: &io_uring::squeue::Entry) -> io::Result<()> {
        // SAFETY: POLL_ADD and POLL_REMOVE reference no user memory; the fd is only a number
        // to the kernel (the ring holds its own file reference until the poll completes).
        unsafe { self.side.submit(entry) }
    }
}

impl Reap for Poller {
    fn side_ring(&self) -> &Rc<SideRing> {
        &self.side
    }

    /// Moves every completion into its slot and wakes the waiters.
    fn reap(&self) {
        let mut woken = Vec::new();
        {
            let mut slots = self.slots.borrow_mut();
            for (id, result) in self.side.completions() {
                if id & REMOVE_BIT != 0 {
                    continue;
                }
                match slots.get_mut(&id) {
                    Some(Slot::Waiting(waker)) => {
                        if let Some(w) = waker.take() {
                            woken.push(w);
                        }
                        slots.insert(id, Slot::Done(result));
                    }
                    Some(Slot::Abandoned) => {
                        slots.remove(&id);
                    }
                    Some(Slot::Done(_)) | None => {}
                }
            }
        }
        // Wake outside the borrows: a waker may poll synchronously in some executors.
        for w in woken {
            w.wake();
        }
    }

    fn fail_all(&self, _kind: io::ErrorKind) {
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .values_mut()
            .filter_map(|s| if let Slot::Waiting(w) = s { w.take() } else { None })
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}

/// Polls still registered on this shard's ring (waiting or abandoned-but-uncompleted), after
/// reaping what has completed.
#[cfg(test)]
pub(crate) fn pending_polls() -> usize {
    POLLER.with(|p| {
        p.borrow().as_ref().map_or(0, |p| {
            p.reap();
            p.slots.borrow().len()
        })
    })
}

/// This shard's poller, created (with its driver task) on first use by each executor.
fn shard_poller() -> io::Result<Rc<Poller>> {
    owner_for_this_executor(&POLLER, RING_ENTRIES, |side| Poller {
        side,
        slots: RefCell::new(HashMap::new()),
        next_id: RefCell::new(0),
    })
}
