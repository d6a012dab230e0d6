//! The media rules' tests.

use super::check::{decimal, seconds, size, type_name};
use super::*;
use crate::media::{IMAGE_TYPES, VIDEO_TYPES};

fn image(mime: &'static str, size: u64, w: u32, h: u32) -> MediaFacts {
    MediaFacts {
        kind: MediaKind::Image,
        mime,
        size,
        width: Some(w),
        height: Some(h),
        duration_ms: None,
    }
}

fn video(mime: &'static str, size: u64, w: u32, h: u32, ms: u64) -> MediaFacts {
    MediaFacts {
        kind: MediaKind::Video,
        mime,
        size,
        width: Some(w),
        height: Some(h),
        duration_ms: Some(ms),
    }
}

fn one(platform: Platform, field: &str, facts: &MediaFacts) -> Result<(), MediaViolation> {
    check(platform, &[MediaItem { field, facts }])
}

const FIELD: &str = "post.content.mediaUrls[0]";

/// Refused for `rule`, and the sentence names the platform, the field and every `parts`.
fn refused(platform: Platform, facts: &MediaFacts, rule: &str, parts: &[&str]) {
    let v = one(platform, FIELD, facts)
        .expect_err(&format!("{platform} should refuse {facts:?} for {rule}"));
    assert_eq!(v.rule, rule, "{platform}: {v:?}");
    assert_eq!(v.platform, platform);
    assert_eq!(v.field, FIELD);
    assert!(v.message.contains(platform.display_name()), "{}", v.message);
    assert!(v.message.contains(FIELD), "{}", v.message);
    for part in parts {
        assert!(v.message.contains(part), "{:?} lacks {part:?}", v.message);
    }
}

