//! Dashboard sessions: the sealed session cookie and its CSRF token.
//!
//! The cookie holds the user id, an expiry and a CSRF token, sealed (XChaCha20-Poly1305 with
//! the server's secret key): `HttpOnly`, `SameSite=Lax`, `Secure` when the public URL is
//! HTTPS, 12 hours. State-changing dashboard calls send the CSRF token back in
//! `X-CSRF-Token`.

use crate::state::AppState;
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use soku_core::StoreError;
use soku_core::model::User;

pub const SESSION_COOKIE: &str = "soku_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// What the cookie holds, sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The user id.
    u: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// The CSRF token of this session.
    c: String,
}

/// A signed-in dashboard session: its user and its CSRF token.
#[derive(Debug)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

/// A new session of `user_id`: the cookie's value (sealed, base64url), valid `SESSION_HOURS`.
pub fn seal(state: &AppState, user_id: String) -> String {
    let sealed = Sealed {
        u: user_id,
        e: state.clock.now().timestamp() + SESSION_HOURS * 3600,
        c: soku_core::keys::random_id("", 32),
    };
    let sealed = state
        .secrets
        .seal(&serde_json::to_string(&sealed).expect("a session serialises"));
    URL_SAFE_NO_PAD.encode(sealed)
}

/// The request's session, if its cookie holds a valid, unexpired one of a known user.
pub async fn open(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    let Some(raw) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(sealed) = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|sealed| state.secrets.open(&sealed))
        .and_then(|json| serde_json::from_str::<Sealed>(&json).ok())
    else {
        return Ok(None);
    };
    if sealed.e <= state.clock.now().timestamp() {
        return Ok(None);
    }
    let Some(user) = state.store.get_user(&sealed.u).await? else {
        return Ok(None);
    };
    Ok(Some(Session {
        user,
        csrf: sealed.c,
    }))
}

/// The user of the request's dashboard session, if it has a valid one.
pub async fn session_user_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    open(state, headers).await.ok().flatten().map(|s| s.user.id)
}

/// Whether the request carries the session's CSRF token in `X-CSRF-Token`.
pub fn csrf_matches(session: &Session, headers: &HeaderMap) -> bool {
    let sent = headers.get(&CSRF_HEADER).and_then(|v| v.to_str().ok());
    sent.is_some_and(|s| constant_time_eq(s.as_bytes(), session.csrf.as_bytes()))
}

/// `Set-Cookie` for the session cookie with `value` (empty, with `max_age` 0, to sign out).
pub fn cookie_header(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// Cookies are `Secure` when the server's public URL is HTTPS.
fn secure(state: &AppState) -> bool {
    state.tokens.builtin().issuer().starts_with("https://")
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_comparison() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; soku_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
