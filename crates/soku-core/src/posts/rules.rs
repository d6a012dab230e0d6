//! Spec 6.1's per-platform rules for one target (`check_platform_rules`): text length as each
//! network counts it, media required, image counts, and the rules that depend on
//! `post.options` (Instagram's caption and post types, Facebook's post types, TikTok's privacy
//! level, branded content and lengths). The media files themselves are checked by `media_rules`.

use super::{
    FacebookOptions, FacebookPostType, InstagramOptions, InstagramPostType, Invalid, MediaType,
    PostContent, PostOptions,
};
use crate::platform::Platform;
use unicode_segmentation::UnicodeSegmentation;

/// Caption length as the platform counts it: grapheme clusters, URLs as 23 on X.
pub fn caption_length(text: &str, urls_count_23: bool) -> usize {
    if !urls_count_23 {
        return text.graphemes(true).count();
    }
    let mut total = 0;
    let mut rest = text;
    while let Some(start) = find_url(rest) {
        total += rest[..start].graphemes(true).count();
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        total += 23;
        rest = &tail[end..];
    }
    total + rest.graphemes(true).count()
}

/// Text length as Threads counts it toward its 500-character limit: Meta's "Threads Posts"
/// documentation (developers.facebook.com/documentation/threads/posts, "Limitations") says
/// "Text posts are limited to 500 characters" and "Emojis are counted as the number of UTF-8
/// bytes". So a grapheme cluster holding an emoji counts as its UTF-8 bytes (a plain emoji 4, a
/// ZWJ family or a flag more), any other grapheme cluster as 1.
pub fn threads_text_length(text: &str) -> usize {
    text.graphemes(true)
        .map(|g| if g.chars().any(is_emoji) { g.len() } else { 1 })
        .sum()
}

/// Emoji code points: the pictographic blocks, dingbats and miscellaneous symbols, regional
/// indicators, and the emoji variation selector (which turns a text symbol into an emoji).
fn is_emoji(c: char) -> bool {
    matches!(
        c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2300..=0x23FF | 0xFE0F
    )
}

/// Bluesky's `app.bsky.feed.post` lexicon: `text` has `maxGraphemes: 300` and
/// `maxLength: 3000`, the latter in UTF-8 bytes. The connector sends the text unchanged (facets
/// only point into it by byte ranges), so the bytes counted here are the bytes Bluesky counts.
pub const BLUESKY_MAX_TEXT_BYTES: usize = 3000;

