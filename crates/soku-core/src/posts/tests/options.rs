//! `post.options` (spec 8.2) and per-target text.

use super::*;

#[test]
fn every_option_is_read_into_its_platform() {
    let v = check(with_options(
        json!({"mediaType": "video", "videoUrl": "https://v.example/v.mp4", "text": "t",
               "platform": ["youtube", "tiktok", "instagram", "facebook", "snapchat", "linkedin"]}),
        json!({
            "youtube": {"title": "A title", "description": "d", "privacyStatus": "unlisted",
                        "madeForKids": true, "tags": ["a", "b"]},
            "tiktok": {"privacyLevel": "MUTUAL_FOLLOW_FRIENDS", "allowComments": false, "allowDuet": true,
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
    assert_eq!(tt.privacy_level.as_deref(), Some("MUTUAL_FOLLOW_FRIENDS"));
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

/// What YouTube (or the connector, on its behalf) would refuse in `post.options.youtube` is
/// refused at submission, naming the option: a blank title, a title over 100 code points once
/// trimmed, a description over 5,000 bytes as sent (`<` and `>` go as 3-byte `‹` and `›`), tags
/// over 500 characters together. The limits themselves pass.
#[test]
fn youtube_options_are_measured_as_youtube_takes_them() {
    let yt = |o: Value| check(with_options(video("youtube"), json!({ "youtube": o })));
    let refused = |o: Value| {
        let e = yt(o.clone()).unwrap_err();
        (e.field, e.reason, e.limit, e.actual)
    };
    let field = |name: &str| format!("post.options.youtube.{name}");

    for blank in ["", "   ", "\n\t "] {
        assert_eq!(
            refused(json!({ "title": blank })),
            (field("title"), "invalid_value", None, None),
            "{blank:?}"
        );
    }
    // 100 graphemes, but the last is "e" and a combining acute accent: 101 code points.
    let combining = format!("{}e\u{301}", "t".repeat(99));
    assert_eq!(
        refused(json!({ "title": combining })),
        (field("title"), "too_long", Some(100), Some(101))
    );
    for fine in [
        "t".repeat(100),
        format!("  {}  ", "t".repeat(100)),
        format!("{}é", "t".repeat(99)),
        "I <3 tips > tricks".to_owned(),
    ] {
        assert!(yt(json!({ "title": fine })).is_ok(), "{fine:?}");
    }

    assert!(yt(json!({ "description": "d".repeat(5000) })).is_ok());
    assert!(yt(json!({ "description": "é".repeat(2500) })).is_ok());
    assert!(yt(json!({ "description": format!("{}<", "d".repeat(4997)) })).is_ok());
    for (description, bytes) in [
        ("d".repeat(5001), 5001),
        (format!("{}x", "é".repeat(2500)), 5001),
        // 4,999 bytes as written, 5,001 as sent.
        (format!("{}>", "d".repeat(4998)), 5001),
    ] {
        assert_eq!(
            refused(json!({ "description": description })),
            (field("description"), "too_long", Some(5000), Some(bytes))
        );
    }

    let tags = |t: Vec<String>| json!({ "tags": t });
    // 250 + 249 + a comma; a blank tag and the spaces around a tag do not count.
    assert!(
        yt(tags(vec![
            "a".repeat(250),
            format!(" {} ", "b".repeat(249)),
            "  ".into()
        ]))
        .is_ok()
    );
    assert_eq!(
        refused(tags(vec!["a".repeat(250), "b".repeat(250)])),
        (field("tags"), "too_long", Some(500), Some(501))
    );
    // A tag with a space counts its two quotes: 495, a comma and "a b" quoted (5) are 501.
    assert_eq!(
        refused(tags(vec!["a".repeat(495), "a b".into()])),
        (field("tags"), "too_long", Some(500), Some(501))
    );
    assert!(yt(tags(vec!["a".repeat(494), "a b".into()])).is_ok());
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
