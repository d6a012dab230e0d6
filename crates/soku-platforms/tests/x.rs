//! The X connector against the loopback fake of the X API (`soku_fakes::x`).

mod support;

use serde_json::Value;
use serde_json::json;
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, Connector, Existing,
    FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent};
use soku_fakes::Fault;
use soku_fakes::media_files;
use soku_fakes::x::{self as fake, PostLimits, XFake};
use soku_platforms::PlatformSettings;
use soku_platforms::x::X;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::{MemoryMedia, Saves, StreamedMedia};

// ---------------------------------------------------------------------------------------------
// Fixtures

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0png-body";
const JPEG: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 1, 2, 3,
];
const WEBP: &[u8] = b"RIFF\x20\0\0\0WEBPVP8 webp-body";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42video";
const GIF: &[u8] = b"GIF89a\x01\0\x01\0gif-body";

fn media() -> Arc<MemoryMedia> {
    MemoryMedia::new([
        ("https://img.test/a.png", PNG.to_vec()),
        ("https://img.test/b.jpg", JPEG.to_vec()),
        ("https://img.test/c.webp", WEBP.to_vec()),
        ("https://img.test/d.mp4", MP4.to_vec()),
        ("https://img.test/e.gif", GIF.to_vec()),
    ])
}

fn settings(fake: &XFake) -> PlatformSettings {
    let mut s = PlatformSettings::at(&fake.url);
    s.auth_url = fake.authorize_url();
    s.client_id = Some(fake::CLIENT_ID.into());
    s.client_secret = Some(fake::CLIENT_SECRET.into());
    s.timeout = Duration::from_secs(1);
    s
}

async fn setup() -> (XFake, X) {
    let fake = XFake::start().await;
    let x = X::new(settings(&fake), media());
    (fake, x)
}

fn account(fake: &XFake) -> AccountCredentials {
    let (access, refresh) = fake.issue_tokens();
    AccountCredentials {
        account_id: fake::USER_ID.into(),
        username: Some(fake::USERNAME.into()),
        access_token: Some(access),
        refresh_token: Some(refresh),
        meta: json!({ "username": fake::USERNAME }),
    }
}

fn request(fake: &XFake, text: Option<&str>, images: &[&str]) -> PublishRequest {
    PublishRequest {
        marker: "mk_test".into(),
        user_id: "usr_1".into(),
        submission_id: "sub_1".into(),
        target_id: format!("x:{}", fake::USER_ID),
        platform: Platform::X,
        account: account(fake),
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
        not_before: chrono::Utc::now(),
    }
}

/// Follows the authorization URL as the user's browser would, the fake approving: the code and
/// state it redirects with.
async fn approve(url: &str) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(fake::REDIRECT_URI), "{location}");
    let back = url::Url::parse(&location).unwrap();
    let get = |k: &str| {
        back.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    (get("code"), get("state"))
}

fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-abcdefghij".to_owned();
    let challenge = soku_fakes::common::pkce_challenge(&verifier);
    (verifier, challenge)
}

fn auth_request(challenge: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: "st_abc123".into(),
        redirect_uri: fake::REDIRECT_URI.into(),
        code_challenge: challenge.into(),
        params: json!({ "platform": "x" }),
    }
}

// ---------------------------------------------------------------------------------------------
// Connecting

