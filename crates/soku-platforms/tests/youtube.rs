//! The YouTube connector against the loopback fake of Google's OAuth and the YouTube Data API
//! (`soku_fakes::youtube`). Every test ends by checking everything the connector sent and was
//! answered against the extract of Google's discovery document (`drift_problems`).

mod support;

use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    Connector, Existing, FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{MediaType, PlatformOptions, PostContent, YoutubeOptions, YoutubePrivacy};
use soku_fakes::media_files;
use soku_fakes::youtube::{
    CHANNEL_HANDLE, CHANNEL_ID, CHANNEL_TITLE, CLIENT_ID, CLIENT_SECRET, Outcome, REDIRECT_URI,
    UPLOADS_PLAYLIST, YouTubeFake,
};
use soku_fakes::{Fault, common::pkce_challenge};
use soku_platforms::PlatformSettings;
use soku_platforms::youtube::{SCOPES, UPLOAD_LIMIT_WAIT, YouTube, until_midnight_pacific};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::{MemoryMedia, Saves, StreamedMedia};

const KIB: usize = 1024;
const FILM: &str = "https://media.test/media/med_film/film.mp4";
const SHORT: &str = "https://media.test/media/med_short/short.mp4";
/// 256 KiB chunks in the tests, so that a 3 MB file takes twelve.
const CHUNK: u64 = 256 * 1024;

/// About 3 MB: twelve chunks of 256 KiB.
fn film() -> Vec<u8> {
    media_files::mp4(1280, 720, 10_000, 3_000_000)
}

/// Smaller than a chunk: one PUT, the last.
fn short() -> Vec<u8> {
    media_files::mp4(720, 1280, 30_000, 100 * KIB)
}

fn streamed() -> Arc<StreamedMedia> {
    StreamedMedia::new(
        MemoryMedia::new([]),
        [(FILM, film()), (SHORT, short())],
        true,
    )
}

fn settings(fake: &YouTubeFake) -> PlatformSettings {
    PlatformSettings {
        api_url: fake.url.clone(),
        auth_url: fake.auth_url(),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        timeout: Duration::from_secs(1),
    }
}

/// The connector as a process runs it.
fn youtube(fake: &YouTubeFake, media: &Arc<StreamedMedia>) -> YouTube {
    YouTube::new(settings(fake), media.clone())
        .with_token_url(&fake.token_url())
        .with_polling(Duration::from_millis(10), Duration::from_secs(5))
        .with_chunk_bytes(CHUNK)
}

fn account(access: Option<String>, refresh: Option<String>) -> AccountCredentials {
    AccountCredentials {
        account_id: CHANNEL_ID.into(),
        username: Some(CHANNEL_HANDLE.into()),
        access_token: access,
        refresh_token: refresh,
        meta: json!({"channel_id": CHANNEL_ID}),
    }
}

/// A video post whose progress is kept in `saves`, starting from `saved`.
fn video_request(
    fake: &YouTubeFake,
    url: &str,
    text: Option<&str>,
    saves: &Arc<Saves>,
    saved: Value,
) -> PublishRequest {
    let token = fake.mint_access_token(&YouTubeFake::full_scope());
    PublishRequest {
        marker: "sub_1:youtube:UC".into(),
        user_id: "user_1".into(),
        submission_id: "sub_1".into(),
        target_id: "tgt_1".into(),
        platform: Platform::Youtube,
        account: account(Some(token), None),
        content: PostContent {
            text: text.map(str::to_owned),
            media_type: MediaType::Video,
            image_urls: vec![],
            video_url: Some(url.to_owned()),
        },
        options: PlatformOptions::None,
        media: Vec::new(),
        progress: Progress::new(saved, saves.clone()),
        not_before: chrono::Utc::now() - chrono::Duration::seconds(5),
    }
}

fn no_drift(fake: &YouTubeFake) {
    let problems = fake.drift_problems();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(!fake.exchanges().is_empty());
}

