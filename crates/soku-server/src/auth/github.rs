//! GitHub's secret scanning partner program: who may report leaked keys. A report is signed by
//! GitHub (ECDSA P-256 with SHA-256 over the raw body, DER, base64) with the key its
//! `Github-Public-Key-Identifier` names, one of the keys GitHub publishes at
//! `SOKU_GITHUB_SECRET_SCANNING_KEYS_URL`.
//!
//! The published keys are cached for `KEYS_TTL`. An identifier the cache does not know causes
//! one refetch (GitHub rotated its keys), at most once per `REFETCH_COOLDOWN`, so that requests
//! with made-up identifiers cannot make us hammer GitHub; a failed fetch is not retried for
//! `FAILURE_BACKOFF`. Without any usable key the answer is 503 (GitHub retries), not 401.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// GitHub's documented endpoint for the keys that sign secret scanning reports.
pub const DEFAULT_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";
pub const KEY_ID_HEADER: &str = "github-public-key-identifier";
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";
/// How long fetched keys are used before they are fetched again (as PyPI's warehouse does).
const KEYS_TTL: Duration = Duration::from_secs(30 * 60);
/// Refetches caused by an unknown key identifier happen at most this often.
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(60);
/// After a failed fetch, requests use what is cached (or fail) for this long before trying again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// More than any real signature header (a DER P-256 signature is at most 72 bytes).
const MAX_SIGNATURE_CHARS: usize = 200;
const MAX_KEY_ID_CHARS: usize = 200;

/// Why a report is not accepted as GitHub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFailure {
    /// A header is missing or malformed, the key identifier is unknown, or the signature does
    /// not verify: 401.
    Rejected(&'static str),
    /// No key could be fetched to check it with: 503.
    KeysUnavailable,
    /// The key identifier is not among the keys fetched, and the last refetch was less than
    /// `REFETCH_COOLDOWN` ago: 503, so that GitHub retries (its keys may have just rotated)
    /// while a stream of made-up identifiers causes no fetch.
    NotYetKnown,
}

/// The two signature headers of a report, checked for shape before its body is read.
#[derive(Debug, Clone)]
pub struct SignedBy {
    pub key_id: String,
    pub signature: Signature,
}

/// Reads `Github-Public-Key-Identifier` and `Github-Public-Key-Signature`.
pub fn signature_headers(headers: &HeaderMap) -> Result<SignedBy, SignatureFailure> {
    let text = |name: &str, max: usize| {
        headers
            .get(name)
            .ok_or(SignatureFailure::Rejected("missing signature header"))?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= max)
            .ok_or(SignatureFailure::Rejected("malformed signature header"))
    };
    let key_id = text(KEY_ID_HEADER, MAX_KEY_ID_CHARS)?.to_owned();
    let der = STANDARD
        .decode(text(SIGNATURE_HEADER, MAX_SIGNATURE_CHARS)?)
        .map_err(|_| SignatureFailure::Rejected("signature is not base64"))?;
    // DER, not fixed width: GitHub's `r` and `s` may be shorter than 32 bytes.
    let signature = Signature::from_der(&der)
        .map_err(|_| SignatureFailure::Rejected("signature is not a DER ECDSA signature"))?;
    Ok(SignedBy { key_id, signature })
}

/// Whether `signature` is `key`'s over exactly `body` (ECDSA-NIST-P256V1-SHA256).
pub fn verifies(key: &VerifyingKey, signature: &Signature, body: &[u8]) -> bool {
    key.verify(body, signature).is_ok()
}

/// A public key from its PEM (SubjectPublicKeyInfo).
pub fn key_from_pem(pem: &str) -> Option<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem.trim()).ok()
}

#[derive(Deserialize)]
struct KeysDocument {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

#[derive(Default)]
struct KeyState {
    keys: HashMap<String, VerifyingKey>,
    expires: Option<Instant>,
    /// The last refetch caused by an unknown identifier while the cache was fresh.
    last_unknown_refetch: Option<Instant>,
    last_failure: Option<Instant>,
}

impl KeyState {
    fn fresh(&self) -> bool {
        self.expires.is_some_and(|e| Instant::now() < e)
    }

