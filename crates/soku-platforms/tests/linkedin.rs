//! The LinkedIn connector against the loopback fake of LinkedIn (`soku_fakes::linkedin`).

mod support;

use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    Connector, Existing, FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PostContent};
use soku_fakes::Fault;
use soku_fakes::linkedin::{
    CLIENT_ID, LinkedInFake, MEMBER_NAME, MEMBER_SUB, REDIRECT_URI, RefreshMode,
};
use soku_fakes::media_files;
use soku_platforms::PlatformSettings;
use soku_platforms::linkedin::{LINKEDIN_VERSION, LinkedIn, SCOPES};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::{MemoryMedia, Saves, StreamedMedia, approve_at};

const WRITE_SCOPE: &str = "openid,profile,w_member_social";

fn png(w: u32, h: u32, tag: u8) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, tag, tag, tag]);
    b
}

fn jpeg(tag: u8) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    b.extend_from_slice(b"JFIF\0");
    b.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);
    b.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x02, 0x00, 0x03, 0x00, tag]);
    b
}

fn media() -> Arc<MemoryMedia> {
    MemoryMedia::new([
        ("https://img.test/a.png", png(1200, 800, 1)),
        ("https://img.test/b.jpg", jpeg(2)),
        (
            "https://img.test/c.gif",
            b"GIF89a\x10\x00\x10\x00gif".to_vec(),
        ),
        ("https://img.test/huge.png", png(10_000, 10_000, 3)),
        (
            "https://img.test/d.webp",
            b"RIFF\0\0\0\0WEBPVP8 data".to_vec(),
        ),
    ])
}

fn settings(fake: &LinkedInFake) -> PlatformSettings {
    PlatformSettings {
        api_url: fake.url.clone(),
        auth_url: fake.auth_url(),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(soku_fakes::linkedin::CLIENT_SECRET.into()),
        timeout: Duration::from_secs(1),
    }
}

async fn setup() -> (LinkedInFake, LinkedIn) {
    let fake = LinkedInFake::start().await;
    let li = LinkedIn::new(settings(&fake), media());
    (fake, li)
}

fn account(
    fake: &LinkedInFake,
    access: Option<String>,
    refresh: Option<String>,
) -> AccountCredentials {
    AccountCredentials {
        account_id: MEMBER_SUB.into(),
        username: None,
        access_token: access,
        refresh_token: refresh,
        meta: json!({"author_urn": fake.author_urn()}),
    }
}

fn request(account: AccountCredentials, text: Option<&str>, images: &[&str]) -> PublishRequest {
    PublishRequest {
        marker: "sub_1:linkedin:782bbtaQ".into(),
        user_id: "user_1".into(),
        submission_id: "sub_1".into(),
        target_id: "linkedin:782bbtaQ".into(),
        platform: Platform::Linkedin,
        account,
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
        not_before: chrono::Utc::now() - chrono::Duration::seconds(5),
    }
}

async fn post_request(fake: &LinkedInFake, text: &str, images: &[&str]) -> PublishRequest {
    let token = fake.mint_access_token(WRITE_SCOPE);
    request(account(fake, Some(token), None), Some(text), images)
}

fn auth_request(state: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: state.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_challenge: "unused-by-linkedin".into(),
        params: json!({"platform": "linkedin"}),
    }
}

fn exchange_of(code: &str) -> CodeExchange {
    CodeExchange {
        code: code.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: "unused-by-linkedin".into(),
        pending: json!({}),
    }
}

