//! The rules of spec 6.1, through `validate_post`, and the submission status.

use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn check(body: Value) -> Result<ValidatedPost, Invalid> {
    validate_post(&CreatePostRequest::from(body), now())
}

fn err(body: Value) -> (String, &'static str, Option<Platform>) {
    let e = check(body).unwrap_err();
    (e.field, e.reason, e.platform)
}

fn post(content: Value) -> Value {
    json!({ "post": { "content": content } })
}

#[test]
fn a_plain_text_post() {
    let v = check(post(
        json!({"text": "hi", "platform": ["threads", {"platform": "twitter", "accountId": "a1"}]}),
    ))
    .unwrap();
    assert_eq!(v.content.media_type, MediaType::Text);
    assert_eq!(v.targets.len(), 2);
    assert_eq!(v.targets[1].platform, Platform::X);
    assert_eq!(v.targets[1].account_id.as_deref(), Some("a1"));
    assert!(v.scheduled_time.is_none());
    let single = check(post(json!({"text": "hi", "platform": "Bluesky"}))).unwrap();
    assert_eq!(single.targets[0].platform, Platform::Bluesky);
}

#[test]
fn structure_rules() {
    assert_eq!(err(json!({})), ("post".into(), "required", None));
    assert_eq!(
        err(json!({"post": 1})),
        ("post".into(), "invalid_type", None)
    );
    assert_eq!(
        err(json!({"post": {}})),
        ("post.content".into(), "required", None)
    );
    assert_eq!(
        err(post(json!({"text": "x"}))),
        ("post.content.platform".into(), "required", None)
    );
    assert_eq!(
        err(post(json!({"text": "x", "platform": []}))),
        ("post.content.platform".into(), "invalid_value", None)
    );
    assert_eq!(
        err(post(json!({"text": "x", "platform": 7}))),
        ("post.content.platform".into(), "invalid_type", None)
    );
    assert_eq!(
        err(post(json!({"text": "x", "platform": ["x", "myspace"]}))),
        ("post.content.platform[1]".into(), "invalid_value", None)
    );
    assert_eq!(
        err(post(json!({"text": "x", "platform": [{"accountId": "a"}]}))),
        ("post.content.platform[0].platform".into(), "required", None)
    );
    assert_eq!(
        err(post(
            json!({"text": "x", "platform": [{"platform": "x", "accountId": 5}]})
        )),
        (
            "post.content.platform[0].accountId".into(),
            "invalid_type",
            None
        )
    );
    assert_eq!(
        err(post(json!({"text": 5, "platform": "x"}))),
        ("post.content.text".into(), "invalid_type", None)
    );
    assert_eq!(
        err(post(
            json!({"text": "x", "mediaType": "gif", "platform": "x"})
        )),
        ("post.content.mediaType".into(), "invalid_value", None)
    );
}

#[test]
fn the_first_problem_in_the_rules_order_is_the_answer() {
    // The media rules come before the targets, the content before the schedule.
    assert_eq!(
        err(post(json!({"platform": "myspace", "mediaType": "text"}))),
        ("post.content.text".into(), "required", None)
    );
    assert_eq!(
        err(json!({"scheduledTime": 5, "post": {"content": {"platform": 7, "text": "x"}}})),
        ("post.content.platform".into(), "invalid_type", None)
    );
    assert_eq!(
        err(
            json!({"trial_reel": 1, "enableRepurposing": "x", "post": {"content": {"platform": "x", "text": "x"}}})
        ),
        ("enableRepurposing".into(), "invalid_type", None)
    );
    // Not an object where one is expected, even an array serde would read as a struct.
    assert_eq!(
        err(json!({"post": {"content": []}})),
        ("post.content".into(), "invalid_type", None)
    );
    assert_eq!(
        err(post(json!({"text": "x", "platform": [["x", "a"]]}))),
        ("post.content.platform[0]".into(), "invalid_type", None)
    );
    assert_eq!(err(json!([1])), ("body".into(), "invalid_type", None));
}

