//! The metrics endpoint: `GET /metrics` over HTTP/1.x on shard 0, one response per
//! connection (`Connection: close`), which is how Prometheus and `curl` scrape.
//!
//! Limits: a request head is read up to [`REQUEST_HEAD_BYTES_MAX`] within [`REQUEST_TIMEOUT_MS`],
//! at most [`CONNECTIONS_MAX`] scrapes are served at once (more are closed at accept), and a
//! response that cannot be written within the timeout is dropped with its connection.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
pub const CONNECTIONS_MAX: usize = 16;

/// What a request asked for, decided from its head alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (any query); `head_only` for `HEAD`.
    Metrics {
        head_only: bool,
    },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// Parses the request line of a complete head (`...\r\n\r\n`).
pub fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|b| *b == b'\n').next() else { return Route::BadRequest };
    let Ok(line) = std::str::from_utf8(line) else { return Route::BadRequest };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        (_, "/metrics") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// Accepts scrapes until cancelled; `render` produces the page at each scrape.
pub async fn serve_forever(listener: TcpListener, render: Rc<dyn Fn() -> String>) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= CONNECTIONS_MAX {
            continue; // dropped: closed at once
        }
        open.set(open.get() + 1);
        let (open, render) = (open.clone(), render.clone());
        glommio::spawn_local(async move {
            let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
            let served =
                glommio::timer::timeout(timeout, async { Ok(serve_one(stream, &*render).await) }).await;
            match served {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("metrics endpoint: {e}"),
                Err(_) => tracing::debug!("metrics endpoint: not served within {REQUEST_TIMEOUT_MS} ms"),
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

async fn serve_one(mut stream: TcpStream, render: &dyn Fn() -> String) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= REQUEST_HEAD_BYTES_MAX {
            return respond(&mut stream, "431 Request Header Fields Too Large", "", "", false).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // closed before a whole request
        }
        head.extend_from_slice(&chunk[..n]);
    }
    match route(&head) {
        Route::Metrics { head_only } => {
            let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            respond(&mut stream, "200 OK", content_type, &render(), head_only).await
        }
        Route::NotFound => respond(&mut stream, "404 Not Found", "text/plain", "try /metrics\n", false).await,
        Route::MethodNotAllowed => {
            respond(&mut stream, "405 Method Not Allowed", "text/plain", "GET /metrics\n", false).await
        }
        Route::BadRequest => respond(&mut stream, "400 Bad Request", "text/plain", "", false).await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.close().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_their_request_line() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(route(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), Route::Metrics { head_only: false });
        assert_eq!(route(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Route::Metrics { head_only: true });
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET /metrics SPDY/3\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe\r\n\r\n"), Route::BadRequest);
    }
}
