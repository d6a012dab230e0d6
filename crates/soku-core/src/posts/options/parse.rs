//! Reading `post.options` as sent into a `PostOptions`, field by field, with the path of
//! the first field that is wrong.

use super::{
    FacebookOptions, InstagramOptions, LinkedinOptions, OPTION_PLATFORMS, PostOptions,
    SnapchatOptions, TIKTOK_PRIVACY_LEVELS, TiktokOptions, YOUTUBE_DESCRIPTION_MAX_BYTES,
    YOUTUBE_TAGS_MAX_CHARS, YOUTUBE_TITLE_MAX_CHARS, YoutubeOptions, youtube_description_bytes,
    youtube_tags_length,
};
use crate::posts::Invalid;
use crate::posts::caption_length;
use serde_json::{Map, Value};

/// Reads `post.options` (`options`: the object as sent; `None` when absent or `null`).
pub(crate) fn parse_options(options: Option<&Map<String, Value>>) -> Result<PostOptions, Invalid> {
    let Some(map) = options else {
        return Ok(PostOptions::default());
    };
    let root = Obj {
        path: "post.options".into(),
        map,
    };
    root.no_unknown(&OPTION_PLATFORMS)?;
    let mut out = PostOptions::default();
    if let Some(o) = root.object("youtube")? {
        o.no_unknown(&[
            "title",
            "description",
            "privacyStatus",
            "madeForKids",
            "tags",
        ])?;
        out.youtube = Some(YoutubeOptions {
            title: youtube_title(&o)?,
            description: youtube_description(&o)?,
            privacy_status: o.choice("privacyStatus", &["public", "unlisted", "private"])?,
            made_for_kids: o.bool("madeForKids")?,
            tags: youtube_tags(&o)?,
        });
    }
    if let Some(o) = root.object("tiktok")? {
        o.no_unknown(&[
            "privacyLevel",
            "allowComments",
            "allowDuet",
            "allowStitch",
            "brandedContent",
            "yourBrand",
            "title",
        ])?;
        let privacy_level = o.text("privacyLevel", None)?;
        if let Some(level) = &privacy_level
            && !TIKTOK_PRIVACY_LEVELS.contains(&level.as_str())
        {
            return Err(o.not_one_of("privacyLevel", &TIKTOK_PRIVACY_LEVELS));
        }
        out.tiktok = Some(TiktokOptions {
            privacy_level,
            allow_comments: o.bool("allowComments")?,
            allow_duet: o.bool("allowDuet")?,
            allow_stitch: o.bool("allowStitch")?,
            branded_content: o.bool("brandedContent")?,
            your_brand: o.bool("yourBrand")?,
            title: o.text("title", None)?,
        });
    }
    if let Some(o) = root.object("instagram")? {
        o.no_unknown(&["postType", "shareToFeed", "coverUrl", "trialReel"])?;
        out.instagram = Some(InstagramOptions {
            post_type: o.choice("postType", &["feed", "reel", "story"])?,
            share_to_feed: o.bool("shareToFeed")?,
            cover_url: o.url("coverUrl")?,
            trial_reel: o.bool("trialReel")?,
        });
    }
    if let Some(o) = root.object("facebook")? {
        o.no_unknown(&["postType", "link"])?;
        out.facebook = Some(FacebookOptions {
            post_type: o.choice("postType", &["feed", "reel", "story"])?,
            link: o.url("link")?,
        });
    }
    if let Some(o) = root.object("snapchat")? {
        o.no_unknown(&["postType", "title", "description"])?;
        out.snapchat = Some(SnapchatOptions {
            post_type: o.choice("postType", &["story", "spotlight", "savedStory"])?,
            title: o.text("title", Some(45))?,
            description: o.text("description", Some(160))?,
        });
    }
    if let Some(o) = root.object("linkedin")? {
        o.no_unknown(&["visibility"])?;
        out.linkedin = Some(LinkedinOptions {
            visibility: o.choice("visibility", &["PUBLIC", "CONNECTIONS"])?,
        });
    }
    Ok(out)
}

/// `post.options.youtube.title`: not blank, and at most 100 characters once trimmed, counted in
/// code points as the connector counts them (a grapheme made of several code points, such as a
/// flag or an accented letter written with a combining mark, counts each).
fn youtube_title(o: &Obj<'_>) -> Result<Option<String>, Invalid> {
    let Some(title) = o.text("title", None)? else {
        return Ok(None);
    };
    let path = o.at("title");
    let trimmed = title.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(
            path.clone(),
            "invalid_value",
            format!(
                "'{path}' is blank; YouTube needs a title. Leave it out to use the text's first \
                 line."
            ),
        ));
    }
    let length = trimmed.chars().count();
    if length > YOUTUBE_TITLE_MAX_CHARS {
        return Err(too_long(
            path.clone(),
            format!(
                "'{path}' is {length} characters (Unicode code points); YouTube allows \
                 {YOUTUBE_TITLE_MAX_CHARS}."
            ),
            YOUTUBE_TITLE_MAX_CHARS,
            length,
        ));
    }
    Ok(Some(title))
}