#[tokio::test]
async fn oauth_round_trip_connects_the_account() {
    let (fake, x) = setup().await;
    let (verifier, challenge) = pkce();
    let start = x.authorize(&auth_request(&challenge)).await.unwrap();

    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), fake::AUTHORIZE_PATH);
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], fake::CLIENT_ID);
    assert_eq!(q["redirect_uri"], fake::REDIRECT_URI);
    assert_eq!(
        q["scope"],
        "tweet.read tweet.write users.read offline.access media.write"
    );
    assert_eq!(q["state"], "st_abc123");
    assert_eq!(q["code_challenge"], challenge);
    assert_eq!(q["code_challenge_method"], "S256");

    let (code, state) = approve(&start.url).await;
    assert_eq!(state, "st_abc123");
    let account = x
        .exchange(&CodeExchange {
            code,
            redirect_uri: fake::REDIRECT_URI.into(),
            code_verifier: verifier,
            pending: start.pending.clone(),
        })
        .await
        .unwrap();
    assert_eq!(account.account_id, fake::USER_ID);
    assert_eq!(account.username.as_deref(), Some(fake::USERNAME));
    assert_eq!(account.display_name.as_deref(), Some(fake::NAME));
    assert_eq!(account.meta, json!({ "username": fake::USERNAME }));
    assert!(fake.access_token_works(&account.tokens.access_token));
    let refresh = account
        .tokens
        .refresh_token
        .clone()
        .expect("offline.access");
    assert!(fake.refresh_token_works(&refresh));
    let expires = account.tokens.expires_at.expect("expires_in");
    let left = expires - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(119) && left <= chrono::Duration::minutes(120));
    // Tokens never show in Debug output.
    let shown = format!("{account:?}");
    assert!(!shown.contains(&account.tokens.access_token) && !shown.contains(&refresh));
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let (_fake, x) = setup().await;
    let (verifier, challenge) = pkce();
    let start = x.authorize(&auth_request(&challenge)).await.unwrap();
    let (code, _) = approve(&start.url).await;
    let exchange = CodeExchange {
        code,
        redirect_uri: fake::REDIRECT_URI.into(),
        code_verifier: verifier,
        pending: json!({}),
    };
    x.exchange(&exchange).await.unwrap();
    let again = x.exchange(&exchange).await.unwrap_err();
    assert_eq!(again.kind, ConnectErrorKind::Rejected);
    assert!(
        again
            .platform_error
            .unwrap()
            .contains("authorization code was invalid")
    );
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_uri_is_refused() {
    let (_fake, x) = setup().await;
    let (verifier, challenge) = pkce();

    let start = x.authorize(&auth_request(&challenge)).await.unwrap();
    let (code, _) = approve(&start.url).await;
    let e = x
        .exchange(&CodeExchange {
            code,
            redirect_uri: fake::REDIRECT_URI.into(),
            code_verifier: "another-verifier-entirely-another-verifier-entirely".into(),
            pending: json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.platform_error.unwrap().contains("code verifier"));

    let start = x.authorize(&auth_request(&challenge)).await.unwrap();
    let (code, _) = approve(&start.url).await;
    let e = x
        .exchange(&CodeExchange {
            code,
            redirect_uri: "https://soku.test/elsewhere".into(),
            code_verifier: verifier,
            pending: json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.platform_error.unwrap().contains("redirect uri"));
}

#[tokio::test]
async fn the_authorization_page_refuses_bad_requests() {
    let (fake, x) = setup().await;
    let (_, challenge) = pkce();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let good = x.authorize(&auth_request(&challenge)).await.unwrap().url;
    let swap = |from: &str, to: &str| good.replace(from, to);
    let unregistered = {
        let mut r = auth_request(&challenge);
        r.redirect_uri = "https://evil.test/cb".into();
        x.authorize(&r).await.unwrap().url
    };
    let cases = [
        swap("client_id=test-client-id", "client_id=someone-else"),
        swap("response_type=code", "response_type=token"),
        swap("code_challenge_method=S256", "code_challenge_method=S512"),
        swap(&format!("code_challenge={challenge}"), "code_challenge="),
        unregistered,
    ];
    for url in cases {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
    }
    assert_eq!(client.get(&good).send().await.unwrap().status(), 302);
    assert_eq!(fake.tokens_issued(), 0);
}

#[tokio::test]
async fn wrong_client_credentials_are_a_configuration_problem() {
    let fake = XFake::start().await;
    let mut s = settings(&fake);
    s.client_secret = Some("not-the-secret".into());
    let x = X::new(s, media());
    let e = x.refresh(&account(&fake)).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured);
    assert!(!e.message.contains("not-the-secret"));
}

#[tokio::test]
async fn refresh_rotates_the_tokens() {
    let (fake, x) = setup().await;
    let acct = account(&fake);
    let old_refresh = acct.refresh_token.clone().unwrap();
    let tokens = x.refresh(&acct).await.unwrap();
    let new_refresh = tokens
        .refresh_token
        .clone()
        .expect("X rotates refresh tokens");
    assert_ne!(new_refresh, old_refresh);
    assert_ne!(Some(tokens.access_token.clone()), acct.access_token);
    assert!(fake.access_token_works(&tokens.access_token));
    assert!(fake.refresh_token_works(&new_refresh));
    assert!(!fake.refresh_token_works(&old_refresh));
    assert!(tokens.expires_at.is_some());
    // The spent refresh token no longer works: the account would need reconnecting.
    let e = x.refresh(&acct).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
}

#[tokio::test]
async fn refresh_keeps_the_refresh_token_when_none_is_reissued() {
    let (fake, x) = setup().await;
    fake.faults.reply(
        "POST",
        "/2/oauth2/token",
        200,
        &[],
        json!({ "token_type": "bearer", "expires_in": 7200, "access_token": "xat_new",
                "scope": "tweet.read tweet.write users.read media.write" }),
    );
    let tokens = x.refresh(&account(&fake)).await.unwrap();
    assert_eq!(tokens.access_token, "xat_new");
    assert_eq!(tokens.refresh_token, None, "None keeps the stored one");
}

#[tokio::test]
async fn a_token_answer_of_the_wrong_shape_names_the_field_and_never_the_tokens() {
    let (fake, x) = setup().await;
    for (answer, field) in [
        (
            json!({"token_type": "bearer", "access_token": ["XSECRET-access"], "expires_in": true,
                   "refresh_token": "XSECRET-refresh", "scope": "tweet.write"}),
            "`access_token`: expected a string, found a sequence",
        ),
        (
            json!({"token_type": "bearer", "access_token": {"value": "XSECRET-access"},
                   "refresh_token": "XSECRET-refresh"}),
            "`access_token`: expected a string, found a map",
        ),
    ] {
        fake.faults
            .reply("POST", "/2/oauth2/token", 200, &[], answer);
        let e = x.refresh(&account(&fake)).await.unwrap_err();
        assert_eq!(e.kind, ConnectErrorKind::Unavailable, "{e:?}");
        assert!(e.message.contains(field), "{}", e.message);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("XSECRET"), "{shown}");
    }
}

/// X has spent the old refresh token once it answers: an answer whose tokens are fine but whose
/// `expires_in` or `scope` is odd still hands them over (two hours assumed, as when X says
/// nothing).
#[tokio::test]
async fn a_refresh_answer_with_an_odd_field_keeps_the_rotated_tokens() {
    let (fake, x) = setup().await;
    for (field, value) in [
        ("expires_in", json!("two hours")),
        ("expires_in", json!({"seconds": 7200})),
        ("scope", json!(["tweet.write"])),
    ] {
        let acct = account(&fake);
        let old = acct.refresh_token.clone().unwrap();
        fake.alter_next_token_answer(field, value);
        let tokens = x.refresh(&acct).await.unwrap();
        let new = tokens.refresh_token.clone().expect("the rotated one");
        assert!(fake.refresh_token_works(&new), "{field}");
        assert!(!fake.refresh_token_works(&old));
        assert!(fake.access_token_works(&tokens.access_token));
        let left = support::lifetime_left(&tokens, x.refresh_ahead());
        assert!((7190..=7200).contains(&left), "{field}: {left}");
    }
}

