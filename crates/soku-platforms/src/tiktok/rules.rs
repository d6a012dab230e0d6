//! What a post must be for TikTok: one video or 1 to 35 photos, and `post.options.tiktok`
//! checked against the creator's info before anything is sent.

use super::PLATFORM;
use super::api::CreatorInfo;
use serde_json::{Value, json};
use soku_core::connector::{FailureClass, PublishError, PublishRequest};
use soku_core::media::MediaKind;
use soku_core::posts::{PlatformOptions, PostContent, TiktokOptions};

/// "An array containing up to 35 photo content URLs"
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-photo-post>).
pub const MAX_PHOTOS: usize = 35;
/// Video caption: "The maximum length is 2200 in UTF-16 runes."
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>).
pub const VIDEO_TITLE_MAX: usize = 2200;
/// Photo posts: "The maximum length for photo posts is 90 in UTF-16 runes." (title) and "4000"
/// (description).
pub const PHOTO_TITLE_MAX: usize = 90;
pub const PHOTO_DESCRIPTION_MAX: usize = 4000;
/// "Supported media formats | WebP JPEG"; "Maximum of 20MB for each image"
/// (<https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide>).
pub const PHOTO_TYPES: &[&str] = &["image/jpeg", "image/webp"];
pub const PHOTO_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// What a post publishes.
pub enum Kind<'a> {
    Video(&'a str),
    Photos(&'a [String]),
}

/// The post's media, refused before any call when TikTok could not take it.
pub fn kind(content: &PostContent) -> Result<Kind<'_>, PublishError> {
    let is_video =
        content.media_type == soku_core::posts::MediaType::Video || content.video_url.is_some();
    if is_video {
        let Some(url) = content.video_url.as_deref().filter(|u| !u.is_empty()) else {
            return Err(permanent(
                "missing_video",
                format!("This {PLATFORM} video post names no video."),
            ));
        };
        if !content.image_urls.is_empty() {
            return Err(permanent(
                "unsupported_media",
                format!("{PLATFORM} posts one video or photos, not both."),
            ));
        }
        return Ok(Kind::Video(url));
    }
    match content.image_urls.len() {
        0 => Err(permanent(
            "missing_media",
            format!("{PLATFORM} posts a video or photos; this post has neither."),
        )),
        n if n > MAX_PHOTOS => Err(permanent(
            "too_many_images",
            format!("{PLATFORM} takes at most {MAX_PHOTOS} photos in a post ({n} given)."),
        )),
        _ => Ok(Kind::Photos(&content.image_urls)),
    }
}

/// The `post_info` settings a post is sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub privacy_level: String,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    pub brand_content: bool,
    pub brand_organic: bool,
}

pub fn options(request: &PublishRequest) -> TiktokOptions {
    match &request.options {
        PlatformOptions::Tiktok(o) => o.clone(),
        _ => TiktokOptions::default(),
    }
}

