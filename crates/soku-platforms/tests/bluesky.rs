//! The Bluesky connector against the fake PDS (loopback only).

mod support;

use chrono::Utc;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, ConnectErrorKind, ConnectMethod, ConnectedAccount, Connector, Existing,
    FailureClass, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent};
use soku_fakes::Fault;
use soku_fakes::bluesky::{APP_PASSWORD, DID, FakeBluesky, HANDLE, MAIN_PASSWORD};
use soku_platforms::PlatformSettings;
use soku_platforms::bluesky::{Bluesky, is_tid, record_key};
use soku_platforms::net::NetPolicy;
use std::sync::Arc;
use std::time::Duration;
use support::MemoryMedia;

const CREATE: &str = "/xrpc/com.atproto.repo.createRecord";

fn png(tag: u8) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend(std::iter::repeat_n(tag, 64));
    b
}

fn jpeg(tag: u8) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    b.extend(std::iter::repeat_n(tag, 64));
    b
}

fn media() -> Arc<MemoryMedia> {
    let mut big = png(4);
    big.resize(1_000_001, 0);
    MemoryMedia::new([
        ("https://img.example/a.png", png(1)),
        ("https://img.example/b.jpg", jpeg(2)),
        ("https://img.example/c.png", png(3)),
        ("https://img.example/big.png", big),
    ])
}

struct Setup {
    fake: FakeBluesky,
    bsky: Bluesky,
    media: Arc<MemoryMedia>,
}

async fn setup() -> Setup {
    let fake = FakeBluesky::start().await;
    let media = media();
    let mut settings = PlatformSettings::at(&fake.url);
    settings.timeout = Duration::from_secs(1);
    let bsky = Bluesky::new(
        settings,
        media.clone(),
        NetPolicy {
            allow_loopback: true,
        },
    );
    Setup { fake, bsky, media }
}

async fn connect(s: &Setup) -> ConnectedAccount {
    s.bsky
        .connect_direct(
            &json!({"identifier": HANDLE, "appPassword": APP_PASSWORD, "pds": s.fake.url}),
        )
        .await
        .expect("connects")
}

fn creds(account: &ConnectedAccount) -> AccountCredentials {
    AccountCredentials {
        account_id: account.account_id.clone(),
        username: account.username.clone(),
        access_token: Some(account.tokens.access_token.clone()),
        refresh_token: account.tokens.refresh_token.clone(),
        meta: account.meta.clone(),
    }
}

fn request(
    account: &ConnectedAccount,
    marker: &str,
    text: &str,
    images: &[&str],
) -> PublishRequest {
    PublishRequest {
        marker: marker.to_owned(),
        user_id: "usr_1".into(),
        submission_id: "sub_1".into(),
        target_id: format!("tgt_{marker}"),
        platform: Platform::Bluesky,
        account: creds(account),
        content: PostContent {
            text: Some(text.to_owned()),
            media_type: if images.is_empty() {
                MediaType::Text
            } else {
                MediaType::Image
            },
            image_urls: images.iter().map(|s| s.to_string()).collect(),
            video_url: None,
        },
        options: Default::default(),
        media: Vec::new(),
        progress: Default::default(),
        not_before: Utc::now(),
    }
}

#[tokio::test]
async fn connects_with_an_app_password_and_keeps_only_tokens() {
    let s = setup().await;
    assert_eq!(s.bsky.connect_method(), ConnectMethod::Credentials);
    let before = Utc::now();
    let account = connect(&s).await;
    assert_eq!(account.account_id, DID);
    assert_eq!(account.username.as_deref(), Some(HANDLE));
    assert_eq!(
        account.meta,
        json!({"pds": s.fake.url, "did": DID, "handle": HANDLE})
    );
    assert!(s.fake.access_token_valid(&account.tokens.access_token));
    assert!(
        s.fake
            .refresh_token_valid(account.tokens.refresh_token.as_deref().unwrap())
    );
    // expires_at is the access JWT's exp claim: two hours on the fake.
    let exp = account.tokens.expires_at.expect("exp read from the JWT");
    let ttl = (exp - before).num_seconds();
    assert!((7190..=7210).contains(&ttl), "{ttl}");
    // The app password is nowhere in what is kept or printed.
    let printed = format!("{account:?} {}", account.meta);
    assert!(!printed.contains(APP_PASSWORD));
    assert!(!printed.contains(&account.tokens.access_token));
    assert_eq!(s.fake.sessions_created(), 1);
}

