//! The Mastodon connector against the fake instance (loopback only).

mod support;

use chrono::Utc;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    ConnectedAccount, Connector, Existing, FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent};
use soku_fakes::Fault;
use soku_fakes::common::pkce_challenge;
use soku_fakes::mastodon::{MastodonFake, PROCESSING_ERROR};
use soku_fakes::media_files;
use soku_platforms::PlatformSettings;
use soku_platforms::mastodon::{CLIENT_NAME, Mastodon, SCOPES};
use soku_platforms::net::NetPolicy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::{MemoryMedia, Saves};

const REDIRECT: &str = "https://soku.example/v1/oauth/mastodon/callback";
const VERIFIER: &str = "a-pkce-verifier-of-enough-length-0123456789-abcdefghijklmnop";

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1,
];
const GIF: &[u8] = b"GIF89a\x01\0\x01\0\x80\0\0\xff\xff\xff\0\0\0";

const VIDEO: &str = "https://img.example/clip.mp4";

/// A valid MP4: 640x360, 4.5 s.
fn mp4() -> Vec<u8> {
    media_files::mp4(640, 360, 4_500, 4096)
}

fn media() -> Arc<MemoryMedia> {
    MemoryMedia::new([
        ("https://img.example/a.png", PNG.to_vec()),
        ("https://img.example/b.jpg", JPEG.to_vec()),
        ("https://img.example/c.gif", GIF.to_vec()),
        (VIDEO, mp4()),
    ])
}

fn settings(fake: &MastodonFake) -> PlatformSettings {
    let mut s = PlatformSettings::at(&fake.url);
    s.timeout = Duration::from_secs(1);
    s
}

fn connector(fake: &MastodonFake) -> Mastodon {
    Mastodon::new(
        settings(fake),
        media(),
        NetPolicy {
            allow_loopback: true,
        },
    )
    .with_media_polling(Duration::from_millis(10), Duration::from_millis(40))
}

/// A video post whose progress starts from `saved` and is recorded in `sink`.
fn video_request(
    account: &ConnectedAccount,
    text: Option<&str>,
    saved: Value,
    sink: &Arc<Saves>,
) -> PublishRequest {
    let mut req = request(account, text, &[]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some(VIDEO.into());
    req.progress = Progress::new(saved, sink.clone());
    req
}

fn auth_request(params: Value) -> AuthorizationRequest {
    AuthorizationRequest {
        state: "state-123".into(),
        redirect_uri: REDIRECT.into(),
        code_challenge: pkce_challenge(VERIFIER),
        params,
    }
}

/// Follows the authorization URL as the approving user; answers the redirect's query.
async fn approve(url: &str) -> HashMap<String, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 302, "the fake approves: {:?}", r.text().await);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn connect(fake: &MastodonFake, m: &Mastodon) -> ConnectedAccount {
    let start = m
        .authorize(&auth_request(json!({ "instance": fake.url })))
        .await
        .unwrap();
    let back = approve(&start.url).await;
    m.exchange(&CodeExchange {
        code: back["code"].clone(),
        redirect_uri: REDIRECT.into(),
        code_verifier: VERIFIER.into(),
        pending: start.pending,
    })
    .await
    .unwrap()
}

fn credentials(account: &ConnectedAccount) -> AccountCredentials {
    AccountCredentials {
        account_id: account.account_id.clone(),
        username: account.username.clone(),
        access_token: Some(account.tokens.access_token.clone()),
        refresh_token: account.tokens.refresh_token.clone(),
        meta: account.meta.clone(),
    }
}

