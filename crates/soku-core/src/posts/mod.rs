//! Posts: the request of `POST /v1/posts` (spec 6.1), its validation, and the states of
//! submissions and targets (6.2).

use crate::platform::Platform;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

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
mod tests {
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
        let v = check(post(json!({"text": "hi", "platform": ["threads", {"platform": "twitter", "accountId": "a1"}]}))).unwrap();
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
        let v = check(post(json!({"mediaType": "image", "mediaUrls": ["https://a.example/1.png"], "platform": "x"}))).unwrap();
        assert_eq!(
            v.content.image_urls,
            vec!["https://a.example/1.png".to_owned()]
        );
        let v = check(post(json!({"mediaType": "video", "mediaUrls": ["https://a.example/v.mp4"], "platform": "youtube", "text": "Title"}))).unwrap();
        assert_eq!(
            v.content.video_url.as_deref(),
            Some("https://a.example/v.mp4")
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
            assert!(
                check(post(
                    json!({"mediaType": "image", "imageUrls": img(max), "platform": platform})
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
        let base = |t: &str| json!({"post": {"content": {"text": "x", "platform": "x"}}, "scheduledTime": t});
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
}
