//! Media imports (images a post names by URL, fetched by `fetch::SafeFetcher` for the
//! connectors that upload them), counted process-wide for the server's `/metrics`: a
//! fetcher is built with the connectors, far from the metrics, so the count is a static.
//! Failures are counted by the fetcher's own fixed error codes; anything else is `other`.

use crate::fetch::{
    MEDIA_FETCH_FAILED, MEDIA_TOO_LARGE, MEDIA_TYPE_NOT_ALLOWED, MEDIA_UNAVAILABLE,
};
use crate::media::Media;
use soku_core::connector::PublishError;
use std::sync::atomic::{AtomicU64, Ordering};

/// The failure codes counted, in `MediaImports::failed`'s order.
pub const FAILURE_CODES: [&str; 5] = [
    MEDIA_UNAVAILABLE,
    MEDIA_FETCH_FAILED,
    MEDIA_TOO_LARGE,
    MEDIA_TYPE_NOT_ALLOWED,
    "other",
];

pub struct MediaImports {
    imported: AtomicU64,
    bytes: AtomicU64,
    failed: [AtomicU64; FAILURE_CODES.len()],
}

/// Every `SafeFetcher` of this process counts here.
pub static MEDIA_IMPORTS: MediaImports = MediaImports {
    imported: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    failed: [const { AtomicU64::new(0) }; FAILURE_CODES.len()],
};

impl MediaImports {
    pub fn record(&self, result: &Result<Media, PublishError>) {
        match result {
            Ok(media) => {
                self.imported.fetch_add(1, Ordering::Relaxed);
                self.bytes
                    .fetch_add(media.bytes.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                let i = FAILURE_CODES
                    .iter()
                    .position(|c| *c == e.code)
                    .unwrap_or(FAILURE_CODES.len() - 1);
                self.failed[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Media imported, their bytes, and failures by code (every code, zeros included).
    pub fn snapshot(&self) -> (u64, u64, Vec<(&'static str, u64)>) {
        let failed = FAILURE_CODES
            .iter()
            .zip(&self.failed)
            .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
            .collect();
        (
            self.imported.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            failed,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soku_core::connector::FailureClass;

    #[test]
    fn counts_imports_and_failures_by_fixed_code() {
        let m = MediaImports {
            imported: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: [const { AtomicU64::new(0) }; FAILURE_CODES.len()],
        };
        m.record(&Ok(Media::new(vec![0; 10], "image/png")));
        let fail = |code: &str| Err(PublishError::new(FailureClass::Permanent, code, "no"));
        m.record(&fail(MEDIA_TOO_LARGE));
        m.record(&fail("something a platform said"));
        let (imported, bytes, failed) = m.snapshot();
        assert_eq!((imported, bytes), (1, 10));
        assert!(failed.contains(&(MEDIA_TOO_LARGE, 1)));
        assert!(failed.contains(&("other", 1)));
        assert!(failed.contains(&(MEDIA_UNAVAILABLE, 0)));
    }
}
