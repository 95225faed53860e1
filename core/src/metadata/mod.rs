//! Cluster metadata: the records that describe topics, partitions, configs and producer-id
//! blocks ([`records`]), the in-memory state they build ([`image`]), and the durable log they
//! are committed to ([`log`], shard 0 only).
//!
//! Flow (DESIGN.md §4 "Control"): a shard sends a control request to the controller on shard 0
//! (`crate::controller`), which validates it against its image, commits the resulting batch of
//! records to the [`log::MetadataLog`], applies it, and broadcasts it to every shard
//! (`crate::control_plane`), where each shard applies it to its own [`image::MetadataImage`].
//!
//! Invariants:
//! - The log is the truth; an image is a pure function of the records applied to it, so every
//!   shard's image at offset N equals the controller's image at offset N.
//! - Nothing in here touches the data path: records are small, rare, and never carry payloads.

// Until core/src/main.rs wires the control plane into the shards, only tests call into it.
#![allow(dead_code)]

pub mod image;
pub mod log;
pub mod records;

pub use image::MetadataImage;
