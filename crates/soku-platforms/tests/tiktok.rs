//! The TikTok connector against the loopback fake of TikTok (`soku_fakes::tiktok`).

mod support;

use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    Connector, Existing, FailureClass, Progress, ProgressSink, PublishError, PublishRequest,
    TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PlatformOptions, PostContent, TiktokOptions};
use soku_fakes::Fault;
use soku_fakes::media_files;
use soku_fakes::tiktok::{
    ACCESS_TTL_SECS, CLIENT_KEY, CLIENT_SECRET, Endpoint, NICKNAME, OPEN_ID, REDIRECT_URI,
    RefreshMode, TikTokFake, USERNAME,
};
use soku_platforms::PlatformSettings;
use soku_platforms::tiktok::{CHUNK_BYTES, SCOPES, TikTok};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::{MemoryMedia, Saves, StreamedMedia, approve};

const WRITE_SCOPE: &str = "user.info.basic,video.publish";
const MIB: usize = 1024 * 1024;
/// Two chunks (10 MiB and the rest), three chunks, and one whole.
const FILM: &str = "https://media.test/media/med_film/film.mp4";
const LONG: &str = "https://media.test/media/med_long/long.mp4";
const SHORT: &str = "https://media.test/media/med_short/short.mp4";
const PHOTO_A: &str = "https://media.test/media/med_a/a.jpg";
const PHOTO_B: &str = "https://media.test/media/med_b/b.webp";

fn film() -> Vec<u8> {
    media_files::mp4(1280, 720, 20_000, 21 * MIB)
}

fn long() -> Vec<u8> {
    media_files::mp4(1080, 1920, 60_000, 32 * MIB)
}

fn short() -> Vec<u8> {
    media_files::mp4(720, 1280, 5_000, 300_000)
}

fn streamed() -> Arc<StreamedMedia> {
    StreamedMedia::new(
        MemoryMedia::new([]),
        [(FILM, film()), (LONG, long()), (SHORT, short())],
        true,
    )
}

fn settings(fake: &TikTokFake) -> PlatformSettings {
    PlatformSettings {
        api_url: fake.url.clone(),
        auth_url: fake.auth_url(),
        client_id: Some(CLIENT_KEY.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        timeout: Duration::from_secs(1),
    }
}

fn connector(fake: &TikTokFake, media: &Arc<StreamedMedia>) -> TikTok {
    // Every call within the settings' timeout, chunks too: the tests hold answers back longer.
    TikTok::new(settings(fake), media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_secs(10))
        .with_upload_rate(u64::MAX)
}

fn account(access: Option<String>, refresh: Option<String>) -> AccountCredentials {
    AccountCredentials {
        account_id: OPEN_ID.into(),
        username: Some(USERNAME.into()),
        access_token: access,
        refresh_token: refresh,
        meta: json!({"open_id": OPEN_ID}),
    }
}

fn options(privacy: Option<&str>) -> PlatformOptions {
    PlatformOptions::Tiktok(TiktokOptions {
        privacy_level: privacy.map(str::to_owned),
        ..Default::default()
    })
}

/// A video post of `url` by the fake's creator, its progress kept in `saves` from `saved`.
fn video_request(fake: &TikTokFake, url: &str, saves: &Arc<Saves>, saved: Value) -> PublishRequest {
    let token = fake.mint_access_token(WRITE_SCOPE);
    PublishRequest {
        marker: "sub_1:tiktok:creator".into(),
        user_id: "user_1".into(),
        submission_id: "sub_1".into(),
        target_id: "tiktok:creator".into(),
        platform: Platform::Tiktok,
        account: account(Some(token), None),
        content: PostContent {
            text: Some("Our film #soku".into()),
            media_type: MediaType::Video,
            image_urls: Vec::new(),
            video_url: Some(url.to_owned()),
        },
        options: options(Some("PUBLIC_TO_EVERYONE")),
        media: Vec::new(),
        progress: Progress::new(saved, saves.clone()),
        not_before: chrono::Utc::now() - chrono::Duration::seconds(5),
    }
}

fn photo_request(
    fake: &TikTokFake,
    urls: &[&str],
    saves: &Arc<Saves>,
    saved: Value,
) -> PublishRequest {
    let mut req = video_request(fake, SHORT, saves, saved);
    req.content = PostContent {
        text: Some("Two pictures #soku".into()),
        media_type: MediaType::Image,
        image_urls: urls.iter().map(|u| u.to_string()).collect(),
        video_url: None,
    };
    req.options = PlatformOptions::Tiktok(TiktokOptions {
        privacy_level: Some("PUBLIC_TO_EVERYONE".into()),
        title: Some("Pictures".into()),
        ..Default::default()
    });
    req
}

/// The server's PKCE pair: a verifier and its base64url S256 challenge.
fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = "a-long-random-verifier-of-the-server-0123456789abcdefghijklmnop".to_owned();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn auth_request(state: &str, challenge: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: state.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_challenge: challenge.into(),
        params: json!({"platform": "tiktok"}),
    }
}

fn exchange_of(code: &str, verifier: &str) -> CodeExchange {
    CodeExchange {
        code: code.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: verifier.into(),
        pending: json!({}),
    }
}

