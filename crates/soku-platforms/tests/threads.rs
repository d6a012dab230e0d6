//! The Threads connector against the loopback Threads fake.

mod support;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    Connector, Existing, FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent};
use soku_fakes::Fault;
use soku_fakes::media_files;
use soku_fakes::threads::{
    self as fake, REDIRECT_URI, SCOPE_BASIC, SCOPE_PUBLISH, ThreadsFake, TokenKind, USER_ID,
};
use soku_platforms::PlatformSettings;
use soku_platforms::media::{Media, MediaLimits, MediaSource};
use soku_platforms::threads::ThreadsConnector;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::Saves;

/// Threads fetches images itself: the connector must never ask the media source.
#[derive(Default)]
struct CountingSource {
    calls: AtomicUsize,
}

#[async_trait]
impl MediaSource for CountingSource {
    async fn fetch(
        &self,
        _url: &str,
        _limits: &MediaLimits,
    ) -> Result<Media, soku_core::connector::PublishError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Media::new(
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "image/png",
        ))
    }
}

struct Setup {
    fake: ThreadsFake,
    connector: ThreadsConnector,
    media: Arc<CountingSource>,
}

async fn setup() -> Setup {
    let fake = ThreadsFake::start().await;
    let mut settings = PlatformSettings::at(&fake.url);
    settings.timeout = Duration::from_secs(1);
    let media = Arc::new(CountingSource::default());
    let connector = ThreadsConnector::new(settings, media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_secs(3));
    Setup {
        fake,
        connector,
        media,
    }
}

fn request(token: &str, text: Option<&str>, images: &[&str]) -> PublishRequest {
    PublishRequest {
        marker: "sk-marker-1".into(),
        user_id: "user-1".into(),
        submission_id: "sub-1".into(),
        target_id: "tgt-1".into(),
        platform: Platform::Threads,
        account: AccountCredentials {
            account_id: USER_ID.into(),
            username: Some(fake::USERNAME.into()),
            access_token: Some(token.into()),
            refresh_token: None,
            meta: json!({ "threads_user_id": USER_ID }),
        },
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
        not_before: Utc::now() - chrono::Duration::seconds(5),
    }
}

fn publisher_token(fake: &ThreadsFake) -> String {
    fake.grant_token(&[SCOPE_BASIC, SCOPE_PUBLISH])
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn query(url: &url::Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The connector's authorization URL, approved by the fake: the code from the redirect.
async fn approve(s: &Setup, state: &str) -> String {
    let start = s
        .connector
        .authorize(&AuthorizationRequest {
            state: state.into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: "unused-by-threads".into(),
            params: json!({}),
        })
        .await
        .unwrap();
    let response = no_redirects().get(&start.url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let location = url::Url::parse(
        response
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    assert_eq!(location.fragment(), Some("_"));
    let q = query(&location);
    assert_eq!(q["state"], state);
    q["code"].clone()
}

fn exchange_of(code: &str) -> CodeExchange {
    CodeExchange {
        code: code.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: "unused-by-threads".into(),
        pending: json!({}),
    }
}

#[tokio::test]
async fn oauth_round_trip_gives_a_long_lived_token_and_the_profile() {
    let s = setup().await;
    assert_eq!(s.connector.connect_method(), ConnectMethod::OAuth);
    assert_eq!(
        s.connector.refresh_ahead(),
        Duration::from_secs(7 * 24 * 3600)
    );

    let start = s
        .connector
        .authorize(&AuthorizationRequest {
            state: "state-123".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: "unused".into(),
            params: json!({}),
        })
        .await
        .unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth/authorize");
    let q = query(&url);
    assert_eq!(q["client_id"], fake::CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], "threads_basic,threads_content_publish");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["state"], "state-123");
    assert!(!q.contains_key("code_challenge"), "Threads takes no PKCE");

    let code = approve(&s, "state-abc").await;
    let account = s.connector.exchange(&exchange_of(&code)).await.unwrap();
    assert_eq!(account.account_id, USER_ID);
    assert_eq!(account.username.as_deref(), Some(fake::USERNAME));
    assert_eq!(account.display_name.as_deref(), Some(fake::NAME));
    assert_eq!(account.meta["threads_user_id"], USER_ID);

    // The stored token is the long-lived one, for 60 days, with no refresh token.
    let tokens = s.fake.tokens();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].kind, TokenKind::Short);
    assert_eq!(tokens[1].kind, TokenKind::Long);
    assert_eq!(account.tokens.access_token, tokens[1].token);
    assert_eq!(account.tokens.refresh_token, None);
    let left = account.tokens.expires_at.unwrap() - Utc::now();
    assert!(left > chrono::Duration::days(59) && left <= chrono::Duration::days(60));
    assert_eq!(s.fake.exchange_calls(), 1);
    // Debug output holds no token.
    assert!(!format!("{account:?}").contains(&account.tokens.access_token));

    // The long-lived token publishes.
    let post = s
        .connector
        .publish(&request(&account.tokens.access_token, Some("hello"), &[]))
        .await
        .unwrap();
    assert_eq!(s.fake.posts()[0].id, post.id);
}

