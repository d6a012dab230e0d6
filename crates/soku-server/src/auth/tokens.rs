//! ID-token verification (spec 3.3): Firebase tokens checked against Google's published
//! certificates, unsigned tokens in Firebase Auth Emulator mode only, and the built-in issuer
//! for installs without Firebase, whose signing key lives in the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use soku_core::idtoken::{IdTokenClaims, TokenRejection, VerifiedIdentity, validate_claims};
use soku_core::model::SigningKey;
use soku_core::{Clock, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const DEFAULT_FIREBASE_CERTS_URL: &str =
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";
/// The `aud` of tokens from the built-in issuer.
pub const BUILTIN_AUDIENCE: &str = "soku";
/// Refetches of Google's certificates caused by an unknown `kid` happen at most this often.
const REFETCH_COOLDOWN: Duration = Duration::from_secs(60);
/// Used when Google's answer carries no `max-age`.
const DEFAULT_CERT_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    Rejected(TokenRejection),
    /// The keys needed to check the token could not be fetched: a server-side problem.
    KeysUnavailable,
}

impl From<TokenRejection> for TokenFailure {
    fn from(r: TokenRejection) -> Self {
        TokenFailure::Rejected(r)
    }
}

#[derive(Debug, Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

pub struct FirebaseSettings {
    pub project_id: String,
    pub certs_url: String,
    /// `FIREBASE_AUTH_EMULATOR_HOST` is set: accept unsigned emulator tokens.
    pub emulator: bool,
    /// The project's Web API key (public by design): with it, the dashboard's sign-in page
    /// offers Firebase email and password sign-in.
    pub web_api_key: Option<String>,
    /// The Firebase Auth REST endpoint the sign-in page calls:
    /// `https://identitytoolkit.googleapis.com`, or the emulator's
    /// `http://HOST:PORT/identitytoolkit.googleapis.com`.
    pub auth_url: String,
}

/// The Firebase Auth REST endpoint, or the emulator's when `emulator_host` is set.
pub fn firebase_auth_url(emulator_host: Option<&str>) -> String {
    match emulator_host.map(str::trim).filter(|h| !h.is_empty()) {
        Some(host) => format!("http://{host}/identitytoolkit.googleapis.com"),
        None => "https://identitytoolkit.googleapis.com".into(),
    }
}

pub struct TokenVerifier {
    builtin: BuiltinIssuer,
    firebase: Option<(FirebaseSettings, GoogleKeys)>,
    clock: Arc<dyn Clock>,
}

impl TokenVerifier {
    pub fn new(
        builtin: BuiltinIssuer,
        firebase: Option<FirebaseSettings>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let firebase = firebase.map(|s| {
            let keys = GoogleKeys::new(s.certs_url.clone());
            (s, keys)
        });
        Self {
            builtin,
            firebase,
            clock,
        }
    }

    pub fn builtin(&self) -> &BuiltinIssuer {
        &self.builtin
    }

    /// The Firebase project's settings, when Firebase ID tokens are accepted.
    pub fn firebase(&self) -> Option<&FirebaseSettings> {
        self.firebase.as_ref().map(|(s, _)| s)
    }

    pub async fn verify(&self, token: &str) -> Result<VerifiedIdentity, TokenFailure> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRejection::Malformed.into());
        };
        let header: JoseHeader = decode_part(h)?;
        let unverified: IdTokenClaims = decode_part(p)?;
        let now = self.clock.now().timestamp_millis() as f64 / 1000.0;
        let firebase_issuer = self
            .firebase
            .as_ref()
            .map(|(s, _)| format!("https://securetoken.google.com/{}", s.project_id));

        if header.alg == "none" {
            // The Admin SDKs accept unsigned tokens only against the Auth Emulator.
            return match (&self.firebase, &firebase_issuer) {
                (Some((s, _)), Some(iss)) if s.emulator => Ok(validate_claims(
                    &unverified,
                    iss,
                    &s.project_id,
                    now,
                    false,
                )?),
                _ => Err(TokenRejection::Algorithm.into()),
            };
        }
        if header.alg != "RS256" {
            return Err(TokenRejection::Algorithm.into());
        }
        let kid = header.kid.as_deref().ok_or(TokenRejection::Malformed)?;
        let iss = unverified.iss.as_deref().unwrap_or("");
        let (key, issuer, audience, is_firebase) = if iss == self.builtin.issuer {
            let key = self
                .builtin
                .decoding_key(kid)
                .ok_or(TokenRejection::UnknownKid)?;
            (key, self.builtin.issuer.as_str(), BUILTIN_AUDIENCE, false)
        } else {
            match (&self.firebase, &firebase_issuer) {
                (Some((s, keys)), Some(fiss)) if iss == fiss => (
                    keys.key(kid).await?,
                    fiss.as_str(),
                    s.project_id.as_str(),
                    true,
                ),
                _ => return Err(TokenRejection::UnknownIssuer.into()),
            }
        };
        let claims = verify_signature(token, &key)?;
        let mut identity = validate_claims(&claims, issuer, audience, now, is_firebase)?;
        if !is_firebase {
            // Only our own tokens name a dashboard session (`issue_for_session`).
            identity.session = claims.sid;
        }
        Ok(identity)
    }
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenFailure> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenRejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenRejection::Malformed.into())
}