fn first_type(types: Types, all: &[&'static str]) -> Option<&'static str> {
    all.iter().copied().find(|t| types.accepts(t))
}

/// A file every rule of its kind takes: 1080×1080, 10 s, a small size above any minimum.
fn good(platform: Platform, kind: MediaKind) -> Option<MediaFacts> {
    let r = rules(platform).kind(kind);
    let (all, size): (&[&'static str], u64) = match kind {
        MediaKind::Image => (IMAGE_TYPES, 500_000),
        MediaKind::Video => (VIDEO_TYPES, 5_000_000),
    };
    let mime = first_type(r.types, all)?;
    Some(MediaFacts {
        kind,
        mime,
        size,
        width: Some(1080),
        height: Some(1080),
        duration_ms: (kind == MediaKind::Video).then_some(10_000),
    })
}

#[test]
fn rules_exist_for_every_platform_and_cite_their_source() {
    for p in Platform::ALL {
        let r = rules(p);
        assert_eq!(r.platform, p);
        assert!(!r.sources.is_empty(), "{p}");
        for s in r.sources {
            assert!(s.starts_with("https://"), "{p}: {s}");
        }
        for kind in [MediaKind::Image, MediaKind::Video] {
            let k = r.kind(kind);
            if let (Some(min), Some(max)) = (k.min_duration_ms, k.max_duration_ms) {
                assert!(min < max, "{p}");
            }
            if let (Some(min), Some(max)) = (k.min_aspect, k.max_aspect) {
                assert!(min.width * max.height < max.width * min.height, "{p}");
            }
        }
    }
}

/// The post-type tables (`rules_for`) are as consistent as the defaults, and each is picked by
/// its `postType`.
#[test]
fn each_post_type_has_its_rules() {
    use crate::posts::{FacebookOptions, InstagramOptions};
    for r in [
        &INSTAGRAM_STORY,
        &FACEBOOK_REEL,
        &FACEBOOK_STORY,
        &SNAPCHAT_SPOTLIGHT,
    ] {
        assert!(!r.sources.is_empty() && r.sources.iter().all(|s| s.starts_with("https://")));
        let v = &r.video;
        assert!(v.min_duration_ms.unwrap() < v.max_duration_ms.unwrap());
    }
    let content = |video: bool| PostContent {
        text: None,
        media_type: if video {
            crate::posts::MediaType::Video
        } else {
            crate::posts::MediaType::Image
        },
        image_urls: if video { vec![] } else { vec!["i".into()] },
        video_url: video.then(|| "v".into()),
    };
    let ig = |t: InstagramPostType| PostOptions {
        instagram: Some(InstagramOptions {
            post_type: Some(t),
            ..Default::default()
        }),
        ..Default::default()
    };
    let fb = |t: FacebookPostType| PostOptions {
        facebook: Some(FacebookOptions {
            post_type: Some(t),
            ..Default::default()
        }),
        ..Default::default()
    };
    let none = PostOptions::default();
    let same = |a: &MediaRules, b: &MediaRules| std::ptr::eq(a, b);
    assert!(same(
        rules_for(Platform::Instagram, &none, &content(true)),
        &INSTAGRAM
    ));
    assert!(same(
        rules_for(
            Platform::Instagram,
            &ig(InstagramPostType::Story),
            &content(true)
        ),
        &INSTAGRAM_STORY
    ));
    assert!(same(
        rules_for(Platform::Facebook, &none, &content(true)),
        &FACEBOOK
    ));
    assert!(same(
        rules_for(
            Platform::Facebook,
            &fb(FacebookPostType::Reel),
            &content(true)
        ),
        &FACEBOOK_REEL
    ));
    assert!(same(
        rules_for(
            Platform::Facebook,
            &fb(FacebookPostType::Story),
            &content(false)
        ),
        &FACEBOOK_STORY
    ));
    assert!(same(
        rules_for(Platform::X, &fb(FacebookPostType::Story), &content(false)),
        &X
    ));

    // What each refuses that the default would take.
    let long = video(MP4, 50 * MB, 1080, 1920, 75_000);
    fn item(facts: &MediaFacts) -> [MediaItem<'_>; 1] {
        [MediaItem {
            field: FIELD,
            facts,
        }]
    }
    let story = ig(InstagramPostType::Story);
    assert_eq!(one(Platform::Instagram, FIELD, &long), Ok(()));
    let v = check_post(Platform::Instagram, &story, &content(true), &item(&long)).unwrap_err();
    assert_eq!(v.rule, "max_duration", "{v:?}");
    assert!(
        v.message.contains("Instagram") && v.message.contains("1 min"),
        "{}",
        v.message
    );
    let big = video(MP4, 150 * MB, 1080, 1920, 20_000);
    let v = check_post(Platform::Instagram, &story, &content(true), &item(&big)).unwrap_err();
    assert_eq!(v.rule, "max_size");

    let reel = fb(FacebookPostType::Reel);
    let fine = video(MP4, 20 * MB, 1080, 1920, 30_000);
    assert_eq!(
        check_post(Platform::Facebook, &reel, &content(true), &item(&fine)),
        Ok(())
    );
    for (facts, rule) in [
        (video(MP4, 20 * MB, 1080, 1920, 2_000), "min_duration"),
        (video(MP4, 20 * MB, 1080, 1920, 95_000), "max_duration"),
        (video(MP4, 20 * MB, 480, 854, 30_000), "min_width"),
        (image(JPEG, 100_000, 1080, 1920), "type"),
    ] {
        let v = check_post(Platform::Facebook, &reel, &content(true), &item(&facts)).unwrap_err();
        assert_eq!(v.rule, rule, "{facts:?}: {v:?}");
        assert_eq!(v.platform, Platform::Facebook);
    }
    let story = fb(FacebookPostType::Story);
    let v = check_post(Platform::Facebook, &story, &content(true), &item(&long)).unwrap_err();
    assert_eq!(v.rule, "max_duration");
    assert_eq!(
        one(Platform::Facebook, FIELD, &long),
        Ok(()),
        "a feed video has no limit"
    );
    let photo = image(PNG, 2 * MB, 1080, 1920);
    assert_eq!(
        check_post(Platform::Facebook, &story, &content(false), &item(&photo)),
        Ok(())
    );
}

#[test]
fn a_file_within_every_rule_is_accepted_everywhere() {
    for p in Platform::ALL {
        for kind in [MediaKind::Image, MediaKind::Video] {
            if let Some(facts) = good(p, kind) {
                assert_eq!(one(p, FIELD, &facts), Ok(()), "{p} {kind:?}");
            }
        }
    }
    // And a post with nothing in it.
    for p in Platform::ALL {
        assert_eq!(check(p, &[]), Ok(()));
    }
}

/// For every platform and every rule its table has, a file that breaks only that rule is
/// refused for it, with the limit in the sentence.
#[test]
fn every_rule_in_every_table_refuses_what_breaks_it() {
    for p in Platform::ALL {
        for kind in [MediaKind::Image, MediaKind::Video] {
            let r = rules(p).kind(kind);
            let all = match kind {
                MediaKind::Image => IMAGE_TYPES,
                MediaKind::Video => VIDEO_TYPES,
            };
            let Some(good) = good(p, kind) else {
                // Takes no media of this kind: any file of it is refused for its type.
                let mut f = MediaFacts {
                    kind,
                    mime: all[0],
                    size: 1,
                    width: None,
                    height: None,
                    duration_ms: None,
                };
                refused(p, &f, "type", &["takes no"]);
                f.size = 0;
                refused(p, &f, "type", &[all[0]]);
                continue;
            };
            if let Some(bad) = all.iter().copied().find(|t| !r.types.accepts(t)) {
                let f = MediaFacts {
                    mime: bad,
                    ..good.clone()
                };
                refused(p, &f, "type", &[bad, type_name(good.mime)]);
            }
            if let Some(max) = r.max_bytes_for(good.mime) {
                let f = MediaFacts {
                    size: max + 1,
                    ..good.clone()
                };
                refused(p, &f, "max_size", &[&size(max), &(max + 1).to_string()]);
                let f = MediaFacts {
                    size: max,
                    ..good.clone()
                };
                assert_eq!(one(p, FIELD, &f), Ok(()), "{p}: exactly the limit");
            }
            if let Some(min) = r.min_bytes {
                let f = MediaFacts {
                    size: min - 1,
                    ..good.clone()
                };
                refused(p, &f, "min_size", &[&size(min)]);
            }
            if let Some(min) = r.min_duration_ms {
                let f = MediaFacts {
                    duration_ms: Some(min - 1),
                    ..good.clone()
                };
                refused(p, &f, "min_duration", &[]);
                let f = MediaFacts {
                    duration_ms: Some(min),
                    ..good.clone()
                };
                assert_eq!(one(p, FIELD, &f), Ok(()), "{p}: exactly the minimum");
            }
            if let Some(max) = r.max_duration_ms {
                let f = MediaFacts {
                    duration_ms: Some(max + 1),
                    ..good.clone()
                };
                refused(p, &f, "max_duration", &[&seconds(max)]);
                let f = MediaFacts {
                    duration_ms: Some(max),
                    ..good.clone()
                };
                assert_eq!(one(p, FIELD, &f), Ok(()), "{p}: exactly the maximum");
            }
            let dims = |w: u32, h: u32| MediaFacts {
                width: Some(w),
                height: Some(h),
                ..good.clone()
            };
            if let Some(max) = r.max_aspect {
                // Just wider than the widest ratio.
                let h = 100u32;
                let w = (max.width * 100).div_ceil(max.height) as u32 + 1;
                refused(p, &dims(w, h), "aspect_ratio", &[&max.to_string()]);
            }
            if let Some(min) = r.min_aspect {
                // Just narrower than the narrowest ratio.
                let w = 100u32;
                let h = (min.height * 100 / min.width) as u32 + 1;
                refused(p, &dims(w, h), "aspect_ratio", &[&min.to_string()]);
            }
            if let Some(max) = r.max_width {
                let w = max + 1;
                let h = if r.max_aspect.is_some() { w } else { 1080 };
                refused(p, &dims(w, h), "max_width", &[&format!("{max} px")]);
            }
            if let Some(min) = r.min_width {
                let w = min - 1;
                refused(
                    p,
                    &dims(w, w.max(r.min_height.unwrap_or(0))),
                    "min_width",
                    &[&format!("{min} px")],
                );
            }
            if let Some(max) = r.max_height {
                refused(
                    p,
                    &dims(1080, max + 1),
                    "max_height",
                    &[&format!("{max} px")],
                );
            }
            if let Some(min) = r.min_height {
                refused(
                    p,
                    &dims(1080, min - 1),
                    "min_height",
                    &[&format!("{min} px")],
                );
            }
            if let Some(max) = r.max_pixels {
                let side = (max as f64).sqrt() as u32 + 1;
                refused(p, &dims(side, side), "max_pixels", &[&max.to_string()]);
            }
        }
    }
}

#[test]
fn missing_facts_never_refuse() {
    for p in Platform::ALL {
        for kind in [MediaKind::Image, MediaKind::Video] {
            let Some(good) = good(p, kind) else { continue };
            let bare = MediaFacts {
                width: None,
                height: None,
                duration_ms: None,
                ..good.clone()
            };
            assert_eq!(one(p, FIELD, &bare), Ok(()), "{p} {kind:?}");
            // Only one side known: no aspect ratio, no pixel count can be judged.
            let r = rules(p).kind(kind);
            let tall = MediaFacts {
                width: None,
                height: Some(r.max_height.unwrap_or(100_000)),
                duration_ms: None,
                ..good.clone()
            };
            assert_eq!(one(p, FIELD, &tall), Ok(()), "{p} {kind:?} height only");
            let wide = MediaFacts {
                width: Some(r.max_width.unwrap_or(100_000)),
                height: None,
                ..good.clone()
            };
            assert_eq!(one(p, FIELD, &wide), Ok(()), "{p} {kind:?} width only");
        }
    }
    // A video whose duration could not be read passes X's 0.5 s minimum and 140 s maximum.
    let mut v = video(MP4, 1_000_000, 1280, 720, 0);
    v.duration_ms = None;
    assert_eq!(one(Platform::X, FIELD, &v), Ok(()));
}

#[test]
fn posts_that_mix_images_and_videos() {
    for p in Platform::ALL {
        let (Some(img), Some(vid)) = (good(p, MediaKind::Image), good(p, MediaKind::Video)) else {
            // YouTube takes no images: the mix is refused all the same.
            let img = image(JPEG, 1000, 10, 10);
            let vid = good(p, MediaKind::Video).unwrap();
            let items = [
                MediaItem {
                    field: "post.content.mediaUrls[0]",
                    facts: &vid,
                },
                MediaItem {
                    field: "post.content.mediaUrls[1]",
                    facts: &img,
                },
            ];
            assert!(check(p, &items).is_err(), "{p}");
            continue;
        };
        let items = [
            MediaItem {
                field: "post.content.mediaUrls[0]",
                facts: &img,
            },
            MediaItem {
                field: "post.content.mediaUrls[1]",
                facts: &vid,
            },
        ];
        let result = check(p, &items);
        if rules(p).mixed {
            assert_eq!(result, Ok(()), "{p}");
        } else {
            let v = result.expect_err(&format!("{p}"));
            assert_eq!(v.rule, "mixed_media");
            assert_eq!(v.field, "post.content.mediaUrls[1]");
            assert!(v.message.contains(p.display_name()), "{}", v.message);
            assert!(v.message.contains("post.content.mediaUrls[1]"));
        }
    }
}

#[test]
fn counts() {
    let fields: Vec<String> = (0..30)
        .map(|i| format!("post.content.mediaUrls[{i}]"))
        .collect();
    for p in Platform::ALL {
        let Some(vid) = good(p, MediaKind::Video) else {
            continue;
        };
        if let Some(max) = rules(p).max_videos {
            let items: Vec<_> = (0..=max)
                .map(|i| MediaItem {
                    field: &fields[i],
                    facts: &vid,
                })
                .collect();
            let v = check(p, &items).expect_err(&format!("{p}"));
            assert_eq!(v.rule, "count");
            assert_eq!(v.field, fields[max]);
            assert!(
                v.message.contains(&format!("at most {max} video")),
                "{}",
                v.message
            );
            assert!(v.message.contains(p.display_name()));
            assert_eq!(check(p, &items[..max]), Ok(()), "{p}");
        }
        // Carousels: images and videos together count against the post's item limit.
        if rules(p).mixed
            && let (Some(max), Some(img)) = (p.rules().max_images, good(p, MediaKind::Image))
        {
            let mut items = vec![MediaItem {
                field: &fields[0],
                facts: &vid,
            }];
            items.extend((1..=max).map(|i| MediaItem {
                field: &fields[i],
                facts: &img,
            }));
            let v = check(p, &items).expect_err(&format!("{p}"));
            assert_eq!(v.rule, "count");
            assert_eq!(v.field, fields[max]);
            assert!(
                v.message.contains(&format!("at most {max}")),
                "{}",
                v.message
            );
            assert_eq!(check(p, &items[..max]), Ok(()), "{p}");
        }
    }
    // Images alone are counted by `check_platform_rules`, not here.
    let img = image(JPEG, 1000, 100, 100);
    let items: Vec<_> = (0..6)
        .map(|i| MediaItem {
            field: &fields[i],
            facts: &img,
        })
        .collect();
    assert_eq!(check(Platform::X, &items), Ok(()));
}

// The documented figures themselves, one platform at a time.

#[test]
fn x() {
    let p = Platform::X;
    assert_eq!(one(p, FIELD, &image(JPEG, 5 * MB, 1200, 675)), Ok(()));
    assert_eq!(one(p, FIELD, &image(GIF, 15 * MB, 480, 480)), Ok(()));
    refused(
        p,
        &image(PNG, 5 * MB + 1, 1200, 675),
        "max_size",
        &["5242880 bytes (5 MB)"],
    );
    refused(
        p,
        &image(GIF, 15 * MB + 1, 480, 480),
        "max_size",
        &["GIF images", "15 MB"],
    );
    assert_eq!(
        one(p, FIELD, &video(MP4, 512 * MB, 1280, 720, 140_000)),
        Ok(())
    );
    refused(
        p,
        &video(MP4, 10 * MB, 1280, 720, 140_001),
        "max_duration",
        &["140 s"],
    );
    refused(
        p,
        &video(MP4, 10 * MB, 1280, 720, 499),
        "min_duration",
        &["0.5 s"],
    );
    refused(
        p,
        &video(MP4, 512 * MB + 1, 1280, 720, 30_000),
        "max_size",
        &["512 MB"],
    );
    refused(
        p,
        &video("video/x-matroska", MB, 1280, 720, 30_000),
        "type",
        &["Matroska"],
    );
    refused(
        p,
        &video(MP4, MB, 400, 100, 30_000),
        "aspect_ratio",
        &["1:3", "3:1", "4:1"],
    );
    refused(p, &video(MP4, MB, 31, 40, 30_000), "min_width", &["32 px"]);
    // 1080p is taken (the 1280x1024 "maximum" is not a hard limit; see the table).
    assert_eq!(one(p, FIELD, &video(MP4, MB, 1920, 1080, 30_000)), Ok(()));
}

#[test]
fn threads() {
    let p = Platform::Threads;
    assert_eq!(one(p, FIELD, &image(PNG, 8 * MB, 1440, 1800)), Ok(()));
    refused(
        p,
        &image(WEBP, MB, 1080, 1080),
        "type",
        &["WebP", "JPEG, PNG"],
    );
    refused(
        p,
        &image(JPEG, 8 * MB + 1, 1080, 1080),
        "max_size",
        &["8 MB"],
    );
    refused(p, &image(JPEG, MB, 1001, 100), "aspect_ratio", &["10:1"]);
    // Tall images: no documented limit.
    assert_eq!(one(p, FIELD, &image(JPEG, MB, 100, 5000)), Ok(()));
    assert_eq!(
        one(p, FIELD, &video(MOV, 100 * MB, 1080, 1920, 300_000)),
        Ok(())
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 300_001),
        "max_duration",
        &["5 min"],
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 0),
        "min_duration",
        &["longer than 0 seconds"],
    );
    refused(p, &video(WEBM, MB, 1080, 1920, 10_000), "type", &["WebM"]);
    refused(
        p,
        &video(MP4, MB, 2160, 3840, 10_000),
        "max_width",
        &["1920 px"],
    );
}

#[test]
fn instagram() {
    let p = Platform::Instagram;
    assert_eq!(one(p, FIELD, &image(JPEG, 8 * MB, 1080, 1350)), Ok(()));
    assert_eq!(one(p, FIELD, &image(JPEG, MB, 1080, 566)), Ok(()));
    refused(p, &image(PNG, MB, 1080, 1080), "type", &["PNG", "JPEG"]);
    refused(
        p,
        &image(JPEG, 8 * MB + 1, 1080, 1080),
        "max_size",
        &["8 MB"],
    );
    refused(
        p,
        &image(JPEG, MB, 1080, 1920),
        "aspect_ratio",
        &["4:5", "1.91:1", "0.56:1"],
    );
    refused(p, &image(JPEG, MB, 1920, 1000), "aspect_ratio", &["1.91:1"]);
    assert_eq!(
        one(p, FIELD, &video(MP4, 300 * MB, 1080, 1920, 15 * 60_000)),
        Ok(())
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 2_999),
        "min_duration",
        &["3 s"],
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 15 * 60_000 + 1),
        "max_duration",
        &["15 min"],
    );
    refused(
        p,
        &video(MOV, 300 * MB + 1, 1080, 1920, 10_000),
        "max_size",
        &["300 MB"],
    );
    refused(
        p,
        &video(MP4, MB, 3840, 2160, 10_000),
        "max_width",
        &["1920 px"],
    );
}

