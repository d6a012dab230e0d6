//! The rules of spec 6.1 that need no accounts, applied to a `CreatePostRequest` in a fixed
//! order: the first problem found is the answer, whatever order the client's JSON had.

use super::options::parse_options;
use super::request::{CreatePostRequest, Platforms, TargetAccount, TargetItem};
use super::{
    Invalid, MIN_SCHEDULE_AHEAD_SECS, MediaType, PostContent, TargetRequest, TargetText,
    ValidatedPost, check_platform_rules,
};
use crate::platform::Platform;
use crate::request::Field;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Validates a `POST /v1/posts` body against every rule of spec 6.1 that does not need the
/// user's accounts.
pub fn validate_post(
    request: &CreatePostRequest,
    now: DateTime<Utc>,
) -> Result<ValidatedPost, Invalid> {
    if !request.raw.is_object() {
        return Err(Invalid::new(
            "body",
            "invalid_type",
            "The request body must be a JSON object.",
        ));
    }
    let post = object_field(&request.post, "post")?;
    let content = object_field(&post.content, "post.content")?;
    // A misspelt or misplaced member (`scheduled_time`, `post.scheduledTime`) would otherwise
    // be dropped: a post meant for later would be published at once.
    for (value, path, known) in [
        (&request.raw, "", &BODY_FIELDS[..]),
        (&request.raw["post"], "post", &POST_FIELDS[..]),
        (
            &request.raw["post"]["content"],
            "post.content",
            &CONTENT_FIELDS[..],
        ),
    ] {
        if let Some(members) = value.as_object() {
            Invalid::no_unknown_member(members, path, known)?;
        }
    }

    let text = optional_string(&content.text, "text", "post.content.text")?;
    let image_urls = url_list(&content.image_urls, "imageUrls", "post.content.imageUrls")?;
    let media_urls = url_list(&content.media_urls, "mediaUrls", "post.content.mediaUrls")?;
    let video_url = match optional_string(&content.video_url, "videoUrl", "post.content.videoUrl")?
    {
        Some(u) => Some(check_url(&u, "post.content.videoUrl")?),
        None => None,
    };
    let media_type = match &content.media_type {
        Field::Absent | Field::Null => {
            if video_url.is_some() {
                MediaType::Video
            } else if !image_urls.is_empty() || !media_urls.is_empty() {
                MediaType::Image
            } else {
                MediaType::Text
            }
        }
        Field::Value(s) => match s.as_str() {
            "text" => MediaType::Text,
            "image" => MediaType::Image,
            "video" => MediaType::Video,
            _ => {
                return Err(Invalid::new(
                    "post.content.mediaType",
                    "invalid_value",
                    "The 'mediaType' field must be one of: text, image, video.",
                ));
            }
        },
        Field::WrongType => {
            return Err(Invalid::new(
                "post.content.mediaType",
                "invalid_type",
                "The 'mediaType' field must be a string.",
            ));
        }
    };

    // A text post needs a text: the post's, or (spec 8.2) every target's own. Which targets
    // there are is checked after the media, so here the targets are only looked at.
    let has_text = text.as_deref().is_some_and(|t| !t.trim().is_empty())
        || every_target_has_text(&content.platform);
    let (images, video) = match media_type {
        MediaType::Text => (image_urls, video_url),
        MediaType::Image => {
            let mut all = image_urls;
            all.extend(media_urls);
            (all, video_url)
        }
        MediaType::Video => {
            // One video per post: a second one would not be published, so it is refused rather
            // than left out without a word (`videoUrl` and the same URL in `mediaUrls` is one).
            let mut videos = video_url.iter().chain(&media_urls);
            let first = videos.next().cloned();
            if let Some(i) = media_urls.iter().position(|u| Some(u) != first.as_ref()) {
                let field = format!("post.content.mediaUrls[{i}]");
                return Err(Invalid::new(
                    field.clone(),
                    "too_many",
                    format!(
                        "A video post publishes one video; '{field}' names a second one. Send \
                         each video as a post of its own."
                    ),
                ));
            }
            (image_urls, first)
        }
    };
    match media_type {
        MediaType::Text if !has_text => {
            return Err(Invalid::new(
                "post.content.text",
                "required",
                "The 'text' field is required when mediaType is 'text'.",
            ));
        }
        MediaType::Image if images.is_empty() => {
            return Err(Invalid::new(
                "post.content.imageUrls",
                "required",
                "At least one image URL ('imageUrls' or 'mediaUrls') is required when mediaType is 'image'.",
            ));
        }
        MediaType::Video if video.is_none() => {
            return Err(Invalid::new(
                "post.content.videoUrl",
                "required",
                "A video URL ('videoUrl' or 'mediaUrls') is required when mediaType is 'video'.",
            ));
        }
        _ => {}
    }
    let content_out = PostContent {
        text: text.filter(|t| !t.trim().is_empty()),
        media_type,
        image_urls: if media_type == MediaType::Image {
            images
        } else {
            Vec::new()
        },
        video_url: if media_type == MediaType::Video {
            video
        } else {
            None
        },
    };

    let targets = parse_targets(&content.platform)?;
    let mut options = match &post.options {
        Field::Absent | Field::Null => parse_options(None)?,
        Field::Value(o) => parse_options(Some(&o.0))?,
        Field::WrongType => {
            return Err(Invalid::new(
                "post.options",
                "invalid_type",
                "The 'post.options' field must be an object keyed by platform.",
            ));
        }
    };
    // The top-level `trial_reel` means `post.options.instagram.trialReel` (spec 8.2), which
    // wins when both are sent. Its own type is checked with the other top-level flags below.
    let trial_reel_flag = request.trial_reel.value().copied().unwrap_or(false);
    let mut trial_reel_from_flag = false;
    if trial_reel_flag && targets.iter().any(|t| t.platform == Platform::Instagram) {
        let instagram = options.instagram.get_or_insert_with(Default::default);
        if instagram.trial_reel.is_none() {
            instagram.trial_reel = Some(true);
            trial_reel_from_flag = true;
        }
    }
    for target in &targets {
        let own_text = target.text.as_ref();
        let text_field = match own_text {
            Some(_) => format!("{}.text", target.field),
            None => "post.content.text".to_owned(),
        };
        let published = content_out.for_target(own_text);
        if media_type == MediaType::Text && published.text.is_none() {
            return Err(Invalid::new(
                text_field,
                "required",
                "The 'text' field is required when mediaType is 'text'.",
            ));
        }
        check_platform_rules(target.platform, &published, &text_field, &options).map_err(
            |mut e| {
                if trial_reel_from_flag && e.field == "post.options.instagram.trialReel" {
                    e.field = "trial_reel".into();
                    e.message = e.message.replace("'trialReel'", "'trial_reel'");
                }
                e
            },
        )?;
    }

    let scheduled_time = match &request.scheduled_time {
        Field::Absent | Field::Null => None,
        Field::Value(s) => {
            // A leap second (":60") is refused too (`parse_rfc3339`).
            let t = crate::time::parse_rfc3339(s.trim()).ok_or_else(|| {
                Invalid::new(
                    "scheduledTime",
                    "invalid_value",
                    "The 'scheduledTime' field must be an RFC 3339 time with an offset or 'Z', e.g. 2030-01-01T12:00:00Z.",
                )
            })?;
            if t < now + chrono::Duration::seconds(MIN_SCHEDULE_AHEAD_SECS) {
                return Err(Invalid::new(
                    "scheduledTime",
                    "too_soon",
                    "The 'scheduledTime' must be at least 1 minute in the future; omit it to publish now.",
                ));
            }
            Some(t)
        }
        Field::WrongType => {
            return Err(Invalid::new(
                "scheduledTime",
                "invalid_type",
                "The 'scheduledTime' field must be a string.",
            ));
        }
    };
    let enable_repurposing = optional_bool(&request.enable_repurposing, "enableRepurposing")?;
    let trial_reel = optional_bool(&request.trial_reel, "trial_reel")?;

    Ok(ValidatedPost {
        content: content_out,
        targets,
        scheduled_time,
        post: request.raw.get("post").cloned().unwrap_or(Value::Null),
        enable_repurposing,
        trial_reel,
        options,
    })
}

