//! The server's fetcher for media given by URL (spec 8, issue 6): `SafeFetcher`, the
//! `MediaSource` connectors get in production.
//!
//! A URL in a post is chosen by whoever holds an API key, so fetching it must not become a way to
//! reach the server's own network (SSRF) or to exhaust it. The protections, in order:
//!
//! 1. **The URL is checked before anything is sent** (`NetPolicy::check_url`): http(s) only; an
//!    IP-literal host (in any form the URL parser accepts: `127.1`, `0x7f000001`,
//!    `[::ffff:127.0.0.1]`...) must be a public address; `localhost` and `*.localhost` are
//!    refused by name. A refused URL fails `Permanent` (`media_unavailable`) and no connection is
//!    made.
//! 2. **Every address a name resolves to is checked** by the client's only DNS resolver
//!    (`NetPolicy::client`): loopback, private, shared, link-local (cloud metadata at
//!    169.254.169.254 and fd00:ec2::254), multicast, documentation and reserved addresses are
//!    dropped, and a name left with none fails. The connection is made to the addresses that were
//!    checked, so a name cannot answer a public address to a check and a private one to the
//!    connection (DNS rebinding).
//! 3. **Every redirect is checked** the same way (scheme, IP literal, `localhost`; its name then
//!    goes through the same resolver), and at most `MAX_REDIRECTS` are followed; no `Referer` is
//!    sent to the redirect's target.
//! 4. **Size is bounded while reading**: a `Content-Length` above the limit is refused before the
//!    body is read; otherwise the body is read chunk by chunk and the download stops as soon as it
//!    passes the limit (a server that streams forever costs at most one chunk past the limit). The
//!    client does not decompress (reqwest is built without gzip/brotli), so the bytes counted are
//!    the bytes kept.
//! 5. **The type comes from the bytes**, never from `Content-Type`: `soku_core::media::sniff` on the first
//!    bytes (refined here for HEIF/HEIC/AVIF, which share MP4's `ftyp` box but are images that the
//!    platforms do not take) must be one of the limits' types. The check runs as soon as enough
//!    bytes have arrived, so an HTML page posing as an image is not downloaded in full.
//! 6. **Time is bounded**: the client's timeout covers the whole fetch, body included.
//! 7. **Memory is bounded**: fetched media is held in memory between the fetch and the upload
//!    (at most its platform's limit per file). All of it together stays within the fetcher's
//!    budget (`with_memory_budget`, 256 MiB in the server): a fetch reserves its
//!    `Content-Length` (or, without one, the limit) before reading, gives back what it did not
//!    use, and holds the rest until the connector drops the `Media`. Fetches beyond the budget
//!    wait for room (within their timeout) instead of growing the process.
//!
//! Failure classes: a URL that will never work (refused address, redirect or scheme, a 4xx, too
//! large, wrong type) is `Permanent`; timeouts, connection failures, 408, 429 and 5xx are
//! `Retryable`. Messages name the URL's host only: a URL's path and query may carry signed tokens,
//! so they are never echoed (nor is reqwest's error text, which contains the full URL).
//!
//! `NetPolicy { allow_loopback: true }` lets 127.0.0.0/8 and ::1 through for tests, whose fake
//! platforms and image servers run on loopback; every other range stays refused.

use crate::media::{Media, MediaLimits, MediaSource, MediaStream};
use crate::net::NetPolicy;
use async_trait::async_trait;
use soku_core::connector::{FailureClass, PublishError};
use soku_core::media::sniff;
use std::error::Error as _;
use std::time::Duration;

/// The most redirects one fetch follows.
pub const MAX_REDIRECTS: usize = 5;

/// How many first bytes decide a file's type (`media::sniff` reads at most 64).
const SNIFF_LEN: usize = 64;

/// The error codes this fetcher returns.
pub const MEDIA_UNAVAILABLE: &str = "media_unavailable";
pub const MEDIA_FETCH_FAILED: &str = "media_fetch_failed";
pub const MEDIA_TOO_LARGE: &str = "media_too_large";
pub const MEDIA_TYPE_NOT_ALLOWED: &str = "media_type_not_allowed";

/// The memory budget's unit: permits are KiB.
const BUDGET_UNIT: u64 = 1024;

/// The server's default budget for media held in memory at once.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