/// Connects through the authorization page; the account.
async fn connected(fake: &TikTokFake, tt: &TikTok) -> soku_core::connector::ConnectedAccount {
    let (verifier, challenge) = pkce();
    let start = tt.authorize(&auth_request("st", &challenge)).await.unwrap();
    let (_, cb) = approve(&start.url).await;
    let _ = fake;
    tt.exchange(&exchange_of(&cb["code"], &verifier))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Connecting

#[tokio::test]
async fn oauth_round_trip_with_hex_pkce_connects_the_creator() {
    let fake = TikTokFake::start().await;
    fake.require_pkce(true);
    let media = streamed();
    let tt = connector(&fake, &media);
    assert_eq!(tt.connect_method(), ConnectMethod::OAuth);
    assert!(tt.configured());
    let (verifier, challenge) = pkce();
    let start = tt
        .authorize(&auth_request("st/ate+1", &challenge))
        .await
        .unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/v2/auth/authorize/");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_key"], CLIENT_KEY);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["state"], "st/ate+1");
    assert_eq!(q["code_challenge_method"], "S256");
    // TikTok's challenge: the hex of the verifier's SHA-256, not RFC 7636's base64url.
    use sha2::Digest;
    let hex: String = sha2::Sha256::digest(verifier.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(q["code_challenge"], hex);
    assert_ne!(q["code_challenge"], challenge);

    let (status, cb) = approve(&start.url).await;
    assert_eq!(status, reqwest::StatusCode::FOUND);
    assert_eq!(cb["state"], "st/ate+1");
    assert_eq!(cb["scopes"], WRITE_SCOPE);

    // A wrong verifier fails at the exchange, as TikTok's does (HTTP 200, invalid_grant).
    let e = tt
        .exchange(&exchange_of(&cb["code"], "another-verifier"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.platform_error.unwrap().contains("invalid_grant"));

    let acct = connected(&fake, &tt).await;
    assert_eq!(acct.account_id, OPEN_ID);
    assert_eq!(acct.username.as_deref(), Some(USERNAME));
    assert_eq!(acct.display_name.as_deref(), Some(NICKNAME));
    assert!(fake.access_token_valid(&acct.tokens.access_token));
    let refresh = acct.tokens.refresh_token.clone().unwrap();
    assert!(fake.refresh_token_valid(&refresh));
    let expires = acct.tokens.expires_at.unwrap() - chrono::Utc::now();
    assert!(
        expires > chrono::Duration::seconds(ACCESS_TTL_SECS as i64 - 60)
            && expires <= chrono::Duration::seconds(ACCESS_TTL_SECS as i64)
    );
    assert_eq!(tt.refresh_ahead(), Duration::from_secs(2 * 3600));
    let debug = format!("{acct:?} {tt:?}");
    assert!(!debug.contains(&acct.tokens.access_token));
    assert!(!debug.contains(CLIENT_SECRET));
}

#[tokio::test]
async fn codes_work_once_and_a_grant_without_posting_is_refused() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    let (verifier, challenge) = pkce();
    let start = tt.authorize(&auth_request("s", &challenge)).await.unwrap();
    let (_, cb) = approve(&start.url).await;
    tt.exchange(&exchange_of(&cb["code"], &verifier))
        .await
        .unwrap();
    let e = tt
        .exchange(&exchange_of(&cb["code"], &verifier))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected, "{e:?}");

    // The creator unticks video.publish.
    fake.set_granted_scopes(Some("user.info.basic"));
    let (_, cb) = approve(&start.url).await;
    let e = tt
        .exchange(&exchange_of(&cb["code"], &verifier))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.message.contains("video.publish"), "{}", e.message);

    // An unregistered callback: TikTok's page refuses it.
    let mut other = auth_request("s", &challenge);
    other.redirect_uri = "https://elsewhere.test/cb".into();
    let start = tt.authorize(&other).await.unwrap();
    assert_eq!(
        approve(&start.url).await.0,
        reqwest::StatusCode::BAD_REQUEST
    );

    // Without client credentials nothing can start.
    let bare = TikTok::new(
        PlatformSettings {
            client_secret: None,
            ..settings(&fake)
        },
        streamed(),
    );
    assert!(!bare.configured());
    assert_eq!(
        bare.authorize(&auth_request("s", &challenge))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::NotConfigured
    );
}

#[tokio::test]
async fn refresh_keeps_or_rotates_and_refusals_need_a_reconnect() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    let refresh = fake.mint_refresh_token(WRITE_SCOPE);
    let tokens = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap();
    assert!(fake.access_token_valid(&tokens.access_token));
    assert_eq!(tokens.refresh_token.as_deref(), Some(refresh.as_str()));
    assert!(tokens.expires_at.is_some());

    fake.set_refresh_mode(RefreshMode::Rotate);
    let rotated = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap();
    let new = rotated.refresh_token.unwrap();
    assert_ne!(new, refresh);
    assert!(!fake.refresh_token_valid(&refresh));
    // The old one is refused: with HTTP 200 (TikTok's way) or 400, the body decides.
    let e = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    fake.set_oauth_error_status(400);
    let e = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);

    // A refresh token past its 365 days, or the creator removing the app.
    fake.expire_refresh_token(&new);
    assert_eq!(
        tt.refresh(&account(None, Some(new)))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Rejected
    );
    let another = fake.mint_refresh_token(WRITE_SCOPE);
    fake.revoke_access();
    assert_eq!(
        tt.refresh(&account(None, Some(another)))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Rejected
    );
    assert_eq!(
        tt.refresh(&account(None, None)).await.unwrap_err().kind,
        ConnectErrorKind::NotRefreshable
    );

    // TikTok's own trouble is worth trying again.
    fake.faults.reply(
        "POST",
        "/v2/oauth/token/",
        200,
        &[],
        json!({"error": "temporarily_unavailable", "error_description": "Service is temporarily unavailable.", "log_id": "x"}),
    );
    let fresh = fake.mint_refresh_token(WRITE_SCOPE);
    assert_eq!(
        tt.refresh(&account(None, Some(fresh)))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Unavailable
    );
}

#[tokio::test]
async fn a_token_answer_of_the_wrong_shape_names_the_field_and_never_the_tokens() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    for (answer, field) in [
        (
            json!({"access_token": ["TTSECRET-access"], "expires_in": "a day", "open_id": "o1",
                   "refresh_token": "TTSECRET-refresh", "scope": WRITE_SCOPE}),
            "`access_token`: expected a string, found a sequence",
        ),
        (
            json!({"access_token": {"v": "TTSECRET-access"}, "open_id": 7,
                   "refresh_token": "TTSECRET-refresh"}),
            "`access_token`: expected a string, found a map",
        ),
    ] {
        fake.faults
            .reply("POST", "/v2/oauth/token/", 200, &[], answer);
        let e = tt
            .refresh(&account(None, Some(fake.mint_refresh_token(WRITE_SCOPE))))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ConnectErrorKind::Unavailable, "{e:?}");
        assert!(e.message.contains(field), "{}", e.message);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("TTSECRET"), "{shown}");
    }
}

