//! Images a post names by URL, fetched by the server for the platforms that take uploads (X,
//! LinkedIn, Bluesky, Mastodon). Threads fetches images itself from their URL.

use async_trait::async_trait;
use soku_core::connector::PublishError;

/// An image or video, fetched and checked.
#[derive(Clone)]
pub struct Media {
    pub bytes: Vec<u8>,
    /// The type found in the bytes (never the one the server claimed).
    pub mime: &'static str,
    /// The share of the fetcher's memory budget these bytes hold, given back when the last
    /// clone is dropped.
    budget: Option<std::sync::Arc<tokio::sync::OwnedSemaphorePermit>>,
}

impl Media {
    pub fn new(bytes: Vec<u8>, mime: &'static str) -> Self {
        Self {
            bytes,
            mime,
            budget: None,
        }
    }

    /// These bytes hold `permit` of a memory budget until dropped.
    pub fn holding(mut self, permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        self.budget = Some(std::sync::Arc::new(permit));
        self
    }
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("mime", &self.mime)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// What a platform accepts.
#[derive(Debug, Clone, Copy)]
pub struct MediaLimits {
    pub max_bytes: u64,
    /// Accepted types (from `IMAGE_TYPES` / `VIDEO_TYPES`).
    pub types: &'static [&'static str],
}

pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
pub const VIDEO_TYPES: &[&str] = &[
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
];
/// Spec 8: images up to 50 MB, videos up to 500 MB; platforms narrow these.
pub const IMAGE_MAX_BYTES: u64 = 50 * 1024 * 1024;
pub const VIDEO_MAX_BYTES: u64 = 500 * 1024 * 1024;

/// Where connectors get a post's media. The server's is `fetch::SafeFetcher` (spec 8's
/// protections); tests may serve bytes from memory.
#[async_trait]
pub trait MediaSource: Send + Sync + 'static {
    /// Fetches `url` within `limits`. Errors are `PublishError`s: a URL that will never work
    /// (refused address, 4xx, wrong type, too large) is permanent (`media_unavailable`); a
    /// timeout or 5xx is retryable.
    async fn fetch(&self, url: &str, limits: &MediaLimits) -> Result<Media, PublishError>;
}

/// What every connector here refuses before any call: video (not published by these
/// connectors yet) and more images than `platform` takes in one post.
pub fn check_images_only(
    content: &soku_core::posts::PostContent,
    platform: &str,
    max_images: usize,
) -> Result<(), PublishError> {
    use soku_core::connector::FailureClass;
    if content.media_type == soku_core::posts::MediaType::Video || content.video_url.is_some() {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            format!("Video posts to {platform} are not supported yet; post text or images."),
        ));
    }
    if content.image_urls.len() > max_images {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "too_many_images",
            format!(
                "{platform} takes at most {max_images} images in a post ({} given).",
                content.image_urls.len()
            ),
        ));
    }
    Ok(())
}

/// How an error names a media URL: by its host only (a path or query may carry a signed token).
pub fn describe(url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        Some(host) => format!("the image from {host}"),
        None => "the image".to_owned(),
    }
}

/// The type of a file from its first bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |p: &[u8]| bytes.starts_with(p);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        if &bytes[8..10] == b"qt" {
            Some("video/quicktime")
        } else {
            Some("video/mp4")
        }
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // EBML: WebM declares its doctype early; anything else is Matroska.
        let head = &bytes[..bytes.len().min(64)];
        if head.windows(4).any(|w| w == b"webm") {
            Some("video/webm")
        } else {
            Some("video/x-matroska")
        }
    } else {
        None
    }
}

/// The file extension for a type, for platforms that want a file name.
pub fn extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  "), Some("video/quicktime"));
        assert_eq!(sniff(b"<html><body>not an image"), None);
        assert_eq!(sniff(b""), None);
    }
}
