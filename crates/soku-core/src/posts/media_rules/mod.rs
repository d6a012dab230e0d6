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

mod check;
mod tables;

use check::decimal;
pub use check::{check_with, not_a_video};

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

#[cfg(test)]
mod tests;
