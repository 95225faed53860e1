//! Sending `[bytes | file region]…` to a socket; file regions go with `sendfile(2)`, so record
//! bytes move from the page cache to the socket without passing through user space.
//!
//! The small byte parts (response prefixes) go through the stream's ordinary async write.
//! For regions, `sendfile` runs on the socket's descriptor, which [`prepare_for_sendfile`]
//! switches to `O_NONBLOCK` once per connection (glommio's own socket calls pass `MSG_DONTWAIT`
//! per call and do not mind; only `TcpStream::peek`, which uses an io_uring `recv`, would then
//! fail with `EAGAIN`, so do not peek a connection that serves fetches).
//!
//! When the socket is full, the task sleeps on an io_uring poll for writability (the private
//! `writable` module): a slow client parks one task and never stalls the shard. A client that
//! resets the connection surfaces as an error (`EPIPE`/`ECONNRESET`; Rust ignores `SIGPIPE`).
//! A client that silently vanishes leaves the send waiting: the caller bounds every send with a
//! timeout and drops this future, which cancels the poll.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use bytes::Bytes;
use futures_lite::{AsyncWrite, AsyncWriteExt};

use crate::fetch::FileRegion;
use crate::writable::wait_writable;

/// Largest single `sendfile` call. The task yields to the shard's other tasks between calls
/// when glommio asks, so a fast reader of a large response cannot monopolise the shard.
pub const SENDFILE_CHUNK_BYTES: usize = 4 << 20;

/// Per-shard counters of the zero-copy path (thread-local: each shard reads its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendfileStats {
    /// `sendfile` calls that moved bytes.
    pub calls: u64,
    /// Bytes moved by `sendfile` (record bytes that never entered user space).
    pub bytes: u64,
    /// Times a send found the socket full and slept on the writability poll.
    pub writable_waits: u64,
}

thread_local! {
    static STATS: std::cell::Cell<SendfileStats> = const {
        std::cell::Cell::new(SendfileStats { calls: 0, bytes: 0, writable_waits: 0 })
    };
}

/// This shard's counters since it started (for metrics, and to prove the path in tests).
pub fn sendfile_stats() -> SendfileStats {
    STATS.with(|s| s.get())
}

fn count(update: impl FnOnce(&mut SendfileStats)) {
    STATS.with(|s| {
        let mut stats = s.get();
        update(&mut stats);
        s.set(stats);
    });
}

/// One piece of an outgoing response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutPart {
    /// Bytes in memory (headers, small responses).
    Bytes(Bytes),
    /// A region of an open file, sent with `sendfile`.
    File(FileRegion),
}

impl OutPart {
    pub fn len_bytes(&self) -> u64 {
        match self {
            OutPart::Bytes(b) => b.len() as u64,
            OutPart::File(r) => u64::from(r.len_bytes),
        }
    }
}

/// Why a send failed. Either way the connection is unusable: close it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("socket send failed: {0}")]
    Io(#[from] io::Error),
    #[error("file ended {missing_bytes} bytes before the end of region {region:?}")]
    FileTooShort { region: FileRegion, missing_bytes: u64 },
}

/// Writes `parts` in order to `stream`; returns the number of bytes sent.
///
/// `stream` must write through at once (a glommio `TcpStream`, not a buffered one: regions go
/// to its descriptor directly, and would overtake buffered bytes), belong to the current
/// executor, and have been through [`prepare_for_sendfile`].
pub async fn send_parts<S>(stream: &mut S, parts: &[OutPart]) -> Result<u64, SendError>
where
    S: AsyncWrite + AsRawFd + Unpin,
{
    let socket_fd = stream.as_raw_fd();
    debug_assert!(
        !parts.iter().any(|p| matches!(p, OutPart::File(_))) || is_nonblocking(socket_fd),
        "send_parts with file regions on a socket not prepared_for_sendfile: sendfile would block the shard"
    );
    let mut sent_bytes = 0;
    for part in parts {
        match part {
            OutPart::Bytes(bytes) => stream.write_all(bytes).await?,
            OutPart::File(region) => send_region(socket_fd, region).await?,
        }
        sent_bytes += part.len_bytes();
    }
    Ok(sent_bytes)
}

/// Makes a connection's socket ready for [`send_parts`] with file regions: `O_NONBLOCK`, so a
/// full socket returns `EAGAIN` to `sendfile` instead of blocking the shard. Once per
/// connection (it was two `fcntl` calls per Fetch response).
pub fn prepare_for_sendfile(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we were lent; results checked.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0
        && unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: fcntl F_GETFL on a descriptor we were lent.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_NONBLOCK != 0
}

