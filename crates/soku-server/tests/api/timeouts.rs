//! Time limits: a handler that takes too long answers 503 with the envelope; a client that
//! never finishes its request head is disconnected, and others are served meanwhile.

use crate::util::{TestApp, expect_error};
use axum::Router;
use axum::routing::get;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the test app's state with the given time limits on a new port; returns its base URL.
async fn serve_with(app: &TestApp, request_timeout: Duration, header_timeout: Duration) -> String {
    let slow = Router::new().route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        }),
    );
    let router = soku_server::router_with_timeout(app.state.clone(), Some(slow), request_timeout);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(soku_server::server::serve(
        listener,
        router,
        std::future::pending(),
        header_timeout,
    ));
    base
}

#[tokio::test]
async fn a_handler_that_takes_too_long_gets_a_503_envelope() {
    let app = TestApp::start().await;
    let base = serve_with(&app, Duration::from_millis(300), Duration::from_secs(10)).await;

    let started = Instant::now();
    let r = app
        .http
        .get(format!("{base}/test/slow"))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    expect_error(
        r,
        503,
        "service_unavailable",
        Some("The request took too long to complete; try again later."),
    )
    .await;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );

    // The same server answers quick requests as usual.
    let r = app
        .http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected_while_others_are_served() {
    let app = TestApp::start().await;
    let header_timeout = Duration::from_millis(600);
    let base = serve_with(&app, Duration::from_secs(30), header_timeout).await;
    let addr = base.trim_start_matches("http://").to_owned();

    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: soku\r\n")
        .await
        .unwrap();
    let deadline = started + Duration::from_secs(10);
    let mut served_meanwhile = false;
    let closed_after = loop {
        assert!(
            Instant::now() < deadline,
            "the trickling client was not disconnected"
        );
        // One more header line, a byte at a time, never the blank line that ends the head.
        if slow.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(n)) => panic!(
                "no answer expected to an unfinished head: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {}
        }
        if !served_meanwhile {
            // Another client, on its own connection, is served while the slow one hangs on.
            let r = reqwest::Client::new()
                .get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert!(
                started.elapsed() < header_timeout,
                "served within the slow client's allowance"
            );
            served_meanwhile = true;
        }
    };
    assert!(served_meanwhile);
    assert!(
        closed_after >= header_timeout - Duration::from_millis(100),
        "disconnected after {closed_after:?}, before the header timeout"
    );
}