/// `post.options.tiktok` against the creator's info (spec 8.2):
/// - `privacyLevel` is required: TikTok's guidelines want the creator to choose it "from a
///   dropdown and there should be no default value", and it "must match one of the
///   privacy_level_options returned in the /creator_info/query/ API". A post without it, or with
///   one the account does not offer, fails here, naming the account's options.
/// - `allowComments` / `allowDuet` / `allowStitch` cannot turn on what the creator turned off
///   (`comment_disabled`, `duet_disabled`, `stitch_disabled`; duet and stitch only for videos:
///   "IGNORE if your client only sends photo media"). Left out, each is on when the creator
///   allows it, off otherwise.
/// - A video's duration (from the engine's media record) must not pass
///   `max_video_post_duration_sec` ("Developers should use this field to stop video posts that
///   are too long.").
pub fn settings(
    options: &TiktokOptions,
    creator: &CreatorInfo,
    video: bool,
    duration_ms: Option<u64>,
) -> Result<Settings, PublishError> {
    let offered = creator.privacy_level_options.join(", ");
    let privacy_level = match options.privacy_level.as_deref() {
        None => {
            return Err(permanent(
                "missing_option",
                format!(
                    "{PLATFORM} requires choosing who can see the post: set \
                     post.options.tiktok.privacyLevel to one of this account's options ({offered})."
                ),
            ));
        }
        Some(level) if !creator.privacy_level_options.iter().any(|o| o == level) => {
            return Err(permanent(
                "privacy_level_not_allowed",
                format!(
                    "This {PLATFORM} account does not offer the privacy level {level} \
                     (post.options.tiktok.privacyLevel); it offers: {offered}."
                ),
            ));
        }
        Some(level) => level.to_owned(),
    };
    let interaction = |wanted: Option<bool>, disabled: bool, option: &str, what: &str| {
        if wanted == Some(true) && disabled {
            return Err(permanent(
                "interaction_disabled",
                format!(
                    "The creator has turned {what} off for this {PLATFORM} account, so \
                     post.options.tiktok.{option} cannot turn them on."
                ),
            ));
        }
        Ok(disabled || wanted == Some(false))
    };
    let disable_comment = interaction(
        options.allow_comments,
        creator.comment_disabled,
        "allowComments",
        "comments",
    )?;
    let (disable_duet, disable_stitch) = if video {
        (
            interaction(
                options.allow_duet,
                creator.duet_disabled,
                "allowDuet",
                "duets",
            )?,
            interaction(
                options.allow_stitch,
                creator.stitch_disabled,
                "allowStitch",
                "stitches",
            )?,
        )
    } else {
        (true, true)
    };
    if video
        && let (Some(ms), Some(max)) = (duration_ms, creator.max_video_post_duration_sec)
        && max > 0
        && ms > max * 1000
    {
        return Err(permanent(
            "video_too_long",
            format!(
                "The video lasts {:.1} s; this {PLATFORM} account may post videos of at most \
                 {max} s (creator info's max_video_post_duration_sec).",
                ms as f64 / 1000.0
            ),
        ));
    }
    Ok(Settings {
        privacy_level,
        disable_comment,
        disable_duet,
        disable_stitch,
        brand_content: options.branded_content.unwrap_or(false),
        brand_organic: options.your_brand.unwrap_or(false),
    })
}

/// The video's duration, as the engine's media record knows it.
pub fn video_duration_ms(request: &PublishRequest) -> Option<u64> {
    request
        .media
        .iter()
        .find(|m| m.facts.kind == MediaKind::Video)
        .and_then(|m| m.facts.duration_ms)
}

/// Photos TikTok takes (JPEG or WebP, at most 20 MB), as far as the engine's media records say:
/// TikTok pulls them itself, so nothing else is known before it does.
pub fn check_photos(request: &PublishRequest) -> Result<(), PublishError> {
    for facts in request
        .media
        .iter()
        .map(|m| &m.facts)
        .filter(|f| f.kind == MediaKind::Image)
    {
        if !PHOTO_TYPES.contains(&facts.mime) {
            return Err(permanent(
                "unsupported_media",
                format!("{PLATFORM} takes JPEG and WebP photos, not {}.", facts.mime),
            ));
        }
        if facts.size > PHOTO_MAX_BYTES {
            return Err(permanent(
                "media_too_large",
                format!(
                    "{PLATFORM} takes photos of at most 20 MB; one has {} bytes.",
                    facts.size
                ),
            ));
        }
    }
    Ok(())
}

/// Text within TikTok's limit, counted in UTF-16 units as TikTok counts it.
pub fn check_length(text: &str, max: usize, what: &str) -> Result<(), PublishError> {
    let n = text.encode_utf16().count();
    if n > max {
        return Err(permanent(
            "text_too_long",
            format!("{PLATFORM} takes a {what} of at most {max} UTF-16 units; this one has {n}."),
        ));
    }
    Ok(())
}

