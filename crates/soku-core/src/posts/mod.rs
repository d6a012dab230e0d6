//! Posts: the request of `POST /v1/posts` (spec 6.1), its validation, and the states of
//! submissions and targets (6.2).

use crate::platform::Platform;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod media_rules;
mod options;
mod request;
mod rules;
mod validate;

pub use options::{
    FacebookOptions, FacebookPostType, InstagramOptions, InstagramPostType, LinkedinOptions,
    LinkedinVisibility, OPTION_PLATFORMS, PlatformOptions, PostOptions, SnapchatOptions,
    SnapchatPostType, TIKTOK_PRIVACY_LEVELS, TiktokOptions, YOUTUBE_DESCRIPTION_MAX_BYTES,
    YOUTUBE_TAGS_MAX_CHARS, YOUTUBE_TITLE_MAX_CHARS, YoutubeOptions, YoutubePrivacy,
    youtube_description_bytes, youtube_tags_length,
};
pub use request::{
    CreatePostRequest, JsonObject, Platforms, PostContentRequest, PostRequest, TargetAccount,
    TargetItem,
};
pub(crate) use rules::check_platform_rules;
pub use rules::{
    BLUESKY_MAX_TEXT_BYTES, INSTAGRAM_MAX_HASHTAGS, INSTAGRAM_MAX_MENTIONS,
    TIKTOK_PHOTO_DESCRIPTION_MAX_UTF16, TIKTOK_PHOTO_TITLE_MAX_UTF16,
    TIKTOK_VIDEO_CAPTION_MAX_UTF16, caption_length, count_tags, facebook_post_type,
    instagram_post_type, threads_text_length,
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

impl PostContent {
    /// The content a target publishes: `text` is the target's own text when it has one
    /// (spec 8.2), the post's otherwise.
    pub fn for_target(&self, text: Option<&TargetText>) -> PostContent {
        match text {
            None => self.clone(),
            Some(t) => PostContent {
                text: t.text.clone(),
                ..self.clone()
            },
        }
    }
}

/// What the submission keeps as its content (`NewSubmission::content_json`): the normalised
/// content and the validated `post.options`. Stored content written before options existed
/// (a bare `PostContent`) reads with no options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredContent {
    #[serde(flatten)]
    pub content: PostContent,
    #[serde(default, skip_serializing_if = "PostOptions::is_empty")]
    pub options: PostOptions,
}

/// A target's own text (spec 8.2: `{"platform", "accountId", "text"}`), which replaces
/// `post.content.text` for that target only. `text: None`: the target was sent with an empty
/// (or blank) `text` and publishes no text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetText {
    pub text: Option<String>,
}

impl TargetText {
    /// As stored with the target (`queue::NewTarget::text`): an empty string for no text.
    pub fn stored(&self) -> String {
        self.text.clone().unwrap_or_default()
    }

    /// From the stored form.
    pub fn from_stored(stored: &str) -> Self {
        Self {
            text: Some(stored.to_owned()).filter(|t| !t.trim().is_empty()),
        }
    }
}

/// One target as the client asked for it, before account resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRequest {
    pub platform: Platform,
    pub account_id: Option<String>,
    /// The JSON path of this element, for error details.
    pub field: String,
    /// The target's own text, when the element carried a `text` member.
    pub text: Option<TargetText>,
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
    /// `post.options`, validated; the top-level `trial_reel` is in `options.instagram` as
    /// `trialReel` when the post targets Instagram.
    pub options: PostOptions,
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
    /// For a platform's rule: which one (`max_hashtags`, `reel_only`, ...).
    pub rule: Option<&'static str>,
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
            rule: None,
        }
    }

    /// 400 `unknown_field` for the first member of `members` (the object at `path`; `""` for
    /// the body) that is not in `known`, naming what the object takes. A misspelt member is
    /// refused rather than ignored: ignored, `scheduled_time` would publish at once.
    pub(crate) fn no_unknown_member(
        members: &serde_json::Map<String, Value>,
        path: &str,
        known: &[&str],
    ) -> Result<(), Invalid> {
        let Some(unknown) = members.keys().find(|k| !known.contains(&k.as_str())) else {
            return Ok(());
        };
        let (field, what) = if path.is_empty() {
            (unknown.clone(), "The body".to_owned())
        } else {
            (format!("{path}.{unknown}"), format!("'{path}'"))
        };
        Err(Invalid::new(
            field.clone(),
            "unknown_field",
            format!(
                "Unknown field '{field}'. {what} takes: {}.",
                known.join(", ")
            ),
        ))
    }

    fn rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
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
        if let Some(r) = self.rule {
            d["rule"] = json!(r);
        }
        d
    }
}

/// Scheduled posts must be at least this far in the future.
pub const MIN_SCHEDULE_AHEAD_SECS: i64 = 60;

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