fn request(account: &ConnectedAccount, text: Option<&str>, images: &[&str]) -> PublishRequest {
    PublishRequest {
        marker: format!("soku-{}", rand_suffix()),
        user_id: "usr_1".into(),
        submission_id: "sub_1".into(),
        target_id: "tgt_1".into(),
        platform: Platform::Mastodon,
        account: credentials(account),
        content: PostContent {
            text: text.map(str::to_owned),
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
        not_before: Utc::now() - chrono::Duration::seconds(1),
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connected account on a fresh fake.
async fn setup() -> (MastodonFake, Mastodon, ConnectedAccount) {
    let fake = MastodonFake::start().await;
    let m = connector(&fake);
    let account = connect(&fake, &m).await;
    (fake, m, account)
}

// ---- connecting ---------------------------------------------------------------------------

#[tokio::test]
async fn oauth_round_trip_registers_the_app_once_and_names_the_account() {
    let fake = MastodonFake::start().await;
    let m = connector(&fake);
    assert_eq!(m.connect_method(), ConnectMethod::OAuth);

    let start = m
        .authorize(&auth_request(json!({ "instance": fake.url })))
        .await
        .unwrap();
    let apps = fake.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, CLIENT_NAME);
    assert_eq!(apps[0].redirect_uris, vec![REDIRECT.to_owned()]);
    assert_eq!(apps[0].scopes.join(" "), SCOPES);

    let url = reqwest::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth/authorize");
    assert!(start.url.starts_with(&fake.url));
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], apps[0].client_id);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["state"], "state-123");
    assert_eq!(q["code_challenge"], pkce_challenge(VERIFIER));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(start.pending["instance"], fake.url.as_str());
    assert_eq!(start.pending["client_id"], apps[0].client_id.as_str());
    assert_eq!(
        start.pending["client_secret"],
        apps[0].client_secret.as_str()
    );
    assert!(
        !format!("{start:?}").contains(&apps[0].client_secret),
        "no secret in Debug"
    );

    // A second authorization on the same instance reuses the registration.
    m.authorize(&auth_request(
        json!({ "instance": format!("{}/", fake.url) }),
    ))
    .await
    .unwrap();
    assert_eq!(fake.apps().len(), 1);

    let back = approve(&start.url).await;
    assert_eq!(back["state"], "state-123");
    let account = m
        .exchange(&CodeExchange {
            code: back["code"].clone(),
            redirect_uri: REDIRECT.into(),
            code_verifier: VERIFIER.into(),
            pending: start.pending.clone(),
        })
        .await
        .unwrap();
    let alice = fake.account_id("alice").unwrap();
    assert_eq!(account.account_id, format!("{alice}@{}", fake.host()));
    assert_eq!(account.username.as_deref(), Some("alice"));
    assert_eq!(account.display_name.as_deref(), Some("Alice"));
    assert_eq!(account.meta["instance"], fake.url.as_str());
    assert_eq!(account.meta["account_id"], alice.as_str());
    assert_eq!(account.meta["url"], format!("{}/@alice", fake.url).as_str());
    assert_eq!(account.tokens.refresh_token, None);
    assert_eq!(account.tokens.expires_at, None);
    let issued = fake.tokens_issued();
    assert!(
        issued
            .iter()
            .any(|t| t.token == account.tokens.access_token && t.account_id == alice)
    );
    assert!(!format!("{account:?}").contains(&account.tokens.access_token));
}

#[tokio::test]
async fn a_replayed_code_or_a_wrong_verifier_is_refused() {
    let fake = MastodonFake::start().await;
    let m = connector(&fake);
    let start = m
        .authorize(&auth_request(json!({ "instance": fake.url })))
        .await
        .unwrap();
    let code = approve(&start.url).await["code"].clone();
    let exchange = |code: &str, verifier: &str| CodeExchange {
        code: code.to_owned(),
        redirect_uri: REDIRECT.into(),
        code_verifier: verifier.to_owned(),
        pending: start.pending.clone(),
    };
    let wrong = m
        .exchange(&exchange(
            &code,
            "another-verifier-of-enough-length-0123456789-xyz",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ConnectErrorKind::Rejected);
    assert!(wrong.message.contains("invalid_grant"), "{}", wrong.message);

    m.exchange(&exchange(&code, VERIFIER)).await.unwrap();
    let replay = m.exchange(&exchange(&code, VERIFIER)).await.unwrap_err();
    assert_eq!(replay.kind, ConnectErrorKind::Rejected);
    assert!(replay.message.contains("invalid_grant"));

    // A redirect URI other than the one authorized is refused too.
    let code = approve(&start.url).await["code"].clone();
    let mut other = exchange(&code, VERIFIER);
    other.redirect_uri = "https://soku.example/elsewhere".into();
    assert_eq!(
        m.exchange(&other).await.unwrap_err().kind,
        ConnectErrorKind::Rejected
    );
    // Bad client credentials: 401 invalid_client.
    let mut bad = exchange(&code, VERIFIER);
    bad.pending["client_secret"] = json!("not-the-secret");
    let e = m.exchange(&bad).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.message.contains("invalid_client"), "{}", e.message);
    assert!(!e.message.contains("not-the-secret"));
}