/// `post.options.youtube.description`: at most 5,000 bytes as sent.
fn youtube_description(o: &Obj<'_>) -> Result<Option<String>, Invalid> {
    let description = o.text("description", None)?;
    if let Some(d) = &description {
        let bytes = youtube_description_bytes(d);
        if bytes > YOUTUBE_DESCRIPTION_MAX_BYTES {
            let path = o.at("description");
            return Err(too_long(
                path.clone(),
                format!(
                    "'{path}' is {bytes} bytes of UTF-8 (each < or > counts 3, sent as ‹ or ›); \
                     YouTube allows {YOUTUBE_DESCRIPTION_MAX_BYTES}."
                ),
                YOUTUBE_DESCRIPTION_MAX_BYTES,
                bytes,
            ));
        }
    }
    Ok(description)
}

/// `post.options.youtube.tags`: at most 500 characters together, as YouTube counts them.
fn youtube_tags(o: &Obj<'_>) -> Result<Option<Vec<String>>, Invalid> {
    let tags = o.strings("tags")?;
    if let Some(t) = &tags {
        let length = youtube_tags_length(t);
        if length > YOUTUBE_TAGS_MAX_CHARS {
            let path = o.at("tags");
            return Err(too_long(
                path.clone(),
                format!(
                    "'{path}' take {length} characters together (with a comma between tags and \
                     quotes around a tag with a space); YouTube allows {YOUTUBE_TAGS_MAX_CHARS}."
                ),
                YOUTUBE_TAGS_MAX_CHARS,
                length,
            ));
        }
    }
    Ok(tags)
}

/// A `too_long` error with its limit and the measured length.
fn too_long(path: String, message: String, limit: usize, actual: usize) -> Invalid {
    let mut e = Invalid::new(path, "too_long", message);
    e.limit = Some(limit);
    e.actual = Some(actual);
    e
}

/// One options object as sent, with its path.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn at(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// The member `name`; `None` when absent or `null`.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn wrong_type(&self, name: &str, what: &str) -> Invalid {
        let path = self.at(name);
        Invalid::new(
            path.clone(),
            "invalid_type",
            format!("'{path}' must be {what}."),
        )
    }

    fn not_one_of(&self, name: &str, allowed: &[&str]) -> Invalid {
        let path = self.at(name);
        Invalid::new(
            path.clone(),
            "invalid_value",
            format!("'{path}' must be one of: {}.", allowed.join(", ")),
        )
    }

    /// The first member (in the object's order) that is not in `known`.
    fn no_unknown(&self, known: &[&str]) -> Result<(), Invalid> {
        Invalid::no_unknown_member(self.map, &self.path, known)
    }

    fn object(&self, name: &str) -> Result<Option<Obj<'a>>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                path: self.at(name),
                map,
            })),
            Some(_) => Err(self.wrong_type(name, "an object")),
        }
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong_type(name, "true or false")),
        }
    }

    /// A string of at most `max` grapheme clusters.
    fn text(&self, name: &str, max: Option<usize>) -> Result<Option<String>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => {
                if let Some(max) = max {
                    let length = caption_length(s, false);
                    if length > max {
                        let path = self.at(name);
                        let mut e = Invalid::new(
                            path.clone(),
                            "too_long",
                            format!("'{path}' is {length} characters; at most {max} are allowed."),
                        );
                        e.limit = Some(max);
                        e.actual = Some(length);
                        return Err(e);
                    }
                }
                Ok(Some(s.clone()))
            }
            Some(_) => Err(self.wrong_type(name, "a string")),
        }
    }

    fn strings(&self, name: &str) -> Result<Option<Vec<String>>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.wrong_type(&format!("{name}[{i}]"), "a string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong_type(name, "an array of strings")),
        }
    }

    /// A string among `allowed`, read as the enum `T` (whose serde names are `allowed`).
    fn choice<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        allowed: &[&str],
    ) -> Result<Option<T>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::String(s)) if allowed.contains(&s.as_str()) => {
                serde_json::from_value(v.clone())
                    .map(Some)
                    .map_err(|_| self.not_one_of(name, allowed))
            }
            Some(Value::String(_)) => Err(self.not_one_of(name, allowed)),
            Some(_) => Err(self.wrong_type(name, "a string")),
        }
    }

    fn url(&self, name: &str) -> Result<Option<String>, Invalid> {
        match self.text(name, None)? {
            None => Ok(None),
            Some(raw) => crate::posts::validate::check_url(&raw, &self.at(name)).map(Some),
        }
    }
}
