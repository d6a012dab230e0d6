//! Snapchat end to end, against its fake on loopback: Snap's OAuth round trip through
//! `POST /v1/accounts/connect` and our callback; a video uploaded to `/v1/media/uploads`,
//! encrypted and sent to Snap in parts by the engine, posted as a Spotlight; a picture posted as
//! a Story; the submission rules refusing what Snap cannot post; and a lost answer to the post
//! that ends the target `unknown`, never posted twice.

use crate::media::{created, upload};
use crate::oauth_platforms::{connect, publish, published_target};
use crate::util::*;
use serde_json::{Value, json};
use sha2::Digest;
use soku_core::connector::Connector;
use soku_core::platform::Platform;
use soku_engine::EngineConfig;
use soku_fakes::Fault;
use soku_fakes::media_files;
use soku_fakes::snapchat::{self, SnapchatFake};
use soku_platforms::PlatformSettings;
use soku_platforms::fetch::SafeFetcher;
use soku_platforms::net::NetPolicy;
use soku_platforms::snapchat::Snapchat;
use std::sync::Arc;
use std::time::Duration;

/// The server with the Snapchat connector pointed at `fake`, calls cut after 2 s.
async fn snapchat_app(fake: &SnapchatFake) -> TestApp {
    snapchat_app_with(fake, Builder::default()).await
}

async fn snapchat_app_with(fake: &SnapchatFake, builder: Builder) -> TestApp {
    let media = Arc::new(SafeFetcher::new(
        NetPolicy {
            allow_loopback: true,
        },
        Duration::from_secs(5),
    ));
    let connector: Arc<dyn Connector> = Arc::new(
        Snapchat::new(
            PlatformSettings {
                auth_url: fake.url.clone(),
                timeout: Duration::from_secs(2),
                ..PlatformSettings::at(&fake.url)
            },
            media,
        )
        .with_polling(Duration::from_millis(20), Duration::from_secs(5)),
    );
    let app = builder
        .connector(Platform::Snapchat, connector)
        .start()
        .await;
    fake.register_redirect_uri(&app.url("/v1/oauth/snapchat/callback"));
    app
}

async fn hosted(app: &TestApp, key: &str, content_type: &str, bytes: Vec<u8>) -> String {
    let media = created(upload(app, key, content_type, bytes).await).await;
    media["url"].as_str().unwrap().to_owned()
}

fn post(content: Value, options: Value) -> Value {
    let mut content = content;
    content["platform"] = json!(["snapchat"]);
    json!({"post": {"content": content, "options": {"snapchat": options}}})
}

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn snapchat_connects_then_a_spotlight_and_a_story_are_published() {
    let fake = SnapchatFake::start().await;
    let app = snapchat_app(&fake).await;
    let (_, key) = app.subscriber().await;

    let (id, account_id) = connect(&app, &key, "snapchat", json!({})).await;
    assert_eq!(account_id, snapchat::PROFILE_ID);
    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    let account = &listed["accounts"][0];
    assert_eq!(account["id"], id.as_str());
    assert_eq!(account["platform"], "snapchat");
    assert_eq!(account["username"], snapchat::SNAP_USER_NAME);
    assert_eq!(account["displayName"], snapchat::DISPLAY_NAME);
    assert_eq!(account["status"], "active");

    // A video uploaded to the server, encrypted and sent to Snap by the engine.
    let file = media_files::mp4(1080, 1920, 12_000, 600_000);
    let video = hosted(&app, &key, "video/mp4", file.clone()).await;
    let done = publish(
        &app,
        &key,
        &post(
            json!({"text": "Behind the scenes", "mediaType": "video", "videoUrl": video}),
            json!({"postType": "spotlight", "description": "Launch day #soku"}),
        ),
    )
    .await;
    let target = published_target(&done).clone();
    let spotlights = fake.spotlights();
    assert_eq!(spotlights.len(), 1);
    assert_eq!(target["platformPostId"], spotlights[0].id.as_str());
    assert_eq!(
        spotlights[0].description.as_deref(),
        Some("Launch day #soku")
    );
    let uploaded = fake.media();
    assert_eq!(uploaded[0].sha256.as_deref(), Some(sha(&file).as_str()));

    // A picture as a Story (the default).
    let picture = media_files::png(1080, 1920);
    let image = hosted(&app, &key, "image/png", picture.clone()).await;
    let done = publish(
        &app,
        &key,
        &post(
            json!({"mediaType": "image", "imageUrls": [image]}),
            json!({}),
        ),
    )
    .await;
    let target = published_target(&done).clone();
    let stories = fake.stories();
    assert_eq!(stories.len(), 1);
    assert_eq!(target["platformPostId"], stories[0].media_id.as_str());
    let image_media = fake
        .media()
        .into_iter()
        .find(|m| m.kind == "IMAGE")
        .unwrap();
    assert_eq!(image_media.sha256.as_deref(), Some(sha(&picture).as_str()));
}

