//! The machine's produce ceiling: the least work any broker does for a produced byte.
//!
//! A broker that keeps what it is sent must at least receive it from a socket and write it into
//! the page cache. Here `streams` loopback TCP connections (one per broker shard) each send
//! their share of `bytes_total` in 1 MiB writes, and each is received by a thread of its own
//! that writes every byte it reads into a new file of its own with `pwrite` — no protocol, no
//! checksum, no index, nothing a real broker could skip. The same streams received and dropped
//! give loopback TCP with the same parallelism and write size. Both are shown beside the
//! 16 KiB produce figures in the report, measured in the same run (the page cache's speed on a
//! VM depends on what the host did with free memory a moment ago).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Streams (sender and receiver thread pairs) per measurement, at most.
pub const STREAMS_MAX: usize = 64;
/// Bytes sent per measurement, at most (they land in files on the given directory).
pub const BYTES_TOTAL_MAX: u64 = 64 << 30;
/// A measurement stops sending after this long whatever it has sent (a slow disk, a full
/// page cache), and reports what it received.
pub const SEND_DURATION_MAX: Duration = Duration::from_secs(60);
/// One send and one receive call move at most this many bytes (about one produce request).
const IO_BYTES: usize = 1 << 20;

/// What `shardlog-bench ceiling` prints (and `raw/ceiling.json` holds).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ceiling {
    pub streams: usize,
    /// Received and dropped: loopback TCP at this parallelism.
    pub receive_bytes: u64,
    pub receive_bytes_per_s: f64,
    /// Received and written into new files: the produce ceiling.
    pub receive_and_write_bytes: u64,
    pub receive_and_write_bytes_per_s: f64,
}

pub fn measure(dir: &Path, streams: usize, bytes_total: u64) -> Result<Ceiling> {
    if streams == 0 || streams > STREAMS_MAX {
        bail!("streams must be in 1..={STREAMS_MAX}, not {streams}");
    }
    if bytes_total == 0 || bytes_total > BYTES_TOTAL_MAX {
        bail!("bytes must be in 1..={BYTES_TOTAL_MAX}, not {bytes_total}");
    }
    let (receive_bytes, receive_s) = run(None, streams, bytes_total)?;
    let (receive_and_write_bytes, write_s) = run(Some(dir), streams, bytes_total)?;
    Ok(Ceiling {
        streams,
        receive_bytes,
        receive_bytes_per_s: receive_bytes as f64 / receive_s,
        receive_and_write_bytes,
        receive_and_write_bytes_per_s: receive_and_write_bytes as f64 / write_s,
    })
}

/// Sends `bytes_total` over `streams` connections; each receiver writes into a file under
/// `dir` when given, which is removed afterwards. Returns bytes received and seconds taken.
fn run(dir: Option<&Path>, streams: usize, bytes_total: u64) -> Result<(u64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let per_stream = bytes_total.div_ceil(streams as u64);
    let deadline = Instant::now() + SEND_DURATION_MAX;
    let mut senders = Vec::with_capacity(streams);
    for _ in 0..streams {
        senders.push(std::thread::Builder::new().name("ceiling-send".into()).spawn(
            move || -> Result<()> {
                let mut socket = TcpStream::connect(addr).context("connecting")?;
                let chunk = vec![0x5a_u8; IO_BYTES];
                let mut left = per_stream;
                while left > 0 && Instant::now() < deadline {
                    let n = left.min(IO_BYTES as u64) as usize;
                    socket.write_all(&chunk[..n]).context("sending")?;
                    left -= n as u64;
                }
                Ok(())
            },
        )?);
    }
    let start = Instant::now();
    let mut receivers = Vec::with_capacity(streams);
    for i in 0..streams {
        let (socket, _) = listener.accept().context("accepting")?;
        let file = dir.map(|d| d.join(format!("shardlog-ceiling-{}-{i}.tmp", std::process::id())));
        receivers.push(std::thread::Builder::new().name("ceiling-receive".into()).spawn(
            move || -> Result<u64> {
                let out = file.as_deref().map(RemovedOnDrop::create).transpose()?;
                receive(socket, out.as_ref().map(|o| &o.file))
            },
        )?);
    }
    let mut received = 0;
    for r in receivers {
        received += r.join().map_err(|_| anyhow::anyhow!("a receiver panicked"))??;
    }
    let seconds = start.elapsed().as_secs_f64();
    for s in senders {
        s.join().map_err(|_| anyhow::anyhow!("a sender panicked"))??;
    }
    Ok((received, seconds))
}

/// Reads until the sender closes; writes what it reads at the file's end when given a file.
fn receive(mut socket: TcpStream, out: Option<&std::fs::File>) -> Result<u64> {
    let mut buf = vec![0u8; IO_BYTES];
    let mut received = 0u64;
    loop {
        let n = socket.read(&mut buf).context("receiving")?;
        if n == 0 {
            return Ok(received);
        }
        if let Some(out) = out {
            out.write_all_at(&buf[..n], received).context("writing")?;
        }
        received += n as u64;
    }
}

/// A scratch file that is gone when the measurement is, whatever happened to it.
struct RemovedOnDrop {
    file: std::fs::File,
    path: PathBuf,
}

impl RemovedOnDrop {
    fn create(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { file, path: path.to_path_buf() })
    }
}

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_sent_is_received_and_the_files_are_removed() {
        let dir = std::env::temp_dir().join(format!("shardlog-ceiling-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Not a multiple of the streams or of one send: the shares round up.
        let c = measure(&dir, 3, (5 << 20) + 7).expect("measure");
        let sent = ((5u64 << 20) + 7).div_ceil(3) * 3;
        assert_eq!((c.streams, c.receive_bytes, c.receive_and_write_bytes), (3, sent, sent));
        assert!(c.receive_bytes_per_s > 0.0 && c.receive_and_write_bytes_per_s > 0.0, "{c:?}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "scratch files left behind");
        std::fs::remove_dir(&dir).unwrap();
        // serde_json may parse a float back one ulp off: the counts must match exactly.
        let json = serde_json::to_string(&c).expect("json");
        let back: Ceiling = serde_json::from_str(&json).expect("parse");
        assert_eq!((back.streams, back.receive_bytes, back.receive_and_write_bytes), (3, sent, sent));
        assert!((back.receive_and_write_bytes_per_s / c.receive_and_write_bytes_per_s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn writes_what_it_receives() {
        let dir = std::env::temp_dir().join(format!("shardlog-ceiling-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sender = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"first ").unwrap();
            s.write_all(b"second").unwrap();
        });
        let (socket, _) = listener.accept().unwrap();
        let path = dir.join("out");
        let out = RemovedOnDrop::create(&path).unwrap();
        let received = receive(socket, Some(&out.file)).unwrap();
        sender.join().unwrap();
        assert_eq!(received, 12);
        assert_eq!(std::fs::read(&path).unwrap(), b"first second");
        drop(out);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_unbounded_arguments() {
        let dir = std::env::temp_dir();
        assert!(measure(&dir, 0, 1).is_err());
        assert!(measure(&dir, STREAMS_MAX + 1, 1).is_err());
        assert!(measure(&dir, 1, 0).is_err());
        assert!(measure(&dir, 1, BYTES_TOTAL_MAX + 1).is_err());
    }
}
