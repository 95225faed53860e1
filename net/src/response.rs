//! Response framing: size prefix, response header, body — one contiguous buffer.
//!
//! Every response except Fetch goes through [`encode_response`] (Fetch record bytes are not
//! copied: see [`crate::fetch`]). The response header version follows the request's API and
//! version, with one fixed exception from KIP-511: ApiVersions responses always use header v0,
//! even for flexible versions, so that a client can read the error of a version it guessed.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

/// Bytes of the big-endian `i32` size that starts every frame.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Why a response could not be encoded. Both are broker bugs, not client errors: the caller
/// should log and close the connection.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding {api_key:?} v{version} response failed: {reason}")]
    Body { api_key: ApiKey, version: i16, reason: String },
    #[error("response of {size_bytes} bytes exceeds the i32 frame size")]
    TooLarge { size_bytes: usize },
}

/// The response header version for `api_key` at request `version` (0: correlation id only;
/// 1: correlation id and a tagged-field section).
pub fn response_header_version(api_key: ApiKey, version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    }
}

/// Appends a response header to `buf`.
pub fn put_response_header(buf: &mut impl BufMut, header_version: i16, correlation_id: i32) {
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0); // no tagged fields
    }
}

/// Encodes `body` as the response to a request (`api_key`, `version`, `correlation_id`) into one
/// length-prefixed frame, ready to be written to the socket.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let body_error = |reason: String| EncodeError::Body { api_key, version, reason };
    let body_bytes = body.compute_size(version).map_err(|e| body_error(e.to_string()))?;
    let header_version = response_header_version(api_key, version);
    let header_bytes = if header_version >= 1 { 5 } else { 4 };
    let frame_bytes = header_bytes + body_bytes;
    let size = i32::try_from(frame_bytes).map_err(|_| EncodeError::TooLarge { size_bytes: frame_bytes })?;

    let mut buf = BytesMut::with_capacity(SIZE_PREFIX_BYTES + frame_bytes);
    buf.put_i32(size);
    put_response_header(&mut buf, header_version, correlation_id);
    body.encode(&mut buf, version).map_err(|e| body_error(e.to_string()))?;
    // compute_size and encode come from the same generated code; if they ever disagreed the
    // prefix would lie to the client, so fix the prefix rather than trust it.
    if buf.len() != SIZE_PREFIX_BYTES + frame_bytes {
        let actual = buf.len() - SIZE_PREFIX_BYTES;
        let size = i32::try_from(actual).map_err(|_| EncodeError::TooLarge { size_bytes: actual })?;
        buf[..SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    }
    Ok(buf.freeze())
}
