//! Each target platform's media rules (spec 8.1, "Media in posts"): a hosted file is checked
//! when the post is submitted, against the facts read from its bytes (`MediaFacts`), so that a
//! post a platform would refuse is refused with 400 `validation_error` before anything is sent.
//!
//! Every figure below comes from the platform's own documentation for its publishing API (not
//! its consumer app), cited in a doc comment above that platform's table. Where the platform
//! documents nothing for something, nothing is checked: no limit is invented here. Where two of
//! the platform's own figures conflict, the API reference's is used and the other is noted.
//!
//! Reading the tables:
//! - "MB" / "GB" in those pages are taken as 2^20 / 2^30 bytes (no platform says which; the
//!   binary reading is the more lenient one for a maximum, so a file in the gap is refused by the
//!   platform, never wrongly by us). Exact byte figures (Bluesky's lexicon, Mastodon's instance
//!   configuration) are used as they are.
//! - A rule about a value the facts do not carry (no `width`, no `duration_ms`) is skipped: a
//!   missing fact never refuses a file.
//! - The number of images per post is `Platform::rules().max_images` (spec 6.1, checked by
//!   `check_platform_rules`); it is read from there, not repeated here, and only applied here to
//!   posts that mix images and videos (a carousel counts both).
//! - Rules depend on the kind of post. Where a platform has several (Instagram feed/reel/story,
//!   Facebook feed/reel/story, Snapchat story/spotlight), `rules` holds the rules of the post
//!   type Soku publishes by default (spec 8.2) and `rules_for` picks the post's own from
//!   `post.options` (Instagram stories, Facebook reels and stories, Snapchat Spotlights have
//!   tables of their own); the others are noted, not checked.

use super::{
    FacebookPostType, InstagramPostType, PostContent, PostOptions, SnapchatPostType,
    facebook_post_type, instagram_post_type,
};
use crate::media::{MediaFacts, MediaKind};
use crate::platform::Platform;
use std::fmt;

/// One media item of a post, with the JSON path that named it, e.g. "post.content.mediaUrls[1]".
#[derive(Debug, Clone, Copy)]
pub struct MediaItem<'a> {
    pub field: &'a str,
    pub facts: &'a MediaFacts,
}

/// A broken rule: which platform, which field, which rule (a short stable id: `type`,
/// `max_size`, `min_size`, `max_duration`, `min_duration`, `min_width`, `max_width`,
/// `min_height`, `max_height`, `max_pixels`, `aspect_ratio`, `mixed_media`, `count`), and a
/// sentence for people naming the platform, the field, the file's value and the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaViolation {
    pub platform: Platform,
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

/// Which MIME types (of those the server hosts, `media::IMAGE_TYPES` / `VIDEO_TYPES`) a platform
/// takes for one kind of media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Types {
    /// The platform's documentation restricts nothing (or takes `image/*`, `video/*`).
    Any,
    /// Only these; an empty list means the platform takes no media of this kind.
    Only(&'static [&'static str]),
}

impl Types {
    pub fn accepts(self, mime: &str) -> bool {
        match self {
            Types::Any => true,
            Types::Only(list) => list.contains(&mime),
        }
    }
}

/// An aspect ratio, width:height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AspectRatio {
    pub width: u64,
    pub height: u64,
}

impl AspectRatio {
    pub const fn new(width: u64, height: u64) -> Self {
        Self { width, height }
    }

    /// `w × h` is narrower than this ratio (w/h < width/height).
    fn is_above(self, w: u32, h: u32) -> bool {
        u64::from(w) * self.height < self.width * u64::from(h)
    }

    /// `w × h` is wider than this ratio (w/h > width/height).
    fn is_below(self, w: u32, h: u32) -> bool {
        u64::from(w) * self.height > self.width * u64::from(h)
    }

    /// `w × h` is this ratio within `percent` of it: |w/h − width/height| ≤ percent% of
    /// width/height.
    fn is_within(self, w: u32, h: u32, percent: u64) -> bool {
        let (w, h) = (u64::from(w), u64::from(h));
        (w * self.height).abs_diff(self.width * h) * 100 <= percent * self.width * h
    }
}

