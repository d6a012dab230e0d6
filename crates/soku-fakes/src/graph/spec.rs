//! What the fake serves, as Meta's codegen specs name it: the calls with the parameters each
//! accepts, and the fields each object can answer. `tests/graph/specs.rs` checks both against
//! the extract of the specs.

/// Parameters the specs never list but every call takes.
pub const GENERIC_PARAMS: &[&str] = &[
    "access_token",
    "fields",
    "limit",
    "after",
    "before",
    "appsecret_proof",
];

/// A parameter's kind as the fake parses it; the drift test checks it against the spec's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any string (spec `string`).
    Str,
    /// `true` / `false` (spec `bool`).
    Bool,
    /// A decimal number (spec `unsigned int`, `int`).
    UInt,
    /// Unix seconds (spec `datetime`; the API also takes other forms, the fake does not).
    DateTime,
    /// A JSON array, a comma separated list, or indexed `name[n]` parameters (spec `list<...>`).
    List,
    /// A JSON object (spec `map`, `Object`).
    Map,
    /// One of the values of the spec's enum type.
    Enum,
}

/// One Graph call the fake serves, as the codegen specs name it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The spec file (node type) the call is in.
    pub spec_node: &'static str,
    pub method: &'static str,
    /// The edge, or `#get` for a read of the node itself.
    pub endpoint: &'static str,
    /// The parameters the fake accepts besides [`GENERIC_PARAMS`].
    pub params: &'static [(&'static str, Kind)],
}

const fn call(
    spec_node: &'static str,
    method: &'static str,
    endpoint: &'static str,
    params: &'static [(&'static str, Kind)],
) -> Call {
    Call {
        spec_node,
        method,
        endpoint,
        params,
    }
}

/// Every call the fake serves, with the parameters it accepts. The fake refuses any other
/// parameter, so this table is exactly what it takes; `tests/graph.rs` checks it against the
/// specs. (OAuth calls are not in the specs; see `oauth_access_token`.)
pub const CALLS: &[Call] = &[
    call("User", "GET", "#get", &[]),
    call("User", "GET", "accounts", &[]),
    call("Page", "GET", "#get", &[]),
    call(
        "Page",
        "POST",
        "feed",
        &[
            ("message", Kind::Str),
            ("link", Kind::Str),
            ("published", Kind::Bool),
            ("scheduled_publish_time", Kind::DateTime),
            ("attached_media", Kind::List),
            ("unpublished_content_type", Kind::Enum),
        ],
    ),
    call(
        "Page",
        "POST",
        "photos",
        &[
            ("url", Kind::Str),
            ("caption", Kind::Str),
            ("published", Kind::Bool),
            ("temporary", Kind::Bool),
        ],
    ),
    call(
        "Page",
        "POST",
        "videos",
        &[
            ("file_url", Kind::Str),
            ("description", Kind::Str),
            ("title", Kind::Str),
            ("published", Kind::Bool),
        ],
    ),
    call("Page", "GET", "posts", &[("limit", Kind::UInt)]),
    call("Page", "GET", "published_posts", &[("limit", Kind::UInt)]),
    call("Page", "GET", "feed", &[("limit", Kind::UInt)]),
    call("Page", "GET", "videos", &[]),
    call(
        "Page",
        "POST",
        "video_reels",
        &[
            ("upload_phase", Kind::Enum),
            ("video_id", Kind::Str),
            ("video_state", Kind::Enum),
            ("description", Kind::Str),
            ("title", Kind::Str),
        ],
    ),
    call(
        "Page",
        "GET",
        "video_reels",
        &[("since", Kind::DateTime), ("until", Kind::DateTime)],
    ),
    call(
        "Page",
        "POST",
        "video_stories",
        &[
            ("upload_phase", Kind::Enum),
            ("video_id", Kind::Str),
            ("video_state", Kind::Enum),
        ],
    ),
    call("Page", "POST", "photo_stories", &[("photo_id", Kind::Str)]),
    call(
        "Page",
        "GET",
        "stories",
        &[("since", Kind::DateTime), ("until", Kind::DateTime)],
    ),
    call("PagePost", "GET", "#get", &[]),
    call("Photo", "GET", "#get", &[]),
    call("AdVideo", "GET", "#get", &[]),
    call("IGUser", "GET", "#get", &[]),
    call(
        "IGUser",
        "POST",
        "media",
        &[
            ("image_url", Kind::Str),
            ("video_url", Kind::Str),
            ("media_type", Kind::Str),
            ("is_carousel_item", Kind::Bool),
            ("children", Kind::List),
            ("caption", Kind::Str),
            ("share_to_feed", Kind::Bool),
            ("cover_url", Kind::Str),
            ("thumb_offset", Kind::Str),
            ("trial_params", Kind::Map),
            ("alt_text", Kind::Str),
            ("audio_name", Kind::Str),
            ("collaborators", Kind::List),
            ("location_id", Kind::Str),
        ],
    ),
    call(
        "IGUser",
        "POST",
        "media_publish",
        &[("creation_id", Kind::UInt)],
    ),
    call(
        "IGUser",
        "GET",
        "content_publishing_limit",
        &[("since", Kind::DateTime)],
    ),
    call(
        "IGUser",
        "GET",
        "media",
        &[("since", Kind::DateTime), ("until", Kind::DateTime)],
    ),
    call("IGUser", "GET", "stories", &[]),
    call("IGMedia", "GET", "#get", &[]),
    call("ShadowIGMediaBuilder", "GET", "#get", &[]),
];