fn auth_request(state: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        state: state.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_challenge: pkce_challenge(VERIFIER),
        params: json!({"platform": "youtube"}),
    }
}

const VERIFIER: &str = "the-pkce-verifier-kept-with-the-state-0123456789abcdef";

fn exchange_of(code: &str) -> CodeExchange {
    CodeExchange {
        code: code.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: VERIFIER.into(),
        pending: json!({}),
    }
}

/// Follows the authorization URL as the user who approves; the callback's query.
async fn approve(url: &str) -> HashMap<String, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FOUND);
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    location.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn oauth_connects_the_channel_with_offline_access_and_refreshes() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let yt = youtube(&fake, &media);
    assert_eq!(yt.connect_method(), ConnectMethod::OAuth);
    assert!(yt.configured());
    let start = yt.authorize(&auth_request("st/1")).await.unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/o/oauth2/v2/auth");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], pkce_challenge(VERIFIER));

    let cb = approve(&start.url).await;
    assert_eq!(cb["state"], "st/1");
    let acct = yt.exchange(&exchange_of(&cb["code"])).await.unwrap();
    assert_eq!(acct.account_id, CHANNEL_ID);
    assert_eq!(acct.username.as_deref(), Some(CHANNEL_HANDLE));
    assert_eq!(acct.display_name.as_deref(), Some(CHANNEL_TITLE));
    assert_eq!(acct.meta["uploads_playlist"], UPLOADS_PLAYLIST);
    assert_eq!(acct.meta["refresh_token_issued"], true);
    let refresh = acct.tokens.refresh_token.clone().unwrap();
    let expires = acct.tokens.expires_at.unwrap() - chrono::Utc::now();
    assert!(expires > chrono::Duration::minutes(55) && expires <= chrono::Duration::hours(1));
    assert!(!format!("{acct:?} {yt:?}").contains(CLIENT_SECRET));

    // A code works once.
    let replay = yt.exchange(&exchange_of(&cb["code"])).await.unwrap_err();
    assert_eq!(replay.kind, ConnectErrorKind::Rejected);
    // A wrong verifier is refused.
    let cb = approve(&yt.authorize(&auth_request("s2")).await.unwrap().url).await;
    let mut wrong = exchange_of(&cb["code"]);
    wrong.code_verifier = "another-verifier-another-verifier-another-verifier".into();
    assert_eq!(
        yt.exchange(&wrong).await.unwrap_err().kind,
        ConnectErrorKind::Rejected
    );

    // Refresh: a new access token, the refresh token kept (none sent back).
    let creds = account(
        Some(acct.tokens.access_token.clone()),
        Some(refresh.clone()),
    );
    let tokens = yt.refresh(&creds).await.unwrap();
    assert!(fake.access_token_valid(&tokens.access_token));
    assert_eq!(tokens.refresh_token, None);

    // Wrong client credentials: this server's configuration.
    let mut s = settings(&fake);
    s.client_secret = Some("wrong".into());
    let misconfigured = YouTube::new(s, media.clone()).with_token_url(&fake.token_url());
    assert_eq!(
        misconfigured.refresh(&creds).await.unwrap_err().kind,
        ConnectErrorKind::NotConfigured
    );

    // The user revokes the app: invalid_grant, the account needs reconnecting.
    fake.revoke_all();
    let e = yt.refresh(&creds).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.platform_error.unwrap().contains("invalid_grant"));
    assert_eq!(
        yt.refresh(&account(None, None)).await.unwrap_err().kind,
        ConnectErrorKind::NotRefreshable
    );
    no_drift(&fake);
}

#[tokio::test]
async fn a_google_account_without_a_channel_is_refused() {
    let fake = YouTubeFake::start().await;
    fake.set_has_channel(false);
    let yt = youtube(&fake, &streamed());
    let cb = approve(&yt.authorize(&auth_request("s")).await.unwrap().url).await;
    let e = yt.exchange(&exchange_of(&cb["code"])).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.message.contains("no YouTube channel"), "{e:?}");
}

