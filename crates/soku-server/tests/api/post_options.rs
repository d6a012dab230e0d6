//! `post.options` and per-target text (spec 8.2) through the API, in test mode (spec 9): what
//! the simulated platforms receive, what `GET /v1/posts/{id}` shows, and what is refused.

use crate::media::{created, upload};
use crate::posts::{submit, wait_for_status};
use crate::util::{TestApp, expect_error};
use serde_json::{Value, json};
use soku_fakes::media_files;

/// The sandbox record of submission `id` on `platform`.
async fn received(app: &TestApp, key: &str, platform: &str, id: &str) -> Value {
    let list: Value = app
        .get_with_key(&format!("/v1/sandbox/{platform}/posts"), key)
        .await
        .json()
        .await
        .unwrap();
    list["posts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["submissionId"] == id)
        .unwrap_or_else(|| panic!("{platform} received nothing of {id}: {list}"))
        .clone()
}

/// 400 `validation_error`: its details.
async fn refused(app: &TestApp, key: &str, body: &Value) -> Value {
    let response = app.post_json("/v1/posts", key, body).await;
    expect_error(response, 400, "validation_error", None).await["error"]["details"].clone()
}

#[tokio::test]
async fn each_target_publishes_its_own_text() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let long = format!("A longer text for Bluesky. {}", "b".repeat(260));
    let body = json!({"post": {"content": {"text": long, "platform": [
        {"platform": "x", "accountId": "test_x", "text": "Short for X"},
        "bluesky"
    ]}}});
    let id = submit(&app, &key, &body).await;
    let done = wait_for_status(&app, &key, &id, &["published"]).await;

    assert_eq!(received(&app, &key, "x", &id).await["text"], "Short for X");
    assert_eq!(
        received(&app, &key, "bluesky", &id).await["text"],
        long.as_str()
    );

    let targets = done["targets"].as_array().unwrap();
    let x = targets.iter().find(|t| t["platform"] == "x").unwrap();
    let bluesky = targets.iter().find(|t| t["platform"] == "bluesky").unwrap();
    assert_eq!(x["text"], "Short for X", "{done}");
    assert!(bluesky.get("text").is_none(), "no own text: {done}");
    // The post as sent is kept too.
    assert_eq!(done["post"]["content"]["text"], long.as_str());
}

#[tokio::test]
async fn a_text_post_may_carry_text_only_in_its_targets() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let body = json!({"post": {"content": {"platform": [
        {"platform": "x", "text": "only for x"},
        {"platform": "mastodon", "text": "only for mastodon"}
    ]}}});
    let id = submit(&app, &key, &body).await;
    wait_for_status(&app, &key, &id, &["published"]).await;
    assert_eq!(received(&app, &key, "x", &id).await["text"], "only for x");
    assert_eq!(
        received(&app, &key, "mastodon", &id).await["text"],
        "only for mastodon"
    );

    // A target's text over its platform's limit: refused, naming that target's text.
    let details = refused(
        &app,
        &key,
        &json!({"post": {"content": {"text": "fine", "platform": [
            "bluesky", {"platform": "x", "text": "x".repeat(281)}
        ]}}}),
    )
    .await;
    assert_eq!(
        details,
        json!({"field": "post.content.platform[1].text", "reason": "too_long", "platform": "x",
               "limit": 280, "actual": 281})
    );
}

