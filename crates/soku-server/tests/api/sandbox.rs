//! Test mode's sandbox listing (spec 9): cursor pagination like `GET /v1/posts`.

use crate::posts::{submit, text_post, wait_for_status};
use crate::util::{TestApp, expect_error};
use serde_json::{Value, json};
use std::collections::HashSet;

#[tokio::test]
async fn sandbox_listing_pages_through_every_post_once() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            submit(
                &app,
                &key,
                &text_post(&format!("page post {i}"), json!("x")),
            )
            .await,
        );
    }
    for id in &ids {
        wait_for_status(&app, &key, id, &["published"]).await;
    }
    let wanted: HashSet<String> = ids.iter().cloned().collect();

    // Pages of 3: 3, 3, 1; newest first; every post exactly once.
    let mut seen: Vec<String> = Vec::new();
    let mut received: Vec<String> = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sandbox/x/posts?limit=3&cursor={c}"),
            None => "/v1/sandbox/x/posts?limit=3".to_owned(),
        };
        let response = app.get_with_key(&path, &key).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        pages += 1;
        let posts = page["posts"].as_array().unwrap();
        assert!(posts.len() <= 3, "{page}");
        for p in posts {
            seen.push(p["submissionId"].as_str().unwrap().to_owned());
            received.push(p["receivedAt"].as_str().unwrap().to_owned());
            assert_eq!(p["createCount"], 1, "{p}");
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                assert!(
                    page.get("nextCursor").is_some(),
                    "nextCursor: null on the last page"
                );
                break;
            }
        }
        assert!(pages < 10, "the cursor never ran out");
    }
    assert_eq!(pages, 3, "7 posts in pages of 3");
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), wanted);
    let mut newest_first = received.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(received, newest_first, "newest first across pages");

    // Without a limit, the default (100) holds all of them and there is no next page.
    let all: Value = app
        .get_with_key("/v1/sandbox/x/posts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["posts"].as_array().unwrap().len(), 7);
    assert!(all["nextCursor"].is_null(), "{all}");

    // A bad cursor is refused like `GET /v1/posts` refuses it; so is one well formed but never
    // issued: a time no cursor has (negative, past year 9999, written oddly), an id not of the
    // listing's form, another listing's cursor.
    use base64::Engine;
    let b64 = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let never_issued = [
        b64("0:x"),
        b64("-1:med_x"),
        b64("9223372036854775807:x"),
        b64(&format!("-1:{uuid}")),
        b64(&format!("+5:{uuid}")),
        b64(&format!("0005:{uuid}")),
        b64(&format!("253402300800000:{uuid}")),
        b64("1796597319109:med_abcdefghijklmnopqrstuvwx"),
        b64("1796597319109:sim_abcdefghijklmnopqrst"),
    ];
    for (base, issued) in [
        ("/v1/posts", b64(&format!("1796597319109:{uuid}"))),
        (
            "/v1/sandbox/x/posts",
            b64("1796597319109:sim_abcdefghijklmnopqrst"),
        ),
        (
            "/v1/media",
            b64("1796597319109:med_abcdefghijklmnopqrstuvwx"),
        ),
    ] {
        let ok = app
            .get_with_key(&format!("{base}?cursor={issued}"), &key)
            .await;
        assert_eq!(ok.status(), 200, "{base}: a cursor of its form");
        for bad in ["%%%", "bm90LWEtY3Vyc29y"]
            .into_iter()
            .map(str::to_owned)
            .chain(never_issued.iter().filter(|c| **c != issued).cloned())
        {
            let body = expect_error(
                app.get_with_key(&format!("{base}?cursor={bad}"), &key)
                    .await,
                400,
                "validation_error",
                Some("The cursor is not one this server issued."),
            )
            .await;
            assert_eq!(
                body["error"]["details"],
                json!({"field": "cursor", "reason": "invalid_value"}),
                "{base}: {body}"
            );
        }
    }
    for bad in ["limit=0", "limit=1001", "limit=x"] {
        expect_error(
            app.get_with_key(&format!("/v1/sandbox/x/posts?{bad}"), &key)
                .await,
            400,
            "validation_error",
            None,
        )
        .await;
    }
}