#[tokio::test]
async fn oauth_round_trip_connects_the_member() {
    let (fake, li) = setup().await;
    assert_eq!(li.connect_method(), ConnectMethod::OAuth);
    let start = li.authorize(&auth_request("st/ate+1")).await.unwrap();

    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth/v2/authorization");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["state"], "st/ate+1");
    assert_eq!(q["scope"], SCOPES);
    assert!(
        start
            .url
            .contains("scope=openid%20profile%20w_member_social")
    );

    let (status, cb) = approve_at(REDIRECT_URI, &start.url).await;
    assert_eq!(status, reqwest::StatusCode::FOUND);
    assert_eq!(cb["state"], "st/ate+1");

    let acct = li.exchange(&exchange_of(&cb["code"])).await.unwrap();
    assert_eq!(acct.account_id, MEMBER_SUB);
    assert_eq!(acct.username, None);
    assert_eq!(acct.display_name.as_deref(), Some(MEMBER_NAME));
    assert_eq!(
        acct.meta["author_urn"],
        format!("urn:li:person:{MEMBER_SUB}")
    );
    assert_eq!(acct.meta["refresh_token_issued"], true);
    assert!(fake.access_token_valid(&acct.tokens.access_token));
    assert!(acct.tokens.refresh_token.is_some());
    let expires = acct.tokens.expires_at.unwrap() - chrono::Utc::now();
    assert!(expires > chrono::Duration::days(59) && expires <= chrono::Duration::days(60));
    // Secrets stay out of Debug output.
    let debug = format!("{acct:?} {li:?}");
    assert!(!debug.contains(&acct.tokens.access_token));
    assert!(!debug.contains("test-client-secret"));

    // The connected account can post.
    let creds = AccountCredentials {
        account_id: acct.account_id.clone(),
        username: acct.username.clone(),
        access_token: Some(acct.tokens.access_token.clone()),
        refresh_token: acct.tokens.refresh_token.clone(),
        meta: acct.meta.clone(),
    };
    let post = li
        .publish(&request(creds, Some("connected"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.posts()[0].urn, post.id);
}

#[tokio::test]
async fn a_code_works_once_and_only_with_its_redirect_uri() {
    let (_fake, li) = setup().await;
    let (_, cb) = approve_at(
        REDIRECT_URI,
        &li.authorize(&auth_request("s1")).await.unwrap().url,
    )
    .await;
    li.exchange(&exchange_of(&cb["code"])).await.unwrap();
    let replay = li.exchange(&exchange_of(&cb["code"])).await.unwrap_err();
    assert_eq!(replay.kind, ConnectErrorKind::Rejected);
    assert!(replay.platform_error.unwrap().contains("invalid_request"));

    let (_, cb) = approve_at(
        REDIRECT_URI,
        &li.authorize(&auth_request("s2")).await.unwrap().url,
    )
    .await;
    let mut other = exchange_of(&cb["code"]);
    other.redirect_uri = "https://elsewhere.test/callback".into();
    let e = li.exchange(&other).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
}

#[tokio::test]
async fn the_authorization_page_refuses_bad_requests() {
    let (fake, li) = setup().await;
    let url = li.authorize(&auth_request("s")).await.unwrap().url;
    for (from, to) in [
        (
            format!("client_id={CLIENT_ID}"),
            "client_id=someone-else".to_owned(),
        ),
        (
            "response_type=code".to_owned(),
            "response_type=token".to_owned(),
        ),
        (
            "redirect_uri=https".to_owned(),
            "redirect_uri=http".to_owned(),
        ),
    ] {
        let (status, _) = approve_at(REDIRECT_URI, &url.replace(&from, &to)).await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{to}");
    }

    // Wrong client secret at the token endpoint.
    let mut s = settings(&fake);
    s.client_secret = Some("wrong".into());
    let wrong = LinkedIn::new(s, media());
    let (_, cb) = approve_at(REDIRECT_URI, &url).await;
    let e = wrong.exchange(&exchange_of(&cb["code"])).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.platform_error.unwrap().contains("invalid_client"));

    // No client id configured.
    let mut s = settings(&fake);
    s.client_id = None;
    let e = LinkedIn::new(s, media())
        .authorize(&auth_request("s"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured);
}

#[tokio::test]
async fn an_app_without_refresh_tokens_connects_but_cannot_refresh() {
    let (fake, li) = setup().await;
    fake.set_issue_refresh_tokens(false);
    let (_, cb) = approve_at(
        REDIRECT_URI,
        &li.authorize(&auth_request("s")).await.unwrap().url,
    )
    .await;
    let acct = li.exchange(&exchange_of(&cb["code"])).await.unwrap();
    assert_eq!(acct.tokens.refresh_token, None);
    assert_eq!(acct.meta["refresh_token_issued"], false);

    let e = li
        .refresh(&account(&fake, Some(acct.tokens.access_token), None))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotRefreshable);
    assert!(e.message.contains("reconnect"), "{}", e.message);
}

#[tokio::test]
async fn refresh_rotates_keeps_and_fails() {
    let (fake, li) = setup().await;
    let refresh = fake.mint_refresh_token(WRITE_SCOPE);
    let acct = account(&fake, None, Some(refresh.clone()));

    // LinkedIn hands the same refresh token back.
    let t = li.refresh(&acct).await.unwrap();
    assert_eq!(t.refresh_token.as_deref(), Some(refresh.as_str()));
    assert!(fake.access_token_valid(&t.access_token));
    assert!(t.expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::days(59));

    // No refresh token in the answer: None, so the store keeps the one it has.
    fake.set_refresh_mode(RefreshMode::Omit);
    let t = li.refresh(&acct).await.unwrap();
    assert_eq!(t.refresh_token, None);

    // A rotated one replaces it; the old one stops working.
    fake.set_refresh_mode(RefreshMode::Rotate);
    let t = li.refresh(&acct).await.unwrap();
    let new = t.refresh_token.unwrap();
    assert_ne!(new, refresh);
    let e = li.refresh(&acct).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);

    // Revoked: Rejected (needs reconnect). LinkedIn down or throttling: Unavailable.
    let acct = account(&fake, None, Some(new.clone()));
    fake.push_server_error("POST", "/oauth/v2/accessToken", 503);
    assert_eq!(
        li.refresh(&acct).await.unwrap_err().kind,
        ConnectErrorKind::Unavailable
    );
    fake.push_rate_limit("POST", "/oauth/v2/accessToken", Some(3));
    assert_eq!(
        li.refresh(&acct).await.unwrap_err().kind,
        ConnectErrorKind::Unavailable
    );
    fake.revoke_refresh_token(&new);
    assert_eq!(
        li.refresh(&acct).await.unwrap_err().kind,
        ConnectErrorKind::Rejected
    );
}