#[test]
fn media_rules() {
    let e = check(post(json!({"mediaType": "text", "platform": "x"}))).unwrap_err();
    assert_eq!(
        e.message,
        "The 'text' field is required when mediaType is 'text'."
    );
    assert_eq!(
        (e.field.as_str(), e.reason),
        ("post.content.text", "required")
    );
    assert_eq!(
        err(post(
            json!({"mediaType": "image", "text": "x", "platform": "x"})
        ))
        .0,
        "post.content.imageUrls"
    );
    assert_eq!(
        err(post(
            json!({"mediaType": "video", "text": "x", "platform": "x"})
        ))
        .0,
        "post.content.videoUrl"
    );
    assert_eq!(
        err(post(
            json!({"mediaType": "image", "imageUrls": ["ftp://a/b.png"], "platform": "x"})
        )),
        ("post.content.imageUrls[0]".into(), "invalid_value", None)
    );
    assert_eq!(
        err(post(
            json!({"mediaType": "video", "videoUrl": "javascript:alert(1)", "platform": "x"})
        )),
        ("post.content.videoUrl".into(), "invalid_value", None)
    );
    let v = check(post(
        json!({"mediaType": "image", "mediaUrls": ["https://a.example/1.png"], "platform": "x"}),
    ))
    .unwrap();
    assert_eq!(
        v.content.image_urls,
        vec!["https://a.example/1.png".to_owned()]
    );
    let v = check(post(json!({"mediaType": "video", "mediaUrls": ["https://a.example/v.mp4"], "platform": "youtube", "text": "Title"}))).unwrap();
    assert_eq!(
        v.content.video_url.as_deref(),
        Some("https://a.example/v.mp4")
    );
}

#[test]
fn platform_rules() {
    let long = |n: usize| "a".repeat(n);
    for (platform, max) in [
        ("x", 280),
        ("threads", 500),
        ("linkedin", 3000),
        ("facebook", 5000),
        ("bluesky", 300),
        ("mastodon", 500),
    ] {
        assert!(
            check(post(json!({"text": long(max), "platform": platform}))).is_ok(),
            "{platform}"
        );
        let e = check(post(json!({"text": long(max + 1), "platform": platform}))).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason, e.limit),
            ("post.content.text", "too_long", Some(max)),
            "{platform}"
        );
        assert_eq!(e.platform, Platform::parse(platform));
    }
    let img = |n: usize| {
        (0..n)
            .map(|i| format!("https://img.example/{i}.png"))
            .collect::<Vec<_>>()
    };
    for (platform, max) in [
        ("x", 4),
        ("linkedin", 9),
        ("instagram", 10),
        ("facebook", 10),
        ("threads", 20),
        ("tiktok", 35),
        ("bluesky", 4),
    ] {
        // (TikTok's required option given; ignored by the others.)
        assert!(
            check(with_options(
                json!({"mediaType": "image", "imageUrls": img(max), "platform": platform}),
                json!({"tiktok": {"privacyLevel": "SELF_ONLY"}})
            ))
            .is_ok(),
            "{platform}"
        );
        let e = check(post(
            json!({"mediaType": "image", "imageUrls": img(max + 1), "platform": platform}),
        ))
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.reason),
            ("post.content.imageUrls", "too_many"),
            "{platform}"
        );
    }
    for platform in ["instagram", "tiktok", "snapchat"] {
        assert_eq!(
            err(post(json!({"text": "hi", "platform": platform}))).1,
            "required",
            "{platform}"
        );
    }
    let e = check(post(
        json!({"mediaType": "image", "imageUrls": img(1), "platform": "youtube"}),
    ))
    .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason),
        ("post.content.videoUrl", "required")
    );
    let e = check(post(json!({"mediaType": "video", "videoUrl": "https://v.example/v.mp4", "text": long(101), "platform": "youtube"}))).unwrap_err();
    assert_eq!((e.reason, e.limit), ("too_long", Some(100)));
    // Instagram: 2,200 with media.
    let e = check(post(json!({"mediaType": "image", "imageUrls": img(1), "text": long(2201), "platform": "instagram"}))).unwrap_err();
    assert_eq!(e.limit, Some(2200));
}

#[test]
fn graphemes_and_urls() {
    // One family emoji is one grapheme of several code points.
    assert_eq!(caption_length("👨‍👩‍👧‍👦", false), 1);
    assert_eq!(caption_length("é", false), 1);
    let url = format!("https://example.com/{}", "a".repeat(100));
    assert_eq!(caption_length(&format!("see {url} now"), true), 4 + 23 + 4);
    assert!(
        check(post(
            json!({"text": format!("{} {url}", "b".repeat(256)), "platform": "x"})
        ))
        .is_ok()
    );
    assert!(check(post(json!({"text": "👍".repeat(280), "platform": "x"}))).is_ok());
    assert!(check(post(json!({"text": "👍".repeat(281), "platform": "x"}))).is_err());
}

