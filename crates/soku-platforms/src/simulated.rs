//! The simulated platforms behind `sk_test_` keys (spec 9). Every platform name works. What a
//! simulated platform receives is recorded in the database (`sandbox_posts`), outside the
//! engine's own bookkeeping: it is the judge of whether a post was created twice.
//!
//! Failure injection, by markers in the post's text:
//! - `[fail:rate_limit]`: the first attempt gets a 429 with `Retry-After: 1`; later ones succeed.
//! - `[fail:rate_limit:always]`: every attempt gets that 429, until the engine gives up.
//! - `[fail:server_error]`: the first attempt gets a 503 before any effect; later ones succeed.
//! - `[fail:timeout_after_send]`: the first attempt creates the post, then times out; the
//!   engine must find it with `find_existing` rather than post again.
//! - `[fail:unknown]`: the attempt times out after sending, and the platform cannot say
//!   whether the post exists: the target ends `unknown`.
//! - `[fail:token_expired]`: 401, the account's token is no longer valid (permanent).
//! - `[fail:permanent]`: 400, the platform refuses the content (permanent).
//! - `[fail:media_processing]`: the platform took the media but could not process it
//!   (permanent, `media_processing_failed`), as a real network reports a video it cannot
//!   transcode; only a post with media fails.
//!
//! What each simulated post received is recorded with its media: for every file, its hosted URL,
//! media id, kind, type, size, SHA-256, dimensions and duration (`PublishRequest::media`).
//!
//! `[fail:KIND@PLATFORM]` (e.g. `[fail:permanent@x]`) applies to that platform only.
//!
//! A simulated platform publishes what its target publishes: the target's own text when it has
//! one (spec 8.2), and records the `post.options` of its platform it received (`options` in
//! `GET /v1/sandbox/{platform}/posts`). The platform rules a real network would apply (for
//! Instagram: media required, carousel size, caption hashtags and mentions, what a story or a
//! reel takes) are checked for every target at submission (`soku_core::posts`), test mode
//! included, so a simulated platform never receives a post its network would refuse there.