/// TikTok has spent a rotated refresh token once it answers: an answer whose tokens are fine
/// but whose `expires_in`, `scope` or `open_id` is odd still hands them over (a day assumed).
#[tokio::test]
async fn a_refresh_answer_with_an_odd_field_keeps_the_rotated_tokens() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    fake.set_refresh_mode(RefreshMode::Rotate);
    for (field, value) in [
        ("expires_in", json!("a day")),
        ("scope", json!(7)),
        ("open_id", json!(["o1"])),
    ] {
        let old = fake.mint_refresh_token(WRITE_SCOPE);
        fake.alter_next_token_answer(field, value);
        let tokens = tt.refresh(&account(None, Some(old.clone()))).await.unwrap();
        let new = tokens.refresh_token.clone().expect("the rotated one");
        assert!(fake.refresh_token_valid(&new), "{field}");
        assert!(!fake.refresh_token_valid(&old));
        assert!(fake.access_token_valid(&tokens.access_token));
        let left = support::lifetime_left(&tokens, tt.refresh_ahead());
        assert!((86390..=86400).contains(&left), "{field}: {left}");
    }
}

/// A refresh answer for another account, or without `video.publish`, refuses the account and
/// still hands over the rotated tokens to be stored.
#[tokio::test]
async fn a_refused_refresh_answer_hands_over_the_rotated_tokens() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    fake.set_refresh_mode(RefreshMode::Rotate);
    for (field, value) in [
        ("open_id", json!("someone-else")),
        ("scope", json!("user.info.basic")),
    ] {
        let old = fake.mint_refresh_token(WRITE_SCOPE);
        fake.alter_next_token_answer(field, value);
        let e = tt
            .refresh(&account(None, Some(old.clone())))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ConnectErrorKind::Rejected, "{field}");
        let issued = e.issued.expect("the tokens TikTok issued");
        assert!(fake.refresh_token_valid(issued.refresh_token.as_deref().unwrap()));
        assert!(!fake.refresh_token_valid(&old));
    }
}

#[tokio::test]
async fn a_token_answer_without_a_lifetime_is_taken_to_live_a_day() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    fake.faults.reply(
        "POST",
        "/v2/oauth/token/",
        200,
        &[],
        json!({"access_token": "act.new", "open_id": OPEN_ID, "refresh_token": "rft.new",
               "scope": WRITE_SCOPE, "token_type": "Bearer"}),
    );
    let t = tt
        .refresh(&account(None, Some(fake.mint_refresh_token(WRITE_SCOPE))))
        .await
        .unwrap();
    let left = support::lifetime_left(&t, tt.refresh_ahead());
    assert!((86390..=86400).contains(&left), "{left}");
}

#[tokio::test]
async fn refused_app_credentials_are_not_configured_not_a_reconnect() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let refresh = fake.mint_refresh_token(WRITE_SCOPE);
    // A wrong client secret: TikTok answers invalid_client.
    let mut wrong = settings(&fake);
    wrong.client_secret = Some("not-the-secret".into());
    let tt = TikTok::new(wrong, media.clone());
    let e = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured, "{e:?}");
    let e = tt
        .exchange(&exchange_of("some-code", "verifier"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured, "{e:?}");

    let tt = connector(&fake, &media);
    fake.faults.reply(
        "POST",
        "/v2/oauth/token/",
        200,
        &[],
        json!({"error": "unauthorized_client", "error_description": "d", "log_id": "x"}),
    );
    let e = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured, "{e:?}");
    // A 4xx that is not TikTok's OAuth answer (a wrong API URL, a proxy's page).
    fake.faults.push(
        "POST",
        "/v2/oauth/token/",
        Fault::Reply {
            status: 404,
            headers: vec![("content-type".into(), "text/html".into())],
            body: "<html>Not Found</html>".into(),
        },
    );
    let e = tt
        .refresh(&account(None, Some(refresh.clone())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured, "{e:?}");
    // The account's own grant refused is still a reconnect.
    fake.expire_refresh_token(&refresh);
    assert_eq!(
        tt.refresh(&account(None, Some(refresh)))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Rejected
    );
}

// ---------------------------------------------------------------------------------------------
// Video

#[tokio::test]
async fn a_video_is_uploaded_in_chunks_and_published() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let post = tt
        .publish(&video_request(&fake, FILM, &saves, Value::Null))
        .await
        .unwrap();

    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 1);
    let p = &publishes[0];
    let film = film();
    // 21 MiB: one 10 MiB chunk and the rest (11 MiB) in the last.
    assert_eq!(p.source, "FILE_UPLOAD");
    assert_eq!(p.video_size, film.len() as u64);
    assert_eq!(p.chunk_size, CHUNK_BYTES);
    assert_eq!(p.total_chunk_count, 2);
    assert_eq!(p.chunk_puts, [1, 1]);
    assert!(p.bytes == film, "TikTok holds the file's bytes");
    assert_eq!(p.chunk_types, ["video/mp4", "video/mp4"]);
    assert!(
        fake.put_authorizations().is_empty(),
        "no token to the upload URL"
    );
    assert_eq!(
        p.body["post_info"],
        json!({"privacy_level": "PUBLIC_TO_EVERYONE", "title": "Our film #soku",
               "disable_duet": false, "disable_stitch": false, "disable_comment": false,
               "brand_content_toggle": false, "brand_organic_toggle": false})
    );
    assert_eq!(p.status, "PUBLISH_COMPLETE");
    assert_eq!(p.answered, ["PROCESSING_UPLOAD", "PUBLISH_COMPLETE"]);
    let post_id = p.post_id.unwrap().to_string();
    assert_eq!(post.id, post_id);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.tiktok.com/@{USERNAME}/video/{post_id}").as_str())
    );
    assert_eq!(
        fake.calls("creator_info"),
        1,
        "creator info before the post"
    );
    assert_eq!(media.streams(), 1);

    // Progress: after the init, after the first chunk, `final_sent` before the last chunk,
    // and after it.
    let saved = saves.all();
    assert_eq!(saved.len(), 4, "{saved:?}");
    for (i, s) in saved.iter().enumerate() {
        assert_eq!(s["publish_id"], json!(p.publish_id));
        assert_eq!(s["video_url"], FILM);
        assert_eq!(s["chunks_done"], json!([0, 1, 1, 2][i]));
        assert_eq!(s["final_sent"], json!(i >= 2));
        assert_eq!(s["uploaded"], json!(i == 3));
    }

    // find_existing reads the saved publish.
    let req = video_request(&fake, FILM, &saves, saves.last());
    assert_eq!(
        tt.find_existing(&req).await.unwrap(),
        Existing::Found(post.clone())
    );
}