#[test]
fn scheduling() {
    let base =
        |t: &str| json!({"post": {"content": {"text": "x", "platform": "x"}}, "scheduledTime": t});
    let v = check(base("2026-06-01T12:01:00Z")).unwrap();
    assert_eq!(
        v.scheduled_time,
        Some(now() + chrono::Duration::seconds(60))
    );
    let v = check(base("2026-06-01T14:30:00+02:00")).unwrap();
    assert_eq!(
        v.scheduled_time,
        Some(now() + chrono::Duration::minutes(30))
    );
    assert_eq!(
        err(base("2026-06-01T12:00:59Z")),
        ("scheduledTime".into(), "too_soon", None)
    );
    assert_eq!(err(base("2025-01-01T00:00:00Z")).1, "too_soon");
    assert_eq!(
        err(base("tomorrow")),
        ("scheduledTime".into(), "invalid_value", None)
    );
    assert_eq!(
        err(base("2026-06-01T13:00:00")).1,
        "invalid_value",
        "an offset is required"
    );
    assert_eq!(
        err(json!({"post": {"content": {"text": "x", "platform": "x"}}, "scheduledTime": 5})).1,
        "invalid_type"
    );
}

#[test]
fn submission_status() {
    use SubmissionStatus as S;
    use TargetStatus as T;
    assert_eq!(S::from_targets(&[T::Scheduled, T::Scheduled]), S::Scheduled);
    assert_eq!(S::from_targets(&[T::Queued, T::Scheduled]), S::Queued);
    assert_eq!(S::from_targets(&[T::Queued, T::Publishing]), S::Publishing);
    assert_eq!(S::from_targets(&[T::Queued, T::Published]), S::Publishing);
    assert_eq!(S::from_targets(&[T::Published, T::Published]), S::Published);
    assert_eq!(
        S::from_targets(&[T::Published, T::Failed]),
        S::PartiallyPublished
    );
    assert_eq!(S::from_targets(&[T::Unknown, T::Failed]), S::Failed);
    assert_eq!(S::from_targets(&[T::Canceled, T::Canceled]), S::Canceled);
}

#[test]
fn bluesky_refuses_text_over_3000_bytes_within_300_graphemes() {
    // A family emoji is one grapheme of 25 bytes: 120 of them are exactly 3,000 bytes.
    let family = "\u{1F468}\u{200d}\u{1F469}\u{200d}\u{1F467}\u{200d}\u{1F466}";
    assert_eq!(family.len(), 25);
    assert!(
        check(post(
            json!({"text": family.repeat(120), "platform": "bluesky"})
        ))
        .is_ok()
    );
    let e = check(post(
        json!({"text": family.repeat(121), "platform": "bluesky"}),
    ))
    .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.limit, e.actual),
        (
            "post.content.text",
            "too_long",
            Some(Platform::Bluesky),
            Some(3000),
            Some(3025)
        )
    );
    assert!(e.message.contains("bytes"), "{}", e.message);
}

#[test]
fn threads_counts_an_emoji_as_its_utf8_bytes() {
    let ok = |text: String| check(post(json!({"text": text, "platform": "threads"}))).is_ok();
    assert!(ok("a".repeat(500)));
    // 496 characters and one 4-byte emoji: 500, accepted; 499 and one emoji: 503, refused.
    assert!(ok(format!("{}\u{1F600}", "a".repeat(496))));
    let e = check(post(
        json!({"text": format!("{}\u{1F600}", "a".repeat(499)), "platform": "threads"}),
    ))
    .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.limit, e.actual),
        (
            "post.content.text",
            "too_long",
            Some(Platform::Threads),
            Some(500),
            Some(503)
        )
    );
    // Other non-ASCII text counts one per character, as before.
    assert!(ok("\u{e9}".repeat(500)));
    assert_eq!(threads_text_length("\u{2764}\u{fe0f}"), 6);
    assert_eq!(threads_text_length("caf\u{e9} \u{1F600}"), 9);
}

// `post.options` (spec 8.2).

fn with_options(content: Value, options: Value) -> Value {
    json!({ "post": { "content": content, "options": options } })
}

fn video(platform: &str) -> Value {
    json!({"mediaType": "video", "videoUrl": "https://v.example/v.mp4", "text": "Title", "platform": platform})
}

fn images(n: usize, platform: &str) -> Value {
    let urls: Vec<String> = (0..n)
        .map(|i| format!("https://img.example/{i}.jpg"))
        .collect();
    json!({"mediaType": "image", "imageUrls": urls, "text": "hi", "platform": platform})
}

