//! What the publishing engine needs from a network: publish a post, say whether a post it may
//! already have made exists, and classify failures so the engine knows whether a retry is safe.

use crate::platform::Platform;
use crate::posts::{PlatformOptions, PostContent};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// The code of a publish error meaning the account's access token no longer works: the engine
/// refreshes the tokens once and tries again; a failed refresh marks the account
/// `needs_reconnect`.
pub const TOKEN_INVALID: &str = "token_invalid";

/// The code of a publish error meaning the platform refused the post as a duplicate of one the
/// account already made (X's 403 "duplicate content", Graph's 506, LinkedIn's
/// `DUPLICATE_POST`): `Permanent`. When an earlier attempt at the target may have reached the
/// platform, the engine takes it as a sign that that attempt published and reconciles instead
/// of failing the target.
pub const DUPLICATE_CONTENT: &str = "duplicate_content";

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
    /// What the connector stored about the account when it was connected (`ConnectedAccount::meta`:
    /// a Mastodon instance, a Bluesky PDS and DID, a LinkedIn person URN). Not secret.
    pub meta: Value,
}

impl fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .field("meta", &self.meta)
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
    /// The post as this target publishes it: `text` is the target's own text when it has one
    /// (spec 8.2), otherwise the post's. Its media URLs name the server's hosted copies when
    /// the engine has a media library (an outside URL was imported once for the whole
    /// submission).
    pub content: PostContent,
    /// `post.options` of this target's platform (spec 8.2), validated at submission.
    pub options: PlatformOptions,
    /// What each of the post's files is, in the order of `content`'s image URLs then its video
    /// URL; empty when the engine has no media library.
    pub media: Vec<crate::media::MediaRecord>,
    /// What earlier attempts at this target saved, and where to save more.
    pub progress: Progress,
    /// No attempt at this target started before this time (the submission was accepted, or
    /// became due, then): reconciliation need not look at older posts.
    pub not_before: DateTime<Utc>,
}

/// A connector's progress on one target, kept across attempts and process restarts: what a
/// long upload has reached (an uploaded media id, a container being processed), so that a retry,
/// or another process after a crash, resumes it instead of uploading the media again. Saved only
/// while the attempt holds the target's lease.
#[derive(Clone, Default)]
pub struct Progress {
    saved: Value,
    /// What this attempt saved last, once a save went through.
    latest: std::sync::Arc<std::sync::Mutex<Option<Value>>>,
    sink: Option<std::sync::Arc<dyn ProgressSink>>,
}

/// Where `Progress::save` writes (the engine: the target's row).
#[async_trait]
pub trait ProgressSink: Send + Sync {
    async fn save(&self, value: &Value) -> Result<(), PublishError>;
}

impl Progress {
    /// `saved`: what an earlier attempt saved (`Value::Null` for nothing).
    pub fn new(saved: Value, sink: std::sync::Arc<dyn ProgressSink>) -> Self {
        Self {
            saved,
            latest: Default::default(),
            sink: Some(sink),
        }
    }

    /// What an earlier attempt saved; `Value::Null` for nothing.
    pub fn saved(&self) -> &Value {
        &self.saved
    }

    /// Saves `value` for later attempts, replacing what was saved (`saved` keeps showing what
    /// this attempt started from). Without a sink (a connector tested alone) nothing is kept.
    pub async fn save(&self, value: Value) -> Result<(), PublishError> {
        match &self.sink {
            Some(sink) => {
                sink.save(&value).await?;
                *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The progress as it stands now: what this attempt saved last, else what it started from;
    /// saving to the same place. What the engine hands `Connector::find_existing` after an
    /// ambiguous failure, so that the lookup sees the markers the failed call saved (a post
    /// request "sent"), not only what the attempt started from.
    pub fn current(&self) -> Progress {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Progress {
            saved: latest.unwrap_or_else(|| self.saved.clone()),
            latest: Default::default(),
            sink: self.sink.clone(),
        }
    }
}

/// What was saved can hold credentials (YouTube's resumable session URI carries the upload's
/// authority): `Debug` shows only whether something is saved and, for an object, its top-level
/// keys, never a value.
impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("saved", &SavedShape(&self.saved))
            .finish_non_exhaustive()
    }
}

/// The shape of a saved value, without its contents.
struct SavedShape<'a>(&'a Value);

impl fmt::Debug for SavedShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("nothing"),
            Value::Object(map) => {
                f.write_str("<object with keys ")?;
                f.debug_list().entries(map.keys()).finish()?;
                f.write_str(">")
            }
            Value::Array(items) => write!(f, "<array of {}>", items.len()),
            Value::String(_) => f.write_str("<string>"),
            Value::Number(_) => f.write_str("<number>"),
            Value::Bool(_) => f.write_str("<bool>"),
        }
    }
}