#[tokio::test]
async fn options_reach_the_simulated_platform() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let body = json!({"post": {
        "content": {"text": "hello", "platform": ["linkedin", "x"]},
        "options": {
            "linkedin": {"visibility": "CONNECTIONS"},
            "youtube": {"privacyStatus": "private"}
        }
    }});
    let id = submit(&app, &key, &body).await;
    wait_for_status(&app, &key, &id, &["published"]).await;
    assert_eq!(
        received(&app, &key, "linkedin", &id).await["options"],
        json!({"visibility": "CONNECTIONS"})
    );
    // X has no options; YouTube's, for a platform not targeted, are ignored.
    assert_eq!(received(&app, &key, "x", &id).await["options"], json!({}));

    // Instagram: a reel (a hosted 10-second video) with its options and the top-level
    // trial_reel flag, which means `trialReel`.
    let response = app
        .http
        .post(app.url("/v1/media/uploads"))
        .header("soku-api-key", &key)
        .header("content-type", "video/mp4")
        .body(media_files::mp4(1080, 1920, 10_000, 2000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let video: Value = response.json().await.unwrap();
    let body = json!({"post": {
        "content": {"text": "a reel", "mediaType": "video", "videoUrl": video["url"],
                    "platform": "instagram"},
        "options": {"instagram": {"shareToFeed": false, "coverUrl": "https://media.example/c.jpg"}}
    }, "trial_reel": true});
    let id = submit(&app, &key, &body).await;
    wait_for_status(&app, &key, &id, &["published"]).await;
    assert_eq!(
        received(&app, &key, "instagram", &id).await["options"],
        json!({"shareToFeed": false, "coverUrl": "https://media.example/c.jpg",
               "trialReel": true})
    );
}

#[tokio::test]
async fn bad_options_are_refused_with_their_field() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let with = |options: Value| json!({"post": {"content": {"text": "hi", "platform": "x"}, "options": options}});
    for (options, field, reason) in [
        (
            json!({"instagram": {"postTyp": "reel"}}),
            "post.options.instagram.postTyp",
            "unknown_field",
        ),
        (
            json!({"myspace": {}}),
            "post.options.myspace",
            "unknown_field",
        ),
        (
            json!({"youtube": {"privacyStatus": "secret"}}),
            "post.options.youtube.privacyStatus",
            "invalid_value",
        ),
        (
            json!({"tiktok": {"allowDuet": "yes"}}),
            "post.options.tiktok.allowDuet",
            "invalid_type",
        ),
        (
            json!({"snapchat": {"title": "t".repeat(46)}}),
            "post.options.snapchat.title",
            "too_long",
        ),
        (json!("reel"), "post.options", "invalid_type"),
    ] {
        let details = refused(&app, &key, &with(options.clone())).await;
        assert_eq!(details["field"], field, "{options}: {details}");
        assert_eq!(details["reason"], reason, "{options}: {details}");
    }
}

#[tokio::test]
async fn instagram_rules_are_checked_at_submission() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let images = |n: usize, text: &str| {
        let urls: Vec<String> = (0..n)
            .map(|i| format!("https://media.example/{i}.jpg"))
            .collect();
        json!({"post": {"content": {"text": text, "mediaType": "image", "imageUrls": urls,
                                    "platform": "instagram"}}})
    };

    // Without media.
    let details = refused(
        &app,
        &key,
        &json!({"post": {"content": {"text": "hi", "platform": "instagram"}}}),
    )
    .await;
    assert_eq!(
        (&details["field"], &details["reason"], &details["platform"]),
        (
            &json!("post.content.mediaUrls"),
            &json!("required"),
            &json!("instagram")
        )
    );

    // 11 carousel items.
    let details = refused(&app, &key, &images(11, "hi")).await;
    assert_eq!(
        details,
        json!({"field": "post.content.imageUrls", "reason": "too_many", "platform": "instagram",
               "limit": 10, "actual": 11})
    );

    // 31 hashtags, then 21 mentions.
    let details = refused(&app, &key, &images(1, &"#tag ".repeat(31))).await;
    assert_eq!(
        details,
        json!({"field": "post.content.text", "reason": "too_many", "platform": "instagram",
               "rule": "max_hashtags", "limit": 30, "actual": 31})
    );
    let details = refused(&app, &key, &images(1, &"@friend ".repeat(21))).await;
    assert_eq!(details["rule"], "max_mentions", "{details}");

    // A story of several images; a reel option on a feed post.
    let mut story = images(2, "hi");
    story["post"]["options"] = json!({"instagram": {"postType": "story"}});
    let details = refused(&app, &key, &story).await;
    assert_eq!(
        (&details["field"], &details["rule"]),
        (
            &json!("post.content.imageUrls"),
            &json!("story_single_media")
        )
    );
    let mut feed = images(1, "hi");
    feed["post"]["options"] = json!({"instagram": {"coverUrl": "https://media.example/c.jpg"}});
    let details = refused(&app, &key, &feed).await;
    assert_eq!(
        (&details["field"], &details["rule"], &details["platform"]),
        (
            &json!("post.options.instagram.coverUrl"),
            &json!("reel_only"),
            &json!("instagram")
        )
    );
}