#[tokio::test]
async fn the_authorization_page_refuses_bad_requests() {
    let fake = MastodonFake::start().await;
    let m = connector(&fake);
    let start = m
        .authorize(&auth_request(json!({ "instance": fake.url })))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let with = |name: &str, value: Option<&str>| {
        let mut url = reqwest::Url::parse(&start.url).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| k != name)
            .collect();
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
        drop(q);
        url
    };
    // Unknown client, unregistered redirect URI: an error page, no redirect.
    let r = client
        .get(with("client_id", Some("nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = client
        .get(with("redirect_uri", Some("https://evil.example/cb")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Wrong response type, missing PKCE, a scope the app did not register: redirected errors.
    for (url, expected) in [
        (
            with("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (with("code_challenge", None), "invalid_request"),
        (
            with("code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (
            with("scope", Some("read write admin:write")),
            "invalid_scope",
        ),
    ] {
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()["location"].to_str().unwrap();
        let q: HashMap<String, String> = reqwest::Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        assert_eq!(q["error"], expected, "{location}");
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn instances_are_validated_and_the_default_is_used_when_none_is_named() {
    let fake = MastodonFake::start().await;
    let m = connector(&fake);
    for bad in [
        "ftp://mastodon.social",
        "https://mastodon.social/@alice",
        "https://mastodon.social/?x=1",
        "http://[::1",
    ] {
        let e = m
            .authorize(&auth_request(json!({ "instance": bad })))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ConnectErrorKind::Invalid, "{bad}");
    }
    // The server's own network is off limits without the test policy.
    let guarded = Mastodon::new(settings(&fake), media(), NetPolicy::default());
    let e = guarded
        .authorize(&auth_request(json!({ "instance": fake.url })))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Invalid);
    assert!(fake.apps().is_empty(), "nothing was sent");

    // No instance named: settings.api_url is the default instance.
    let start = m.authorize(&auth_request(json!({}))).await.unwrap();
    assert!(
        start
            .url
            .starts_with(&format!("{}/oauth/authorize?", fake.url))
    );
}

#[tokio::test]
async fn refresh_hands_back_a_working_token_and_rejects_a_revoked_one() {
    let (fake, m, account) = setup().await;
    let creds = credentials(&account);
    let tokens = m.refresh(&creds).await.unwrap();
    assert_eq!(tokens.access_token, account.tokens.access_token);
    assert_eq!(
        tokens.refresh_token, None,
        "none reissued: the store keeps its own"
    );
    assert_eq!(tokens.expires_at, None);

    fake.faults.reply(
        "GET",
        "/api/v1/accounts/verify_credentials",
        503,
        &[],
        json!({ "error": "Service unavailable" }),
    );
    assert_eq!(
        m.refresh(&creds).await.unwrap_err().kind,
        ConnectErrorKind::Unavailable
    );

    fake.revoke_token(&account.tokens.access_token);
    let e = m.refresh(&creds).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(!e.message.contains(&account.tokens.access_token));
}

// ---- publishing ---------------------------------------------------------------------------

#[tokio::test]
async fn a_text_post_is_published_with_its_idempotency_key() {
    let (fake, m, account) = setup().await;
    let req = request(
        &account,
        Some("Hello from Soku & friends\n\nsecond paragraph"),
        &[],
    );
    let post = m.publish(&req).await.unwrap();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let made = &posts[0];
    assert_eq!(made.id, post.id);
    assert_eq!(made.text, "Hello from Soku & friends\n\nsecond paragraph");
    assert_eq!(made.visibility, "public");
    assert_eq!(made.idempotency_key.as_deref(), Some(req.marker.as_str()));
    assert_eq!(made.application.as_deref(), Some(CLIENT_NAME));
    assert_eq!(
        post.url.as_deref(),
        Some(format!("{}/@alice/{}", fake.url, post.id).as_str())
    );
    assert_eq!(fake.upload_calls(), 0);

    // The same key again (a retry) answers the same status; nothing new is made.
    let again = m.publish(&req).await.unwrap();
    assert_eq!(again.id, post.id);
    assert_eq!(fake.posts().len(), 1);
    assert_eq!(fake.create_calls(), 2);
}

#[tokio::test]
async fn a_single_image_is_uploaded_processed_and_attached() {
    let (fake, m, account) = setup().await;
    let req = request(
        &account,
        Some("one picture"),
        &["https://img.example/a.png"],
    );
    let post = m.publish(&req).await.unwrap();
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, PNG);
    assert_eq!(uploads[0].content_type, "image/png");
    assert!(uploads[0].file_name.as_deref().unwrap().ends_with(".png"));
    // The first upload answered 202: it was polled (one 206, then 200) before posting.
    assert_eq!(fake.poll_calls(), 2);
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].media_ids, vec![uploads[0].id.clone()]);
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        fake.uploads()[0].status_id.as_deref(),
        Some(post.id.as_str())
    );
}

#[tokio::test]
async fn several_images_reach_the_upload_and_the_post_in_order() {
    let (fake, m, account) = setup().await;
    let images = [
        "https://img.example/a.png",
        "https://img.example/b.jpg",
        "https://img.example/c.gif",
    ];
    let req = request(&account, None, &images);
    m.publish(&req).await.unwrap();
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 3);
    assert_eq!(
        uploads.iter().map(|u| u.bytes.clone()).collect::<Vec<_>>(),
        vec![PNG.to_vec(), JPEG.to_vec(), GIF.to_vec()]
    );
    assert_eq!(
        uploads
            .iter()
            .map(|u| u.content_type.as_str())
            .collect::<Vec<_>>(),
        vec!["image/png", "image/jpeg", "image/gif"]
    );
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].text, "", "no text: media only");
    assert_eq!(
        posts[0].media_ids,
        uploads.iter().map(|u| u.id.clone()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_video_with_images_and_too_many_images_are_refused_before_any_request() {
    let (fake, m, account) = setup().await;
    let mut req = request(&account, Some("a clip"), &["https://img.example/a.png"]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some(VIDEO.into());
    let e = m.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "unsupported_media")
    );
    let five = ["https://img.example/a.png"; 5];
    let e = m
        .publish(&request(&account, Some("five"), &five))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert_eq!(fake.upload_calls() + fake.create_calls(), 0);
}

#[tokio::test]
async fn rate_limiting_is_retryable_after_the_reset_time() {
    let (fake, m, account) = setup().await;
    fake.rate_limit_next("POST", "/api/v1/statuses", Duration::from_secs(30));
    let e = m
        .publish(&request(&account, Some("limited"), &[]))
        .await
        .unwrap_err();
    let FailureClass::Retryable {
        retry_after: Some(after),
    } = e.class
    else {
        panic!("expected a retryable error with retry_after: {e:?}");
    };
    assert!(
        after > Duration::from_secs(27) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    assert_eq!(e.code, "rate_limited");
    assert!(fake.posts().is_empty());

    // On an upload too.
    fake.rate_limit_next("POST", "/api/v2/media", Duration::from_secs(10));
    let e = m
        .publish(&request(&account, None, &["https://img.example/a.png"]))
        .await
        .unwrap_err();
    assert!(matches!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(_)
        }
    ));
}

#[tokio::test]
async fn a_server_error_on_create_is_ambiguous() {
    let (fake, m, account) = setup().await;
    fake.faults.reply(
        "POST",
        "/api/v1/statuses",
        503,
        &[],
        json!({ "error": "Service Unavailable" }),
    );
    let e = m
        .publish(&request(&account, Some("maybe"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert!(e.platform_error.unwrap().contains("Service Unavailable"));

    // A 5xx on an upload is only retryable: nothing was posted.
    fake.faults.reply(
        "POST",
        "/api/v2/media",
        500,
        &[],
        json!({ "error": "Error processing thumbnail for uploaded media" }),
    );
    let e = m
        .publish(&request(&account, None, &["https://img.example/a.png"]))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }));
}

#[tokio::test]
async fn a_timeout_after_sending_is_reconciled_to_the_post_it_made() {
    let (fake, m, account) = setup().await;
    // Other statuses around it: an older one with the same text, a newer one with other text.
    let alice = fake.account_id("alice").unwrap();
    fake.seed_status(&alice, "Launch day!", Duration::from_secs(3600));
    let mut req = request(
        &account,
        Some("Launch day!"),
        &["https://img.example/b.jpg"],
    );
    req.not_before = Utc::now() - chrono::Duration::seconds(5);

    fake.faults.push(
        "POST",
        "/api/v1/statuses",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let e = m.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(e.code, "timeout");
    fake.seed_status(&alice, "something else", Duration::ZERO);

    let made = fake
        .posts()
        .into_iter()
        .find(|p| p.idempotency_key.as_deref() == Some(req.marker.as_str()))
        .expect("the create took effect");
    match m.find_existing(&req).await.unwrap() {
        Existing::Found(post) => {
            assert_eq!(post.id, made.id);
            assert_eq!(
                post.url.as_deref(),
                Some(format!("{}/@alice/{}", fake.url, made.id).as_str())
            );
        }
        other => panic!("expected Found, got {other:?}"),
    }
    let ours = |posts: Vec<soku_fakes::mastodon::Post>| {
        posts
            .into_iter()
            .filter(|p| p.text == "Launch day!" && !p.media_ids.is_empty())
            .count()
    };
    assert_eq!(ours(fake.posts()), 1, "no second post exists");

    // Even a blind retry within the hour is answered with the same status.
    let again = m.publish(&req).await.unwrap();
    assert_eq!(again.id, made.id);
    assert_eq!(ours(fake.posts()), 1);
}

#[tokio::test]
async fn reconciliation_says_not_found_when_nothing_was_made() {
    let (fake, m, account) = setup().await;
    let alice = fake.account_id("alice").unwrap();
    // The same text long before this target's window, and other posts inside it.
    fake.seed_status(&alice, "Weekly update", Duration::from_secs(2 * 3600));
    fake.seed_status(&alice, "Weekly update, part two", Duration::ZERO);
    let mut req = request(&account, Some("Weekly update"), &[]);
    req.not_before = Utc::now() - chrono::Duration::seconds(30);

    fake.faults.reply(
        "POST",
        "/api/v1/statuses",
        502,
        &[],
        json!({ "error": "Bad gateway" }),
    );
    assert_eq!(
        m.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    assert_eq!(m.find_existing(&req).await.unwrap(), Existing::NotFound);

    // Same text but a different number of images is not this post either.
    let mut with_image = request(
        &account,
        Some("Weekly update, part two"),
        &["https://img.example/a.png"],
    );
    with_image.not_before = req.not_before;
    assert_eq!(
        m.find_existing(&with_image).await.unwrap(),
        Existing::NotFound
    );

    // A failed lookup is an error, never a guess.
    fake.faults.reply(
        "GET",
        &format!("/api/v1/accounts/{alice}/statuses"),
        503,
        &[],
        json!({ "error": "Service unavailable" }),
    );
    assert!(matches!(
        m.find_existing(&req).await.unwrap_err().class,
        FailureClass::Retryable { .. }
    ));
}

#[tokio::test]
async fn reconciliation_reads_the_source_when_the_html_differs_from_the_text() {
    let (fake, m, account) = setup().await;
    // A remote mention renders as "@bob": the HTML alone cannot match it.
    let text = "Thanks @bob@other.example for https://example.com/a/very/long/link/to/a/page #rust";
    let req = request(&account, Some(text), &[]);
    fake.faults.push(
        "POST",
        "/api/v1/statuses",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    assert_eq!(
        m.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    let made = fake.posts().pop().unwrap();
    assert_eq!(
        m.find_existing(&req).await.unwrap(),
        Existing::Found(soku_core::connector::PublishedPost {
            id: made.id.clone(),
            url: Some(format!("{}/@alice/{}", fake.url, made.id)),
        })
    );
    // HTML-only text (links, hashtags, entities) matches without the source.
    let plain = request(
        &account,
        Some("Fish & chips <3 https://example.com/x #food"),
        &[],
    );
    let post = m.publish(&plain).await.unwrap();
    assert_eq!(
        m.find_existing(&plain).await.unwrap(),
        Existing::Found(post)
    );
}

#[tokio::test]
async fn a_revoked_token_is_token_invalid() {
    let (fake, m, account) = setup().await;
    fake.revoke_token(&account.tokens.access_token);
    let e = m
        .publish(&request(&account, Some("after revocation"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(!e.message.contains(&account.tokens.access_token));
    // The same on an upload.
    let e = m
        .publish(&request(&account, None, &["https://img.example/a.png"]))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn a_token_without_write_statuses_cannot_post() {
    let (fake, m, account) = setup().await;
    let alice = fake.account_id("alice").unwrap();
    let mut req = request(&account, Some("not allowed"), &[]);
    req.account.access_token = Some(fake.issue_token(&alice, "read write:media"));
    let e = m.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert!(
        e.message.contains("outside the authorized scopes"),
        "{}",
        e.message
    );
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn mastodons_validation_errors_are_permanent_with_its_message() {
    let (fake, m, account) = setup().await;
    let long = "x".repeat(501);
    let e = m
        .publish(&request(&account, Some(&long), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "rejected")
    );
    assert!(
        e.message.contains("character limit of 500"),
        "{}",
        e.message
    );
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn media_still_processing_past_the_deadline_is_retryable() {
    let fake = MastodonFake::start().await;
    let m = connector(&fake).with_media_deadline(Duration::from_millis(400));
    let account = connect(&fake, &m).await;
    fake.script_processing(&[Some(1000)]);
    let e = m
        .publish(&request(
            &account,
            Some("slow"),
            &["https://img.example/a.png"],
        ))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(e.code, "media_processing");
    assert!(fake.posts().is_empty());
}

/// The fake is no pushover: it refuses what Mastodon refuses.
#[tokio::test]
async fn the_fake_refuses_malformed_requests() {
    let (fake, _m, account) = setup().await;
    let token = account.tokens.access_token.clone();
    let client = reqwest::Client::new();
    let post_status = |body: Value| {
        client
            .post(format!("{}/api/v1/statuses", fake.url))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let err = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (
            status,
            r.json::<Value>().await.unwrap()["error"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };

    // Neither text nor media.
    let (code, msg) = err(post_status(json!({ "visibility": "public" }))
        .await
        .unwrap())
    .await;
    assert_eq!(
        (code, msg.as_str()),
        (422, "Validation failed: Text can't be blank")
    );
    // Wrong types.
    let (code, _) = err(post_status(json!({ "status": "x", "media_ids": "1" }))
        .await
        .unwrap())
    .await;
    assert_eq!(code, 400);
    let (code, _) = err(
        post_status(json!({ "status": "x", "visibility": "everyone" }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 422);
    // Media that is not the caller's.
    let (code, msg) = err(post_status(json!({ "status": "x", "media_ids": ["42"] }))
        .await
        .unwrap())
    .await;
    assert_eq!(code, 422);
    assert!(msg.contains("not found"), "{msg}");
    // No token, an unknown token.
    let r = client
        .post(format!("{}/api/v1/statuses", fake.url))
        .json(&json!({ "status": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        err(r).await,
        (401, "The access token is invalid".to_owned())
    );

    // Uploads: no file, a file that is not an image, a type the bytes do not match.
    let upload = |form: reqwest::multipart::Form| {
        client
            .post(format!("{}/api/v2/media", fake.url))
            .bearer_auth(&token)
            .multipart(form)
            .send()
    };
    let form = reqwest::multipart::Form::new().text("description", "alt text");
    let (code, msg) = err(upload(form).await.unwrap()).await;
    assert_eq!(
        (code, msg.as_str()),
        (422, "Validation failed: File can't be blank")
    );
    let part = reqwest::multipart::Part::bytes(b"hello".to_vec())
        .file_name("a.txt")
        .mime_str("text/plain")
        .unwrap();
    let (code, _) = err(upload(reqwest::multipart::Form::new().part("file", part))
        .await
        .unwrap())
    .await;
    assert_eq!(code, 422);
    let part = reqwest::multipart::Part::bytes(JPEG.to_vec())
        .file_name("a.png")
        .mime_str("image/png")
        .unwrap();
    let (code, _) = err(upload(reqwest::multipart::Form::new().part("file", part))
        .await
        .unwrap())
    .await;
    assert_eq!(code, 422);

    // Unprocessed media cannot be attached (the first upload is processed in the background).
    let fresh = MastodonFake::start().await;
    let alice = fresh.account_id("alice").unwrap();
    let t = fresh.issue_token(&alice, "read write");
    let part = reqwest::multipart::Part::bytes(PNG.to_vec())
        .file_name("a.png")
        .mime_str("image/png")
        .unwrap();
    let r = client
        .post(format!("{}/api/v2/media", fresh.url))
        .bearer_auth(&t)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let media: Value = r.json().await.unwrap();
    assert!(media["url"].is_null());
    let r = client
        .post(format!("{}/api/v1/statuses", fresh.url))
        .bearer_auth(&t)
        .json(&json!({ "status": "too soon", "media_ids": [media["id"]] }))
        .send()
        .await
        .unwrap();
    let (code, msg) = err(r).await;
    assert_eq!(code, 422);
    assert!(msg.contains("not finished processing"));
    // Another account cannot poll it.
    let bob = fresh.add_account("bob", "Bob");
    let r = client
        .get(format!(
            "{}/api/v1/media/{}",
            fresh.url,
            media["id"].as_str().unwrap()
        ))
        .bearer_auth(fresh.issue_token(&bob, "write:media"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The token endpoint wants a form with every parameter.
    let r = client
        .post(format!("{}/oauth/token", fake.url))
        .json(&json!({ "grant_type": "authorization_code" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // App registration wants a name and absolute redirect URIs.
    let r = client
        .post(format!("{}/api/v1/apps", fake.url))
        .json(&json!({ "client_name": "x", "redirect_uris": "not a uri" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    // Reading the account's statuses with a token that lacks read:statuses.
    let r = client
        .get(format!("{}/api/v1/accounts/{alice}/statuses", fresh.url))
        .bearer_auth(fresh.issue_token(&alice, "write:statuses"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

// ---- video ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_video_is_streamed_up_processed_and_attached() {
    let (fake, m, account) = setup().await;
    let sink = Arc::new(Saves::default());
    let req = video_request(&account, Some("a clip"), Value::Null, &sink);
    let post = m.publish(&req).await.unwrap();

    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, mp4(), "the file arrives whole");
    assert_eq!(uploads[0].content_type, "video/mp4");
    assert_eq!(uploads[0].file_name.as_deref(), Some("video.mp4"));
    // 202, then two 206 before the 200.
    assert_eq!(fake.poll_calls(), 3);
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].text, "a clip");
    assert_eq!(posts[0].media_ids, vec![uploads[0].id.clone()]);
    assert_eq!(
        sink.all(),
        vec![json!({ "video_url": VIDEO, "media_id": uploads[0].id })],
        "the attachment is saved once uploaded"
    );
}

#[tokio::test]
async fn a_video_alone_is_a_post() {
    let (fake, m, account) = setup().await;
    let sink = Arc::new(Saves::default());
    m.publish(&video_request(&account, None, Value::Null, &sink))
        .await
        .unwrap();
    assert_eq!(fake.posts()[0].text, "");
    assert_eq!(fake.posts()[0].media_ids.len(), 1);
}

#[tokio::test]
async fn slow_video_processing_is_waited_for() {
    let (fake, m, account) = setup().await;
    fake.set_video_processing_polls(12);
    let sink = Arc::new(Saves::default());
    m.publish(&video_request(&account, Some("slow"), Value::Null, &sink))
        .await
        .unwrap();
    assert_eq!(fake.poll_calls(), 13);
    assert_eq!(fake.video_uploads(), 1);
    assert_eq!(fake.posts().len(), 1);
}

#[tokio::test]
async fn a_video_mastodon_cannot_process_is_permanent_with_its_message() {
    let (fake, m, account) = setup().await;
    fake.fail_video_processing(true, None);
    let sink = Arc::new(Saves::default());
    let e = m
        .publish(&video_request(&account, Some("broken"), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_processing_failed")
    );
    assert_eq!(e.platform_error.as_deref(), Some(PROCESSING_ERROR));
    assert!(fake.posts().is_empty());
    assert_eq!(fake.create_calls(), 0);
}

#[tokio::test]
async fn a_second_attempt_uses_the_saved_upload_and_does_not_upload_again() {
    let (fake, m, account) = setup().await;
    // The first attempt uploads the video, then the status call fails.
    fake.faults.reply(
        "POST",
        "/api/v1/statuses",
        503,
        &[],
        json!({ "error": "Service Unavailable" }),
    );
    let sink = Arc::new(Saves::default());
    let first = video_request(&account, Some("again"), Value::Null, &sink);
    let e = m.publish(&first).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(fake.upload_calls(), 1);
    let saved = sink.all();
    assert_eq!(saved.len(), 1);

    // The next attempt (another process, after a restart) starts from what was saved.
    let sink2 = Arc::new(Saves::default());
    let mut second = video_request(&account, Some("again"), saved[0].clone(), &sink2);
    second.marker = first.marker.clone();
    let post = m.publish(&second).await.unwrap();
    assert_eq!(fake.upload_calls(), 1, "no second upload");
    assert_eq!(fake.video_uploads(), 1);
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(
        posts[0].media_ids,
        vec![saved[0]["media_id"].as_str().unwrap().to_owned()]
    );
    assert!(sink2.all().is_empty(), "nothing new to save");
}

#[tokio::test]
async fn a_processing_wait_that_runs_out_is_retryable_and_the_next_attempt_resumes_it() {
    let fake = MastodonFake::start().await;
    let m = connector(&fake).with_media_deadline(Duration::from_millis(300));
    let account = connect(&fake, &m).await;
    fake.set_video_processing_polls(60);
    let sink = Arc::new(Saves::default());
    let first = video_request(&account, Some("long one"), Value::Null, &sink);
    let e = m.publish(&first).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(e.code, "media_processing");
    assert!(fake.posts().is_empty());
    let saved = sink.all();
    assert_eq!(saved.len(), 1);
    let polled = fake.poll_calls();
    assert!(polled > 1 && polled < 60, "{polled}");

    // A later attempt with time enough resumes polling the same attachment.
    let patient = connector(&fake);
    let sink2 = Arc::new(Saves::default());
    let mut second = video_request(&account, Some("long one"), saved[0].clone(), &sink2);
    second.marker = first.marker.clone();
    patient.publish(&second).await.unwrap();
    assert_eq!(fake.upload_calls(), 1, "no second upload");
    assert_eq!(fake.poll_calls(), 61);
    assert_eq!(
        fake.posts()[0].media_ids,
        vec![saved[0]["media_id"].as_str().unwrap().to_owned()]
    );
    assert!(sink2.all().is_empty());
}

#[tokio::test]
async fn a_saved_upload_mastodon_no_longer_has_is_uploaded_again() {
    let (fake, m, account) = setup().await;
    fake.set_video_processing_polls(1000);
    let quick = connector(&fake).with_media_deadline(Duration::from_millis(100));
    let sink = Arc::new(Saves::default());
    let first = video_request(&account, Some("gone"), Value::Null, &sink);
    quick.publish(&first).await.unwrap_err();
    let saved = sink.all();
    let old_id = saved[0]["media_id"].as_str().unwrap().to_owned();
    fake.delete_upload(&old_id);
    fake.set_video_processing_polls(1);

    let sink2 = Arc::new(Saves::default());
    let second = video_request(&account, Some("gone"), saved[0].clone(), &sink2);
    m.publish(&second).await.unwrap();
    assert_eq!(fake.upload_calls(), 2);
    let new_id = fake.posts()[0].media_ids[0].clone();
    assert_ne!(new_id, old_id);
    assert_eq!(
        sink2.all(),
        vec![json!({ "video_url": VIDEO, "media_id": new_id })]
    );
}

#[tokio::test]
async fn progress_saved_for_another_video_is_not_used() {
    let (fake, m, account) = setup().await;
    let sink = Arc::new(Saves::default());
    let other = json!({ "video_url": "https://img.example/other.mp4", "media_id": "1" });
    m.publish(&video_request(&account, Some("mine"), other, &sink))
        .await
        .unwrap();
    assert_eq!(fake.upload_calls(), 1);
    assert_eq!(fake.poll_calls(), 3, "the other attachment is never polled");
}

#[tokio::test]
async fn a_video_post_is_reconciled_with_its_one_attachment() {
    let (fake, m, account) = setup().await;
    let sink = Arc::new(Saves::default());
    let req = video_request(&account, Some("find me"), Value::Null, &sink);
    let post = m.publish(&req).await.unwrap();
    assert_eq!(fake.posts().len(), 1);
    assert_eq!(m.find_existing(&req).await.unwrap(), Existing::Found(post));
}

/// The fake refuses a video Mastodon would refuse, and hides attached media as Mastodon does.
#[tokio::test]
async fn the_fake_checks_videos_and_hides_attached_media() {
    let (fake, m, account) = setup().await;
    let token = account.tokens.access_token.clone();
    let client = reqwest::Client::new();
    let upload = |bytes: Vec<u8>, mime: &str| {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name("v.mp4")
            .mime_str(mime)
            .unwrap();
        client
            .post(format!("{}/api/v2/media", fake.url))
            .bearer_auth(&token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
    };
    // Not the type it claims.
    let r = upload(PNG.to_vec(), "video/mp4").await.unwrap();
    assert_eq!(r.status(), 422);
    // A real MP4 is accepted and processed in the background.
    let r = upload(mp4(), "video/mp4").await.unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "video");
    assert!(body["url"].is_null());

    // Once attached, an attachment is no longer found by GET /api/v1/media/:id.
    let sink = Arc::new(Saves::default());
    m.publish(&video_request(&account, Some("x"), Value::Null, &sink))
        .await
        .unwrap();
    let id = fake.posts()[0].media_ids[0].clone();
    let r = client
        .get(format!("{}/api/v1/media/{id}", fake.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
