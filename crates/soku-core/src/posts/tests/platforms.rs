//! Each network's own submission rules beyond the general table: Bluesky and Threads text,
//! Instagram, Facebook, TikTok and Snapchat.

use super::*;

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

/// TikTok refuses private branded content, and counts its texts in UTF-16 units: a video's
/// caption 2,200, a photo post's description 4,000 and title 90. The limits pass.
#[test]
fn tiktok_branded_content_is_not_private_and_texts_count_utf16() {
    let tiktok = |content: Value, options: Value| {
        check(with_options(
            content,
            json!({ "tiktok": merge(json!({"privacyLevel": "PUBLIC_TO_EVERYONE"}), options) }),
        ))
    };
    fn merge(mut a: Value, b: Value) -> Value {
        for (k, v) in b.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    }
    let refused = |content: Value, options: Value| {
        let e = tiktok(content, options).unwrap_err();
        (e.field, e.reason, e.platform, e.rule, e.limit, e.actual)
    };

    // Branded content, private: refused, naming the privacy level.
    for content in [video("tiktok"), images(2, "tiktok")] {
        assert_eq!(
            refused(
                content.clone(),
                json!({"privacyLevel": "SELF_ONLY", "brandedContent": true})
            ),
            (
                "post.options.tiktok.privacyLevel".into(),
                "invalid_value",
                Some(Platform::Tiktok),
                Some("branded_content_private"),
                None,
                None
            )
        );
        for fine in [
            json!({"privacyLevel": "MUTUAL_FOLLOW_FRIENDS", "brandedContent": true}),
            json!({"privacyLevel": "SELF_ONLY", "brandedContent": false, "yourBrand": true}),
            json!({"privacyLevel": "SELF_ONLY"}),
        ] {
            assert!(tiktok(content.clone(), fine.clone()).is_ok(), "{fine}");
        }
    }

    // A video's caption: 1,100 emoji are 1,100 graphemes and 2,200 UTF-16 units.
    let with_text = |mut content: Value, text: String| {
        content["text"] = json!(text);
        content
    };
    let emoji = |n: usize| "😀".repeat(n);
    assert!(tiktok(with_text(video("tiktok"), emoji(1100)), json!({})).is_ok());
    assert_eq!(
        refused(with_text(video("tiktok"), emoji(1100) + "a"), json!({})),
        (
            "post.content.text".into(),
            "too_long",
            Some(Platform::Tiktok),
            Some("utf16_length"),
            Some(2200),
            Some(2201)
        )
    );
    // A target's own text is named where it was.
    let own = json!({"mediaType": "video", "videoUrl": "https://v.example/v.mp4", "text": "hi",
                     "platform": [{"platform": "tiktok", "text": emoji(1101)}]});
    assert_eq!(refused(own, json!({})).0, "post.content.platform[0].text");
    // A video post sends no title: a long one is not refused.
    assert!(tiktok(video("tiktok"), json!({"title": "t".repeat(200)})).is_ok());

    // A photo post's description (the text) and title.
    assert!(tiktok(with_text(images(1, "tiktok"), emoji(2000)), json!({})).is_ok());
    assert_eq!(
        refused(with_text(images(1, "tiktok"), emoji(2000) + "a"), json!({})).5,
        Some(4001)
    );
    for fine in ["t".repeat(90), emoji(45)] {
        assert!(tiktok(images(1, "tiktok"), json!({ "title": fine })).is_ok());
    }
    for (title, n) in [("t".repeat(91), 91), (emoji(45) + "a", 91)] {
        assert_eq!(
            refused(images(1, "tiktok"), json!({ "title": title })),
            (
                "post.options.tiktok.title".into(),
                "too_long",
                Some(Platform::Tiktok),
                Some("utf16_length"),
                Some(90),
                Some(n)
            )
        );
    }
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
    // An empty description is none: the text is what is sent, and checked.
    let e = rule(with_options(
        story.clone(),
        json!({"snapchat": {"postType": "spotlight", "description": ""}}),
    ));
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