#[tokio::test]
async fn a_video_is_uploaded_in_chunks_with_its_options_and_processed() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(2);
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    let mut req = video_request(
        &fake,
        FILM,
        Some("Our film\nShot in Lisbon."),
        &saves,
        Value::Null,
    );
    req.options = PlatformOptions::Youtube(YoutubeOptions {
        title: Some("Lisbon <in> a day".into()),
        description: Some("A day in Lisbon.".into()),
        privacy_status: Some(YoutubePrivacy::Unlisted),
        made_for_kids: Some(true),
        tags: Some(vec!["lisbon".into(), "short film".into()]),
    });
    let post = yt.publish(&req).await.unwrap();

    let videos = fake.videos();
    assert_eq!(videos.len(), 1);
    let v = &videos[0];
    assert_eq!(post.id, v.id);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.youtube.com/watch?v={}", v.id).as_str())
    );
    assert!(v.bytes == film(), "the whole file, in order");
    assert_eq!(v.title, "Lisbon ‹in› a day");
    assert_eq!(v.description, "A day in Lisbon.");
    assert_eq!(v.privacy_status, "unlisted");
    assert_eq!(v.self_declared_made_for_kids, Some(true));
    assert_eq!(v.tags, ["lisbon", "short film"]);
    assert_eq!(v.category_id, "22");
    assert!(v.notify_subscribers);
    assert_eq!(v.reads, ["uploaded", "uploaded", "processed"]);

    let sessions = fake.sessions();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.content_type, "video/mp4");
    assert_eq!(s.total, film().len() as u64);
    assert_eq!(s.chunks.len(), film().len().div_ceil(CHUNK as usize));
    assert!(
        s.chunks[..s.chunks.len() - 1]
            .iter()
            .all(|(_, n)| *n == CHUNK)
    );
    assert_eq!(s.status_queries, 0);
    assert_eq!(fake.inserts_used(), 1);
    assert_eq!(media.streams(), 1);

    // The session URI was saved first, the last chunk marked before it went out, then the id.
    let all = saves.all();
    assert!(all[0]["session"].as_str().unwrap().contains("upload_id="));
    assert_eq!(all[0]["final_sent"], false);
    assert_eq!(all[1]["final_sent"], true);
    assert!(all[1].get("video_id").is_none());
    assert_eq!(saves.last()["video_id"], json!(v.id));
    no_drift(&fake);
}

#[tokio::test]
async fn defaults_come_from_the_text() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(0);
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    yt.publish(&video_request(
        &fake,
        SHORT,
        Some("A vertical short\n\nwith a description"),
        &saves,
        Value::Null,
    ))
    .await
    .unwrap();
    let v = &fake.videos()[0];
    assert_eq!(v.title, "A vertical short");
    assert_eq!(v.description, "A vertical short\n\nwith a description");
    assert_eq!(v.privacy_status, "public");
    assert_eq!(v.self_declared_made_for_kids, Some(false));
    assert!(v.tags.is_empty());
    // One chunk, the last.
    assert_eq!(fake.sessions()[0].chunks.len(), 1);
    no_drift(&fake);
}

#[tokio::test]
async fn a_restart_mid_upload_resumes_the_session_from_the_acknowledged_byte() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    // The first read breaks off after the first 1,000,003-byte piece: three chunks are up.
    *media.break_after.lock().unwrap() = Some(1_000_000);
    let first = youtube(&fake, &media);
    let e = first
        .publish(&video_request(
            &fake,
            FILM,
            Some("Our film"),
            &saves,
            Value::Null,
        ))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let saved = saves.last();
    assert!(saved["session"].is_string());
    assert_eq!(saved["final_sent"], false);
    assert_eq!(fake.chunk_puts(), 3);
    drop(first);

    let second = youtube(&fake, &media);
    second
        .publish(&video_request(&fake, FILM, Some("Our film"), &saves, saved))
        .await
        .unwrap();
    let sessions = fake.sessions();
    assert_eq!(sessions.len(), 1, "the same session");
    assert_eq!(sessions[0].status_queries, 1);
    assert_eq!(
        sessions[0].chunks[3].0,
        3 * CHUNK,
        "resumed after the third chunk"
    );
    assert_eq!(fake.chunk_puts(), film().len().div_ceil(CHUNK as usize));
    assert_eq!(fake.videos().len(), 1);
    assert!(fake.videos()[0].bytes == film());
    assert_eq!(fake.inserts_used(), 1);
    no_drift(&fake);
}

