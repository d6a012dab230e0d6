//! YouTube end to end, against the fake of Google's OAuth and the YouTube Data API on loopback:
//! the OAuth round trip connects the channel; a video uploaded to the server's media is published
//! through the engine and the real connector (the resumable upload streamed from the media store,
//! in several chunks, with `post.options.youtube`); what YouTube cannot take is refused at
//! submission. Everything the connector sent and was answered is checked against the extract of
//! Google's discovery document.

use crate::media::{created, upload};
use crate::oauth_platforms::{connect, media, publish, published_target};
use crate::util::*;
use serde_json::{Value, json};
use soku_core::connector::Connector;
use soku_core::platform::Platform;
use soku_fakes::media_files;
use soku_fakes::youtube::{CHANNEL_HANDLE, CHANNEL_ID, CLIENT_ID, CLIENT_SECRET, YouTubeFake};
use soku_platforms::PlatformSettings;
use soku_platforms::youtube::YouTube;
use std::sync::Arc;
use std::time::Duration;

async fn youtube_app(fake: &YouTubeFake) -> TestApp {
    let settings = PlatformSettings {
        api_url: fake.url.clone(),
        auth_url: fake.auth_url(),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        timeout: Duration::from_secs(5),
    };
    let connector: Arc<dyn Connector> = Arc::new(
        YouTube::new(settings, media())
            .with_token_url(&fake.token_url())
            .with_polling(Duration::from_millis(20), Duration::from_secs(10))
            .with_chunk_bytes(256 * 1024),
    );
    let app = Builder::default()
        .connector(Platform::Youtube, connector)
        .start()
        .await;
    fake.register_redirect_uri(&app.url("/v1/oauth/youtube/callback"));
    app
}

#[tokio::test]
async fn the_channel_connects_and_a_hosted_video_is_published_with_its_options() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(2);
    let app = youtube_app(&fake).await;
    let (_, key) = app.subscriber().await;

    let (id, account_id) = connect(&app, &key, "youtube", json!({})).await;
    assert_eq!(account_id, CHANNEL_ID);
    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    let account = &listed["accounts"][0];
    assert_eq!(account["id"], id);
    assert_eq!(account["platform"], "youtube");
    assert_eq!(account["status"], "active");
    assert_eq!(account["username"], CHANNEL_HANDLE, "{account}");
    // The refresh token Google issued for offline access is kept, sealed.
    let (_, sealed) = app.store.account_secrets(&id).await.unwrap().unwrap();
    assert!(sealed.refresh_token.is_some());

    // About 1 MB: four chunks of 256 KiB, streamed from the media store.
    let video = media_files::mp4(1080, 1920, 20_000, 1_000_000);
    let hosted = created(upload(&app, &key, "video/mp4", video.clone()).await).await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {
            "content": {"text": "Behind the scenes\nA day on set.", "mediaType": "video",
                        "videoUrl": hosted["url"], "platform": ["youtube"]},
            "options": {"youtube": {"title": "On set", "privacyStatus": "unlisted",
                                    "madeForKids": false, "tags": ["film", "behind the scenes"]}}
        }}),
    )
    .await;
    let target = published_target(&done).clone();
    let videos = fake.videos();
    assert_eq!(videos.len(), 1, "one video");
    let v = &videos[0];
    assert!(v.bytes == video, "the hosted file's bytes");
    assert_eq!(v.title, "On set");
    assert_eq!(v.description, "Behind the scenes\nA day on set.");
    assert_eq!(v.privacy_status, "unlisted");
    assert_eq!(v.self_declared_made_for_kids, Some(false));
    assert_eq!(v.tags, ["film", "behind the scenes"]);
    assert_eq!(v.upload_status, "processed");
    assert_eq!(target["platformPostId"], v.id.as_str());
    assert_eq!(
        target["platformPostUrl"],
        format!("https://www.youtube.com/watch?v={}", v.id),
        "{target}"
    );
    let sessions = fake.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].chunks.len(), video.len().div_ceil(256 * 1024));
    assert_eq!(fake.inserts_used(), 1);
    let problems = fake.drift_problems();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn what_youtube_cannot_take_is_refused_at_submission() {
    let fake = YouTubeFake::start().await;
    let app = youtube_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "youtube", json!({})).await;

    let r = app
        .post_json(
            "/v1/posts",
            &key,
            &json!({"post": {"content": {"text": "Only words", "platform": ["youtube"]}}}),
        )
        .await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["platform"], "youtube", "{body}");

    let video = media_files::mp4(1280, 720, 5_000, 20_000);
    let hosted = created(upload(&app, &key, "video/mp4", video).await).await;
    let r = app
        .post_json(
            "/v1/posts",
            &key,
            &json!({"post": {
                "content": {"text": "t", "mediaType": "video", "videoUrl": hosted["url"],
                            "platform": ["youtube"]},
                "options": {"youtube": {"title": "x".repeat(101)}}
            }}),
        )
        .await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(
        body["error"]["details"]["field"], "post.options.youtube.title",
        "{body}"
    );
    assert!(fake.sessions().is_empty(), "nothing reached YouTube");
    assert!(fake.videos().is_empty());
}

/// Once the upload completed, a refused token on the processing read (whose refresh would fail
/// too: the user revoked the app right after) is published, not handed to the engine as
/// `token_invalid`, which would end the target `failed` with the video on the channel.
#[tokio::test]
async fn a_refused_processing_read_after_the_upload_is_published() {
    let fake = YouTubeFake::start().await;
    fake.set_processing_polls(0);
    let app = youtube_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "youtube", json!({})).await;
    let refreshes = fake.token_calls();

    fake.faults.reply(
        "GET",
        "/youtube/v3/videos",
        401,
        &[],
        json!({"error": {"code": 401, "message": "Invalid Credentials",
                         "errors": [{"message": "Invalid Credentials", "domain": "global",
                                     "reason": "authError"}]}}),
    );
    fake.faults.reply(
        "POST",
        "/token",
        400,
        &[],
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
    );
    let video = media_files::mp4(720, 1280, 5_000, 300_000);
    let hosted = created(upload(&app, &key, "video/mp4", video.clone()).await).await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Uploaded, then the token was refused",
                                     "mediaType": "video", "videoUrl": hosted["url"],
                                     "platform": ["youtube"]}}}),
    )
    .await;
    let target = published_target(&done).clone();
    let videos = fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(target["platformPostId"], videos[0].id.as_str(), "{target}");
    assert_eq!(fake.token_calls(), refreshes, "no refresh was needed");
    assert_eq!(fake.sessions().len(), 1);
}