fn find_url(s: &str) -> Option<usize> {
    match (s.find("http://"), s.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Spec 6.1's per-platform rules for one target. `content` is what the target publishes (its
/// `text` the target's own when it has one); `text_field` names where that text came from
/// (`post.content.text` or `post.content.platform[i].text`).
pub(crate) fn check_platform_rules(
    platform: Platform,
    content: &PostContent,
    text_field: &str,
    options: &PostOptions,
) -> Result<(), Invalid> {
    let rules = platform.rules();
    let name = platform.display_name();
    if rules.needs_video && content.video_url.is_none() {
        return Err(Invalid::new(
            "post.content.videoUrl",
            "required",
            format!("{name} needs a video (mediaType 'video' with 'videoUrl')."),
        )
        .on(platform, None, None));
    }
    if rules.needs_media && content.media_type == MediaType::Text {
        return Err(Invalid::new(
            "post.content.mediaUrls",
            "required",
            format!("{name} needs an image or a video."),
        )
        .on(platform, None, None));
    }
    // A YouTube title given in `post.options.youtube.title` (checked there, up to 100) is the
    // title; the text is then only the description.
    let youtube_title_given = options.youtube.as_ref().is_some_and(|o| o.title.is_some());
    if let Some(text) = &content.text
        && let Some(max) = rules.max_text
        && !(platform == Platform::Youtube && youtube_title_given)
    {
        let measured = if platform == Platform::Youtube {
            caption_length(text.lines().next().unwrap_or(""), false)
        } else if platform == Platform::Threads {
            threads_text_length(text)
        } else {
            caption_length(text, rules.urls_count_23)
        };
        if measured > max {
            let what = if platform == Platform::Youtube {
                "title (the text's first line)"
            } else {
                "text"
            };
            return Err(Invalid::new(
                text_field,
                "too_long",
                format!("The {what} is {measured} characters; {name} allows {max}."),
            )
            .on(platform, Some(max), Some(measured)));
        }
    }
    if let Some(text) = &content.text {
        if platform == Platform::Bluesky && text.len() > BLUESKY_MAX_TEXT_BYTES {
            let (max, bytes) = (BLUESKY_MAX_TEXT_BYTES, text.len());
            return Err(Invalid::new(
                text_field,
                "too_long",
                format!("The text is {bytes} bytes (UTF-8); {name} allows {max}."),
            )
            .on(platform, Some(max), Some(bytes)));
        }
        if platform == Platform::Instagram {
            check_instagram_caption(text, text_field)?;
        }
    }
    if content.media_type == MediaType::Image {
        match rules.max_images {
            Some(max) if content.image_urls.len() > max => {
                return Err(Invalid::new(
                    "post.content.imageUrls",
                    "too_many",
                    format!(
                        "{name} allows at most {max} images per post; this post has {}.",
                        content.image_urls.len()
                    ),
                )
                .on(platform, Some(max), Some(content.image_urls.len())));
            }
            None => {
                return Err(Invalid::new(
                    "post.content.mediaType",
                    "invalid_value",
                    format!("{name} does not take image posts here."),
                )
                .on(platform, None, None));
            }
            _ => {}
        }
    }
    if platform == Platform::Instagram
        && let Some(o) = &options.instagram
    {
        check_instagram_options(content, o)?;
    }
    if platform == Platform::Facebook
        && let Some(o) = &options.facebook
    {
        check_facebook_options(content, o)?;
    }
    if platform == Platform::Snapchat {
        check_snapchat(content, text_field, options.snapchat.as_ref())?;
    }
    if platform == Platform::Tiktok {
        check_tiktok(content, text_field, options.tiktok.as_ref())?;
    }
    Ok(())
}

/// TikTok's longest video caption, in UTF-16 units: `post_info.title`, "The maximum length is
/// 2200 in UTF-16 runes." (<https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>).
pub const TIKTOK_VIDEO_CAPTION_MAX_UTF16: usize = 2200;
/// A photo post's longest title and description, in UTF-16 units: "The maximum length for photo
/// posts is 90 in UTF-16 runes" and 4000
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-photo-post>).
pub const TIKTOK_PHOTO_TITLE_MAX_UTF16: usize = 90;
/// See [`TIKTOK_PHOTO_TITLE_MAX_UTF16`].
pub const TIKTOK_PHOTO_DESCRIPTION_MAX_UTF16: usize = 4000;

/// TikTok's rules beyond `Platform::rules`, for what the connector (`soku_platforms::tiktok`)
/// sends: the text as a video's caption or a photo post's description, `post.options.tiktok.title`
/// as a photo post's title (a video post has none: it is not sent).
/// - `privacyLevel` is required: the creator chooses who sees the post, "with no default value"
///   (<https://developers.tiktok.com/doc/content-sharing-guidelines>), and
///   `post_info.privacy_level` is required by the direct post API.
/// - Branded content cannot be private: the same guidelines' commercial content disclosure says
///   "Branded content visibility cannot be set to private." (the stored copy of that page here
///   stops before that section; the sentence is as the open-source integrations that follow the
///   guidelines reproduce it, word for word). So `brandedContent: true` with `SELF_ONLY` is
///   refused, naming `privacyLevel` (the guidelines disable "Only me" once branded content is
///   chosen). `yourBrand` alone may be private.
/// - Text lengths in UTF-16 units, as TikTok counts them (an emoji outside the BMP is 2): a
///   video's caption at most 2,200, a photo post's description 4,000 and title 90. Spec 6.1's
///   2,200 graphemes are checked too (`Platform::rules`), so a caption of 2,200 graphemes that
///   holds emoji can still be too long here.
fn check_tiktok(
    content: &PostContent,
    text_field: &str,
    options: Option<&super::TiktokOptions>,
) -> Result<(), Invalid> {
    let platform = Platform::Tiktok;
    let Some(level) = options.and_then(|o| o.privacy_level.as_deref()) else {
        return Err(Invalid::new(
            "post.options.tiktok.privacyLevel",
            "required",
            "TikTok posts need 'post.options.tiktok.privacyLevel' (PUBLIC_TO_EVERYONE, \
             MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR or SELF_ONLY, as the account allows): \
             TikTok has no default.",
        )
        .on(platform, None, None)
        .rule("privacy_level_required"));
    };
    if level == "SELF_ONLY" && options.is_some_and(|o| o.branded_content == Some(true)) {
        return Err(Invalid::new(
            "post.options.tiktok.privacyLevel",
            "invalid_value",
            "TikTok branded content ('post.options.tiktok.brandedContent': true) cannot be \
             private: choose a 'privacyLevel' other than SELF_ONLY.",
        )
        .on(platform, None, None)
        .rule("branded_content_private"));
    }
    let utf16 = |field: &str, text: &str, max: usize, what: &str| {
        let n = text.encode_utf16().count();
        if n <= max {
            return Ok(());
        }
        Err(Invalid::new(
            field,
            "too_long",
            format!("The {what} is {n} UTF-16 units (an emoji counts 2); TikTok allows {max}."),
        )
        .on(platform, Some(max), Some(n))
        .rule("utf16_length"))
    };
    let is_video = content.media_type == MediaType::Video || content.video_url.is_some();
    if is_video {
        if let Some(text) = &content.text {
            utf16(
                text_field,
                text,
                TIKTOK_VIDEO_CAPTION_MAX_UTF16,
                "video's caption (the text)",
            )?;
        }
    } else if content.media_type == MediaType::Image {
        if let Some(text) = &content.text {
            utf16(
                text_field,
                text,
                TIKTOK_PHOTO_DESCRIPTION_MAX_UTF16,
                "photo post's description (the text)",
            )?;
        }
        if let Some(title) = options.and_then(|o| o.title.as_deref()) {
            utf16(
                "post.options.tiktok.title",
                title,
                TIKTOK_PHOTO_TITLE_MAX_UTF16,
                "photo post's title",
            )?;
        }
    }
    Ok(())
}

/// Longest Spotlight description: 160 characters, hashtags included (Snap documents it only in
/// the Spotlight posting section the `soku_platforms::snapchat` docs name; the figure is the one
/// every publisher calling the API uses).
pub const SNAPCHAT_DESCRIPTION_MAX: usize = 160;

/// Snapchat's rules beyond `Platform::rules`: one image or one video per post (a media
/// container holds "a single video or image", and a Story, Spotlight or Saved Story is posted
/// from one); a Spotlight is a video ("Spotlights are permanent video Snaps",
/// <https://developers.snap.com/api/marketing-api/Public-Profile-API/Introduction>) whose
/// description, `post.options.snapchat.description` or else the text, is at most 160
/// characters. Stories and Saved Stories carry no text: the text is not sent.
pub(crate) fn check_snapchat(
    content: &PostContent,
    text_field: &str,
    options: Option<&super::SnapchatOptions>,
) -> Result<(), Invalid> {
    let platform = Platform::Snapchat;
    let count = content.image_urls.len() + usize::from(content.video_url.is_some());
    if count > 1 {
        return Err(Invalid::new(
            "post.content.mediaUrls",
            "too_many",
            format!("Snapchat posts one image or one video; this post has {count} files."),
        )
        .on(platform, Some(1), Some(count))
        .rule("one_media_item"));
    }
    let post_type = options.and_then(|o| o.post_type).unwrap_or_default();
    if post_type != super::SnapchatPostType::Spotlight {
        return Ok(());
    }
    if content.video_url.is_none() {
        return Err(Invalid::new(
            "post.content.videoUrl",
            "required",
            "A Snapchat Spotlight is a video (mediaType 'video' with 'videoUrl').",
        )
        .on(platform, None, None)
        .rule("spotlight_needs_video"));
    }
    // An empty description is none: the connector sends the text instead.
    if options.is_none_or(|o| o.description.as_deref().is_none_or(str::is_empty))
        && let Some(text) = &content.text
    {
        let measured = caption_length(text, false);
        if measured > SNAPCHAT_DESCRIPTION_MAX {
            return Err(Invalid::new(
                text_field,
                "too_long",
                format!(
                    "The text is {measured} characters; a Snapchat Spotlight description allows \
                     {SNAPCHAT_DESCRIPTION_MAX} (or give 'post.options.snapchat.description')."
                ),
            )
            .on(platform, Some(SNAPCHAT_DESCRIPTION_MAX), Some(measured)));
        }
    }
    Ok(())
}

/// Most hashtags in an Instagram caption. Source:
/// <https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media>
/// (`caption`: "Maximum 2200 characters, 30 hashtags, and 20 @ tags").
pub const INSTAGRAM_MAX_HASHTAGS: usize = 30;
/// Most @mentions in an Instagram caption (same source).
pub const INSTAGRAM_MAX_MENTIONS: usize = 20;

/// How many tags starting with `sigil` the text holds: a `#` or `@` at the start of a word
/// (not after a letter, digit or `_`, so `a@b.com` and `C#` are not tags) followed by a
/// letter, digit or `_`. Instagram does not document how it counts; this is the plain reading.
pub fn count_tags(text: &str, sigil: char) -> usize {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut count = 0;
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == sigil && !prev.is_some_and(word) && chars.peek().is_some_and(|n| word(*n)) {
            count += 1;
        }
        prev = Some(c);
    }
    count
}

