//! Encryption of account tokens at rest and sealing of the dashboard's session cookies:
//! XChaCha20-Poly1305 with a random nonce per value.
//!
//! The server's secret key is `SOKU_SECRET_KEY` (32 bytes, base64). When it is unset, a key is
//! generated on first start and kept in the database's settings, which protects copies of the
//! token columns but not a copy of the whole database: operators who care set the variable.
//!
//! The secret key itself encrypts nothing: HKDF-SHA256 derives one key per use from it, with
//! distinct labels (`ACCOUNT_TOKENS_INFO`, `SESSION_COOKIE_INFO`), so that a value sealed for
//! one use never opens as the other (a session cookie is never an account token, and the
//! reverse). Account tokens stored before the derivation were sealed with the secret key
//! itself: they still open (`open` falls back to it), and are sealed again with the derived key
//! whenever they are next written (a refresh, a reconnection).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use soku_core::{Store, StoreError};

const SETTING: &str = "secret_key";
const NONCE_LEN: usize = 24;
/// The HKDF label of the key that encrypts connected accounts' tokens.
pub const ACCOUNT_TOKENS_INFO: &[u8] = b"soku account tokens v1";
/// The HKDF label of the key that seals the dashboard's session cookies.
pub const SESSION_COOKIE_INFO: &[u8] = b"soku session cookie v1";
/// The HKDF label of the key that seals a target's upload progress (`seal_progress`).
pub const PROGRESS_INFO: &[u8] = b"soku target progress v1";
/// How sealed progress starts in the `progress_json` column, before its base64. Progress
/// saved before sealing existed is plain JSON, which never starts so.
pub const SEALED_PROGRESS_PREFIX: &str = "sealed:v1:";

/// The server's sealing: `seal`/`open` for account tokens (and other values kept at rest),
/// `seal_cookie`/`open_cookie` for session cookies, each with its own derived key.
#[derive(Clone)]
pub struct SecretBox {
    /// Account tokens: the key derived with `ACCOUNT_TOKENS_INFO`.
    tokens: XChaCha20Poly1305,
    /// The secret key itself, which sealed account tokens before the derivation: opens only.
    legacy: XChaCha20Poly1305,
    /// Session cookies: the key derived with `SESSION_COOKIE_INFO`. No fallback: a cookie
    /// sealed otherwise is no session.
    cookies: XChaCha20Poly1305,
    /// Upload progress: the key derived with `PROGRESS_INFO`.
    progress: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            tokens: XChaCha20Poly1305::new((&derive(key, ACCOUNT_TOKENS_INFO)).into()),
            legacy: XChaCha20Poly1305::new(key.into()),
            cookies: XChaCha20Poly1305::new((&derive(key, SESSION_COOKIE_INFO)).into()),
            progress: XChaCha20Poly1305::new((&derive(key, PROGRESS_INFO)).into()),
        }
    }

    /// `configured` is `SOKU_SECRET_KEY` when set.
    pub async fn load(store: &dyn Store, configured: Option<&str>) -> Result<Self, String> {
        if let Some(text) = configured.filter(|t| !t.trim().is_empty()) {
            return decode_key(text.trim())
                .map(|k| Self::from_key(&k))
                .ok_or_else(|| "SOKU_SECRET_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)".to_owned());
        }
        let db = |e: StoreError| e.to_string();
        if store.get_setting(SETTING).await.map_err(db)?.is_none() {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            // Two nodes starting together: the first write wins, both read it back.
            let _ = store
                .insert_setting_if_absent(SETTING, &STANDARD.encode(key))
                .await;
        }
        let stored = store
            .get_setting(SETTING)
            .await
            .map_err(db)?
            .ok_or("no secret key stored")?;
        decode_key(&stored)
            .map(|k| Self::from_key(&k))
            .ok_or_else(|| "the stored secret key is unreadable".to_owned())
    }

    /// Seals an account token (or another value kept at rest) with the account-token key.
    pub fn seal(&self, plain: &str) -> Vec<u8> {
        seal_with(&self.tokens, plain)
    }

    /// Opens a value of `seal`, or one sealed with the secret key itself before keys were
    /// derived from it.
    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        open_with(&self.tokens, sealed).or_else(|| open_with(&self.legacy, sealed))
    }

    /// Seals a session cookie's content with the session-cookie key.
    pub fn seal_cookie(&self, plain: &str) -> Vec<u8> {
        seal_with(&self.cookies, plain)
    }

    /// Opens a value of `seal_cookie`; nothing else opens.
    pub fn open_cookie(&self, sealed: &[u8]) -> Option<String> {
        open_with(&self.cookies, sealed)
    }

    /// Seals a target's progress for the `progress_json` column: [`SEALED_PROGRESS_PREFIX`] and
    /// the base64 of the sealed JSON. Progress holds what a connector needs to go on with an
    /// upload (a resumable session's URI, a pre-signed upload URL, an encryption key), each as
    /// good as a credential until it expires.
    pub fn seal_progress(&self, json: &str) -> String {
        format!(
            "{SEALED_PROGRESS_PREFIX}{}",
            STANDARD.encode(seal_with(&self.progress, json))
        )
    }

    /// The JSON of a stored `progress_json`: opened when sealed, as it is when it predates
    /// sealing; `None` when it is sealed and does not open (another secret key).
    pub fn open_progress(&self, stored: &str) -> Option<String> {
        match stored.strip_prefix(SEALED_PROGRESS_PREFIX) {
            Some(b64) => open_with(&self.progress, &STANDARD.decode(b64).ok()?),
            None => Some(stored.to_owned()),
        }
    }
}