/// A refresh answer without `tweet.write` refuses the account, and still hands over the rotated
/// tokens to be stored.
#[tokio::test]
async fn a_refresh_that_no_longer_grants_posting_hands_over_the_rotated_tokens() {
    let (fake, x) = setup().await;
    let acct = account(&fake);
    fake.alter_next_token_answer("scope", json!("tweet.read users.read offline.access"));
    let e = x.refresh(&acct).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    let issued = e.issued.clone().expect("the tokens X issued");
    assert!(fake.refresh_token_works(issued.refresh_token.as_deref().unwrap()));
    assert!(!fake.refresh_token_works(acct.refresh_token.as_deref().unwrap()));
    assert!(!format!("{e:?}").contains(&issued.access_token));
}

#[tokio::test]
async fn a_token_answer_without_a_lifetime_is_taken_to_live_two_hours() {
    let (fake, x) = setup().await;
    fake.faults.reply(
        "POST",
        "/2/oauth2/token",
        200,
        &[],
        json!({"token_type": "bearer", "access_token": "xat_new", "refresh_token": "xrt_new",
               "scope": "tweet.read tweet.write users.read media.write"}),
    );
    let t = x.refresh(&account(&fake)).await.unwrap();
    let left = support::lifetime_left(&t, x.refresh_ahead());
    assert!((7190..=7200).contains(&left), "{left}");
}

#[tokio::test]
async fn refresh_failures_are_classified() {
    let (fake, x) = setup().await;
    let acct = account(&fake);
    fake.revoke_refresh_tokens();
    let e = x.refresh(&acct).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.message.contains("Value passed for the token was invalid"));

    let acct = account(&fake);
    fake.fail_next("POST", "/2/oauth2/token");
    let e = x.refresh(&acct).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);
    fake.rate_limit_next("POST", "/2/oauth2/token", Duration::from_secs(60));
    let e = x.refresh(&acct).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);
    // The refresh token was not spent by those failures.
    x.refresh(&acct).await.unwrap();

    let mut none = account(&fake);
    none.refresh_token = None;
    assert_eq!(
        x.refresh(&none).await.unwrap_err().kind,
        ConnectErrorKind::Rejected
    );
}

// ---------------------------------------------------------------------------------------------
// Publishing

#[tokio::test]
async fn text_post() {
    let (fake, x) = setup().await;
    let post = x
        .publish(&request(&fake, Some("Hello from Soku & friends"), &[]))
        .await
        .unwrap();
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://x.com/{}/status/{}", fake::USERNAME, post.id).as_str())
    );
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].text, "Hello from Soku & friends");
    assert!(posts[0].media_ids.is_empty());
    assert_eq!(fake.create_calls(), 1);
}

#[tokio::test]
async fn single_image_post() {
    let (fake, x) = setup().await;
    let post = x
        .publish(&request(
            &fake,
            Some("One picture"),
            &["https://img.test/a.png"],
        ))
        .await
        .unwrap();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].media_ids.len(), 1);
    let upload = fake.upload(&posts[0].media_ids[0]).unwrap();
    assert!(upload.finalized);
    assert_eq!(upload.bytes, PNG);
    assert_eq!(upload.media_type, "image/png");
    assert_eq!(upload.media_category, "tweet_image");
    assert_eq!(upload.total_bytes, PNG.len() as u64);
}

#[tokio::test]
async fn several_images_post() {
    let (fake, x) = setup().await;
    let images = [
        "https://img.test/a.png",
        "https://img.test/b.jpg",
        "https://img.test/c.webp",
    ];
    x.publish(&request(&fake, Some("Three pictures"), &images))
        .await
        .unwrap();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let got: Vec<(Vec<u8>, String)> = posts[0]
        .media_ids
        .iter()
        .map(|id| {
            let u = fake.upload(id).unwrap();
            (u.bytes, u.media_type)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (PNG.to_vec(), "image/png".to_owned()),
            (JPEG.to_vec(), "image/jpeg".to_owned()),
            (WEBP.to_vec(), "image/webp".to_owned()),
        ]
    );
}

#[tokio::test]
async fn an_image_without_text() {
    let (fake, x) = setup().await;
    x.publish(&request(&fake, None, &["https://img.test/b.jpg"]))
        .await
        .unwrap();
    assert_eq!(fake.posts()[0].text, "");
    assert_eq!(fake.posts()[0].media_ids.len(), 1);
}

#[tokio::test]
async fn an_animated_gif_waits_for_processing() {
    let (fake, x) = setup().await;
    x.publish(&request(&fake, Some("Moving"), &["https://img.test/e.gif"]))
        .await
        .unwrap();
    let posts = fake.posts();
    let upload = fake.upload(&posts[0].media_ids[0]).unwrap();
    assert_eq!(
        (upload.media_category.as_str(), upload.bytes.as_slice()),
        ("tweet_gif", GIF)
    );
    // X takes one animated GIF alone.
    let e = x
        .publish(&request(
            &fake,
            Some("Mixed"),
            &["https://img.test/e.gif", "https://img.test/a.png"],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code, "unsupported_media");
}

#[tokio::test]
async fn a_video_goes_alone_and_must_be_named() {
    let (fake, x) = setup().await;
    let mut req = request(&fake, Some("A film"), &["https://img.test/a.png"]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some("https://img.test/d.mp4".into());
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "unsupported_media")
    );
    let mut req = request(&fake, Some("A film"), &[]);
    req.content.media_type = MediaType::Video;
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "missing_video")
    );
    assert_eq!(fake.create_calls(), 0);
    assert_eq!(fake.init_calls(), 0);
    // A video that is not one X takes is refused before any upload.
    let mut req = request(&fake, Some("A film"), &[]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some("https://img.test/a.png".into());
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent, "{e:?}");
    assert_eq!(fake.init_calls(), 0);
    // The tiny MP4 of the image fixtures goes through (served whole by the default stream).
    let mut req = request(&fake, Some("A tiny film"), &[]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some("https://img.test/d.mp4".into());
    x.publish(&req).await.unwrap();
    let upload = fake.upload(&fake.posts()[0].media_ids[0]).unwrap();
    assert_eq!(upload.bytes, MP4);
}

