//! The body of `POST /v1/posts` (spec 6.1), as the client sent it. `validate_post` turns it into
//! a `ValidatedPost` or names the first problem; with the `openapi` feature these types are also
//! the request's schema in the OpenAPI document.

#[cfg(feature = "openapi")]
use super::{MediaType, PostOptions};
use crate::request::{Field, Lenient, object_from_json};
use serde::Deserialize;
use serde_json::Value;

/// The body of `POST /v1/posts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(from = "Value", rename_all = "camelCase")]
pub struct CreatePostRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = PostRequest))]
    pub post: Field<PostRequest>,
    /// RFC 3339 with an offset or `Z`, at least 1 minute ahead; omit to publish now.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub scheduled_time: Field<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub enable_repurposing: Field<bool>,
    #[serde(rename = "trial_reel")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub trial_reel: Field<bool>,
    /// The body as sent: the idempotency key's request hash, and the `post` object kept with
    /// the submission.
    #[serde(skip)]
    pub raw: Value,
}

impl From<Value> for CreatePostRequest {
    fn from(raw: Value) -> Self {
        Self {
            post: Field::member(&raw, "post"),
            scheduled_time: Field::member(&raw, "scheduledTime"),
            enable_repurposing: Field::member(&raw, "enableRepurposing"),
            trial_reel: Field::member(&raw, "trial_reel"),
            raw,
        }
    }
}

/// The `post` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = PostContentRequest, required = true))]
    #[serde(default)]
    pub content: Field<PostContentRequest>,
    /// What each network needs beyond text and media, keyed by platform (spec 8.2). Every field
    /// is optional; unknown platforms or fields are refused. Options for a platform the post
    /// does not target are checked, then ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<PostOptions>))]
    #[serde(default)]
    pub options: Field<JsonObject>,
}

/// A JSON object as sent, read member by member by its validator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonObject(pub serde_json::Map<String, Value>);

impl Lenient for JsonObject {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(JsonObject(map)),
            _ => None,
        }
    }
}

/// What to publish, and where.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PostContentRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub text: Field<String>,
    /// Inferred from the media when omitted.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<MediaType>))]
    #[serde(default)]
    pub media_type: Field<String>,
    /// Images for an image post, or the video of a video post.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    #[serde(default)]
    pub media_urls: Field<Vec<Field<String>>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    #[serde(default)]
    pub image_urls: Field<Vec<Field<String>>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub video_url: Field<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Platforms, required = true))]
    #[serde(default)]
    pub platform: Field<Platforms>,
}

/// A platform name, or an array of platform names and `{"platform", "accountId"}` objects.
/// `twitter` means `x`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", serde(untagged))]
pub enum Platforms {
    One(String),
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<TargetItem>))]
    Many(Vec<Field<TargetItem>>),
}

/// One target: a platform name (its default account), or a platform and one of its accounts.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", serde(untagged))]
pub enum TargetItem {
    Name(String),
    Account(TargetAccount),
}

/// A platform and the `accountId` of one of the caller's accounts on it, and optionally the
/// target's own `text`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TargetAccount {
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    #[serde(default)]
    pub platform: Field<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub account_id: Field<String>,
    /// This target's own text: replaces `post.content.text` for this target only (spec 8.2).
    /// The target's platform rules apply to it. An empty string: no text on this target.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub text: Field<String>,
    /// Members other than these three: refused (a misspelt
    /// `accountID` would otherwise publish to the platform's default account).
    #[serde(skip)]
    pub unknown: Vec<String>,
}

impl TargetAccount {
    /// The members a target object takes.
    pub const FIELDS: [&'static str; 3] = ["platform", "accountId", "text"];
}

impl Lenient for PostRequest {
    fn from_json(value: Value) -> Option<Self> {
        object_from_json(value)
    }
}

impl Lenient for PostContentRequest {
    fn from_json(value: Value) -> Option<Self> {
        object_from_json(value)
    }
}

impl Lenient for TargetAccount {
    fn from_json(value: Value) -> Option<Self> {
        let unknown: Vec<String> = value
            .as_object()?
            .keys()
            .filter(|k| !Self::FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut target: Self = object_from_json(value)?;
        target.unknown = unknown;
        Some(target)
    }
}

impl Lenient for Platforms {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Platforms::One(s)),
            Value::Array(_) => Lenient::from_json(value).map(Platforms::Many),
            _ => None,
        }
    }
}

impl Lenient for TargetItem {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(TargetItem::Name(s)),
            Value::Object(_) => TargetAccount::from_json(value).map(TargetItem::Account),
            _ => None,
        }
    }
}