/// The 32-byte key derived from the secret key for the use `info` (HKDF-SHA256, no salt: the
/// secret key is already uniformly random).
fn derive(secret: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret)
        .expand(info, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

fn seal_with(cipher: &XChaCha20Poly1305, plain: &str) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(&XNonce::from(nonce), plain.as_bytes())
            .expect("encryption of a bounded value cannot fail"),
    );
    out
}

fn open_with(cipher: &XChaCha20Poly1305, sealed: &[u8]) -> Option<String> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let plain = cipher.decrypt(&XNonce::from(nonce), ciphertext).ok()?;
    String::from_utf8(plain).ok()
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let b = SecretBox::from_key(&[7u8; 32]);
        let sealed = b.seal("token-123");
        assert!(!sealed.windows(9).any(|w| w == b"token-123"));
        assert_eq!(b.open(&sealed).as_deref(), Some("token-123"));
        assert_ne!(b.seal("token-123"), sealed, "a fresh nonce each time");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(b.open(&bad), None);
        assert_eq!(SecretBox::from_key(&[8u8; 32]).open(&sealed), None);
        assert!(decode_key(&STANDARD.encode([1u8; 32])).is_some());
        assert!(decode_key(&STANDARD.encode([1u8; 16])).is_none());
    }

    #[test]
    fn progress_is_sealed_and_older_plain_progress_still_reads() {
        let b = SecretBox::from_key(&[7u8; 32]);
        let json = r#"{"session_uri":"https://upload.example/s?upload_id=secret"}"#;
        let stored = b.seal_progress(json);
        assert!(stored.starts_with(SEALED_PROGRESS_PREFIX));
        assert!(!stored.contains("secret"));
        assert_eq!(b.open_progress(&stored).as_deref(), Some(json));
        assert_eq!(
            b.open_progress(json).as_deref(),
            Some(json),
            "saved before sealing"
        );
        assert_eq!(SecretBox::from_key(&[8u8; 32]).open_progress(&stored), None);
        // Each use its own key: progress is no token, a token no progress.
        let raw = STANDARD
            .decode(stored.strip_prefix(SEALED_PROGRESS_PREFIX).unwrap())
            .unwrap();
        assert_eq!(b.open(&raw), None);
        let token = STANDARD.encode(b.seal("t"));
        assert_eq!(
            b.open_progress(&format!("{SEALED_PROGRESS_PREFIX}{token}")),
            None
        );
    }

    #[test]
    fn keys_are_derived_per_use_and_old_tokens_still_open() {
        let secret = [7u8; 32];
        let b = SecretBox::from_key(&secret);
        // A token sealed with the secret key itself, as before the derivation.
        let old = seal_with(&XChaCha20Poly1305::new((&secret).into()), "old-token");
        assert_eq!(b.open(&old).as_deref(), Some("old-token"));
        assert_eq!(b.open_cookie(&old), None, "the raw key seals no cookie");
        // New tokens are sealed with the derived key, not the secret key.
        let new = b.seal("new-token");
        assert_eq!(b.open(&new).as_deref(), Some("new-token"));
        assert_eq!(open_with(&b.legacy, &new), None);
        // Cookies and tokens do not open as each other.
        let cookie = b.seal_cookie("session");
        assert_eq!(b.open_cookie(&cookie).as_deref(), Some("session"));
        assert_eq!(b.open(&cookie), None);
        assert_eq!(b.open_cookie(&new), None);
        // Distinct labels give distinct keys, and the derivation is HKDF-SHA256 (RFC 5869).
        assert_ne!(
            derive(&secret, ACCOUNT_TOKENS_INFO),
            derive(&secret, SESSION_COOKIE_INFO)
        );
        assert_ne!(derive(&secret, ACCOUNT_TOKENS_INFO), secret);
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(None, &secret)
            .expand(b"soku session cookie v1", &mut expected)
            .unwrap();
        assert_eq!(derive(&secret, SESSION_COOKIE_INFO), expected);
    }
}
