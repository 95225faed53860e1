//! The control plane: the only wiring between shards (DESIGN.md invariant 2 — cross-core
//! channels carry control only). Shard 0 runs the [`Controller`]; every shard, shard 0 included,
//! holds a [`ControlHandle`] to
//! - send a [`ControlRequest`] to the controller and await its [`ControlReply`], and
//! - keep its own copy of the [`MetadataImage`], fed by the stream of committed records: on
//!   start the whole replayed log, then every new commit.
//!
//! Shape: per shard, two bounded single-producer/single-consumer channels — requests
//! shard → controller, updates controller → shard. The update channel carries both committed
//! batches and replies, in commit order, so a reply always arrives *after* the records it
//! committed: by the time a requester gets its reply, its own shard's image has applied the
//! reply's `committed_offset` and it can answer its client from that image. (The handle still
//! checks this with [`ControlHandle::wait_applied`]; it returns at once.)
//!
//! Why glommio's `shared_channel` and not crossbeam (which the design card names): a shard is
//! a glommio executor and must await a channel without a polling loop. A crossbeam receiver can
//! only be polled or blocked on, and blocking would stall every connection of the shard.
//! `shared_channel` is a bounded lock-free SPSC ring whose peer wakes a sleeping executor through
//! its eventfd, which is exactly "an awaitable crossbeam channel". `channel_mesh` builds on the
//! same channels but cannot send to its own shard and wants a full mesh; we need a star (every
//! shard ↔ shard 0) including shard 0 ↔ itself, so the channels are made by hand.
//!
//! Invariants:
//! - Everything is bounded: channel capacities and in-flight requests per shard
//!   ([`ControlPlaneLimits`]). A full channel makes the sender wait (backpressure); nothing is
//!   ever dropped.
//! - No cycle can deadlock: a shard's dispatcher task only ever drains its update channel (it
//!   applies, wakes, and hands replies over without awaiting anything), so the controller's
//!   sends always make progress, and so does the controller.
//! - Nothing shared across shards except inside the channel primitive: each shard's image,
//!   pending-reply table and wakers are `Rc`/`RefCell` local to that shard.
//! - Correlation is local: request ids are per shard, and the waiting happens on the requesting
//!   shard; the controller only echoes the id back.
//! - Lifecycle: the controller task runs until every `ControlHandle` of every shard is dropped;
//!   then it returns the `Controller` (to close its log) and the shards' dispatchers end.
//!
//! Wiring (one executor per shard):
//! ```text
//! let (controller_end, shard_ends) = control_plane(num_shards, ControlPlaneLimits::default());
//! // move controller_end and shard_ends[0] to shard 0, shard_ends[i] to shard i, then
//! // shard 0:  let (controller, replay) = Controller::open(config, log_dir).await?;
//! //           let controller_task = glommio::spawn_local(controller_end.run(controller, replay));
//! // every shard (0 too): let handle = shard_end.connect().await?;   // image replayed
//! ```

// Until core/src/main.rs wires the control plane into the shards, only tests call into it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use glommio::channels::local_channel;
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::sync::Semaphore;

use crate::controller::{ControlReply, ControlRequest, Controller};
use crate::metadata::records::MetadataRecord;
use crate::metadata::MetadataImage;

/// Capacities of the control plane. Control operations are rare; these only bound bursts.
#[derive(Debug, Clone, Copy)]
pub struct ControlPlaneLimits {
    /// Requests queued from one shard to the controller.
    pub request_channel: usize,
    /// Commits and replies queued from the controller to one shard.
    pub update_channel: usize,
    /// Requests of one shard awaiting their reply; more requesters wait for a slot.
    pub in_flight_per_shard: usize,
}

