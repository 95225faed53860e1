//! One client connection: read a frame, handle it, write the response, in order.
//!
//! Kafka handles one request per connection at a time (its socket server mutes a channel until
//! the response is sent), and clients rely on responses arriving in request order, so this
//! loop is sequential; concurrency comes from many connections. A connection idle for longer
//! than `connections.max.idle.ms` is closed, and so is one whose response cannot be sent
//! within that time (the client stopped reading); a frame over `socket.request.max.bytes`
//! closes it before anything is allocated; a client that stops reading stalls only its own task.

use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use shardlog_net::{api_versions_fallback_frame, parse_request, send_parts, Disposition};

use super::Shard;
use crate::handlers::{self, Response};

pub async fn serve(shard: &Shard, mut stream: TcpStream) {
    let peer_addr = stream.peer_addr().ok();
    let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
    // What group descriptions show as a member's host, in Kafka's form ("/127.0.0.1").
    let client_host = peer_addr.map(|a| format!("/{}", a.ip())).unwrap_or_default();
    let idle_ms = shard.config.connections_max_idle_ms;
    let max_frame_bytes = shard.config.socket_request_max_bytes;
    loop {
        let frame = if idle_ms > 0 {
            match glommio::timer::timeout(Duration::from_millis(idle_ms as u64), async {
                Ok(shard.frames.read_frame(&mut stream, max_frame_bytes).await)
            })
            .await
            {
                Ok(frame) => frame,
                Err(_) => {
                    tracing::debug!("closing idle connection from {peer}");
                    return;
                }
            }
        } else {
            shard.frames.read_frame(&mut stream, max_frame_bytes).await
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                tracing::info!("closing connection from {peer}: {e}");
                return;
            }
        };
        if shard.is_stopping() {
            // A clean shutdown finishes the requests in flight and starts no new ones.
            tracing::debug!("closing connection from {peer}: shutting down");
            return;
        }
        let received = Instant::now();
        // Handed back to the pool once the request is served and nothing else holds it.
        let frame_buffer = frame.clone();
        let request = match parse_request(frame) {
            Ok(request) => request,
            Err(e) => match e.disposition() {
                Disposition::ApiVersionsFallback { correlation_id } => {
                    let Ok(bytes) = api_versions_fallback_frame(correlation_id) else { return };
                    let send = async { stream.write_all(&bytes).await.map_err(|e| e.to_string()) };
                    if within_idle_limit(idle_ms, send).await.is_err() {
                        return;
                    }
                    continue;
                }
                Disposition::Close => {
                    tracing::info!("closing connection from {peer}: {e}");
                    return;
                }
            },
        };
        shard.request_started();
        let api_key = request.api_key as i16;
        let response = handlers::handle(shard, request, &client_host).await;
        let handled = Instant::now();
        let send = async {
            match response {
                Response::None => Ok(()),
                Response::Frame(bytes) => stream.write_all(&bytes).await.map_err(|e| e.to_string()),
                Response::Fetch(fetch) => {
                    send_parts(&mut stream, &fetch.parts).await.map(|_| ()).map_err(|e| e.to_string())
                }
                Response::Close(reason) => Err(reason),
            }
        };
        let sent = within_idle_limit(idle_ms, send).await;
        shard.metrics.record_request(api_key, received, handled, Instant::now());
        shard.request_finished();
        shard.frames.give_back(frame_buffer);
        if let Err(reason) = sent {
            tracing::debug!("closing connection from {peer}: {reason}");
            return;
        }
        // A client that pipelines requests always has the next one waiting, and reading it
        // need not suspend: give the shard's other connections their turn between requests,
        // or one busy producer starves every fetch on the shard.
        futures_lite::future::yield_now().await;
    }
}

/// Sends a response, bounded by `connections.max.idle.ms` (when positive): a client that stops
/// reading, or vanished without a reset, would otherwise park the send for ever and keep the
/// response's segment files open.
async fn within_idle_limit(
    idle_ms: i64,
    send: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    if idle_ms <= 0 {
        return send.await;
    }
    glommio::timer::timeout(Duration::from_millis(idle_ms as u64), async { Ok(send.await) })
        .await
        .unwrap_or_else(|_| Err(format!("the client read no response for {idle_ms} ms")))
}