#[tokio::test]
async fn rate_limit_is_retryable_after_the_reset() {
    let (fake, x) = setup().await;
    fake.rate_limit_next("POST", "/2/tweets", Duration::from_secs(30));
    let e = x
        .publish(&request(&fake, Some("Limited"), &[]))
        .await
        .unwrap_err();
    let FailureClass::Retryable {
        retry_after: Some(after),
    } = e.class
    else {
        panic!("{e:?}");
    };
    assert!(
        after >= Duration::from_secs(28) && after <= Duration::from_secs(30),
        "{after:?}"
    );
    assert_eq!(e.code, "rate_limited");
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn rate_limit_on_upload_is_retryable() {
    let (fake, x) = setup().await;
    fake.rate_limit_next(
        "POST",
        "/2/media/upload/initialize",
        Duration::from_secs(10),
    );
    let e = x
        .publish(&request(&fake, Some("pic"), &["https://img.test/a.png"]))
        .await
        .unwrap_err();
    assert!(matches!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(_)
        }
    ));
    assert_eq!(fake.create_calls(), 0);
}

/// The wait a retryable failure asks for.
fn retry_after(e: &soku_core::connector::PublishError) -> Duration {
    match e.class {
        FailureClass::Retryable {
            retry_after: Some(after),
        } => after,
        _ => panic!("a retryable failure with a wait: {e:?}"),
    }
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn the_daily_cap_waits_for_the_24_hour_reset_not_the_15_minute_one() {
    let (fake, x) = setup().await;
    fake.set_post_limits(PostLimits {
        per_day_user: Some(2),
        ..PostLimits::default()
    });
    x.publish(&request(&fake, Some("First of the day"), &[]))
        .await
        .unwrap();
    x.publish(&request(&fake, Some("Second of the day"), &[]))
        .await
        .unwrap();
    let e = x
        .publish(&request(&fake, Some("One too many"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, "rate_limited");
    let after = retry_after(&e);
    // The 15-minute window has 98 requests left and resets in 15 minutes; the day's resets in
    // 24 hours, and that is the wait.
    assert!(
        after > 24 * HOUR - MINUTE && after <= 24 * HOUR,
        "{after:?}"
    );
    assert!(
        e.message.contains("24-hour limit for this account"),
        "{}",
        e.message
    );
    assert!(e.platform_error.as_deref().unwrap().contains("88"), "{e:?}");
    assert_eq!(fake.posts().len(), 2);
    assert_eq!(fake.create_calls(), 3);
}

#[tokio::test]
async fn the_app_daily_cap_is_waited_for_too() {
    let (fake, x) = setup().await;
    fake.set_post_limits(PostLimits {
        per_day_app: 1,
        day: 6 * HOUR,
        ..PostLimits::default()
    });
    x.publish(&request(&fake, Some("The app's only post today"), &[]))
        .await
        .unwrap();
    let e = x
        .publish(&request(&fake, Some("Over the app's cap"), &[]))
        .await
        .unwrap_err();
    let after = retry_after(&e);
    // The reset is in whole seconds, rounded up.
    assert!(
        after > 6 * HOUR - MINUTE && after <= 6 * HOUR + SECOND,
        "{after:?}"
    );
    assert!(e.message.contains("server's X app"), "{}", e.message);
}

#[tokio::test]
async fn a_15_minute_limit_still_waits_for_x_rate_limit_reset() {
    let (fake, x) = setup().await;
    // A daily cap with posts left does not make the post wait for the day's end.
    fake.set_post_limits(PostLimits {
        per_window: 1,
        per_day_user: Some(17),
        ..PostLimits::default()
    });
    x.publish(&request(&fake, Some("Once a quarter hour"), &[]))
        .await
        .unwrap();
    let e = x
        .publish(&request(&fake, Some("Too soon"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, "rate_limited");
    let after = retry_after(&e);
    assert!(
        after > 14 * MINUTE && after <= 15 * MINUTE + SECOND,
        "{after:?}"
    );
    assert_eq!(e.message, "X is rate limiting this account.");
    assert_eq!(fake.posts().len(), 1);
}

#[tokio::test]
async fn the_fake_answers_the_daily_cap_as_x_does_and_resets_it_with_the_day() {
    let (fake, x) = setup().await;
    fake.set_post_limits(PostLimits {
        per_day_user: Some(1),
        day: Duration::from_secs(2),
        ..PostLimits::default()
    });
    let acct = account(&fake);
    let client = reqwest::Client::new();
    let post = |text: &'static str| {
        client
            .post(format!("{}/2/tweets", fake.url))
            .bearer_auth(acct.access_token.as_deref().unwrap())
            .json(&json!({ "text": text }))
            .send()
    };
    let ok = post("Today's post").await.unwrap();
    assert_eq!(ok.status(), 201);
    let h = |r: &reqwest::Response, name: &str| -> i64 {
        r.headers()[name].to_str().unwrap().parse().unwrap()
    };
    assert_eq!(h(&ok, "x-user-limit-24hour-limit"), 1);
    assert_eq!(h(&ok, "x-user-limit-24hour-remaining"), 0);
    assert_eq!(h(&ok, "x-app-limit-24hour-remaining"), 9_999);
    assert_eq!(h(&ok, "x-rate-limit-remaining"), 99);

    let refused = post("Tomorrow's post").await.unwrap();
    assert_eq!(refused.status(), 429);
    let now = chrono::Utc::now().timestamp();
    // Unix seconds, rounded up: the window has ended by the announced second.
    assert!((now..=now + 3).contains(&h(&refused, "x-user-limit-24hour-reset")));
    assert!(h(&refused, "x-rate-limit-reset") >= now + 14 * 60);
    assert_eq!(
        h(&refused, "x-rate-limit-remaining"),
        99,
        "a refused post is not counted"
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "errors": [{ "code": 88, "message": "Rate limit exceeded" }] })
    );

    // Through the connector: refused until the day's window ends, then published.
    let e = x
        .publish(&request(&fake, Some("Tomorrow's post"), &[]))
        .await
        .unwrap_err();
    let after = retry_after(&e);
    assert!(after <= Duration::from_secs(3), "{after:?}");
    tokio::time::sleep(after).await;
    x.publish(&request(&fake, Some("Tomorrow's post"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.posts().len(), 2);
}

#[tokio::test]
async fn reconciliation_works_whichever_name_x_gives_the_fields_parameter() {
    for names in [
        &["post.fields"][..],
        &["tweet.fields"][..],
        &["tweet.fields", "post.fields"][..],
    ] {
        let (fake, x) = setup().await;
        fake.accept_fields_parameters(names);
        // An image post: its match needs `attachments`, which only the fields parameter gives.
        let req = request(&fake, Some("Fields"), &["https://img.test/a.png"]);
        fake.faults.push(
            "POST",
            "/2/tweets",
            Fault::DelayAfterEffect(Duration::from_secs(3)),
        );
        assert_eq!(
            x.publish(&req).await.unwrap_err().class,
            FailureClass::Ambiguous
        );
        let Existing::Found(found) = x.find_existing(&req).await.unwrap() else {
            panic!("the post should be found when X knows only {names:?}");
        };
        assert_eq!(found.id, fake.posts()[0].id);
        let first = fake.timeline_calls();
        let refused = usize::from(names == ["post.fields"]);
        assert_eq!(first, 1 + refused, "{names:?}");
        // The name X accepted is kept: the next lookup asks once.
        assert!(matches!(
            x.find_existing(&req).await.unwrap(),
            Existing::Found(_)
        ));
        assert_eq!(fake.timeline_calls(), first + 1, "{names:?}");
    }
}

#[tokio::test]
async fn the_fake_refuses_the_fields_parameter_by_a_name_it_does_not_know() {
    let (fake, _x) = setup().await;
    let token = account(&fake).access_token.unwrap();
    let client = reqwest::Client::new();
    let timeline = format!("{}/2/users/{}/tweets", fake.url, fake::USER_ID);
    let ask = |name: &'static str, value: &'static str| {
        client
            .get(&timeline)
            .bearer_auth(&token)
            .query(&[(name, value)])
            .send()
    };
    assert_eq!(
        ask("tweet.fields", "created_at").await.unwrap().status(),
        200
    );
    assert_eq!(
        ask("post.fields", "created_at").await.unwrap().status(),
        200
    );
    // Each name takes its own values.
    assert_eq!(
        ask("post.fields", "note_tweet").await.unwrap().status(),
        400
    );
    assert_eq!(ask("post.fields", "note_post").await.unwrap().status(), 200);

    fake.accept_fields_parameters(&["post.fields"]);
    let r = ask("tweet.fields", "created_at").await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["parameters"]["tweet.fields"].is_array(),
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("The query parameter [tweet.fields] is not one of"),
        "{body}"
    );
}

#[tokio::test]
async fn server_error_on_create_is_ambiguous() {
    let (fake, x) = setup().await;
    fake.fail_next("POST", "/2/tweets");
    let e = x
        .publish(&request(&fake, Some("Maybe"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(e.code, "platform_error");
}

#[tokio::test]
async fn server_error_on_upload_is_retryable() {
    let (fake, x) = setup().await;
    fake.fail_next("POST", "/2/media/upload/");
    let e = x
        .publish(&request(&fake, Some("pic"), &["https://img.test/a.png"]))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(fake.create_calls(), 0);
}

#[tokio::test]
async fn timeout_after_sending_is_reconciled_to_the_post_made() {
    let (fake, x) = setup().await;
    let text = "Launch day & more: https://example.com/launch?ref=soku";
    let req = request(&fake, Some(text), &[]);
    fake.faults.push(
        "POST",
        "/2/tweets",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "timeout")
    );

    let made = fake.posts();
    assert_eq!(made.len(), 1, "the post was made before the timeout");
    let Existing::Found(found) = x.find_existing(&req).await.unwrap() else {
        panic!("the post should be found");
    };
    assert_eq!(found.id, made[0].id);
    assert_eq!(
        found.url.as_deref(),
        Some(format!("https://x.com/{}/status/{}", fake::USERNAME, made[0].id).as_str())
    );
    assert_eq!(fake.posts().len(), 1, "no second post");
    assert_eq!(fake.create_calls(), 1);
}

#[tokio::test]
async fn timeout_after_sending_an_image_post_is_reconciled() {
    let (fake, x) = setup().await;
    let req = request(
        &fake,
        Some("Two pictures"),
        &["https://img.test/a.png", "https://img.test/b.jpg"],
    );
    // Same text with a different number of images: not ours.
    fake.faults.push(
        "POST",
        "/2/tweets",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    let Existing::Found(found) = x.find_existing(&req).await.unwrap() else {
        panic!("the post should be found");
    };
    assert_eq!(found.id, fake.posts()[0].id);

    let mut fewer = req.clone();
    fewer.content.image_urls.pop();
    assert_eq!(x.find_existing(&fewer).await.unwrap(), Existing::NotFound);
}

#[tokio::test]
async fn reconciliation_finds_nothing_when_nothing_was_made() {
    let (fake, x) = setup().await;
    // The same text posted two hours ago is older than this target: not ours.
    fake.seed_post("Nothing to see", Duration::from_secs(7200));
    fake.seed_post("Something else, just now", Duration::ZERO);
    let req = request(&fake, Some("Nothing to see"), &[]);
    fake.fail_next("POST", "/2/tweets");
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(x.find_existing(&req).await.unwrap(), Existing::NotFound);
}

#[tokio::test]
async fn reconciliation_reads_further_pages() {
    let (fake, x) = setup().await;
    let req = request(&fake, Some("Buried post"), &[]);
    x.publish(&req).await.unwrap();
    for i in 0..150 {
        fake.seed_post(&format!("later post {i}"), Duration::ZERO);
    }
    let Existing::Found(found) = x.find_existing(&req).await.unwrap() else {
        panic!("the post should be found on the second page");
    };
    assert_eq!(found.id, fake.posts()[0].id);
}

#[tokio::test]
async fn a_failed_lookup_is_an_error() {
    let (fake, x) = setup().await;
    let req = request(&fake, Some("Lookup"), &[]);
    fake.fail_next("GET", "/2/users/");
    let e = x.find_existing(&req).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");

    let mut unknown = req.clone();
    unknown.account.account_id = "999".into();
    let e = x.find_existing(&unknown).await.unwrap_err();
    assert_eq!(e.code, "lookup_failed");
}

#[tokio::test]
async fn an_expired_token_is_token_invalid() {
    let (fake, x) = setup().await;
    let req = request(&fake, Some("Expired"), &[]);
    fake.expire_access_tokens();
    let e = x.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    // A token issued after that works.
    x.publish(&request(&fake, Some("pic"), &["https://img.test/a.png"]))
        .await
        .unwrap();
    let mut no_token = req.clone();
    no_token.account.access_token = None;
    assert_eq!(x.publish(&no_token).await.unwrap_err().code, TOKEN_INVALID);
    assert_eq!(x.find_existing(&req).await.unwrap_err().code, TOKEN_INVALID);
}

#[tokio::test]
async fn duplicate_content_is_permanent() {
    let (fake, x) = setup().await;
    x.publish(&request(&fake, Some("Same words"), &[]))
        .await
        .unwrap();
    let e = x
        .publish(&request(&fake, Some("Same words"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "duplicate_content")
    );
    assert!(e.platform_error.unwrap().contains("duplicate content"));
    assert_eq!(fake.posts().len(), 1);
}

#[tokio::test]
async fn text_over_280_is_refused_by_the_fake_as_by_x() {
    let (fake, x) = setup().await;
    let e = x
        .publish(&request(&fake, Some(&"a".repeat(281)), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "text_too_long")
    );
    // CJK characters weigh 2.
    let e = x
        .publish(&request(&fake, Some(&"日".repeat(141)), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, "text_too_long");
    x.publish(&request(&fake, Some(&"a".repeat(280)), &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn too_many_images_are_refused_before_any_call() {
    let (fake, x) = setup().await;
    let images = ["https://img.test/a.png"; 5];
    let e = x
        .publish(&request(&fake, Some("five"), &images))
        .await
        .unwrap_err();
    assert_eq!(e.code, "too_many_images");
    assert!(fake.uploads().is_empty());
}

#[tokio::test]
async fn the_fake_rejects_malformed_requests() {
    let (fake, _x) = setup().await;
    let acct = account(&fake);
    let token = acct.access_token.unwrap();
    let client = reqwest::Client::new();
    let tweets = format!("{}/2/tweets", fake.url);

    // A misspelt field.
    let r = client
        .post(&tweets)
        .bearer_auth(&token)
        .json(&json!({ "txt": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["title"], "Invalid Request");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("txt")
    );

    // `text` of the wrong type.
    let r = client
        .post(&tweets)
        .bearer_auth(&token)
        .json(&json!({ "text": 42 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Neither text nor media.
    let r = client
        .post(&tweets)
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Media ids it never issued.
    let r = client
        .post(&tweets)
        .bearer_auth(&token)
        .json(&json!({ "text": "x", "media": { "media_ids": ["1234567890"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["message"], "Your media IDs are invalid.");

    // Not JSON.
    let r = client
        .post(&tweets)
        .bearer_auth(&token)
        .body("text=hello")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No bearer token, an unknown one.
    let r = client
        .post(&tweets)
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .post(&tweets)
        .bearer_auth("xat_forged")
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Timeline: milliseconds in start_time, max_results out of range.
    let timeline = format!("{}/2/users/{}/tweets", fake.url, fake::USER_ID);
    for query in [
        [
            ("start_time", "2024-01-01T00:00:00.000Z"),
            ("max_results", "10"),
        ],
        [
            ("start_time", "2024-01-01T00:00:00Z"),
            ("max_results", "500"),
        ],
    ] {
        let r = client
            .get(&timeline)
            .bearer_auth(&token)
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }

    // Media: a declared type the bytes do not match, a size that does not add up.
    let init = |media_type: &str, total: usize| {
        client
            .post(format!("{}/2/media/upload/initialize", fake.url))
            .bearer_auth(&token)
            .json(&json!({ "media_type": media_type, "total_bytes": total,
                           "media_category": "tweet_image" }))
            .send()
    };
    let r = init("image/gif", 10).await.unwrap();
    assert_eq!(r.status(), 400, "a GIF is not a tweet_image");
    let r = init("image/png", 6 * 1024 * 1024).await.unwrap();
    assert_eq!(r.status(), 400, "over 5 MB");
    let id = init("image/png", JPEG.len())
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = reqwest::multipart::Part::bytes(JPEG.to_vec()).file_name("a");
    let form = reqwest::multipart::Form::new()
        .text("segment_index", "0")
        .part("media", part);
    let r = client
        .post(format!("{}/2/media/upload/{id}/append", fake.url))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{}/2/media/upload/{id}/finalize", fake.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "JPEG bytes declared as PNG");
    // An append without `media`.
    let form = reqwest::multipart::Form::new().text("segment_index", "1");
    let r = client
        .post(format!("{}/2/media/upload/{id}/append", fake.url))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Token endpoint: no client authentication.
    let r = client
        .post(format!("{}/2/oauth2/token", fake.url))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(fake.posts().len(), 0);
}

// ---------------------------------------------------------------------------------------------
// Video

const MIB: usize = 1024 * 1024;
const FILM: &str = "https://media.test/media/med_film/film.mp4";
const SHORT: &str = "https://media.test/media/med_short/short.mp4";

/// A 9 MiB MP4 (three segments) and a small one.
fn videos() -> (Vec<u8>, Vec<u8>) {
    (
        media_files::mp4(1280, 720, 10_000, 9 * MIB),
        media_files::mp4(640, 360, 3_000, 20_000),
    )
}

fn streamed() -> Arc<StreamedMedia> {
    let (film, short) = videos();
    StreamedMedia::new(media(), [(FILM, film), (SHORT, short)], true)
}

/// The connector as a process runs it: waiting `wait` at most for processing.
fn video_x(fake: &XFake, media: &Arc<StreamedMedia>, wait: Duration) -> X {
    X::new(settings(fake), media.clone()).with_video_processing_wait(wait)
}

/// A video post whose progress is kept in `saves`, starting from `saved`.
fn video_request(fake: &XFake, url: &str, saves: &Arc<Saves>, saved: Value) -> PublishRequest {
    let mut req = request(fake, Some("Our film"), &[]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some(url.to_owned());
    req.progress = Progress::new(saved, saves.clone());
    req
}

#[tokio::test]
async fn a_video_is_streamed_up_in_segments_and_posted() {
    let fake = XFake::start().await;
    let media = streamed();
    let x = video_x(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    let post = x
        .publish(&video_request(&fake, FILM, &saves, Value::Null))
        .await
        .unwrap();

    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].text, "Our film");
    assert_eq!(posts[0].media_ids.len(), 1);
    let id = &posts[0].media_ids[0];
    let upload = fake.upload(id).unwrap();
    let (film, _) = videos();
    assert_eq!(upload.media_category, "tweet_video");
    assert_eq!(upload.media_type, "video/mp4");
    assert_eq!(upload.total_bytes, film.len() as u64);
    assert!(upload.bytes == film, "the bytes X holds are the file's");
    // Three segments of at most 4 MiB, in order from 0, cut across the stream's pieces.
    assert_eq!(
        upload.appends,
        vec![(0, 4 * MIB), (1, 4 * MIB), (2, film.len() - 8 * MIB)]
    );
    // Processing was waited for: pending at FINALIZE, then STATUS.
    assert_eq!(upload.states, ["in_progress", "succeeded"]);
    assert_eq!(fake.init_calls(), 1);
    assert_eq!(media.streams(), 1);
    assert!(media.images.asked.lock().unwrap().is_empty());

    // Progress saved after INIT, then after FINALIZE.
    let saved = saves.all();
    assert_eq!(saved.len(), 2, "{saved:?}");
    assert_eq!(saved[0]["media_id"], json!(id));
    assert_eq!(saved[0]["uploaded"], json!(false));
    assert_eq!(saved[0]["video_url"], json!(FILM));
    assert_eq!(saved[1]["media_id"], json!(id));
    assert_eq!(saved[1]["uploaded"], json!(true));
    assert!(saved[1]["expires_at"].as_i64().unwrap() > chrono::Utc::now().timestamp());

    // Reconciliation counts the video as the post's one attachment.
    let found = x
        .find_existing(&video_request(&fake, FILM, &saves, Value::Null))
        .await
        .unwrap();
    assert_eq!(found, Existing::Found(post));
}

#[tokio::test]
async fn slow_video_processing_is_waited_for() {
    let fake = XFake::start().await;
    fake.set_video_processing_steps(3);
    let media = streamed();
    let x = video_x(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    x.publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap();
    let upload = fake.upload(&fake.posts()[0].media_ids[0]).unwrap();
    assert_eq!(
        upload.states,
        ["in_progress", "in_progress", "in_progress", "succeeded"]
    );
    assert_eq!(upload.appends, vec![(0, upload.total_bytes as usize)]);
    assert_eq!(fake.init_calls(), 1);
}

#[tokio::test]
async fn failed_video_processing_is_permanent() {
    let fake = XFake::start().await;
    fake.fail_video_processing(Some("Unsupported video format"));
    let media = streamed();
    let x = video_x(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    let e = x
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_processing_failed")
    );
    assert_eq!(
        e.platform_error.as_deref(),
        Some("Unsupported video format")
    );
    assert!(
        e.message.contains("Unsupported video format"),
        "{}",
        e.message
    );
    assert_eq!(fake.create_calls(), 0);
}

#[tokio::test]
async fn a_restart_after_finalize_does_not_upload_again() {
    let fake = XFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    // The first process uploads and finalizes; its first STATUS poll fails.
    fake.fail_next("GET", "/2/media/upload");
    let first = video_x(&fake, &media, Duration::from_secs(30));
    let e = first
        .publish(&video_request(&fake, FILM, &saves, Value::Null))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(fake.init_calls(), 1);
    let saved = saves.last();
    assert_eq!(saved["uploaded"], json!(true));
    let id = saved["media_id"].as_str().unwrap().to_owned();
    drop(first);

    // Another process takes the target over with what was saved.
    let second = video_x(&fake, &media, Duration::from_secs(30));
    let post = second
        .publish(&video_request(&fake, FILM, &saves, saved))
        .await
        .unwrap();
    assert_eq!(fake.init_calls(), 1, "no second upload");
    assert_eq!(media.streams(), 1);
    assert_eq!(fake.upload(&id).unwrap().appends.len(), 3);
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].media_ids, [id]);
}

#[tokio::test]
async fn a_media_id_x_forgot_is_uploaded_again() {
    let fake = XFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    fake.fail_next("GET", "/2/media/upload");
    let x = video_x(&fake, &media, Duration::from_secs(30));
    x.publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    let saved = saves.last();
    let old = saved["media_id"].as_str().unwrap().to_owned();
    fake.expire_upload(&old);

    x.publish(&video_request(&fake, SHORT, &saves, saved))
        .await
        .unwrap();
    assert_eq!(fake.init_calls(), 2);
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_ne!(posts[0].media_ids, [old]);
    assert_eq!(saves.last()["media_id"], json!(posts[0].media_ids[0]));

    // Saved progress about another video, or an upload never finalized, is not resumed.
    let before = fake.init_calls();
    let other = json!({ "video_url": FILM, "media_id": posts[0].media_ids[0], "uploaded": true });
    let mut req = video_request(&fake, SHORT, &saves, other);
    req.content.text = Some("Again, once".into());
    x.publish(&req).await.unwrap();
    assert_eq!(fake.init_calls(), before + 1);
    let unfinished =
        json!({ "video_url": SHORT, "media_id": posts[0].media_ids[0], "uploaded": false });
    let mut req = video_request(&fake, SHORT, &saves, unfinished);
    req.content.text = Some("And once more".into());
    x.publish(&req).await.unwrap();
    assert_eq!(fake.init_calls(), before + 2);
}

#[tokio::test]
async fn a_processing_wait_that_runs_out_is_retryable_and_resumed() {
    let fake = XFake::start().await;
    fake.set_video_processing_steps(2);
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let x = video_x(&fake, &media, Duration::from_millis(1500));
    let e = x
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "media_processing");
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(1))
        }
    );
    assert_eq!(fake.create_calls(), 0);
    let saved = saves.last();
    assert_eq!(saved["uploaded"], json!(true));
    let id = saved["media_id"].as_str().unwrap().to_owned();
    assert_eq!(fake.upload(&id).unwrap().states, ["in_progress"]);

    // The next attempt polls again: no second upload, and the post carries the media.
    x.publish(&video_request(&fake, SHORT, &saves, saved))
        .await
        .unwrap();
    assert_eq!(fake.init_calls(), 1);
    assert_eq!(
        fake.upload(&id).unwrap().states,
        ["in_progress", "in_progress", "succeeded"]
    );
    assert_eq!(fake.posts()[0].media_ids, [id]);
}

#[tokio::test]
async fn the_fake_checks_video_uploads_as_x_does() {
    let fake = XFake::start().await;
    let token = account(&fake).access_token.unwrap();
    let client = reqwest::Client::new();
    let init = |media_type: &str, category: &str, total: usize| {
        client
            .post(format!("{}/2/media/upload/initialize", fake.url))
            .bearer_auth(&token)
            .json(&json!({ "media_type": media_type, "total_bytes": total,
                           "media_category": category }))
            .send()
    };
    let append = |id: &str, index: &str, bytes: Vec<u8>| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("v.mp4");
        let form = reqwest::multipart::Form::new()
            .text("segment_index", index.to_owned())
            .part("media", part);
        client
            .post(format!("{}/2/media/upload/{id}/append", fake.url))
            .bearer_auth(&token)
            .multipart(form)
            .send()
    };
    let finalize = |id: &str| {
        client
            .post(format!("{}/2/media/upload/{id}/finalize", fake.url))
            .bearer_auth(&token)
            .send()
    };
    let (_, short) = videos();
    assert_eq!(
        init("image/png", "tweet_video", 10).await.unwrap().status(),
        400
    );
    assert_eq!(
        init("video/mp4", "tweet_video", 0).await.unwrap().status(),
        400
    );
    assert_eq!(
        init("video/mp4", "tweet_video", 513 * MIB)
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        init("video/avi", "tweet_video", 10).await.unwrap().status(),
        400
    );
    let id = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let media = id(init("video/mp4", "tweet_video", short.len()).await.unwrap()).await;
    let (a, b) = short.split_at(10_000);
    // Out of order, then in order; the last segment again is a retry.
    assert_eq!(append(&media, "1", b.to_vec()).await.unwrap().status(), 400);
    assert_eq!(append(&media, "0", a.to_vec()).await.unwrap().status(), 200);
    assert_eq!(append(&media, "0", a.to_vec()).await.unwrap().status(), 200);
    // More than total_bytes.
    let mut long = b.to_vec();
    long.push(0);
    assert_eq!(append(&media, "1", long).await.unwrap().status(), 400);
    // Short of total_bytes at FINALIZE.
    let r = finalize(&media).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("mismatch"),
        "{body}"
    );
    assert_eq!(append(&media, "1", b.to_vec()).await.unwrap().status(), 200);
    let r = finalize(&media).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["processing_info"]["state"], "pending");
    assert_eq!(body["data"]["processing_info"]["check_after_secs"], 1);
    // Not postable until processed.
    let r = client
        .post(format!("{}/2/tweets", fake.url))
        .bearer_auth(&token)
        .json(&json!({ "text": "early", "media": { "media_ids": [media] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // STATUS of an id it never issued.
    let r = client
        .get(format!("{}/2/media/upload", fake.url))
        .bearer_auth(&token)
        .query(&[("command", "STATUS"), ("media_id", "1234567890")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fake.init_calls(), 5);
}
