//! Submission checks (spec 6.1): the structure, the general per-platform rules, scheduling and
//! status; `options` holds `post.options` and per-target text (spec 8.2), `platforms` each
//! network's own rules.

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
    // A misspelt member is refused, not ignored: `accountID` would publish to the default
    // account.
    assert_eq!(
        err(post(
            json!({"text": "x", "platform": ["threads", {"platform": "x", "accountID": "x_second"}]})
        )),
        (
            "post.content.platform[1].accountID".into(),
            "unknown_field",
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
fn a_misspelt_or_misplaced_member_is_refused_not_ignored() {
    // Each of these, ignored, would publish at once a post meant for 2030.
    let content = json!({"text": "x", "platform": "x"});
    for (body, field) in [
        (
            json!({"post": {"content": content}, "scheduled_time": "2030-01-01T12:00:00Z"}),
            "scheduled_time",
        ),
        (
            json!({"post": {"content": content}, "ScheduledTime": "2030-01-01T12:00:00Z"}),
            "ScheduledTime",
        ),
        (
            json!({"post": {"content": content, "scheduledTime": "2030-01-01T12:00:00Z"}}),
            "post.scheduledTime",
        ),
        (
            post(json!({"text": "x", "platform": "x", "scheduledTime": "2030-01-01T12:00:00Z"})),
            "post.content.scheduledTime",
        ),
        (
            post(json!({"text": "x", "platform": "x", "videoURL": "https://a.example/v.mp4"})),
            "post.content.videoURL",
        ),
    ] {
        assert_eq!(err(body), (field.into(), "unknown_field", None));
    }
    // Every documented member is accepted.
    let all = json!({
        "post": {
            "content": {
                "text": "x", "mediaType": "image", "mediaUrls": ["https://a.example/1.jpg"],
                "imageUrls": ["https://a.example/2.jpg"], "platform": ["x"]
            },
            "options": {}
        },
        "scheduledTime": "2026-06-01T13:00:00Z",
        "enableRepurposing": false,
        "trial_reel": false
    });
    check(all).unwrap();
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
    // The same video named twice is one video; a second video is refused, not left out.
    let v = check(post(
        json!({"mediaType": "video", "videoUrl": "https://a.example/v.mp4",
        "mediaUrls": ["https://a.example/v.mp4"], "platform": "x"}),
    ))
    .unwrap();
    assert_eq!(
        v.content.video_url.as_deref(),
        Some("https://a.example/v.mp4")
    );
    for content in [
        json!({"mediaType": "video", "mediaUrls": ["https://a.example/v.mp4", "https://a.example/w.mp4"], "platform": "x"}),
        json!({"mediaType": "video", "videoUrl": "https://a.example/v.mp4", "mediaUrls": ["https://a.example/v.mp4", "https://a.example/w.mp4"], "platform": "x"}),
    ] {
        assert_eq!(
            err(post(content)),
            ("post.content.mediaUrls[1]".into(), "too_many", None)
        );
    }
    assert_eq!(
        err(post(
            json!({"mediaType": "video", "videoUrl": "https://a.example/v.mp4",
            "mediaUrls": ["https://a.example/w.mp4"], "platform": "x"})
        )),
        ("post.content.mediaUrls[0]".into(), "too_many", None)
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
        err(base("2031-06-30T23:59:60Z")),
        ("scheduledTime".into(), "invalid_value", None),
        "a leap second is refused"
    );
    assert_eq!(err(base("2031-07-01T01:59:60.5+02:00")).1, "invalid_value");
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

// Helpers of the option and per-platform tests.

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

mod options;
mod platforms;