#[test]
fn facebook() {
    let p = Platform::Facebook;
    assert_eq!(one(p, FIELD, &image(GIF, 10 * MB, 800, 600)), Ok(()));
    refused(
        p,
        &image(WEBP, MB, 800, 600),
        "type",
        &["WebP", "JPEG, PNG, GIF"],
    );
    refused(
        p,
        &image(JPEG, 10 * MB + 1, 800, 600),
        "max_size",
        &["10 MB"],
    );
    // Page videos: any type, size and shape; up to 240 minutes (Facebook's Help Center).
    assert_eq!(
        one(p, FIELD, &video(WEBM, 500 * MB, 3840, 2160, 3 * 3_600_000)),
        Ok(())
    );
    assert_eq!(
        one(p, FIELD, &video(MP4, 500 * MB, 1920, 1080, 240 * 60_000)),
        Ok(()),
        "exactly 240 minutes"
    );
    refused(
        p,
        &video(MP4, 500 * MB, 1920, 1080, 240 * 60_000 + 1),
        "max_duration",
        &["240 min"],
    );
}

/// Facebook reels and video stories are 9:16 (Meta's "Aspect Ratio | 9 x 16"), within 1% for
/// encoders' rounding, and the shape is judged before the size.
#[test]
fn facebook_reels_and_stories_are_9_16() {
    use crate::posts::FacebookOptions;
    let options = |t: FacebookPostType| PostOptions {
        facebook: Some(FacebookOptions {
            post_type: Some(t),
            ..Default::default()
        }),
        ..Default::default()
    };
    let content = PostContent {
        text: None,
        media_type: crate::posts::MediaType::Video,
        image_urls: vec![],
        video_url: Some("v".into()),
    };
    let check = |t: FacebookPostType, w: u32, h: u32| {
        let facts = video(MP4, 20 * MB, w, h, 30_000);
        check_post(
            Platform::Facebook,
            &options(t),
            &content,
            &[MediaItem {
                field: FIELD,
                facts: &facts,
            }],
        )
    };
    for t in [FacebookPostType::Reel, FacebookPostType::Story] {
        // 9:16 exactly, a 16-pixel rounding of it, and exactly 1% off (909/1600 against 9/16).
        for (w, h) in [
            (1080, 1920),
            (540, 960),
            (2160, 3840),
            (1088, 1920),
            (909, 1600),
        ] {
            assert_eq!(check(t, w, h), Ok(()), "{t:?} {w}x{h}");
        }
        // Just past 1%, 4:5, square, and landscape (16:9, too short for a reel as well: the
        // shape is what is named).
        for (w, h) in [
            (910, 1600),
            (1080, 1350),
            (1080, 1080),
            (1920, 1080),
            (1280, 720),
        ] {
            let v = check(t, w, h).unwrap_err();
            assert_eq!(v.rule, "aspect_ratio", "{t:?} {w}x{h}: {v:?}");
            assert_eq!((v.platform, v.field.as_str()), (Platform::Facebook, FIELD));
            assert!(
                v.message.contains(&format!("{w}×{h}"))
                    && v.message.contains("9:16")
                    && v.message.contains("Facebook"),
                "{}",
                v.message
            );
        }
        // 9:16 but under 540x960.
        assert_eq!(check(t, 360, 640).unwrap_err().rule, "min_width", "{t:?}");
    }
    // A feed video takes any shape.
    assert_eq!(check(FacebookPostType::Feed, 1920, 1080), Ok(()));
    // Unknown dimensions refuse nothing.
    let mut facts = video(MP4, 20 * MB, 1920, 1080, 30_000);
    facts.width = None;
    let items = [MediaItem {
        field: FIELD,
        facts: &facts,
    }];
    assert_eq!(
        check_post(
            Platform::Facebook,
            &options(FacebookPostType::Reel),
            &content,
            &items
        ),
        Ok(())
    );
}