#[tokio::test]
async fn a_small_private_video_goes_whole_and_is_known_by_its_publish_id() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = options(Some("SELF_ONLY"));
    let post = tt.publish(&req).await.unwrap();
    let p = &fake.publishes()[0];
    assert_eq!(
        (p.video_size, p.chunk_size, p.total_chunk_count),
        (short().len() as u64, short().len() as u64, 1)
    );
    // Not public: TikTok gives no post id.
    assert_eq!((post.id.as_str(), post.url), (p.publish_id.as_str(), None));
}

#[tokio::test]
async fn a_restart_mid_upload_sends_only_the_remaining_chunks() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    // The first read breaks off after 15 MiB: one chunk of three is up.
    *media.break_after.lock().unwrap() = Some(15 * MIB);
    let first = connector(&fake, &media);
    let e = first
        .publish(&video_request(&fake, LONG, &saves, Value::Null))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["chunks_done"], json!(1));
    assert_eq!(saved["uploaded"], json!(false));
    drop(first);

    // Not published yet: find_existing says so, and another process resumes.
    let second = connector(&fake, &media);
    let req = video_request(&fake, LONG, &saves, saved);
    assert_eq!(
        second.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
    second.publish(&req).await.unwrap();
    assert_eq!(fake.calls("video_init"), 1, "the upload went on");
    let p = &fake.publishes()[0];
    assert_eq!(p.chunk_puts, [1, 1, 1], "each chunk once");
    assert!(p.bytes == long());
    assert_eq!(fake.calls("creator_info"), 1, "asked once, before the post");
}

#[tokio::test]
async fn an_expired_upload_url_starts_over_without_a_second_post() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    fake.set_upload_url_ttl(Duration::ZERO);
    let tt = connector(&fake, &media);
    let e = tt
        .publish(&video_request(&fake, FILM, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "upload_expired");
    let saved = saves.last();
    assert_eq!(saved["upload_dead"], json!(true));
    let old = saved["publish_id"].as_str().unwrap().to_owned();

    fake.set_upload_url_ttl(Duration::from_secs(3600));
    tt.publish(&video_request(&fake, FILM, &saves, saved))
        .await
        .unwrap();
    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 2);
    assert_eq!(publishes[0].publish_id, old);
    assert!(
        !publishes[0].uploaded(),
        "the expired task never got the file"
    );
    let complete: Vec<_> = publishes
        .iter()
        .filter(|p| p.status == "PUBLISH_COMPLETE")
        .collect();
    assert_eq!(complete.len(), 1, "one post");
}

#[tokio::test]
async fn a_lost_answer_to_the_last_chunk_is_resumed_by_polling() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let tt = connector(&fake, &media);
    fake.faults.push(
        "PUT",
        "/upload/video/",
        Fault::DelayAfterEffect(Duration::from_millis(1500)),
    );
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    // The chunk that completes the upload may have posted: ambiguous, `final_sent` saved before.
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["uploaded"], json!(false));
    assert_eq!(saved["final_sent"], json!(true));
    // TikTok holds the file and is processing it: asked again later, never NotFound.
    let req = video_request(&fake, SHORT, &saves, saved.clone());
    let e = tt.find_existing(&req).await.unwrap_err();
    assert_eq!(e.code, "media_processing");
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");

    let post = tt
        .publish(&video_request(&fake, SHORT, &saves, saved))
        .await
        .unwrap();
    assert_eq!(fake.calls("video_init"), 1);
    assert_eq!(fake.chunks_accepted(), 1, "not sent again");
    assert_eq!(fake.calls("put"), 1);
    assert_eq!(post.id, fake.publishes()[0].post_id.unwrap().to_string());
}

#[tokio::test]
async fn a_lost_init_answer_is_retried_and_posts_once() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let tt = connector(&fake, &media);
    fake.faults.push(
        "POST",
        "/v2/post/publish/video/init/",
        Fault::DelayAfterEffect(Duration::from_millis(1500)),
    );
    let req = video_request(&fake, SHORT, &saves, Value::Null);
    let e = tt.publish(&req).await.unwrap_err();
    // Nothing is posted before the file arrives: safe to send again.
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert!(saves.all().is_empty());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::NotFound);
    tt.publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap();
    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 2);
    assert!(publishes[0].bytes.is_empty() && publishes[0].status == "PROCESSING_UPLOAD");
    assert_eq!(publishes[1].status, "PUBLISH_COMPLETE");
}

#[tokio::test]
async fn slow_processing_is_resumed_by_the_next_attempt() {
    let fake = TikTokFake::start().await;
    fake.set_processing_polls(4);
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let impatient = TikTok::new(settings(&fake), media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_millis(50));
    let e = impatient
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    // TikTok has the file and will post it unless it fails: ambiguous, so the engine asks
    // find_existing rather than counting a retry towards `failed`.
    assert_eq!(e.code, "media_processing");
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["uploaded"], json!(true));
    let req = video_request(&fake, SHORT, &saves, saved);
    // Still processing: an error to ask again later (the engine keeps the target in flight and
    // ends it `unknown` at worst), never NotFound.
    let e = impatient.find_existing(&req).await.unwrap_err();
    assert_eq!(e.code, "media_processing");
    assert!(matches!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(_)
        }
    ));

    let patient = connector(&fake, &media);
    patient.publish(&req).await.unwrap();
    assert_eq!(fake.calls("video_init"), 1);
    assert_eq!(fake.chunks_accepted(), 1);
    assert_eq!(media.streams(), 1, "not read again");
    let p = &fake.publishes()[0];
    assert_eq!(
        p.answered.last().map(String::as_str),
        Some("PUBLISH_COMPLETE")
    );
}