#[tokio::test]
async fn a_replayed_code_and_a_wrong_redirect_uri_are_refused() {
    let s = setup().await;
    let code = approve(&s, "st").await;
    s.connector.exchange(&exchange_of(&code)).await.unwrap();
    let again = s.connector.exchange(&exchange_of(&code)).await.unwrap_err();
    assert_eq!(again.kind, ConnectErrorKind::Rejected);
    assert!(
        again
            .platform_error
            .as_deref()
            .unwrap()
            .contains("has been used"),
        "{again:?}"
    );

    let code = approve(&s, "st2").await;
    let mut wrong = exchange_of(&code);
    wrong.redirect_uri = "https://elsewhere.test/cb".into();
    let e = s.connector.exchange(&wrong).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(
        e.platform_error
            .as_deref()
            .unwrap()
            .contains("redirect_uri")
    );
    // Only the first exchange got tokens.
    assert_eq!(s.fake.exchange_calls(), 1);
}

#[tokio::test]
async fn the_authorization_window_checks_its_parameters() {
    let s = setup().await;
    let client = no_redirects();
    let page = format!("{}/oauth/authorize", s.fake.url);
    let good = [
        ("client_id", fake::CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "threads_basic,threads_content_publish"),
        ("response_type", "code"),
        ("state", "s"),
    ];
    let with = |key: &str, value: &str| {
        good.iter()
            .map(|(k, v)| (k.to_string(), if *k == key { value } else { v }.to_string()))
            .collect::<Vec<_>>()
    };
    let ok = client.get(&page).query(&good).send().await.unwrap();
    assert_eq!(ok.status(), 302);
    for (key, value) in [
        ("client_id", "someone-else"),
        ("redirect_uri", "https://evil.test/cb"),
        ("response_type", "token"),
        ("scope", "threads_content_publish"),
        ("scope", "threads_basic,everything"),
    ] {
        let r = client
            .get(&page)
            .query(&with(key, value))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{key}={value}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["code"].is_i64(), "{body}");
    }
}

#[tokio::test]
async fn refresh_rotates_the_long_lived_token_and_a_revoked_one_is_rejected() {
    let s = setup().await;
    let old = publisher_token(&s.fake);
    let account = request(&old, None, &[]).account;

    // Younger than 24 hours: the documentation says it cannot be refreshed yet.
    let young = s.connector.refresh(&account).await.unwrap_err();
    assert_eq!(young.kind, ConnectErrorKind::Rejected);

    s.fake.age_token(&old, Duration::from_secs(25 * 3600));
    let fresh = s.connector.refresh(&account).await.unwrap();
    assert_ne!(fresh.access_token, old);
    assert_eq!(fresh.refresh_token, None, "Threads issues no refresh token");
    let left = fresh.expires_at.unwrap() - Utc::now();
    assert!(left > chrono::Duration::days(59));
    assert_eq!(s.fake.refresh_calls(), 1);
    assert!(!format!("{fresh:?}").contains(&fresh.access_token));

    // A revoked token cannot be refreshed: the account needs reconnecting.
    let revoked = publisher_token(&s.fake);
    s.fake.age_token(&revoked, Duration::from_secs(25 * 3600));
    s.fake.revoke_token(&revoked);
    let e = s
        .connector
        .refresh(&request(&revoked, None, &[]).account)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);

    // A platform failure is not a rejection.
    s.fake.faults.push(
        "GET",
        "/refresh_access_token",
        Fault::Reply {
            status: 503,
            headers: vec![],
            body: fake::graph_error(2, None, "OAuthException", "Service temporarily unavailable")
                .to_string(),
        },
    );
    let e = s.connector.refresh(&account).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);

    // An answer whose fields do not fit is described by the field, and what is kept of it
    // shows no token.
    s.fake.faults.push(
        "GET",
        "/refresh_access_token",
        Fault::Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"access_token": "THSECRET-access", "token_type": "bearer",
                         "expires_in": "two months"})
            .to_string(),
        },
    );
    let e = s.connector.refresh(&account).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);
    assert!(
        e.message
            .contains("`expires_in`: expected u64, found a string"),
        "{}",
        e.message
    );
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("THSECRET"), "{shown}");
    assert!(e.platform_error.unwrap().contains("two months"));

    // An answer without `expires_in`: a long-lived token's 60 days, refreshed 7 days ahead.
    s.fake.faults.push(
        "GET",
        "/refresh_access_token",
        Fault::Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"access_token": "th-new", "token_type": "bearer"}).to_string(),
        },
    );
    let fresh = s.connector.refresh(&account).await.unwrap();
    let left = fresh.expires_at.expect("an expiry") - Utc::now();
    assert!(
        left > chrono::Duration::days(59) && left <= chrono::Duration::days(60),
        "{left}"
    );
    assert!(left.to_std().unwrap() > s.connector.refresh_ahead());
}

