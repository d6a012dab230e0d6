//! Spec sections 1 and 2: request ids, the envelope on every error, bad bodies.

use crate::util::{TestApp, expect_error, request_id};
use chrono::{Duration, Utc};
use serde_json::Value;
use soku_core::model::SubscriptionStatus;
use std::collections::HashSet;

#[tokio::test]
async fn request_ids_on_every_status() {
    let app = TestApp::start().await;
    let (_, key) = app.subscriber().await;
    let lapsed = app
        .user(
            Some(SubscriptionStatus::Canceled),
            Utc::now() + Duration::days(1),
        )
        .await;
    let lapsed_key = app.key_for(&lapsed).await;
    let token = app.token("rid-user");
    let http = &app.http;
    let big = vec![b' '; 2 * 1024 * 1024];
    let requests: Vec<(u16, reqwest::RequestBuilder)> = vec![
        (
            200,
            http.get(app.url("/v1/me")).header("soku-api-key", &key),
        ),
        (401, http.get(app.url("/v1/me"))),
        (
            403,
            http.get(app.url("/v1/me"))
                .header("soku-api-key", &lapsed_key),
        ),
        (404, http.get(app.url("/v1/nothing-here"))),
        (405, http.patch(app.url("/v1/me"))),
        (
            413,
            http.post(app.url("/v1/api-keys"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(big),
        ),
        (
            415,
            http.post(app.url("/v1/api-keys"))
                .bearer_auth(&token)
                .header("content-type", "text/plain")
                .body("{}"),
        ),
        (500, http.get(app.url("/test/panic"))),
    ];
    let mut seen = HashSet::new();
    for (status, request) in requests {
        let response = request
            .header("x-request-id", "req_chosenbyme1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        let id = request_id(&response);
        assert_ne!(id, "req_chosenbyme1", "an incoming id is not trusted");
        assert!(seen.insert(id.clone()), "ids are unique");
        if status >= 400 {
            let code = match status {
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                405 => "method_not_allowed",
                413 => "payload_too_large",
                415 => "unsupported_media_type",
                _ => "internal_error",
            };
            let body = expect_error(response, status, code, None).await;
            assert_eq!(body["error"]["requestId"], id.as_str());
        }
    }
}

#[tokio::test]
async fn method_not_allowed_says_what_is() {
    let app = TestApp::start().await;
    let response = app.http.put(app.url("/v1/api-keys")).send().await.unwrap();
    let allow = response
        .headers()
        .get("allow")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    expect_error(response, 405, "method_not_allowed", None).await;
    let response = app.http.post(app.url("/healthz")).send().await.unwrap();
    expect_error(response, 405, "method_not_allowed", None).await;
}

#[tokio::test]
async fn a_panic_is_a_500_envelope_and_the_server_keeps_serving() {
    let app = TestApp::start().await;
    for _ in 0..3 {
        let response = app.http.get(app.url("/test/panic")).send().await.unwrap();
        let body = expect_error(response, 500, "internal_error", None).await;
        let text = body.to_string();
        assert!(
            !text.contains("deliberate"),
            "no internals in a 500: {text}"
        );
        assert!(!text.contains("panic"), "no internals in a 500: {text}");
    }
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn bad_bodies_get_the_envelope_never_a_500() {
    let app = TestApp::start().await;
    let token = app.token("body-user");
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.http
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    /// (case, body, content type, status, code, (details.field, details.reason))
    type Case = (
        &'static str,
        Vec<u8>,
        &'static str,
        u16,
        &'static str,
        Option<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            b"{\"name\": ".to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("body", "invalid_json")),
        ),
        (
            "an array",
            b"[1,2]".to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("body", "invalid_type")),
        ),
        (
            "a string",
            b"\"hello\"".to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("body", "invalid_type")),
        ),
        (
            "null",
            b"null".to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("body", "invalid_type")),
        ),
        (
            "wrong type",
            br#"{"name": ["a"]}"#.to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("name", "invalid_type")),
        ),
        (
            "unknown enum value",
            br#"{"mode": "staging"}"#.to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("mode", "invalid_value")),
        ),
        (
            "invalid UTF-8",
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            "application/json",
            400,
            "validation_error",
            Some(("body", "invalid_json")),
        ),
        (
            "2 MiB",
            vec![b' '; 2 * 1024 * 1024],
            "application/json",
            413,
            "payload_too_large",
            None,
        ),
        (
            "form body",
            b"name=x".to_vec(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "charset parameter is fine",
            br#"{"name": "ok"}"#.to_vec(),
            "application/json; charset=utf-8",
            201,
            "",
            None,
        ),
    ];
    for (case, body, content_type, status, code, details) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{case}");
        if status == 201 {
            continue;
        }
        let body = expect_error(response, status, code, None).await;
        if let Some((field, reason)) = details {
            assert_eq!(body["error"]["details"]["field"], field, "{case}: {body}");
            assert_eq!(body["error"]["details"]["reason"], reason, "{case}: {body}");
        } else {
            assert!(body["error"].get("details").is_none(), "{case}");
        }
        assert_eq!(
            app.http
                .get(app.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "after {case}"
        );
    }
    // Only the one good request made a key.
    let list: Value = app
        .get_with_token("/v1/api-keys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["apiKeys"].as_array().unwrap().len(), 1);
}