#[tokio::test]
async fn failed_processing_keeps_tiktoks_reason() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    fake.fail_processing(Some("frame_rate_check_failed"));
    let saves = Arc::new(Saves::default());
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "unsupported_media")
    );
    assert!(e.message.contains("23 to 60 frames"), "{}", e.message);
    assert!(
        e.platform_error
            .unwrap()
            .contains("frame_rate_check_failed")
    );

    // `internal` is TikTok's retryable failure: the next attempt sends the video again (nothing
    // was posted), once.
    fake.fail_processing(Some("internal"));
    let saves = Arc::new(Saves::default());
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    fake.fail_processing(None);
    let req = video_request(&fake, SHORT, &saves, saves.last());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::NotFound);
    tt.publish(&req).await.unwrap();
    let statuses: Vec<String> = fake.publishes().iter().map(|p| p.status.clone()).collect();
    assert_eq!(statuses, ["FAILED", "FAILED", "PUBLISH_COMPLETE"]);
}

/// A progress store that refuses to record `final_sent` (the store down at that moment).
#[derive(Default)]
struct RefusesFinalSent(Saves);

#[async_trait::async_trait]
impl ProgressSink for RefusesFinalSent {
    async fn save(&self, value: &Value) -> Result<(), PublishError> {
        if value["final_sent"] == json!(true) {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "store_unavailable",
                "the store is down",
            ));
        }
        self.0.save(value).await
    }
}

#[tokio::test]
async fn the_last_chunk_is_not_sent_unless_final_sent_was_saved() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let sink = Arc::new(RefusesFinalSent::default());
    let mut req = video_request(&fake, FILM, &Arc::new(Saves::default()), Value::Null);
    req.progress = Progress::new(Value::Null, sink.clone());
    let e = tt.publish(&req).await.unwrap_err();
    assert_eq!(e.code, "store_unavailable");
    // The first chunk went; the one that would complete the upload did not.
    assert_eq!(fake.calls("put"), 1);
    assert_eq!(fake.publishes()[0].chunk_puts, [1, 0]);
    assert_eq!(sink.0.last()["chunks_done"], json!(1));
}

#[tokio::test]
async fn a_lost_last_chunk_answer_then_a_forgotten_publish_is_never_posted_again() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let tt = connector(&fake, &media);
    fake.faults.push(
        "PUT",
        "/upload/video/",
        Fault::DelayAfterEffect(Duration::from_millis(1500)),
    );
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    let saved = saves.last();
    assert_eq!(
        (&saved["final_sent"], &saved["uploaded"]),
        (&json!(true), &json!(false))
    );
    // TikTok no longer knows the publish: whether it posted cannot be told.
    fake.forget_publish(saved["publish_id"].as_str().unwrap());
    let req = video_request(&fake, SHORT, &saves, saved);
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    assert_eq!(
        tt.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    assert_eq!(fake.calls("video_init"), 1, "no second publish");
    assert_eq!(fake.calls("put"), 1);
}

#[tokio::test]
async fn after_the_last_chunk_went_out_an_upload_is_never_started_over() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let impatient = TikTok::new(settings(&fake), media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_millis(50));
    // The chunk completing the upload is answered 206 (TikTok's state unknown): ambiguous, not
    // a retry that would send it until the URL expires.
    fake.faults.push(
        "PUT",
        "/upload/video/",
        Fault::Reply {
            status: 206,
            headers: Vec::new(),
            body: String::new(),
        },
    );
    let e = impatient
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["final_sent"], json!(true));

    // The upload URL gone (as saved): wait on TikTok's status, never start over.
    let mut expired = saved.clone();
    expired["upload_expires_at"] = json!(0);
    let req = video_request(&fake, SHORT, &saves, expired);
    let e = impatient.find_existing(&req).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let e = impatient.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "media_processing")
    );
    assert_eq!(fake.calls("video_init"), 1);
    assert_eq!(
        fake.chunks_accepted(),
        0,
        "nothing sent while the URL is gone"
    );

    // The upload URL still works and TikTok does not hold the file: the rest goes to this
    // same publish.
    let req = video_request(&fake, SHORT, &saves, saved);
    assert_eq!(
        impatient.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
    connector(&fake, &media).publish(&req).await.unwrap();
    assert_eq!(fake.calls("video_init"), 1, "one publish");
    let p = &fake.publishes()[0];
    assert_eq!(
        (p.chunk_puts.as_slice(), p.status.as_str()),
        (&[1][..], "PUBLISH_COMPLETE")
    );
}

