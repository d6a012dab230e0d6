//! Encryption of account tokens at rest: XChaCha20-Poly1305 with a random nonce per value.
//!
//! The key is `SOKU_SECRET_KEY` (32 bytes, base64). When it is unset, a key is generated on
//! first start and kept in the database's settings, which protects copies of the token
//! columns but not a copy of the whole database: operators who care set the variable.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use soku_core::{Store, StoreError};

const SETTING: &str = "secret_key";
const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
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

    pub fn seal(&self, plain: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher
                .encrypt(&XNonce::from(nonce), plain.as_bytes())
                .expect("encryption of a bounded value cannot fail"),
        );
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&XNonce::from(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }
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
}