/// Instagram's caption rules beyond its length (the 2,200 of `Platform::rules`): at most 30
/// hashtags and 20 @mentions. Source:
/// <https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media>
/// (`caption`: "Maximum 2200 characters, 30 hashtags, and 20 @ tags").
fn check_instagram_caption(text: &str, text_field: &str) -> Result<(), Invalid> {
    let platform = Platform::Instagram;
    for (sigil, max, rule, what) in [
        ('#', INSTAGRAM_MAX_HASHTAGS, "max_hashtags", "hashtags"),
        ('@', INSTAGRAM_MAX_MENTIONS, "max_mentions", "@mentions"),
    ] {
        let n = count_tags(text, sigil);
        if n > max {
            return Err(Invalid::new(
                text_field,
                "too_many",
                format!("The caption has {n} {what}; Instagram allows at most {max}."),
            )
            .on(platform, Some(max), Some(n))
            .rule(rule));
        }
    }
    Ok(())
}

/// The kind of Instagram post a target makes: `postType` when given, otherwise a video is a
/// reel and images a feed post (a carousel when several), spec 8.2.
pub fn instagram_post_type(content: &PostContent, options: &InstagramOptions) -> InstagramPostType {
    options.post_type.unwrap_or(match content.media_type {
        MediaType::Video => InstagramPostType::Reel,
        _ => InstagramPostType::Feed,
    })
}