async fn send_region(socket_fd: RawFd, region: &FileRegion) -> Result<(), SendError> {
    let mut offset = libc::off_t::try_from(region.position)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file position beyond off_t"))?;
    let mut left = region.len_bytes as usize;
    while left > 0 {
        let chunk = left.min(SENDFILE_CHUNK_BYTES);
        // SAFETY: both descriptors are open (the caller owns the file; the stream is borrowed),
        // and `offset` is a valid off_t the kernel advances.
        let n = unsafe { libc::sendfile(socket_fd, region.fd, &mut offset, chunk) };
        if n > 0 {
            left -= n as usize;
            count(|s| {
                s.calls += 1;
                s.bytes += n as u64;
            });
            glommio::yield_if_needed().await;
            continue;
        }
        if n == 0 {
            return Err(SendError::FileTooShort { region: *region, missing_bytes: left as u64 });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) => {
                count(|s| s.writable_waits += 1);
                wait_writable(socket_fd)?.await?;
            }
            Some(libc::EINTR) => {}
            _ => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncReadExt;
    use glommio::net::{TcpListener, TcpStream};
    use glommio::timer::sleep;
    use glommio::LocalExecutorBuilder;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    const FILE_BYTES: usize = 64 << 20;

    fn content_byte(i: usize) -> u8 {
        (i.wrapping_mul(2654435761) >> 13) as u8
    }

    fn make_file() -> std::fs::File {
        let mut file = tempfile::tempfile().expect("tempfile");
        let data: Vec<u8> = (0..FILE_BYTES).map(content_byte).collect();
        file.write_all(&data).expect("write");
        file
    }

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        LocalExecutorBuilder::default()
            .spawn(move || async move { f().await })
            .expect("executor")
            .join()
            .expect("join");
    }

    /// ~64 MiB of file regions, interleaved with header bytes, to a reader that sleeps between
    /// small reads so the sender hits EAGAIN again and again; every byte is checked.
    #[test]
    fn sends_64_mib_of_regions_to_a_slow_reader() {
        run(|| async {
            let file = make_file();
            let fd = file.as_raw_fd();
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");

            // Regions cover the file in uneven pieces, each preceded by a 3-byte marker.
            let mut parts = Vec::new();
            let mut expected_len = 0usize;
            let mut pos = 0usize;
            let mut k = 0u8;
            while pos < FILE_BYTES {
                let len = (FILE_BYTES - pos).min(1_000_003 + usize::from(k) * 7919);
                parts.push(OutPart::Bytes(Bytes::from(vec![0xAB, k, 0xCD])));
                parts.push(OutPart::File(FileRegion { fd, position: pos as u64, len_bytes: len as u32 }));
                expected_len += 3 + len;
                pos += len;
                k = k.wrapping_add(1);
            }

            let reader = glommio::spawn_local(async move {
                let mut conn = TcpStream::connect(addr).await.expect("connect");
                let mut received = Vec::with_capacity(expected_len);
                let mut buf = vec![0u8; 64 * 1024];
                let mut reads = 0u32;
                while received.len() < expected_len {
                    let n = conn.read(&mut buf).await.expect("read");
                    assert!(n > 0, "eof after {} bytes", received.len());
                    received.extend_from_slice(&buf[..n]);
                    reads += 1;
                    // Slow consumer: pause regularly so the socket buffer fills up.
                    if reads & 3 == 0 {
                        sleep(Duration::from_millis(1)).await;
                    }
                }
                received
            });

            let mut server_side = listener.accept().await.expect("accept");
            prepare_for_sendfile(server_side.as_raw_fd()).expect("nonblocking");
            let before = sendfile_stats();
            let sent = send_parts(&mut server_side, &parts).await.expect("send");
            assert_eq!(sent as usize, expected_len);
            let received = reader.await;
            let after = sendfile_stats();
            // All file bytes went through sendfile, and the slow reader made the sender wait
            // on the poll ring (not spin: each wait is one completed POLL_ADD).
            assert_eq!(after.bytes - before.bytes, FILE_BYTES as u64);
            assert!(after.writable_waits - before.writable_waits > 10, "{before:?} -> {after:?}");
            eprintln!("sendfile stats for 64 MiB to a slow reader: {before:?} -> {after:?}");

            // Check the stream: markers then file bytes, in order.
            let mut at = 0usize;
            let mut pos = 0usize;
            for part in &parts {
                match part {
                    OutPart::Bytes(b) => {
                        assert_eq!(&received[at..at + b.len()], &b[..]);
                        at += b.len();
                    }
                    OutPart::File(r) => {
                        let len = r.len_bytes as usize;
                        for (i, byte) in received[at..at + len].iter().enumerate() {
                            if *byte != content_byte(pos + i) {
                                panic!("byte {} of the file differs", pos + i);
                            }
                        }
                        at += len;
                        pos += len;
                    }
                }
            }
            assert_eq!(at, received.len());
            drop(file);
        });
    }

    /// A client that connects, reads nothing and resets: the sender gets an error, not a hang.
    #[test]
    fn vanished_client_is_an_error() {
        run(|| async {
            let file = make_file();
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = glommio::spawn_local(async move {
                let conn = TcpStream::connect(addr).await.expect("connect");
                // Let the sender fill the socket buffers, then vanish with a reset
                // (SO_LINGER 0 makes close send RST).
                sleep(Duration::from_millis(100)).await;
                let linger = libc::linger { l_onoff: 1, l_linger: 0 };
                // SAFETY: valid fd and a correctly sized option value.
                unsafe {
                    libc::setsockopt(
                        conn.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        &linger as *const libc::linger as *const libc::c_void,
                        std::mem::size_of::<libc::linger>() as libc::socklen_t,
                    );
                }
                drop(conn);
            });
            let mut server_side = listener.accept().await.expect("accept");
            prepare_for_sendfile(server_side.as_raw_fd()).expect("nonblocking");
            let region = FileRegion { fd: file.as_raw_fd(), position: 0, len_bytes: FILE_BYTES as u32 };
            let result = send_parts(&mut server_side, &[OutPart::File(region)]).await;
            client.await;
            assert!(matches!(result, Err(SendError::Io(_))), "{result:?}");
        });
    }

    /// A send that the caller abandons (its timeout fires while the client reads nothing)
    /// cancels its poll: no poll stays registered, and closing the stream really closes the
    /// socket, so the client drains what was buffered and then sees EOF.
    #[test]
    fn abandoned_send_cancels_its_poll() {
        run(|| async {
            let file = make_file();
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (tx, rx) = glommio::channels::local_channel::new_bounded::<()>(1);
            let client = glommio::spawn_local(async move {
                let mut conn = TcpStream::connect(addr).await.expect("connect");
                let _ = rx.recv().await; // read nothing until the server gave up
                let mut total = 0usize;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return total,
                        Ok(n) => total += n,
                    }
                }
            });
            let mut server_side = listener.accept().await.expect("accept");
            prepare_for_sendfile(server_side.as_raw_fd()).expect("nonblocking");
            let region = FileRegion { fd: file.as_raw_fd(), position: 0, len_bytes: FILE_BYTES as u32 };
            let parts = [OutPart::File(region)];
            let outcome =
                futures_lite::future::or(async { Some(send_parts(&mut server_side, &parts).await) }, async {
                    sleep(Duration::from_millis(300)).await;
                    None
                })
                .await;
            assert!(outcome.is_none(), "send should still be waiting on a reader that reads nothing");
            assert!(sendfile_stats().writable_waits > 0);
            assert_eq!(crate::writable::pending_polls(), 0, "the abandoned poll was not cancelled");
            drop(server_side);
            tx.send(()).await.expect("signal");
            let drained = client.await;
            assert!(drained > 0 && drained < FILE_BYTES, "client drained {drained} bytes then saw EOF");
        });
    }

    /// A region past the end of the file is reported, not looped on.
    #[test]
    fn short_file_is_an_error() {
        run(|| async {
            let mut file = tempfile::tempfile().expect("tempfile");
            file.write_all(b"0123456789").expect("write");
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = glommio::spawn_local(async move {
                let mut conn = TcpStream::connect(addr).await.expect("connect");
                let mut buf = Vec::new();
                let _ = conn.read_to_end(&mut buf).await;
                buf
            });
            let mut server_side = listener.accept().await.expect("accept");
            prepare_for_sendfile(server_side.as_raw_fd()).expect("nonblocking");
            let region = FileRegion { fd: file.as_raw_fd(), position: 4, len_bytes: 20 };
            let result = send_parts(&mut server_side, &[OutPart::File(region)]).await;
            assert!(matches!(result, Err(SendError::FileTooShort { missing_bytes: 14, .. })), "{result:?}");
            drop(server_side);
            assert_eq!(client.await, b"456789");
        });
    }
}
