//! Facebook Pages and Instagram end to end, against the Graph API fake on loopback: one
//! Facebook Login connects every Page (or every linked Instagram professional account) the user
//! granted, each with its Page token sealed at rest; then posts go through the API, the engine
//! and the real connectors. Media are the server's hosted files, which the fake is told to fetch
//! as Meta does, so a URL the server would not serve fails the test.

use crate::media::{created, upload};
use crate::oauth::session_cookie;
use crate::oauth_platforms::{connect, publish, published_target};
use crate::posts::{submit, wait_for_status};
use crate::util::*;
use serde_json::{Value, json};
use soku_core::connector::Connector;
use soku_core::platform::Platform;
use soku_fakes::common::Fault;
use soku_fakes::graph::{self, GraphFake};
use soku_fakes::media_files;
use soku_platforms::PlatformSettings;
use soku_platforms::facebook::FacebookPages;
use soku_platforms::instagram::Instagram;
use std::sync::Arc;
use std::time::Duration;

/// The server with both Meta connectors pointed at `fake`, their calls cut after 2 s.
async fn meta_app(fake: &GraphFake) -> TestApp {
    meta_app_waiting(fake, Duration::from_secs(10)).await
}

/// `meta_app` whose attempts wait `deadline` for media processing.
async fn meta_app_waiting(fake: &GraphFake, deadline: Duration) -> TestApp {
    let settings = PlatformSettings {
        timeout: Duration::from_secs(2),
        ..PlatformSettings::at(&fake.url)
    };
    let polling = (Duration::from_millis(20), deadline);
    let instagram: Arc<dyn Connector> =
        Arc::new(Instagram::new(settings.clone()).with_polling(polling.0, polling.1));
    let facebook: Arc<dyn Connector> = Arc::new(
        FacebookPages::new(settings)
            .with_upload_url(&fake.url)
            .with_polling(polling.0, polling.1),
    );
    let app = Builder::default()
        .connector(Platform::Instagram, instagram)
        .connector(Platform::Facebook, facebook)
        .start()
        .await;
    for platform in ["facebook", "instagram"] {
        fake.register_redirect_uri(&app.url(&format!("/v1/oauth/{platform}/callback")));
    }
    // Meta fetches media from their URLs: so does the fake, from the server's hosted files.
    fake.fetch_media(true);
    app
}

async fn accounts_of(app: &TestApp, key: &str, platform: &str) -> Vec<Value> {
    let listed: Value = app
        .get_with_key("/v1/accounts", key)
        .await
        .json()
        .await
        .unwrap();
    listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["platform"] == platform)
        .cloned()
        .collect()
}

/// A hosted file's URL.
async fn hosted(app: &TestApp, key: &str, content_type: &str, bytes: Vec<u8>) -> String {
    let media = created(upload(app, key, content_type, bytes).await).await;
    media["url"].as_str().unwrap().to_owned()
}

fn target(platform: &str, account_id: &str) -> Value {
    json!({"platform": platform, "accountId": account_id})
}