impl fmt::Display for AspectRatio {
    /// As the platforms write them: "4:5", "3:1", and hundredths as decimals ("1.91:1").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.height == 100 {
            write!(f, "{}:1", decimal(self.width, 100))
        } else {
            write!(f, "{}:{}", self.width, self.height)
        }
    }
}

/// What a platform takes for one kind of media (images or videos). `None` means: not limited
/// by the platform's documentation (or not checkable from the facts), so not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRules {
    pub types: Types,
    /// Largest file, in bytes.
    pub max_bytes: Option<u64>,
    /// Larger limits for some types (X: animated GIFs).
    pub max_bytes_by_type: &'static [(&'static str, u64)],
    /// Smallest file, in bytes.
    pub min_bytes: Option<u64>,
    pub min_duration_ms: Option<u64>,
    pub max_duration_ms: Option<u64>,
    /// Narrowest aspect ratio (width:height).
    pub min_aspect: Option<AspectRatio>,
    /// Widest aspect ratio (width:height).
    pub max_aspect: Option<AspectRatio>,
    /// The one aspect ratio taken (width:height), for a platform that documents a single one
    /// (Facebook reels' "9 x 16"); a file within `ASPECT_TOLERANCE_PERCENT` of it passes.
    pub aspect: Option<AspectRatio>,
    pub min_width: Option<u32>,
    pub max_width: Option<u32>,
    pub min_height: Option<u32>,
    pub max_height: Option<u32>,
    /// Most pixels (width × height).
    pub max_pixels: Option<u64>,
}

impl KindRules {
    /// Nothing documented: every type the server hosts, no limit.
    pub const ANY: KindRules = KindRules {
        types: Types::Any,
        max_bytes: None,
        max_bytes_by_type: &[],
        min_bytes: None,
        min_duration_ms: None,
        max_duration_ms: None,
        min_aspect: None,
        max_aspect: None,
        aspect: None,
        min_width: None,
        max_width: None,
        min_height: None,
        max_height: None,
        max_pixels: None,
    };

    /// The platform takes no media of this kind.
    pub const NONE: KindRules = KindRules {
        types: Types::Only(&[]),
        ..KindRules::ANY
    };

    /// The size limit for a file of this type.
    pub fn max_bytes_for(&self, mime: &str) -> Option<u64> {
        self.max_bytes_by_type
            .iter()
            .find(|(t, _)| *t == mime)
            .map(|(_, b)| *b)
            .or(self.max_bytes)
    }
}

/// How far (in percent of the ratio) a file may be from a single documented aspect ratio
/// (`KindRules::aspect`) and pass. Encoders round a side to an even number of pixels or to a
/// multiple of 16 (1088 for 1080), so a 9:16 video is often a hair off; 1% takes those (544x960,
/// 1088x1920) and nothing a viewer would see as another shape. It is leniency, never a limit of
/// its own: the documented ratio is the rule.
pub const ASPECT_TOLERANCE_PERCENT: u64 = 1;

/// A platform's media rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRules {
    pub platform: Platform,
    /// The pages the figures come from.
    pub sources: &'static [&'static str],
    pub image: KindRules,
    pub video: KindRules,
    /// Images and videos may be in the same post (a carousel). When they are, the post holds at
    /// most `Platform::rules().max_images` items in all.
    pub mixed: bool,
    /// Most videos in one post; `None` when only the item count limits them.
    pub max_videos: Option<usize>,
}

impl MediaRules {
    pub fn kind(&self, kind: MediaKind) -> &KindRules {
        match kind {
            MediaKind::Image => &self.image,
            MediaKind::Video => &self.video,
        }
    }
}

mod tables;

pub use tables::*;

