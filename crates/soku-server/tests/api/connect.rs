//! Connecting accounts through the API: what is refused before any platform is asked, the
//! callback's state checks, and disconnecting. The OAuth round trips against platform fakes are
//! in `oauth.rs`.

use crate::util::*;
use serde_json::{Value, json};
use soku_core::platform::Platform;
use soku_core::queue::AccountStatus;

async fn connect(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.post_json("/v1/accounts/connect", key, &body).await
}

#[tokio::test]
async fn connect_refuses_what_cannot_be_connected() {
    let app = TestApp::start().await;
    let (_, live) = app.subscriber().await;
    let (_, test) = app.test_subscriber().await;

    let body = expect_error(
        connect(&app, &test, json!({"platform": "x"})).await,
        400,
        "validation_error",
        None,
    )
    .await;
    assert_eq!(body["error"]["details"]["reason"], "test_mode");

    for (sent, reason) in [
        (json!({}), "required"),
        (json!({"platform": 3}), "type"),
        (json!({"platform": "myspace"}), "unknown"),
        // No connector for Instagram in this server.
        (json!({"platform": "instagram"}), "unsupported"),
    ] {
        let body = expect_error(
            connect(&app, &live, sent.clone()).await,
            400,
            "validation_error",
            None,
        )
        .await;
        assert_eq!(body["error"]["details"]["reason"], reason, "{sent}");
        assert_eq!(body["error"]["details"]["field"], "platform", "{sent}");
    }
    // Neither an API key nor an ID token.
    let r = app
        .http
        .post(app.url("/v1/accounts/connect"))
        .json(&json!({"platform": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized", None).await;
    // A key sent as a bearer token is answered as a key, not as an ID token.
    let r = app
        .http
        .post(app.url("/v1/accounts/connect"))
        .bearer_auth(&live)
        .json(&json!({"platform": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized", Some("Invalid or missing API key.")).await;
}

#[tokio::test]
async fn callback_states_must_be_known() {
    let app = TestApp::start().await;
    let r = app
        .http
        .get(app.url("/v1/oauth/x/callback?code=abc"))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["field"], "state");

    let r = app
        .http
        .get(app.url("/v1/oauth/x/callback?code=abc&state=never-issued"))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "state_unknown");

    let r = app
        .http
        .get(app.url("/v1/oauth/myspace/callback?code=abc&state=s"))
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found", None).await;
}

#[tokio::test]
async fn disconnect_removes_only_the_callers_account() {
    let app = TestApp::start().await;
    let (uid, key) = app.subscriber().await;
    let (other_uid, other_key) = app.subscriber().await;
    let mine = crate::dashboard::live_account(&app, &uid, Platform::X, AccountStatus::Active).await;
    let theirs =
        crate::dashboard::live_account(&app, &other_uid, Platform::X, AccountStatus::Active).await;

    let delete = |key: String, id: String| {
        let app = &app;
        async move {
            app.http
                .delete(app.url(&format!("/v1/accounts/{id}")))
                .header("soku-api-key", key)
                .send()
                .await
                .unwrap()
        }
    };
    expect_error(
        delete(key.clone(), theirs.clone()).await,
        404,
        "not_found",
        None,
    )
    .await;
    assert_eq!(delete(key.clone(), mine.clone()).await.status(), 204);
    expect_error(
        delete(key.clone(), mine.clone()).await,
        404,
        "not_found",
        None,
    )
    .await;
    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 0);
    let listed: Value = app
        .get_with_key("/v1/accounts", &other_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["accounts"][0]["id"], theirs.as_str());

    // With an ID token too.
    let another =
        crate::dashboard::live_account(&app, &uid, Platform::Threads, AccountStatus::Active).await;
    let r = app
        .http
        .delete(app.url(&format!("/v1/accounts/{another}")))
        .bearer_auth(app.token(&uid))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}
