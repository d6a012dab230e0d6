//! The engine's metrics on `/metrics` (issue 21): they move when posts publish, fail, retry
//! and wait.

use crate::posts::{submit, text_post, wait_for_status};
use crate::util::TestApp;
use serde_json::json;
use std::time::Duration;

async fn scrape(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the series `series` (name and labels exactly as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn publish_outcomes_retries_lag_and_the_scheduled_queue() {
    let app = TestApp::start().await;
    app.state.metrics.set_queue_stats_ttl(Duration::ZERO);
    let (_, key) = app.test_subscriber().await;
    let before = scrape(&app).await;
    assert_eq!(
        value(
            &before,
            r#"soku_targets_published_total{platform="x",mode="test"}"#
        ),
        None
    );
    assert_eq!(value(&before, "soku_queue_stats_ok"), Some(1.0));

    let ok = submit(&app, &key, &text_post("hello", json!("x"))).await;
    let refused = submit(
        &app,
        &key,
        &text_post("no [fail:permanent]", json!("bluesky")),
    )
    .await;
    let busy = submit(
        &app,
        &key,
        &text_post("busy [fail:rate_limit]", json!("threads")),
    )
    .await;
    let lost = submit(
        &app,
        &key,
        &text_post("lost [fail:unknown]", json!("mastodon")),
    )
    .await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let scheduled = app
        .post_json(
            "/v1/posts",
            &key,
            &json!({"post": {"content": {"text": "later", "platform": "x"}}, "scheduledTime": later}),
        )
        .await;
    assert_eq!(scheduled.status(), 200);
    wait_for_status(&app, &key, &ok, &["published"]).await;
    wait_for_status(&app, &key, &refused, &["failed"]).await;
    wait_for_status(&app, &key, &busy, &["published"]).await;
    // The submission ends `failed`; its target `unknown`.
    wait_for_status(&app, &key, &lost, &["failed"]).await;

    let text = scrape(&app).await;
    let expect = |series: &str, n: f64| {
        assert_eq!(value(&text, series), Some(n), "{series} in\n{text}");
    };
    expect(
        r#"soku_targets_published_total{platform="x",mode="test"}"#,
        1.0,
    );
    expect(
        r#"soku_targets_published_total{platform="threads",mode="test"}"#,
        1.0,
    );
    expect(
        r#"soku_targets_failed_total{platform="bluesky",mode="test",code="rejected"}"#,
        1.0,
    );
    expect(
        r#"soku_targets_unknown_total{platform="mastodon",mode="test",code="outcome_unknown"}"#,
        1.0,
    );
    expect(
        r#"soku_publish_retries_total{platform="threads",mode="test",code="rate_limited"}"#,
        1.0,
    );
    // Threads: the refused attempt and the one that published.
    expect(
        r#"soku_publish_attempts_total{platform="threads",mode="test"}"#,
        2.0,
    );
    expect(
        r#"soku_publish_attempts_total{platform="x",mode="test"}"#,
        1.0,
    );
    expect(
        r#"soku_publish_lag_seconds_count{platform="x",mode="test"}"#,
        1.0,
    );
    expect(
        r#"soku_publish_lag_seconds_count{platform="threads",mode="test"}"#,
        2.0,
    );
    expect(
        r#"soku_publish_lag_seconds_bucket{platform="x",mode="test",le="+Inf"}"#,
        1.0,
    );
    // The scheduled post waits, and nothing due is left behind.
    expect(
        r#"soku_queue_targets{platform="x",mode="test",status="scheduled"}"#,
        1.0,
    );
    expect(r#"soku_queue_due_targets{platform="x",mode="test"}"#, 0.0);
    expect(
        r#"soku_queue_oldest_due_age_seconds{platform="x",mode="test"}"#,
        0.0,
    );
    // Media imports are counted process-wide (other tests here import some): present.
    assert!(value(&text, r#"soku_media_imports_total{result="imported"}"#).is_some());
    assert!(!text.contains(&ok), "no post ids in labels");
}

#[tokio::test]
async fn due_targets_and_their_age_show_when_no_engine_runs() {
    let app = TestApp::builder_without_engine().await;
    app.state.metrics.set_queue_stats_ttl(Duration::ZERO);
    let (_, key) = app.test_subscriber().await;
    submit(&app, &key, &text_post("stuck", json!(["x", "bluesky"]))).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let text = scrape(&app).await;
    for platform in ["x", "bluesky"] {
        let series = format!(r#"soku_queue_due_targets{{platform="{platform}",mode="test"}}"#);
        assert_eq!(value(&text, &series), Some(1.0), "{series} in\n{text}");
        let series =
            format!(r#"soku_queue_targets{{platform="{platform}",mode="test",status="queued"}}"#);
        assert_eq!(value(&text, &series), Some(1.0), "{series} in\n{text}");
        let series =
            format!(r#"soku_queue_oldest_due_age_seconds{{platform="{platform}",mode="test"}}"#);
        let age = value(&text, &series).unwrap_or_else(|| panic!("{series} in\n{text}"));
        assert!((1.0..60.0).contains(&age), "{age}");
    }
    assert_eq!(
        value(
            &text,
            r#"soku_publish_attempts_total{platform="x",mode="test"}"#
        ),
        None,
        "nothing was attempted"
    );
}

/// `soku serve --no-workers` shows the queue; `soku worker --metrics-listen` shows what its
/// engine published.
#[tokio::test]
async fn a_worker_serves_its_own_metrics() {
    use crate::binary::{Server, database, ok, subscriber};
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "worker_metrics").await;
    let api = Server::start_with(&db, &["--no-workers"], &[("SOKU_RATE_LIMITS", "off")]);
    let uid = subscriber(&db, "metrics@example.com");
    let key = ok(&db, &["admin", "key", "create", "--uid", &uid, "--test"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_soku"))
        .env("SOKU_MEDIA_STORE", crate::binary::unused_media_store())
        .args(["worker", "--metrics-listen", &listen])
        .env("SOKU_DATABASE_URL", &db)
        .env("SOKU_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let response = http
        .post(api.url("/v1/posts"))
        .header("soku-api-key", &key)
        .json(&text_post("from a worker", json!("bluesky")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let series = r#"soku_targets_published_total{platform="bluesky",mode="test"}"#;
    let worker_metrics = format!("http://{listen}/metrics");
    let (client, url) = (&http, &worker_metrics);
    let published = crate::util::eventually(Duration::from_secs(30), || async move {
        let Ok(r) = client.get(url).send().await else {
            return false;
        };
        value(&r.text().await.unwrap_or_default(), series) == Some(1.0)
    })
    .await;
    let api_text = http
        .get(api.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = worker.kill();
    let _ = worker.wait();
    assert!(published, "the worker's /metrics counts what it published");
    assert_eq!(
        value(&api_text, series),
        None,
        "the API process published nothing"
    );
    assert_eq!(value(&api_text, "soku_queue_stats_ok"), Some(1.0));
}