/// An uploaded video's hosted URL.
async fn hosted_video(app: &TestApp, key: &str, bytes: Vec<u8>) -> String {
    let body = created(upload(app, key, "video/mp4", bytes).await).await;
    body["url"].as_str().unwrap().to_owned()
}

/// A video post to `platform` with `options`.
fn video_post(platform: &str, url: &str, options: Value) -> Value {
    json!({"post": {"content": {"text": "a clip", "mediaType": "video", "videoUrl": url,
                                "platform": [platform]},
                    "options": options}})
}

/// Facebook reels and video stories are 9:16 (a landscape one is refused at submission, naming
/// the video and the rule), a phone's portrait recording (stored landscape, turned by its matrix)
/// is 9:16, and a feed video may last up to 240 minutes.
#[tokio::test]
async fn facebook_reels_are_9_16_and_feed_videos_at_most_240_minutes() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let landscape = hosted_video(&app, &key, media_files::mp4(1920, 1080, 10_000, 1000)).await;
    let portrait = hosted_video(
        &app,
        &key,
        media_files::turned(media_files::mp4(1920, 1080, 10_000, 1001), 90),
    )
    .await;
    for post_type in ["reel", "story"] {
        let options = json!({"facebook": {"postType": post_type}});
        let response = app
            .post_json(
                "/v1/posts",
                &key,
                &video_post("facebook", &landscape, options.clone()),
            )
            .await;
        let body = expect_error(response, 400, "validation_error", None).await;
        let details = &body["error"]["details"];
        assert_eq!(
            details,
            &json!({"field": "post.content.videoUrl", "reason": "media_rule",
                    "rule": "aspect_ratio", "platform": "facebook"}),
            "{post_type}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("1920×1080") && message.contains("9:16"),
            "{message}"
        );
        submit(&app, &key, &video_post("facebook", &portrait, options)).await;
    }
    // The landscape video is a fine feed video.
    submit(&app, &key, &video_post("facebook", &landscape, json!({}))).await;

    let four_hours = 240 * 60_000;
    let longest = hosted_video(&app, &key, media_files::mp4(1280, 720, four_hours, 1002)).await;
    submit(&app, &key, &video_post("facebook", &longest, json!({}))).await;
    let longer = hosted_video(
        &app,
        &key,
        media_files::mp4(1280, 720, four_hours + 1000, 1003),
    )
    .await;
    let response = app
        .post_json(
            "/v1/posts",
            &key,
            &video_post("facebook", &longer, json!({})),
        )
        .await;
    let body = expect_error(response, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["rule"], "max_duration", "{body}");
    assert_eq!(body["error"]["details"]["platform"], "facebook", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("240 min"),
        "{body}"
    );
}

/// A Snapchat Spotlight is a vertical video: a landscape one is refused at submission (a story
/// takes it), a phone's portrait recording passes.
#[tokio::test]
async fn snapchat_spotlights_are_vertical() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let landscape = hosted_video(&app, &key, media_files::mp4(1920, 1080, 10_000, 1000)).await;
    let portrait = hosted_video(
        &app,
        &key,
        media_files::turned(media_files::mp4(1920, 1080, 10_000, 1001), 270),
    )
    .await;
    let spotlight = json!({"snapchat": {"postType": "spotlight"}});
    let response = app
        .post_json(
            "/v1/posts",
            &key,
            &video_post("snapchat", &landscape, spotlight.clone()),
        )
        .await;
    let body = expect_error(response, 400, "validation_error", None).await;
    assert_eq!(
        body["error"]["details"],
        json!({"field": "post.content.videoUrl", "reason": "media_rule",
               "rule": "aspect_ratio", "platform": "snapchat"}),
        "{body}"
    );
    submit(&app, &key, &video_post("snapchat", &portrait, spotlight)).await;
    submit(&app, &key, &video_post("snapchat", &landscape, json!({}))).await;
}