#[test]
fn every_option_is_read_into_its_platform() {
    let v = check(with_options(
        json!({"mediaType": "video", "videoUrl": "https://v.example/v.mp4", "text": "t",
               "platform": ["youtube", "tiktok", "instagram", "facebook", "snapchat", "linkedin"]}),
        json!({
            "youtube": {"title": "A title", "description": "d", "privacyStatus": "unlisted",
                        "madeForKids": true, "tags": ["a", "b"]},
            "tiktok": {"privacyLevel": "SELF_ONLY", "allowComments": false, "allowDuet": true,
                       "allowStitch": false, "brandedContent": true, "yourBrand": false,
                       "title": "photo"},
            "instagram": {"postType": "reel", "shareToFeed": true,
                          "coverUrl": "https://img.example/c.jpg", "trialReel": true},
            "facebook": {"postType": "feed", "link": "https://example.com/a"},
            "snapchat": {"postType": "savedStory", "title": "t", "description": "d"},
            "linkedin": {"visibility": "CONNECTIONS"}
        }),
    ))
    .unwrap();
    let o = &v.options;
    let yt = o.youtube.as_ref().unwrap();
    assert_eq!(yt.title.as_deref(), Some("A title"));
    assert_eq!(yt.privacy_status, Some(YoutubePrivacy::Unlisted));
    assert_eq!(yt.made_for_kids, Some(true));
    assert_eq!(yt.tags, Some(vec!["a".to_owned(), "b".to_owned()]));
    let tt = o.tiktok.as_ref().unwrap();
    assert_eq!(tt.privacy_level.as_deref(), Some("SELF_ONLY"));
    assert_eq!(
        (tt.allow_comments, tt.allow_duet, tt.allow_stitch),
        (Some(false), Some(true), Some(false))
    );
    assert_eq!(
        (tt.branded_content, tt.your_brand),
        (Some(true), Some(false))
    );
    let ig = o.instagram.as_ref().unwrap();
    assert_eq!(ig.post_type, Some(InstagramPostType::Reel));
    assert_eq!(ig.cover_url.as_deref(), Some("https://img.example/c.jpg"));
    assert_eq!((ig.share_to_feed, ig.trial_reel), (Some(true), Some(true)));
    let fb = o.facebook.as_ref().unwrap();
    assert_eq!(fb.post_type, Some(FacebookPostType::Feed));
    assert_eq!(fb.link.as_deref(), Some("https://example.com/a"));
    let sc = o.snapchat.as_ref().unwrap();
    assert_eq!(sc.post_type, Some(SnapchatPostType::SavedStory));
    assert_eq!(
        o.linkedin.as_ref().unwrap().visibility,
        Some(LinkedinVisibility::Connections)
    );
    // Each target's connector gets its platform's options, in the request's names.
    assert_eq!(
        o.for_platform(Platform::Linkedin).to_json(),
        json!({"visibility": "CONNECTIONS"})
    );
    assert_eq!(o.for_platform(Platform::X), PlatformOptions::None);
    assert_eq!(PlatformOptions::None.to_json(), json!({}));
    // Stored and read back with the content; a bare stored content reads with no options.
    let stored = StoredContent {
        content: v.content.clone(),
        options: v.options.clone(),
    };
    let back: StoredContent =
        serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    assert_eq!(back, stored);
    let old: StoredContent =
        serde_json::from_str(&serde_json::to_string(&v.content).unwrap()).unwrap();
    assert_eq!(
        (old.content, old.options),
        (v.content, PostOptions::default())
    );
}

#[test]
fn no_options_and_empty_options_are_none() {
    assert!(
        check(post(json!({"text": "hi", "platform": "x"})))
            .unwrap()
            .options
            .is_empty()
    );
    assert!(
        check(with_options(
            json!({"text": "hi", "platform": "x"}),
            json!({})
        ))
        .unwrap()
        .options
        .is_empty()
    );
    assert!(
        check(with_options(
            json!({"text": "hi", "platform": "x"}),
            Value::Null
        ))
        .unwrap()
        .options
        .is_empty()
    );
}

#[test]
fn options_for_a_platform_not_targeted_are_checked_then_ignored() {
    let v = check(with_options(
        json!({"text": "hi", "platform": "x"}),
        json!({"linkedin": {"visibility": "PUBLIC"}, "instagram": {"postType": "story", "coverUrl": "https://a.example/c.jpg"}}),
    ))
    .unwrap();
    assert!(v.options.linkedin.is_some());
    assert_eq!(
        err(with_options(
            json!({"text": "hi", "platform": "x"}),
            json!({"linkedin": {"visibility": "public"}})
        )),
        (
            "post.options.linkedin.visibility".into(),
            "invalid_value",
            None
        )
    );
}