#[tokio::test]
async fn a_lost_final_answer_finds_the_same_video() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(0);
    let media = streamed();
    let saves = Arc::new(Saves::default());
    // The one chunk is taken, its answer comes after the client gave up.
    fake.faults.push(
        "PUT",
        "/upload/youtube/v3/videos",
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let yt = youtube(&fake, &media);
    let e = yt
        .publish(&video_request(
            &fake,
            SHORT,
            Some("Short"),
            &saves,
            Value::Null,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous, "{e:?}");
    assert_eq!(fake.videos().len(), 1, "the upload completed");
    let saved = saves.last();
    assert_eq!(saved["final_sent"], true);
    assert!(saved.get("video_id").is_none());

    // Reconciliation asks the session: it answers what it answered on completion.
    let req = video_request(&fake, SHORT, Some("Short"), &saves, saved.clone());
    let id = fake.videos()[0].id.clone();
    match yt.find_existing(&req).await.unwrap() {
        Existing::Found(post) => assert_eq!(post.id, id),
        other => panic!("{other:?}"),
    }
    assert_eq!(saves.last()["video_id"], json!(id));
    // A retry from the state before the lookup saved the id: the same video, nothing sent.
    let post = yt
        .publish(&video_request(&fake, SHORT, Some("Short"), &saves, saved))
        .await
        .unwrap();
    assert_eq!(post.id, id);
    assert_eq!(fake.videos().len(), 1);
    assert_eq!(fake.sessions().len(), 1);
    assert_eq!(fake.chunk_puts(), 1);
    assert_eq!(media.streams(), 1, "the file was not read again");
    // With the id saved, a lookup reads the video.
    let req = video_request(&fake, SHORT, Some("Short"), &saves, saves.last());
    assert!(matches!(yt.find_existing(&req).await.unwrap(), Existing::Found(p) if p.id == id));
    no_drift(&fake);
}

#[tokio::test]
async fn an_expired_session_before_the_last_chunk_starts_a_new_one() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    *media.break_after.lock().unwrap() = Some(1_000_000);
    let yt = youtube(&fake, &media);
    yt.publish(&video_request(
        &fake,
        FILM,
        Some("Film"),
        &saves,
        Value::Null,
    ))
    .await
    .unwrap_err();
    let saved = saves.last();
    fake.expire_sessions();
    // Nothing was created: a lookup says so.
    let req = video_request(&fake, FILM, Some("Film"), &saves, saved.clone());
    assert_eq!(yt.find_existing(&req).await.unwrap(), Existing::NotFound);
    let post = yt
        .publish(&video_request(&fake, FILM, Some("Film"), &saves, saved))
        .await
        .unwrap();
    let sessions = fake.sessions();
    assert_eq!(sessions.len(), 2, "a new session");
    assert_eq!(sessions[1].video_id.as_deref(), Some(post.id.as_str()));
    assert_eq!(fake.videos().len(), 1);
    assert!(fake.videos()[0].bytes == film());
    no_drift(&fake);
}

#[tokio::test]
async fn an_expired_session_after_the_last_chunk_is_never_uploaded_again() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    fake.faults.push(
        "PUT",
        "/upload/youtube/v3/videos",
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let yt = youtube(&fake, &media);
    yt.publish(&video_request(&fake, SHORT, None, &saves, Value::Null))
        .await
        .unwrap_err();
    fake.expire_sessions();
    let saved = saves.last();
    let req = video_request(&fake, SHORT, None, &saves, saved.clone());
    assert_eq!(yt.find_existing(&req).await.unwrap(), Existing::CannotTell);
    let e = yt
        .publish(&video_request(&fake, SHORT, None, &saves, saved))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("upload_outcome_unknown", FailureClass::Ambiguous)
    );
    assert_eq!(fake.sessions().len(), 1);
    assert_eq!(fake.videos().len(), 1);
    no_drift(&fake);
}

