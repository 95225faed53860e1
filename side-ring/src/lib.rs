//! `SideRing`: a small io_uring of a shard's own, beside glommio's, for the operations glommio
//! keeps to itself or does not offer — waiting for a socket to become writable (`POLL_ADD`, for
//! `sendfile`, in `shardlog-net`) and writing memory glommio did not allocate (`WRITEV`, for
//! appends straight from the request frame, in `shardlog-storage`).
//!
//! Its completions signal an eventfd registered with it, and one driver task per ring waits on
//! that eventfd through glommio's own ring (an ordinary buffered read, which io_uring parks on
//! the eventfd's poll queue), so no thread ever busy-polls it; on each wake-up the driver calls
//! its owner's [`Reap::reap`]. A ring belongs to one shard (`Rc`/`RefCell`, created by that
//! shard's executor): nothing is shared across cores.
//!
//! What each owner keeps itself: which memory and files its submitted operations point into,
//! held until their completions are reaped. This crate only submits and hands completions over.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::FromRawFd;
use std::rc::{Rc, Weak};
use std::thread::LocalKey;

use glommio::io::BufferedFile;
use io_uring::{squeue, IoUring};

/// The owner of a ring: told when completions may be waiting, and when the ring is unusable.
pub trait Reap {
    /// The ring it owns.
    fn side_ring(&self) -> &Rc<SideRing>;
    /// Take the ring's completions ([`SideRing::completions`]) and wake whoever waits on them.
    fn reap(&self);
    /// The driver stopped: fail every waiter, now and later.
    fn fail_all(&self, kind: io::ErrorKind);
}

/// The running executor's owner of type `T`, cached in the thread-local `cache`: created on
/// first use by each executor (a thread may run several in turn, and a ring must not outlive
/// the executor whose reactor drives it) around a new ring of `entries` slots, its driver
/// started.
pub fn owner_for_this_executor<T: Reap + 'static>(
    cache: &'static LocalKey<RefCell<Option<Rc<T>>>>,
    entries: u32,
    make: impl FnOnce(Rc<SideRing>) -> T,
) -> io::Result<Rc<T>> {
    if let Some(owner) = cache.with(|c| c.borrow().clone()) {
        if owner.side_ring().is_this_executors() {
            return Ok(owner);
        }
    }
    let owner = Rc::new(make(SideRing::new(entries)?));
    let weak: Weak<dyn Reap> = Rc::downgrade(&owner) as Weak<T>;
    owner.side_ring().start_driver(weak);
    cache.with(|c| *c.borrow_mut() = Some(Rc::clone(&owner)));
    Ok(owner)
}

pub struct SideRing {
    /// The glommio executor whose shard created the ring (a thread may run several in turn).
    executor_id: usize,
    ring: RefCell<IoUring>,
    /// The eventfd the ring signals, until [`SideRing::start_driver`] hands it to the driver.
    event_file: RefCell<Option<BufferedFile>>,
    /// Set when the driver failed; later submissions then fail instead of hanging.
    broken: Cell<Option<io::ErrorKind>>,
}

impl SideRing {
    /// A ring of `entries` submission slots for the calling shard. Start its driver with
    /// [`SideRing::start_driver`] once its owner exists.
    pub fn new(entries: u32) -> io::Result<Rc<SideRing>> {
        let ring = IoUring::new(entries)?;
        // SAFETY: plain syscall; the result is checked.
        let event_fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if event_fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `event_fd` is a fresh descriptor we own; glommio closes it when the file drops.
        let event_file = unsafe { BufferedFile::from_raw_fd(event_fd) };
        ring.submitter().register_eventfd(event_fd)?;
        Ok(Rc::new(SideRing {
            executor_id: glommio::executor().id(),
            ring: RefCell::new(ring),
            event_file: RefCell::new(Some(event_file)),
            broken: Cell::new(None),
        }))
    }

    /// Spawns the driver on the current executor: it calls `owner`'s [`Reap::reap`] whenever
    /// the ring signals, and ends when the owner is gone.
    pub fn start_driver(self: &Rc<Self>, owner: Weak<dyn Reap>) {
        if let Some(event_file) = self.event_file.borrow_mut().take() {
            glommio::spawn_local(drive(Rc::clone(self), owner, event_file)).detach();
        }
    }

    /// Whether this ring belongs to the executor now running (a thread-local cache of rings
    /// must not hand a later executor on the same thread its predecessor's).
    pub fn is_this_executors(&self) -> bool {
        self.executor_id == glommio::executor().id()
    }

    pub fn broken(&self) -> Option<io::ErrorKind> {
        self.broken.get()
    }

    /// Submits `entry` now (a full queue is submitted first).
    ///
    /// # Safety
    /// Whatever `entry` points to (buffers, iovecs) must stay valid until its completion has
    /// been taken from [`SideRing::completions`] or [`SideRing::wait_for`].
    pub unsafe fn submit(&self, entry: &squeue::Entry) -> io::Result<()> {
        if let Some(kind) = self.broken.get() {
            return Err(io::Error::new(kind, "the shard's side ring failed"));
        }
        let mut ring = self.ring.borrow_mut();
        // SAFETY: the caller keeps what the entry points to valid (see above).
        if unsafe { ring.submission().push(entry) }.is_err() {
            ring.submit()?;
            unsafe { ring.submission().push(entry) }
                .map_err(|_| io::Error::other("side ring submission queue full"))?;
        }
        ring.submit()?;
        Ok(())
    }