#[test]
fn linkedin() {
    let p = Platform::Linkedin;
    assert_eq!(one(p, FIELD, &image(PNG, 40 * MB, 6000, 6000)), Ok(()));
    refused(p, &image(WEBP, MB, 1200, 627), "type", &["WebP"]);
    refused(p, &image(JPEG, MB, 6013, 6013), "max_pixels", &["36152319"]);
    assert_eq!(one(p, FIELD, &video(MP4, 75_000, 1280, 720, 3_000)), Ok(()));
    refused(
        p,
        &video(MOV, MB, 1280, 720, 10_000),
        "type",
        &["QuickTime"],
    );
    refused(
        p,
        &video(MP4, 74_999, 1280, 720, 10_000),
        "min_size",
        &["75000 bytes"],
    );
    refused(
        p,
        &video(MP4, 500 * MB + 1, 1280, 720, 10_000),
        "max_size",
        &["500 MB"],
    );
    refused(
        p,
        &video(MP4, MB, 1280, 720, 2_999),
        "min_duration",
        &["3 s"],
    );
    refused(
        p,
        &video(MP4, MB, 1280, 720, 30 * 60_000 + 1),
        "max_duration",
        &["30 min"],
    );
}

#[test]
fn tiktok() {
    let p = Platform::Tiktok;
    assert_eq!(one(p, FIELD, &image(WEBP, 20 * MB, 1080, 1920)), Ok(()));
    refused(
        p,
        &image(PNG, MB, 1080, 1920),
        "type",
        &["PNG", "JPEG, WebP"],
    );
    refused(
        p,
        &image(JPEG, 20 * MB + 1, 1080, 1920),
        "max_size",
        &["20 MB"],
    );
    assert_eq!(
        one(p, FIELD, &video(WEBM, 400 * MB, 360, 4096, 600_000)),
        Ok(())
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 600_001),
        "max_duration",
        &["10 min"],
    );
    refused(
        p,
        &video(MP4, MB, 359, 640, 10_000),
        "min_width",
        &["360 px"],
    );
    refused(
        p,
        &video(MP4, MB, 1080, 4097, 10_000),
        "max_height",
        &["4096 px"],
    );
    refused(
        p,
        &video("video/x-matroska", MB, 1080, 1920, 10_000),
        "type",
        &["MP4"],
    );
    refused(
        p,
        &video(MP4, 4 * GB + 1, 1080, 1920, 10_000),
        "max_size",
        &["4 GB"],
    );
}

