//! TikTok end to end, against its fake on loopback: the Login Kit round trip through
//! `POST /v1/accounts/connect` and our callback; a video uploaded to `/v1/media/uploads` and sent
//! to TikTok in chunks by the engine; a photo post TikTok pulls from the server's hosted URL; a
//! post refused by the creator's settings; and a lost answer that never leads to a second upload.

use crate::media::{created, upload};
use crate::oauth_platforms::{connect, publish, published_target};
use crate::posts::{submit, wait_for_status};
use crate::util::*;
use serde_json::{Value, json};
use soku_core::connector::Connector;
use soku_core::platform::Platform;
use soku_fakes::Fault;
use soku_fakes::media_files;
use soku_fakes::tiktok::{self, TikTokFake};
use soku_platforms::PlatformSettings;
use soku_platforms::fetch::SafeFetcher;
use soku_platforms::net::NetPolicy;
use soku_platforms::tiktok::TikTok;
use std::sync::Arc;
use std::time::Duration;

/// The server with the TikTok connector pointed at `fake`, calls cut after 2 s; the fake pulls
/// photos from the server's hosted files, its `/media/` prefix verified for the fake app.
async fn tiktok_app(fake: &TikTokFake) -> TestApp {
    tiktok_app_waiting(fake, Duration::from_secs(10)).await
}

/// `tiktok_app` whose connector waits at most `deadline` per attempt for TikTok's processing.
async fn tiktok_app_waiting(fake: &TikTokFake, deadline: Duration) -> TestApp {
    let media = Arc::new(SafeFetcher::new(
        NetPolicy {
            allow_loopback: true,
        },
        Duration::from_secs(5),
    ));
    let connector: Arc<dyn Connector> = Arc::new(
        TikTok::new(
            PlatformSettings {
                auth_url: fake.auth_url(),
                timeout: Duration::from_secs(2),
                ..PlatformSettings::at(&fake.url)
            },
            media,
        )
        .with_polling(Duration::from_millis(20), deadline),
    );
    let app = Builder::default()
        .connector(Platform::Tiktok, connector)
        .start()
        .await;
    fake.register_redirect_uri(&app.url("/v1/oauth/tiktok/callback"));
    fake.require_pkce(true);
    fake.verify(&app.url("/media/"));
    fake.allow_http_media(true);
    fake.fetch_media(true);
    app
}

async fn hosted(app: &TestApp, key: &str, content_type: &str, bytes: Vec<u8>) -> String {
    let media = created(upload(app, key, content_type, bytes).await).await;
    media["url"].as_str().unwrap().to_owned()
}

fn video_post(url: &str, tiktok_options: Value) -> Value {
    json!({"post": {
        "content": {"text": "A clip #soku", "mediaType": "video", "videoUrl": url,
                    "platform": ["tiktok"]},
        "options": {"tiktok": tiktok_options},
    }})
}

fn clip() -> Vec<u8> {
    media_files::mp4(720, 1280, 6_000, 400_000)
}

#[tokio::test]
async fn tiktok_connects_then_a_hosted_video_and_a_photo_post_are_published() {
    let fake = TikTokFake::start().await;
    let app = tiktok_app(&fake).await;
    let (_, key) = app.subscriber().await;

    let (id, account_id) = connect(&app, &key, "tiktok", json!({})).await;
    assert_eq!(account_id, tiktok::OPEN_ID);
    // The authorization page got TikTok's hex PKCE challenge.
    let asked = fake.authorize_queries();
    let q = asked.last().unwrap();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 64);
    assert!(q["code_challenge"].bytes().all(|b| b.is_ascii_hexdigit()));
    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    let account = &listed["accounts"][0];
    assert_eq!(account["id"], id.as_str());
    assert_eq!(account["platform"], "tiktok");
    assert_eq!(account["username"], tiktok::USERNAME);
    assert_eq!(account["displayName"], tiktok::NICKNAME);
    assert_eq!(account["status"], "active");
    assert!(account["tokenExpiresAt"].is_string(), "{account}");

    // A video uploaded to the server, sent to TikTok by the engine.
    let file = clip();
    let video = hosted(&app, &key, "video/mp4", file.clone()).await;
    let done = publish(
        &app,
        &key,
        &video_post(
            &video,
            json!({"privacyLevel": "PUBLIC_TO_EVERYONE", "allowDuet": false}),
        ),
    )
    .await;
    let target = published_target(&done).clone();
    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 1);
    let p = &publishes[0];
    assert!(p.bytes == file, "TikTok got the hosted file's bytes");
    assert_eq!(p.chunk_puts, [1], "a small file goes whole, once");
    assert_eq!(p.body["post_info"]["title"], "A clip #soku");
    assert_eq!(p.body["post_info"]["disable_duet"], true);
    let post_id = p.post_id.unwrap().to_string();
    assert_eq!(target["platformPostId"], post_id.as_str());
    assert_eq!(
        target["platformPostUrl"],
        format!(
            "https://www.tiktok.com/@{}/video/{post_id}",
            tiktok::USERNAME
        )
    );

    // A photo: TikTok pulls it from the server's hosted URL.
    let photo = hosted(&app, &key, "image/jpeg", media_files::jpeg(1080, 1350)).await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {
            "content": {"text": "A picture #soku", "mediaType": "image", "imageUrls": [photo],
                        "platform": ["tiktok"]},
            "options": {"tiktok": {"privacyLevel": "SELF_ONLY", "title": "Picture"}},
        }}),
    )
    .await;
    let target = published_target(&done).clone();
    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 2);
    let p = &publishes[1];
    assert_eq!(p.media_type, "PHOTO");
    assert_eq!(p.urls, std::slice::from_ref(&photo));
    assert_eq!(p.body["post_info"]["description"], "A picture #soku");
    assert_eq!(fake.fetched(), [(photo, Ok(200))], "TikTok could fetch it");
    // Private: known by its publish_id.
    assert_eq!(target["platformPostId"], p.publish_id.as_str());
}