/// Tokens a platform issued. `refresh_token: None` means "none issued this time": the store
/// keeps the one it had (a refresh token is never overwritten with an empty one, spec 7).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token stops working; `None` when the platform says it does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<set>"),
            )
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An account the user has just connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAccount {
    /// The platform's stable id of the account (X user id, Threads user id, LinkedIn person id,
    /// Bluesky DID, Mastodon `id@instance`).
    pub account_id: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// Non-secret facts the connector needs later (handed back in `AccountCredentials::meta`).
    pub meta: Value,
    pub tokens: TokenSet,
}

/// The start of an OAuth authorization (`POST /v1/accounts/connect`).
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// Opaque, single-use; the platform hands it back to the callback.
    pub state: String,
    /// Our callback (`GET /v1/oauth/{platform}/callback`), registered with the platform.
    pub redirect_uri: String,
    /// PKCE S256 challenge of the verifier kept with the state (for platforms that take PKCE).
    pub code_challenge: String,
    /// The connect request's body, for platform options (e.g. a Mastodon `instance`).
    pub params: Value,
}

#[derive(Clone)]
pub struct AuthorizationStart {
    /// Where to send the user.
    pub url: String,
    /// Kept (encrypted) with the state until the callback, handed back in `CodeExchange::pending`
    /// (e.g. a Mastodon instance and the app registered there).
    pub pending: Value,
}