#[test]
fn youtube() {
    let p = Platform::Youtube;
    refused(
        p,
        &image(JPEG, 1000, 100, 100),
        "type",
        &["takes no images"],
    );
    for &mime in VIDEO_TYPES {
        assert_eq!(
            one(p, FIELD, &video(mime, 500 * MB, 3840, 2160, 3_600_000)),
            Ok(())
        );
    }
    refused(
        p,
        &video(MP4, 256 * GB + 1, 1920, 1080, 10_000),
        "max_size",
        &["256 GB"],
    );
}

#[test]
fn snapchat() {
    let p = Platform::Snapchat;
    assert_eq!(one(p, FIELD, &image(PNG, 5 * MB, 1080, 1920)), Ok(()));
    refused(p, &image(GIF, MB, 1080, 1920), "type", &["GIF"]);
    refused(
        p,
        &image(JPEG, 5 * MB + 1, 1080, 1920),
        "max_size",
        &["5 MB"],
    );
    assert_eq!(
        one(p, FIELD, &video(MP4, 100 * MB, 1080, 1920, 60_000)),
        Ok(())
    );
    refused(
        p,
        &video(MOV, MB, 1080, 1920, 10_000),
        "type",
        &["QuickTime"],
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 4_999),
        "min_duration",
        &["5 s"],
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 60_001),
        "max_duration",
        &["1 min"],
    );
}