/// The rules themselves, for documentation and tests.
pub fn rules(platform: Platform) -> &'static MediaRules {
    match platform {
        Platform::X => &X,
        Platform::Threads => &THREADS,
        Platform::Instagram => &INSTAGRAM,
        Platform::Facebook => &FACEBOOK,
        Platform::Linkedin => &LINKEDIN,
        Platform::Tiktok => &TIKTOK,
        Platform::Youtube => &YOUTUBE,
        Platform::Snapchat => &SNAPCHAT,
        Platform::Bluesky => &BLUESKY,
        Platform::Mastodon => &MASTODON,
    }
}

/// The rules of the kind of post a target on `platform` makes (`post.options`' `postType`).
pub fn rules_for(
    platform: Platform,
    options: &PostOptions,
    content: &PostContent,
) -> &'static MediaRules {
    match platform {
        Platform::Instagram => {
            let o = options.instagram.clone().unwrap_or_default();
            match instagram_post_type(content, &o) {
                InstagramPostType::Story => &INSTAGRAM_STORY,
                _ => &INSTAGRAM,
            }
        }
        Platform::Facebook => {
            let o = options.facebook.clone().unwrap_or_default();
            match facebook_post_type(&o) {
                FacebookPostType::Reel => &FACEBOOK_REEL,
                FacebookPostType::Story => &FACEBOOK_STORY,
                FacebookPostType::Feed => &FACEBOOK,
            }
        }
        Platform::Snapchat => match options.snapchat.as_ref().and_then(|o| o.post_type) {
            Some(SnapchatPostType::Spotlight) => &SNAPCHAT_SPOTLIGHT,
            _ => &SNAPCHAT,
        },
        _ => rules(platform),
    }
}