/// Checks the RS256 signature only; the claims are checked by `validate_claims`.
fn verify_signature(token: &str, key: &DecodingKey) -> Result<IdTokenClaims, TokenFailure> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<IdTokenClaims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::Signature.into(),
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenRejection::Algorithm.into(),
            _ => TokenRejection::Malformed.into(),
        })
}

/// Google's public certificates for Firebase ID tokens, cached per `Cache-Control: max-age`.
pub struct GoogleKeys {
    url: String,
    http: reqwest::Client,
    state: RwLock<CertState>,
    fetch_lock: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CertState {
    keys: HashMap<String, Arc<DecodingKey>>,
    expires: Option<Instant>,
    /// The last refetch caused by an unknown `kid` while the cache was fresh.
    last_kid_refetch: Option<Instant>,
    /// The last failed fetch; no new attempt for `FAILURE_BACKOFF` after it.
    last_failure: Option<Instant>,
}

/// After a failed fetch, requests use what is cached (or fail) for this long before trying again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

impl CertState {
    fn fresh(&self) -> bool {
        self.expires.is_some_and(|e| Instant::now() < e)
    }
    fn kid_refetched_recently(&self) -> bool {
        self.last_kid_refetch
            .is_some_and(|t| t.elapsed() < REFETCH_COOLDOWN)
    }
    fn failed_recently(&self) -> bool {
        self.last_failure
            .is_some_and(|t| t.elapsed() < FAILURE_BACKOFF)
    }
    /// What to answer without fetching, if a fetch is not called for.
    fn without_fetch(&self, kid: &str) -> Option<Result<Arc<DecodingKey>, TokenFailure>> {
        let known = self.keys.get(kid).cloned();
        if self.fresh() {
            match known {
                Some(k) => Some(Ok(k)),
                None if self.kid_refetched_recently() => {
                    Some(Err(TokenRejection::UnknownKid.into()))
                }
                None => None,
            }
        } else if self.failed_recently() {
            Some(match known {
                Some(k) => Ok(k),
                None if self.keys.is_empty() => Err(TokenFailure::KeysUnavailable),
                None => Err(TokenRejection::UnknownKid.into()),
            })
        } else {
            None
        }
    }
}

impl GoogleKeys {
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with default settings builds");
        Self {
            url,
            http,
            state: RwLock::new(CertState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CertState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CertState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, TokenFailure> {
        if let Some(answer) = self.read().without_fetch(kid) {
            return answer;
        }
        // One fetch at a time; whoever waited looks again before fetching.
        let _guard = self.fetch_lock.lock().await;
        let kid_triggered = {
            let state = self.read();
            if let Some(answer) = state.without_fetch(kid) {
                return answer;
            }
            state.fresh()
        };
        let fetched = self.fetch().await;
        let mut state = self.write();
        if kid_triggered {
            state.last_kid_refetch = Some(Instant::now());
        }
        match fetched {
            Ok((keys, ttl)) => {
                state.keys = keys;
                state.expires = Some(Instant::now() + ttl);
                state.last_failure = None;
                state
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or(TokenRejection::UnknownKid.into())
            }
            Err(e) => {
                state.last_failure = Some(Instant::now());
                tracing::warn!(error = %e, url = %self.url, "could not fetch Firebase certificates");
                // Keep serving with the certificates we had, if they know this kid.
                match state.keys.get(kid) {
                    Some(k) => Ok(k.clone()),
                    None if state.keys.is_empty() => Err(TokenFailure::KeysUnavailable),
                    None => Err(TokenRejection::UnknownKid.into()),
                }
            }
        }
    }

    async fn fetch(&self) -> Result<(HashMap<String, Arc<DecodingKey>>, Duration), String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let ttl = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_CERT_TTL);
        let certs: HashMap<String, String> = response.json().await.map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for (kid, pem) in certs {
            match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                Ok(k) => {
                    keys.insert(kid, Arc::new(k));
                }
                Err(e) => {
                    tracing::warn!(kid = %kid, error = %e, "skipping an unreadable certificate")
                }
            }
        }
        Ok((keys, ttl))
    }
}