#[tokio::test]
async fn snapchat_posts_snap_cannot_take_are_refused_at_submission() {
    let fake = SnapchatFake::start().await;
    let app = snapchat_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "snapchat", json!({})).await;
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 12_000, 100_000),
    )
    .await;
    let image = hosted(&app, &key, "image/png", media_files::png(1080, 1920)).await;

    for (body, field, rule) in [
        (
            post(
                json!({"text": "Just words", "mediaType": "text"}),
                json!({}),
            ),
            "post.content.mediaUrls",
            None,
        ),
        (
            post(
                json!({"mediaType": "image", "imageUrls": [image.clone(), image.clone()]}),
                json!({}),
            ),
            "post.content.imageUrls",
            None,
        ),
        (
            post(
                json!({"mediaType": "image", "imageUrls": [image.clone()]}),
                json!({"postType": "spotlight"}),
            ),
            "post.content.videoUrl",
            Some("spotlight_needs_video"),
        ),
        (
            post(
                json!({"text": "x".repeat(161), "mediaType": "video", "videoUrl": video}),
                json!({"postType": "spotlight"}),
            ),
            "post.content.text",
            None,
        ),
        (
            post(
                json!({"mediaType": "video", "videoUrl": video}),
                json!({"postType": "savedStory", "title": "t".repeat(46)}),
            ),
            "post.options.snapchat.title",
            None,
        ),
    ] {
        let r = app.post_json("/v1/posts", &key, &body).await;
        let e = expect_error(r, 400, "validation_error", None).await;
        assert_eq!(e["error"]["details"]["field"], field, "{e}");
        if let Some(rule) = rule {
            assert_eq!(e["error"]["details"]["rule"], rule, "{e}");
        }
    }
    assert_eq!(fake.calls("media"), 0, "nothing was sent to Snap");
}

#[tokio::test]
async fn snapchat_a_lost_answer_to_the_post_ends_unknown_and_is_never_posted_twice() {
    let fake = SnapchatFake::start().await;
    let app = snapchat_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "snapchat", json!({})).await;
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 12_000, 100_000),
    )
    .await;
    // Snap makes the Story, but its answer comes after the connector gave up.
    fake.faults.push(
        "POST",
        &format!("/v1/public_profiles/{}/stories", snapchat::PROFILE_ID),
        Fault::DelayAfterEffect(Duration::from_secs(4)),
    );
    let done = publish(
        &app,
        &key,
        &post(json!({"mediaType": "video", "videoUrl": video}), json!({})),
    )
    .await;
    let target = &done["targets"][0];
    assert_eq!(target["status"], "unknown", "{done}");
    assert_eq!(fake.stories().len(), 1);
    assert_eq!(fake.calls("stories"), 1, "never sent again");

    // What the second attempt read was sealed at rest: the container's AES key and the
    // upload path are in it (the engine seals every connector's progress alike).
    if let Some(db) = app.sqlite_path() {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let stored: Vec<Option<String>> = sqlx::query_scalar("SELECT progress_json FROM targets")
            .fetch_all(&pool)
            .await
            .unwrap();
        let stored = stored[0].as_deref().unwrap();
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
        let media = &fake.media()[0];
        assert!(!stored.contains(&media.id) && !stored.contains("multipart-upload"));
    }
}

#[tokio::test]
async fn snapchat_a_lost_answer_on_the_last_attempt_ends_unknown_not_failed() {
    let fake = SnapchatFake::start().await;
    // One attempt only: the lookup after the lost answer must see the post marked sent by
    // that same attempt.
    let one = Builder::default().engine(EngineConfig {
        max_attempts: 1,
        ..EngineConfig::default()
    });
    let app = snapchat_app_with(&fake, one).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "snapchat", json!({})).await;
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 12_000, 100_000),
    )
    .await;
    fake.faults.push(
        "POST",
        &format!("/v1/public_profiles/{}/spotlights", snapchat::PROFILE_ID),
        Fault::DelayAfterEffect(Duration::from_secs(4)),
    );
    let done = publish(
        &app,
        &key,
        &post(
            json!({"text": "Launch", "mediaType": "video", "videoUrl": video}),
            json!({"postType": "spotlight"}),
        ),
    )
    .await;
    let target = &done["targets"][0];
    assert_eq!(target["status"], "unknown", "{done}");
    assert_eq!(target["attempts"], 1, "{done}");
    assert_eq!(fake.spotlights().len(), 1);
}