/// Every element of `post.content.platform` is an object with a non-blank string `text`.
fn every_target_has_text(field: &Field<Platforms>) -> bool {
    match field {
        Field::Value(Platforms::Many(items)) => {
            !items.is_empty()
                && items.iter().all(|i| match i {
                    Field::Value(TargetItem::Account(a)) => {
                        a.text.value().is_some_and(|t| !t.trim().is_empty())
                    }
                    _ => false,
                })
        }
        _ => false,
    }
}

/// The members of the body, of `post` and of `post.content` (spec 6.1, 8.2).
const BODY_FIELDS: [&str; 4] = ["post", "scheduledTime", "enableRepurposing", "trial_reel"];
const POST_FIELDS: [&str; 2] = ["content", "options"];
const CONTENT_FIELDS: [&str; 6] = [
    "text",
    "mediaType",
    "mediaUrls",
    "imageUrls",
    "videoUrl",
    "platform",
];

fn object_field<'a, T>(field: &'a Field<T>, path: &str) -> Result<&'a T, Invalid> {
    match field {
        Field::Absent | Field::Null => Err(Invalid::new(
            path,
            "required",
            format!("The '{path}' field is required."),
        )),
        Field::Value(o) => Ok(o),
        Field::WrongType => Err(Invalid::new(
            path,
            "invalid_type",
            format!("The '{path}' field must be an object."),
        )),
    }
}