#[tokio::test]
async fn facebook_login_connects_every_page_then_text_link_photos_and_video_reach_the_page() {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (uid, key) = app.subscriber().await;

    let (_, first) = connect(&app, &key, "facebook", json!({})).await;
    let pages = accounts_of(&app, &key, "facebook").await;
    let mut ids: Vec<&str> = pages
        .iter()
        .map(|a| a["accountId"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [graph::PAGE_ID, graph::PAGE2_ID],
        "both Pages: {pages:?}"
    );
    assert!(ids.contains(&first.as_str()));
    for page in &pages {
        assert_eq!(page["status"], "active");
        let name = page["displayName"].as_str().unwrap();
        assert!(
            [graph::PAGE_NAME, graph::PAGE2_NAME].contains(&name),
            "{page}"
        );
        // Each Page keeps its own Page token (which does not expire), sealed at rest.
        let (_, sealed) = app
            .store
            .account_secrets(page["id"].as_str().unwrap())
            .await
            .unwrap()
            .unwrap();
        let token = app
            .state
            .secrets
            .open(&sealed.access_token.unwrap())
            .unwrap();
        let issued = fake.tokens();
        let kind = &issued.iter().find(|t| t.token == token).unwrap().kind;
        assert_eq!(
            *kind,
            graph::TokenKind::Page(page["accountId"].as_str().unwrap().to_owned())
        );
        assert!(page["tokenExpiresAt"].is_null(), "{page}");
    }

    // Text, with a link, to the second Page; its own text for this target (spec 8.2).
    let done = publish(
        &app,
        &key,
        &json!({"post": {
            "content": {"text": "Read this", "platform": [
                {"platform": "facebook", "accountId": graph::PAGE2_ID, "text": "Read this, Page two"}
            ]},
            "options": {"facebook": {"link": "https://example.com/article"}}
        }}),
    )
    .await;
    let t = published_target(&done).clone();
    let posts = fake.page_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].page_id, graph::PAGE2_ID);
    assert_eq!(posts[0].message.as_deref(), Some("Read this, Page two"));
    assert_eq!(
        posts[0].link.as_deref(),
        Some("https://example.com/article")
    );
    assert_eq!(t["platformPostId"], posts[0].id.as_str());

    // Two photos: unpublished uploads, attached to one feed post.
    let a = hosted(&app, &key, "image/png", media_files::png(800, 600)).await;
    let b = hosted(&app, &key, "image/jpeg", media_files::jpeg(600, 800)).await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Two pictures", "mediaType": "image",
            "imageUrls": [a, b], "platform": [target("facebook", graph::PAGE_ID)]}}}),
    )
    .await;
    let t = published_target(&done).clone();
    let posts = fake.page_posts();
    assert_eq!(posts.len(), 2, "one post for both photos");
    assert_eq!(posts[1].photo_ids.len(), 2);
    assert_eq!(t["platformPostId"], posts[1].id.as_str());
    let photos = fake.photos();
    assert_eq!(photos.len(), 2);
    assert!(photos.iter().all(|p| !p.published), "{photos:?}");
    let fetched = fake.fetched();
    assert!(
        fetched.iter().all(|(_, r)| r.as_ref().ok() == Some(&200)),
        "Meta could fetch every hosted file: {fetched:?}"
    );

    // A video: Facebook fetches the hosted file; the target waits for its processing.
    fake.set_video_polls(2);
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1280, 720, 12_000, 20_000),
    )
    .await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A clip", "mediaType": "video",
            "videoUrl": video, "platform": [target("facebook", graph::PAGE_ID)]}}}),
    )
    .await;
    published_target(&done);
    let videos = fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(videos[0].file_url, video);
    assert_eq!(videos[0].description.as_deref(), Some("A clip"));
    assert_eq!(fake.videos_uploaded(), 1);

    // A reel: a session, the hosted file fetched by the upload host, then published.
    let vertical = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 20_000, 20_000),
    )
    .await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A reel for the Page", "mediaType": "video",
            "videoUrl": vertical, "platform": [target("facebook", graph::PAGE_ID)]},
            "options": {"facebook": {"postType": "reel"}}}}),
    )
    .await;
    let t = published_target(&done).clone();
    let reels = fake.reels();
    assert_eq!(reels.len(), 1, "{reels:?}");
    assert_eq!(reels[0].file_url, vertical);
    assert_eq!(reels[0].description.as_deref(), Some("A reel for the Page"));
    assert_eq!(t["platformPostId"], reels[0].id.as_str());
    assert_eq!((fake.reels_started(), fake.reels_published()), (1, 1));

    // Stories: one photo, one video.
    for (media, body) in [
        ("image", json!({"imageUrls": [a]})),
        ("video", json!({"videoUrl": vertical})),
    ] {
        let mut content = json!({"text": "", "mediaType": media,
            "platform": [target("facebook", graph::PAGE_ID)]});
        content
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let done = publish(
            &app,
            &key,
            &json!({"post": {"content": content,
                "options": {"facebook": {"postType": "story"}}}}),
        )
        .await;
        published_target(&done);
    }
    let stories = fake.stories();
    assert_eq!(stories.len(), 2, "{stories:?}");
    assert_eq!(fake.stories_published(), 2);

    // The dashboard offers both Meta connections.
    let listed: Value = app
        .http
        .get(app.url("/dashboard/api/connectable"))
        .header("cookie", session_cookie(&app, &uid).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let offered: Vec<(&str, &str)> = listed["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["platform"].as_str().unwrap(),
                p["method"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(offered, [("facebook", "oauth"), ("instagram", "oauth")]);
}

#[tokio::test]
async fn instagram_login_connects_the_linked_account_then_image_carousel_reel_and_story_are_published()
 {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (_, key) = app.subscriber().await;

    let (_, account_id) = connect(&app, &key, "instagram", json!({})).await;
    assert_eq!(account_id, graph::IG_USER_ID);
    let accounts = accounts_of(&app, &key, "instagram").await;
    assert_eq!(
        accounts.len(),
        1,
        "only the Page with a linked account: {accounts:?}"
    );
    assert_eq!(accounts[0]["username"], graph::IG_USERNAME);

    let square = hosted(&app, &key, "image/jpeg", media_files::jpeg(1080, 1080)).await;
    let tall = hosted(&app, &key, "image/jpeg", media_files::jpeg(1080, 1350)).await;
    let reel = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(720, 1280, 15_000, 20_000),
    )
    .await;

    // One image: a feed post with its caption.
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A square #soku", "mediaType": "image",
            "imageUrls": [square], "platform": ["instagram"]}}}),
    )
    .await;
    let t = published_target(&done).clone();
    let media = fake.media();
    assert_eq!(media.len(), 1);
    assert_eq!(
        (
            media[0].media_type.as_str(),
            media[0].media_product_type.as_str()
        ),
        ("IMAGE", "FEED")
    );
    assert_eq!(media[0].caption.as_deref(), Some("A square #soku"));
    assert_eq!(t["platformPostId"], media[0].id.as_str());
    assert_eq!(t["platformPostUrl"], media[0].permalink.as_str());

    // Two images: a carousel, with the target's own caption.
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "shared", "mediaType": "image",
            "imageUrls": [square, tall],
            "platform": [{"platform": "instagram", "text": "Two for Instagram"}]}}}),
    )
    .await;
    published_target(&done);
    let media = fake.media();
    assert_eq!(media.len(), 2);
    assert_eq!(media[1].media_type, "CAROUSEL_ALBUM");
    assert_eq!(media[1].children.len(), 2);
    assert_eq!(media[1].caption.as_deref(), Some("Two for Instagram"));

    // A video is a reel; the options and the top-level trial_reel reach the container.
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A reel", "mediaType": "video",
            "videoUrl": reel, "platform": ["instagram"]},
            "options": {"instagram": {"shareToFeed": false, "coverUrl": square}}},
            "trial_reel": true}),
    )
    .await;
    published_target(&done);
    let media = fake.media();
    assert_eq!(
        (
            media[2].media_type.as_str(),
            media[2].media_product_type.as_str()
        ),
        ("VIDEO", "REELS")
    );
    let containers = fake.containers();
    let reel_container = containers
        .iter()
        .find(|c| c.kind == graph::ContainerKind::Reel)
        .unwrap();
    assert_eq!(reel_container.video_url.as_deref(), Some(reel.as_str()));
    assert_eq!(reel_container.share_to_feed, Some(false));
    assert_eq!(reel_container.cover_url.as_deref(), Some(square.as_str()));
    assert_eq!(reel_container.trial_graduation.as_deref(), Some("MANUAL"));

    // A story: one image.
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "", "mediaType": "image",
            "imageUrls": [tall], "platform": ["instagram"]},
            "options": {"instagram": {"postType": "story"}}}}),
    )
    .await;
    published_target(&done);
    let media = fake.media();
    assert_eq!(media.len(), 4);
    assert_eq!(media[3].media_product_type, "STORY");
    assert_eq!(fake.publishes(), 4, "each post published once");
    let fetched = fake.fetched();
    assert!(
        fetched.iter().all(|(_, r)| r.as_ref().ok() == Some(&200)),
        "Instagram could fetch every hosted file: {fetched:?}"
    );
}