#[tokio::test]
async fn snapchat_a_file_snap_refuses_to_finalize_fails_at_once_and_is_uploaded_once() {
    let fake = SnapchatFake::start().await;
    let app = snapchat_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "snapchat", json!({})).await;
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 12_000, 100_000),
    )
    .await;
    // Snap refuses the uploaded file at FINALIZE, however often it is asked.
    for _ in 0..5 {
        fake.push_finalize_fault(Fault::Reply {
            status: 400,
            headers: vec![("content-type".into(), "application/json".into())],
            body: json!({"request_id": "r", "request_status": "ERROR", "error_code": "E1001",
                         "debug_message": "Media size is too large",
                         "display_message": "Something went wrong."})
            .to_string(),
        });
    }
    let done = publish(
        &app,
        &key,
        &post(json!({"mediaType": "video", "videoUrl": video}), json!({})),
    )
    .await;
    assert_eq!(done["status"], "failed", "{done}");
    let target = &done["targets"][0];
    assert_eq!(target["status"], "failed", "{done}");
    assert_eq!(target["attempts"], 1, "{done}");
    let error = &target["error"];
    assert_eq!(error["code"], "upload_failed", "{done}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("refused the uploaded media") && message.contains("E1001"),
        "{message}"
    );
    let raw = error["platformError"].as_str().unwrap();
    assert!(raw.contains("Media size is too large"), "{raw}");
    assert_eq!((fake.calls("add"), fake.calls("finalize")), (1, 1));
    assert_eq!(fake.calls("stories"), 0);
}

#[tokio::test]
async fn snapchat_a_token_answer_of_the_wrong_shape_shows_its_tokens_nowhere() {
    let fake = SnapchatFake::start().await;
    let one = Builder::default().engine(EngineConfig {
        max_attempts: 1,
        ..EngineConfig::default()
    });
    let app = snapchat_app_with(&fake, one).await;
    let (_, key) = app.subscriber().await;
    let token_path = "/login/oauth2/access_token";
    // An odd field beside good tokens is read leniently; an access token of the wrong type is
    // not.
    let misfit = json!({"access_token": ["SNAPSECRET-access"], "expires_in": 3600,
                        "refresh_token": "SNAPSECRET-refresh"});

    // Connecting: the code exchange's answer does not fit. The callback's answer (no
    // redirectUri: JSON) says Snap could not serve it, and shows neither token.
    fake.faults
        .reply("POST", token_path, 200, &[], misfit.clone());
    let r = app
        .post_json(
            "/v1/accounts/connect",
            &key,
            &json!({"platform": "snapchat"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    let page = crate::oauth_platforms::no_redirects()
        .get(started["authorizationUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = page.headers()["location"].to_str().unwrap().to_owned();
    let r = crate::oauth_platforms::no_redirects()
        .get(&callback)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(!body.contains("SNAPSECRET"), "{body}");

    // Publishing: Snap refuses the access token, and the refresh's answer does not fit. The
    // target's stored error names the field, and neither token.
    connect(&app, &key, "snapchat", json!({})).await;
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 12_000, 100_000),
    )
    .await;
    fake.faults.reply(
        "POST",
        &format!("/v1/public_profiles/{}/media", snapchat::PROFILE_ID),
        401,
        &[],
        json!({"request_status": "ERROR", "error_code": "E3003"}),
    );
    fake.faults.reply("POST", token_path, 200, &[], misfit);
    let done = publish(
        &app,
        &key,
        &post(json!({"mediaType": "video", "videoUrl": video}), json!({})),
    )
    .await;
    let target = &done["targets"][0];
    assert_eq!(target["status"], "failed", "{done}");
    assert_eq!(target["error"]["code"], "token_refresh_failed", "{done}");
    let message = target["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`access_token`: expected a string, found a sequence"),
        "{message}"
    );
    assert!(!done.to_string().contains("SNAPSECRET"), "{done}");
    assert_eq!(fake.calls("stories"), 0);
}

#[tokio::test]
async fn snapchat_a_token_without_a_lifetime_is_refreshed_ahead_all_the_same() {
    use soku_engine::account_tokens::AccountTokens;
    use soku_engine::metrics::EngineMetrics;
    let fake = SnapchatFake::start().await;
    let app = snapchat_app(&fake).await;
    let (_, key) = app.subscriber().await;
    // Snap's token answers leave out `expires_in`.
    fake.omit_expires_in(true);
    let (id, _) = connect(&app, &key, "snapchat", json!({})).await;
    let (account, _) = app.store.account_secrets(&id).await.unwrap().unwrap();
    let left = account.token_expires_at.expect("an expiry is recorded") - chrono::Utc::now();
    assert!((1790..=1800).contains(&left.num_seconds()), "{left}");

    // Not due now. 21 minutes later (Snap's tokens are refreshed 10 minutes ahead), the
    // background refresher renews it, before Snap ever refuses it.
    assert_eq!(app.state.account_tokens.refresh_due().await, 0);
    let later = chrono::Utc::now() + chrono::Duration::minutes(21);
    let refresher = AccountTokens::new(
        app.store.clone(),
        Arc::new(soku_core::clock::ManualClock::new(later)),
        app.state.connectors.clone(),
        app.state.secrets.clone(),
        Arc::new(EngineMetrics::default()),
    );
    let asked = fake.calls("token");
    assert_eq!(refresher.refresh_due().await, 1);
    assert_eq!(fake.calls("token"), asked + 1);
    let (account, _) = app.store.account_secrets(&id).await.unwrap().unwrap();
    assert!(account.token_expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(29));
}