impl fmt::Debug for AuthorizationStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationStart")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The callback's half of OAuth: trade the code for tokens and learn whose account it is.
#[derive(Clone)]
pub struct CodeExchange {
    pub code: String,
    pub redirect_uri: String,
    pub code_verifier: String,
    pub pending: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectErrorKind {
    /// This platform does not connect that way.
    Unsupported,
    /// The request is wrong (missing field, bad instance URL): 400 to the caller.
    Invalid,
    /// The platform refused: bad credentials, a used or expired code, a revoked refresh token.
    /// On refresh this means the account needs reconnecting.
    Rejected,
    /// Could not reach the platform or it failed (timeouts, 5xx, 429): try again later.
    Unavailable,
    /// The server lacks configuration for the platform (client id or secret).
    NotConfigured,
    /// Refresh only: the platform gave this account no way to refresh (e.g. LinkedIn apps
    /// without refresh tokens). The account works until its token expires, then needs
    /// reconnecting.
    NotRefreshable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub kind: ConnectErrorKind,
    pub message: String,
    /// The platform's own answer (never one holding our secrets).
    pub platform_error: Option<String>,
    /// The connect request's field at fault, when one is (`appPassword`, `instance`).
    pub field: Option<&'static str>,
    /// Tokens the platform issued before the failure was found (a refresh whose answer does not
    /// grant posting): the refresh token they replace may be spent (X and TikTok rotate it), so
    /// they are stored all the same.
    pub issued: Option<Box<TokenSet>>,
}

impl ConnectError {
    pub fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            platform_error: None,
            field: None,
            issued: None,
        }
    }
    /// See [`ConnectError::issued`].
    pub fn with_issued(mut self, tokens: TokenSet) -> Self {
        self.issued = Some(Box::new(tokens));
        self
    }
    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
    pub fn with_platform_error(mut self, raw: impl Into<String>) -> Self {
        self.platform_error = Some(raw.into());
        self
    }
    fn unsupported(what: &str) -> Self {
        Self::new(
            ConnectErrorKind::Unsupported,
            format!("This platform does not support {what}."),
        )
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How an account of a platform is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectMethod {
    /// OAuth authorization: `authorize`, then `exchange` in the callback.
    OAuth,
    /// Credentials given to us directly (Bluesky app passwords): `connect_direct`.
    Credentials,
    /// Not connectable (the simulated platforms).
    None,
}

#[async_trait]
pub trait Connector: Send + Sync + 'static {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError>;
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError>;

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::None
    }
    /// Whether accounts can be connected with this server's configuration (an OAuth app needs
    /// its client credentials); accounts already connected keep publishing either way.
    fn configured(&self) -> bool {
        true
    }
    /// The authorization URL to send the user to.
    async fn authorize(
        &self,
        _request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        Err(ConnectError::unsupported("OAuth authorization"))
    }
    async fn exchange(&self, _exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        Err(ConnectError::unsupported("OAuth authorization"))
    }
    /// Every account of this platform the authorization granted: a login that manages several
    /// (Facebook Pages, Instagram professional accounts) connects them all. By default, the one
    /// account of `exchange`. The server stores each; an empty answer is refused.
    async fn exchange_all(
        &self,
        exchange: &CodeExchange,
    ) -> Result<Vec<ConnectedAccount>, ConnectError> {
        self.exchange(exchange).await.map(|account| vec![account])
    }
    /// Connects with credentials from the connect request's body.
    async fn connect_direct(&self, _params: &Value) -> Result<ConnectedAccount, ConnectError> {
        Err(ConnectError::unsupported("connecting with credentials"))
    }
    /// New tokens for the account, from its refresh token (or, where the platform refreshes
    /// that way, its current access token). `Rejected` marks the account `needs_reconnect`.
    async fn refresh(&self, _account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        Err(ConnectError::unsupported("refreshing tokens"))
    }
    /// How long before `expires_at` tokens are refreshed.
    fn refresh_ahead(&self) -> std::time::Duration {
        std::time::Duration::from_secs(15 * 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::posts::{MediaType, PlatformOptions, PostContent};
    use serde_json::json;

    struct Discard;

    #[async_trait]
    impl ProgressSink for Discard {
        async fn save(&self, _: &Value) -> Result<(), PublishError> {
            Ok(())
        }
    }

    const SESSION: &str = "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&upload_id=ADPy-secret";

    struct Refuse;

    #[async_trait]
    impl ProgressSink for Refuse {
        async fn save(&self, _: &Value) -> Result<(), PublishError> {
            Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "progress_unsaved",
                "no",
            ))
        }
    }

    #[tokio::test]
    async fn the_current_progress_is_the_last_save_that_went_through() {
        let progress = Progress::new(json!({"step": 1}), std::sync::Arc::new(Discard));
        assert_eq!(progress.current().saved(), &json!({"step": 1}));
        progress
            .save(json!({"step": 2, "sent": true}))
            .await
            .unwrap();
        // `saved` stays what the attempt started from; `current` is what it saved.
        assert_eq!(progress.saved(), &json!({"step": 1}));
        let current = progress.current();
        assert_eq!(current.saved(), &json!({"step": 2, "sent": true}));
        // Still saving to the same place.
        current.save(json!({"step": 3})).await.unwrap();
        let refused = Progress::new(json!({"step": 1}), std::sync::Arc::new(Refuse));
        assert!(refused.save(json!({"step": 2})).await.is_err());
        assert_eq!(
            refused.current().saved(),
            &json!({"step": 1}),
            "a failed save is not current"
        );
    }

    #[test]
    fn progress_debug_shows_keys_not_values() {
        let saved = json!({
            "video_url": "https://media.test/media/med_1/film.mp4",
            "session": SESSION,
            "size": 1234,
            "final_sent": true,
        });
        let progress = Progress::new(saved, std::sync::Arc::new(Discard));
        let shown = format!("{progress:?}");
        assert!(!shown.contains("upload_id"), "{shown}");
        assert!(!shown.contains("ADPy-secret"), "{shown}");
        assert!(!shown.contains("media.test"), "{shown}");
        assert!(!shown.contains("1234"), "{shown}");
        for key in ["video_url", "session", "size", "final_sent"] {
            assert!(shown.contains(key), "{shown}");
        }
        assert!(format!("{:?}", Progress::default()).contains("nothing"));
        assert!(
            !format!(
                "{:?}",
                Progress::new(json!(SESSION), std::sync::Arc::new(Discard))
            )
            .contains("upload_id")
        );

        // Nor through the request that carries it.
        let request = PublishRequest {
            marker: "sub_1:youtube:UC".into(),
            user_id: "user_1".into(),
            submission_id: "sub_1".into(),
            target_id: "tgt_1".into(),
            platform: Platform::Youtube,
            account: AccountCredentials {
                account_id: "UC".into(),
                username: None,
                access_token: Some("ya29.token".into()),
                refresh_token: Some("1//refresh".into()),
                meta: json!({}),
            },
            content: PostContent {
                text: Some("t".into()),
                media_type: MediaType::Video,
                image_urls: vec![],
                video_url: Some("https://media.test/media/med_1/film.mp4".into()),
            },
            options: PlatformOptions::None,
            media: Vec::new(),
            progress,
            not_before: Utc::now(),
        };
        let shown = format!("{request:?}");
        assert!(shown.contains("session"), "{shown}");
        for secret in ["ADPy-secret", "ya29.token", "1//refresh"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