    /// Every completion waiting, as (`user_data`, result: a count, or -errno). Looking costs no
    /// system call: the completion queue is shared memory.
    pub fn completions(&self) -> Vec<(u64, i32)> {
        self.ring.borrow_mut().completion().map(|cqe| (cqe.user_data(), cqe.result())).collect()
    }

    /// Blocks the thread until `count` more completions arrived, handing each to
    /// `on_completion`: for an owner that must not free memory the kernel may still read (in
    /// its `Drop`, when the shard ends). Stops early if the ring cannot wait.
    pub fn wait_for(&self, mut count: usize, mut on_completion: impl FnMut(u64, i32)) {
        let mut ring = self.ring.borrow_mut();
        while count > 0 {
            if ring.submit_and_wait(1).is_err() {
                return;
            }
            for cqe in ring.completion() {
                on_completion(cqe.user_data(), cqe.result());
                count = count.saturating_sub(1);
            }
        }
    }
}

/// The driver: sleep on the eventfd (in glommio's ring), let the owner reap, repeat.
async fn drive(side_ring: Rc<SideRing>, owner: Weak<dyn Reap>, event_file: BufferedFile) {
    loop {
        // Reading an eventfd returns its 8-byte counter and resets it.
        let read = event_file.read_at(0, 8).await;
        let Some(owner) = owner.upgrade() else { return };
        if let Err(e) = read {
            let kind = io::Error::from(e).kind();
            side_ring.broken.set(Some(kind));
            owner.fail_all(kind);
            return;
        }
        owner.reap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use io_uring::opcode;
    use std::time::Duration;

    /// Records what it is handed, as an owner keeps its slots.
    struct Seen {
        ring: Rc<SideRing>,
        completions: RefCell<Vec<(u64, i32)>>,
        wakes: Cell<usize>,
    }

    impl Seen {
        fn new(ring: Rc<SideRing>) -> Seen {
            Seen { ring, completions: RefCell::default(), wakes: Cell::default() }
        }
    }

    impl Reap for Seen {
        fn side_ring(&self) -> &Rc<SideRing> {
            &self.ring
        }
        fn reap(&self) {
            self.wakes.set(self.wakes.get() + 1);
            self.completions.borrow_mut().extend(self.ring.completions());
        }
        fn fail_all(&self, _kind: io::ErrorKind) {}
    }

    thread_local! {
        static SEEN: RefCell<Option<Rc<Seen>>> = const { RefCell::new(None) };
    }

    #[test]
    fn each_executor_gets_an_owner_of_its_own_and_keeps_it() {
        for _ in 0..2 {
            // Two executors in turn on one thread: the second must not get the first's ring.
            let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
            executor.run(async {
                let first = owner_for_this_executor(&SEEN, 8, Seen::new).unwrap();
                let again = owner_for_this_executor(&SEEN, 8, Seen::new).unwrap();
                assert!(Rc::ptr_eq(&first, &again));
                assert!(first.ring.is_this_executors());
                // Its driver was started: a completion reaches it.
                // SAFETY: a NOP points to nothing.
                unsafe { first.ring.submit(&opcode::Nop::new().build().user_data(1)).unwrap() };
                for _ in 0..1000 {
                    if !first.completions.borrow().is_empty() {
                        break;
                    }
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
                assert_eq!(*first.completions.borrow(), [(1, 0)]);
            });
        }
    }

    #[test]
    fn the_driver_hands_completions_to_the_owner_and_stops_when_the_owner_is_gone() {
        let executor = glommio::LocalExecutorBuilder::default().make().unwrap();
        executor.run(async {
            let ring = SideRing::new(8).unwrap();
            assert!(ring.is_this_executors());
            let seen = Rc::new(Seen::new(Rc::clone(&ring)));
            let owner: Weak<dyn Reap> = Rc::downgrade(&seen) as Weak<Seen>;
            ring.start_driver(owner);
            // SAFETY: a NOP points to nothing.
            unsafe { ring.submit(&opcode::Nop::new().build().user_data(7)).unwrap() };
            for _ in 0..1000 {
                if !seen.completions.borrow().is_empty() {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(*seen.completions.borrow(), [(7, 0)], "woken by the eventfd, not by polling");
            assert!(seen.wakes.get() >= 1);

            // Blocking wait, as an owner's `Drop` does: nothing is reaped by the driver first.
            unsafe { ring.submit(&opcode::Nop::new().build().user_data(8)).unwrap() };
            let mut waited = Vec::new();
            ring.wait_for(1, |id, result| waited.push((id, result)));
            assert_eq!(waited, [(8, 0)]);

            // The owner gone, the driver ends at its next wake-up instead of calling it.
            drop(seen);
            unsafe { ring.submit(&opcode::Nop::new().build().user_data(9)).unwrap() };
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert_eq!(ring.completions(), [(9, 0)], "nobody took the last completion");
        });
    }
}