/// A Spotlight is a vertical video of 5 to 60 seconds (Snap's Spotlight Guidelines); a story
/// takes any shape.
#[test]
fn snapchat_spotlights_are_vertical() {
    use crate::posts::{MediaType, SnapchatOptions};
    let options = |t: Option<SnapchatPostType>| PostOptions {
        snapchat: Some(SnapchatOptions {
            post_type: t,
            ..Default::default()
        }),
        ..Default::default()
    };
    let content = PostContent {
        text: None,
        media_type: MediaType::Video,
        image_urls: vec![],
        video_url: Some("v".into()),
    };
    let check = |t: Option<SnapchatPostType>, facts: &MediaFacts| {
        check_post(
            Platform::Snapchat,
            &options(t),
            &content,
            &[MediaItem {
                field: FIELD,
                facts,
            }],
        )
    };
    let spotlight = Some(SnapchatPostType::Spotlight);
    let same = |a: &MediaRules, b: &MediaRules| std::ptr::eq(a, b);
    assert!(same(
        rules_for(Platform::Snapchat, &options(spotlight), &content),
        &SNAPCHAT_SPOTLIGHT
    ));
    for t in [
        None,
        Some(SnapchatPostType::Story),
        Some(SnapchatPostType::SavedStory),
    ] {
        assert!(same(
            rules_for(Platform::Snapchat, &options(t), &content),
            &SNAPCHAT
        ));
        // Stories take a landscape video.
        assert_eq!(
            check(t, &video(MP4, MB, 1920, 1080, 10_000)),
            Ok(()),
            "{t:?}"
        );
    }
    for (w, h) in [(1080, 1920), (720, 1280), (1080, 1350), (1080, 1080)] {
        assert_eq!(
            check(spotlight, &video(MP4, MB, w, h, 10_000)),
            Ok(()),
            "{w}x{h}"
        );
    }
    for (w, h) in [(1920, 1080), (1081, 1080), (1350, 1080)] {
        let v = check(spotlight, &video(MP4, MB, w, h, 10_000)).unwrap_err();
        assert_eq!(v.rule, "aspect_ratio", "{w}x{h}: {v:?}");
        assert_eq!((v.platform, v.field.as_str()), (Platform::Snapchat, FIELD));
        assert!(
            v.message.contains("Snapchat") && v.message.contains("1:1"),
            "{}",
            v.message
        );
    }
    for (ms, rule) in [(4_999, "min_duration"), (60_001, "max_duration")] {
        let v = check(spotlight, &video(MP4, MB, 1080, 1920, ms)).unwrap_err();
        assert_eq!(v.rule, rule, "{ms} ms");
    }
    for ms in [5_000, 60_000] {
        assert_eq!(check(spotlight, &video(MP4, MB, 1080, 1920, ms)), Ok(()));
    }
    // The story rules still hold: MP4 only.
    let v = check(spotlight, &video(MOV, MB, 1080, 1920, 10_000)).unwrap_err();
    assert_eq!(v.rule, "type");
    let v = check(spotlight, &image(JPEG, MB, 1080, 1920)).unwrap_err();
    assert_eq!(v.rule, "type");
}

