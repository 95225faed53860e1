//! A small blocking Kafka client for the tools: one request at a time over a
//! `std::net::TcpStream`, headers and bodies encoded and decoded with `kafka-protocol`.
//!
//! Bounded: connecting, writing and reading each time out ([`Client::connect`]'s `timeout`),
//! and a response frame larger than [`RESPONSE_MAX_BYTES`] is refused before it is allocated.
//! Every failure is a [`ClientError`] whose text is one line meant for a person.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use shardlog_net::kafka_protocol::messages::{RequestHeader, ResponseHeader};
use shardlog_net::kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, HeaderVersion, Request, StrBytes,
};

/// The largest response frame the tools accept (Metadata of a big cluster fits easily).
pub const RESPONSE_MAX_BYTES: usize = 64 << 20;
/// How long the tools wait to connect and for each response unless `--command-config` says
/// otherwise (`request.timeout.ms`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to an unreachable address may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad bootstrap server '{0}': expected HOST:PORT")]
    BadAddress(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("connection to {addr} failed: {source}")]
    Io { addr: String, source: std::io::Error },
    #[error("{addr} closed the connection instead of answering (api {api_key} v{version})")]
    Closed { addr: String, api_key: i16, version: i16 },
    #[error("{addr} sent a response of {size} bytes (more than {RESPONSE_MAX_BYTES})")]
    TooLarge { addr: String, size: i64 },
    #[error("cannot encode a request: {0}")]
    Encode(String),
    #[error("{addr} sent a response that does not decode (api {api_key} v{version}): {detail}")]
    Decode { addr: String, api_key: i16, version: i16, detail: String },
}

/// One connection to one node.
pub struct Client {
    stream: TcpStream,
    addr: String,
    next_correlation_id: i32,
}

impl Client {
    /// Connects to `addr` (`HOST:PORT`), trying each resolved address in turn.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Client, ClientError> {
        let addrs: Vec<SocketAddr> =
            addr.to_socket_addrs().map_err(|_| ClientError::BadAddress(addr.to_string()))?.collect();
        let mut last = None;
        for sock in addrs {
            match TcpStream::connect_timeout(&sock, timeout.min(CONNECT_TIMEOUT)) {
                Ok(stream) => {
                    let io = |source| ClientError::Io { addr: addr.to_string(), source };
                    stream.set_read_timeout(Some(timeout)).map_err(io)?;
                    stream.set_write_timeout(Some(timeout)).map_err(io)?;
                    let _ = stream.set_nodelay(true);
                    return Ok(Client { stream, addr: addr.to_string(), next_correlation_id: 1 });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(ClientError::Connect {
            addr: addr.to_string(),
            source: last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `body` at `version` and returns the decoded response.
    pub fn call<R: Request>(&mut self, version: i16, body: &R) -> Result<R::Response, ClientError> {
        let correlation_id = self.send(version, body)?;
        read_response::<R>(&mut self.stream, &self.addr, version, correlation_id)
    }

    /// A second handle on this connection that reads responses while this one keeps sending:
    /// with it a caller can have several requests in flight (Kafka answers a connection's
    /// requests in order), as the bench's pipelining producer does.
    pub fn reader(&self) -> Result<ResponseReader, ClientError> {
        let stream = self.stream.try_clone().map_err(|source| self.io(source))?;
        Ok(ResponseReader { stream, addr: self.addr.clone() })
    }

    /// Sends `body` at `version` without waiting for an answer (Produce with `acks=0`, which
    /// the broker does not answer); returns the request's correlation id.
    pub fn send<R: Request>(&mut self, version: i16, body: &R) -> Result<i32, ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("shardlog-cli")));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0u8; 4]);
        encode_request_header_into_buffer(&mut buf, &header)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        body.encode(&mut buf, version).map_err(|e| ClientError::Encode(e.to_string()))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).map_err(|source| self.io(source))?;
        Ok(correlation_id)
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io { addr: self.addr.clone(), source }
    }
}

/// The reading half of a [`Client`]'s connection (see [`Client::reader`]).
pub struct ResponseReader {
    stream: TcpStream,
    addr: String,
}

impl ResponseReader {
    /// Reads the next response, which must answer the request `correlation_id` of type `R`
    /// sent at `version`.
    pub fn receive<R: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<R::Response, ClientError> {
        read_response::<R>(&mut self.stream, &self.addr, version, correlation_id)
    }
}

fn read_response<R: Request>(
    stream: &mut TcpStream,
    addr: &str,
    version: i16,
    correlation_id: i32,
) -> Result<R::Response, ClientError> {
    let mut frame = read_frame(stream, addr, R::KEY, version)?;
    let decode =
        |detail: String| ClientError::Decode { addr: addr.to_string(), api_key: R::KEY, version, detail };
    let header = ResponseHeader::decode(&mut frame, <R::Response as HeaderVersion>::header_version(version))
        .map_err(|e| decode(e.to_string()))?;
    if header.correlation_id != correlation_id {
        return Err(decode(format!("correlation id {} instead of {correlation_id}", header.correlation_id)));
    }
    <R::Response as Decodable>::decode(&mut frame, version).map_err(|e| decode(e.to_string()))
}

fn read_frame(stream: &mut TcpStream, addr: &str, api_key: i16, version: i16) -> Result<Bytes, ClientError> {
    let io = |source| ClientError::Io { addr: addr.to_string(), source };
    let mut size = [0u8; 4];
    if let Err(e) = stream.read_exact(&mut size) {
        return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ClientError::Closed { addr: addr.to_string(), api_key, version }
        } else {
            io(e)
        });
    }
    let size = i32::from_be_bytes(size) as i64;
    if size < 0 || size as usize > RESPONSE_MAX_BYTES {
        return Err(ClientError::TooLarge { addr: addr.to_string(), size });
    }
    let mut buf = vec![0u8; size as usize];
    stream.read_exact(&mut buf).map_err(io)?;
    Ok(Bytes::from(buf))
}

/// The timeout the tools use: `request.timeout.ms` or `default.api.timeout.ms` from a
/// `--command-config` properties file, else [`DEFAULT_TIMEOUT`]. Other keys are accepted and
/// ignored (there is no security to configure).
pub fn timeout_from_command_config(path: Option<&std::path::Path>) -> Result<Duration, String> {
    let Some(path) = path else { return Ok(DEFAULT_TIMEOUT) };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut timeout = DEFAULT_TIMEOUT;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k == "request.timeout.ms" || k == "default.api.timeout.ms" {
            let ms: u64 =
                v.parse().map_err(|_| format!("{}: {k} must be a number of milliseconds", path.display()))?;
            timeout = Duration::from_millis(ms.max(1));
        }
    }
    Ok(timeout)
}
