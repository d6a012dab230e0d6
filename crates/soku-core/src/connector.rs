//! What the publishing engine needs from a network: publish a post, say whether a post it may
//! already have made exists, and classify failures so the engine knows whether a retry is safe.

use crate::platform::Platform;
use crate::posts::PostContent;
use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// A post the platform holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPost {
    pub id: String,
    pub url: Option<String>,
}

/// How a failure bears on retrying (spec 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The request certainly had no effect (429, connection refused, a 5xx the platform
    /// documents as coming before any effect): retry after a backoff, at least `retry_after`.
    Retryable { retry_after: Option<Duration> },
    /// It will not work by retrying (bad request, revoked token, content refused).
    Permanent,
    /// It may have reached the platform (timeout or reset after sending, other 5xx): the engine
    /// must ask `find_existing` before trying again.
    Ambiguous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishError {
    pub class: FailureClass,
    /// Stable snake_case, e.g. `rate_limited`, `token_expired`, `timeout`.
    pub code: String,
    pub message: String,
    /// The platform's own answer, kept on the target for the user to read.
    pub platform_error: Option<String>,
}

impl PublishError {
    pub fn new(class: FailureClass, code: &str, message: impl Into<String>) -> Self {
        Self {
            class,
            code: code.to_owned(),
            message: message.into(),
            platform_error: None,
        }
    }
    pub fn with_platform_error(mut self, raw: impl Into<String>) -> Self {
        self.platform_error = Some(raw.into());
        self
    }
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The answer to "does the post this target may have made exist?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Found(PublishedPost),
    NotFound,
    /// The platform offers no way to tell.
    CannotTell,
}

/// The account a target publishes to. Tokens are decrypted only for the call.
#[derive(Clone)]
pub struct AccountCredentials {
    pub account_id: String,
    pub username: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
}

impl fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// One publish call.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Unique per target and stable across attempts: the connector puts it where
    /// `find_existing` can look for it (a record key, an idempotency key, a hidden marker).
    pub marker: String,
    pub user_id: String,
    pub submission_id: String,
    pub target_id: String,
    pub platform: Platform,
    pub account: AccountCredentials,
    pub content: PostContent,
}

#[async_trait]
pub trait Connector: Send + Sync + 'static {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError>;
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError>;
}