#[tokio::test]
async fn a_token_answer_without_a_lifetime_is_taken_to_live_sixty_days() {
    let (fake, li) = setup().await;
    let refresh = fake.mint_refresh_token(WRITE_SCOPE);
    fake.faults.reply(
        "POST",
        "/oauth/v2/accessToken",
        200,
        &[],
        json!({"access_token": "li-new", "scope": SCOPES}),
    );
    let t = li
        .refresh(&account(&fake, None, Some(refresh)))
        .await
        .unwrap();
    let left = support::lifetime_left(&t, li.refresh_ahead());
    assert!((ASSUMED - 10..=ASSUMED).contains(&left), "{left}");
}

const ASSUMED: i64 = 60 * 24 * 3600;

#[tokio::test]
async fn text_post_is_escaped_little_text() {
    let (fake, li) = setup().await;
    let text = "Shipping v2 (finally) #rust @team_lead <3 ~50% *faster* [beta] {x|y} C# a\\b";
    let post = li
        .publish(&post_request(&fake, text, &[]).await)
        .await
        .unwrap();

    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(post.id, p.urn);
    assert!(post.id.starts_with("urn:li:share:"));
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.linkedin.com/feed/update/{}/", p.urn).as_str())
    );
    assert_eq!(
        p.commentary,
        "Shipping v2 \\(finally\\) #rust \\@team\\_lead \\<3 \\~50% \\*faster\\* \\[beta\\] \\{x\\|y\\} C\\# a\\\\b"
    );
    assert_eq!(p.author, fake.author_urn());
    assert_eq!(p.body["visibility"], "PUBLIC");
    assert_eq!(p.body["lifecycleState"], "PUBLISHED");
    assert_eq!(p.body["distribution"]["feedDistribution"], "MAIN_FEED");
    assert_eq!(p.body["isReshareDisabledByAuthor"], false);
    assert!(p.body.get("content").is_none());
}

#[tokio::test]
async fn single_image_is_uploaded_then_referenced() {
    let (fake, li) = setup().await;
    let req = post_request(&fake, "one picture", &["https://img.test/a.png"]).await;
    li.publish(&req).await.unwrap();

    let images = fake.images();
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0].bytes.as_deref(),
        Some(png(1200, 800, 1).as_slice())
    );
    assert_eq!(images[0].owner, fake.author_urn());
    let p = &fake.posts()[0];
    assert_eq!(p.body["content"], json!({"media": {"id": images[0].urn}}));
}

#[tokio::test]
async fn several_images_make_a_multi_image_post() {
    let (fake, li) = setup().await;
    let urls = [
        "https://img.test/a.png",
        "https://img.test/b.jpg",
        "https://img.test/c.gif",
    ];
    let req = post_request(&fake, "three pictures", &urls).await;
    li.publish(&req).await.unwrap();

    let images = fake.images();
    assert_eq!(images.len(), 3);
    assert_eq!(images[1].bytes.as_deref(), Some(jpeg(2).as_slice()));
    let p = &fake.posts()[0];
    let ids: Vec<Value> = images.iter().map(|i| json!({"id": i.urn})).collect();
    assert_eq!(p.body["content"], json!({"multiImage": {"images": ids}}));
    assert_eq!(p.images.len(), 3);
}

#[tokio::test]
async fn images_outside_linkedins_limits_are_refused_before_upload() {
    let (fake, li) = setup().await;
    let e = li
        .publish(&post_request(&fake, "huge", &["https://img.test/huge.png"]).await)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_too_large")
    );
    let e = li
        .publish(&post_request(&fake, "webp", &["https://img.test/d.webp"]).await)
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert_eq!(fake.images().len(), 0);
    assert_eq!(fake.create_calls(), 0);
}

#[tokio::test]
async fn rate_limits_are_retryable_after_their_wait() {
    let (fake, li) = setup().await;
    fake.push_rate_limit("POST", "/rest/posts", Some(7));
    let e = li
        .publish(&post_request(&fake, "later", &[]).await)
        .await
        .unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(e.code, "rate_limited");
    assert!(e.platform_error.unwrap().contains("TOO_MANY_REQUESTS"));

    // A spent daily limit, no header: wait until midnight UTC.
    fake.push_rate_limit("POST", "/rest/images", None);
    let e = li
        .publish(&post_request(&fake, "later", &["https://img.test/a.png"]).await)
        .await
        .unwrap_err();
    let FailureClass::Retryable {
        retry_after: Some(wait),
    } = e.class
    else {
        panic!("{e:?}");
    };
    assert!(wait > Duration::ZERO && wait <= Duration::from_secs(24 * 3600));
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn server_errors_are_ambiguous_only_when_creating() {
    let (fake, li) = setup().await;
    fake.push_server_error("POST", "/rest/posts", 503);
    let e = li
        .publish(&post_request(&fake, "maybe", &[]).await)
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);

    fake.push_server_error("POST", "/rest/images", 500);
    let e = li
        .publish(&post_request(&fake, "img", &["https://img.test/a.png"]).await)
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");

    fake.push_server_error("PUT", "/dms-uploads/", 502);
    let e = li
        .publish(&post_request(&fake, "img", &["https://img.test/a.png"]).await)
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    // The scripted 503 answered before the handler: nothing was created.
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn a_timeout_after_sending_ends_in_cannot_tell() {
    let (fake, li) = setup().await;
    let saves = Arc::new(Saves::default());
    let mut req = post_request(&fake, "did it go out?", &[]).await;
    req.progress = Progress::new(Value::Null, saves.clone());
    fake.faults.push(
        "POST",
        "/rest/posts",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let e = li.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "timeout")
    );
    // `post_sent` was saved before the call.
    assert_eq!(saves.last()["post_sent"], json!(true));
    // The post exists on LinkedIn, but LinkedIn offers this app no way to look it up: the
    // engine marks the target unknown and does not post again.
    assert_eq!(fake.posts().len(), 1);
    let mut after = post_request(&fake, "did it go out?", &[]).await;
    after.progress = Progress::new(saves.last(), saves.clone());
    assert_eq!(
        li.find_existing(&after).await.unwrap(),
        Existing::CannotTell
    );
    // An attempt that finds it saved does not post again.
    let e = li.publish(&after).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "outcome_unknown")
    );
    assert_eq!(fake.create_calls(), 1);
    assert_eq!(fake.posts().len(), 1);

    // Nothing was sent: NotFound, and no call is made.
    let other = post_request(&fake, "never sent", &[]).await;
    assert_eq!(li.find_existing(&other).await.unwrap(), Existing::NotFound);
    assert_eq!(fake.create_calls(), 1);
}