use async_trait::async_trait;
use soku_core::Clock;
use soku_core::batch::GroupCommit;
use soku_core::connector::{
    Connector, Existing, FailureClass, PublishError, PublishRequest, PublishedPost,
};
use soku_core::queue::{PostStore, SandboxPost};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Simulated {
    store: Arc<dyn PostStore>,
    /// The record of create calls; calls made at once are written in one transaction.
    record: GroupCommit<SandboxPost, SandboxPost>,
    clock: Arc<dyn Clock>,
    latency: Duration,
    /// Markers whose one-time failure this process has served (the target's saved progress
    /// tells every process; this covers a connector used without a store).
    failed_once: Mutex<HashSet<(String, &'static str)>>,
}

impl Simulated {
    /// Call within a tokio runtime: the record's writer is a task.
    pub fn new(store: Arc<dyn PostStore>, clock: Arc<dyn Clock>, latency: Duration) -> Self {
        let record = {
            let store = store.clone();
            GroupCommit::spawn(256, move |posts: Arc<[SandboxPost]>| {
                let store = store.clone();
                async move { store.sandbox_create_batch(&posts).await }
            })
        };
        Self {
            store,
            record,
            clock,
            latency,
            failed_once: Mutex::new(HashSet::new()),
        }
    }

    /// Whether the one-time failure `what` is still to be served to this target, and if so,
    /// notes that it is served: in the target's progress, so that the next attempt knows it
    /// whichever node makes it (with several nodes on one database, a note in one process's
    /// memory let each node serve the failure once), and in this process.
    async fn first_time(&self, req: &PublishRequest, what: &'static str) -> bool {
        let saved = req.progress.saved()["served"].as_array();
        let served_before = saved.is_some_and(|a| a.iter().any(|v| v == what));
        let first_here = self
            .failed_once
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((req.marker.clone(), what));
        if served_before || !first_here {
            return false;
        }
        let mut served = saved.cloned().unwrap_or_default();
        served.push(what.into());
        // Not kept (the database did not answer): the failure may be served once more.
        let _ = req
            .progress
            .save(serde_json::json!({ "served": served }))
            .await;
        true
    }

    async fn create(&self, req: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let urls = req
            .content
            .image_urls
            .iter()
            .map(String::as_str)
            .chain(req.content.video_url.as_deref());
        let media: Vec<serde_json::Value> = urls
            .enumerate()
            .map(|(i, url)| match req.media.get(i) {
                Some(m) => serde_json::json!({
                    "url": url,
                    "mediaId": m.id,
                    "kind": m.facts.kind.as_str(),
                    "mimeType": m.facts.mime,
                    "size": m.facts.size,
                    "sha256": m.sha256,
                    "width": m.facts.width,
                    "height": m.facts.height,
                    "durationSeconds": m.facts.duration_ms.map(|ms| ms as f64 / 1000.0),
                }),
                None => serde_json::json!({ "url": url }),
            })
            .collect();
        let post = SandboxPost {
            id: soku_core::keys::random_id("sim_", 20),
            user_id: req.user_id.clone(),
            platform: req.platform,
            marker: req.marker.clone(),
            submission_id: req.submission_id.clone(),
            target_id: req.target_id.clone(),
            text: req.content.text.clone(),
            media_json: serde_json::to_string(&media).unwrap_or_else(|_| "[]".into()),
            options_json: req.options.to_json().to_string(),
            received_at: self.clock.now(),
            create_count: 1,
        };
        let stored = self
            .record
            .submit(post)
            .await
            .map_err(sandbox_unavailable)?;
        Ok(published(&stored))
    }
}

fn published(p: &SandboxPost) -> PublishedPost {
    PublishedPost {
        id: p.id.clone(),
        url: Some(format!("sandbox://{}/posts/{}", p.platform, p.id)),
    }
}

/// `[fail:KIND]`, or `[fail:KIND@PLATFORM]` for one platform of the post.
fn has(req: &PublishRequest, kind: &str) -> bool {
    req.content.text.as_deref().is_some_and(|t| {
        t.contains(&format!("[fail:{kind}]"))
            || t.contains(&format!("[fail:{kind}@{}]", req.platform))
    })
}

fn raw(status: u16, message: &str) -> String {
    serde_json::json!({ "status": status, "error": message, "simulated": true }).to_string()
}

#[async_trait]
impl Connector for Simulated {
    async fn publish(&self, req: &PublishRequest) -> Result<PublishedPost, PublishError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if has(req, "permanent") {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "rejected",
                "The platform refused the post.",
            )
            .with_platform_error(raw(400, "content rejected")));
        }
        if has(req, "media_processing")
            && (!req.content.image_urls.is_empty() || req.content.video_url.is_some())
        {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "media_processing_failed",
                "The platform could not process the post's media.",
            )
            .with_platform_error(raw(422, "media processing failed")));
        }
        if has(req, "token_expired") {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "token_expired",
                "The account's access token has expired; reconnect the account.",
            )
            .with_platform_error(raw(401, "invalid or expired token")));
        }
        if has(req, "rate_limit:always")
            || (has(req, "rate_limit") && self.first_time(req, "rate_limit").await)
        {
            return Err(PublishError::new(
                FailureClass::Retryable {
                    retry_after: Some(Duration::from_secs(1)),
                },
                "rate_limited",
                "The platform is rate limiting this account.",
            )
            .with_platform_error(raw(429, "too many requests; retry after 1 s")));
        }
        if has(req, "server_error") && self.first_time(req, "server_error").await {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "platform_unavailable",
                "The platform is temporarily unavailable.",
            )
            .with_platform_error(raw(503, "service unavailable")));
        }
        if has(req, "unknown") {
            self.create(req).await?;
            return Err(PublishError::new(
                FailureClass::Ambiguous,
                "timeout",
                "The platform did not answer in time.",
            )
            .with_platform_error(raw(504, "timeout after the request was sent")));
        }
        if has(req, "timeout_after_send") && self.first_time(req, "timeout_after_send").await {
            self.create(req).await?;
            return Err(PublishError::new(
                FailureClass::Ambiguous,
                "timeout",
                "The platform did not answer in time.",
            )
            .with_platform_error(raw(504, "timeout after the request was sent")));
        }
        self.create(req).await
    }

    async fn find_existing(&self, req: &PublishRequest) -> Result<Existing, PublishError> {
        if has(req, "unknown") {
            return Ok(Existing::CannotTell);
        }
        match self
            .store
            .sandbox_find(&req.user_id, req.platform, &req.marker)
            .await
        {
            Ok(Some(p)) => Ok(Existing::Found(published(&p))),
            Ok(None) => Ok(Existing::NotFound),
            Err(e) => Err(sandbox_unavailable(e)),
        }
    }
}

/// The sandbox's database did not answer: retried like a platform's outage. The database's own
/// error goes to the log, not into the target's error, which the client reads (spec 2: no
/// internals in answers).
fn sandbox_unavailable(e: impl std::fmt::Display) -> PublishError {
    tracing::warn!(error = %e, "the test-mode sandbox could not be read or written");
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "simulator_unavailable",
        "The test-mode sandbox could not record the post (a database error; see the server's log).",
    )
}