#[tokio::test]
async fn quota_exhaustion_is_retryable_at_the_pacific_reset() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    fake.exhaust_upload_quota();
    let e = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "quota_exceeded");
    let FailureClass::Retryable {
        retry_after: Some(wait),
    } = e.class
    else {
        panic!("{e:?}")
    };
    let expected = until_midnight_pacific(chrono::Utc::now());
    assert!(wait.abs_diff(expected) < Duration::from_secs(5), "{wait:?}");
    assert!(e.platform_error.unwrap().contains("youtube.quota"));
    assert!(fake.sessions().is_empty());

    let fake = YouTubeFake::start().await;
    let yt = youtube(&fake, &media);
    fake.set_channel_upload_limit(Some(0));
    let e = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "upload_limit_exceeded");
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(UPLOAD_LIMIT_WAIT)
        }
    );

    // The units bucket runs out while waiting for processing: the upload completed, so the
    // video is on the channel and the post is published (with a log line).
    let fake = YouTubeFake::start().await;
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    fake.exhaust_quota();
    let post = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap();
    assert_eq!(fake.videos().len(), 1);
    assert_eq!(post.id, fake.videos()[0].id);
    assert_eq!(saves.last()["video_id"], json!(post.id));
    no_drift(&fake);
}

#[tokio::test]
async fn failed_or_rejected_processing_ends_failed_with_youtubes_reason() {
    for (outcome, code, reason) in [
        (
            Outcome::Failed("codec".into()),
            "media_processing_failed",
            "codec",
        ),
        (
            Outcome::Rejected("duplicate".into()),
            "media_rejected",
            "duplicate",
        ),
        (
            Outcome::ProcessingFailed("transcodeFailed".into()),
            "media_processing_failed",
            "transcodeFailed",
        ),
    ] {
        let fake = YouTubeFake::start().await;
        fake.set_next_outcome(outcome);
        let media = streamed();
        let yt = youtube(&fake, &media);
        let saves = Arc::new(Saves::default());
        let e = yt
            .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
            .await
            .unwrap_err();
        assert_eq!((e.code.as_str(), e.class), (code, FailureClass::Permanent));
        assert!(e.message.contains(reason), "{e:?}");
        // A retry reads the same verdict from the saved id; nothing is uploaded again.
        let again = yt
            .publish(&video_request(
                &fake,
                SHORT,
                Some("x"),
                &saves,
                saves.last(),
            ))
            .await
            .unwrap_err();
        assert_eq!(again.code, code);
        assert_eq!(fake.sessions().len(), 1);
        no_drift(&fake);
    }
}

#[tokio::test]
async fn still_processing_at_the_deadline_is_published() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(1_000);
    let media = streamed();
    let yt = YouTube::new(settings(&fake), media.clone())
        .with_token_url(&fake.token_url())
        .with_polling(Duration::from_millis(10), Duration::from_millis(200));
    let saves = Arc::new(Saves::default());
    let post = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap();
    let v = fake.video(&post.id).unwrap();
    assert!(v.reads.len() >= 2);
    assert!(v.reads.iter().all(|r| r == "uploaded"));
    no_drift(&fake);
}

#[tokio::test]
async fn bad_posts_are_refused_before_any_call() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    let mut req = video_request(&fake, SHORT, Some("x"), &saves, Value::Null);
    req.options = PlatformOptions::Youtube(YoutubeOptions {
        title: Some("t".repeat(101)),
        ..Default::default()
    });
    let e = yt.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("title_too_long", FailureClass::Permanent)
    );
    let mut text_only = video_request(&fake, SHORT, Some("just text"), &saves, Value::Null);
    text_only.content.video_url = None;
    text_only.content.media_type = MediaType::Text;
    let e = yt.publish(&text_only).await.unwrap_err();
    assert_eq!(e.code, "missing_video");
    assert_eq!(fake.inserts_used(), 0);
    assert!(fake.exchanges().is_empty());
}