/// `media_publish` takes effect but its answer never arrives: the engine asks the connector,
/// which finds the post through its container, and the target ends published, once.
#[tokio::test]
async fn an_instagram_publish_whose_answer_is_lost_is_found_not_repeated() {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "instagram", json!({})).await;
    let image = hosted(&app, &key, "image/jpeg", media_files::jpeg(1080, 1080)).await;
    fake.faults.push(
        "POST",
        &format!("/{}/{}/media_publish", fake.version, graph::IG_USER_ID),
        Fault::DelayAfterEffect(Duration::from_secs(4)),
    );
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Lost answer", "mediaType": "image",
            "imageUrls": [image], "platform": ["instagram"]}}}),
    )
    .await;
    let t = published_target(&done).clone();
    assert_eq!(fake.publishes(), 1, "published once");
    let media = fake.media();
    assert_eq!(media.len(), 1);
    assert_eq!(t["platformPostId"], media[0].id.as_str());
}

/// The same for a Page's feed post.
#[tokio::test]
async fn a_facebook_post_whose_answer_is_lost_is_found_not_repeated() {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "facebook", json!({})).await;
    fake.faults.push(
        "POST",
        &format!("/{}/{}/feed", fake.version, graph::PAGE_ID),
        Fault::DelayAfterEffect(Duration::from_secs(4)),
    );
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Said once",
            "platform": [target("facebook", graph::PAGE_ID)]}}}),
    )
    .await;
    let t = published_target(&done).clone();
    assert_eq!(fake.page_posts_created(), 1, "posted once");
    assert_eq!(t["platformPostId"], fake.page_posts()[0].id.as_str());
}