/// Instagram's rules for `post.options.instagram` against the post's media. Source:
/// <https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media>:
/// a story container takes one `image_url` or `video_url` (`media_type=STORIES`); a reel takes
/// a `video_url` (`media_type=REELS`); `cover_url`, `share_to_feed` and `trial_params` are
/// listed for reels only ("Reels only").
fn check_instagram_options(content: &PostContent, o: &InstagramOptions) -> Result<(), Invalid> {
    let platform = Platform::Instagram;
    let post_type = instagram_post_type(content, o);
    let items = content.image_urls.len() + usize::from(content.video_url.is_some());
    match post_type {
        InstagramPostType::Story if items > 1 => {
            return Err(Invalid::new(
                "post.content.imageUrls",
                "too_many",
                format!("An Instagram story holds one image or video; this post has {items}."),
            )
            .on(platform, Some(1), Some(items))
            .rule("story_single_media"));
        }
        InstagramPostType::Reel if content.video_url.is_none() => {
            return Err(Invalid::new(
                "post.content.videoUrl",
                "required",
                "An Instagram reel needs a video (mediaType 'video' with 'videoUrl').",
            )
            .on(platform, None, None)
            .rule("reel_needs_video"));
        }
        _ => {}
    }
    if post_type != InstagramPostType::Reel {
        let set = [
            ("coverUrl", o.cover_url.is_some()),
            ("shareToFeed", o.share_to_feed.is_some()),
            ("trialReel", o.trial_reel == Some(true)),
        ];
        if let Some((name, _)) = set.iter().find(|(_, set)| *set) {
            let kind = match post_type {
                InstagramPostType::Story => "a story",
                _ => "a feed post",
            };
            return Err(Invalid::new(
                format!("post.options.instagram.{name}"),
                "invalid_value",
                format!("'{name}' applies to Instagram reels only; this post is {kind}."),
            )
            .on(platform, None, None)
            .rule("reel_only"));
        }
    }
    Ok(())
}