/// A 403 to the first sending of the last chunk is a definite "not taken": TikTok never received
/// the file, so nothing was posted, and the video is sent again (a new publish), never waited on
/// until the target ends `unknown`.
#[tokio::test]
async fn an_upload_url_refused_at_the_last_chunk_has_posted_nothing() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let impatient = TikTok::new(settings(&fake), media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_millis(50));
    // The first chunk goes; the last is refused 403 (the URL expired).
    fake.faults.push(
        "PUT",
        "/upload/video/",
        Fault::DelayAfterEffect(Duration::ZERO),
    );
    fake.faults
        .reply("PUT", "/upload/video/", 403, &[], json!({}));
    let e = impatient
        .publish(&video_request(&fake, FILM, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "upload_expired", "{e:?}");
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let saved = saves.last();
    assert_eq!(
        (&saved["final_sent"], &saved["upload_dead"]),
        (&json!(false), &json!(true))
    );
    let req = video_request(&fake, FILM, &saves, saved);
    assert_eq!(
        impatient.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
    connector(&fake, &media).publish(&req).await.unwrap();
    assert_eq!(fake.calls("video_init"), 2, "sent again, once");
    let done: Vec<_> = fake
        .publishes()
        .into_iter()
        .filter(|p| p.status == "PUBLISH_COMPLETE")
        .collect();
    assert_eq!(done.len(), 1);
}

#[tokio::test]
async fn a_416_whose_range_ends_at_the_byte_count_resumes_at_the_right_chunk() {
    let fake = TikTokFake::start().await;
    fake.set_range_end_is_count(true);
    let media = streamed();
    let saves = Arc::new(Saves::default());
    let tt = connector(&fake, &media);
    // The first chunk arrives, its answer is lost.
    fake.faults.push(
        "PUT",
        "/upload/video/",
        Fault::DelayAfterEffect(Duration::from_millis(1500)),
    );
    let e = tt
        .publish(&video_request(&fake, LONG, &saves, Value::Null))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(saves.last()["chunks_done"], json!(0));
    // The status names no byte count: the first chunk is sent again, and TikTok's 416 says
    // `bytes 0-10485760/...`, its count of bytes.
    fake.faults.reply(
        "POST",
        "/v2/post/publish/status/fetch/",
        200,
        &[],
        json!({"data": {"status": "PROCESSING_UPLOAD"},
               "error": {"code": "ok", "message": "", "log_id": "x"}}),
    );
    let e = tt
        .publish(&video_request(&fake, LONG, &saves, saves.last()))
        .await
        .unwrap_err();
    assert_eq!(e.code, "upload_out_of_sync");
    let saved = saves.last();
    assert_eq!(
        (&saved["chunks_done"], &saved["upload_dead"]),
        (&json!(1), &json!(false))
    );
    tt.publish(&video_request(&fake, LONG, &saves, saved))
        .await
        .unwrap();
    assert_eq!(fake.calls("video_init"), 1, "the same upload went on");
    let p = &fake.publishes()[0];
    assert_eq!(p.chunk_puts, [1, 1, 1]);
    assert!(p.bytes == long());
}

#[tokio::test]
async fn progress_of_other_media_that_may_have_posted_is_never_posted_over() {
    let fake = TikTokFake::start().await;
    fake.verify("media.test");
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let film = json!({"kind": "video", "video_url": FILM, "publish_id": "v_pub_file~v2.1",
        "upload_url": format!("{}/upload/video/?upload_id=1&upload_token=t", fake.url),
        "upload_expires_at": 0, "video_size": 22020096, "chunk_size": CHUNK_BYTES,
        "total_chunk_count": 2, "chunks_done": 1, "uploaded": false, "final_sent": true,
        "upload_dead": false});
    // The last chunk of another video went out: this post may not go over it.
    let req = video_request(&fake, LONG, &saves, film.clone());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    assert_eq!(
        tt.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    let req = photo_request(&fake, &[PHOTO_A], &saves, film.clone());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    // A photo init of other photos went out.
    let photo = json!({"kind": "photo", "photo_urls": [PHOTO_B], "init_sent": true});
    let req = photo_request(&fake, &[PHOTO_A], &saves, photo.clone());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    assert_eq!(
        tt.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    let req = video_request(&fake, SHORT, &saves, photo);
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    assert_eq!(
        tt.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    assert_eq!(fake.calls("video_init") + fake.calls("content_init"), 0);
    // Another video's upload that never reached its last chunk posted nothing.
    let mut partial = film;
    partial["final_sent"] = json!(false);
    let req = video_request(&fake, SHORT, &saves, partial);
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::NotFound);
    tt.publish(&req).await.unwrap();
}

#[tokio::test]
async fn auth_removed_is_token_invalid_and_the_daily_cap_is_retried_from_scratch() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    fake.fail_processing(Some("auth_removed"));
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    // With a working token again, the post is made anew (the failed one posted nothing).
    fake.fail_processing(None);
    tt.publish(&video_request(&fake, SHORT, &saves, saves.last()))
        .await
        .unwrap();

    // TikTok's daily cap, told by the publish's status: retried after an hour, from scratch.
    let saves = Arc::new(Saves::default());
    fake.fail_processing(Some("spam_risk_too_many_posts"));
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable {
                retry_after: Some(Duration::from_secs(3600))
            },
            "daily_post_cap"
        )
    );
    fake.fail_processing(None);
    tt.publish(&video_request(&fake, SHORT, &saves, saves.last()))
        .await
        .unwrap();
    let statuses: Vec<String> = fake.publishes().iter().map(|p| p.status.clone()).collect();
    assert_eq!(
        statuses,
        ["FAILED", "PUBLISH_COMPLETE", "FAILED", "PUBLISH_COMPLETE"]
    );
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
            width: Some(720),
            height: Some(1280),
            duration_ms: Some(duration_ms),
        },
        sha256: "0".repeat(64),
        storage_key: "med_short".into(),
        file_name: "short.mp4".into(),
        source_url: None,
        idempotency_key: None,
        request_hash: "0".repeat(64),
        created_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn creator_info_violations_fail_before_anything_is_sent() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let check = |req: PublishRequest, code: &'static str, says: &'static str| {
        let tt = &tt;
        async move {
            let e = tt.publish(&req).await.unwrap_err();
            assert_eq!(
                (e.class, e.code.as_str()),
                (FailureClass::Permanent, code),
                "{e:?}"
            );
            assert!(e.message.contains(says), "{}", e.message);
        }
    };

    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = options(None);
    check(req, "missing_option", "post.options.tiktok.privacyLevel").await;
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = options(Some("FOLLOWER_OF_CREATOR"));
    check(
        req,
        "privacy_level_not_allowed",
        "PUBLIC_TO_EVERYONE, MUTUAL_FOLLOW_FRIENDS, SELF_ONLY",
    )
    .await;

    fake.set_creator(|c| {
        c.comment_disabled = true;
        c.max_video_post_duration_sec = 180;
    });
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = PlatformOptions::Tiktok(TiktokOptions {
        privacy_level: Some("SELF_ONLY".into()),
        allow_comments: Some(true),
        ..Default::default()
    });
    check(req, "interaction_disabled", "allowComments").await;
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.media = vec![video_record(181_000)];
    check(req, "video_too_long", "at most 180 s").await;
    // A private account: duets cannot be turned on.
    fake.set_creator(|c| c.private = true);
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = PlatformOptions::Tiktok(TiktokOptions {
        privacy_level: Some("FOLLOWER_OF_CREATOR".into()),
        allow_duet: Some(true),
        ..Default::default()
    });
    check(req, "interaction_disabled", "allowDuet").await;
    // Text alone.
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.content.media_type = MediaType::Text;
    req.content.video_url = None;
    check(req, "missing_media", "video or photos").await;

    assert_eq!(fake.calls("video_init"), 0);
    assert_eq!(fake.calls("put"), 0);
    assert!(saves.all().is_empty());

    // Left out, comments follow the creator (off) and the post goes through.
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = options(Some("FOLLOWER_OF_CREATOR"));
    req.media = vec![video_record(60_000)];
    tt.publish(&req).await.unwrap();
    let body = &fake.publishes()[0].body;
    assert_eq!(body["post_info"]["disable_comment"], true);
    assert_eq!(body["post_info"]["disable_duet"], true);
}