/// `post_info` for the video init
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>).
pub fn video_post_info(settings: &Settings, caption: Option<&str>) -> Value {
    let mut info = json!({
        "privacy_level": settings.privacy_level,
        "disable_duet": settings.disable_duet,
        "disable_stitch": settings.disable_stitch,
        "disable_comment": settings.disable_comment,
        "brand_content_toggle": settings.brand_content,
        "brand_organic_toggle": settings.brand_organic,
    });
    if let Some(caption) = caption.filter(|c| !c.is_empty()) {
        info["title"] = json!(caption);
    }
    info
}

/// `post_info` for a photo post
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-photo-post>).
pub fn photo_post_info(
    settings: &Settings,
    title: Option<&str>,
    description: Option<&str>,
) -> Value {
    let mut info = json!({
        "privacy_level": settings.privacy_level,
        "disable_comment": settings.disable_comment,
        "brand_content_toggle": settings.brand_content,
        "brand_organic_toggle": settings.brand_organic,
    });
    if let Some(title) = title.filter(|t| !t.is_empty()) {
        info["title"] = json!(title);
    }
    if let Some(description) = description.filter(|d| !d.is_empty()) {
        info["description"] = json!(description);
    }
    info
}

pub fn permanent(code: &str, message: String) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creator() -> CreatorInfo {
        CreatorInfo {
            creator_username: Some("c".into()),
            creator_nickname: Some("C".into()),
            privacy_level_options: vec!["PUBLIC_TO_EVERYONE".into(), "SELF_ONLY".into()],
            comment_disabled: false,
            duet_disabled: true,
            stitch_disabled: false,
            max_video_post_duration_sec: Some(180),
        }
    }

    fn opts(privacy: Option<&str>) -> TiktokOptions {
        TiktokOptions {
            privacy_level: privacy.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn the_privacy_level_is_required_and_must_be_offered() {
        let e = settings(&opts(None), &creator(), true, None).unwrap_err();
        assert_eq!(e.code, "missing_option");
        assert!(
            e.message.contains("PUBLIC_TO_EVERYONE, SELF_ONLY"),
            "{}",
            e.message
        );
        let e = settings(&opts(Some("FOLLOWER_OF_CREATOR")), &creator(), true, None).unwrap_err();
        assert_eq!(e.code, "privacy_level_not_allowed");
        let s = settings(&opts(Some("SELF_ONLY")), &creator(), true, None).unwrap();
        assert_eq!(s.privacy_level, "SELF_ONLY");
    }

    #[test]
    fn interactions_follow_the_creator() {
        // Left out: on where allowed, off where the creator disabled it.
        let s = settings(&opts(Some("SELF_ONLY")), &creator(), true, None).unwrap();
        assert!(!s.disable_comment && s.disable_duet && !s.disable_stitch);
        let mut o = opts(Some("SELF_ONLY"));
        o.allow_duet = Some(true);
        assert_eq!(
            settings(&o, &creator(), true, None).unwrap_err().code,
            "interaction_disabled"
        );
        // Photos ignore duet and stitch.
        assert!(settings(&o, &creator(), false, None).is_ok());
        o.allow_duet = None;
        o.allow_comments = Some(false);
        assert!(
            settings(&o, &creator(), true, None)
                .unwrap()
                .disable_comment
        );
    }

    #[test]
    fn a_video_longer_than_the_creator_may_post_is_refused() {
        let o = opts(Some("SELF_ONLY"));
        assert!(settings(&o, &creator(), true, Some(180_000)).is_ok());
        let e = settings(&o, &creator(), true, Some(180_001)).unwrap_err();
        assert_eq!(e.code, "video_too_long");
        assert!(e.message.contains("180 s"), "{}", e.message);
        assert!(settings(&o, &creator(), false, Some(999_000)).is_ok());
    }

    #[test]
    fn lengths_count_utf16_units() {
        assert!(check_length(&"a".repeat(90), 90, "title").is_ok());
        assert!(check_length(&"😀".repeat(46), 90, "title").is_err());
    }
}
