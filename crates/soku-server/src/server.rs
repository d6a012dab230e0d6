//! The HTTP server's connections: hyper's HTTP/1 and HTTP/2 server with a timer, so that a
//! client that never finishes sending its request head is disconnected (`axum::serve` gives
//! hyper no timer, and without one hyper waits for ever), and with room for request heads well
//! beyond the application's limits (`limits`), so that the application, not hyper, refuses
//! most oversized heads, with the envelope.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::Service;

/// How long a handler may take, reading the request's body included, before the client gets
/// 503 `service_unavailable` (see `router_with_timeout`). Above the networks' own 30 s per
/// call (`SOKU_<PLATFORM>_TIMEOUT_SECS`), so that a handler that calls a platform (the OAuth
/// callback, a credential connect) still answers with that platform's error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an HTTP/1 client has to send a request's line and headers, counted from the moment
/// the server starts waiting for them; then the connection is closed. It also bounds how long
/// a kept-alive connection may sit idle between two requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// hyper's ceiling on a request's head (request line and headers): HTTP/1's read buffer and
/// HTTP/2's header list (which counts 32 bytes more per field). A larger head gets hyper's own
/// bare 431 (HTTP/1, then the connection is closed) or a 431 on that stream (HTTP/2), before the
/// application runs. Eight times the application's limit (`limits::MAX_HEADER_BYTES`), below
/// which a refusal is a 431 with the envelope; under hyper's HTTP/1 default (~400 KiB), which
/// bounds what one connection's head may hold in memory; 16 times HTTP/2's default (16 KiB).
pub const MAX_HEAD_BYTES: usize = 256 * 1024;

/// hyper's ceiling on the number of HTTP/1 header fields; more get hyper's bare 431. Above the
/// application's limit (`limits::MAX_HEADER_FIELDS`; hyper's default is 100, the same). Set, it
/// makes hyper allocate room for this many on every parse of a head instead of using its stack
/// (16 KiB, "about 5%" of its parsing time by its documentation).
pub const MAX_HEAD_FIELDS: usize = 256;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish the requests in flight and returns. Handlers can read
/// `ConnectInfo<SocketAddr>`, the peer's address, as with `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    header_read_timeout: Duration,
) -> io::Result<()> {
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEAD_FIELDS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(service) = make_service.call(peer).await;
        let connection = builder.serve_connection_with_upgrades(
            TokioIo::new(stream),
            TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A failed `accept`: one connection's trouble is skipped at once; anything else (such as too
/// many open files) is logged and waited out for a second, as `axum::serve` does.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