// ---------------------------------------------------------------------------------------------
// Photos

#[tokio::test]
async fn photos_are_pulled_from_verified_urls_and_published() {
    let fake = TikTokFake::start().await;
    fake.verify("https://media.test/media/");
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let post = tt
        .publish(&photo_request(
            &fake,
            &[PHOTO_A, PHOTO_B],
            &saves,
            Value::Null,
        ))
        .await
        .unwrap();
    let p = &fake.publishes()[0];
    assert_eq!(p.media_type, "PHOTO");
    assert_eq!(p.urls, [PHOTO_A, PHOTO_B]);
    assert_eq!(
        p.body,
        json!({"media_type": "PHOTO", "post_mode": "DIRECT_POST",
            "post_info": {"privacy_level": "PUBLIC_TO_EVERYONE", "disable_comment": false,
                "brand_content_toggle": false, "brand_organic_toggle": false,
                "title": "Pictures", "description": "Two pictures #soku"},
            "source_info": {"source": "PULL_FROM_URL", "photo_images": [PHOTO_A, PHOTO_B],
                "photo_cover_index": 0}})
    );
    let id = p.post_id.unwrap().to_string();
    assert_eq!(post.id, id);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.tiktok.com/@{USERNAME}/photo/{id}").as_str())
    );
    // The server fetched nothing: TikTok pulls.
    assert_eq!(media.streams(), 0);
    assert!(media.images.asked.lock().unwrap().is_empty());
    let saved = saves.all();
    assert_eq!(
        saved[0],
        json!({"kind": "photo", "photo_urls": [PHOTO_A, PHOTO_B], "init_sent": true})
    );
    assert_eq!(saved[1]["publish_id"], json!(p.publish_id));
}

#[tokio::test]
async fn unverified_photo_urls_are_refused_and_nothing_is_pending() {
    let fake = TikTokFake::start().await;
    let tt = connector(&fake, &streamed());
    let saves = Arc::new(Saves::default());
    let req = photo_request(&fake, &[PHOTO_A], &saves, Value::Null);
    let e = tt.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "url_ownership_unverified")
    );
    assert!(e.message.contains("verify"), "{}", e.message);
    assert_eq!(saves.last()["init_sent"], json!(false));
    let req = photo_request(&fake, &[PHOTO_A], &saves, saves.last());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::NotFound);
    assert!(fake.publishes().is_empty());
}

#[tokio::test]
async fn a_lost_photo_init_answer_cannot_be_told_and_is_never_sent_again() {
    let fake = TikTokFake::start().await;
    fake.verify("media.test");
    let tt = connector(&fake, &streamed());
    let saves = Arc::new(Saves::default());
    fake.faults.push(
        "POST",
        "/v2/post/publish/content/init/",
        Fault::DelayAfterEffect(Duration::from_millis(1500)),
    );
    let e = tt
        .publish(&photo_request(&fake, &[PHOTO_A], &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    let req = photo_request(&fake, &[PHOTO_A], &saves, saves.last());
    assert_eq!(tt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    assert_eq!(
        tt.publish(&req).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    assert_eq!(fake.calls("content_init"), 1);
}

#[tokio::test]
async fn png_photos_and_too_many_are_refused_before_any_call() {
    let fake = TikTokFake::start().await;
    fake.verify("media.test");
    let tt = connector(&fake, &streamed());
    let saves = Arc::new(Saves::default());
    let urls: Vec<String> = (0..36)
        .map(|i| format!("https://media.test/media/m{i}/p.jpg"))
        .collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let e = tt
        .publish(&photo_request(&fake, &refs, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "too_many_images");
    let mut req = photo_request(&fake, &[PHOTO_A], &saves, Value::Null);
    let mut record = video_record(0);
    record.facts.kind = soku_core::media::MediaKind::Image;
    record.facts.mime = "image/png";
    record.facts.duration_ms = None;
    req.media = vec![record];
    assert_eq!(
        tt.publish(&req).await.unwrap_err().code,
        "unsupported_media"
    );
    let mut req = photo_request(&fake, &[PHOTO_A], &saves, Value::Null);
    req.options = PlatformOptions::Tiktok(TiktokOptions {
        privacy_level: Some("SELF_ONLY".into()),
        title: Some("t".repeat(91)),
        ..Default::default()
    });
    assert_eq!(tt.publish(&req).await.unwrap_err().code, "text_too_long");
    assert_eq!(fake.calls("creator_info") + fake.calls("content_init"), 0);
}

// ---------------------------------------------------------------------------------------------
// Tokens, limits, caps

#[tokio::test]
async fn expired_or_revoked_tokens_are_token_invalid() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let req = video_request(&fake, SHORT, &saves, Value::Null);
    fake.expire_access_token(req.account.access_token.as_deref().unwrap());
    let e = tt.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(e.platform_error.unwrap().contains("access_token_invalid"));

    // Refreshed, it posts.
    let refresh = fake.mint_refresh_token(WRITE_SCOPE);
    let tokens = tt.refresh(&account(None, Some(refresh))).await.unwrap();
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.account.access_token = Some(tokens.access_token);
    tt.publish(&req).await.unwrap();

    // A token without video.publish.
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.account.access_token = Some(fake.mint_access_token("user.info.basic"));
    // `token_invalid`, so the engine refreshes or flags the account for reconnecting.
    let e = tt.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(e.platform_error.unwrap().contains("scope_not_authorized"));
    // A refresh whose grant lacks video.publish cannot give posting back: reconnect.
    let refresh = fake.mint_refresh_token("user.info.basic");
    assert_eq!(
        tt.refresh(&account(None, Some(refresh)))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Rejected
    );
}

#[tokio::test]
async fn rate_limits_and_daily_caps_are_retryable_after_their_wait() {
    let fake = TikTokFake::start().await;
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    fake.push_rate_limit("/v2/post/publish/video/init/", Some(3));
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable {
                retry_after: Some(Duration::from_secs(3))
            },
            "rate_limited"
        )
    );
    // The fake's own per-token limit (6 inits a minute): without Retry-After, a minute.
    fake.set_rate_limit(Endpoint::VideoInit, 1);
    let req = video_request(&fake, SHORT, &saves, Value::Null);
    tt.publish(&req).await.unwrap();
    let e = tt.publish(&req).await.unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(60))
        }
    );

    // The creator's daily cap: creator_info answers it with HTTP 200.
    fake.set_creator(|c| c.post_cap = 1);
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable {
                retry_after: Some(Duration::from_secs(3600))
            },
            "daily_post_cap"
        )
    );
    fake.set_creator(|c| {
        c.post_cap = 100;
        c.banned = true;
    });
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "blocked")
    );
    assert_eq!(fake.publishes().len(), 1);
}

