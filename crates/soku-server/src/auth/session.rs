//! Dashboard sessions (spec 4.2): server-side sessions behind a sealed cookie, and their CSRF
//! token.
//!
//! Signing in stores a `sessions` row (`ses_` and 32 random characters, 12 hours, the client's
//! address and `User-Agent`) with its `session.signed_in` event, and sets a cookie holding the
//! session's id, its expiry and its CSRF token, sealed with the session-cookie key (derived
//! from the server's secret key with HKDF, apart from the account-token key: see
//! `soku_engine::secrets`): `HttpOnly`, `SameSite=Lax`, `Secure` when the public URL is HTTPS,
//! 12 hours. Every request looks the session up (`Store::find_session`, not cached): a
//! revoked, expired or unknown session is no session, so signing out (or "Sign out
//! everywhere") ends it for every copy of the cookie on its next request. The session's
//! `last_seen_at` and address are written at most once a minute, in the background.
//! State-changing dashboard calls send the CSRF token back in `X-CSRF-Token`.

use crate::state::AppState;
use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use soku_core::StoreError;
use soku_core::audit::{AuditEvent, AuditKind, Origin};
use soku_core::model::{SessionRecord, User};
use std::net::IpAddr;

pub const SESSION_COOKIE: &str = "soku_session";
/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
/// At most this many sessions of one user are live at once: signing in beyond it ends the
/// oldest (`session.signed_out` with `details.reason` `session_limit`), so that sign-ins in a
/// loop cannot bury the Sessions page and the audit log.
pub const MAX_SESSIONS_PER_USER: usize = 50;
/// A session's `last_seen_at` is written at most this often.
pub const TOUCH_EVERY_SECS: i64 = 60;
static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// What the cookie holds, sealed.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The session's id.
    s: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// The CSRF token of this session.
    c: String,
}

/// A signed-in dashboard session: its id, its user and its CSRF token.
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub user: User,
    pub csrf: String,
}

/// Starts a session of `user_id` from `origin`: stores it with its `session.signed_in` event
/// and returns the cookie's value (sealed, base64url), valid `SESSION_HOURS`.
pub async fn start(state: &AppState, user_id: &str, origin: Origin) -> Result<String, StoreError> {
    let now = state.clock.now();
    let record = SessionRecord {
        id: soku_core::keys::random_id("ses_", 32),
        user_id: user_id.to_owned(),
        created_at: now,
        expires_at: now + Duration::hours(SESSION_HOURS),
        last_seen_at: now,
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        revoked_at: None,
    };
    let event = AuditEvent::new(
        user_id,
        AuditKind::SignedIn,
        now,
        None,
        origin,
        serde_json::json!({ "sessionId": record.id }),
    );
    state.store.insert_session(&record, &event).await?;
    let live = state.store.list_sessions(user_id, now).await?;
    for oldest in live.iter().skip(MAX_SESSIONS_PER_USER) {
        let draft = soku_core::audit::AuditDraft::new(
            AuditKind::SignedOut,
            Origin::default(),
            serde_json::json!({ "sessionId": oldest.id, "reason": "session_limit" }),
        );
        state
            .store
            .revoke_sessions(user_id, Some(&oldest.id), now, &draft)
            .await?;
    }
    let sealed = Sealed {
        s: record.id,
        e: record.expires_at.timestamp(),
        c: soku_core::keys::random_id("", 32),
    };
    let sealed = state
        .secrets
        .seal_cookie(&serde_json::to_string(&sealed).expect("a session serialises"));
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// The request's session, if its cookie holds one that is neither revoked nor expired, of a
/// known user. `client`: the request's client address, recorded (with the time) at most once
/// a minute, off the request's path.
pub async fn open(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Option<Session>, StoreError> {
    let Some(raw) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(sealed) = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|sealed| state.secrets.open_cookie(&sealed))
        .and_then(|json| serde_json::from_str::<Sealed>(&json).ok())
    else {
        return Ok(None);
    };
    let now = state.clock.now();
    if sealed.e <= now.timestamp() {
        return Ok(None);
    }
    let Some((record, user)) = state.store.find_session(&sealed.s, now).await? else {
        return Ok(None);
    };
    if (now - record.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
        let store = state.store.clone();
        let ip = client.map(|ip| ip.to_string());
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(&record.id, now, ip.as_deref()).await {
                tracing::warn!(error = %e, "could not record a session's last use");
            }
        });
    }
    Ok(Some(Session {
        id: sealed.s,
        user,
        csrf: sealed.c,
    }))
}

/// The user of the request's dashboard session, if it has a valid one.
pub async fn session_user_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    open(state, headers, None)
        .await
        .ok()
        .flatten()
        .map(|s| s.user.id)
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