#[tokio::test]
async fn tiktok_posts_the_creator_may_not_make_fail_with_the_rule_and_send_nothing() {
    let fake = TikTokFake::start().await;
    let app = tiktok_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "tiktok", json!({})).await;
    fake.set_creator(|c| {
        c.stitch_disabled = true;
        c.max_video_post_duration_sec = 3;
    });
    let video = hosted(&app, &key, "video/mp4", clip()).await;

    for (options, code, says) in [
        (
            json!({"privacyLevel": "FOLLOWER_OF_CREATOR"}),
            "privacy_level_not_allowed",
            "post.options.tiktok.privacyLevel",
        ),
        (
            json!({"privacyLevel": "SELF_ONLY", "allowStitch": true}),
            "interaction_disabled",
            "allowStitch",
        ),
        // The clip lasts 6 s; this creator may post 3.
        (
            json!({"privacyLevel": "SELF_ONLY"}),
            "video_too_long",
            "at most 3 s",
        ),
    ] {
        let id = submit(&app, &key, &video_post(&video, options.clone())).await;
        let done = wait_for_status(&app, &key, &id, &["failed", "published"]).await;
        let t = &done["targets"][0];
        assert_eq!(t["status"], "failed", "{options}: {done}");
        assert_eq!(t["error"]["code"], code, "{done}");
        let message = t["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
        assert_eq!(t["attempts"], 1, "not retried: {done}");
    }
    // No privacy level: TikTok has no default, so the post is refused at submission.
    let r = app
        .post_json("/v1/posts", &key, &video_post(&video, json!({})))
        .await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(
        body["error"]["details"]["field"],
        "post.options.tiktok.privacyLevel"
    );
    assert_eq!(body["error"]["details"]["rule"], "privacy_level_required");
    assert_eq!(body["error"]["details"]["platform"], "tiktok");
    assert_eq!(fake.calls("video_init"), 0);
    assert_eq!(fake.calls("put"), 0);
    assert!(fake.publishes().is_empty());
}

#[tokio::test]
async fn tiktok_a_lost_answer_to_the_upload_never_sends_the_video_twice() {
    let fake = TikTokFake::start().await;
    let app = tiktok_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "tiktok", json!({})).await;
    let file = clip();
    let video = hosted(&app, &key, "video/mp4", file.clone()).await;
    // The file arrives, but its answer comes after the connector gave up.
    fake.faults.push(
        "PUT",
        "/upload/video/",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let done = publish(
        &app,
        &key,
        &video_post(&video, json!({"privacyLevel": "MUTUAL_FOLLOW_FRIENDS"})),
    )
    .await;
    let target = published_target(&done);
    assert_eq!(target["attempts"], 2, "{done}");
    assert_eq!(fake.calls("video_init"), 1, "one publish");
    assert_eq!(fake.calls("put"), 1, "the file was sent once");
    let publishes = fake.publishes();
    assert_eq!(publishes.len(), 1);
    assert!(publishes[0].bytes == file);
    assert_eq!(publishes[0].status, "PUBLISH_COMPLETE");
    assert_eq!(target["platformPostId"], publishes[0].publish_id.as_str());
}

#[tokio::test]
async fn tiktok_a_post_still_processing_after_every_attempt_ends_unknown_never_failed() {
    let fake = TikTokFake::start().await;
    // TikTok holds the file and processes it longer than the engine's attempts last.
    fake.set_processing_polls(100_000);
    let app = tiktok_app_waiting(&fake, Duration::from_millis(60)).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "tiktok", json!({})).await;
    let video = hosted(&app, &key, "video/mp4", clip()).await;
    let done = publish(
        &app,
        &key,
        &video_post(&video, json!({"privacyLevel": "SELF_ONLY"})),
    )
    .await;
    let target = &done["targets"][0];
    // A failed target would invite a repost of what TikTok may still post.
    assert_eq!(target["status"], "unknown", "{done}");
    assert_eq!(target["error"]["code"], "media_processing", "{done}");
    assert_eq!(fake.calls("video_init"), 1, "one publish");
    assert_eq!(fake.chunks_accepted(), 1, "the file was sent once");
}
