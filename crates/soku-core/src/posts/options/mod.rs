//! `post.options` (spec 8.2): what a network needs beyond text and media, keyed by platform.
//!
//! The request's object is read field by field (`parse_options`): every field is optional, an
//! unknown platform key or field is 400 `validation_error` with reason `unknown_field` and the
//! field's path (`post.options.instagram.postTyp`), a wrong type is `invalid_type`, a value
//! outside the allowed ones `invalid_value`, a text over its limit `too_long`.
//!
//! Options for a platform the post does not target are checked like the others, then accepted
//! and ignored: a client may keep one options object for all its posts. Only the networks with
//! options have a key; `post.options.x` is an unknown field.
//!
//! The validated `PostOptions` is kept with the submission's content and reaches each target's
//! connector as the `PlatformOptions` of the target's platform.

use crate::platform::Platform;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod parse;
pub(crate) use parse::parse_options;

/// The validated `post.options`: one entry per platform the client sent options for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PostOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub youtube: Option<YoutubeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiktok: Option<TiktokOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instagram: Option<InstagramOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook: Option<FacebookOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapchat: Option<SnapchatOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin: Option<LinkedinOptions>,
}

/// The options of one target's platform, as its connector receives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlatformOptions {
    /// None sent (or the platform has none).
    #[default]
    None,
    Youtube(YoutubeOptions),
    Tiktok(TiktokOptions),
    Instagram(InstagramOptions),
    Facebook(FacebookOptions),
    Snapchat(SnapchatOptions),
    Linkedin(LinkedinOptions),
}

impl PostOptions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The options a target on `platform` publishes with.
    pub fn for_platform(&self, platform: Platform) -> PlatformOptions {
        let o = match platform {
            Platform::Youtube => self.youtube.clone().map(PlatformOptions::Youtube),
            Platform::Tiktok => self.tiktok.clone().map(PlatformOptions::Tiktok),
            Platform::Instagram => self.instagram.clone().map(PlatformOptions::Instagram),
            Platform::Facebook => self.facebook.clone().map(PlatformOptions::Facebook),
            Platform::Snapchat => self.snapchat.clone().map(PlatformOptions::Snapchat),
            Platform::Linkedin => self.linkedin.clone().map(PlatformOptions::Linkedin),
            Platform::X | Platform::Threads | Platform::Bluesky | Platform::Mastodon => None,
        };
        o.unwrap_or_default()
    }
}

impl PlatformOptions {
    /// As JSON, in the request's field names (`{}` for none): what the simulated platforms
    /// record.
    pub fn to_json(&self) -> Value {
        let v = match self {
            PlatformOptions::None => Ok(Value::Object(Map::new())),
            PlatformOptions::Youtube(o) => serde_json::to_value(o),
            PlatformOptions::Tiktok(o) => serde_json::to_value(o),
            PlatformOptions::Instagram(o) => serde_json::to_value(o),
            PlatformOptions::Facebook(o) => serde_json::to_value(o),
            PlatformOptions::Snapchat(o) => serde_json::to_value(o),
            PlatformOptions::Linkedin(o) => serde_json::to_value(o),
        };
        v.unwrap_or(Value::Null)
    }
}

/// YouTube (`videos.insert`'s `snippet` and `status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct YoutubeOptions {
    /// 1 to 100 characters (Unicode code points, spaces around it not counted), not blank;
    /// default: the text's first line. `<` and `>` are sent as `‹` and `›`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Up to 5,000 bytes of UTF-8, each `<` or `>` counted as the 3 bytes of the `‹` or `›` it is
    /// sent as; default: the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_status: Option<YoutubePrivacy>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_for_kids: Option<bool>,
    /// Up to 500 characters together as YouTube counts them: a comma between tags, two quotes
    /// around a tag that has a space (blank tags are dropped, spaces around a tag not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// YouTube's limits on `snippet` (<https://developers.google.com/youtube/v3/docs/videos>):
