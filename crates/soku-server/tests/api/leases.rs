//! A target's lease through a whole attempt: while one worker works on a target (a slow import
//! of an outside file before the platform call, the call itself), no worker, this process's
//! own dispatcher included, takes it over and publishes it a second time.

use crate::posts::submit;
use crate::util::{Builder, TestApp};
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use soku_fakes::media_files;
use std::time::Duration;

/// Serves `/slow.png`, a PNG sent in eight pieces over `over`.
async fn slow_file_server(over: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route(
        "/slow.png",
        get(move || async move {
            let png = media_files::png(120, 80);
            let piece = png.len().div_ceil(8);
            let pieces: Vec<Vec<u8>> = png.chunks(piece).map(<[u8]>::to_vec).collect();
            let gap = over / pieces.len() as u32;
            let stream = futures_util::stream::iter(pieces).then(move |p| async move {
                tokio::time::sleep(gap).await;
                Ok::<_, std::io::Error>(bytes::Bytes::from(p))
            });
            axum::response::Response::new(axum::body::Body::from_stream(stream))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

use futures_util::StreamExt;

/// A test-mode post of an outside image imported over `import`, published by a platform that
/// takes `call`, under a lease of `lease`: the settled target and how many times the simulated
/// platform was asked to create it.
async fn publish_slowly(lease: Duration, import: Duration, call: Duration) -> (Value, Value) {
    let app: TestApp = Builder::default()
        .engine(soku_engine::EngineConfig {
            lease,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(1),
            ..soku_engine::EngineConfig::default()
        })
        .simulated_latency(call)
        .start()
        .await;
    let (_, key) = app.test_subscriber().await;
    let files = slow_file_server(import).await;
    let body = json!({"post": {"content": {"text": "a slow import", "mediaType": "image",
        "imageUrls": [format!("{files}/slow.png")], "platform": ["x"]}}});
    let id = submit(&app, &key, &body).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let post = loop {
        let post: Value = app
            .get_with_key(&format!("/v1/posts/{id}"), &key)
            .await
            .json()
            .await
            .unwrap();
        if matches!(post["status"].as_str(), Some("published" | "failed")) {
            break post;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {post}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A second worker that took the target over may still be publishing: let it finish.
    tokio::time::sleep(lease).await;
    let got: Value = app
        .get_with_key("/v1/sandbox/x/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    (post["targets"][0].clone(), got)
}

/// The import alone outlasts the lease: it is renewed during the import, so the dispatcher does
/// not take the target over (before, only the platform call renewed it).
#[tokio::test]
async fn an_import_longer_than_the_lease_keeps_the_target() {
    let lease = Duration::from_secs(2);
    let (target, got) = publish_slowly(
        lease,
        Duration::from_millis(2800),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(target["status"], "published", "{target}");
    assert_eq!(target["attempts"], 1, "never taken over: {target}");
    assert_eq!(got["posts"].as_array().map(Vec::len), Some(1), "{got}");
    assert_eq!(got["posts"][0]["createCount"], 1, "{got}");
}

/// The import ends shortly before the lease would, the call runs past it: the lease was renewed
/// all along (and by the in-flight mark), so no second worker claims the target while the first
/// is sending it, and the post is made once.
#[tokio::test]
async fn a_call_that_runs_past_the_claims_lease_is_not_published_twice() {
    let lease = Duration::from_secs(3);
    let (target, got) = publish_slowly(
        lease,
        Duration::from_millis(2200),
        Duration::from_millis(950),
    )
    .await;
    assert_eq!(target["status"], "published", "{target}");
    assert_eq!(target["attempts"], 1, "never taken over: {target}");
    assert_eq!(got["posts"][0]["createCount"], 1, "made once: {got}");
}