/// A definite refusal of the post clears `post_sent`: nothing was posted.
#[tokio::test]
async fn a_refused_post_clears_post_sent() {
    let (fake, li) = setup().await;
    let saves = Arc::new(Saves::default());
    let mut req = post_request(&fake, "refused", &[]).await;
    req.progress = Progress::new(Value::Null, saves.clone());
    fake.faults.reply(
        "POST",
        "/rest/posts",
        422,
        &[],
        json!({"status": 422, "message": "ERROR :: /commentary :: is invalid"}),
    );
    let e = li.publish(&req).await.unwrap_err();
    assert_ne!(e.class, FailureClass::Ambiguous, "{e:?}");
    let saved = saves.all();
    assert_eq!(
        saved.first().unwrap()["post_sent"],
        json!(true),
        "{saved:?}"
    );
    assert_eq!(saves.last().get("post_sent"), None, "{saved:?}");
    req.progress = Progress::new(saves.last(), saves.clone());
    assert_eq!(li.find_existing(&req).await.unwrap(), Existing::NotFound);
}

#[tokio::test]
async fn the_finder_needs_a_restricted_permission() {
    let (fake, li) = setup().await;
    let token = fake.mint_access_token(WRITE_SCOPE);
    let r = reqwest::Client::new()
        .get(format!(
            "{}/rest/posts?author=urn%3Ali%3Aperson%3A{MEMBER_SUB}&q=author&count=10&sortBy=LAST_MODIFIED",
            fake.url
        ))
        .bearer_auth(&token)
        .header("LinkedIn-Version", li.version())
        .header("X-Restli-Protocol-Version", "2.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "ACCESS_DENIED");
}

#[tokio::test]
async fn dead_tokens_are_token_invalid() {
    let (fake, li) = setup().await;
    let kills: [fn(&LinkedInFake, &str); 2] = [
        LinkedInFake::expire_access_token,
        LinkedInFake::revoke_access_token,
    ];
    for kill in kills {
        let req = post_request(&fake, "hello", &[]).await;
        kill(&fake, req.account.access_token.as_deref().unwrap());
        let e = li.publish(&req).await.unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, TOKEN_INVALID)
        );
    }
    // A token LinkedIn never issued, and none at all.
    let e = li
        .publish(&request(
            account(&fake, Some("bogus".into()), None),
            Some("x"),
            &[],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
    let e = li
        .publish(&request(account(&fake, None, None), Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
    // An expired-token answer with another status is still token_invalid.
    fake.faults.reply(
        "POST",
        "/rest/posts",
        403,
        &[],
        json!({"status": 403, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN",
               "message": "The token used in the request has expired"}),
    );
    let e = li
        .publish(&post_request(&fake, "hello", &[]).await)
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
    assert!(fake.posts().is_empty());
}

#[tokio::test]
async fn a_duplicate_is_permanent() {
    let (fake, li) = setup().await;
    li.publish(&post_request(&fake, "same words", &[]).await)
        .await
        .unwrap();
    let e = li
        .publish(&post_request(&fake, "same words", &[]).await)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "duplicate_content")
    );
    assert!(e.platform_error.unwrap().contains("DUPLICATE_POST"));
    assert_eq!(fake.posts().len(), 1);
}

#[tokio::test]
async fn a_sunset_version_is_refused() {
    let (fake, li) = setup().await;
    assert_eq!(li.version(), LINKEDIN_VERSION);
    let old = li.with_version("202401");
    let e = old
        .publish(&post_request(&fake, "old", &[]).await)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "api_version_inactive")
    );
    assert!(e.platform_error.unwrap().contains("NONEXISTENT_VERSION"));
    assert!(fake.posts().is_empty());
}