#[tokio::test]
async fn the_pds_defaults_to_the_configured_api_url_and_at_is_stripped() {
    let s = setup().await;
    let account = s
        .bsky
        .connect_direct(&json!({"identifier": format!("@{HANDLE}"), "appPassword": APP_PASSWORD}))
        .await
        .expect("connects at settings.api_url");
    assert_eq!(account.account_id, DID);
}

#[tokio::test]
async fn connecting_is_refused_for_bad_or_missing_credentials_and_main_passwords() {
    let s = setup().await;
    let e = s
        .bsky
        .connect_direct(&json!({"identifier": HANDLE, "appPassword": "wrong-pass-word-xxxx", "pds": s.fake.url}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert_eq!(e.field, Some("appPassword"));
    assert!(e.platform_error.unwrap().contains("AuthenticationRequired"));
    assert!(!e.message.contains("wrong-pass-word-xxxx"));

    let e = s
        .bsky
        .connect_direct(&json!({"identifier": HANDLE}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Invalid);
    let e = s
        .bsky
        .connect_direct(&json!({"appPassword": APP_PASSWORD}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Invalid);

    // The account's own password works at the PDS but is refused here.
    let e = s
        .bsky
        .connect_direct(
            &json!({"identifier": HANDLE, "appPassword": MAIN_PASSWORD, "pds": s.fake.url}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Invalid);
    assert!(e.message.contains("app password"));

    // A PDS on a private address is refused before any request (policy without loopback).
    let strict = Bluesky::new(
        PlatformSettings::at(&s.fake.url),
        s.media.clone(),
        NetPolicy::default(),
    );
    let e = strict
        .connect_direct(&json!({"identifier": HANDLE, "appPassword": APP_PASSWORD, "pds": "http://169.254.169.254"}))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Invalid);
    // Only the main-password session was made, and it was ended at once.
    assert_eq!(s.fake.sessions_created(), 1);
    assert_eq!(s.fake.sessions_deleted(), 1);
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_a_used_refresh_token_is_rejected() {
    let s = setup().await;
    let account = connect(&s).await;
    let old = creds(&account);
    let tokens = s.bsky.refresh(&old).await.expect("refreshes");
    let new_refresh = tokens.refresh_token.clone().expect("rotated");
    assert_ne!(tokens.access_token, account.tokens.access_token);
    assert_ne!(Some(&new_refresh), account.tokens.refresh_token.as_ref());
    assert!(tokens.expires_at.is_some());
    assert!(s.fake.access_token_valid(&tokens.access_token));
    assert_eq!(s.fake.refreshes(), 1);

    // The old refresh JWT was used up by the rotation.
    let e = s.bsky.refresh(&old).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.platform_error.unwrap().contains("ExpiredToken"));

    // The new pair publishes.
    let mut acc2 = account.clone();
    acc2.tokens = tokens;
    let post = s
        .bsky
        .publish(&request(&acc2, "m-after-refresh", "after refresh", &[]))
        .await
        .expect("publishes with the refreshed token");
    assert!(post.id.starts_with("at://"));
}

#[tokio::test]
async fn refresh_with_a_revoked_session_is_rejected() {
    let s = setup().await;
    let account = connect(&s).await;
    s.fake.revoke_refresh_tokens();
    let e = s.bsky.refresh(&creds(&account)).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);

    let mut none = creds(&account);
    none.refresh_token = None;
    assert_eq!(
        s.bsky.refresh(&none).await.unwrap_err().kind,
        ConnectErrorKind::Rejected
    );
}

#[tokio::test]
async fn refresh_when_the_pds_fails_or_rate_limits_is_unavailable() {
    let s = setup().await;
    let account = connect(&s).await;
    s.fake.faults.reply(
        "POST",
        "/xrpc/com.atproto.server.refreshSession",
        502,
        &[],
        json!({"error": "InternalServerError", "message": "Bad Gateway"}),
    );
    let e = s.bsky.refresh(&creds(&account)).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);
    s.fake.faults.reply(
        "POST",
        "/xrpc/com.atproto.server.refreshSession",
        429,
        &[("ratelimit-reset", "1999999999")],
        json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
    );
    let e = s.bsky.refresh(&creds(&account)).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);
    // The session is intact.
    assert!(s.bsky.refresh(&creds(&account)).await.is_ok());
}

#[tokio::test]
async fn text_post_with_links_mentions_and_tags_in_utf8_bytes() {
    let s = setup().await;
    s.fake.add_handle("bob.test", "did:plc:bob234567");
    let account = connect(&s).await;
    let text = "Café ☕ déjà vu: https://example.com/a?b=1. Hi @bob.test and @ghost.test #rustlang";
    let req = request(&account, "m-text", text, &[]);
    let post = s.bsky.publish(&req).await.expect("publishes");

    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    let rkey = record_key("m-text", req.not_before);
    assert!(is_tid(&rkey));
    assert_eq!(p.rkey, rkey);
    assert_eq!(post.id, format!("at://{DID}/app.bsky.feed.post/{rkey}"));
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://bsky.app/profile/{HANDLE}/post/{rkey}").as_str())
    );
    assert_eq!(p.record["text"], text);
    assert!(p.record.get("embed").is_none());

    let facets = p.record["facets"].as_array().unwrap();
    let spanned: Vec<(String, Value)> = facets
        .iter()
        .map(|f| {
            let a = f["index"]["byteStart"].as_u64().unwrap() as usize;
            let b = f["index"]["byteEnd"].as_u64().unwrap() as usize;
            (text[a..b].to_owned(), f["features"][0].clone())
        })
        .collect();
    assert_eq!(
        spanned,
        vec![
            (
                "https://example.com/a?b=1".to_owned(),
                json!({"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a?b=1"})
            ),
            (
                "@bob.test".to_owned(),
                json!({"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bob234567"})
            ),
            (
                "#rustlang".to_owned(),
                json!({"$type": "app.bsky.richtext.facet#tag", "tag": "rustlang"})
            ),
        ],
        "@ghost.test does not resolve: no facet"
    );
    // Offsets are bytes: the link starts after more bytes than characters.
    let start = facets[0]["index"]["byteStart"].as_u64().unwrap() as usize;
    assert_eq!(start, text.find("https://").unwrap());
    assert!(start > text[..start].chars().count());
}

