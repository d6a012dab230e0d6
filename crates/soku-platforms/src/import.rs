//! Imports (spec 8.1, `POST /v1/media` and the outside URLs of posts): a file fetched by URL and
//! handed over as a stream of bytes, to be written to the media store as it arrives, never held
//! whole in memory.
//!
//! The same protections as `fetch::SafeFetcher` (read its module documentation): the URL, every
//! address its name resolves to and every redirect are checked against the `NetPolicy`; a
//! `Content-Length` above the limit is refused before the body is read; the body is cut off at
//! the limit whatever was declared. On top: the whole import is bounded by a total timeout and
//! each read by an idle timeout, so a server that stops sending (or trickles) ends the import
//! with `timeout` instead of holding it. Failures carry spec 8.1's reasons.

use crate::fetch::{MAX_REDIRECTS, host_of, policy_refusal};
use crate::net::NetPolicy;
use bytes::Bytes;
use futures_util::Stream;
use std::error::Error as _;
use std::time::Duration;

/// Spec 8.1's `details.reason` of a failed import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFailure {
    Unreachable,
    TooLarge,
    ForbiddenAddress,
    Timeout,
}

impl ImportFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::TooLarge => "too_large",
            Self::ForbiddenAddress => "forbidden_address",
            Self::Timeout => "timeout",
        }
    }
}

/// Why an import failed; the message names the URL's host only (a path or query may carry a
/// signed token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ImportError {
    pub reason: ImportFailure,
    pub message: String,
}

impl ImportError {
    fn new(reason: ImportFailure, message: String) -> Self {
        Self { reason, message }
    }
}

/// Fetches files by URL for the media store.
#[derive(Clone)]
pub struct Importer {
    client: reqwest::Client,
    policy: NetPolicy,
    idle: Duration,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("policy", &self.policy)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

/// A response whose body is being imported.
pub struct Download {
    /// What the server declared (already checked against the limit).
    pub content_length: Option<u64>,
    host: String,
    response: reqwest::Response,
    idle: Duration,
}

impl Importer {
    /// `total`: the longest one import may take, body included; `idle`: the longest the server
    /// may stay silent while sending it.
    pub fn new(policy: NetPolicy, total: Duration, idle: Duration) -> Self {
        Self {
            client: policy.client(total, MAX_REDIRECTS),
            policy,
            idle,
        }
    }

    /// Sends the request and checks the answer's status and declared length (at most
    /// `max_bytes`); the body is left to read.
    pub async fn open(&self, url: &str, max_bytes: u64) -> Result<Download, ImportError> {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Err(ImportError::new(
                ImportFailure::Unreachable,
                "The URL is not a valid URL.".into(),
            ));
        };
        let host = host_of(&parsed);
        if let Err(why) = self.policy.check_url(&parsed) {
            return Err(ImportError::new(
                ImportFailure::ForbiddenAddress,
                format!("The URL's host {host} may not be fetched: {why}."),
            ));
        }
        let response = match tokio::time::timeout(self.idle, self.client.get(parsed).send()).await {
            Err(_) => {
                return Err(ImportError::new(
                    ImportFailure::Timeout,
                    format!("The server at {host} did not answer in time."),
                ));
            }
            Ok(Err(e)) => return Err(send_error(&e, &host)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            return Err(ImportError::new(
                ImportFailure::Unreachable,
                format!("The server at {host} answered {status}."),
            ));
        }
        let content_length = response.content_length();
        if content_length.is_some_and(|n| n > max_bytes) {
            return Err(ImportError::new(
                ImportFailure::TooLarge,
                format!("The file at {host} is larger than {max_bytes} bytes."),
            ));
        }
        Ok(Download {
            content_length,
            host,
            response,
            idle: self.idle,
        })
    }
}

impl Download {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The body, chunk by chunk; a read that waits longer than the idle timeout, or the total
    /// timeout, ends it with `timeout`.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, ImportError>> + Send {
        futures_util::stream::unfold(Some(self), |state| async move {
            let mut d = state?;
            match tokio::time::timeout(d.idle, d.response.chunk()).await {
                Err(_) => Some((
                    Err(ImportError::new(
                        ImportFailure::Timeout,
                        format!("The server at {} stopped sending the file.", d.host),
                    )),
                    None,
                )),
                Ok(Ok(Some(chunk))) => Some((Ok(chunk), Some(d))),
                Ok(Ok(None)) => None,
                Ok(Err(e)) => {
                    let failure = if e.is_timeout() {
                        ImportError::new(
                            ImportFailure::Timeout,
                            format!("The server at {} did not send the file in time.", d.host),
                        )
                    } else {
                        ImportError::new(
                            ImportFailure::Unreachable,
                            format!(
                                "The connection to the server at {} broke during the download.",
                                d.host
                            ),
                        )
                    };
                    Some((Err(failure), None))
                }
            }
        })
    }
}

fn send_error(e: &reqwest::Error, host: &str) -> ImportError {
    if e.is_redirect() {
        let why = e
            .source()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "redirect refused".into());
        let reason = if why.contains("redirects") {
            ImportFailure::Unreachable
        } else {
            ImportFailure::ForbiddenAddress
        };
        return ImportError::new(
            reason,
            format!("The URL at {host} redirects where this server may not follow: {why}."),
        );
    }
    if let Some(why) = policy_refusal(e) {
        return ImportError::new(
            ImportFailure::ForbiddenAddress,
            format!("The URL's host {host} may not be fetched: {why}."),
        );
    }
    if e.is_timeout() {
        return ImportError::new(
            ImportFailure::Timeout,
            format!("The server at {host} did not answer in time."),
        );
    }
    ImportError::new(
        ImportFailure::Unreachable,
        format!("The server at {host} could not be reached."),
    )
}
