//! What the connector tests share: images served from memory in place of the guarded fetcher,
//! checked the way it checks them (type from the bytes, then the limits); videos streamed the way
//! the media store streams hosted files; and a record of the progress a connector saves.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use async_trait::async_trait;
use serde_json::Value;
use soku_core::connector::{FailureClass, ProgressSink, PublishError};
use soku_platforms::media::{Media, MediaLimits, MediaSource, MediaStream, sniff};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct MemoryMedia {
    files: HashMap<String, Vec<u8>>,
    /// The limits each fetch was asked for, in order.
    pub asked: Mutex<Vec<MediaLimits>>,
}

impl MemoryMedia {
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, Vec<u8>)>) -> Arc<Self> {
        Arc::new(Self {
            files: files.into_iter().map(|(u, b)| (u.to_owned(), b)).collect(),
            asked: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl MediaSource for MemoryMedia {
    async fn fetch(&self, url: &str, limits: &MediaLimits) -> Result<Media, PublishError> {
        self.asked.lock().unwrap().push(*limits);
        let refused =
            |why: String| PublishError::new(FailureClass::Permanent, "media_unavailable", why);
        let bytes = self
            .files
            .get(url)
            .ok_or_else(|| refused(format!("{url}: 404")))?;
        let mime = sniff(bytes).ok_or_else(|| refused(format!("{url}: unknown type")))?;
        if !limits.types.contains(&mime) {
            return Err(refused(format!("{url}: {mime} not accepted")));
        }
        if bytes.len() as u64 > limits.max_bytes {
            return Err(refused(format!("{url} is too large")));
        }
        Ok(Media::new(bytes.clone(), mime))
    }
}

/// Videos read as the media store streams hosted files: in pieces of an odd size (1,000,003
/// bytes, so that a connector's segments are cut across them); images from `MemoryMedia`. A
/// video is never fetched whole. A stream can be told to break after some bytes, as a read cut
/// by a crash would.
pub struct StreamedMedia {
    pub images: Arc<MemoryMedia>,
    videos: HashMap<String, Vec<u8>>,
    piece: usize,
    /// Each stream's video must fit the limits it was opened with (a connector that checks the
    /// type and size itself turns this off to see its own refusal).
    strict: bool,
    /// Streams opened.
    pub streams: AtomicUsize,
    pub break_after: Mutex<Option<usize>>,
}

impl StreamedMedia {
    pub fn new<'a>(
        images: Arc<MemoryMedia>,
        videos: impl IntoIterator<Item = (&'a str, Vec<u8>)>,
        strict: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            images,
            videos: videos.into_iter().map(|(u, b)| (u.to_owned(), b)).collect(),
            piece: 1_000_003,
            strict,
            streams: AtomicUsize::new(0),
            break_after: Mutex::new(None),
        })
    }

    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl MediaSource for StreamedMedia {
    async fn fetch(&self, url: &str, limits: &MediaLimits) -> Result<Media, PublishError> {
        assert!(
            !self.videos.contains_key(url),
            "a video is never fetched whole"
        );
        self.images.fetch(url, limits).await
    }

    async fn stream(&self, url: &str, limits: &MediaLimits) -> Result<MediaStream, PublishError> {
        let Some(bytes) = self.videos.get(url) else {
            return self.images.stream(url, limits).await;
        };
        self.streams.fetch_add(1, Ordering::Relaxed);
        let mime = sniff(bytes).unwrap();
        if self.strict {
            assert!(limits.types.contains(&mime), "{mime} in {:?}", limits.types);
            assert!(bytes.len() as u64 <= limits.max_bytes);
        }
        let limit = self.break_after.lock().unwrap().take();
        let mut pieces: Vec<Result<bytes::Bytes, PublishError>> = Vec::new();
        let mut sent = 0;
        for c in bytes.chunks(self.piece) {
            if limit.is_some_and(|l| sent >= l) {
                pieces.push(Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "media_unavailable",
                    "the read broke off",
                )));
                break;
            }
            pieces.push(Ok(bytes::Bytes::copy_from_slice(c)));
            sent += c.len();
        }
        Ok(MediaStream {
            mime,
            size: bytes.len() as u64,
            chunks: Box::pin(futures_util::stream::iter(pieces)),
        })
    }
}

/// Records what a connector saves as its progress, in order, as the engine's target row keeps
/// it.
#[derive(Default)]
pub struct Saves(Mutex<Vec<Value>>);

#[async_trait]
impl ProgressSink for Saves {
    async fn save(&self, value: &Value) -> Result<(), PublishError> {
        self.0.lock().unwrap().push(value.clone());
        Ok(())
    }
}

impl Saves {
    pub fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }

    pub fn last(&self) -> Value {
        self.all().last().cloned().unwrap_or(Value::Null)
    }
}

/// Follows the authorization URL as the user who approves (a 302 to the callback); the
/// callback's query.
pub async fn approve(url: &str) -> (reqwest::StatusCode, HashMap<String, String>) {
    let (status, location) = follow(url).await;
    (status, query_of(location.as_ref()))
}

/// `approve`, checking that the platform sent the user to `callback`.
pub async fn approve_at(
    callback: &str,
    url: &str,
) -> (reqwest::StatusCode, HashMap<String, String>) {
    let (status, location) = follow(url).await;
    if let Some(l) = &location {
        let at = format!("{}{}", l.origin().ascii_serialization(), l.path());
        assert_eq!(at, callback, "the platform sent the user elsewhere");
    }
    (status, query_of(location.as_ref()))
}

async fn follow(url: &str) -> (reqwest::StatusCode, Option<url::Url>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(url).send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| url::Url::parse(l).unwrap());
    (r.status(), location)
}

fn query_of(location: Option<&url::Url>) -> HashMap<String, String> {
    location.map_or_else(HashMap::new, |l| l.query_pairs().into_owned().collect())
}

/// The seconds from now to `tokens`' expiry; that expiry must come after the connector's
/// refresh-ahead margin, so that the refresher renews the token before it runs out.
pub fn lifetime_left(tokens: &soku_core::connector::TokenSet, ahead: std::time::Duration) -> i64 {
    let left = tokens.expires_at.expect("an expiry") - chrono::Utc::now();
    assert!(
        left.to_std().unwrap() > ahead,
        "{left} left, refreshed {ahead:?} ahead"
    );
    left.num_seconds()
}