#[test]
fn bluesky() {
    let p = Platform::Bluesky;
    for &mime in IMAGE_TYPES {
        assert_eq!(one(p, FIELD, &image(mime, 1_000_000, 2000, 2000)), Ok(()));
    }
    refused(
        p,
        &image(JPEG, 1_000_001, 2000, 2000),
        "max_size",
        &["1000000 bytes (1 MB)"],
    );
    assert_eq!(
        one(p, FIELD, &video(MP4, 300_000_000, 1080, 1920, 180_000)),
        Ok(())
    );
    refused(
        p,
        &video(MP4, MB, 1080, 1920, 180_001),
        "max_duration",
        &["3 min"],
    );
    refused(
        p,
        &video(WEBM, MB, 1080, 1920, 10_000),
        "type",
        &["WebM", "MP4"],
    );
    refused(
        p,
        &video(MP4, 300_000_001, 1080, 1920, 10_000),
        "max_size",
        &["300 MB"],
    );
}

#[test]
fn mastodon() {
    let p = Platform::Mastodon;
    assert_eq!(one(p, FIELD, &image(WEBP, 16 * MB, 7680, 4320)), Ok(()));
    refused(
        p,
        &image(PNG, 16 * MB + 1, 1000, 1000),
        "max_size",
        &["16777216", "16 MB"],
    );
    refused(p, &image(PNG, MB, 7681, 4320), "max_pixels", &["33177600"]);
    assert_eq!(
        one(p, FIELD, &video(WEBM, 99 * MB, 3840, 2160, 3_600_000)),
        Ok(())
    );
    refused(
        p,
        &video(MP4, 99 * MB + 1, 1280, 720, 10_000),
        "max_size",
        &["99 MB"],
    );
    refused(
        p,
        &video(MP4, MB, 3841, 2160, 10_000),
        "max_pixels",
        &["8294400"],
    );
    refused(
        p,
        &video("video/x-matroska", MB, 1280, 720, 10_000),
        "type",
        &["Matroska"],
    );
}