#[test]
fn bad_options_name_their_field() {
    let bad = |options: Value| err(with_options(video("youtube"), options));
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!(5), "post.options", "invalid_type"),
        (json!([]), "post.options", "invalid_type"),
        (json!({"x": {}}), "post.options.x", "unknown_field"),
        (
            json!({"myspace": {}}),
            "post.options.myspace",
            "unknown_field",
        ),
        (
            json!({"instagram": 1}),
            "post.options.instagram",
            "invalid_type",
        ),
        (
            json!({"instagram": {"postTyp": "reel"}}),
            "post.options.instagram.postTyp",
            "unknown_field",
        ),
        (
            json!({"instagram": {"postType": "carousel"}}),
            "post.options.instagram.postType",
            "invalid_value",
        ),
        (
            json!({"instagram": {"postType": 1}}),
            "post.options.instagram.postType",
            "invalid_type",
        ),
        (
            json!({"instagram": {"shareToFeed": "yes"}}),
            "post.options.instagram.shareToFeed",
            "invalid_type",
        ),
        (
            json!({"instagram": {"coverUrl": "ftp://a/c.jpg"}}),
            "post.options.instagram.coverUrl",
            "invalid_value",
        ),
        (
            json!({"instagram": {"trialReel": 0}}),
            "post.options.instagram.trialReel",
            "invalid_type",
        ),
        (
            json!({"youtube": {"title": "t".repeat(101)}}),
            "post.options.youtube.title",
            "too_long",
        ),
        (
            json!({"youtube": {"description": 5}}),
            "post.options.youtube.description",
            "invalid_type",
        ),
        (
            json!({"youtube": {"privacyStatus": "secret"}}),
            "post.options.youtube.privacyStatus",
            "invalid_value",
        ),
        (
            json!({"youtube": {"madeForKids": "no"}}),
            "post.options.youtube.madeForKids",
            "invalid_type",
        ),
        (
            json!({"youtube": {"tags": "a,b"}}),
            "post.options.youtube.tags",
            "invalid_type",
        ),
        (
            json!({"youtube": {"tags": ["a", 2]}}),
            "post.options.youtube.tags[1]",
            "invalid_type",
        ),
        (
            json!({"tiktok": {"privacyLevel": "EVERYONE"}}),
            "post.options.tiktok.privacyLevel",
            "invalid_value",
        ),
        (
            json!({"tiktok": {"allowDuet": 1}}),
            "post.options.tiktok.allowDuet",
            "invalid_type",
        ),
        (
            json!({"tiktok": {"allowComments": null, "yourBrand": "x"}}),
            "post.options.tiktok.yourBrand",
            "invalid_type",
        ),
        (
            json!({"tiktok": {"brandedContent": []}}),
            "post.options.tiktok.brandedContent",
            "invalid_type",
        ),
        (
            json!({"tiktok": {"title": false}}),
            "post.options.tiktok.title",
            "invalid_type",
        ),
        (
            json!({"tiktok": {"allowStitch": true, "duet": true}}),
            "post.options.tiktok.duet",
            "unknown_field",
        ),
        (
            json!({"facebook": {"postType": "carousel"}}),
            "post.options.facebook.postType",
            "invalid_value",
        ),
        (
            json!({"facebook": {"link": "not a url"}}),
            "post.options.facebook.link",
            "invalid_value",
        ),
        (
            json!({"snapchat": {"postType": "saved_story"}}),
            "post.options.snapchat.postType",
            "invalid_value",
        ),
        (
            json!({"snapchat": {"title": "t".repeat(46)}}),
            "post.options.snapchat.title",
            "too_long",
        ),
        (
            json!({"snapchat": {"description": "d".repeat(161)}}),
            "post.options.snapchat.description",
            "too_long",
        ),
        (
            json!({"linkedin": {"visibility": "LOGGED_IN"}}),
            "post.options.linkedin.visibility",
            "invalid_value",
        ),
        (
            json!({"linkedin": {"visibility": "PUBLIC", "audience": 1}}),
            "post.options.linkedin.audience",
            "unknown_field",
        ),
    ];
    for (options, field, reason) in cases {
        assert_eq!(
            bad(options.clone()),
            (field.into(), reason, None),
            "{options}"
        );
    }
    // At the limits: accepted.
    assert!(
        check(with_options(
            video("youtube"),
            json!({"youtube": {"title": "t".repeat(100)}})
        ))
        .is_ok()
    );
    assert!(
        check(with_options(
            video("youtube"),
            json!({"snapchat": {"title": "t".repeat(45), "description": "d".repeat(160)}})
        ))
        .is_ok()
    );
    let e = check(with_options(
        video("youtube"),
        json!({"youtube": {"title": "t".repeat(101)}}),
    ))
    .unwrap_err();
    assert_eq!((e.limit, e.actual), (Some(100), Some(101)));
}

#[test]
fn a_youtube_title_option_is_the_title() {
    // The text's first line is the title only when no title option is given.
    let mut body = video("youtube");
    body["text"] = json!("l".repeat(150));
    assert_eq!(check(post(body.clone())).unwrap_err().reason, "too_long");
    assert!(check(with_options(body, json!({"youtube": {"title": "Short"}}))).is_ok());
}