/// The fake is not a pushover: malformed requests get LinkedIn's refusals.
#[tokio::test]
async fn the_fake_refuses_malformed_requests() {
    let fake = LinkedInFake::start().await;
    let token = fake.mint_access_token(WRITE_SCOPE);
    let http = reqwest::Client::new();
    let good = json!({
        "author": fake.author_urn(),
        "commentary": "hello",
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                          "thirdPartyDistributionChannels": []},
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": false,
    });
    let send = |body: Value, version: Option<&'static str>, restli: bool| {
        let mut r = http
            .post(format!("{}/rest/posts", fake.url))
            .bearer_auth(&token)
            .json(&body);
        if let Some(v) = version {
            r = r.header("LinkedIn-Version", v);
        }
        if restli {
            r = r.header("X-Restli-Protocol-Version", "2.0.0");
        }
        r.send()
    };

    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("visibility");
    let r = send(missing, Some(LINKEDIN_VERSION), true).await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["errorDetails"]["inputErrors"][0]["code"],
        "FIELD_REQUIRED"
    );

    let mut unescaped = good.clone();
    unescaped["commentary"] = json!("a (b)");
    assert_eq!(
        send(unescaped, Some(LINKEDIN_VERSION), true)
            .await
            .unwrap()
            .status(),
        422
    );

    let r = send(good.clone(), None, true).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "VERSION_MISSING");
    assert_eq!(
        send(good.clone(), Some("209912"), true)
            .await
            .unwrap()
            .status(),
        426
    );
    assert_eq!(
        send(good.clone(), Some(LINKEDIN_VERSION), false)
            .await
            .unwrap()
            .status(),
        400
    );

    // An image initialized but never uploaded cannot be used.
    let init: Value = http
        .post(format!("{}/rest/images?action=initializeUpload", fake.url))
        .bearer_auth(&token)
        .header("LinkedIn-Version", LINKEDIN_VERSION)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&json!({"initializeUploadRequest": {"owner": fake.author_urn()}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut with_image = good.clone();
    with_image["content"] = json!({"media": {"id": init["value"]["image"]}});
    assert_eq!(
        send(with_image, Some(LINKEDIN_VERSION), true)
            .await
            .unwrap()
            .status(),
        422
    );

    // Someone else as author; a token without w_member_social.
    let mut other = good.clone();
    other["author"] = json!("urn:li:person:someoneElse");
    assert_eq!(
        send(other, Some(LINKEDIN_VERSION), true)
            .await
            .unwrap()
            .status(),
        403
    );
    let read_only = fake.mint_access_token("openid,profile");
    let r = http
        .post(format!("{}/rest/posts", fake.url))
        .bearer_auth(&read_only)
        .header("LinkedIn-Version", LINKEDIN_VERSION)
        .header("X-Restli-Protocol-Version", "2.0.0")
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    assert!(fake.posts().is_empty());
    assert_eq!(
        send(good, Some(LINKEDIN_VERSION), true)
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(fake.posts().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Video

const MIB: usize = 1024 * 1024;
const FILM: &str = "https://media.test/media/med_film/film.mp4";
const SHORT: &str = "https://media.test/media/med_short/short.mp4";
const WEBM: &str = "https://media.test/media/med_webm/clip.webm";
const TINY: &str = "https://media.test/media/med_tiny/tiny.mp4";

/// A 9 MiB MP4 (three parts of LinkedIn's 4 MiB) and a small one (one part, over 75 KB).
fn film() -> Vec<u8> {
    media_files::mp4(1280, 720, 10_000, 9 * MIB)
}

fn short() -> Vec<u8> {
    media_files::mp4(640, 360, 3_000, 100_000)
}

/// The connector checks a video's type and size itself: the stream does not.
fn streamed() -> Arc<StreamedMedia> {
    StreamedMedia::new(
        media(),
        [
            (FILM, film()),
            (SHORT, short()),
            (WEBM, media_files::webm(640, 360, 5_000)),
            (TINY, media_files::mp4(640, 360, 5_000, 1_000)),
        ],
        false,
    )
}

/// The connector as a process runs it: waiting `wait` at most for processing.
fn video_li(fake: &LinkedInFake, media: &Arc<StreamedMedia>, wait: Duration) -> LinkedIn {
    LinkedIn::new(settings(fake), media.clone()).with_video_processing_wait(wait)
}

/// A video post whose progress is kept in `saves`, starting from `saved`.
async fn video_request(
    fake: &LinkedInFake,
    url: &str,
    saves: &Arc<Saves>,
    saved: Value,
) -> PublishRequest {
    let mut req = post_request(fake, "Our film", &[]).await;
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some(url.to_owned());
    req.progress = Progress::new(saved, saves.clone());
    req
}

#[tokio::test]
async fn a_video_is_uploaded_in_parts_and_posted() {
    let fake = LinkedInFake::start().await;
    let media = streamed();
    let li = video_li(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    let post = li
        .publish(&video_request(&fake, FILM, &saves, Value::Null).await)
        .await
        .unwrap();

    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].urn, post.id);
    let urn = posts[0].video.clone().unwrap();
    assert!(urn.starts_with("urn:li:video:"));
    assert_eq!(posts[0].body["content"], json!({"media": {"id": urn}}));
    assert!(posts[0].images.is_empty());

    let video = fake.video(&urn).unwrap();
    let film = film();
    assert_eq!(video.owner, fake.author_urn());
    assert_eq!(video.size, film.len() as u64);
    // Three parts as the instructions cut them: 4 MiB, 4 MiB, the rest.
    let m = MIB as u64;
    assert_eq!(
        video.parts,
        [
            (0, 4 * m - 1),
            (4 * m, 8 * m - 1),
            (8 * m, film.len() as u64 - 1)
        ]
    );
    assert_eq!(video.part_uploads, [1, 1, 1]);
    assert!(
        video.file().unwrap() == film,
        "LinkedIn holds the file's bytes"
    );
    // Finalized with every part's ETag, in order.
    let etags: Vec<String> = video.etags.iter().map(|e| e.clone().unwrap()).collect();
    assert_eq!(video.finalized_with.as_ref(), Some(&etags));
    assert_eq!(video.states, ["PROCESSING", "AVAILABLE"]);
    assert_eq!(fake.video_init_calls(), 1);
    assert_eq!(fake.video_part_uploads(), 3);
    assert_eq!(fake.video_finalize_calls(), 1);
    assert_eq!(media.streams(), 1);
    assert!(media.images.asked.lock().unwrap().is_empty());

    // Progress: after initializing, after each part, after finalizing, before the post.
    let saved = saves.all();
    assert_eq!(saved.len(), 6, "{saved:?}");
    assert_eq!(saved[5]["post_sent"], json!(true));
    assert_eq!(
        saved[5]["etags"],
        json!(etags),
        "the upload's progress kept"
    );
    for (i, s) in saved.iter().enumerate().take(4) {
        assert_eq!(s["video"], json!(urn));
        assert_eq!(s["video_url"], json!(FILM));
        assert_eq!(s["finalized"], json!(false));
        assert_eq!(s["etags"], json!(etags[..i]));
        assert_eq!(s["instructions"].as_array().unwrap().len(), 3);
    }
    assert!(!saved[0]["upload_token"].as_str().unwrap().is_empty());
    assert_eq!(saved[4]["finalized"], json!(true));
    assert_eq!(saved[4]["etags"], json!(etags));
}

#[tokio::test]
async fn slow_video_processing_is_waited_for() {
    let fake = LinkedInFake::start().await;
    fake.set_video_processing_polls(3);
    let media = streamed();
    let li = video_li(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    li.publish(&video_request(&fake, SHORT, &saves, Value::Null).await)
        .await
        .unwrap();
    let urn = fake.posts()[0].video.clone().unwrap();
    let video = fake.video(&urn).unwrap();
    assert_eq!(
        video.states,
        ["PROCESSING", "PROCESSING", "PROCESSING", "AVAILABLE"]
    );
    // One part, so LinkedIn's upload token is empty, and finalize took it so.
    assert_eq!(video.parts.len(), 1);
    assert_eq!(video.upload_token, "");
    assert_eq!(fake.video_init_calls(), 1);
    assert_eq!(fake.video_part_uploads(), 1);
}

#[tokio::test]
async fn failed_video_processing_is_permanent() {
    let fake = LinkedInFake::start().await;
    fake.fail_video_processing(Some("Video codec is not supported"));
    let media = streamed();
    let li = video_li(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    let e = li
        .publish(&video_request(&fake, SHORT, &saves, Value::Null).await)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_processing_failed")
    );
    assert_eq!(
        e.platform_error.as_deref(),
        Some("Video codec is not supported")
    );
    assert!(
        e.message.contains("Video codec is not supported"),
        "{}",
        e.message
    );
    assert_eq!(fake.create_calls(), 0);
}

#[tokio::test]
async fn a_restart_after_finalize_does_not_upload_again() {
    let fake = LinkedInFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    // The first process uploads and finalizes; its first status poll fails.
    fake.push_server_error("GET", "/rest/videos/", 503);
    let first = video_li(&fake, &media, Duration::from_secs(30));
    let e = first
        .publish(&video_request(&fake, FILM, &saves, Value::Null).await)
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["finalized"], json!(true));
    let urn = saved["video"].as_str().unwrap().to_owned();
    drop(first);

    // Another process takes the target over with what was saved.
    let second = video_li(&fake, &media, Duration::from_secs(30));
    let post = second
        .publish(&video_request(&fake, FILM, &saves, saved).await)
        .await
        .unwrap();
    assert_eq!(fake.video_init_calls(), 1, "no second upload");
    assert_eq!(fake.video_part_uploads(), 3);
    assert_eq!(fake.video_finalize_calls(), 1);
    assert_eq!(media.streams(), 1, "not read again");
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].urn, post.id);
    assert_eq!(posts[0].video.as_deref(), Some(urn.as_str()));
}

#[tokio::test]
async fn a_restart_mid_upload_uploads_only_the_remaining_parts() {
    let fake = LinkedInFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    // The first read breaks off after 5 MB: one part is up.
    *media.break_after.lock().unwrap() = Some(5 * MIB);
    let first = video_li(&fake, &media, Duration::from_secs(30));
    let e = first
        .publish(&video_request(&fake, FILM, &saves, Value::Null).await)
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["finalized"], json!(false));
    assert_eq!(saved["etags"].as_array().unwrap().len(), 1);
    assert_eq!(fake.video_part_uploads(), 1);
    drop(first);

    let second = video_li(&fake, &media, Duration::from_secs(30));
    second
        .publish(&video_request(&fake, FILM, &saves, saved).await)
        .await
        .unwrap();
    assert_eq!(fake.video_init_calls(), 1, "the upload went on");
    assert_eq!(fake.video_part_uploads(), 3, "only the two missing parts");
    let urn = fake.posts()[0].video.clone().unwrap();
    let video = fake.video(&urn).unwrap();
    assert_eq!(video.part_uploads, [1, 1, 1]);
    assert!(video.file().unwrap() == film());
    let etags: Vec<String> = video.etags.iter().map(|e| e.clone().unwrap()).collect();
    assert_eq!(video.finalized_with, Some(etags));
}

