//! Posts (spec 6 and 9): validation, account resolution, idempotency, reading, cancelling,
//! and publishing through the simulated platforms.

use crate::util::{Builder, TestApp, eventually, expect_error};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use soku_core::platform::Platform;
use soku_core::queue::{Account, AccountStatus, NewAccount};
use std::time::Duration as StdDuration;

pub fn text_post(text: &str, platform: Value) -> Value {
    json!({"post": {"content": {"text": text, "platform": platform}}})
}

pub async fn wait_for_status(app: &TestApp, key: &str, id: &str, done: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let last: Value = app
            .get_with_key(&format!("/v1/posts/{id}"), key)
            .await
            .json()
            .await
            .unwrap();
        if done.contains(&last["status"].as_str().unwrap_or("")) {
            return last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "submission never reached {done:?}: {last}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

pub async fn submit(app: &TestApp, key: &str, body: &Value) -> String {
    let response = app.post_json("/v1/posts", key, body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["postSubmissionId"].as_str().unwrap().to_owned()
}

async fn add_account(
    app: &TestApp,
    uid: &str,
    platform: Platform,
    account_id: &str,
    default: bool,
) {
    app.store
        .insert_account(&NewAccount {
            account: Account {
                id: soku_core::keys::random_id("acc_", 12),
                user_id: uid.into(),
                platform,
                account_id: account_id.into(),
                display_name: None,
                username: Some(format!("@{account_id}")),
                status: AccountStatus::Active,
                is_default: default,
                token_expires_at: None,
                created_at: Utc::now(),
                meta: serde_json::json!({}),
            },
            access_token: Some(app.state.secrets.seal("secret-access-token")),
            refresh_token: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn each_validation_rule_names_its_field_and_reason() {
    let app = TestApp::builder_without_engine().await;
    let (_, key) = app.test_subscriber().await;
    let img = |n: usize| {
        (0..n)
            .map(|i| format!("https://img.example/{i}.png"))
            .collect::<Vec<_>>()
    };
    let soon = (Utc::now() + Duration::seconds(30)).to_rfc3339();
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("post required", json!({}), "post", "required"),
        (
            "post is an object",
            json!({"post": []}),
            "post",
            "invalid_type",
        ),
        (
            "content required",
            json!({"post": {}}),
            "post.content",
            "required",
        ),
        (
            "platform required",
            json!({"post": {"content": {"text": "hi"}}}),
            "post.content.platform",
            "required",
        ),
        (
            "platform not empty",
            text_post("hi", json!([])),
            "post.content.platform",
            "invalid_value",
        ),
        (
            "platform type",
            text_post("hi", json!(42)),
            "post.content.platform",
            "invalid_type",
        ),
        (
            "unknown platform",
            text_post("hi", json!(["x", "friendster"])),
            "post.content.platform[1]",
            "invalid_value",
        ),
        (
            "object target needs platform",
            text_post("hi", json!([{"accountId": "a"}])),
            "post.content.platform[0].platform",
            "required",
        ),
        (
            "accountId type",
            text_post("hi", json!([{"platform": "x", "accountId": 7}])),
            "post.content.platform[0].accountId",
            "invalid_type",
        ),
        (
            "text type",
            json!({"post": {"content": {"text": ["hi"], "platform": "x"}}}),
            "post.content.text",
            "invalid_type",
        ),
        (
            "mediaType value",
            json!({"post": {"content": {"text": "hi", "mediaType": "gif", "platform": "x"}}}),
            "post.content.mediaType",
            "invalid_value",
        ),
        (
            "text required for text",
            json!({"post": {"content": {"mediaType": "text", "platform": "x"}}}),
            "post.content.text",
            "required",
        ),
        (
            "image required for image",
            json!({"post": {"content": {"mediaType": "image", "text": "hi", "platform": "x"}}}),
            "post.content.imageUrls",
            "required",
        ),
        (
            "video required for video",
            json!({"post": {"content": {"mediaType": "video", "text": "hi", "platform": "x"}}}),
            "post.content.videoUrl",
            "required",
        ),
        (
            "media URLs are http(s)",
            json!({"post": {"content": {"mediaType": "image", "imageUrls": ["file:///etc/passwd"], "platform": "x"}}}),
            "post.content.imageUrls[0]",
            "invalid_value",
        ),
        (
            "X caption 280",
            text_post(&"a".repeat(281), json!("x")),
            "post.content.text",
            "too_long",
        ),
        (
            "Threads caption 500",
            text_post(&"a".repeat(501), json!("threads")),
            "post.content.text",
            "too_long",
        ),
        (
            "LinkedIn caption 3000",
            text_post(&"a".repeat(3001), json!("linkedin")),
            "post.content.text",
            "too_long",
        ),
        (
            "Facebook caption 5000",
            text_post(&"a".repeat(5001), json!("facebook")),
            "post.content.text",
            "too_long",
        ),
        (
            "Bluesky 300 graphemes",
            text_post(&"é".repeat(301), json!("bluesky")),
            "post.content.text",
            "too_long",
        ),
        (
            "Bluesky 3000 bytes within 300 graphemes",
            text_post(
                &"\u{1F468}\u{200d}\u{1F469}\u{200d}\u{1F467}\u{200d}\u{1F466}".repeat(121),
                json!("bluesky"),
            ),
            "post.content.text",
            "too_long",
        ),
        (
            "Threads counts an emoji as its UTF-8 bytes",
            text_post(&format!("{}\u{1F600}", "a".repeat(499)), json!("threads")),
            "post.content.text",
            "too_long",
        ),
        (
            "Mastodon 500",
            text_post(&"a".repeat(501), json!("mastodon")),
            "post.content.text",
            "too_long",
        ),
        (
            "X images 4",
            json!({"post": {"content": {"mediaType": "image", "imageUrls": img(5), "platform": "x"}}}),
            "post.content.imageUrls",
            "too_many",
        ),
        (
            "LinkedIn images 9",
            json!({"post": {"content": {"mediaType": "image", "imageUrls": img(10), "platform": "linkedin"}}}),
            "post.content.imageUrls",
            "too_many",
        ),
        (
            "Instagram needs media",
            text_post("hi", json!("instagram")),
            "post.content.mediaUrls",
            "required",
        ),
        (
            "TikTok needs media",
            text_post("hi", json!("tiktok")),
            "post.content.mediaUrls",
            "required",
        ),
        (
            "YouTube needs a video",
            json!({"post": {"content": {"mediaType": "image", "imageUrls": img(1), "platform": "youtube"}}}),
            "post.content.videoUrl",
            "required",
        ),
        (
            "YouTube title 100",
            json!({"post": {"content": {"mediaType": "video", "videoUrl": "https://v.example/a.mp4", "text": "t".repeat(101), "platform": "youtube"}}}),
            "post.content.text",
            "too_long",
        ),
        (
            "scheduledTime format",
            json!({"post": {"content": {"text": "hi", "platform": "x"}}, "scheduledTime": "next tuesday"}),
            "scheduledTime",
            "invalid_value",
        ),
        (
            "scheduledTime too soon",
            json!({"post": {"content": {"text": "hi", "platform": "x"}}, "scheduledTime": soon}),
            "scheduledTime",
            "too_soon",
        ),
        (
            "scheduledTime type",
            json!({"post": {"content": {"text": "hi", "platform": "x"}}, "scheduledTime": 1700000000}),
            "scheduledTime",
            "invalid_type",
        ),
        (
            "enableRepurposing type",
            json!({"post": {"content": {"text": "hi", "platform": "x"}}, "enableRepurposing": "yes"}),
            "enableRepurposing",
            "invalid_type",
        ),
        (
            "duplicate target",
            text_post("hi", json!(["x", "twitter"])),
            "post.content.platform[1]",
            "duplicate",
        ),
    ];
    for (case, body, field, reason) in cases {
        let response = app.post_json("/v1/posts", &key, &body).await;
        let error = expect_error(response, 400, "validation_error", None).await;
        assert_eq!(error["error"]["details"]["field"], field, "{case}: {error}");
        assert_eq!(
            error["error"]["details"]["reason"], reason,
            "{case}: {error}"
        );
    }
    // The example message of the spec, exactly; and the platform is named for platform rules.
    let response = app
        .post_json(
            "/v1/posts",
            &key,
            &json!({"post": {"content": {"mediaType": "text", "platform": "x"}}}),
        )
        .await;
    expect_error(
        response,
        400,
        "validation_error",
        Some("The 'text' field is required when mediaType is 'text'."),
    )
    .await;
    let response = app
        .post_json(
            "/v1/posts",
            &key,
            &text_post(&"a".repeat(281), json!("twitter")),
        )
        .await;
    let error = expect_error(response, 400, "validation_error", None).await;
    assert_eq!(error["error"]["details"]["platform"], "x");
    assert_eq!(error["error"]["details"]["limit"], 280);
    // A body with several problems is answered with the first in the rules' order, wherever
    // each sits in the JSON: the text before the platform, the post before the schedule.
    for body in [
        r#"{"post":{"content":{"platform":"myspace","text":5}}}"#,
        r#"{"post":{"content":{"text":5,"platform":"myspace"}}}"#,
        r#"{"scheduledTime":7,"post":{"content":{"platform":"myspace","text":5}}}"#,
    ] {
        let response = app
            .http
            .post(app.url("/v1/posts"))
            .header("soku-api-key", &key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = expect_error(
            response,
            400,
            "validation_error",
            Some("The 'text' field must be a string."),
        )
        .await;
        assert_eq!(
            error["error"]["details"],
            json!({"field": "post.content.text", "reason": "invalid_type"}),
            "{body}"
        );
    }
    // Nothing was stored by any of them.
    let list: Value = app
        .get_with_key("/v1/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["posts"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn aliases_single_strings_and_the_accepted_shape() {
    let app = TestApp::builder_without_engine().await;
    let (_, key) = app.test_subscriber().await;
    let response = app
        .post_json("/v1/posts", &key, &text_post("hello", json!("twitter")))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let id = body["postSubmissionId"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID");
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["mode"], "test");
    assert_eq!(body["scheduledTime"], Value::Null);
    assert_eq!(body["post"]["content"]["text"], "hello");
    let targets = body["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["platform"], "x");
    assert_eq!(targets[0]["accountId"], "test_x");
    assert_eq!(targets[0]["targetId"], "x:test_x");
    assert_eq!(targets[0]["status"], "queued");
    // Upper case and arrays mixing strings and objects.
    let body = text_post(
        "hi",
        json!(["THREADS", {"platform": "Bluesky", "accountId": "test_bluesky"}]),
    );
    let response: Value = app
        .post_json("/v1/posts", &key, &body)
        .await
        .json()
        .await
        .unwrap();
    let platforms: Vec<&str> = response["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["threads", "bluesky"]);
    // Scheduled.
    let at = (Utc::now() + Duration::hours(2)).to_rfc3339();
    let response: Value = app
        .post_json(
            "/v1/posts",
            &key,
            &json!({"post": {"content": {"text": "later", "platform": "x"}}, "scheduledTime": at}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(response["status"], "scheduled");
    assert_eq!(response["targets"][0]["status"], "scheduled");
    assert_eq!(response["scheduledTime"].as_str().unwrap().len(), 24);
}

#[tokio::test]
async fn missing_account_for_none_several_and_someone_elses() {
    let app = TestApp::builder_without_engine().await;
    let (uid, key) = app.subscriber().await;
    let (other, _) = app.subscriber().await;
    add_account(&app, &uid, Platform::Threads, "t-one", false).await;
    add_account(&app, &uid, Platform::Threads, "t-two", false).await;
    add_account(&app, &other, Platform::X, "x-of-other", false).await;
    let cases = [
        (
            "none",
            text_post("hi", json!("linkedin")),
            "post.content.platform",
            "linkedin",
        ),
        (
            "several, no default",
            text_post("hi", json!(["threads"])),
            "post.content.platform[0]",
            "threads",
        ),
        (
            "someone else's",
            text_post("hi", json!([{"platform": "x", "accountId": "x-of-other"}])),
            "post.content.platform[0]",
            "x",
        ),
    ];
    for (case, body, field, platform) in cases {
        let response = app.post_json("/v1/posts", &key, &body).await;
        let error = expect_error(response, 400, "missing_account", None).await;
        assert_eq!(error["error"]["details"]["field"], field, "{case}");
        assert_eq!(error["error"]["details"]["platform"], platform, "{case}");
    }
    // Naming one of the several resolves; live platforms without a connector are refused
    // clearly, never accepted in silence.
    let response = app
        .post_json(
            "/v1/posts",
            &key,
            &text_post("hi", json!([{"platform": "threads", "accountId": "t-two"}])),
        )
        .await;
    let error = expect_error(response, 400, "validation_error", None).await;
    assert_eq!(error["error"]["details"]["reason"], "unsupported_platform");
    assert_eq!(error["error"]["details"]["platform"], "threads");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk_test_")
    );
}

#[tokio::test]
async fn accounts_are_listed_without_tokens() {
    let app = TestApp::builder_without_engine().await;
    let (uid, key) = app.subscriber().await;
    add_account(&app, &uid, Platform::X, "x-main", true).await;
    let text = app
        .get_with_key("/v1/accounts", &key)
        .await
        .text()
        .await
        .unwrap();
    assert!(!text.contains("secret-access-token"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let accounts = body["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["accountId"], "x-main");
    assert_eq!(accounts[0]["status"], "active");
    assert_eq!(accounts[0]["isDefault"], true);
    let (_, test_key) = app.test_subscriber().await;
    let body: Value = app
        .get_with_key("/v1/accounts", &test_key)
        .await
        .json()
        .await
        .unwrap();
    let simulated: Vec<&str> = body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["accountId"].as_str().unwrap())
        .collect();
    assert_eq!(simulated.len(), 10);
    assert!(simulated.contains(&"test_tiktok"));
}

#[tokio::test]
async fn idempotent_retries_replay_byte_for_byte() {
    let app = TestApp::builder_without_engine().await;
    let (_, key) = app.test_subscriber().await;
    let send = |body: Value, idem: &'static str| {
        app.http
            .post(app.url("/v1/posts"))
            .header("soku-api-key", &key)
            .header("Idempotency-Key", idem)
            .json(&body)
            .send()
    };
    let first = send(text_post("once", json!("x")), "order-1")
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_bytes = first.bytes().await.unwrap();
    let again = send(text_post("once", json!("x")), "order-1")
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.unwrap(), first_bytes, "byte for byte");

    let other = send(text_post("something else", json!("x")), "order-1")
        .await
        .unwrap();
    expect_error(other, 409, "idempotency_conflict", None).await;

    let too_long = "k".repeat(256);
    let response = app
        .http
        .post(app.url("/v1/posts"))
        .header("soku-api-key", &key)
        .header("Idempotency-Key", too_long)
        .json(&text_post("x", json!("x")))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 400, "validation_error", None).await;
    assert_eq!(error["error"]["details"]["field"], "Idempotency-Key");

    // A request that fails validation does not use up its key.
    let bad = send(text_post("", json!("x")), "order-2").await.unwrap();
    assert_eq!(bad.status(), 400);
    let good = send(text_post("fixed", json!("x")), "order-2")
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    assert!(good.headers().get("idempotent-replayed").is_none());

    let list: Value = app
        .get_with_key("/v1/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["posts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn twenty_concurrent_identical_requests_create_one_submission() {
    let app = TestApp::builder_without_engine().await;
    let (_, key) = app.test_subscriber().await;
    let body = text_post("exactly once", json!(["x", "threads"]));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let request = app
            .http
            .post(app.url("/v1/posts"))
            .header("soku-api-key", &key)
            .header("Idempotency-Key", "burst-1")
            .json(&body);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap() }));
    }
    let mut bodies = Vec::new();
    let mut in_flight = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status().as_u16() {
            200 => bodies.push(r.bytes().await.unwrap()),
            409 => {
                assert_eq!(r.headers()["retry-after"], "1");
                let e = expect_error(r, 409, "idempotency_conflict", None).await;
                assert!(
                    e["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("in progress")
                );
                in_flight += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!bodies.is_empty());
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every success is the same response"
    );
    assert_eq!(bodies.len() + in_flight, 20);
    let list: Value = app
        .get_with_key("/v1/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["posts"].as_array().unwrap().len(),
        1,
        "exactly one submission"
    );
}

#[tokio::test]
async fn reading_listing_and_test_live_separation() {
    let app = TestApp::builder_without_engine().await;
    let (uid, key) = app.test_subscriber().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let platform = if i % 2 == 0 {
            json!(["x"])
        } else {
            json!(["bluesky", "threads"])
        };
        ids.push(submit(&app, &key, &text_post(&format!("post {i}"), platform)).await);
    }
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let scheduled = submit(
        &app,
        &key,
        &json!({"post": {"content": {"text": "s", "platform": "x"}}, "scheduledTime": later}),
    )
    .await;

    let one: Value = app
        .get_with_key(&format!("/v1/posts/{}", ids[1]), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], ids[1].as_str());
    assert_eq!(one["targets"].as_array().unwrap().len(), 2);
    for field in [
        "id",
        "status",
        "createdAt",
        "scheduledTime",
        "post",
        "targets",
    ] {
        assert!(one.get(field).is_some(), "{field}");
    }
    for field in [
        "targetId",
        "platform",
        "accountId",
        "status",
        "attempts",
        "platformPostId",
        "platformPostUrl",
        "error",
        "publishedAt",
    ] {
        assert!(one["targets"][0].get(field).is_some(), "{field}");
    }

    // Pages of 2, newest first, no overlap.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/posts?limit=2&cursor={c}"),
            None => "/v1/posts?limit=2".to_owned(),
        };
        let page: Value = app.get_with_key(&path, &key).await.json().await.unwrap();
        for p in page["posts"].as_array().unwrap() {
            seen.push(p["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.push(scheduled.clone());
    expected.reverse();
    assert_eq!(seen, expected);

    let bluesky: Value = app
        .get_with_key("/v1/posts?platform=bluesky", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bluesky["posts"].as_array().unwrap().len(), 2);
    let only_scheduled: Value = app
        .get_with_key("/v1/posts?status=scheduled", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only_scheduled["posts"].as_array().unwrap().len(), 1);
    assert_eq!(only_scheduled["posts"][0]["id"], scheduled.as_str());
    for bad in [
        "/v1/posts?status=done",
        "/v1/posts?platform=myspace",
        "/v1/posts?limit=0",
        "/v1/posts?limit=101",
        "/v1/posts?cursor=%%%",
    ] {
        expect_error(
            app.get_with_key(bad, &key).await,
            400,
            "validation_error",
            None,
        )
        .await;
    }

    // A live key of the same user sees none of it; another user's key neither.
    let live = app.key_for(&uid).await;
    let list: Value = app
        .get_with_key("/v1/posts", &live)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["posts"].as_array().unwrap().len(), 0);
    expect_error(
        app.get_with_key(&format!("/v1/posts/{}", ids[0]), &live)
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    let (_, stranger) = app.test_subscriber().await;
    expect_error(
        app.get_with_key(&format!("/v1/posts/{}", ids[0]), &stranger)
            .await,
        404,
        "not_found",
        None,
    )
    .await;
    expect_error(
        app.get_with_key("/v1/sandbox/x/posts", &live).await,
        404,
        "not_found",
        None,
    )
    .await;
}

#[tokio::test]
async fn cancelling() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let scheduled = submit(&app, &key, &json!({"post": {"content": {"text": "s", "platform": ["x", "threads"]}}, "scheduledTime": later})).await;
    let response = app
        .http
        .delete(app.url(&format!("/v1/posts/{scheduled}")))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "canceled");
    assert!(
        body["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "canceled")
    );
    // Canceling it again says so, not that publishing started.
    let again = app
        .http
        .delete(app.url(&format!("/v1/posts/{scheduled}")))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    let error = expect_error(
        again,
        409,
        "conflict",
        Some("This post was canceled already."),
    )
    .await;
    assert_eq!(error["error"]["details"]["status"], "canceled");

    let now = submit(&app, &key, &text_post("now", json!("x"))).await;
    wait_for_status(&app, &key, &now, &["published"]).await;
    let response = app
        .http
        .delete(app.url(&format!("/v1/posts/{now}")))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 409, "conflict", None).await;
    assert_eq!(error["error"]["details"]["status"], "published");
    let response = app
        .http
        .delete(app.url("/v1/posts/00000000-0000-4000-8000-000000000000"))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found", None).await;
}

#[tokio::test]
async fn publishing_through_the_simulated_platforms() {
    let app = Builder::default()
        .engine(soku_engine::EngineConfig {
            max_attempts: 3,
            backoff_base: StdDuration::from_millis(100),
            backoff_max: StdDuration::from_millis(500),
            ..Default::default()
        })
        .start()
        .await;
    let (_, key) = app.test_subscriber().await;

    let ok = submit(
        &app,
        &key,
        &text_post("plain", json!(["x", "threads", "linkedin"])),
    )
    .await;
    let body = wait_for_status(&app, &key, &ok, &["published"]).await;
    for t in body["targets"].as_array().unwrap() {
        assert_eq!(t["status"], "published");
        assert_eq!(t["attempts"], 1);
        assert!(t["platformPostId"].as_str().unwrap().starts_with("sim_"));
        assert!(t["publishedAt"].is_string());
        assert_eq!(t["error"], Value::Null);
    }

    let rejected = submit(&app, &key, &text_post("nope [fail:permanent]", json!("x"))).await;
    let body = wait_for_status(&app, &key, &rejected, &["failed"]).await;
    let t = &body["targets"][0];
    assert_eq!(t["status"], "failed");
    assert_eq!(t["attempts"], 1, "permanent failures are not retried");
    assert_eq!(t["error"]["code"], "rejected");
    assert!(
        t["error"]["platformError"]
            .as_str()
            .unwrap()
            .contains("400")
    );

    let expired = submit(
        &app,
        &key,
        &text_post("[fail:token_expired]", json!("threads")),
    )
    .await;
    let body = wait_for_status(&app, &key, &expired, &["failed"]).await;
    assert_eq!(body["targets"][0]["error"]["code"], "token_expired");

    let limited = submit(&app, &key, &text_post("busy [fail:rate_limit]", json!("x"))).await;
    let started = std::time::Instant::now();
    let body = wait_for_status(&app, &key, &limited, &["published"]).await;
    assert_eq!(body["targets"][0]["attempts"], 2, "one 429, then success");
    assert!(
        started.elapsed() >= StdDuration::from_millis(900),
        "Retry-After: 1 was honoured"
    );

    let always = submit(
        &app,
        &key,
        &text_post("[fail:rate_limit:always]", json!("x")),
    )
    .await;
    let body = wait_for_status(&app, &key, &always, &["failed"]).await;
    let t = &body["targets"][0];
    assert_eq!(t["attempts"], 3, "bounded attempts");
    assert_eq!(t["error"]["code"], "rate_limited");
    assert!(
        t["error"]["platformError"]
            .as_str()
            .unwrap()
            .contains("429"),
        "the raw error is kept"
    );

    let ambiguous = submit(
        &app,
        &key,
        &text_post("slow [fail:timeout_after_send]", json!(["x", "bluesky"])),
    )
    .await;
    let body = wait_for_status(&app, &key, &ambiguous, &["published"]).await;
    assert!(
        body["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["attempts"] == 1),
        "found, not re-sent"
    );

    let unknowable = submit(
        &app,
        &key,
        &text_post("lost [fail:unknown]", json!("threads")),
    )
    .await;
    let body = wait_for_status(&app, &key, &unknowable, &["failed"]).await;
    assert_eq!(body["targets"][0]["status"], "unknown");
    assert_eq!(body["targets"][0]["error"]["code"], "outcome_unknown");

    let mixed = submit(&app, &key, &text_post("half [fail:permanent]", json!("x"))).await;
    wait_for_status(&app, &key, &mixed, &["failed"]).await;

    // The platforms' own record: every post created exactly once.
    for platform in ["x", "threads", "linkedin", "bluesky"] {
        let sandbox: Value = app
            .get_with_key(&format!("/v1/sandbox/{platform}/posts"), &key)
            .await
            .json()
            .await
            .unwrap();
        for p in sandbox["posts"].as_array().unwrap() {
            assert_eq!(p["createCount"], 1, "{platform}: {p}");
        }
    }
    let x: Value = app
        .get_with_key("/v1/sandbox/twitter/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = x["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "slow [fail:timeout_after_send]",
            "busy [fail:rate_limit]",
            "plain"
        ],
        "newest first, failures never received"
    );
}

#[tokio::test]
async fn partially_published() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let id = submit(
        &app,
        &key,
        &text_post(
            "only on threads [fail:permanent@x]",
            json!(["x", "threads"]),
        ),
    )
    .await;
    let body = wait_for_status(&app, &key, &id, &["partially_published"]).await;
    assert_eq!(body["targets"][0]["status"], "failed");
    assert_eq!(body["targets"][1]["status"], "published");
    let list: Value = app
        .get_with_key("/v1/posts?status=partially_published", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["posts"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_post_scheduled_61_seconds_ahead_is_published_on_time_and_a_canceled_one_never() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let at = Utc::now() + Duration::seconds(61);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let keep = submit(&app, &key, &json!({"post": {"content": {"text": "on time", "platform": "x"}}, "scheduledTime": at_text})).await;
    let drop = submit(&app, &key, &json!({"post": {"content": {"text": "canceled", "platform": "x"}}, "scheduledTime": at_text})).await;
    let response = app
        .http
        .delete(app.url(&format!("/v1/posts/{drop}")))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let published = eventually(StdDuration::from_secs(75), || async {
        let body: Value = app
            .get_with_key(&format!("/v1/posts/{keep}"), &key)
            .await
            .json()
            .await
            .unwrap();
        body["status"] == "published"
    })
    .await;
    assert!(published);
    let sandbox: Value = app
        .get_with_key("/v1/sandbox/x/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    let posts = sandbox["posts"].as_array().unwrap();
    assert_eq!(
        posts.len(),
        1,
        "the canceled post never reached the platform: {sandbox}"
    );
    let received =
        chrono::DateTime::parse_from_rfc3339(posts[0]["receivedAt"].as_str().unwrap()).unwrap();
    let lag = received.with_timezone(&Utc) - at;
    assert!(lag >= Duration::zero(), "never early: {lag}");
    assert!(
        lag <= Duration::seconds(1),
        "within 1 s of scheduledTime: {lag}"
    );
    let canceled: Value = app
        .get_with_key(&format!("/v1/posts/{drop}"), &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(canceled["status"], "canceled");
}

#[tokio::test]
async fn next_attempt_at_shows_when_a_waiting_target_is_tried_again() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let parse = |v: &Value| {
        let s = v.as_str().unwrap_or_else(|| panic!("a timestamp: {v}"));
        assert!(
            s.ends_with('Z') && s.len() == 24,
            "RFC 3339 with milliseconds: {s}"
        );
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
    };

    // A 429 with `Retry-After: 1`: queued again, with the retry's due time.
    let submitted = Utc::now();
    let limited = submit(&app, &key, &text_post("wait [fail:rate_limit]", json!("x"))).await;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    let waiting = loop {
        let asked = Utc::now();
        let body: Value = app
            .get_with_key(&format!("/v1/posts/{limited}"), &key)
            .await
            .json()
            .await
            .unwrap();
        let t = &body["targets"][0];
        if t["status"] == "queued" && t["attempts"] == 1 {
            break (asked, t.clone());
        }
        assert_ne!(
            t["status"], "published",
            "the retry window was missed: {body}"
        );
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    };
    let (asked, t) = waiting;
    assert_eq!(t["error"]["code"], "rate_limited", "{t}");
    let next = parse(&t["nextAttemptAt"]);
    assert!(
        next >= submitted + Duration::milliseconds(900),
        "Retry-After: 1 is in nextAttemptAt: {t}"
    );
    assert!(
        next > asked - Duration::milliseconds(200),
        "the retry is ahead of when we asked ({asked}): {t}"
    );
    let body = wait_for_status(&app, &key, &limited, &["published"]).await;
    assert_eq!(body["targets"][0]["attempts"], 2);
    assert!(
        body["targets"][0]["nextAttemptAt"].is_null(),
        "a published target has none: {body}"
    );

    // A scheduled post: its scheduled time.
    let later =
        (Utc::now() + Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let response = app
        .post_json(
            "/v1/posts",
            &key,
            &json!({"post": {"content": {"text": "later", "platform": "x"}}, "scheduledTime": later}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["targets"][0]["status"], "scheduled", "{accepted}");
    assert_eq!(accepted["targets"][0]["nextAttemptAt"], later.as_str());
    let id = accepted["postSubmissionId"].as_str().unwrap();
    let canceled: Value = app
        .http
        .delete(app.url(&format!("/v1/posts/{id}")))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(canceled["targets"][0]["status"], "canceled", "{canceled}");
    assert!(
        canceled["targets"][0]["nextAttemptAt"].is_null(),
        "{canceled}"
    );
}

/// Saved progress that cannot be read (damaged, or sealed with another secret key) may record
/// a post already made: the target ends `unknown` with `progress_unreadable`, and nothing is
/// sent to the platform.
#[tokio::test]
async fn unreadable_saved_progress_ends_the_target_unknown_and_sends_nothing() {
    let app = TestApp::start().await;
    let Some(db) = app.sqlite_path() else {
        return;
    };
    let (_, key) = app.test_subscriber().await;
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let mut ids = Vec::new();
    for text in ["damaged progress", "progress sealed elsewhere"] {
        let mut body = text_post(text, json!("x"));
        body["scheduledTime"] = json!(later);
        ids.push(submit(&app, &key, &body).await);
    }
    // What an earlier attempt would have left: made due now.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for (id, progress) in ids.iter().zip([
        r#"{"post_sent": tr"#,
        "sealed:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]) {
        sqlx::query("UPDATE targets SET progress_json = $1, due_at = 0 WHERE submission_id = $2")
            .bind(progress)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    // Another post wakes the engine, which takes every due target.
    let other = submit(&app, &key, &text_post("wake up", json!("x"))).await;
    wait_for_status(&app, &key, &other, &["published"]).await;
    for id in &ids {
        let body = wait_for_status(&app, &key, id, &["failed"]).await;
        let target = &body["targets"][0];
        assert_eq!(target["status"], "unknown", "{body}");
        assert_eq!(target["error"]["code"], "progress_unreadable", "{body}");
    }
    let sandbox: Value = app
        .get_with_key("/v1/sandbox/x/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = sandbox["posts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(texts, ["wake up"], "{sandbox}");
}