/// The fields the fake can return for each object type (spec type name → field names). A
/// `fields` parameter naming anything else is refused, as Graph refuses a nonexisting field.
pub const OBJECT_FIELDS: &[(&str, &[&str])] = &[
    ("User", &["id", "name"]),
    (
        "Page",
        &[
            "id",
            "name",
            "category",
            "access_token",
            "instagram_business_account",
        ],
    ),
    ("IGUser", &["id", "username", "name", "profile_picture_url"]),
    (
        "IGMedia",
        &[
            "id",
            "caption",
            "timestamp",
            "permalink",
            "media_type",
            "media_product_type",
            "shortcode",
            "username",
            "media_url",
            "owner",
        ],
    ),
    ("ShadowIGMediaBuilder", &["id", "status", "status_code"]),
    ("ContentPublishingLimitResponse", &["config", "quota_usage"]),
    (
        "PagePost",
        &["id", "message", "created_time", "permalink_url"],
    ),
    ("Photo", &["id", "created_time"]),
    (
        "AdVideo",
        &[
            "id",
            "status",
            "description",
            "title",
            "created_time",
            "permalink_url",
            "published",
        ],
    ),
    (
        "VideoStatus",
        &[
            "video_status",
            "uploading_phase",
            "processing_phase",
            "publishing_phase",
        ],
    ),
    ("VideoStatusUploadingPhase", &["status"]),
    ("VideoStatusProcessingPhase", &["status", "errors"]),
    ("VideoStatusPublishingPhase", &["status", "publish_status"]),
    ("VideoStatusError", &["code", "message"]),
    (
        "Stories",
        &[
            "post_id",
            "status",
            "creation_time",
            "media_type",
            "media_id",
            "url",
        ],
    ),
];

/// Fields an edge adds to its rows that are not fields of the row's type. `tasks` is not a
/// `Page` field in the specs; the accounts edge returns it: documented row (Photo Uploads guide)
/// `{"access_token","category","category_list","name","id","tasks":["ANALYZE","ADVERTISE",
/// "MODERATE","CREATE_CONTENT","MANAGE"]}`.
pub const EDGE_EXTRA_FIELDS: &[(&str, &str, &[&str])] = &[("User", "accounts", &["tasks"])];

pub(super) fn object_fields(spec_type: &str) -> &'static [&'static str] {
    OBJECT_FIELDS
        .iter()
        .find(|(t, _)| *t == spec_type)
        .map(|(_, f)| *f)
        .unwrap_or(&[])
}

pub(super) fn call_params(spec_node: &str, method: &str, endpoint: &str) -> Option<&'static Call> {
    CALLS
        .iter()
        .find(|c| c.spec_node == spec_node && c.method == method && c.endpoint == endpoint)
}