#[tokio::test]
async fn a_processing_wait_that_runs_out_is_retryable_and_resumed() {
    let fake = LinkedInFake::start().await;
    fake.set_video_processing_polls(3);
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let impatient = video_li(&fake, &media, Duration::from_millis(300));
    let e = impatient
        .publish(&video_request(&fake, SHORT, &saves, Value::Null).await)
        .await
        .unwrap_err();
    assert_eq!(e.code, "media_processing");
    assert!(
        matches!(
            e.class,
            FailureClass::Retryable {
                retry_after: Some(_)
            }
        ),
        "{e:?}"
    );
    assert_eq!(fake.create_calls(), 0);
    let saved = saves.last();
    assert_eq!(saved["finalized"], json!(true));

    let patient = video_li(&fake, &media, Duration::from_secs(30));
    patient
        .publish(&video_request(&fake, SHORT, &saves, saved).await)
        .await
        .unwrap();
    assert_eq!(fake.video_init_calls(), 1);
    assert_eq!(fake.video_part_uploads(), 1);
    assert_eq!(media.streams(), 1);
    let urn = fake.posts()[0].video.clone().unwrap();
    assert_eq!(
        fake.video(&urn).unwrap().states.last().map(String::as_str),
        Some("AVAILABLE")
    );
}