impl Default for ControlPlaneLimits {
    fn default() -> ControlPlaneLimits {
        ControlPlaneLimits { request_channel: 64, update_channel: 256, in_flight_per_shard: 256 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("the controller has stopped")]
    Disconnected,
}

/// A request on its way to the controller, with the id its shard waits on.
#[derive(Debug)]
struct Envelope {
    request_id: u64,
    request: ControlRequest,
}

/// Controller → shard, in commit order.
#[derive(Debug)]
enum Update {
    /// A committed batch; `end_offset` is the offset after its last record.
    Committed {
        end_offset: u64,
        records: Vec<MetadataRecord>,
    },
    /// The replayed log has been sent; the shard may serve clients.
    Ready,
    Reply {
        request_id: u64,
        reply: ControlReply,
    },
}

/// Builds the channels for `num_shards` shards: one end for the controller, one per shard.
/// Both are `Send`: create them before spawning the executors and move each in.
pub fn control_plane(
    num_shards: usize,
    limits: ControlPlaneLimits,
) -> (ControllerEndpoint, Vec<ShardEndpoint>) {
    let mut requests = Vec::with_capacity(num_shards);
    let mut updates = Vec::with_capacity(num_shards);
    let mut shards = Vec::with_capacity(num_shards);
    for shard in 0..num_shards {
        let (request_tx, request_rx) = shared_channel::new_bounded(limits.request_channel.max(1));
        let (update_tx, update_rx) = shared_channel::new_bounded(limits.update_channel.max(1));
        requests.push(request_rx);
        updates.push(update_tx);
        shards.push(ShardEndpoint { shard, requests: request_tx, updates: update_rx, limits });
    }
    (ControllerEndpoint { requests, updates }, shards)
}

// ---------------------------------------------------------------------------------------------
// Controller side (shard 0)
// ---------------------------------------------------------------------------------------------

/// The controller's ends of every shard's channels. Run it on shard 0.
pub struct ControllerEndpoint {
    requests: Vec<SharedReceiver<Envelope>>,
    updates: Vec<SharedSender<Update>>,
}

impl ControllerEndpoint {
    /// Serves the controller: sends every shard the replayed log, then handles requests one at a
    /// time, broadcasting each commit before replying. Returns the controller (to close its log)
    /// once every shard's handles are gone.
    pub async fn run(self, mut controller: Controller, replay: Vec<Vec<MetadataRecord>>) -> Controller {
        // Connect every end at once: a connect waits for the peer's, and shards connect their two
        // ends in their own order.
        let receivers: Vec<_> =
            self.requests.into_iter().map(|r| glommio::spawn_local(r.connect())).collect();
        let senders: Vec<_> = self.updates.into_iter().map(|s| glommio::spawn_local(s.connect())).collect();
        let mut shards: Vec<Option<ConnectedSender<Update>>> = Vec::with_capacity(senders.len());
        for s in senders {
            shards.push(Some(s.await));
        }
        let mut connected_receivers = Vec::with_capacity(receivers.len());
        for r in receivers {
            connected_receivers.push(r.await);
        }

        let mut end_offset = 0u64;
        for records in replay {
            end_offset += records.len() as u64;
            broadcast(&mut shards, end_offset, &records).await;
        }
        for shard in 0..shards.len() {
            send_to(&mut shards, shard, Update::Ready).await;
        }
        tracing::info!(offset = end_offset, shards = shards.len(), "controller serving");

        // Fan in: one forwarder per shard feeds a bounded local inbox, so requests are handled
        // one at a time in arrival order without polling many channels.
        let (inbox_tx, inbox) = local_channel::new_bounded(connected_receivers.len().max(1));
        // Shared by the forwarders; the inbox closes when the last one ends.
        let inbox_tx = Rc::new(inbox_tx);
        for (shard, receiver) in connected_receivers.into_iter().enumerate() {
            let inbox_tx = inbox_tx.clone();
            glommio::spawn_local(async move {
                while let Some(envelope) = receiver.recv().await {
                    if inbox_tx.send((shard, envelope)).await.is_err() {
                        break;
                    }
                }
            })
            .detach();
        }
        drop(inbox_tx);

        while let Some((shard, Envelope { request_id, request })) = inbox.recv().await {
            let handled = controller.handle(&request).await;
            if !handled.committed.is_empty() {
                broadcast(&mut shards, handled.reply.committed_offset, &handled.committed).await;
            }
            send_to(&mut shards, shard, Update::Reply { request_id, reply: handled.reply }).await;
        }
        tracing::info!("controller stopped: no shard holds a control handle");
        controller
    }
}

async fn broadcast(
    shards: &mut [Option<ConnectedSender<Update>>],
    end_offset: u64,
    records: &[MetadataRecord],
) {
    for shard in 0..shards.len() {
        send_to(shards, shard, Update::Committed { end_offset, records: records.to_vec() }).await;
    }
}

/// Sends one update, waiting while the channel is full. A shard whose end is gone is dropped
/// from the broadcast for good.
async fn send_to(shards: &mut [Option<ConnectedSender<Update>>], shard: usize, update: Update) {
    let Some(Some(sender)) = shards.get(shard) else { return };
    if sender.send(update).await.is_err() {
        tracing::warn!(shard, "shard's control channel closed; no more metadata goes to it");
        shards[shard] = None;
    }
}

// ---------------------------------------------------------------------------------------------
// Shard side
// ---------------------------------------------------------------------------------------------

/// One shard's ends of its channels. Move it to the shard's executor and [`connect`] there.
///
/// [`connect`]: ShardEndpoint::connect
pub struct ShardEndpoint {
    shard: usize,
    requests: SharedSender<Envelope>,
    updates: SharedReceiver<Update>,
    limits: ControlPlaneLimits,
}

impl ShardEndpoint {
    pub fn shard(&self) -> usize {
        self.shard
    }