#[test]
fn options_are_checked_after_targets_and_before_the_schedule() {
    assert_eq!(
        err(with_options(
            json!({"text": "x", "platform": 7}),
            json!({"x": 1})
        ))
        .0,
        "post.content.platform"
    );
    assert_eq!(
        err(json!({"scheduledTime": 5, "post": {"content": {"text": "x", "platform": "x"}, "options": {"x": 1}}})).0,
        "post.options.x"
    );
}

// Per-target text (spec 8.2).

#[test]
fn a_target_text_replaces_the_post_text_for_that_target_only() {
    let long = "a".repeat(290);
    let body = post(json!({"text": long, "platform": [
        {"platform": "x", "accountId": "x1", "text": "short"},
        "bluesky"
    ]}));
    let v = check(body).unwrap();
    assert_eq!(
        v.targets[0].text,
        Some(TargetText {
            text: Some("short".into())
        })
    );
    assert_eq!(v.targets[1].text, None);
    let x = v.content.for_target(v.targets[0].text.as_ref());
    assert_eq!(x.text.as_deref(), Some("short"));
    assert_eq!(
        v.content.for_target(None).text.as_deref(),
        Some(long.as_str())
    );
    // Without its own text, X gets the long one and refuses it.
    assert_eq!(
        err(post(json!({"text": long, "platform": ["x", "bluesky"]}))),
        ("post.content.text".into(), "too_long", Some(Platform::X))
    );
}

#[test]
fn the_rules_apply_to_the_text_each_target_publishes() {
    let e = check(post(json!({"text": "fine", "platform": [
        "bluesky",
        {"platform": "x", "text": "b".repeat(281)}
    ]})))
    .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.limit),
        (
            "post.content.platform[1].text",
            "too_long",
            Some(Platform::X),
            Some(280)
        )
    );
    assert_eq!(
        err(post(
            json!({"text": "x", "platform": [{"platform": "x", "text": 5}]})
        )),
        ("post.content.platform[0].text".into(), "invalid_type", None)
    );
    // Instagram's caption rules read the target's own text.
    let mut ig = images(1, "instagram");
    ig["platform"] = json!([{"platform": "instagram", "text": "#a ".repeat(31)}]);
    let e = check(post(ig)).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.rule),
        ("post.content.platform[0].text", Some("max_hashtags"))
    );
}

#[test]
fn a_text_post_may_take_its_text_from_every_target() {
    // No post text, but every target has its own: accepted.
    let v = check(post(json!({"platform": [
        {"platform": "x", "text": "for x"},
        {"platform": "bluesky", "text": "for bluesky"}
    ]})))
    .unwrap();
    assert_eq!(v.content.media_type, MediaType::Text);
    assert_eq!(v.content.text, None);
    assert_eq!(
        v.targets[1].text.as_ref().unwrap().text.as_deref(),
        Some("for bluesky")
    );
    // One target without: the post's text is required, as before.
    let e = check(post(json!({"text": "", "platform": [
        {"platform": "x", "text": "for x"},
        "bluesky"
    ]})))
    .unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason),
        ("post.content.text", "required")
    );
    assert_eq!(
        e.message,
        "The 'text' field is required when mediaType is 'text'."
    );
    // An empty own text publishes no text: a text post then has nothing for that target.
    assert_eq!(
        err(post(
            json!({"text": "hi", "platform": ["bluesky", {"platform": "x", "text": " "}]})
        )),
        ("post.content.platform[1].text".into(), "required", None)
    );
    // With media, an empty own text is a post without a caption.
    let mut ig = images(1, "instagram");
    ig["platform"] = json!(["x", {"platform": "instagram", "text": ""}]);
    let v = check(post(ig)).unwrap();
    assert_eq!(v.content.for_target(v.targets[1].text.as_ref()).text, None);
    assert_eq!(TargetText::from_stored(""), TargetText { text: None });
    assert_eq!(TargetText::from_stored("a").stored(), "a");
}

// Instagram (spec 6.1, 8.2).

