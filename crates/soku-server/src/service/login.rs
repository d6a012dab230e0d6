//! Signing in with the built-in identity provider's email and password, for an ID token of
//! the built-in issuer.

use crate::auth::passwords;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::IdTokenIssued;
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use serde_json::json;
use sha2::{Digest, Sha256};
use soku_core::ErrorCode;
use soku_core::audit::{AuditEvent, AuditKind, Origin};
use soku_core::ratelimit::Subject;
use soku_media::ingest::hex;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// ID tokens from a password sign-in last this long.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The longest email address (RFC 5321: a path of 256 octets, brackets included).
pub const MAX_EMAIL: usize = 254;

/// The throttle's keys for an attempt: the email's (by a digest, so that an attacker's long
/// addresses cost the map no more than short ones) and the client's address (IPv6 by /64, as
/// the rate limits count it).
fn throttle_keys(email: &str, client: Option<IpAddr>) -> Vec<String> {
    let digest = Sha256::digest(email.as_bytes());
    let mut keys = vec![format!("email:{}", hex(&digest[..16]))];
    if let Some(client) = client {
        keys.push(Subject::ip(client).key());
    }
    keys
}

/// Checks `email` and `password`, with the throttle on failed attempts per email and per
/// `client` address (the client's, not a proxy's, or every client behind one proxy would share
/// one count), and issues an ID token. A wrong password records `session.sign_in_failed` for
/// the users with that email, from `origin` (never the password).
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: String,
    client: Option<IpAddr>,
    origin: Origin,
) -> ApiResult<IdTokenIssued> {
    let email = email.trim().to_lowercase();
    if email.len() > MAX_EMAIL {
        return Err(ApiError::validation(
            "email",
            "too_long",
            format!("An email address has at most {MAX_EMAIL} characters."),
        ));
    }
    // A turn to check the password first: attempts beyond what the CPUs can check wait here
    // (briefly), and neither reach the throttle's map nor the blocking threads.
    let Some(turn) = state.password_checks.turn().await else {
        return Err(ApiError::new(
            ErrorCode::ServiceUnavailable,
            "Too many sign-ins are being checked right now; try again in a moment.",
        )
        .with_header(RETRY_AFTER, HeaderValue::from_static("1")));
    };
    let keys = throttle_keys(&email, client);
    // The attempt is counted as a failure before the password is checked (exact under
    // concurrency): this bounds the failures, and so the events below, to five per email per
    // 15 minutes on each server process.
    if let Err(wait) = state.login_throttle.attempt(&keys, Instant::now()) {
        return Err(ApiError::new(
            ErrorCode::RateLimitExceeded,
            "Too many failed sign-in attempts; try again later.",
        )
        .with_details(json!({ "limit": "sign_in" }))
        .with_header(
            RETRY_AFTER,
            HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64),
        ));
    }
    let candidates = if email.is_empty() || password.is_empty() || password.len() > 1024 {
        Vec::new()
    } else {
        state.store.password_users(&email).await?
    };
    let users: Vec<String> = candidates.iter().map(|(user, _)| user.id.clone()).collect();
    let matched = tokio::task::spawn_blocking(move || {
        if candidates.is_empty() {
            // The same work as a wrong password, so that timing does not tell which emails exist.
            passwords::verify(passwords::decoy(), &password);
            return None;
        }
        candidates
            .into_iter()
            .find(|(_, hash)| passwords::verify(hash, &password))
            .map(|(user, _)| user)
    })
    .await
    .map_err(ApiError::internal)?;
    drop(turn);
    let Some(user) = matched else {
        record_failure(state, users, origin);
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "The email or password is incorrect.",
        ));
    };
    state.login_throttle.succeeded(&keys);
    let token = state
        .tokens
        .builtin()
        .issue(
            &user.id,
            user.email.as_deref(),
            state.clock.now(),
            TOKEN_TTL,
        )
        .map_err(ApiError::internal)?;
    Ok(IdTokenIssued {
        id_token: token,
        expires_in: TOKEN_TTL.as_secs(),
        user_id: user.id,
    })
}

/// Records `session.sign_in_failed` for each user with the email tried (the audit log is per
/// user; an email that belongs to no user has nobody to record it against, so it records
/// nothing). Written in the background: waiting for the write would make a wrong password for
/// a known email slower than one for an unknown email, telling an attacker which emails exist.
fn record_failure(state: &AppState, users: Vec<String>, origin: Origin) {
    if users.is_empty() {
        return;
    }
    let store = state.store.clone();
    let now = state.clock.now();
    tokio::spawn(async move {
        for user in users {
            let event = AuditEvent::new(
                &user,
                AuditKind::SignInFailed,
                now,
                None,
                origin.clone(),
                json!({ "method": "password" }),
            );
            if let Err(e) = store.insert_audit_event(&event).await {
                tracing::warn!(error = %e, "could not record a failed sign-in");
            }
        }
    });
}