#[tokio::test]
async fn a_video_linkedin_forgot_or_expired_urls_are_uploaded_again() {
    let fake = LinkedInFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let li = video_li(&fake, &media, Duration::from_secs(30));
    fake.push_server_error("GET", "/rest/videos/", 503);
    li.publish(&video_request(&fake, SHORT, &saves, Value::Null).await)
        .await
        .unwrap_err();
    let saved = saves.last();
    let old = saved["video"].as_str().unwrap().to_owned();
    fake.forget_video(&old);

    li.publish(&video_request(&fake, SHORT, &saves, saved).await)
        .await
        .unwrap();
    assert_eq!(fake.video_init_calls(), 2);
    let posts = fake.posts();
    assert_ne!(posts[0].video.as_deref(), Some(old.as_str()));
    assert_eq!(saves.last()["video"], json!(posts[0].video));

    // An upload cut off whose URLs have expired starts over; so does progress about another
    // video.
    fake.set_upload_urls_ttl(Duration::ZERO);
    *media.break_after.lock().unwrap() = Some(5 * MIB);
    let saves = Arc::new(Saves::default());
    li.publish(&video_request(&fake, FILM, &saves, Value::Null).await)
        .await
        .unwrap_err();
    fake.set_upload_urls_ttl(Duration::from_secs(3600));
    let cut = saves.last();
    assert_eq!(cut["finalized"], json!(false));
    let mut req = video_request(&fake, FILM, &saves, cut).await;
    req.content.text = Some("Once more".into());
    li.publish(&req).await.unwrap();
    assert_eq!(fake.video_init_calls(), 4);

    let other = json!({"video_url": SHORT, "video": posts[0].video, "instructions": [],
                       "finalized": true});
    let mut req = video_request(&fake, FILM, &saves, other).await;
    req.content.text = Some("And again".into());
    li.publish(&req).await.unwrap();
    assert_eq!(fake.video_init_calls(), 5);
    assert_eq!(fake.posts().len(), 3);
}

/// An upload cut off (a restart, a lost lease, the engine's time limit) has posted nothing:
/// `find_existing` says so, and the next attempt resumes the saved upload.
#[tokio::test]
async fn an_interrupted_video_upload_is_not_found_and_resumes() {
    let fake = LinkedInFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let li = video_li(&fake, &media, Duration::from_secs(30));
    *media.break_after.lock().unwrap() = Some(5 * MIB);
    li.publish(&video_request(&fake, FILM, &saves, Value::Null).await)
        .await
        .unwrap_err();
    *media.break_after.lock().unwrap() = None;
    let cut = saves.last();
    assert_eq!(cut["finalized"], json!(false));
    let req = video_request(&fake, FILM, &saves, cut).await;
    assert_eq!(li.find_existing(&req).await.unwrap(), Existing::NotFound);
    li.publish(&req).await.unwrap();
    assert_eq!(fake.video_init_calls(), 1, "resumed, not uploaded again");
    assert_eq!(fake.posts().len(), 1);
}