#[test]
fn instagram_caption_hashtags_and_mentions() {
    let caption = |text: String| {
        let mut body = images(1, "instagram");
        body["text"] = json!(text);
        check(post(body))
    };
    assert!(caption("#tag ".repeat(30)).is_ok());
    let e = caption("#tag ".repeat(31)).unwrap_err();
    assert_eq!(
        (
            e.field.as_str(),
            e.reason,
            e.platform,
            e.rule,
            e.limit,
            e.actual
        ),
        (
            "post.content.text",
            "too_many",
            Some(Platform::Instagram),
            Some("max_hashtags"),
            Some(30),
            Some(31)
        )
    );
    assert_eq!(e.details()["rule"], "max_hashtags");
    assert_eq!(e.details()["platform"], "instagram");
    assert!(caption("@someone ".repeat(20)).is_ok());
    let e = caption("@someone ".repeat(21)).unwrap_err();
    assert_eq!(
        (e.rule, e.limit, e.actual),
        (Some("max_mentions"), Some(20), Some(21))
    );
    // Other platforms do not count them.
    assert!(check(post(json!({"text": "#a ".repeat(40), "platform": "x"}))).is_ok());
    assert_eq!(count_tags("mail a@b.com, C# and ## or # alone", '#'), 0);
    assert_eq!(count_tags("mail a@b.com", '@'), 0);
    assert_eq!(count_tags("#one,#two (#three) #4", '#'), 4);
    assert_eq!(count_tags("hi @a_b.c and @x", '@'), 2);
}

#[test]
fn instagram_media_rules() {
    let e = check(post(json!({"text": "hi", "platform": "instagram"}))).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform),
        (
            "post.content.mediaUrls",
            "required",
            Some(Platform::Instagram)
        )
    );
    assert!(check(post(images(10, "instagram"))).is_ok());
    let e = check(post(images(11, "instagram"))).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.limit, e.actual),
        (
            "post.content.imageUrls",
            "too_many",
            Some(Platform::Instagram),
            Some(10),
            Some(11)
        )
    );
    let mut long = images(1, "instagram");
    long["text"] = json!("c".repeat(2201));
    assert_eq!(check(post(long)).unwrap_err().limit, Some(2200));
}

#[test]
fn instagram_post_types() {
    let ig = |content: Value, options: Value| {
        check(with_options(content, json!({"instagram": options})))
    };
    // Stories take one image or video.
    assert!(ig(images(1, "instagram"), json!({"postType": "story"})).is_ok());
    let e = ig(images(2, "instagram"), json!({"postType": "story"})).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.rule),
        (
            "post.content.imageUrls",
            "too_many",
            Some(Platform::Instagram),
            Some("story_single_media")
        )
    );
    // Reels need a video.
    assert!(ig(video("instagram"), json!({"postType": "reel"})).is_ok());
    let e = ig(images(1, "instagram"), json!({"postType": "reel"})).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.rule),
        (
            "post.content.videoUrl",
            "required",
            Some(Platform::Instagram),
            Some("reel_needs_video")
        )
    );
    // Reel-only options, on a video (a reel by default) and on what is not a reel.
    for (name, value) in [
        ("coverUrl", json!("https://img.example/c.jpg")),
        ("shareToFeed", json!(false)),
        ("trialReel", json!(true)),
    ] {
        assert!(
            ig(video("instagram"), json!({ name: value })).is_ok(),
            "{name}"
        );
        let e = ig(images(1, "instagram"), json!({ name: value })).unwrap_err();
        assert_eq!(
            (e.field, e.reason, e.platform, e.rule),
            (
                format!("post.options.instagram.{name}"),
                "invalid_value",
                Some(Platform::Instagram),
                Some("reel_only")
            ),
            "{name}"
        );
        let e = ig(
            video("instagram"),
            json!({ name: value, "postType": "story" }),
        )
        .unwrap_err();
        assert_eq!(e.rule, Some("reel_only"), "{name}");
    }
    assert!(ig(images(1, "instagram"), json!({"trialReel": false})).is_ok());
    // The same options on a post that does not target Instagram: ignored.
    assert!(
        ig(
            images(2, "x"),
            json!({"postType": "reel", "coverUrl": "https://a.example/c.jpg"})
        )
        .is_ok()
    );
}

#[test]
fn facebook_post_types() {
    let fb =
        |content: Value, options: Value| check(with_options(content, json!({"facebook": options})));
    let rule = |e: Invalid| (e.field, e.reason, e.platform, e.rule);
    // A reel is one video, no images.
    assert!(fb(video("facebook"), json!({"postType": "reel"})).is_ok());
    assert_eq!(
        rule(fb(images(1, "facebook"), json!({"postType": "reel"})).unwrap_err()),
        (
            "post.content.videoUrl".into(),
            "required",
            Some(Platform::Facebook),
            Some("reel_needs_video")
        )
    );
    // A story is one image or one video.
    assert!(fb(images(1, "facebook"), json!({"postType": "story"})).is_ok());
    assert!(fb(video("facebook"), json!({"postType": "story"})).is_ok());
    let e = fb(images(2, "facebook"), json!({"postType": "story"})).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.rule, e.limit, e.actual),
        (
            "post.content.imageUrls",
            "too_many",
            Some("story_single_media"),
            Some(1),
            Some(2)
        )
    );
    let e = fb(
        json!({"text": "words only", "platform": "facebook"}),
        json!({"postType": "story"}),
    )
    .unwrap_err();
    assert_eq!(e.rule, Some("story_single_media"));
    // A link belongs to feed posts.
    let link = json!("https://example.com/a");
    assert!(fb(images(1, "facebook"), json!({ "link": link })).is_ok());
    for post_type in ["reel", "story"] {
        let e = fb(
            video("facebook"),
            json!({"postType": post_type, "link": link}),
        )
        .unwrap_err();
        assert_eq!(
            rule(e),
            (
                "post.options.facebook.link".into(),
                "invalid_value",
                Some(Platform::Facebook),
                Some("feed_only")
            ),
            "{post_type}"
        );
    }
}