#[tokio::test]
async fn a_refused_token_is_token_invalid() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    let req = video_request(&fake, SHORT, Some("x"), &saves, Value::Null);
    fake.revoke_all();
    let e = yt.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        (TOKEN_INVALID, FailureClass::Permanent)
    );
    // A server error on the session start is retryable (nothing exists yet).
    let req = video_request(&fake, SHORT, Some("x"), &saves, Value::Null);
    fake.push_server_error("POST", "/upload/youtube/v3/videos", 503);
    let e = yt.publish(&req).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert!(fake.videos().is_empty());
}

/// Google's error envelope.
fn google_error(code: u16, reason: &str, domain: &str) -> Value {
    json!({"error": {"code": code, "message": reason,
                     "errors": [{"message": reason, "domain": domain, "reason": reason}]}})
}

const VIDEOS_LIST: &str = "/youtube/v3/videos";
const UPLOAD_PATH: &str = "/upload/youtube/v3/videos";

#[tokio::test]
async fn a_processing_read_that_fails_after_the_upload_is_published() {
    for (status, reason, domain) in [
        (401, "authError", "global"),
        (503, "backendError", "global"),
        (403, "quotaExceeded", "youtube.quota"),
    ] {
        let fake = YouTubeFake::start().await;
        fake.set_processing_polls(0);
        let media = streamed();
        let yt = youtube(&fake, &media);
        let saves = Arc::new(Saves::default());
        fake.faults.reply(
            "GET",
            VIDEOS_LIST,
            status,
            &[],
            google_error(status, reason, domain),
        );
        let post = yt
            .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
            .await
            .unwrap_or_else(|e| panic!("{status} {reason}: {e:?}"));
        assert_eq!(fake.videos().len(), 1);
        assert_eq!(post.id, fake.videos()[0].id);
        assert_eq!(saves.last()["video_id"], json!(post.id));

        // A retry, or a lookup, from the saved id whose read fails: the same video, published.
        fake.faults.reply(
            "GET",
            VIDEOS_LIST,
            status,
            &[],
            google_error(status, reason, domain),
        );
        let again = yt
            .publish(&video_request(
                &fake,
                SHORT,
                Some("x"),
                &saves,
                saves.last(),
            ))
            .await
            .unwrap();
        assert_eq!(again.id, post.id);
        fake.faults.reply(
            "GET",
            VIDEOS_LIST,
            status,
            &[],
            google_error(status, reason, domain),
        );
        let req = video_request(&fake, SHORT, Some("x"), &saves, saves.last());
        assert!(
            matches!(yt.find_existing(&req).await.unwrap(), Existing::Found(p) if p.id == post.id)
        );
        assert_eq!(fake.sessions().len(), 1, "never uploaded again");
        no_drift(&fake);
    }

    // The token read back for the processing state is refused outright (the whole grant was
    // revoked right after the upload): published, not token_invalid.
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    let req = video_request(&fake, SHORT, Some("x"), &saves, Value::Null);
    let post = yt.publish(&req).await.unwrap();
    fake.revoke_all();
    let mut req = video_request(&fake, SHORT, Some("x"), &saves, saves.last());
    let again = yt.publish(&req).await.unwrap();
    assert_eq!(again.id, post.id);
    // Without any access token at all.
    req.account.access_token = None;
    assert_eq!(yt.publish(&req).await.unwrap().id, post.id);
    assert!(matches!(yt.find_existing(&req).await.unwrap(), Existing::Found(p) if p.id == post.id));
    assert_eq!(fake.sessions().len(), 1);
}