fn optional_string(
    field: &Field<String>,
    name: &str,
    path: &str,
) -> Result<Option<String>, Invalid> {
    match field {
        Field::Absent | Field::Null => Ok(None),
        Field::Value(s) => Ok(Some(s.clone())),
        Field::WrongType => Err(Invalid::new(
            path,
            "invalid_type",
            format!("The '{name}' field must be a string."),
        )),
    }
}

fn optional_bool(field: &Field<bool>, name: &str) -> Result<bool, Invalid> {
    match field {
        Field::Absent | Field::Null => Ok(false),
        Field::Value(b) => Ok(*b),
        Field::WrongType => Err(Invalid::new(
            name,
            "invalid_type",
            format!("The '{name}' field must be true or false."),
        )),
    }
}

pub(crate) fn check_url(raw: &str, path: &str) -> Result<String, Invalid> {
    let bad = || {
        Invalid::new(
            path,
            "invalid_value",
            format!("'{path}' must be an http:// or https:// URL."),
        )
    };
    let parsed = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad());
    }
    if raw.len() > 2048 {
        return Err(Invalid::new(
            path,
            "too_long",
            format!("'{path}' is longer than 2048 characters."),
        ));
    }
    Ok(raw.trim().to_owned())
}

fn url_list(
    field: &Field<Vec<Field<String>>>,
    name: &str,
    path: &str,
) -> Result<Vec<String>, Invalid> {
    match field {
        Field::Absent | Field::Null => Ok(Vec::new()),
        Field::Value(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let p = format!("{path}[{i}]");
                match v {
                    Field::Value(s) => check_url(s, &p),
                    _ => Err(Invalid::new(
                        p.clone(),
                        "invalid_type",
                        format!("'{p}' must be a string."),
                    )),
                }
            })
            .collect(),
        Field::WrongType => Err(Invalid::new(
            path,
            "invalid_type",
            format!("The '{name}' field must be an array of URLs."),
        )),
    }
}

