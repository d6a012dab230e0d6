//! Posts: the request of `POST /v1/posts` (spec 6.1), its validation, and the states of
//! submissions and targets (6.2).

use crate::platform::Platform;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

pub mod media_rules;
mod request;
mod validate;

pub use request::{
    CreatePostRequest, Platforms, PostContentRequest, PostRequest, TargetAccount, TargetItem,
};
pub use validate::validate_post;

/// `text`, `image` or `video`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Text,
    Image,
    Video,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Text => "text",
            MediaType::Image => "image",
            MediaType::Video => "video",
        }
    }
}

/// What is published, normalised: images from `imageUrls` (and `mediaUrls` for image posts),
/// the video from `videoUrl` (or `mediaUrls` for video posts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostContent {
    pub text: Option<String>,
    pub media_type: MediaType,
    pub image_urls: Vec<String>,
    pub video_url: Option<String>,
}

/// One target as the client asked for it, before account resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRequest {
    pub platform: Platform,
    pub account_id: Option<String>,
    /// The JSON path of this element, for error details.
    pub field: String,
}

#[derive(Debug, Clone)]
pub struct ValidatedPost {
    pub content: PostContent,
    pub targets: Vec<TargetRequest>,
    pub scheduled_time: Option<DateTime<Utc>>,
    /// The request's `post` object as sent, kept with the submission.
    pub post: Value,
    pub enable_repurposing: bool,
    pub trial_reel: bool,
}

/// A rejected request: 400 `validation_error` with these details.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub reason: &'static str,
    pub message: String,
    pub platform: Option<Platform>,
    pub limit: Option<usize>,
    pub actual: Option<usize>,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason,
            message: message.into(),
            platform: None,
            limit: None,
            actual: None,
        }
    }

    fn on(mut self, platform: Platform, limit: Option<usize>, actual: Option<usize>) -> Self {
        self.platform = Some(platform);
        self.limit = limit;
        self.actual = actual;
        self
    }

    /// `details` of the envelope.
    pub fn details(&self) -> Value {
        let mut d = json!({ "field": self.field, "reason": self.reason });
        if let Some(p) = self.platform {
            d["platform"] = json!(p.as_str());
        }
        if let Some(l) = self.limit {
            d["limit"] = json!(l);
        }
        if let Some(a) = self.actual {
            d["actual"] = json!(a);
        }
        d
    }
}

/// Scheduled posts must be at least this far in the future.
pub const MIN_SCHEDULE_AHEAD_SECS: i64 = 60;

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

pub(crate) fn check_platform_rules(
    platform: Platform,
    content: &PostContent,
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
    if let Some(text) = &content.text
        && let Some(max) = rules.max_text
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
                "post.content.text",
                "too_long",
                format!("The {what} is {measured} characters; {name} allows {max}."),
            )
            .on(platform, Some(max), Some(measured)));
        }
        if platform == Platform::Bluesky && text.len() > BLUESKY_MAX_TEXT_BYTES {
            let (max, bytes) = (BLUESKY_MAX_TEXT_BYTES, text.len());
            return Err(Invalid::new(
                "post.content.text",
                "too_long",
                format!("The text is {bytes} bytes (UTF-8); {name} allows {max}."),
            )
            .on(platform, Some(max), Some(bytes)));
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
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    Scheduled,
    Queued,
    Publishing,
    Published,
    Failed,
    Unknown,
    Canceled,
}

impl TargetStatus {
    pub const ALL: [TargetStatus; 7] = [
        Self::Scheduled,
        Self::Queued,
        Self::Publishing,
        Self::Published,
        Self::Failed,
        Self::Unknown,
        Self::Canceled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Canceled => "canceled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Published | Self::Failed | Self::Unknown | Self::Canceled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionStatus {
    Scheduled,
    Queued,
    Publishing,
    Published,
    PartiallyPublished,
    Failed,
    Canceled,
}

impl SubmissionStatus {
    pub const ALL: [SubmissionStatus; 7] = [
        Self::Scheduled,
        Self::Queued,
        Self::Publishing,
        Self::Published,
        Self::PartiallyPublished,
        Self::Failed,
        Self::Canceled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::PartiallyPublished => "partially_published",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// A submission's status, from its targets'.
    pub fn from_targets(targets: &[TargetStatus]) -> Self {
        use TargetStatus as T;
        if targets.is_empty() || targets.iter().all(|t| *t == T::Canceled) {
            return Self::Canceled;
        }
        let open: Vec<_> = targets.iter().filter(|t| !t.is_terminal()).collect();
        if !open.is_empty() {
            let started = targets
                .iter()
                .any(|t| t.is_terminal() || *t == T::Publishing);
            return if started {
                Self::Publishing
            } else if open.iter().all(|t| **t == T::Scheduled) {
                Self::Scheduled
            } else {
                Self::Queued
            };
        }
        let published = targets.iter().filter(|t| **t == T::Published).count();
        if published == targets.len() {
            Self::Published
        } else if published > 0 {
            Self::PartiallyPublished
        } else {
            Self::Failed
        }
    }
}

#[cfg(test)]
mod tests;