#[test]
fn tiktok_posts_name_their_privacy_level() {
    let body = |options: Value| with_options(video("tiktok"), options);
    let e = check(post(video("tiktok"))).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.rule),
        (
            "post.options.tiktok.privacyLevel",
            "required",
            Some(Platform::Tiktok),
            Some("privacy_level_required")
        )
    );
    assert_eq!(
        check(body(json!({"tiktok": {"allowComments": true}})))
            .unwrap_err()
            .rule,
        Some("privacy_level_required")
    );
    assert!(check(body(json!({"tiktok": {"privacyLevel": "SELF_ONLY"}}))).is_ok());
    // Options for TikTok on a post that does not target it are not required.
    assert!(check(post(video("youtube"))).is_ok());
}

#[test]
fn the_top_level_trial_reel_flag_means_trial_reel() {
    let mut body = post(video("instagram"));
    body["trial_reel"] = json!(true);
    let v = check(body).unwrap();
    assert!(v.trial_reel);
    assert_eq!(v.options.instagram.unwrap().trial_reel, Some(true));
    let mut body = post(images(1, "instagram"));
    body["trial_reel"] = json!(true);
    let e = check(body).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.rule, e.platform),
        ("trial_reel", Some("reel_only"), Some(Platform::Instagram))
    );
    // Not targeting Instagram: the flag is kept as before, no Instagram options appear.
    let mut body = post(json!({"text": "hi", "platform": "x"}));
    body["trial_reel"] = json!(true);
    let v = check(body).unwrap();
    assert!(v.trial_reel && v.options.is_empty());
    // The option wins over the flag.
    let mut body = with_options(
        images(1, "instagram"),
        json!({"instagram": {"trialReel": false}}),
    );
    body["trial_reel"] = json!(true);
    assert!(check(body).is_ok());
}

#[test]
fn snapchat_posts_one_file_and_a_spotlight_is_a_video() {
    let rule = |body: Value| {
        let e = check(body).unwrap_err();
        (e.field, e.reason, e.platform, e.rule)
    };
    // One image or one video: a story of either is fine, its text not sent (any length).
    let long = "x".repeat(500);
    let mut story = video("snapchat");
    story["text"] = json!(long);
    assert!(check(post(story.clone())).is_ok());
    assert!(check(post(images(1, "snapchat"))).is_ok());
    assert_eq!(
        rule(post(images(2, "snapchat"))).1,
        "too_many",
        "two images"
    );
    // Content that holds an image and a video (not what a request makes today).
    let both = PostContent {
        text: None,
        media_type: MediaType::Video,
        image_urls: vec!["https://img.example/a.jpg".into()],
        video_url: Some("https://v.example/v.mp4".into()),
    };
    let e = super::rules::check_snapchat(&both, "post.content.text", None).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.reason, e.platform, e.rule),
        (
            "post.content.mediaUrls",
            "too_many",
            Some(Platform::Snapchat),
            Some("one_media_item")
        )
    );
    let spotlight = json!({"snapchat": {"postType": "spotlight"}});
    assert_eq!(
        rule(with_options(images(1, "snapchat"), spotlight.clone())),
        (
            "post.content.videoUrl".into(),
            "required",
            Some(Platform::Snapchat),
            Some("spotlight_needs_video")
        )
    );
    // A Spotlight's description is its option, else the text: at most 160 either way.
    let e = rule(with_options(story.clone(), spotlight.clone()));
    assert_eq!((e.0.as_str(), e.1), ("post.content.text", "too_long"));
    assert!(
        check(with_options(
            story,
            json!({"snapchat": {"postType": "spotlight", "description": "Short"}})
        ))
        .is_ok()
    );
    let mut fits = video("snapchat");
    fits["text"] = json!("é".repeat(160));
    assert!(check(with_options(fits, spotlight)).is_ok());
}