#[tokio::test]
async fn a_video_youtube_does_not_list_ends_failed_deleted() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(0);
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    let none_listed = || {
        fake.faults.reply(
            "GET",
            VIDEOS_LIST,
            200,
            &[],
            json!({"kind": "youtube#videoListResponse", "etag": "e",
                   "pageInfo": {"totalResults": 0, "resultsPerPage": 0}, "items": []}),
        )
    };
    none_listed();
    let e = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.class),
        ("media_deleted", FailureClass::Permanent),
        "{e:?}"
    );
    assert!(saves.last()["video_id"].is_string());
    // The lookup agrees (`NotFound`), and a retry reports the same from the saved id.
    none_listed();
    let req = video_request(&fake, SHORT, Some("x"), &saves, saves.last());
    assert_eq!(yt.find_existing(&req).await.unwrap(), Existing::NotFound);
    none_listed();
    let e = yt.publish(&req).await.unwrap_err();
    assert_eq!(e.code, "media_deleted");
    assert_eq!(fake.sessions().len(), 1, "never uploaded again");
    no_drift(&fake);
}

#[tokio::test]
async fn a_refused_last_chunk_lets_a_later_attempt_start_a_new_session() {
    for (status, reason) in [(400, "badContent"), (429, "rateLimitExceeded")] {
        let fake = YouTubeFake::start().await;
        fake.set_processing_polls(0);
        let media = streamed();
        let yt = youtube(&fake, &media);
        let saves = Arc::new(Saves::default());
        // The one chunk of the short video, the last, is refused.
        fake.faults.reply(
            "PUT",
            UPLOAD_PATH,
            status,
            &[],
            google_error(status, reason, "global"),
        );
        yt.publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
            .await
            .unwrap_err();
        assert!(fake.videos().is_empty());
        let saved = saves.last();
        assert_eq!(saved["final_sent"], false, "{status}: {saved}");
        // The session expires before the next attempt: nothing was created, a new session.
        fake.expire_sessions();
        let req = video_request(&fake, SHORT, Some("x"), &saves, saved.clone());
        assert_eq!(yt.find_existing(&req).await.unwrap(), Existing::NotFound);
        let post = yt
            .publish(&video_request(&fake, SHORT, Some("x"), &saves, saved))
            .await
            .unwrap();
        assert_eq!(fake.sessions().len(), 2);
        assert_eq!(fake.videos().len(), 1);
        assert_eq!(post.id, fake.videos()[0].id);
        no_drift(&fake);
    }
}

#[tokio::test]
async fn a_restarted_session_that_expires_too_leaves_the_last_chunk_unsent() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(0);
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    // The last (only) chunk finds its session gone, twice: the first and the restarted one.
    for _ in 0..2 {
        fake.faults.reply(
            "PUT",
            UPLOAD_PATH,
            404,
            &[],
            json!({"error": {"code": 404, "message": "Not Found"}}),
        );
    }
    let e = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(e.code, "upload_session_expired", "{e:?}");
    assert_eq!(fake.sessions().len(), 2);
    let saved = saves.last();
    assert_eq!(saved["final_sent"], false, "{saved}");
    fake.expire_sessions();
    let req = video_request(&fake, SHORT, Some("x"), &saves, saved.clone());
    assert_eq!(yt.find_existing(&req).await.unwrap(), Existing::NotFound);
    let post = yt
        .publish(&video_request(&fake, SHORT, Some("x"), &saves, saved))
        .await
        .unwrap();
    assert_eq!(fake.sessions().len(), 3);
    assert_eq!(fake.videos().len(), 1);
    assert_eq!(post.id, fake.videos()[0].id);
    no_drift(&fake);
}

