//! `post.options.youtube` and the text as the video resource to insert, within YouTube's
//! documented limits.

use super::{CATEGORY_ID, DESCRIPTION_MAX_BYTES, TAGS_MAX_CHARS, TITLE_MAX_CHARS};
use serde_json::{Value, json};
use soku_core::connector::{FailureClass, PublishError};
use soku_core::posts::{MediaType, PlatformOptions, PostContent, YoutubePrivacy};

/// The post's video URL: YouTube takes one video alone.
pub(super) fn check_media(content: &PostContent) -> Result<&str, PublishError> {
    if !content.image_urls.is_empty() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            "YouTube takes one video alone; this post has images.",
        ));
    }
    match content.video_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => Ok(url),
        None => Err(PublishError::new(
            FailureClass::Permanent,
            "missing_video",
            if content.media_type == MediaType::Video {
                "This YouTube post names no video."
            } else {
                "YouTube publishes videos: this post has none."
            },
        )),
    }
}

/// `<` and `>` replaced: YouTube refuses them in titles, descriptions and tags.
pub(super) fn clean(s: &str) -> String {
    s.replace('<', "‹").replace('>', "›")
}

pub(super) fn refuse(code: &str, message: String) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

/// The video resource to insert (`snippet`, `status`), checked against YouTube's limits.
pub(super) fn metadata(
    content: &PostContent,
    options: &PlatformOptions,
    url: &str,
) -> Result<Value, PublishError> {
    let options = match options {
        PlatformOptions::Youtube(o) => o.clone(),
        _ => Default::default(),
    };
    let text = content.text.as_deref().unwrap_or("").trim();
    let title = match options.title.as_deref() {
        Some(t) => {
            let t = clean(t.trim());
            let n = t.chars().count();
            if n > TITLE_MAX_CHARS {
                return Err(refuse(
                    "title_too_long",
                    format!(
                        "The YouTube title is {n} characters; YouTube allows {TITLE_MAX_CHARS}."
                    ),
                ));
            }
            t
        }
        None => {
            let line = text.lines().map(str::trim).find(|l| !l.is_empty());
            let base = line.map(str::to_owned).unwrap_or_else(|| file_title(url));
            cut_chars(&clean(&base), TITLE_MAX_CHARS)
        }
    };
    if title.trim().is_empty() {
        return Err(refuse(
            "missing_title",
            "A YouTube video needs a title (post.options.youtube.title).".to_owned(),
        ));
    }
    let description = match options.description.as_deref() {
        Some(d) => {
            let d = clean(d);
            if d.len() > DESCRIPTION_MAX_BYTES {
                return Err(refuse(
                    "description_too_long",
                    format!(
                        "The YouTube description is {} bytes; YouTube allows {DESCRIPTION_MAX_BYTES}.",
                        d.len()
                    ),
                ));
            }
            d
        }
        None => cut_bytes(&clean(text), DESCRIPTION_MAX_BYTES),
    };
    let tags: Vec<String> = options
        .tags
        .unwrap_or_default()
        .iter()
        .map(|t| clean(t.trim()))
        .filter(|t| !t.is_empty())
        .collect();
    let tags_len = tags
        .iter()
        .map(|t| t.chars().count() + if t.contains(' ') { 2 } else { 0 })
        .sum::<usize>()
        + tags.len().saturating_sub(1);
    if tags_len > TAGS_MAX_CHARS {
        return Err(refuse(
            "tags_too_long",
            format!(
                "The YouTube tags take {tags_len} characters together (with commas, and quotes \
                 around tags with spaces); YouTube allows {TAGS_MAX_CHARS}."
            ),
        ));
    }
    let privacy = match options.privacy_status.unwrap_or(YoutubePrivacy::Public) {
        YoutubePrivacy::Public => "public",
        YoutubePrivacy::Unlisted => "unlisted",
        YoutubePrivacy::Private => "private",
    };
    let mut snippet = json!({
        "title": title,
        "description": description,
        "categoryId": CATEGORY_ID,
    });
    if !tags.is_empty() {
        snippet["tags"] = json!(tags);
    }
    Ok(json!({
        "snippet": snippet,
        "status": {
            "privacyStatus": privacy,
            "selfDeclaredMadeForKids": options.made_for_kids.unwrap_or(false),
        },
    }))
}

/// A title from the file's name (`film.mp4` → `film`).
pub(super) fn file_title(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
        })
        .map(|name| {
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            stem.replace(['_', '-'], " ").trim().to_owned()
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Video".to_owned())
}

pub(super) fn cut_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

pub(super) fn cut_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use soku_core::posts::YoutubeOptions;

    fn content(text: Option<&str>) -> PostContent {
        PostContent {
            text: text.map(str::to_owned),
            media_type: MediaType::Video,
            image_urls: vec![],
            video_url: Some("https://m.test/media/med_1/my_film.mp4".into()),
        }
    }

    #[test]
    fn metadata_defaults_and_limits() {
        let url = "https://m.test/media/med_1/my_film.mp4";
        let m = metadata(
            &content(Some("First line <3\nmore")),
            &PlatformOptions::None,
            url,
        )
        .unwrap();
        assert_eq!(m["snippet"]["title"], "First line ‹3");
        assert_eq!(m["snippet"]["description"], "First line ‹3\nmore");
        assert_eq!(m["status"]["privacyStatus"], "public");
        assert_eq!(m["status"]["selfDeclaredMadeForKids"], false);
        assert!(m["snippet"].get("tags").is_none());
        let m = metadata(&content(None), &PlatformOptions::None, url).unwrap();
        assert_eq!(m["snippet"]["title"], "my film");
        let long = "x".repeat(150);
        let m = metadata(&content(Some(&long)), &PlatformOptions::None, url).unwrap();
        assert_eq!(m["snippet"]["title"].as_str().unwrap().chars().count(), 100);
        let opts = |o: YoutubeOptions| PlatformOptions::Youtube(o);
        let e = metadata(
            &content(Some("t")),
            &opts(YoutubeOptions {
                title: Some("t".repeat(101)),
                ..Default::default()
            }),
            url,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.class),
            ("title_too_long", FailureClass::Permanent)
        );
        let e = metadata(
            &content(Some("t")),
            &opts(YoutubeOptions {
                tags: Some(vec!["a b".repeat(100), "c".repeat(250)]),
                ..Default::default()
            }),
            url,
        )
        .unwrap_err();
        assert_eq!(e.code, "tags_too_long");
        let big = "é".repeat(3000);
        let m = metadata(&content(Some(&big)), &PlatformOptions::None, url).unwrap();
        assert!(m["snippet"]["description"].as_str().unwrap().len() <= 5000);
    }
}