#[tokio::test]
async fn single_image_is_uploaded_and_embedded() {
    let s = setup().await;
    let account = connect(&s).await;
    let post = s
        .bsky
        .publish(&request(
            &account,
            "m-img",
            "one picture",
            &["https://img.example/a.png"],
        ))
        .await
        .expect("publishes");
    let blobs = s.fake.blobs();
    assert_eq!(blobs.len(), 1);
    assert_eq!(blobs[0].bytes, png(1));
    assert_eq!(blobs[0].mime, "image/png");
    let record = &s.fake.posts()[0].record;
    assert_eq!(record["embed"]["$type"], "app.bsky.embed.images");
    let images = record["embed"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["alt"], "");
    assert_eq!(images[0]["image"]["ref"]["$link"], blobs[0].cid.as_str());
    assert_eq!(images[0]["image"]["mimeType"], "image/png");
    assert_eq!(images[0]["image"]["size"], png(1).len());
    assert!(post.id.ends_with(&s.fake.posts()[0].rkey));
    // The documented 1,000,000-byte blob limit is what the media fetch is held to.
    let asked = s.media.asked.lock().unwrap();
    assert_eq!(asked[0].max_bytes, 1_000_000);
}

#[tokio::test]
async fn several_images_keep_their_order() {
    let s = setup().await;
    let account = connect(&s).await;
    let urls = [
        "https://img.example/a.png",
        "https://img.example/b.jpg",
        "https://img.example/c.png",
    ];
    s.bsky
        .publish(&request(&account, "m-imgs", "", &urls))
        .await
        .expect("publishes images without text");
    let blobs = s.fake.blobs();
    assert_eq!(
        blobs.iter().map(|b| b.bytes.clone()).collect::<Vec<_>>(),
        vec![png(1), jpeg(2), png(3)]
    );
    assert_eq!(blobs[1].mime, "image/jpeg");
    let record = &s.fake.posts()[0].record;
    let links: Vec<&str> = record["embed"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"]["ref"]["$link"].as_str().unwrap())
        .collect();
    assert_eq!(
        links,
        blobs.iter().map(|b| b.cid.as_str()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn refused_content_fails_permanently_before_any_post() {
    let s = setup().await;
    let account = connect(&s).await;
    let five = [
        "https://img.example/a.png",
        "https://img.example/b.jpg",
        "https://img.example/c.png",
        "https://img.example/a.png",
        "https://img.example/b.jpg",
    ];
    let e = s
        .bsky
        .publish(&request(&account, "m5", "five", &five))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "too_many_media")
    );

    let mut video = request(&account, "mv", "a video", &[]);
    video.content.media_type = MediaType::Video;
    video.content.video_url = Some("https://img.example/v.mp4".into());
    // Video is published (see `mod video`); one the server cannot read is refused for good.
    let e = s.bsky.publish(&video).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_unavailable")
    );

    let long = "é".repeat(301);
    let e = s
        .bsky
        .publish(&request(&account, "ml", &long, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "text_too_long")
    );

    let e = s
        .bsky
        .publish(&request(
            &account,
            "mb",
            "big",
            &["https://img.example/big.png"],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);

    assert_eq!(s.fake.create_calls(), 0);
    assert!(s.fake.blobs().is_empty());
}

#[tokio::test]
async fn rate_limit_is_retryable_after_ratelimit_reset() {
    let s = setup().await;
    let account = connect(&s).await;
    let reset = (Utc::now().timestamp() + 30).to_string();
    s.fake.faults.reply(
        "POST",
        CREATE,
        429,
        &[
            ("ratelimit-limit", "5000"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", reset.as_str()),
            ("ratelimit-policy", "5000;w=3600"),
        ],
        json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
    );
    let e = s
        .bsky
        .publish(&request(&account, "m429", "hello", &[]))
        .await
        .unwrap_err();
    let FailureClass::Retryable {
        retry_after: Some(after),
    } = e.class
    else {
        panic!("{e:?}")
    };
    assert!(
        after >= Duration::from_secs(28) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    assert_eq!(e.code, "rate_limited");
    assert!(s.fake.posts().is_empty());
}

#[tokio::test]
async fn server_error_on_create_is_ambiguous() {
    let s = setup().await;
    let account = connect(&s).await;
    s.fake.faults.reply(
        "POST",
        CREATE,
        503,
        &[],
        json!({"error": "InternalServerError", "message": "Service Unavailable"}),
    );
    let req = request(&account, "m503", "hello", &[]);
    let e = s.bsky.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    assert!(s.fake.posts().is_empty());
    // Reconciliation: nothing there.
    assert_eq!(
        s.bsky.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn timeout_after_the_post_was_made_is_reconciled_without_a_second_post() {
    let s = setup().await;
    let account = connect(&s).await;
    s.fake.faults.push(
        "POST",
        CREATE,
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let req = request(
        &account,
        "m-timeout",
        "did it go out?",
        &["https://img.example/a.png"],
    );
    let e = s.bsky.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "timeout")
    );
    assert_eq!(s.fake.posts().len(), 1, "the post was made");

    let Existing::Found(found) = s.bsky.find_existing(&req).await.unwrap() else {
        panic!("the post is found")
    };
    assert_eq!(found.id, s.fake.posts()[0].uri);
    assert!(
        found
            .url
            .unwrap()
            .starts_with("https://bsky.app/profile/alice.test/post/")
    );

    // A retry anyway (e.g. the engine lost the answer): the same key, no second post.
    let again = s
        .bsky
        .publish(&req)
        .await
        .expect("the existing post is returned");
    assert_eq!(again.id, found.id);
    assert_eq!(s.fake.posts().len(), 1);
    assert_eq!(s.fake.create_calls(), 2);
}

#[tokio::test]
async fn find_existing_not_found_and_lookup_failures() {
    let s = setup().await;
    let account = connect(&s).await;
    let req = request(&account, "m-never", "never sent", &[]);
    assert_eq!(
        s.bsky.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );

    s.fake.faults.reply(
        "GET",
        "/xrpc/com.atproto.repo.getRecord",
        502,
        &[],
        json!({"error": "InternalServerError", "message": "Bad Gateway"}),
    );
    let e = s.bsky.find_existing(&req).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");

    // Something else at the key (not this target's text): the connector cannot tell.
    let rkey = record_key("m-never", req.not_before);
    s.fake.insert_post(
        &rkey,
        json!({"$type": "app.bsky.feed.post", "text": "other", "createdAt": "2025-01-01T00:00:00Z"}),
    );
    assert_eq!(
        s.bsky.find_existing(&req).await.unwrap(),
        Existing::CannotTell
    );
}

#[tokio::test]
async fn expired_or_unknown_access_tokens_are_token_invalid() {
    let s = setup().await;
    let account = connect(&s).await;
    s.fake.expire_access_tokens();
    let e = s
        .bsky
        .publish(&request(&account, "m-exp", "hello", &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(
        e.platform_error
            .as_deref()
            .unwrap()
            .contains("ExpiredToken")
    );
    assert!(!format!("{e:?}").contains(&account.tokens.access_token));

    // The upload hits the same check first when there are images.
    let e = s
        .bsky
        .publish(&request(
            &account,
            "m-exp2",
            "hello",
            &["https://img.example/a.png"],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);

    let mut forged = request(&account, "m-forged", "hello", &[]);
    forged.account.access_token = Some("eyJ0eXAiOiJhdCtqd3QifQ.e30.c2ln".into());
    let e = s.bsky.publish(&forged).await.unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);

    let mut none = request(&account, "m-none", "hello", &[]);
    none.account.access_token = None;
    assert_eq!(s.bsky.publish(&none).await.unwrap_err().code, TOKEN_INVALID);
    assert!(s.fake.posts().is_empty());
}

#[tokio::test]
async fn the_fake_rejects_malformed_requests() {
    let s = setup().await;
    let account = connect(&s).await;
    let access = account.tokens.access_token.clone();
    let refresh = account.tokens.refresh_token.clone().unwrap();
    let http = reqwest::Client::new();
    let create = |body: Value| {
        http.post(format!("{}{CREATE}", s.fake.url))
            .bearer_auth(&access)
            .json(&body)
            .send()
    };
    let good = json!({"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2025-01-01T00:00:00.000Z"});
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        (status, v["error"].as_str().unwrap().to_owned())
    };

    // No createdAt.
    let r = create(
        json!({"repo": DID, "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a",
        "record": {"$type": "app.bsky.feed.post", "text": "x"}}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidRequest".into()));
    // An rkey that is not a TID.
    let r = create(json!({"repo": DID, "collection": "app.bsky.feed.post", "rkey": "not-a-tid", "record": good}))
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidRequest".into()));
    // Someone else's repo.
    let r = create(
        json!({"repo": "did:plc:someoneelse", "collection": "app.bsky.feed.post", "record": good}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidRequest".into()));
    // A facet past the end of the text.
    let mut faceted = good.clone();
    faceted["facets"] = json!([{"index": {"byteStart": 0, "byteEnd": 5},
        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "x"}]}]);
    let r = create(json!({"repo": DID, "collection": "app.bsky.feed.post", "record": faceted}))
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidRequest".into()));
    // A blob this account never uploaded.
    let mut embedded = good.clone();
    embedded["embed"] = json!({"$type": "app.bsky.embed.images", "images": [{"alt": "",
        "image": {"$type": "blob", "ref": {"$link": "bafkreinotuploaded"}, "mimeType": "image/png", "size": 10}}]});
    let r = create(json!({"repo": DID, "collection": "app.bsky.feed.post", "record": embedded}))
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidRequest".into()));
    // The refresh JWT is not an access token.
    let r = http
        .post(format!("{}{CREATE}", s.fake.url))
        .bearer_auth(&refresh)
        .json(&json!({"repo": DID, "collection": "app.bsky.feed.post", "record": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidToken".into()));
    // ... and the access JWT is not a refresh token.
    let r = http
        .post(format!(
            "{}/xrpc/com.atproto.server.refreshSession",
            s.fake.url
        ))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidToken".into()));
    // An upload whose Content-Type does not match its bytes.
    let r = http
        .post(format!("{}/xrpc/com.atproto.repo.uploadBlob", s.fake.url))
        .bearer_auth(&access)
        .header("content-type", "image/jpeg")
        .body(png(9))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (400, "InvalidRequest".into()));
    // No auth at all.
    let r = http
        .post(format!("{}{CREATE}", s.fake.url))
        .json(&json!({"repo": DID, "collection": "app.bsky.feed.post", "record": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await, (401, "AuthenticationRequired".into()));

    assert!(s.fake.posts().is_empty());
    // The well-formed request goes through.
    let r = create(json!({"repo": DID, "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a", "record": good}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_validation_refusal_from_the_pds_is_permanent() {
    let s = setup().await;
    let account = connect(&s).await;
    s.fake.faults.reply(
        "POST",
        CREATE,
        400,
        &[],
        json!({"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes"}),
    );
    let e = s
        .bsky
        .publish(&request(&account, "m400", "hello", &[]))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert!(e.message.contains("300 graphemes"), "{}", e.message);
    assert!(s.fake.posts().is_empty());
}

// ---- Video (the video service) ----

mod video {
    use super::*;
    use soku_core::connector::Progress;
    use soku_core::keys::KeyMode;
    use soku_core::media::{MediaFacts, MediaKind, MediaRecord};
    use support::Saves;

    const VIDEO: &str = "https://files.example/clip.mp4";

    struct VideoSetup {
        fake: FakeBluesky,
        bsky: Bluesky,
        account: ConnectedAccount,
    }

    /// The connector pointed at the fake PDS and its video service; `wait` bounds one attempt's
    /// processing wait, polls every 20 ms.
    async fn setup(wait: Duration) -> VideoSetup {
        let fake = FakeBluesky::start().await;
        let media = MemoryMedia::new([
            (VIDEO, soku_fakes::media_files::mp4(1280, 720, 4_000, 4096)),
            ("https://img.example/a.png", png(1)),
        ]);
        let mut settings = PlatformSettings::at(&fake.url);
        settings.timeout = Duration::from_secs(2);
        let bsky = Bluesky::new(
            settings,
            media,
            NetPolicy {
                allow_loopback: true,
            },
        )
        .with_video_service(&fake.video_url)
        .with_video_processing_wait(wait, Duration::from_millis(20));
        let account = bsky
            .connect_direct(
                &json!({"identifier": HANDLE, "appPassword": APP_PASSWORD, "pds": fake.url}),
            )
            .await
            .expect("connects");
        VideoSetup {
            fake,
            bsky,
            account,
        }
    }

    fn facts(width: u32, height: u32) -> MediaRecord {
        MediaRecord {
            id: "med_abcdefghijklmnopqrstuvwx".into(),
            user_id: "usr_1".into(),
            mode: KeyMode::Live,
            facts: MediaFacts {
                kind: MediaKind::Video,
                mime: "video/mp4",
                size: 4096,
                width: Some(width),
                height: Some(height),
                duration_ms: Some(4_000),
            },
            sha256: "00".repeat(32),
            storage_key: "media/med_abcdefghijklmnopqrstuvwx.mp4".into(),
            file_name: "med_abcdefghijklmnopqrstuvwx.mp4".into(),
            source_url: None,
            idempotency_key: None,
            request_hash: "00".repeat(32),
            created_at: Utc::now(),
        }
    }

    fn video_request(
        account: &ConnectedAccount,
        marker: &str,
        progress: Progress,
    ) -> PublishRequest {
        let mut r = request(account, marker, "A clip", &[]);
        r.content.media_type = MediaType::Video;
        r.content.video_url = Some(VIDEO.into());
        r.media = vec![facts(1280, 720)];
        r.progress = progress;
        r
    }

    fn tracked(saved: Value) -> (Arc<Saves>, Progress) {
        let saves = Arc::new(Saves::default());
        let progress = Progress::new(saved, saves.clone());
        (saves, progress)
    }

    #[tokio::test]
    async fn a_video_is_posted_with_its_embed_and_aspect_ratio() {
        let s = setup(Duration::from_secs(5)).await;
        let (saves, progress) = tracked(Value::Null);
        let req = video_request(&s.account, "v-1", progress);
        let post = s.bsky.publish(&req).await.expect("published");
        let rkey = record_key("v-1", req.not_before);
        assert_eq!(post.id, format!("at://{DID}/app.bsky.feed.post/{rkey}"));

        let posts = s.fake.posts();
        assert_eq!(posts.len(), 1);
        let embed = &posts[0].record["embed"];
        assert_eq!(embed["$type"], "app.bsky.embed.video");
        assert_eq!(embed["aspectRatio"], json!({"width": 1280, "height": 720}));
        assert_eq!(embed["video"]["mimeType"], "video/mp4");
        assert_eq!(embed["video"]["$type"], "blob");
        assert_eq!(s.fake.video_uploads(), 1);
        let jobs = s.fake.video_jobs();
        assert_eq!(jobs.len(), 1);
        // The upload was named after the record key, not the hosted file's (secret) name.
        assert_eq!(jobs[0].name, format!("{rkey}.mp4"));
        assert_eq!(
            jobs[0].bytes,
            soku_fakes::media_files::mp4(1280, 720, 4_000, 4096)
        );
        // Progress: the job once created, then its blob.
        let all = saves.all();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0],
            json!({"video_url": VIDEO, "job_id": jobs[0].job_id})
        );
        assert_eq!(all[1]["blob"], embed["video"]);
        // Read back, the post is this target's.
        assert_eq!(
            s.bsky.find_existing(&req).await.unwrap(),
            Existing::Found(post)
        );
    }

    #[tokio::test]
    async fn without_known_dimensions_there_is_no_aspect_ratio_and_images_cannot_join() {
        let s = setup(Duration::from_secs(5)).await;
        let mut req = video_request(&s.account, "v-2", Progress::default());
        req.media.clear();
        s.bsky.publish(&req).await.expect("published");
        assert!(
            s.fake.posts()[0].record["embed"]
                .get("aspectRatio")
                .is_none()
        );

        let mut both = video_request(&s.account, "v-3", Progress::default());
        both.content.image_urls = vec!["https://img.example/a.png".into()];
        let e = s.bsky.publish(&both).await.unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(e.code, "unsupported_media");
        let mut none = video_request(&s.account, "v-4", Progress::default());
        none.content.video_url = None;
        assert_eq!(
            s.bsky.publish(&none).await.unwrap_err().code,
            "missing_video"
        );
        assert_eq!(s.fake.video_uploads(), 1);
    }

    #[tokio::test]
    async fn slow_processing_is_waited_for() {
        let s = setup(Duration::from_secs(5)).await;
        s.fake.set_processing_polls(6);
        let req = video_request(&s.account, "v-slow", Progress::default());
        s.bsky
            .publish(&req)
            .await
            .expect("published after the wait");
        assert_eq!(s.fake.video_jobs()[0].polls, 6);
        assert_eq!(s.fake.video_uploads(), 1);
        assert_eq!(s.fake.posts().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_job_is_permanent_with_the_service_message() {
        let s = setup(Duration::from_secs(5)).await;
        s.fake.fail_next_video("Failed to process video");
        let req = video_request(&s.account, "v-fail", Progress::default());
        let e = s.bsky.publish(&req).await.unwrap_err();
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(e.code, "media_processing_failed");
        assert_eq!(e.platform_error.as_deref(), Some("Failed to process video"));
        assert!(!e.message.contains("clip.mp4"), "{}", e.message);
        assert_eq!(s.fake.create_calls(), 0);
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_is_retryable_and_resumed_without_a_second_upload() {
        let s = setup(Duration::from_millis(150)).await;
        s.fake.set_processing_polls(1_000);
        let (saves, progress) = tracked(Value::Null);
        let req = video_request(&s.account, "v-timeout", progress);
        let e = s.bsky.publish(&req).await.unwrap_err();
        assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
        assert_eq!(e.code, "media_processing");
        assert_eq!(s.fake.video_uploads(), 1);
        assert_eq!(s.fake.create_calls(), 0);
        let saved = saves.last();
        assert_eq!(saved["job_id"], s.fake.video_jobs()[0].job_id.as_str());
        assert!(saved.get("blob").is_none());

        // The next attempt (a retry, or another process after a restart) polls the saved job.
        let polls_before = s.fake.video_jobs()[0].polls;
        let (saves2, progress2) = tracked(saved);
        let mut again = video_request(&s.account, "v-timeout", progress2);
        again.not_before = req.not_before;
        // Let the job finish within this attempt's wait.
        s.fake.finish_video_jobs_after(2);
        let post = s.bsky.publish(&again).await.expect("resumed");
        assert!(post.id.ends_with(&record_key("v-timeout", req.not_before)));
        assert_eq!(s.fake.video_uploads(), 1, "never uploaded twice");
        assert!(s.fake.video_jobs()[0].polls > polls_before);
        assert!(saves2.last().get("blob").is_some());
    }

    #[tokio::test]
    async fn a_restart_with_a_saved_blob_goes_straight_to_the_record() {
        let s = setup(Duration::from_secs(5)).await;
        let (saves, progress) = tracked(Value::Null);
        let first = video_request(&s.account, "v-restart", progress);
        s.bsky.publish(&first).await.expect("published");
        let saved = saves.last();
        assert!(saved.get("blob").is_some());
        let polls = s.fake.video_jobs()[0].polls;

        // As if the process died after the blob was saved and before the post was known: the
        // next attempt neither uploads nor polls, and the existing record is read back.
        let (_saves, progress) = tracked(saved);
        let mut again = video_request(&s.account, "v-restart", progress);
        again.not_before = first.not_before;
        s.bsky.publish(&again).await.expect("read back");
        assert_eq!(s.fake.video_uploads(), 1);
        assert_eq!(s.fake.video_jobs()[0].polls, polls);
        assert_eq!(s.fake.posts().len(), 1);
    }

    #[tokio::test]
    async fn already_exists_leads_to_the_video_processed_before() {
        let s = setup(Duration::from_secs(5)).await;
        let req = video_request(&s.account, "v-first", Progress::default());
        s.bsky.publish(&req).await.expect("published");
        // Another target with the same video and no progress: the service answers 409.
        let (saves, progress) = tracked(Value::Null);
        let other = video_request(&s.account, "v-second", progress);
        s.bsky
            .publish(&other)
            .await
            .expect("published from the earlier job");
        assert_eq!(s.fake.video_jobs().len(), 1, "no second job");
        assert_eq!(s.fake.posts().len(), 2);
        assert_eq!(
            s.fake.posts()[1].record["embed"]["video"],
            s.fake.posts()[0].record["embed"]["video"]
        );
        assert_eq!(
            saves.all()[0]["job_id"],
            s.fake.video_jobs()[0].job_id.as_str()
        );
    }

    #[tokio::test]
    async fn the_service_token_is_bound_to_the_pds_and_upload_blob() {
        let s = setup(Duration::from_secs(5)).await;
        // An access JWT is not a service token.
        let r = reqwest::Client::new()
            .post(format!(
                "{}/xrpc/app.bsky.video.uploadVideo?did={DID}&name=a.mp4",
                s.fake.video_url
            ))
            .bearer_auth(&s.account.tokens.access_token)
            .header("content-type", "video/mp4")
            .body(soku_fakes::media_files::mp4(16, 16, 1_000, 16))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // A service token for another audience is refused too.
        let t: Value = reqwest::Client::new()
            .get(format!(
                "{}/xrpc/com.atproto.server.getServiceAuth",
                s.fake.url
            ))
            .query(&[
                ("aud", "did:web:video.bsky.app"),
                ("lxm", "com.atproto.repo.uploadBlob"),
            ])
            .bearer_auth(&s.account.tokens.access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = reqwest::Client::new()
            .post(format!(
                "{}/xrpc/app.bsky.video.uploadVideo?did={DID}&name=a.mp4",
                s.fake.video_url
            ))
            .bearer_auth(t["token"].as_str().unwrap())
            .header("content-type", "video/mp4")
            .body(soku_fakes::media_files::mp4(16, 16, 1_000, 16))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(s.fake.video_uploads(), 0);
        assert!(s.fake.service_did().starts_with("did:web:127.0.0.1%3A"));
    }
}