/// The kind of Facebook Page post a target makes: `postType`, `feed` by default (spec 8.2).
pub fn facebook_post_type(options: &FacebookOptions) -> FacebookPostType {
    options.post_type.unwrap_or(FacebookPostType::Feed)
}

/// Facebook's rules for `post.options.facebook` against the post's media. Sources: a Page reel
/// is one video uploaded to `/{page-id}/video_reels`
/// (<https://developers.facebook.com/docs/video-api/guides/reels-publishing>); a Page story is
/// one photo (`/{page-id}/photo_stories` with a `photo_id`) or one video
/// (`/{page-id}/video_stories`) (<https://developers.facebook.com/docs/page-stories-api>).
/// Neither takes a link: `link` is a feed post's (`POST /{page-id}/feed`).
fn check_facebook_options(content: &PostContent, o: &FacebookOptions) -> Result<(), Invalid> {
    let platform = Platform::Facebook;
    let post_type = facebook_post_type(o);
    let items = content.image_urls.len() + usize::from(content.video_url.is_some());
    match post_type {
        FacebookPostType::Reel if content.video_url.is_none() || !content.image_urls.is_empty() => {
            let (field, reason) = if content.video_url.is_none() {
                ("post.content.videoUrl", "required")
            } else {
                ("post.content.imageUrls", "too_many")
            };
            return Err(Invalid::new(
                field,
                reason,
                "A Facebook reel is one video (mediaType 'video' with 'videoUrl', no images).",
            )
            .on(platform, None, None)
            .rule("reel_needs_video"));
        }
        FacebookPostType::Story if items != 1 => {
            let (field, reason) = if items == 0 {
                ("post.content.mediaUrls", "required")
            } else {
                ("post.content.imageUrls", "too_many")
            };
            return Err(Invalid::new(
                field,
                reason,
                format!("A Facebook story holds one image or video; this post has {items}."),
            )
            .on(platform, Some(1), Some(items))
            .rule("story_single_media"));
        }
        _ => {}
    }
    if post_type != FacebookPostType::Feed && o.link.is_some() {
        return Err(Invalid::new(
            "post.options.facebook.link",
            "invalid_value",
            "'link' applies to Facebook feed posts only; reels and stories take no link.",
        )
        .on(platform, None, None)
        .rule("feed_only"));
    }
    Ok(())
}