/// A platform name where one is expected: `null` or absent is `required`, another JSON type is
/// `invalid_type`.
fn parse_platform(name: Option<&str>, missing: bool, path: &str) -> Result<Platform, Invalid> {
    match name {
        Some(s) => Platform::parse(s).ok_or_else(|| {
            Invalid::new(
                path,
                "invalid_value",
                format!(
                    "Unknown platform '{s}'. Use one of: x, threads, instagram, facebook, linkedin, tiktok, youtube, snapchat, bluesky, mastodon."
                ),
            )
        }),
        None if missing => Err(Invalid::new(path, "required", format!("'{path}' is required."))),
        None => Err(Invalid::new(path, "invalid_type", format!("'{path}' must be a platform name."))),
    }
}

fn parse_target(item: &Field<TargetItem>, path: &str) -> Result<TargetRequest, Invalid> {
    match item {
        Field::Value(TargetItem::Account(o)) => {
            if let Some(k) = o.unknown.first() {
                let field = format!("{path}.{k}");
                return Err(Invalid::new(
                    field.clone(),
                    "unknown_field",
                    format!(
                        "Unknown field '{field}'. A target takes: {}.",
                        TargetAccount::FIELDS.join(", ")
                    ),
                ));
            }
            let p_path = format!("{path}.platform");
            let platform = parse_platform(
                o.platform.value().map(String::as_str),
                o.platform.is_missing(),
                &p_path,
            )?;
            let a_path = format!("{path}.accountId");
            let account_id = match &o.account_id {
                Field::Absent | Field::Null => None,
                Field::Value(s) if !s.trim().is_empty() && s.len() <= 255 => {
                    Some(s.trim().to_owned())
                }
                Field::Value(_) => {
                    return Err(Invalid::new(
                        a_path,
                        "invalid_value",
                        "'accountId' must be 1 to 255 characters.",
                    ));
                }
                Field::WrongType => {
                    return Err(Invalid::new(
                        a_path,
                        "invalid_type",
                        "'accountId' must be a string.",
                    ));
                }
            };
            let text = match &o.text {
                Field::Absent | Field::Null => None,
                Field::Value(s) => Some(TargetText {
                    text: Some(s.clone()).filter(|t| !t.trim().is_empty()),
                }),
                Field::WrongType => {
                    return Err(Invalid::new(
                        format!("{path}.text"),
                        "invalid_type",
                        "A target's 'text' must be a string.",
                    ));
                }
            };
            Ok(TargetRequest {
                platform,
                account_id,
                field: path.to_owned(),
                text,
            })
        }
        Field::Value(TargetItem::Name(s)) => target(parse_platform(Some(s), false, path)?, path),
        other => target(parse_platform(None, other.is_missing(), path)?, path),
    }
}

fn target(platform: Platform, path: &str) -> Result<TargetRequest, Invalid> {
    Ok(TargetRequest {
        platform,
        account_id: None,
        field: path.to_owned(),
        text: None,
    })
}

fn parse_targets(field: &Field<Platforms>) -> Result<Vec<TargetRequest>, Invalid> {
    const PATH: &str = "post.content.platform";
    match field {
        Field::Absent | Field::Null => Err(Invalid::new(
            PATH,
            "required",
            "The 'platform' field is required.",
        )),
        Field::Value(Platforms::One(s)) => {
            Ok(vec![target(parse_platform(Some(s), false, PATH)?, PATH)?])
        }
        Field::Value(Platforms::Many(items)) if items.is_empty() => Err(Invalid::new(
            PATH,
            "invalid_value",
            "The 'platform' field must name at least one platform.",
        )),
        Field::Value(Platforms::Many(items)) if items.len() > 50 => Err(Invalid::new(
            PATH,
            "too_long",
            "A post can target at most 50 accounts.",
        )),
        Field::Value(Platforms::Many(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_target(v, &format!("{PATH}[{i}]")))
            .collect(),
        Field::WrongType => Err(Invalid::new(
            PATH,
            "invalid_type",
            "The 'platform' field must be a platform name or an array of platform names and {platform, accountId} objects.",
        )),
    }
}
