//! `shardlog-net`: the Kafka wire protocol of the shardlog broker.
//!
//! It owns everything between a socket and a decoded request, and between a response and the
//! socket: size-prefixed framing ([`frame`]), request headers and bodies ([`request`], decoded
//! with the `kafka-protocol` crate's schemas), response framing ([`response`]), the advertised
//! API versions ([`api_versions`]), the mapping of broker errors to Kafka error codes
//! ([`error`]), and the zero-copy Fetch path: a hand-framed FetchResponse around file regions
//! ([`fetch`]) that [`sendfile`] moves from the page cache to the socket. It owns no partition
//! state; `core` calls it from each shard.
//!
//! Invariants:
//! - **Untrusted input never panics, aborts or hangs.** Frame sizes are checked against
//!   `socket.request.max.bytes` before anything is allocated; every array count is checked
//!   against the bytes that back it ([`shape`]) before `kafka-protocol` allocates for it; every
//!   buffer has a limit. A proptest feeds random and mutated frames to [`request::parse_request`].
//! - **Kafka's behaviour on bad requests:** ApiVersions at an unknown version gets the v0
//!   fallback; other unknown APIs, versions or malformed bodies close the connection
//!   ([`request::Disposition`]).
//! - **Record bytes are never copied through user space on the way out** (`sendfile(2)`), and
//!   produce records stay slices of the request frame on the way in. The one exception is
//!   Fetch v0-3 ([`legacy`]): its old message formats exist only after down-conversion.
//! - **Thread-per-core:** no `Mutex`, no `Arc`; per-shard state is `Rc`/thread-local.
//!   Nothing here blocks a shard: a slow client parks its task on io_uring, a vanished
//!   client turns into an error; time limits are the caller's (glommio timers).
//!
//! Typical connection loop (in `core`):
//! ```ignore
//! while let Some(frame) = read_frame(&mut stream, max_request_bytes).await? {
//!     match parse_request(frame) {
//!         Ok(req) => { /* handle; reply with encode_response(..), or for Fetch:
//!                       send_parts(&mut stream, &encode_fetch_response(v, corr, &parts)?) */ }
//!         Err(e) => match e.disposition() {
//!             Disposition::ApiVersionsFallback { correlation_id } =>
//!                 stream.write_all(&api_versions_fallback_frame(correlation_id)?).await?,
//!             Disposition::Close => break,
//!         },
//!     }
//! }
//! ```

pub mod alloc;
pub mod api_versions;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod legacy;
pub mod request;
pub mod response;
pub mod sendfile;
pub mod shape;
mod writable;

pub use api_versions::{api_versions_fallback_frame, api_versions_response, SUPPORTED_APIS};
pub use error::{KafkaError, NONE};
pub use fetch::{encode_fetch_response, FetchPartition, FetchResponseParts, FetchTopic, FileRegion};
pub use frame::{read_frame, FrameError, FramePool};
pub use legacy::LegacyRequest;
pub use request::{parse_request, Disposition, Request, RequestError};
pub use response::{encode_response, EncodeError};
pub use sendfile::{prepare_for_sendfile, send_parts, sendfile_stats, OutPart, SendError, SendfileStats};

/// Re-exported so callers use the same `kafka-protocol` version as the codecs.
pub use kafka_protocol;