    /// Connects to the controller, spawns this shard's dispatcher task, and returns once the
    /// replayed log has been applied to the shard's image.
    pub async fn connect(self) -> Result<ControlHandle, ControlError> {
        let (requests, updates) =
            futures_lite::future::zip(self.requests.connect(), self.updates.connect()).await;
        let state = Rc::new(ShardState {
            shard: self.shard,
            image: RefCell::new(MetadataImage::new()),
            pending: RefCell::new(HashMap::new()),
            waiters: RefCell::new(Vec::new()),
            ready: Cell::new(false),
            closed: Cell::new(false),
        });
        glommio::spawn_local(dispatch(state.clone(), updates)).detach();
        let handle = ControlHandle {
            state,
            requests: Rc::new(RequestSide {
                sender: requests,
                in_flight: Semaphore::new(self.limits.in_flight_per_shard.max(1) as u64),
                next_id: Cell::new(0),
            }),
        };
        handle.state.wait_until(|s| s.ready.get()).await?;
        Ok(handle)
    }
}

/// State of one shard's end, shared by its dispatcher and its handles (never across shards).
struct ShardState {
    shard: usize,
    image: RefCell<MetadataImage>,
    /// Requests sent and not yet answered: id → where the reply goes.
    pending: RefCell<HashMap<u64, local_channel::LocalSender<ControlReply>>>,
    /// Tasks waiting for the image to advance (or for readiness, or for the end).
    waiters: RefCell<Vec<Waker>>,
    ready: Cell<bool>,
    closed: Cell<bool>,
}

impl ShardState {
    fn wake_all(&self) {
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Waits until `done` holds; fails if the controller goes away first.
    async fn wait_until(&self, done: impl Fn(&ShardState) -> bool) -> Result<(), ControlError> {
        poll_fn(|cx| {
            if done(self) {
                return Poll::Ready(Ok(()));
            }
            if self.closed.get() {
                return Poll::Ready(Err(ControlError::Disconnected));
            }
            let mut waiters = self.waiters.borrow_mut();
            // One entry per waiting task: a task polled again before a wake is not re-added.
            if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
                waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// Drains the shard's update channel: applies commits to the image, then hands replies to their
/// requesters. Never awaits anything else (see the deadlock invariant).
async fn dispatch(state: Rc<ShardState>, updates: ConnectedReceiver<Update>) {
    while let Some(update) = updates.recv().await {
        match update {
            Update::Committed { end_offset, records } => {
                let mut image = state.image.borrow_mut();
                image.apply_all(&records);
                if image.applied_offset() != end_offset {
                    // Cannot happen while the controller sends every batch in order; if it did,
                    // this shard's view would be wrong, which must be loud.
                    tracing::error!(
                        shard = state.shard,
                        applied = image.applied_offset(),
                        expected = end_offset,
                        "shard metadata image out of step with the controller"
                    );
                }
                drop(image);
                state.wake_all();
            }
            Update::Ready => {
                state.ready.set(true);
                state.wake_all();
            }
            Update::Reply { request_id, reply } => {
                if let Some(reply_to) = state.pending.borrow_mut().remove(&request_id) {
                    // A requester that gave up has dropped its receiver; nothing to do then.
                    let _ = reply_to.try_send(reply);
                }
            }
        }
    }
    state.closed.set(true);
    // Dropping the reply senders fails every waiting request with `Disconnected`.
    state.pending.borrow_mut().clear();
    state.wake_all();
}

struct RequestSide {
    sender: ConnectedSender<Envelope>,
    in_flight: Semaphore,
    next_id: Cell<u64>,
}

/// A shard's access to the control plane. Cheap to clone; stays on its shard (`!Send`).
#[derive(Clone)]
pub struct ControlHandle {
    state: Rc<ShardState>,
    requests: Rc<RequestSide>,
}

impl ControlHandle {
    pub fn shard(&self) -> usize {
        self.state.shard
    }

    /// Sends `request` to the controller and waits for the reply. When it returns, this shard's
    /// image has applied everything the reply committed.
    pub async fn request(&self, request: ControlRequest) -> Result<ControlReply, ControlError> {
        if self.state.closed.get() {
            return Err(ControlError::Disconnected);
        }
        let _slot =
            self.requests.in_flight.acquire_permit(1).await.map_err(|_| ControlError::Disconnected)?;
        let request_id = self.requests.next_id.get();
        self.requests.next_id.set(request_id.wrapping_add(1));
        let (reply_to, reply) = local_channel::new_bounded(1);
        self.state.pending.borrow_mut().insert(request_id, reply_to);
        // If this future is dropped mid-way, forget the id so the table stays bounded.
        let _forget = PendingGuard { state: &self.state, request_id };

        let envelope = Envelope { request_id, request };
        self.requests.sender.send(envelope).await.map_err(|_| ControlError::Disconnected)?;
        let reply = reply.recv().await.ok_or(ControlError::Disconnected)?;
        self.wait_applied(reply.committed_offset).await?;
        Ok(reply)
    }

    /// Reads this shard's metadata image. A closure rather than a guard so the borrow cannot
    /// be held across an `.await`, where the dispatcher needs the image to apply commits.
    pub fn with_image<R>(&self, read: impl FnOnce(&MetadataImage) -> R) -> R {
        read(&self.state.image.borrow())
    }

    /// Records applied to this shard's image so far.
    pub fn applied_offset(&self) -> u64 {
        self.state.image.borrow().applied_offset()
    }

    /// Waits until this shard's image has applied `offset` records; returns the applied offset.
    /// `wait_applied(seen + 1)` waits for the next change after `seen` (for a shard task that
    /// reconciles its partition logs with the image).
    pub async fn wait_applied(&self, offset: u64) -> Result<u64, ControlError> {
        self.state.wait_until(|s| s.image.borrow().applied_offset() >= offset).await?;
        Ok(self.applied_offset())
    }
}

struct PendingGuard<'a> {
    state: &'a ShardState,
    request_id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.state.pending.borrow_mut().remove(&self.request_id);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use glommio::LocalExecutorBuilder;

    use super::*;
    use crate::controller::{ControlResponse, ControllerConfig, CreateTopicsRequest, NewTopic};

    fn create(names: &[(&str, i32)]) -> ControlRequest {
        ControlRequest::CreateTopics(CreateTopicsRequest {
            topics: names
                .iter()
                .map(|(name, partitions)| NewTopic {
                    name: name.to_string(),
                    num_partitions: *partitions,
                    replication_factor: -1,
                    assignments: vec![],
                    configs: vec![],
                })
                .collect(),
            validate_only: false,
        })
    }

    async fn wait_for_topics(handle: &ControlHandle, names: &[&str]) {
        loop {
            let (done, seen) = handle
                .with_image(|image| (names.iter().all(|n| image.topic(n).is_some()), image.applied_offset()));
            if done {
                return;
            }
            handle.wait_applied(seen + 1).await.expect("controller alive");
        }
    }

    /// What one shard does in the test: shard 1 creates topics, shard 2 fires many concurrent
    /// producer-id requests; every shard then waits for both to finish and returns its image.
    async fn shard_work(handle: ControlHandle) -> (MetadataImage, Vec<i64>) {
        let mut blocks = Vec::new();
        match handle.shard() {
            1 => {
                let reply = handle.request(create(&[("orders", 3), ("payments", 2)])).await.unwrap();
                let ControlResponse::CreateTopics(results) = &reply.response else { panic!("{reply:?}") };
                assert!(results.iter().all(|r| r.error.is_ok()), "{results:?}");
                // The reply arrives after the commit: the requester's own image has it already.
                assert!(handle.applied_offset() >= reply.committed_offset);
                assert_eq!(handle.with_image(|i| i.topic("orders").unwrap().partitions.len()), 3);
                let again = handle.request(create(&[("orders", 1)])).await.unwrap();
                let ControlResponse::CreateTopics(results) = &again.response else { panic!() };
                assert_eq!(results[0].error.code, 36);
                handle.request(create(&[("done-1", 1)])).await.unwrap();
            }
            2 => {
                let tasks: Vec<_> = (0..20)
                    .map(|_| {
                        let h = handle.clone();
                        glommio::spawn_local(async move {
                            let reply = h
                                .request(ControlRequest::AllocateProducerIds { broker_id: 1 })
                                .await
                                .unwrap();
                            match reply.response {
                                ControlResponse::AllocateProducerIds(Ok(block)) => block.first_producer_id,
                                other => panic!("{other:?}"),
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    blocks.push(t.await);
                }
                handle.request(create(&[("done-2", 1)])).await.unwrap();
            }
            _ => {}
        }
        wait_for_topics(&handle, &["orders", "payments", "done-1", "done-2"]).await;
        let image = handle.with_image(MetadataImage::clone);
        (image, blocks)
    }

    /// Starts a control plane over `num_shards` executors; shard 0 also runs the controller.
    /// Returns every shard's result and the controller's final image.
    fn run_cluster<F, Fut, T>(
        log_dir: PathBuf,
        num_shards: usize,
        limits: ControlPlaneLimits,
        work: F,
    ) -> (Vec<T>, MetadataImage)
    where
        F: Fn(ControlHandle) -> Fut + Send + Clone + 'static,
        Fut: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (controller_end, shard_ends) = control_plane(num_shards, limits);
        let mut controller_end = Some(controller_end);
        let mut executors = Vec::new();
        for (i, end) in shard_ends.into_iter().enumerate() {
            let controller_end = if i == 0 { controller_end.take() } else { None };
            let work = work.clone();
            let log_dir = log_dir.clone();
            let executor = LocalExecutorBuilder::default()
                .name(&format!("test-shard-{i}"))
                .spawn(move || async move {
                    let controller_task = match controller_end {
                        Some(controller_end) => {
                            let config = ControllerConfig::single_broker(1, num_shards);
                            let (controller, replay) = Controller::open(config, &log_dir).await.unwrap();
                            Some(glommio::spawn_local(controller_end.run(controller, replay)))
                        }
                        None => None,
                    };
                    let handle = end.connect().await.unwrap();
                    let result = work(handle).await;
                    let controller_image = match controller_task {
                        Some(task) => {
                            let controller = task.await;
                            let image = controller.image().clone();
                            controller.close().await.unwrap();
                            Some(image)
                        }
                        None => None,
                    };
                    (result, controller_image)
                })
                .unwrap();
            executors.push(executor);
        }
        let mut results = Vec::new();
        let mut controller_image = None;
        for executor in executors {
            let (result, image) = executor.join().unwrap();
            results.push(result);
            controller_image = controller_image.or(image);
        }
        (results, controller_image.unwrap())
    }

    #[test]
    fn requests_from_any_shard_commit_and_reach_every_shard_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (results, controller_image) =
            run_cluster(dir.path().to_path_buf(), 3, ControlPlaneLimits::default(), shard_work);
        for (image, _) in &results {
            assert_eq!(image, &controller_image);
        }
        let orders = controller_image.topic("orders").unwrap();
        let leaders: Vec<i32> = orders.partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, vec![1, 1001, 2001]);
        let mut blocks = results[2].1.clone();
        blocks.sort_unstable();
        assert_eq!(blocks, (0..20).map(|i| i * 1000).collect::<Vec<i64>>());

        // Restart: every shard replays the same image from the log (a read-only run, so no
        // commit can race the snapshots).
        let (replayed, controller_image_2) = run_cluster(
            dir.path().to_path_buf(),
            3,
            ControlPlaneLimits::default(),
            |handle: ControlHandle| async move { handle.with_image(MetadataImage::clone) },
        );
        assert_eq!(controller_image_2, controller_image);
        for image in &replayed {
            assert_eq!(image, &controller_image);
        }

        // And again: new placements continue the rotation where it stopped, and producer-id
        // blocks continue after the last one handed out.
        let (_, controller_image_3) = run_cluster(
            dir.path().to_path_buf(),
            3,
            ControlPlaneLimits::default(),
            |handle: ControlHandle| async move {
                if handle.shard() == 1 {
                    let reply = handle.request(create(&[("after-restart", 1)])).await.unwrap();
                    let ControlResponse::CreateTopics(r) = reply.response else { panic!() };
                    assert!(r[0].error.is_ok());
                    let block =
                        handle.request(ControlRequest::AllocateProducerIds { broker_id: 1 }).await.unwrap();
                    assert_eq!(
                        block.response,
                        ControlResponse::AllocateProducerIds(Ok(crate::controller::ProducerIdBlock {
                            broker_id: 1,
                            first_producer_id: 20_000,
                            size: 1000,
                        }))
                    );
                }
            },
        );
        let after = controller_image_3.topic("after-restart").unwrap();
        let nodes = [1, 1001, 2001];
        let last = controller_image.last_placed_leader().unwrap();
        let next = nodes[(nodes.iter().position(|n| *n == last).unwrap() + 1) % 3];
        assert_eq!(after.partitions[0].leader, next);
    }

    #[test]
    fn tiny_channels_apply_backpressure_without_losing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let limits = ControlPlaneLimits { request_channel: 1, update_channel: 1, in_flight_per_shard: 2 };
        let (results, controller_image) =
            run_cluster(dir.path().to_path_buf(), 2, limits, |handle: ControlHandle| async move {
                let shard = handle.shard();
                let tasks: Vec<_> = (0..30)
                    .map(|i| {
                        let h = handle.clone();
                        glommio::spawn_local(async move {
                            let name = format!("s{shard}-t{i}");
                            let reply = h.request(create(&[(name.as_str(), 2)])).await.unwrap();
                            let ControlResponse::CreateTopics(r) = reply.response else { panic!() };
                            assert!(r[0].error.is_ok(), "{r:?}");
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
                let all: Vec<String> =
                    (0..2).flat_map(|s| (0..30).map(move |i| format!("s{s}-t{i}"))).collect();
                let names: Vec<&str> = all.iter().map(String::as_str).collect();
                wait_for_topics(&handle, &names).await;
                handle.with_image(MetadataImage::clone)
            });
        assert_eq!(controller_image.topic_count(), 60);
        assert_eq!(controller_image.applied_offset(), 60 * 3);
        for image in &results {
            assert_eq!(image, &controller_image);
        }
    }

    #[test]
    fn requests_fail_cleanly_once_the_controller_is_gone() {
        glommio::LocalExecutor::default().run(async {
            let (controller_end, mut shard_ends) = control_plane(1, ControlPlaneLimits::default());
            let end = shard_ends.remove(0);
            // No controller will ever run: its ends are dropped before connecting.
            drop(controller_end);
            assert_eq!(end.connect().await.err(), Some(ControlError::Disconnected));
        });
    }
}