/// YouTube options that YouTube (or the connector on its behalf) would refuse are refused at
/// submission with the option named: a blank title, a description over 5,000 bytes as sent,
/// tags over 500 characters. The limits themselves are accepted.
#[tokio::test]
async fn youtube_options_youtube_would_refuse_are_refused_at_submission() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let with = |options: Value| {
        json!({"post": {"content": {"text": "a clip", "mediaType": "video",
                                    "videoUrl": "https://media.example/v.mp4",
                                    "platform": ["youtube"]},
                        "options": {"youtube": options}}})
    };
    let details = refused(&app, &key, &with(json!({"title": "  "}))).await;
    assert_eq!(
        details,
        json!({"field": "post.options.youtube.title", "reason": "invalid_value"})
    );
    let details = refused(
        &app,
        &key,
        &with(json!({"description": format!("{}<", "d".repeat(4998))})),
    )
    .await;
    assert_eq!(
        details,
        json!({"field": "post.options.youtube.description", "reason": "too_long",
               "limit": 5000, "actual": 5001})
    );
    let details = refused(
        &app,
        &key,
        &with(json!({"tags": ["a".repeat(250), "b".repeat(250)]})),
    )
    .await;
    assert_eq!(
        details,
        json!({"field": "post.options.youtube.tags", "reason": "too_long",
               "limit": 500, "actual": 501})
    );
    submit(
        &app,
        &key,
        &with(
            json!({"title": "t".repeat(100), "description": "d".repeat(5000),
                     "tags": ["a".repeat(250), "b".repeat(249)]}),
        ),
    )
    .await;
}

/// TikTok: branded content cannot be private, and a photo post's title is at most 90 UTF-16
/// units; both refused at submission naming the option, the limits accepted.
#[tokio::test]
async fn tiktok_branded_content_cannot_be_private() {
    let app = TestApp::start().await;
    let (_, key) = app.test_subscriber().await;
    let video = |options: Value| {
        json!({"post": {"content": {"text": "a clip", "mediaType": "video",
                                    "videoUrl": "https://media.example/v.mp4",
                                    "platform": ["tiktok"]},
                        "options": {"tiktok": options}}})
    };
    let photos = |options: Value| {
        json!({"post": {"content": {"text": "photos", "mediaType": "image",
                                    "imageUrls": ["https://media.example/1.jpg"],
                                    "platform": ["tiktok"]},
                        "options": {"tiktok": options}}})
    };
    let private_branded = json!({"privacyLevel": "SELF_ONLY", "brandedContent": true});
    for body in [video(private_branded.clone()), photos(private_branded)] {
        let details = refused(&app, &key, &body).await;
        assert_eq!(
            details,
            json!({"field": "post.options.tiktok.privacyLevel", "reason": "invalid_value",
                   "platform": "tiktok", "rule": "branded_content_private"})
        );
    }
    let details = refused(
        &app,
        &key,
        &photos(json!({"privacyLevel": "SELF_ONLY", "title": "😀".repeat(45) + "!"})),
    )
    .await;
    assert_eq!(
        details,
        json!({"field": "post.options.tiktok.title", "reason": "too_long", "platform": "tiktok",
               "rule": "utf16_length", "limit": 90, "actual": 91})
    );
    submit(
        &app,
        &key,
        &video(json!({"privacyLevel": "PUBLIC_TO_EVERYONE", "brandedContent": true})),
    )
    .await;
    submit(
        &app,
        &key,
        &photos(json!({"privacyLevel": "SELF_ONLY", "yourBrand": true, "title": "😀".repeat(45)})),
    )
    .await;
}

#[tokio::test]
async fn the_openapi_document_describes_options_and_target_text() {
    let app = TestApp::start().await;
    let doc: Value = reqwest::get(app.url("/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["PostOptions"]["properties"]["instagram"].is_object(),
        "{}",
        schemas["PostOptions"]
    );
    assert!(schemas["InstagramOptions"]["properties"]["postType"].is_object());
    assert!(schemas["TargetAccount"]["properties"]["text"].is_object());
    assert!(schemas["PostRequest"]["properties"]["options"].is_object());
}
