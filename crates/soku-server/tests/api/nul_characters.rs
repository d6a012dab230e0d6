//! A NUL character (U+0000) in anything a client sends. No text of this API can mean one and
//! PostgreSQL refuses text holding one in a query, so it is refused at the door, the same on
//! both backends: before, on PostgreSQL, an id or cursor holding one was a 500 (and an ERROR
//! line) instead of a 404 or 400, and a post whose text held one was accepted, then failed five
//! times at publishing.

use crate::util::{TestApp, expect_error};
use serde_json::json;

async fn field_of(r: reqwest::Response) -> String {
    let body = expect_error(r, 400, "validation_error", None).await;
    body["error"]["details"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_nul_in_a_body_an_id_or_a_query_is_a_client_error() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;

    // In a JSON body: 400 naming the field.
    let post = json!({"post": {"content": {"text": "nul \u{0} here", "platform": ["x"]}}});
    let r = app.post_json("/v1/posts", &key, &post).await;
    assert_eq!(field_of(r).await, "post.content.text");
    let post = json!({"post": {"content": {"text": "hi", "platform": ["x", "threads\u{0}"]}}});
    let r = app.post_json("/v1/posts", &key, &post).await;
    assert_eq!(field_of(r).await, "post.content.platform[1]");
    let r = app
        .http
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "a\u{0}@example.com", "password": "xxxxxxxxxxxx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(field_of(r).await, "email");

    // In a path: no such resource.
    for path in ["/v1/posts/%00", "/v1/media/med_%00"] {
        let r = app.get_with_key(path, &key).await;
        expect_error(r, 404, "not_found", None).await;
    }
    let r = app
        .http
        .delete(app.url("/v1/posts/%00"))
        .header("soku-api-key", &key)
        .send()
        .await
        .unwrap();
    expect_error(r, 404, "not_found", None).await;

    // In a query, or inside a cursor (base64 of "1796597319109:\0abc"): 400 naming it.
    let r = app.get_with_key("/v1/posts?status=%00", &key).await;
    assert_eq!(field_of(r).await, "status");
    for listing in ["/v1/posts", "/v1/media", "/v1/sandbox/x/posts"] {
        let r = app
            .get_with_key(&format!("{listing}?cursor=MTc5NjU5NzMxOTEwOToAYWJj"), &key)
            .await;
        assert_eq!(field_of(r).await, "cursor", "{listing}");
    }

    // The same text without the NUL is a post like any other.
    let post = json!({"post": {"content": {"text": "nul  here", "platform": ["x"]}}});
    let r = app.post_json("/v1/posts", &key, &post).await;
    assert_eq!(r.status(), 200);
}