#[test]
fn the_first_violation_in_order_is_reported() {
    let ok = image(JPEG, 1000, 1080, 1080);
    let big = image(JPEG, 9 * MB, 1080, 1080);
    let png = image(PNG, 1000, 1080, 1080);
    let items = [
        MediaItem {
            field: "post.content.imageUrls[0]",
            facts: &ok,
        },
        MediaItem {
            field: "post.content.imageUrls[1]",
            facts: &big,
        },
        MediaItem {
            field: "post.content.imageUrls[2]",
            facts: &png,
        },
    ];
    let v = check(Platform::Instagram, &items).unwrap_err();
    assert_eq!(v.field, "post.content.imageUrls[1]");
    assert_eq!(v.rule, "max_size");
    assert_eq!(
        v.message,
        "post.content.imageUrls[1] is 9437184 bytes (9 MB); Instagram takes images of at \
         most 8388608 bytes (8 MB)."
    );
}

#[test]
fn wording() {
    assert_eq!(AspectRatio::new(191, 100).to_string(), "1.91:1");
    assert_eq!(AspectRatio::new(1, 100).to_string(), "0.01:1");
    assert_eq!(AspectRatio::new(4, 5).to_string(), "4:5");
    assert_eq!(seconds(500), "0.5 s");
    assert_eq!(seconds(140_000), "140 s");
    assert_eq!(seconds(900_000), "15 min");
    assert_eq!(seconds(140_001), "140.001 s");
    assert_eq!(size(5 * MB), "5242880 bytes (5 MB)");
    assert_eq!(size(2_000_000), "2000000 bytes (2 MB)");
    assert_eq!(size(75_000), "75000 bytes (75 KB)");
    assert_eq!(size(512), "512 bytes");
    assert_eq!(decimal(56, 100), "0.56");
    assert_eq!(decimal(150, 100), "1.5");
}