/// Fetches media by URL with the protections described in the module documentation.
#[derive(Clone)]
pub struct SafeFetcher {
    policy: NetPolicy,
    client: reqwest::Client,
    timeout: Duration,
    /// KiB of media that may be held at once; `None`: unbounded.
    budget: Option<(std::sync::Arc<tokio::sync::Semaphore>, u32)>,
    /// The server's own hosted files, read from the media store instead of over HTTP.
    hosted: Option<soku_media::MediaLibrary>,
}

impl std::fmt::Debug for SafeFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeFetcher")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SafeFetcher {
    /// A fetcher whose every fetch (redirects and body included) takes at most `timeout`.
    pub fn new(policy: NetPolicy, timeout: Duration) -> Self {
        Self {
            policy,
            client: policy.client(timeout, MAX_REDIRECTS),
            timeout,
            budget: None,
            hosted: None,
        }
    }

    /// Reads the hosted files of `library` (`<base>/media/<id>/<file>`) from its store, within
    /// the same limits and memory budget, instead of fetching them over HTTP: the engine hands
    /// connectors hosted URLs (spec 8.1), and the server's own URL may not be reachable from
    /// itself, or only at an address the SSRF guard refuses.
    pub fn with_hosted(mut self, library: soku_media::MediaLibrary) -> Self {
        self.hosted = Some(library);
        self
    }

    /// Holds at most `bytes` of fetched media in memory at once (rounded up to whole KiB).
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        let kib = bytes.div_ceil(BUDGET_UNIT).clamp(1, u32::MAX as u64 / 2) as u32;
        self.budget = Some((
            std::sync::Arc::new(tokio::sync::Semaphore::new(kib as usize)),
            kib,
        ));
        self
    }

    /// Reserves room for `bytes` (capped at the whole budget, so that one large file still
    /// fits), waiting at most the fetch's timeout.
    async fn reserve(
        &self,
        bytes: u64,
        host: &str,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, PublishError> {
        let Some((semaphore, total)) = &self.budget else {
            return Ok(None);
        };
        let kib = (bytes.div_ceil(BUDGET_UNIT).max(1) as u32).min(*total);
        match tokio::time::timeout(self.timeout, semaphore.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => {
                tracing::warn!(%host, "no room in the media memory budget within the timeout");
                Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    MEDIA_FETCH_FAILED,
                    format!(
                        "The media from {host} could not be fetched now: the server is busy with other media."
                    ),
                ))
            }
        }
    }

    /// The row of a hosted file of this server, checked against `limits`.
    async fn hosted_record(
        &self,
        library: &soku_media::MediaLibrary,
        id: &str,
        file: &str,
        limits: &MediaLimits,
    ) -> Result<soku_core::media::MediaRecord, PublishError> {
        let record = library
            .hosted(id, file)
            .await
            .map_err(|e| hosted_unavailable(id, &e.to_string()))?
            .ok_or_else(|| {
                permanent(
                    MEDIA_UNAVAILABLE,
                    format!("The hosted file {id} no longer exists."),
                )
            })?;
        let mime = record.facts.mime;
        if !limits.types.contains(&mime) {
            return Err(permanent(
                MEDIA_TYPE_NOT_ALLOWED,
                format!(
                    "The hosted file {id} is of type {mime}, which is not allowed here; allowed: {}.",
                    limits.types.join(", ")
                ),
            ));
        }
        if record.facts.size > limits.max_bytes {
            return Err(too_large(&format!("hosted file {id}"), limits.max_bytes));
        }
        Ok(record)
    }

    /// A hosted file of this server, read from the media store into memory (within the memory
    /// budget).
    async fn hosted(
        &self,
        library: &soku_media::MediaLibrary,
        id: &str,
        file: &str,
        limits: &MediaLimits,
    ) -> Result<Media, PublishError> {
        let unavailable = |e: String| hosted_unavailable(id, &e);
        let record = self.hosted_record(library, id, file, limits).await?;
        let mime = record.facts.mime;
        let permit = self.reserve(record.facts.size, "the media store").await?;
        let mut stream = library
            .storage
            .read(&record.storage_key, None)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut bytes = Vec::with_capacity(record.facts.size as usize);
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            let chunk = chunk.map_err(|e| unavailable(e.to_string()))?;
            if bytes.len() as u64 + chunk.len() as u64 > record.facts.size {
                return Err(unavailable("the stored file is longer than its row".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        let media = Media::new(bytes, mime);
        Ok(match permit {
            Some(held) => media.holding(held),
            None => media,
        })
    }

    async fn get(&self, url: &str, limits: &MediaLimits) -> Result<Media, PublishError> {
        if let Some(library) = &self.hosted
            && let Some((id, file)) = library.parse_url(url)
        {
            return self.hosted(library, id, file, limits).await;
        }
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Err(permanent(
                MEDIA_UNAVAILABLE,
                "The media URL is not a valid URL.".into(),
            ));
        };
        let host = host_of(&parsed);
        if let Err(why) = self.policy.check_url(&parsed) {
            tracing::debug!(%host, %why, "media URL refused");
            return Err(permanent(
                MEDIA_UNAVAILABLE,
                format!("The media URL's host {host} may not be fetched: {why}."),
            ));
        }

        let mut response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| send_error(&e, &host))?;

        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status, response.headers(), &host));
        }

        if let Some(len) = response.content_length()
            && len > limits.max_bytes
        {
            return Err(too_large(&host, limits.max_bytes));
        }
        let mut permit = self
            .reserve(response.content_length().unwrap_or(limits.max_bytes), &host)
            .await?;

        // Never trust a Content-Length for the allocation: it may be absent or a lie.
        let initial = response
            .content_length()
            .unwrap_or(0)
            .min(limits.max_bytes)
            .min(1024 * 1024) as usize;
        let mut bytes: Vec<u8> = Vec::with_capacity(initial);
        let mut type_checked = false;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(body_error(&e, &host)),
            };
            if (bytes.len() as u64).saturating_add(chunk.len() as u64) > limits.max_bytes {
                // Dropping `response` closes the connection; the rest is never read.
                return Err(too_large(&host, limits.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
            if !type_checked && bytes.len() >= SNIFF_LEN {
                check_type(&bytes, limits, &host)?;
                type_checked = true;
            }
        }
        let mime = check_type(&bytes, limits, &host)?;
        let media = Media::new(bytes, mime);
        Ok(match permit.take() {
            None => media,
            Some(mut held) => {
                // Give back what the file did not need.
                let used = (media.bytes.len() as u64).div_ceil(BUDGET_UNIT).max(1) as usize;
                if held.num_permits() > used {
                    drop(held.split(held.num_permits() - used));
                }
                media.holding(held)
            }
        })
    }
}