/// A Page video Facebook is still processing when the attempt's wait ends (a long video): it
/// was uploaded with `published=true`, so it is the post. The target is `published` with the
/// video's id and URL, at once, not retried until `failed` while the video goes live.
#[tokio::test]
async fn a_facebook_video_still_processing_is_published_not_retried_into_failed() {
    let fake = GraphFake::start().await;
    let app = meta_app_waiting(&fake, Duration::from_millis(100)).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "facebook", json!({})).await;
    fake.set_video_polls(1_000_000);
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1280, 720, 12_000, 20_000),
    )
    .await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A long film", "mediaType": "video",
            "videoUrl": video, "platform": [target("facebook", graph::PAGE_ID)]}}}),
    )
    .await;
    let t = published_target(&done).clone();
    let videos = fake.videos();
    assert_eq!(videos.len(), 1);
    assert_eq!(t["platformPostId"], videos[0].id.as_str());
    assert_eq!(
        t["platformPostUrl"],
        format!(
            "https://www.facebook.com/{}/videos/{}/",
            graph::PAGE_ID,
            videos[0].id
        )
    );
    assert_eq!(fake.videos_uploaded(), 1);
}

/// The video upload taken and its answer lost (a 500), the video still being processed and
/// not listed: never uploaded again; the target ends `unknown` (not `failed`, not posted twice).
#[tokio::test]
async fn a_facebook_video_upload_whose_answer_is_lost_is_never_uploaded_twice() {
    let fake = GraphFake::start().await;
    let app = meta_app_waiting(&fake, Duration::from_millis(100)).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "facebook", json!({})).await;
    fake.set_video_polls(1_000_000);
    fake.set_video_listing_lag(true);
    fake.lose_next_video_answer();
    let video = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1280, 720, 12_000, 20_000),
    )
    .await;
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Sent once", "mediaType": "video",
            "videoUrl": video, "platform": [target("facebook", graph::PAGE_ID)]}}}),
    )
    .await;
    assert_eq!(fake.videos_uploaded(), 1, "uploaded once: {done}");
    assert_eq!(done["targets"][0]["status"], "unknown", "{done}");
}

/// The account's publishing quota used up: the target waits for it with a clear error, and
/// nothing reaches Instagram.
#[tokio::test]
async fn an_instagram_account_out_of_quota_waits_with_a_clear_error() {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "instagram", json!({})).await;
    let image = hosted(&app, &key, "image/jpeg", media_files::jpeg(1080, 1080)).await;
    fake.record_api_publishes(graph::IG_USER_ID, graph::DEFAULT_QUOTA_TOTAL as usize);
    let id = submit(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Too many today", "mediaType": "image",
            "imageUrls": [image], "platform": ["instagram"]}}}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let last = loop {
        let body: Value = app
            .get_with_key(&format!("/v1/posts/{id}"), &key)
            .await
            .json()
            .await
            .unwrap();
        let t = &body["targets"][0];
        if t["status"] == "queued" && t["error"]["code"] == "quota_exceeded" {
            break body;
        }
        assert_ne!(t["status"], "published", "{body}");
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let t = &last["targets"][0];
    let message = t["error"]["message"].as_str().unwrap();
    assert!(message.contains("50"), "the quota is named: {message}");
    assert!(t["nextAttemptAt"].is_string(), "{t}");
    assert_eq!(fake.containers_created(), 0, "nothing was sent");
    assert_eq!(fake.publishes(), 0);
}

