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

pub use soku_core::media::{
    IMAGE_MAX_BYTES, IMAGE_TYPES, VIDEO_MAX_BYTES, VIDEO_TYPES, extension, sniff_basic as sniff,
};

/// Where connectors get a post's media. The server's is `fetch::SafeFetcher` (spec 8's
/// protections); tests may serve bytes from memory.
#[async_trait]
pub trait MediaSource: Send + Sync + 'static {
    /// Fetches `url` within `limits`. Errors are `PublishError`s: a URL that will never work
    /// (refused address, 4xx, wrong type, too large) is permanent (`media_unavailable`); a
    /// timeout or 5xx is retryable.
    async fn fetch(&self, url: &str, limits: &MediaLimits) -> Result<Media, PublishError>;

    /// Opens `url` within `limits` as a stream of chunks, for files too large to hold (a video
    /// uploaded in segments). The server's hosted files stream from the media store; by default
    /// the whole file is fetched and handed over as one chunk.
    async fn stream(&self, url: &str, limits: &MediaLimits) -> Result<MediaStream, PublishError> {
        let media = self.fetch(url, limits).await?;
        let size = media.bytes.len() as u64;
        let mime = media.mime;
        let chunk = bytes::Bytes::from(media.bytes.clone());
        Ok(MediaStream {
            mime,
            size,
            chunks: Box::pin(futures_util::stream::once(async move {
                // Holds `media` (and its share of the memory budget) until the chunk is taken.
                let _held = media;
                Ok(chunk)
            })),
        })
    }
}

/// A file read chunk by chunk: its type (from its bytes), its exact size, and the chunks.
pub struct MediaStream {
    pub mime: &'static str,
    pub size: u64,
    pub chunks: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, PublishError>>,
}

impl std::fmt::Debug for MediaStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStream")
            .field("mime", &self.mime)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
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

/// How an error names an image URL: by its host only (a path or query may carry a signed token).
pub fn describe(url: &str) -> String {
    describe_as(url, "image")
}

/// How an error names a media URL, as `what` ("image", "video"): by its host only (a path or
/// query may carry a signed token).
pub fn describe_as(url: &str, what: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        Some(host) => format!("the {what} from {host}"),
        None => format!("the {what}"),
    }
}