#[async_trait]
impl MediaSource for SafeFetcher {
    async fn fetch(&self, url: &str, limits: &MediaLimits) -> Result<Media, PublishError> {
        let result = self.get(url, limits).await;
        crate::imports::MEDIA_IMPORTS.record(&result);
        result
    }

    /// The server's hosted files stream from the media store, in the store's chunks, never whole
    /// in memory; any other URL is fetched whole (`fetch`).
    async fn stream(&self, url: &str, limits: &MediaLimits) -> Result<MediaStream, PublishError> {
        let Some((library, (id, file))) = self
            .hosted
            .as_ref()
            .and_then(|l| Some((l, l.parse_url(url)?)))
        else {
            let media = self.fetch(url, limits).await?;
            let size = media.bytes.len() as u64;
            let mime = media.mime;
            let chunk = bytes::Bytes::from(media.bytes.clone());
            return Ok(MediaStream {
                mime,
                size,
                chunks: Box::pin(futures_util::stream::once(async move {
                    let _held = media;
                    Ok(chunk)
                })),
            });
        };
        let record = self.hosted_record(library, id, file, limits).await?;
        let stream = library
            .storage
            .read(&record.storage_key, None)
            .await
            .map_err(|e| hosted_unavailable(id, &e.to_string()))?;
        let id = id.to_owned();
        Ok(MediaStream {
            mime: record.facts.mime,
            size: record.facts.size,
            chunks: Box::pin(futures_util::StreamExt::map(stream, move |chunk| {
                chunk.map_err(|e| hosted_unavailable(&id, &e.to_string()))
            })),
        })
    }
}

fn check_type(
    bytes: &[u8],
    limits: &MediaLimits,
    host: &str,
) -> Result<&'static str, PublishError> {
    let found = sniff(&bytes[..bytes.len().min(SNIFF_LEN)]);
    match found {
        Some(mime) if limits.types.contains(&mime) => Ok(mime),
        _ => {
            let found = found.unwrap_or("unrecognised");
            Err(permanent(
                MEDIA_TYPE_NOT_ALLOWED,
                format!(
                    "The file at {host} is of type {found} (from its contents), which is not \
                     allowed here; allowed: {}.",
                    limits.types.join(", ")
                ),
            ))
        }
    }
}