/// Checks a post's media (in order) against `platform`'s rules for the post's kind (`rules_for`);
/// the first violation.
pub fn check_post(
    platform: Platform,
    options: &PostOptions,
    content: &PostContent,
    items: &[MediaItem<'_>],
) -> Result<(), MediaViolation> {
    check_with(rules_for(platform, options, content), items)
}

/// Checks a post's media (in order) against `platform`'s default rules; the first violation.
pub fn check(platform: Platform, items: &[MediaItem<'_>]) -> Result<(), MediaViolation> {
    check_with(rules(platform), items)
}

/// Checks a post's media (in order) against `rules`; the first violation. The post's shape
/// (images with videos, how many videos) is checked first, then each item in order.
pub fn check_with(rules: &MediaRules, items: &[MediaItem<'_>]) -> Result<(), MediaViolation> {
    let platform = rules.platform;
    let name = platform.display_name();
    let fail = |field: &str, rule: &'static str, message: String| MediaViolation {
        platform,
        field: field.to_owned(),
        rule,
        message,
    };

    let is_video = |i: &&MediaItem<'_>| i.facts.kind == MediaKind::Video;
    let has_images = items.iter().any(|i| i.facts.kind == MediaKind::Image);
    let has_videos = items.iter().any(|i| is_video(&i));
    if has_images && has_videos {
        if !rules.mixed {
            let first = items[0].facts.kind;
            let other = items
                .iter()
                .find(|i| i.facts.kind != first)
                .expect("both kinds are present");
            return Err(fail(
                other.field,
                "mixed_media",
                format!(
                    "{name} does not take images and videos in the same post; {} is {} and the \
                     post also has {}.",
                    other.field,
                    a_kind(other.facts.kind),
                    plural(first),
                ),
            ));
        }
        if let Some(max) = platform.rules().max_images
            && items.len() > max
        {
            let field = items[max].field;
            return Err(fail(
                field,
                "count",
                format!(
                    "{name} takes at most {max} images and videos in one post; this post has {} \
                     ({field} is item {}).",
                    items.len(),
                    max + 1,
                ),
            ));
        }
    }
    if let Some(max) = rules.max_videos
        && let Some(extra) = items.iter().filter(is_video).nth(max)
    {
        let count = items.iter().filter(is_video).count();
        return Err(fail(
            extra.field,
            "count",
            format!(
                "{name} takes at most {max} video{} in one post; this post has {count} ({} is \
                 video {}).",
                if max == 1 { "" } else { "s" },
                extra.field,
                max + 1,
            ),
        ));
    }

    for item in items {
        check_item(platform, rules, item)
            .map_err(|(rule, message)| fail(item.field, rule, message))?;
    }
    Ok(())
}

/// One file against its kind's rules: the rule broken and the sentence.
fn check_item(
    platform: Platform,
    rules: &MediaRules,
    item: &MediaItem<'_>,
) -> Result<(), (&'static str, String)> {
    let name = platform.display_name();
    let field = item.field;
    let facts = item.facts;
    let kind = facts.kind;
    let r = rules.kind(kind);
    let kinds = plural(kind);

    match r.types {
        Types::Only([]) => {
            return Err((
                "type",
                format!(
                    "{name} takes no {kinds}; {field} is {} ({}).",
                    a_kind(kind),
                    facts.mime
                ),
            ));
        }
        Types::Only(list) if !list.contains(&facts.mime) => {
            return Err((
                "type",
                format!(
                    "{name} does not take {} {kinds}; {field} is {}. {name} takes {}.",
                    type_name(facts.mime),
                    facts.mime,
                    list.iter()
                        .map(|t| type_name(t))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ));
        }
        _ => {}
    }

    if let Some(max) = r.max_bytes_for(facts.mime)
        && facts.size > max
    {
        let what = if r.max_bytes_by_type.iter().any(|(t, _)| *t == facts.mime) {
            format!("{} {kinds}", type_name(facts.mime))
        } else {
            kinds.to_owned()
        };
        return Err((
            "max_size",
            format!(
                "{field} is {}; {name} takes {what} of at most {}.",
                size(facts.size),
                size(max)
            ),
        ));
    }
    if let Some(min) = r.min_bytes
        && facts.size < min
    {
        return Err((
            "min_size",
            format!(
                "{field} is {}; {name} takes {kinds} of at least {}.",
                size(facts.size),
                size(min)
            ),
        ));
    }

    if let Some(duration) = facts.duration_ms {
        if let Some(min) = r.min_duration_ms
            && duration < min
        {
            let limit = if min <= 1 {
                "longer than 0 seconds".to_owned()
            } else {
                format!("at least {} long", seconds(min))
            };
            return Err((
                "min_duration",
                format!(
                    "{field} lasts {}; {name} takes {kinds} {limit}.",
                    seconds(duration)
                ),
            ));
        }
        if let Some(max) = r.max_duration_ms
            && duration > max
        {
            return Err((
                "max_duration",
                format!(
                    "{field} lasts {}; {name} takes {kinds} of at most {}.",
                    seconds(duration),
                    seconds(max)
                ),
            ));
        }
    }

    // A single documented shape is checked before the sizes: a landscape file sent as a
    // vertical reel is told to change its shape, not its height.
    if let (Some(ratio), Some(w), Some(h)) = (r.aspect, facts.width, facts.height)
        && w > 0
        && h > 0
        && !ratio.is_within(w, h, ASPECT_TOLERANCE_PERCENT)
    {
        return Err((
            "aspect_ratio",
            format!(
                "{field} is {w}×{h}, an aspect ratio of {}:1; {name} takes {kinds} with an \
                 aspect ratio (width:height) of {ratio} ({}:1, within {ASPECT_TOLERANCE_PERCENT}%).",
                decimal(u64::from(w) * 100 / u64::from(h), 100),
                decimal(ratio.width * 100 / ratio.height, 100),
            ),
        ));
    }

    let bound = |rule: &'static str, value: u32, what: &str, limit: u32, most: bool| {
        (
            rule,
            format!(
                "{field} is {value} px {what}; {name} takes {kinds} {} {limit} px {what}.",
                if most { "at most" } else { "at least" }
            ),
        )
    };
    if let Some(w) = facts.width {
        if let Some(min) = r.min_width
            && w < min
        {
            return Err(bound("min_width", w, "wide", min, false));
        }
        if let Some(max) = r.max_width
            && w > max
        {
            return Err(bound("max_width", w, "wide", max, true));
        }
    }
    if let Some(h) = facts.height {
        if let Some(min) = r.min_height
            && h < min
        {
            return Err(bound("min_height", h, "high", min, false));
        }
        if let Some(max) = r.max_height
            && h > max
        {
            return Err(bound("max_height", h, "high", max, true));
        }
    }

    if let (Some(w), Some(h)) = (facts.width, facts.height) {
        let pixels = u64::from(w) * u64::from(h);
        if let Some(max) = r.max_pixels
            && pixels > max
        {
            return Err((
                "max_pixels",
                format!(
                    "{field} is {w}×{h}, {pixels} pixels; {name} takes {kinds} of at most {max} \
                     pixels."
                ),
            ));
        }
        if w > 0 && h > 0 {
            let too_narrow = r.min_aspect.is_some_and(|min| min.is_above(w, h));
            let too_wide = r.max_aspect.is_some_and(|max| max.is_below(w, h));
            if too_narrow || too_wide {
                let range = match (r.min_aspect, r.max_aspect) {
                    (Some(min), Some(max)) => format!("from {min} to {max}"),
                    (Some(min), None) => format!("of at least {min}"),
                    (None, Some(max)) => format!("of at most {max}"),
                    (None, None) => unreachable!("a bound was broken"),
                };
                return Err((
                    "aspect_ratio",
                    format!(
                        "{field} is {w}×{h}, an aspect ratio of {}:1; {name} takes {kinds} with \
                         an aspect ratio (width:height) {range}.",
                        decimal(u64::from(w) * 100 / u64::from(h), 100)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn plural(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "images",
        MediaKind::Video => "videos",
    }
}

/// A video post publishes its video as a video (spec 6.1): a file of another kind there would go
/// out as a photo on a network that takes both. The message when the file at `field`, the
/// post's video, is of `kind`, not a video.
pub fn not_a_video(field: &str, kind: MediaKind) -> Option<String> {
    (kind != MediaKind::Video).then(|| {
        format!(
            "{field} is {}; a post with mediaType 'video' publishes a video.",
            a_kind(kind)
        )
    })
}

fn a_kind(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "an image",
        MediaKind::Video => "a video",
    }
}

/// A type as people call it: "JPEG", "MP4", "QuickTime (MOV)".
fn type_name(mime: &str) -> &str {
    match mime {
        "image/jpeg" => "JPEG",
        "image/png" => "PNG",
        "image/gif" => "GIF",
        "image/webp" => "WebP",
        "video/mp4" => "MP4",
        "video/quicktime" => "QuickTime (MOV)",
        "video/webm" => "WebM",
        "video/x-matroska" => "Matroska (MKV)",
        other => other,
    }
}

/// `n / unit` with up to two decimals, trailing zeros dropped: 191/100 is "1.91", 300/100 "3".
fn decimal(n: u64, unit: u64) -> String {
    let whole = n / unit;
    let hundredths = (n % unit) * 100 / unit;
    if hundredths == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{hundredths:02}")
            .trim_end_matches('0')
            .to_owned()
    }
}

/// A byte count with its rounded size: "5242880 bytes (5 MB)".
fn size(bytes: u64) -> String {
    let rounded = if bytes >= GB && bytes.is_multiple_of(GB) {
        format!("{} GB", bytes / GB)
    } else if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= 1_000_000 && bytes.is_multiple_of(1_000_000) {
        format!("{} MB", bytes / 1_000_000)
    } else if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= KB {
        format!("{:.0} KB", bytes as f64 / KB as f64)
    } else {
        return format!("{bytes} bytes");
    };
    format!("{bytes} bytes ({rounded})")
}

/// A duration: "140 s", "0.5 s", "15 min", "2.001 s".
fn seconds(ms: u64) -> String {
    if ms >= MIN && ms.is_multiple_of(MIN) {
        return format!("{} min", ms / MIN);
    }
    let whole = ms / SEC;
    let rest = ms % SEC;
    if rest == 0 {
        format!("{whole} s")
    } else {
        format!("{}.{}", whole, format!("{rest:03}").trim_end_matches('0')) + " s"
    }
}

#[cfg(test)]
mod tests;
