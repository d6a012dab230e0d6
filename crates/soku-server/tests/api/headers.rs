//! Oversized request headers: up to hyper's ceiling (`server::MAX_HEAD_BYTES`,
//! `server::MAX_HEAD_FIELDS`) the application refuses them with 431, the envelope and
//! `X-Request-ID`; beyond it hyper answers a bare 431 or drops the connection, and the server
//! goes on serving everyone else.

use crate::util::{TestApp, expect_error, request_id};
use serde_json::Value;
use soku_server::limits::{MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_HEADER_LINE_BYTES, MESSAGE};
use soku_server::server::{MAX_HEAD_BYTES, MAX_HEAD_FIELDS};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the test app on a new port through `server::serve`, as the binary does; returns its
/// address.
async fn serve(app: &TestApp) -> String {
    let router = soku_server::router(app.state.clone(), None);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(soku_server::server::serve(
        listener,
        router,
        std::future::pending(),
        Duration::from_secs(10),
    ));
    addr
}

async fn expect_431(r: reqwest::Response) -> Value {
    let body = expect_error(r, 431, "validation_error", Some(MESSAGE)).await;
    body["error"]["details"].clone()
}

async fn healthz_is_served(addr: &str) {
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_20_kib_header_gets_431_with_the_envelope() {
    let app = TestApp::start().await;
    let addr = serve(&app).await;

    let (_, key) = app.subscriber().await;
    let r = app
        .http
        .get(format!("http://{addr}/v1/posts"))
        .header("soku-api-key", &key)
        .header("x-big", "b".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    let details = expect_431(r).await;
    assert_eq!(details["field"], "x-big");
    assert_eq!(details["reason"], "too_long");
    assert_eq!(details["limit"], MAX_HEADER_LINE_BYTES);

    // A 404 route, with no API key, is refused the same way.
    let r = app
        .http
        .get(format!("http://{addr}/nowhere"))
        .header("cookie", "c".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_431(r).await["field"], "cookie");
}

#[tokio::test]
async fn many_headers_or_a_large_section_get_431_with_the_envelope() {
    let app = TestApp::start().await;
    let addr = serve(&app).await;

    let mut many = app.http.get(format!("http://{addr}/healthz"));
    for i in 0..150 {
        many = many.header(format!("x-filler-{i}"), "1");
    }
    let details = expect_431(many.send().await.unwrap()).await;
    assert_eq!(details["field"], "headers");
    assert_eq!(details["reason"], "too_many");
    assert_eq!(details["limit"], MAX_HEADER_FIELDS);
    assert!(details["count"].as_u64().unwrap() > 150);

    // Five 7 KiB headers: each within its line limit, 35 KiB together.
    let mut large = app.http.get(format!("http://{addr}/healthz"));
    for i in 0..5 {
        large = large.header(format!("x-part-{i}"), "p".repeat(7 * 1024));
    }
    let details = expect_431(large.send().await.unwrap()).await;
    assert_eq!(details["field"], "headers");
    assert_eq!(details["reason"], "too_long");
    assert_eq!(details["limit"], MAX_HEADER_BYTES);
}

#[tokio::test]
async fn headers_within_the_limits_are_served() {
    let app = TestApp::start().await;
    let addr = serve(&app).await;

    // Four 7 KiB headers (28 KiB) and 80 small ones, with the API key.
    let (_, key) = app.subscriber().await;
    let mut r = app
        .http
        .get(format!("http://{addr}/v1/posts"))
        .header("soku-api-key", &key);
    for i in 0..4 {
        r = r.header(format!("x-part-{i}"), "p".repeat(7 * 1024));
    }
    for i in 0..80 {
        r = r.header(format!("x-filler-{i}"), "1");
    }
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    request_id(&r);
}

#[tokio::test]
async fn http2_gets_the_envelope_for_a_20_kib_header_too() {
    let app = TestApp::start().await;
    let addr = serve(&app).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<String>();

    let request = |big: usize| {
        axum::http::Request::get(format!("http://{addr}/healthz"))
            .header("x-big", "b".repeat(big))
            .body(String::new())
            .unwrap()
    };
    let r = client.request(request(100)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), axum::http::Version::HTTP_2);

    let r = client.request(request(20 * 1024)).await.unwrap();
    assert_eq!(r.status(), 431);
    assert!(r.headers().contains_key("x-request-id"));
    let body = axum::body::to_bytes(axum::body::Body::new(r.into_body()), 64 * 1024)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "validation_error");
    assert_eq!(body["error"]["details"]["field"], "x-big");
}

/// Sends `head` on a new connection and returns what the server answered before closing
/// (empty when it closed or reset the connection without answering).
async fn raw_exchange(addr: &str, head: Vec<u8>) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may stop reading (and close) before the whole head is written.
    let _ = stream.write_all(&head).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was neither answered nor closed"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

fn assert_bare_431_or_nothing(answer: &str) {
    if answer.is_empty() {
        return;
    }
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .expect("a whole response head");
    assert!(
        head.starts_with("HTTP/1.1 431"),
        "hyper's own answer: {head}"
    );
    assert!(body.is_empty(), "hyper's 431 has no body: {body}");
    assert!(
        !head.to_ascii_lowercase().contains("x-request-id"),
        "the application did not run: {head}"
    );
}

#[tokio::test]
async fn beyond_hypers_ceiling_the_answer_is_a_bare_431_and_others_are_served() {
    let app = TestApp::start().await;
    let addr = serve(&app).await;

    // One header larger than hyper's buffer.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: soku\r\nX-Huge: ".to_vec();
    head.extend(std::iter::repeat_n(b'h', MAX_HEAD_BYTES + 1024));
    head.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(&addr, head).await;
    assert_bare_431_or_nothing(&answer);
    healthz_is_served(&addr).await;

    // More header fields than hyper parses: a small head, so hyper's 431 does arrive.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: soku\r\n".to_vec();
    for i in 0..MAX_HEAD_FIELDS + 10 {
        head.extend_from_slice(format!("X-Filler-{i}: 1\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let answer = raw_exchange(&addr, head).await;
    assert!(!answer.is_empty(), "hyper answers a head it has read whole");
    assert_bare_431_or_nothing(&answer);
    healthz_is_served(&addr).await;

    // Just under the ceiling, the application answers, with the envelope.
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: soku\r\nConnection: close\r\n".to_vec();
    for i in 0..MAX_HEAD_FIELDS - 10 {
        head.extend_from_slice(format!("X-Filler-{i}: 1\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let answer = raw_exchange(&addr, head).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("x-request-id: req_"));
    assert!(answer.contains("\"code\":\"validation_error\""), "{answer}");
}