#[tokio::test]
async fn progress_of_another_media_url_is_never_uploaded_past() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(0);
    let media = streamed();
    let yt = youtube(&fake, &media);
    let saves = Arc::new(Saves::default());
    // SHORT was uploaded; the target's request now names FILM.
    yt.publish(&video_request(&fake, SHORT, Some("x"), &saves, Value::Null))
        .await
        .unwrap();
    let with_id = saves.last();
    assert!(with_id["video_id"].is_string());
    let mut final_only = with_id.clone();
    final_only.as_object_mut().unwrap().remove("video_id");
    assert_eq!(final_only["final_sent"], true);
    let mut no_url = with_id.clone();
    no_url.as_object_mut().unwrap().remove("video_url");
    for saved in [with_id, final_only, no_url] {
        let req = video_request(&fake, FILM, Some("x"), &saves, saved.clone());
        assert_eq!(
            yt.find_existing(&req).await.unwrap(),
            Existing::CannotTell,
            "{saved}"
        );
        let e = yt.publish(&req).await.unwrap_err();
        assert_eq!(e.class, FailureClass::Ambiguous, "{saved}: {e:?}");
        assert_eq!(e.code, "upload_outcome_unknown");
    }
    assert_eq!(fake.sessions().len(), 1, "no second upload");
    assert_eq!(fake.videos().len(), 1);

    // Another URL's session that never sent its last chunk made nothing: it is ignored.
    let saves = Arc::new(Saves::default());
    *media.break_after.lock().unwrap() = Some(1_000_000);
    yt.publish(&video_request(&fake, FILM, Some("x"), &saves, Value::Null))
        .await
        .unwrap_err();
    let partial = saves.last();
    assert_eq!(partial["final_sent"], false);
    let req = video_request(&fake, SHORT, Some("x"), &saves, partial);
    assert_eq!(yt.find_existing(&req).await.unwrap(), Existing::NotFound);
    yt.publish(&req).await.unwrap();
    assert_eq!(fake.videos().len(), 2);
    no_drift(&fake);
}

/// The 308 handling relies on the HTTP client not following redirects
/// (`http::api_client` uses `redirect::Policy::none()`): a 308 naming a `Location` is read as
/// YouTube's `Resume Incomplete`, not followed.
#[tokio::test]
async fn a_resume_incomplete_with_a_location_is_not_followed() {
    let fake = YouTubeFake::start().await;
    let media = streamed();
    let saves = Arc::new(Saves::default());
    *media.break_after.lock().unwrap() = Some(1_000_000);
    let yt = youtube(&fake, &media);
    yt.publish(&video_request(&fake, FILM, Some("x"), &saves, Value::Null))
        .await
        .unwrap_err();
    assert_eq!(fake.chunk_puts(), 3);
    // The status query is answered 308 with a Location elsewhere on the fake (a 404 there
    // would read as an expired session and start a new one).
    let acked = format!("bytes=0-{}", 3 * CHUNK - 1);
    let elsewhere = format!("{}/elsewhere", fake.url);
    fake.faults.push(
        "PUT",
        UPLOAD_PATH,
        Fault::Reply {
            status: 308,
            headers: vec![("range".into(), acked), ("location".into(), elsewhere)],
            body: String::new(),
        },
    );
    yt.publish(&video_request(&fake, FILM, Some("x"), &saves, saves.last()))
        .await
        .unwrap();
    assert_eq!(fake.sessions().len(), 1, "the same session, resumed");
    assert_eq!(fake.sessions()[0].chunks[3].0, 3 * CHUNK);
    assert!(fake.videos()[0].bytes == film());
    no_drift(&fake);
}

#[tokio::test]
async fn a_token_answer_without_a_lifetime_is_taken_to_live_googles_hour() {
    let fake = YouTubeFake::start().await;
    let yt = youtube(&fake, &streamed());
    fake.faults.reply(
        "POST",
        soku_fakes::youtube::TOKEN_PATH,
        200,
        &[],
        json!({"access_token": "ya29.new", "token_type": "Bearer", "scope": SCOPES}),
    );
    let t = yt
        .refresh(&account(None, Some("1//refresh".into())))
        .await
        .unwrap();
    let left = support::lifetime_left(&t, yt.refresh_ahead());
    assert!((3589..=3599).contains(&left), "{left}");
}