/// The URL's host for messages (never its path or query, which may hold signed tokens).
pub(crate) fn host_of(url: &reqwest::Url) -> String {
    match url.host_str() {
        Some(h) => h.to_owned(),
        None => "(no host)".to_owned(),
    }
}

/// A hosted file the media store or the database could not give now: retryable.
fn hosted_unavailable(id: &str, why: &str) -> PublishError {
    tracing::warn!(media_id = %id, error = %why, "a hosted file could not be read");
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        MEDIA_FETCH_FAILED,
        "The hosted file could not be read now.",
    )
}

fn permanent(code: &str, message: String) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

fn retryable(retry_after: Option<Duration>, message: String) -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after },
        MEDIA_FETCH_FAILED,
        message,
    )
}

fn too_large(host: &str, max: u64) -> PublishError {
    permanent(
        MEDIA_TOO_LARGE,
        format!(
            "The file at {host} is larger than the {} allowed here.",
            human_size(max)
        ),
    )
}

fn human_size(n: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if n >= MB && n.is_multiple_of(MB) {
        format!("{} MB", n / MB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Whether an error's causes (not the error itself, whose text holds the full URL) include one of
/// the policy's refusals; its text names only a scheme, an address or a host.
pub(crate) fn policy_refusal(e: &reqwest::Error) -> Option<String> {
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if text.contains("not allowed") {
            return Some(text);
        }
        cause = c.source();
    }
    None
}

/// A failure before a response arrived.
fn send_error(e: &reqwest::Error, host: &str) -> PublishError {
    if e.is_redirect() {
        // The redirect policy's own reason: a refused destination or too many hops.
        let why = e
            .source()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "redirect refused".into());
        tracing::debug!(%host, %why, "media redirect refused");
        return permanent(
            MEDIA_UNAVAILABLE,
            format!("The media URL at {host} redirects where this server may not follow: {why}."),
        );
    }
    if let Some(why) = policy_refusal(e) {
        // The resolver found only refused addresses for the host (or a redirect's host).
        tracing::debug!(%host, %why, "media host refused");
        return permanent(
            MEDIA_UNAVAILABLE,
            format!("The media URL's host {host} may not be fetched: {why}."),
        );
    }
    if e.is_timeout() {
        return retryable(
            None,
            format!("The media server at {host} did not answer in time."),
        );
    }
    if e.is_connect() {
        return retryable(
            None,
            format!("The media server at {host} could not be reached."),
        );
    }
    retryable(
        None,
        format!("The connection to the media server at {host} broke before it answered."),
    )
}

/// A failure while reading the body.
fn body_error(e: &reqwest::Error, host: &str) -> PublishError {
    if e.is_timeout() {
        retryable(
            None,
            format!("The media server at {host} did not send the file in time."),
        )
    } else {
        retryable(
            None,
            format!("The connection to the media server at {host} broke during the download."),
        )
    }
}

fn status_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    host: &str,
) -> PublishError {
    let code = status.as_u16();
    match code {
        408 | 429 | 500..=599 => retryable(
            crate::http::retry_after(headers),
            format!("The media server at {host} answered {status}."),
        ),
        300..=399 => permanent(
            MEDIA_UNAVAILABLE,
            format!(
                "The media server at {host} answered {status} without a redirect this server \
                 follows."
            ),
        ),
        _ => permanent(
            MEDIA_UNAVAILABLE,
            format!("The media server at {host} answered {status}."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(50 * 1024 * 1024), "50 MB");
        assert_eq!(human_size(5 * 1024), "5 KB");
        assert_eq!(human_size(1000), "1000 bytes");
    }

    #[test]
    fn statuses_map_to_classes() {
        let h = reqwest::header::HeaderMap::new();
        let e = |c: u16| status_error(reqwest::StatusCode::from_u16(c).unwrap(), &h, "example.com");
        assert_eq!(e(404).class, FailureClass::Permanent);
        assert_eq!(e(404).code, MEDIA_UNAVAILABLE);
        assert!(e(404).message.contains("404") && e(404).message.contains("example.com"));
        assert_eq!(e(403).class, FailureClass::Permanent);
        for c in [408, 429, 500, 503] {
            assert!(matches!(e(c).class, FailureClass::Retryable { .. }), "{c}");
            assert_eq!(e(c).code, MEDIA_FETCH_FAILED);
        }
    }
}