/// A Page the user no longer manages: the target fails with Facebook's words and the account
/// asks to be reconnected; never a 5xx.
#[tokio::test]
async fn a_page_the_token_no_longer_manages_fails_the_target_and_asks_for_reconnection() {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "facebook", json!({})).await;
    fake.remove_page_role(graph::PAGE_ID);
    let id = submit(
        &app,
        &key,
        &json!({"post": {"content": {"text": "Still there?",
            "platform": [target("facebook", graph::PAGE_ID)]}}}),
    )
    .await;
    let done = wait_for_status(&app, &key, &id, &["failed"]).await;
    let t = &done["targets"][0];
    assert_eq!(t["status"], "failed", "{done}");
    let said = t["error"].to_string();
    assert!(
        said.contains("role on the Page"),
        "Facebook's words: {said}"
    );
    let accounts = accounts_of(&app, &key, "facebook").await;
    let page = accounts
        .iter()
        .find(|a| a["accountId"] == graph::PAGE_ID)
        .unwrap();
    assert_eq!(page["status"], "needs_reconnect", "{page}");
    assert_eq!(fake.page_posts_created(), 0);
}

/// Facebook's post types and Instagram stories are checked at submission, live and in test
/// mode, against their own rules: 400 naming the platform, the field and the rule.
#[tokio::test]
async fn post_types_are_checked_against_their_own_rules_at_submission() {
    let fake = GraphFake::start().await;
    let app = meta_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "facebook", json!({})).await;
    let (_, test_key) = app.test_subscriber().await;
    let short = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 2_000, 20_000),
    )
    .await;
    let long = hosted(
        &app,
        &key,
        "video/mp4",
        media_files::mp4(1080, 1920, 75_000, 20_000),
    )
    .await;
    let rule = |body: &Value| {
        (
            body["error"]["details"]["platform"].clone(),
            body["error"]["details"]["field"].clone(),
            body["error"]["details"]["rule"].clone(),
        )
    };

    let reel = json!({"post": {"content": {"text": "Too short", "mediaType": "video",
        "videoUrl": short, "platform": [target("facebook", graph::PAGE_ID)]},
        "options": {"facebook": {"postType": "reel"}}}});
    let r = app.post_json("/v1/posts", &key, &reel).await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(
        rule(&body),
        (
            json!("facebook"),
            json!("post.content.videoUrl"),
            json!("min_duration")
        ),
        "{body}"
    );
    // The same video as a feed post is fine (a Page video has no documented limit).
    let mut feed = reel.clone();
    feed["post"]["options"] = json!({});
    let r = app.post_json("/v1/posts", &key, &feed).await;
    assert_eq!(r.status(), 200);

    let story = json!({"post": {"content": {"text": "Too long", "mediaType": "video",
        "videoUrl": long, "platform": ["instagram"]},
        "options": {"instagram": {"postType": "story"}}}});
    connect(&app, &key, "instagram", json!({})).await;
    let r = app.post_json("/v1/posts", &key, &story).await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(
        rule(&body),
        (
            json!("instagram"),
            json!("post.content.videoUrl"),
            json!("max_duration")
        ),
        "{body}"
    );

    // Two images are not a story, in test mode too.
    for key in [&key, &test_key] {
        let r = app
            .post_json(
                "/v1/posts",
                key,
                &json!({"post": {"content": {"text": "", "mediaType": "image",
                    "imageUrls": ["https://img.example/a.jpg", "https://img.example/b.jpg"],
                    "platform": ["facebook"]},
                    "options": {"facebook": {"postType": "story"}}}}),
            )
            .await;
        let body = expect_error(r, 400, "validation_error", None).await;
        assert_eq!(
            body["error"]["details"]["rule"], "story_single_media",
            "{body}"
        );
        assert_eq!(body["error"]["details"]["platform"], "facebook", "{body}");
    }
}