#[tokio::test]
async fn a_text_post_goes_through_a_finished_container() {
    let s = setup().await;
    s.fake.set_in_progress_polls(2);
    let token = publisher_token(&s.fake);
    let post = s
        .connector
        .publish(&request(&token, Some("Hello from Soku ✨"), &[]))
        .await
        .unwrap();
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].media_type, "TEXT_POST");
    assert_eq!(posts[0].text.as_deref(), Some("Hello from Soku ✨"));
    assert_eq!(post.url.as_deref(), Some(posts[0].permalink.as_str()));
    assert_eq!(s.fake.create_calls(), 1);
    // IN_PROGRESS twice, then FINISHED.
    assert_eq!(s.fake.status_reads(), 3);
}

#[tokio::test]
async fn a_single_image_is_passed_by_url() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let url = "https://cdn.example.com/a.png";
    let post = s
        .connector
        .publish(&request(&token, Some("one image"), &[url]))
        .await
        .unwrap();
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].media_type, "IMAGE");
    assert_eq!(posts[0].image_urls, vec![url.to_string()]);
    assert_eq!(posts[0].text.as_deref(), Some("one image"));
    assert_eq!(s.media.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn several_images_make_a_carousel() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let urls = [
        "https://cdn.example.com/1.jpg",
        "https://cdn.example.com/2.png",
        "https://cdn.example.com/3.webp",
    ];
    let post = s
        .connector
        .publish(&request(&token, Some("three"), &urls))
        .await
        .unwrap();
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].media_type, "CAROUSEL_ALBUM");
    assert_eq!(posts[0].image_urls, urls.map(String::from).to_vec());
    assert_eq!(posts[0].children.len(), 3);
    assert_eq!(posts[0].text.as_deref(), Some("three"));
    // Three items and the carousel; the items are polled together (two rounds of three reads),
    // then the carousel (two reads).
    assert_eq!(s.fake.create_calls(), 4);
    assert_eq!(s.fake.status_reads(), 8);
    let containers = s.fake.containers();
    assert_eq!(containers.iter().filter(|c| c.is_carousel_item).count(), 3);
    assert!(containers.iter().all(|c| c.published));
    assert_eq!(s.media.calls.load(Ordering::SeqCst), 0);

    // And reconciliation finds it, by text, type and count.
    let mut again = request(&token, Some("three"), &urls);
    again.not_before = Utc::now() - chrono::Duration::seconds(30);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::Found(post)
    );
    let two = request(&token, Some("three"), &urls[..2]);
    assert_eq!(
        s.connector.find_existing(&two).await.unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn an_image_threads_cannot_process_is_permanent_and_nothing_is_published() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    s.fake
        .fail_image_url("https://cdn.example.com/broken.jpg", "UNKNOWN");
    let e = s
        .connector
        .publish(&request(
            &token,
            None,
            &[
                "https://cdn.example.com/ok.jpg",
                "https://cdn.example.com/broken.jpg",
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert_eq!(e.code, "media_rejected");
    assert_eq!(e.platform_error.as_deref(), Some("UNKNOWN"));
    assert!(s.fake.posts().is_empty());
    assert_eq!(s.fake.publish_calls(), 0);
}

#[tokio::test]
async fn media_still_processing_at_the_deadline_is_retryable() {
    let fake = ThreadsFake::start().await;
    fake.set_in_progress_polls(1000);
    let connector = ThreadsConnector::new(
        PlatformSettings::at(&fake.url),
        Arc::new(CountingSource::default()),
    )
    .with_polling(Duration::from_millis(20), Duration::from_millis(200));
    let token = fake.grant_token(&[SCOPE_BASIC, SCOPE_PUBLISH]);
    let e = connector
        .publish(&request(
            &token,
            Some("slow"),
            &["https://cdn.example.com/big.png"],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code, "media_processing");
    assert!(matches!(e.class, FailureClass::Retryable { .. }));
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn a_429_is_retryable_after_retry_after_and_graph_throttling_too() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let path = format!("/v1.0/{USER_ID}/threads");
    s.fake.faults.reply(
        "POST",
        &path,
        429,
        &[("retry-after", "42")],
        fake::graph_error(
            4,
            None,
            "OAuthException",
            "(#4) Application request limit reached",
        ),
    );
    let e = s
        .connector
        .publish(&request(&token, Some("rate"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(42))
        }
    );
    assert_eq!(e.code, "rate_limited");

    // Graph's own throttling answer (code 17, HTTP 400) on the publishing call.
    s.fake.faults.reply(
        "POST",
        &format!("/v1.0/{USER_ID}/threads_publish"),
        400,
        &[],
        fake::graph_error(
            17,
            None,
            "OAuthException",
            "(#17) User request limit reached",
        ),
    );
    let e = s
        .connector
        .publish(&request(&token, Some("rate"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });
    assert!(s.fake.posts().is_empty());
}

#[tokio::test]
async fn a_5xx_on_publish_is_ambiguous_and_reconciliation_finds_nothing() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    s.fake.faults.reply(
        "POST",
        &format!("/v1.0/{USER_ID}/threads_publish"),
        500,
        &[],
        fake::graph_error(1, None, "OAuthException", "An unknown error has occurred."),
    );
    let req = request(&token, Some("maybe"), &[]);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert!(s.fake.posts().is_empty());
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );

    // A 5xx while creating the container creates nothing visible: retryable.
    s.fake.faults.reply(
        "POST",
        &format!("/v1.0/{USER_ID}/threads"),
        503,
        &[],
        fake::graph_error(2, None, "OAuthException", "Service temporarily unavailable"),
    );
    let e = s.connector.publish(&req).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
}

#[tokio::test]
async fn a_timeout_after_publishing_is_ambiguous_and_reconciliation_finds_the_post() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    // Another post with the same text, from before this target's attempts, and a recent one
    // with other text: neither is ours.
    s.fake
        .insert_post("TEXT_POST", Some("Launch day!"), Duration::from_secs(3600));
    s.fake
        .insert_post("TEXT_POST", Some("Something else"), Duration::from_secs(1));
    s.fake.faults.push(
        "POST",
        &format!("/v1.0/{USER_ID}/threads_publish"),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let req = request(&token, Some("Launch day!"), &[]);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(e.code, "timeout");
    assert!(!e.message.contains(&token));

    let mine: Vec<_> = s
        .fake
        .posts()
        .into_iter()
        .filter(|p| p.container_id.is_some())
        .collect();
    assert_eq!(mine.len(), 1, "the post was made once");
    match s.connector.find_existing(&req).await.unwrap() {
        Existing::Found(found) => {
            assert_eq!(found.id, mine[0].id);
            assert_eq!(found.url.as_deref(), Some(mine[0].permalink.as_str()));
        }
        other => panic!("expected Found, got {other:?}"),
    }
    // Reconciliation publishes nothing.
    assert_eq!(s.fake.publish_calls(), 1);
    assert_eq!(s.fake.posts().len(), 3);
}

#[tokio::test]
async fn reconciliation_pages_through_the_users_posts() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let req = request(&token, Some("needle"), &[]);
    s.connector.publish(&req).await.unwrap();
    // 150 newer posts push it to the second page of 100.
    for i in 0..150 {
        s.fake
            .insert_post("TEXT_POST", Some(&format!("hay {i}")), Duration::ZERO);
    }
    assert!(matches!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::Found(_)
    ));
    let other = request(&token, Some("not there"), &[]);
    assert_eq!(
        s.connector.find_existing(&other).await.unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_token_invalid() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    s.fake.expire_token(&token);
    let e = s
        .connector
        .publish(&request(&token, Some("x"), &[]))
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
            .contains("\"code\":190")
    );

    let token = publisher_token(&s.fake);
    s.fake.revoke_token(&token);
    let e = s
        .connector
        .find_existing(&request(&token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);

    let e = s
        .connector
        .publish(&request("not-a-token-the-fake-issued", Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
}

#[tokio::test]
async fn a_token_without_the_publish_permission_is_refused() {
    let s = setup().await;
    let token = s.fake.grant_token(&[SCOPE_BASIC]);
    let e = s
        .connector
        .publish(&request(&token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "permission_denied")
    );
}

#[tokio::test]
async fn a_video_with_images_and_oversized_posts_are_refused_before_any_call() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let mut video = request(&token, Some("v"), &["https://cdn.example.com/a.png"]);
    video.content.media_type = MediaType::Video;
    video.content.video_url = Some("https://cdn.example.com/v.mp4".into());
    let e = s.connector.publish(&video).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "unsupported_media")
    );
    assert_eq!(
        s.connector.find_existing(&video).await.unwrap(),
        Existing::NotFound
    );

    let urls: Vec<String> = (0..21)
        .map(|i| format!("https://cdn.example.com/{i}.png"))
        .collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let e = s
        .connector
        .publish(&request(&token, None, &refs))
        .await
        .unwrap_err();
    assert_eq!(e.code, "too_many_images");
    assert_eq!(s.fake.create_calls(), 0);

    // Threads counts an emoji as its UTF-8 bytes: 499 characters and one emoji are 503.
    let over = format!("{}\u{1F600}", "a".repeat(499));
    let e = s
        .connector
        .publish(&request(&token, Some(&over), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "text_too_long")
    );
    assert_eq!(s.fake.create_calls(), 0);
}

#[tokio::test]
async fn the_fake_counts_an_emoji_as_its_utf8_bytes() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let client = reqwest::Client::new();
    let create = format!("{}/v1.0/{USER_ID}/threads", s.fake.url);
    let status = |text: String| {
        let (client, create, token) = (client.clone(), create.clone(), token.clone());
        async move {
            client
                .post(&create)
                .form(&[
                    ("media_type", "TEXT"),
                    ("text", text.as_str()),
                    ("access_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(format!("{}\u{1F600}", "a".repeat(496))).await, 200);
    assert_eq!(status(format!("{}\u{1F600}", "a".repeat(499))).await, 400);
    // The connector agrees, so a text it sends is one the fake takes.
    let ok = format!("{}\u{1F600}", "a".repeat(496));
    s.connector
        .publish(&request(&token, Some(&ok), &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_fake_rejects_malformed_requests() {
    let s = setup().await;
    let token = publisher_token(&s.fake);
    let client = reqwest::Client::new();
    let create = format!("{}/v1.0/{USER_ID}/threads", s.fake.url);
    let code_of = |v: &Value| v["error"]["code"].as_i64().unwrap();

    // No media_type.
    let r = client
        .post(&create)
        .form(&[("text", "hi"), ("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code_of(&body), 100);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("media_type")
    );

    // IMAGE without image_url; TEXT without text; a carousel of one.
    for form in [
        vec![("media_type", "IMAGE"), ("text", "t")],
        vec![("media_type", "TEXT")],
        vec![("media_type", "CAROUSEL"), ("children", "1")],
    ] {
        let mut form = form;
        form.push(("access_token", token.as_str()));
        let r = client.post(&create).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 400, "{form:?}");
    }

    // No access token at all, and one in the wrong place.
    let r = client
        .post(&create)
        .form(&[("media_type", "TEXT"), ("text", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .post(&create)
        .bearer_auth(&token)
        .form(&[("media_type", "TEXT"), ("text", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A container published before it is FINISHED.
    let r = client
        .post(&create)
        .form(&[
            ("media_type", "TEXT"),
            ("text", "hi"),
            ("access_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .post(format!("{}/v1.0/{USER_ID}/threads_publish", s.fake.url))
        .form(&[
            ("creation_id", id.as_str()),
            ("access_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code_of(&r.json().await.unwrap()), 9007);

    // Fields a container does not have.
    let r = client
        .get(format!("{}/v1.0/{id}", s.fake.url))
        .query(&[
            ("fields", "status,colour"),
            ("access_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Exchanging a long-lived token again, and the wrong app secret.
    let r = client
        .get(format!("{}/access_token", s.fake.url))
        .query(&[
            ("grant_type", "th_exchange_token"),
            ("client_secret", fake::CLIENT_SECRET),
            ("access_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(s.fake.posts().is_empty());
}

#[tokio::test]
async fn connecting_needs_the_app_credentials() {
    let fake = ThreadsFake::start().await;
    let mut settings = PlatformSettings::at(&fake.url);
    settings.client_secret = None;
    let connector = ThreadsConnector::new(settings, Arc::new(CountingSource::default()));
    let e = connector
        .authorize(&AuthorizationRequest {
            state: "s".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: "c".into(),
            params: json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured);
}

// ---- video ----------------------------------------------------------------------------------

/// The server's hosted copy of the post's video, as the engine hands it to the connector.
const VIDEO: &str = "https://soku.example/media/med_abc123/med_abc123.mp4";

fn video_request(
    token: &str,
    text: Option<&str>,
    saved: Value,
    sink: &Arc<Saves>,
) -> PublishRequest {
    let mut req = request(token, text, &[]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some(VIDEO.into());
    req.progress = Progress::new(saved, sink.clone());
    req
}

/// A setup whose fake serves a valid 12-second MP4 at `VIDEO`.
async fn video_setup() -> (Setup, String) {
    let s = setup().await;
    s.fake
        .serve_video(VIDEO, media_files::mp4(720, 1280, 12_000, 4096));
    let token = publisher_token(&s.fake);
    (s, token)
}

#[tokio::test]
async fn a_video_is_published_through_a_video_container_by_its_url() {
    let (s, token) = video_setup().await;
    let sink = Arc::new(Saves::default());
    let req = video_request(&token, Some("watch this"), Value::Null, &sink);
    let post = s.connector.publish(&req).await.unwrap();

    let containers = s.fake.containers();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].media_type, "VIDEO");
    assert_eq!(containers[0].video_url.as_deref(), Some(VIDEO));
    assert_eq!(containers[0].text.as_deref(), Some("watch this"));
    // Two IN_PROGRESS reads, then FINISHED.
    assert_eq!(s.fake.status_reads(), 3);
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].media_type, "VIDEO");
    assert_eq!(
        posts[0].container_id.as_deref(),
        Some(containers[0].id.as_str())
    );
    assert!(post.url.is_some());
    assert_eq!(
        sink.all(),
        vec![json!({ "video_url": VIDEO, "container_id": containers[0].id })],
        "the container is saved once created"
    );
    assert_eq!(
        s.media.calls.load(Ordering::SeqCst),
        0,
        "Threads downloads the video itself"
    );
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::Found(post)
    );
}

#[tokio::test]
async fn slow_video_processing_is_waited_for() {
    let (s, token) = video_setup().await;
    s.fake.set_video_processing_polls(6);
    let sink = Arc::new(Saves::default());
    s.connector
        .publish(&video_request(&token, None, Value::Null, &sink))
        .await
        .unwrap();
    assert_eq!(s.fake.status_reads(), 7);
    assert_eq!(s.fake.video_containers(), 1);
    assert_eq!(s.fake.publish_calls(), 1);
}

#[tokio::test]
async fn a_video_threads_cannot_process_is_permanent_with_its_error_message() {
    let (s, token) = video_setup().await;
    s.fake.fail_video_url(VIDEO, "FAILED_PROCESSING_VIDEO");
    let sink = Arc::new(Saves::default());
    let e = s
        .connector
        .publish(&video_request(&token, Some("broken"), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_processing_failed")
    );
    assert_eq!(e.platform_error.as_deref(), Some("FAILED_PROCESSING_VIDEO"));
    assert_eq!(s.fake.publish_calls(), 0);
    assert!(s.fake.posts().is_empty());

    // A video Threads cannot download, or one too long, fails the same way.
    let mut elsewhere = video_request(&token, None, Value::Null, &sink);
    elsewhere.content.video_url = Some("https://cdn.example.com/missing.mp4".into());
    let e = s.connector.publish(&elsewhere).await.unwrap_err();
    assert_eq!(e.code, "media_processing_failed");
    assert_eq!(
        e.platform_error.as_deref(),
        Some("FAILED_DOWNLOADING_VIDEO")
    );
    let long = "https://cdn.example.com/long.mp4";
    s.fake
        .serve_video(long, media_files::mp4(720, 1280, 301_000, 64));
    elsewhere.content.video_url = Some(long.into());
    let e = s.connector.publish(&elsewhere).await.unwrap_err();
    assert_eq!(e.platform_error.as_deref(), Some("INVALID_DURATION"));
    assert_eq!(s.fake.publish_calls(), 0);
}

#[tokio::test]
async fn a_second_attempt_uses_the_saved_container_and_creates_no_other() {
    let (s, token) = video_setup().await;
    s.fake.faults.reply(
        "POST",
        &format!("/v1.0/{USER_ID}/threads_publish"),
        500,
        &[],
        fake::graph_error(2, None, "OAuthException", "Service temporarily unavailable"),
    );
    let sink = Arc::new(Saves::default());
    let e = s
        .connector
        .publish(&video_request(&token, Some("again"), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    let saved = sink.all();
    assert_eq!(saved.len(), 1);
    assert_eq!(s.fake.create_calls(), 1);

    // The next attempt (another process, after a restart) starts from what was saved.
    let sink2 = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&video_request(
            &token,
            Some("again"),
            saved[0].clone(),
            &sink2,
        ))
        .await
        .unwrap();
    assert_eq!(s.fake.create_calls(), 1, "one container");
    assert_eq!(s.fake.video_containers(), 1);
    let posts = s.fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(
        posts[0].container_id.as_deref(),
        saved[0]["container_id"].as_str()
    );
    assert!(sink2.all().is_empty(), "nothing new to save");
}

#[tokio::test]
async fn a_processing_wait_that_runs_out_is_retryable_and_the_next_attempt_resumes_it() {
    let (s, token) = video_setup().await;
    s.fake.set_video_processing_polls(8);
    let hurried = ThreadsConnector::new(
        PlatformSettings::at(&s.fake.url),
        Arc::new(CountingSource::default()),
    )
    .with_polling(Duration::from_millis(20), Duration::from_millis(30));
    let sink = Arc::new(Saves::default());
    let e = hurried
        .publish(&video_request(&token, Some("long one"), Value::Null, &sink))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(e.code, "media_processing");
    assert!(s.fake.posts().is_empty());
    let saved = sink.all();
    assert_eq!(saved.len(), 1);
    let read = s.fake.status_reads();
    assert!((1..8).contains(&read), "{read}");

    let patient = ThreadsConnector::new(
        PlatformSettings::at(&s.fake.url),
        Arc::new(CountingSource::default()),
    )
    .with_polling(Duration::from_millis(20), Duration::from_secs(10));
    let sink2 = Arc::new(Saves::default());
    patient
        .publish(&video_request(
            &token,
            Some("long one"),
            saved[0].clone(),
            &sink2,
        ))
        .await
        .unwrap();
    assert_eq!(s.fake.create_calls(), 1, "one container");
    assert_eq!(
        s.fake.status_reads(),
        9,
        "the polling went on where it stopped"
    );
    assert_eq!(s.fake.publish_calls(), 1);
    assert!(sink2.all().is_empty());
}

#[tokio::test]
async fn an_expired_or_unknown_saved_container_is_created_again() {
    let (s, token) = video_setup().await;
    for gone in ["expired", "unknown"] {
        let stale = Arc::new(Saves::default());
        let hurried = ThreadsConnector::new(
            PlatformSettings::at(&s.fake.url),
            Arc::new(CountingSource::default()),
        )
        .with_polling(Duration::from_millis(5), Duration::from_millis(1));
        s.fake.set_video_processing_polls(1000);
        hurried
            .publish(&video_request(&token, Some(gone), Value::Null, &stale))
            .await
            .unwrap_err();
        let saved = stale.all()[0].clone();
        let old = saved["container_id"].as_str().unwrap().to_owned();
        if gone == "expired" {
            s.fake.expire_container(&old);
        } else {
            s.fake.drop_container(&old);
        }
        s.fake.set_video_processing_polls(1);
        let before = s.fake.create_calls();

        let sink = Arc::new(Saves::default());
        s.connector
            .publish(&video_request(&token, Some(gone), saved, &sink))
            .await
            .unwrap();
        assert_eq!(s.fake.create_calls(), before + 1, "{gone}");
        let post = s.fake.posts().last().unwrap().clone();
        let new = post.container_id.unwrap();
        assert_ne!(new, old);
        assert_eq!(
            sink.all(),
            vec![json!({ "video_url": VIDEO, "container_id": new })]
        );
    }
}
