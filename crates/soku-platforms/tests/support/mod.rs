//! What the connector tests share: images served from memory in place of the guarded fetcher,
//! checked the way it checks them (type from the bytes, then the limits).

use async_trait::async_trait;
use soku_core::connector::{FailureClass, PublishError};
use soku_platforms::media::{Media, MediaLimits, MediaSource, sniff};
use std::collections::HashMap;
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