#[tokio::test]
async fn videos_outside_linkedins_limits_are_refused_before_upload() {
    let fake = LinkedInFake::start().await;
    let media = streamed();
    let li = video_li(&fake, &media, Duration::from_secs(30));
    let saves = Arc::new(Saves::default());
    for url in [WEBM, TINY] {
        let e = li
            .publish(&video_request(&fake, url, &saves, Value::Null).await)
            .await
            .unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, "unsupported_media"),
            "{url}: {e:?}"
        );
    }
    // A video goes alone.
    let mut req = video_request(&fake, SHORT, &saves, Value::Null).await;
    req.content.image_urls = vec!["https://img.test/a.png".into()];
    let e = li.publish(&req).await.unwrap_err();
    assert_eq!(e.code, "unsupported_media");
    // Longer than 30 minutes, as the engine's media record says.
    let mut req = video_request(&fake, SHORT, &saves, Value::Null).await;
    req.media = vec![video_record(31 * 60 * 1000)];
    let e = li.publish(&req).await.unwrap_err();
    assert_eq!(e.code, "unsupported_media");
    assert!(e.message.contains("30 minutes"), "{}", e.message);
    // A video post without a video.
    let mut req = video_request(&fake, SHORT, &saves, Value::Null).await;
    req.content.video_url = None;
    assert_eq!(li.publish(&req).await.unwrap_err().code, "missing_video");

    assert_eq!(fake.video_init_calls(), 0);
    assert_eq!(fake.create_calls(), 0);
    assert!(saves.all().is_empty());
}

fn video_record(duration_ms: u64) -> soku_core::media::MediaRecord {
    soku_core::media::MediaRecord {
        id: "med_short".into(),
        user_id: "user_1".into(),
        mode: soku_core::keys::KeyMode::Live,
        facts: soku_core::media::MediaFacts {
            kind: soku_core::media::MediaKind::Video,
            mime: "video/mp4",
            size: short().len() as u64,
            width: Some(640),
            height: Some(360),
            duration_ms: Some(duration_ms),
        },
        sha256: "0".repeat(64),
        storage_key: "med_short".into(),
        file_name: "med_short.mp4".into(),
        source_url: None,
        idempotency_key: None,
        request_hash: "0".repeat(64),
        created_at: chrono::Utc::now(),
    }
}

/// The fake's Videos API refuses what LinkedIn would: a part of the wrong size, ETags out of
/// order, a video not yet available in a post.
#[tokio::test]
async fn the_fake_checks_video_uploads() {
    let fake = LinkedInFake::start().await;
    let token = fake.mint_access_token(WRITE_SCOPE);
    let http = reqwest::Client::new();
    let rest = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", fake.url))
            .bearer_auth(&token)
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
    };
    let size = 5 * MIB as u64;
    let init: Value = rest(
        reqwest::Method::POST,
        "/rest/videos?action=initializeUpload",
    )
    .json(
        &json!({"initializeUploadRequest": {"owner": fake.author_urn(),
        "fileSizeBytes": size, "uploadCaptions": false, "uploadThumbnail": false}}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let value = &init["value"];
    let urn = value["video"].as_str().unwrap().to_owned();
    let parts = value["uploadInstructions"].as_array().unwrap().clone();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["lastByte"], json!(4 * MIB - 1));
    assert_eq!(parts[1]["lastByte"], json!(size - 1));

    let put = |url: &str, len: usize| {
        http.put(url)
            .header("content-type", "application/octet-stream")
            .body(vec![0u8; len])
            .send()
    };
    let url0 = parts[0]["uploadUrl"].as_str().unwrap();
    let url1 = parts[1]["uploadUrl"].as_str().unwrap();
    assert_eq!(put(url0, 1000).await.unwrap().status(), 400, "wrong size");
    let r0 = put(url0, 4 * MIB).await.unwrap();
    assert_eq!(r0.status(), 201);
    let e0 = r0.headers()["etag"].to_str().unwrap().to_owned();
    let r1 = put(url1, MIB).await.unwrap();
    let e1 = r1.headers()["etag"].to_str().unwrap().to_owned();

    // Not finalized: WAITING_UPLOAD, and a post cannot use it.
    let path = format!("/rest/videos/{}", urn.replace(':', "%3A"));
    let status: Value = rest(reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "WAITING_UPLOAD");

    let finalize = |ids: Vec<&str>| {
        rest(reqwest::Method::POST, "/rest/videos?action=finalizeUpload")
            .json(&json!({"finalizeUploadRequest": {"video": urn,
                "uploadToken": value["uploadToken"], "uploadedPartIds": ids}}))
            .send()
    };
    assert_eq!(finalize(vec![&e1, &e0]).await.unwrap().status(), 400);
    assert_eq!(finalize(vec![&e0]).await.unwrap().status(), 400);
    assert_eq!(fake.video_finalize_calls(), 0);
    assert_eq!(finalize(vec![&e0, &e1]).await.unwrap().status(), 200);
    assert_eq!(fake.video_part_uploads(), 2);
}