/// `snippet.title` has a "maximum length of 100 characters and may contain all valid UTF-8
/// characters except < and >"; `snippet.description` a "maximum length of 5000 bytes and may
/// contain all valid UTF-8 characters except < and >"; `snippet.tags[]`: "The property value has
/// a maximum length of 500 characters", commas between tags counting and a tag with a space
/// counting its quotes. `videos.insert` answers `invalidTitle` for "an invalid or empty video
/// title" (<https://developers.google.com/youtube/v3/docs/videos/insert>, Errors). The connector
/// (`soku_platforms::youtube`) sends
/// `<` and `>` as `‹` and `›`, trims the title and the tags and drops blank tags, then refuses
/// what still breaks these limits: the options are measured here as it sends them, so that a
/// post it would refuse is refused at submission.
pub const YOUTUBE_TITLE_MAX_CHARS: usize = 100;
/// See [`YOUTUBE_TITLE_MAX_CHARS`].
pub const YOUTUBE_DESCRIPTION_MAX_BYTES: usize = 5000;
/// See [`YOUTUBE_TITLE_MAX_CHARS`].
pub const YOUTUBE_TAGS_MAX_CHARS: usize = 500;

/// A YouTube description's length as sent: UTF-8 bytes, each `<` or `>` (1 byte) sent as `‹` or
/// `›` (3 bytes).
pub fn youtube_description_bytes(description: &str) -> usize {
    description.len() + 2 * description.matches(['<', '>']).count()
}

/// YouTube tags' length as sent and as YouTube counts it: each tag trimmed (blank ones dropped)
/// in characters, 2 more for the quotes around a tag with a space, and a comma between tags.
pub fn youtube_tags_length(tags: &[String]) -> usize {
    let tags: Vec<&str> = tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    tags.iter()
        .map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 })
        .sum::<usize>()
        + tags.len().saturating_sub(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum YoutubePrivacy {
    Public,
    Unlisted,
    Private,
}

/// TikTok (Content Posting API, `post_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TiktokOptions {
    /// One of the values the creator's account allows (TikTok's `privacy_level`:
    /// `PUBLIC_TO_EVERYONE`, `MUTUAL_FOLLOW_FRIENDS`, `FOLLOWER_OF_CREATOR`, `SELF_ONLY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_level: Option<String>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_comments: Option<bool>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_duet: Option<bool>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_stitch: Option<bool>,
    /// Commercial content disclosure: paid partnership. Branded content cannot be private: not
    /// with `privacyLevel` `SELF_ONLY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branded_content: Option<bool>,
    /// Commercial content disclosure: promoting the creator's own business.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub your_brand: Option<bool>,
    /// Photo posts' title: at most 90 UTF-16 units (an emoji counts 2). A video post has none
    /// (its caption is the text, at most 2,200 UTF-16 units; a photo post's description, the
    /// text too, 4,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The `privacy_level` values of TikTok's Content Posting API
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-direct-post>,
/// `post_info.privacy_level`); which of them an account may use is known only when publishing.
pub const TIKTOK_PRIVACY_LEVELS: [&str; 4] = [
    "PUBLIC_TO_EVERYONE",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "SELF_ONLY",
];

/// Instagram (content publishing, `POST /<IG_ID>/media`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InstagramOptions {
    /// Default: a video is a reel, images a feed post (a carousel when several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_type: Option<InstagramPostType>,
    /// Reels only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_to_feed: Option<bool>,
    /// Reels only: an http(s) URL of the cover image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_url: Option<String>,
    /// Reels only; the top-level `trial_reel` flag means the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_reel: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum InstagramPostType {
    Feed,
    Reel,
    Story,
}

/// Facebook Pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FacebookOptions {
    /// Default `feed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_type: Option<FacebookPostType>,
    /// An http(s) URL to share with the post.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FacebookPostType {
    Feed,
    Reel,
    Story,
}

/// Snapchat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SnapchatOptions {
    /// Default `story`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_type: Option<SnapchatPostType>,
    /// Saved stories: up to 45 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Spotlight: up to 160 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum SnapchatPostType {
    #[default]
    Story,
    Spotlight,
    SavedStory,
}

/// LinkedIn.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LinkedinOptions {
    /// Default `PUBLIC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<LinkedinVisibility>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum LinkedinVisibility {
    Public,
    Connections,
}

/// The platform keys `post.options` takes, in the order they are checked.
pub const OPTION_PLATFORMS: [&str; 6] = [
    "youtube",
    "tiktok",
    "instagram",
    "facebook",
    "snapchat",
    "linkedin",
];
