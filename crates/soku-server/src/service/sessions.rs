//! The signed-in user's dashboard sessions (spec 4.2): listing them, and ending one, all, or
//! the caller's own (sign-out). Ending a session is recorded as `session.signed_out` in the
//! same transaction; the session fails on its next request, whichever copy of its cookie
//! carries it.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{SessionList, SessionView, SessionsRevoked};
use serde_json::json;
use soku_core::audit::{AuditDraft, AuditKind, Origin};
use soku_core::model::SessionRecord;
use soku_core::time::rfc3339_millis;

/// The caller's dashboard session's id (only sessions manage sessions).
fn current(caller: &Caller) -> ApiResult<&str> {
    caller
        .session_info()
        .map(|s| s.id.as_str())
        .ok_or_else(|| ApiError::internal("a sessions call without a session caller"))
}

/// The user's sessions that are neither revoked nor expired, newest first, the caller's own
/// marked.
pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<SessionList> {
    let this = current(caller)?;
    let sessions = state
        .store
        .list_sessions(&caller.user_id, state.clock.now())
        .await?;
    Ok(SessionList {
        sessions: sessions.iter().map(|s| view(s, this)).collect(),
    })
}

fn view(s: &SessionRecord, current: &str) -> SessionView {
    SessionView {
        id: s.id.clone(),
        device: device(s.user_agent.as_deref()),
        user_agent: s.user_agent.clone(),
        ip: s.ip.clone(),
        created_at: rfc3339_millis(s.created_at),
        last_seen_at: rfc3339_millis(s.last_seen_at),
        expires_at: rfc3339_millis(s.expires_at),
        current: s.id == current,
    }
}

/// Ends the user's session `id` (404 when the user has no such active session). True when it
/// was the caller's own.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    id: &str,
    origin: Origin,
) -> ApiResult<bool> {
    let this = current(caller)?;
    let draft = AuditDraft::new(
        AuditKind::SignedOut,
        origin,
        json!({ "sessionId": id, "current": id == this }),
    );
    let ended = state
        .store
        .revoke_sessions(&caller.user_id, Some(id), state.clock.now(), &draft)
        .await?;
    if ended == 0 {
        return Err(ApiError::not_found("session"));
    }
    Ok(id == this)
}

/// Ends every session of the user, the caller's own included ("Sign out everywhere"), and the
/// user's ID tokens signed in before now (the store moves their `tokens_valid_after`; this
/// node forgets the user's cached profile, other nodes see it within `KEY_CACHE_TTL`).
pub async fn revoke_all(
    state: &AppState,
    caller: &Caller,
    origin: Origin,
) -> ApiResult<SessionsRevoked> {
    current(caller)?;
    let draft = AuditDraft::new(AuditKind::SignedOut, origin, json!({ "everywhere": true }));
    let revoked = state
        .store
        .revoke_sessions(&caller.user_id, None, state.clock.now(), &draft)
        .await?;
    state.users.forget(&caller.user_id);
    Ok(SessionsRevoked { revoked })
}

/// Signs the caller's own session out.
pub async fn sign_out(state: &AppState, caller: &Caller, origin: Origin) -> ApiResult<()> {
    let this = current(caller)?;
    let draft = AuditDraft::new(
        AuditKind::SignedOut,
        origin,
        json!({ "sessionId": this, "current": true }),
    );
    // Zero ended: another request ended it a moment ago; signed out all the same.
    state
        .store
        .revoke_sessions(&caller.user_id, Some(this), state.clock.now(), &draft)
        .await?;
    Ok(())
}

/// A short description of a browser from its `User-Agent`: "Firefox on Linux", "Safari on
/// iOS", or the agent's first word (cut to 40 characters) when it is no browser this knows.
pub fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("HeadlessChrome/") {
        Some("Headless Chrome")
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        Some("Chrome")
    } else if has("Safari/") && has("Version/") {
        Some("Safari")
    } else {
        None
    };
    // Before macOS and Linux: iOS agents say "like Mac OS X", Android ones "Linux".
    let system = if has("iPhone") || has("iPad") || has("iPod") {
        Some("iOS")
    } else if has("Android") {
        Some("Android")
    } else if has("Windows") {
        Some("Windows")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("Linux") || has("X11") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, _) => {
            let first = ua.split_whitespace().next().unwrap_or(ua);
            let name = first.split('/').next().unwrap_or(first);
            let name: String = name.chars().take(40).collect();
            match system {
                Some(s) => format!("{name} on {s}"),
                None => name,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::device;

    #[test]
    fn devices_from_user_agents() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "Chrome on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
                "Headless Chrome on Linux",
            ),
            ("curl/8.5.0", "curl"),
            ("", "Unknown device"),
        ];
        for (ua, expected) in cases {
            assert_eq!(device(Some(ua)), expected, "{ua}");
        }
        assert_eq!(device(None), "Unknown device");
        assert_eq!(device(Some(&"x".repeat(300))).len(), 40);
    }
}