#[tokio::test]
async fn an_unaudited_app_posts_only_privately_to_private_accounts() {
    let fake = TikTokFake::start().await;
    fake.set_audited(false);
    let media = streamed();
    let tt = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let e = tt
        .publish(&video_request(&fake, SHORT, &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "app_not_audited")
    );
    assert!(e.message.contains("audit"), "{}", e.message);
    assert_eq!(fake.chunks_accepted(), 0);

    fake.set_creator(|c| c.private = true);
    let mut req = video_request(&fake, SHORT, &saves, Value::Null);
    req.options = options(Some("FOLLOWER_OF_CREATOR"));
    let post = tt.publish(&req).await.unwrap();
    let p = &fake.publishes()[0];
    assert_eq!(p.effective_privacy, "SELF_ONLY");
    assert_eq!((post.id.as_str(), post.url), (p.publish_id.as_str(), None));

    // At most five creators a day.
    for i in 0..5 {
        let mut req = video_request(&fake, SHORT, &saves, Value::Null);
        req.options = options(Some("SELF_ONLY"));
        req.account.access_token =
            Some(fake.mint_access_token_for(&format!("other-{i}"), WRITE_SCOPE));
        let r = tt.publish(&req).await;
        assert_eq!(r.is_ok(), i < 4, "{i}: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.code, "app_user_cap");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The fake itself

/// The fake refuses what TikTok documents as refused: wrong chunk arithmetic, chunks out of
/// order or of the wrong size, an expired or unknown upload URL, a video type TikTok does not
/// take.
#[tokio::test]
async fn the_fake_checks_inits_and_chunks() {
    let fake = TikTokFake::start().await;
    let token = fake.mint_access_token(WRITE_SCOPE);
    let http = reqwest::Client::new();
    let init_with = |token: &str, source_info: Value| {
        http.post(format!("{}/v2/post/publish/video/init/", fake.url))
            .bearer_auth(token)
            .header("content-type", "application/json; charset=UTF-8")
            .body(
                json!({"post_info": {"privacy_level": "SELF_ONLY", "brand_content_toggle": false},
                       "source_info": source_info})
                .to_string(),
            )
            .send()
    };
    let init = |source_info: Value| init_with(&token, source_info);
    let size: u64 = 12 * MIB as u64;
    for bad in [
        json!({"source": "FILE_UPLOAD", "video_size": size, "chunk_size": 5 * MIB, "total_chunk_count": 3}),
        json!({"source": "FILE_UPLOAD", "video_size": size, "chunk_size": MIB, "total_chunk_count": 12}),
        json!({"source": "FILE_UPLOAD", "video_size": 1000, "chunk_size": 500, "total_chunk_count": 2}),
        json!({"source": "FILE_UPLOAD", "video_size": size}),
    ] {
        let r = init(bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_param");
    }
    // Without privacy_level: TikTok's 403.
    let r = http
        .post(format!("{}/v2/post/publish/video/init/", fake.url))
        .bearer_auth(&token)
        .header("content-type", "application/json; charset=UTF-8")
        .body(
            json!({"post_info": {"brand_content_toggle": false}, "source_info":
            {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10, "total_chunk_count": 1}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "privacy_level_option_mismatch"
    );

    // 12 MiB in two chunks: 6 MiB each.
    let chunk = 6 * MIB as u64;
    let ok: Value = init(json!({"source": "FILE_UPLOAD", "video_size": size,
        "chunk_size": chunk, "total_chunk_count": 2}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ok["error"]["code"], "ok");
    let upload_url = ok["data"]["upload_url"].as_str().unwrap().to_owned();
    let put = |first: u64, len: u64, ct: &'static str| {
        http.put(&upload_url)
            .header("content-type", ct)
            .header(
                "content-range",
                format!("bytes {first}-{}/{size}", first + len - 1),
            )
            .body(vec![0u8; len as usize])
            .send()
    };
    assert_eq!(
        put(chunk, chunk, "video/mp4").await.unwrap().status(),
        416,
        "out of order"
    );
    assert_eq!(
        put(0, MIB as u64, "video/mp4").await.unwrap().status(),
        400,
        "wrong size"
    );
    assert_eq!(
        put(0, chunk, "video/x-matroska").await.unwrap().status(),
        400
    );
    let r = put(0, chunk, "video/mp4").await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-{}/{size}", chunk - 1)
    );
    let r = put(0, chunk, "video/mp4").await.unwrap();
    assert_eq!(r.status(), 416, "a chunk already taken");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-{}/{size}", chunk - 1)
    );
    assert_eq!(put(chunk, chunk, "video/mp4").await.unwrap().status(), 201);
    let unknown = upload_url.replace("upload_token=", "upload_token=x");
    let r = http
        .put(&unknown)
        .header("content-type", "video/mp4")
        .header("content-range", "bytes 0-0/1")
        .body(vec![0u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Six inits a minute per token: the seventh is refused.
    let small = json!({"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 10,
        "total_chunk_count": 1});
    let r = init(small.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );

    // An expired upload URL.
    fake.set_upload_url_ttl(Duration::ZERO);
    let other = fake.mint_access_token(WRITE_SCOPE);
    let ok: Value = init_with(&other, small)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .put(ok["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .header("content-range", "bytes 0-9/10")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // An unknown publish, a missing token.
    let r = http
        .post(format!("{}/v2/post/publish/status/fetch/", fake.url))
        .bearer_auth(&token)
        .header("content-type", "application/json; charset=UTF-8")
        .body(json!({"publish_id": "v_pub_file~v2.0"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_publish_id"
    );
    let r = http
        .post(format!("{}/v2/post/publish/creator_info/query/", fake.url))
        .header("content-type", "application/json; charset=UTF-8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "access_token_invalid"
    );
}