/// `max-age=N` from a Cache-Control value.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|d| {
        let d = d.trim();
        let (name, value) = d.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            value
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs)
        } else {
            None
        }
    })
}

/// The built-in identity provider: RS256 tokens shaped like Firebase's, `iss` = the server's
/// public URL, `aud` = `soku`, signed with a key generated on first start and kept in the
/// database so that every node and the admin command share it.
pub struct BuiltinIssuer {
    issuer: String,
    signing_kid: String,
    signing: EncodingKey,
    decoding: HashMap<String, Arc<DecodingKey>>,
    jwks: serde_json::Value,
}

#[derive(Serialize)]
struct BuiltinClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    user_id: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    /// The dashboard session of a page token.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

pub fn generate_signing_key(now: chrono::DateTime<chrono::Utc>) -> Result<SigningKey, String> {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| e.to_string())?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    Ok(SigningKey {
        kid: soku_core::keys::random_id("", 20),
        private_pem: pem.to_string(),
        created_at: now,
    })
}

impl BuiltinIssuer {
    /// Loads the signing keys from the store, generating the first one when there is none.
    pub async fn load_or_create(
        store: &dyn Store,
        issuer: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, StoreError> {
        let mut keys = store.signing_keys().await?;
        if keys.is_empty() {
            let fresh = tokio::task::spawn_blocking(move || generate_signing_key(now))
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?
                .map_err(StoreError::Backend)?;
            store.insert_signing_key_if_none(&fresh).await?;
            keys = store.signing_keys().await?;
        }
        Self::from_keys(issuer, &keys).map_err(StoreError::Backend)
    }

    pub fn from_keys(issuer: String, keys: &[SigningKey]) -> Result<Self, String> {
        let newest = keys.last().ok_or("no signing key")?;
        let mut decoding = HashMap::new();
        let mut jwks = Vec::new();
        for k in keys {
            let private =
                rsa::RsaPrivateKey::from_pkcs8_pem(&k.private_pem).map_err(|e| e.to_string())?;
            let n = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
            let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
            let key = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
            decoding.insert(k.kid.clone(), Arc::new(key));
            jwks.push(serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": n, "e": e,
            }));
        }
        let signing =
            EncodingKey::from_rsa_pem(newest.private_pem.as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self {
            issuer,
            signing_kid: newest.kid.clone(),
            signing,
            decoding,
            jwks: serde_json::json!({ "keys": jwks }),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    fn decoding_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.decoding.get(kid).cloned()
    }

    /// Issues an ID token for `uid`, valid for `ttl`.
    pub fn issue(
        &self,
        uid: &str,
        email: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
        ttl: Duration,
    ) -> Result<String, String> {
        self.issue_for_session(uid, email, now, ttl, None)
    }

    /// Issues an ID token for `uid`, valid for `ttl` and, when `session` is given, only while
    /// that dashboard session is (a page token: `auth::caller` checks the session on every use,
    /// and such a token cannot open another session).
    pub fn issue_for_session(
        &self,
        uid: &str,
        email: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
        ttl: Duration,
        session: Option<&str>,
    ) -> Result<String, String> {
        let iat = now.timestamp();
        let claims = BuiltinClaims {
            iss: &self.issuer,
            aud: BUILTIN_AUDIENCE,
            sub: uid,
            user_id: uid,
            iat,
            exp: iat + ttl.as_secs() as i64,
            auth_time: iat,
            email,
            sid: session,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age("public, max-age=19302, must-revalidate, no-transform"),
            Some(Duration::from_secs(19302))
        );
        assert_eq!(max_age("MAX-AGE=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }
}