    /// The answer without fetching, when a fetch is not called for.
    fn without_fetch(&self, key_id: &str) -> Option<Result<VerifyingKey, SignatureFailure>> {
        let known = self.keys.get(key_id).copied();
        let unknown = SignatureFailure::Rejected("unknown key identifier");
        if self.fresh() {
            match known {
                Some(k) => Some(Ok(k)),
                None if self
                    .last_unknown_refetch
                    .is_some_and(|t| t.elapsed() < REFETCH_COOLDOWN) =>
                {
                    Some(Err(SignatureFailure::NotYetKnown))
                }
                None => None,
            }
        } else if self
            .last_failure
            .is_some_and(|t| t.elapsed() < FAILURE_BACKOFF)
        {
            Some(match known {
                Some(k) => Ok(k),
                None if self.keys.is_empty() => Err(SignatureFailure::KeysUnavailable),
                None => Err(unknown),
            })
        } else {
            None
        }
    }
}

/// GitHub's published secret scanning keys, fetched when needed and cached.
pub struct GithubKeys {
    url: String,
    http: reqwest::Client,
    state: RwLock<KeyState>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl GithubKeys {
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // GitHub's API refuses requests without a User-Agent.
            .user_agent(concat!("soku-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with default settings builds");
        Self {
            url,
            http,
            state: RwLock::new(KeyState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The key GitHub publishes under `key_id`.
    pub async fn key(&self, key_id: &str) -> Result<VerifyingKey, SignatureFailure> {
        if let Some(answer) = self.read().without_fetch(key_id) {
            return answer;
        }
        // One fetch at a time; whoever waited looks again before fetching.
        let _guard = self.fetch_lock.lock().await;
        let unknown_triggered = {
            let state = self.read();
            if let Some(answer) = state.without_fetch(key_id) {
                return answer;
            }
            state.fresh()
        };
        let fetched = self.fetch().await;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if unknown_triggered {
            state.last_unknown_refetch = Some(Instant::now());
        }
        match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched GitHub's secret scanning keys");
                state.keys = keys;
                state.expires = Some(Instant::now() + KEYS_TTL);
                state.last_failure = None;
            }
            Err(e) => {
                state.last_failure = Some(Instant::now());
                tracing::warn!(error = %e, url = %self.url, "could not fetch GitHub's secret scanning keys");
            }
        }
        match state.keys.get(key_id) {
            Some(k) => Ok(*k),
            None if state.keys.is_empty() => Err(SignatureFailure::KeysUnavailable),
            None => Err(SignatureFailure::Rejected("unknown key identifier")),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, String> {
        let response = self
            .http
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let document: KeysDocument = response.json().await.map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for published in document.public_keys {
            match key_from_pem(&published.key) {
                Some(k) => {
                    keys.insert(published.key_identifier, k);
                }
                None => tracing::warn!(
                    key_identifier = %published.key_identifier,
                    "skipping an unreadable GitHub secret scanning key"
                ),
            }
        }
        if keys.is_empty() {
            return Err("the document has no usable key".into());
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// GitHub's published examples (secret-scanning-partner-program.md).
    const CURRENT_BODY: &str = r#"[{"source":"commit","token":"some_token","type":"some_type","url":"https://example.com/base-repo-url/"}]"#;
    const CURRENT_KEY_ID: &str = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";
    const CURRENT_SIGNATURE: &str = "MEQCIQDaMKqrGnE27S0kgMrEK0eYBmyG0LeZismAEz/BgZyt7AIfXt9fErtRS4XaeSt/AO1RtBY66YcAdjxji410VQV4xg==";
    const CURRENT_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd
AjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==
-----END PUBLIC KEY-----
";
    const OLDER_BODY: &str = r#"[{"token": "some_token", "type": "some_type", "url": "some_url"}]"#;
    const OLDER_KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
    const OLDER_SIGNATURE: &str = "MEUCICxTWEpKo7BorLKutFZDS6ie+YFg6ecU7kEA6rUUSJqsAiEA9bK0Iy6vk2QpZOOg2IpBhZ3JRVdwXx1zmgmNAR7Izpc=";
    const OLDER_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";

    fn headers(key_id: &str, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(KEY_ID_HEADER, HeaderValue::from_str(key_id).unwrap());
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        h
    }

    fn check(pem: &str, key_id: &str, signature: &str, body: &[u8]) -> bool {
        let signed = signature_headers(&headers(key_id, signature)).unwrap();
        assert_eq!(signed.key_id, key_id);
        verifies(&key_from_pem(pem).unwrap(), &signed.signature, body)
    }

    #[test]
    fn githubs_published_examples_verify() {
        assert_eq!(CURRENT_BODY.len(), 104);
        assert!(check(
            CURRENT_PEM,
            CURRENT_KEY_ID,
            CURRENT_SIGNATURE,
            CURRENT_BODY.as_bytes()
        ));
        assert!(check(
            OLDER_PEM,
            OLDER_KEY_ID,
            OLDER_SIGNATURE,
            OLDER_BODY.as_bytes()
        ));
    }

    #[test]
    fn any_changed_byte_or_other_key_fails() {
        for i in [0, 10, CURRENT_BODY.len() - 1] {
            let mut body = CURRENT_BODY.as_bytes().to_vec();
            body[i] ^= 1;
            assert!(!check(
                CURRENT_PEM,
                CURRENT_KEY_ID,
                CURRENT_SIGNATURE,
                &body
            ));
        }
        let mut with_newline = CURRENT_BODY.as_bytes().to_vec();
        with_newline.push(b'\n');
        assert!(!check(
            CURRENT_PEM,
            CURRENT_KEY_ID,
            CURRENT_SIGNATURE,
            &with_newline
        ));
        assert!(!check(
            OLDER_PEM,
            CURRENT_KEY_ID,
            CURRENT_SIGNATURE,
            CURRENT_BODY.as_bytes()
        ));
        // A flipped byte inside the signature itself.
        let mut der = STANDARD.decode(CURRENT_SIGNATURE).unwrap();
        der[10] ^= 1;
        let flipped = STANDARD.encode(der);
        assert!(!check(
            CURRENT_PEM,
            CURRENT_KEY_ID,
            &flipped,
            CURRENT_BODY.as_bytes()
        ));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let missing = signature_headers(&HeaderMap::new()).unwrap_err();
        assert_eq!(
            missing,
            SignatureFailure::Rejected("missing signature header")
        );
        for (id, sig) in [
            (CURRENT_KEY_ID, "not base64!"),
            (CURRENT_KEY_ID, "AAAA"),
            (CURRENT_KEY_ID, ""),
            ("", CURRENT_SIGNATURE),
        ] {
            assert!(
                matches!(
                    signature_headers(&headers(id, sig)),
                    Err(SignatureFailure::Rejected(_))
                ),
                "{id:?} {sig:?}"
            );
        }
        let mut only_id = HeaderMap::new();
        only_id.insert(KEY_ID_HEADER, HeaderValue::from_static("x"));
        assert!(signature_headers(&only_id).is_err());
    }

    #[test]
    fn reads_pem_with_or_without_surrounding_whitespace() {
        assert!(key_from_pem(CURRENT_PEM).is_some());
        assert!(key_from_pem(&format!("\n{CURRENT_PEM}\n\n")).is_some());
        assert!(
            key_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_none()
        );
    }
}
