//! Extractors: what a handler's signature says it needs.
//!
//! Each authentication extractor yields a `Caller` (`crate::auth::Caller`), found by
//! `auth::identified` (as the request middleware identified it, or now):
//! - `ApiKeyAuth`: a valid `soku-api-key` whose owner passes the subscription gate and whose
//!   scopes cover the route (`auth::scopes`).
//! - `IdTokenUser`: a valid `Authorization: Bearer <ID token>`; the user is created on first
//!   sight.
//! - `KeyOrToken`: either of those.
//! - `SessionUser`: a signed-in dashboard session (`Option<SessionUser>`: none is no error).
//! - `SessionForChange`: a signed-in dashboard session and its CSRF token in `X-CSRF-Token`,
//!   for state-changing dashboard calls.
//! - `ClientOrigin`: the client's address and `User-Agent`, for the audit log.
//! - `ApiJson<T>`: a JSON object body, with the spec's 413/415/400 answers and the failing
//!   field's JSON path in `details.field`.
//! - `MediaUpload`: a file sent as the body (`POST /v1/media/uploads`, the dashboard's
//!   upload): its declared type and length, its `Idempotency-Key`, and the bytes as a stream.

use crate::auth::{self, Accepts, AuthFailure, Caller, Credential};
use crate::error::ApiError;
use crate::service::media::{self, BodyError, Declared};
use crate::service::posts::idempotency_key;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderName, Version};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use soku_core::audit::Origin;
use std::time::Duration;

/// `Idempotency-Key` (spec 6.1; media after it).
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The caller of a request on a route taking `accepts`, or the route's refusal.
async fn caller(state: &AppState, parts: &mut Parts, accepts: Accepts) -> Result<Caller, ApiError> {
    auth::identified(state, parts, accepts)
        .await
        .map_err(|failure| failure.reject(state))
}

/// The owner of a valid API key, past the subscription gate.
pub struct ApiKeyAuth(pub Caller);

impl FromRequestParts<AppState> for ApiKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = caller(state, parts, Accepts::ApiKey).await?;
        auth::gate(state, &caller)?;
        auth::scopes::require_scope(&caller, parts)?;
        Ok(ApiKeyAuth(caller))
    }
}

/// The user behind a verified ID token.
pub struct IdTokenUser(pub Caller);

impl FromRequestParts<AppState> for IdTokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state, parts, Accepts::IdToken)
            .await
            .map(IdTokenUser)
    }
}

/// The caller of an endpoint that takes an API key (`soku-api-key`) or an ID token
/// (`Authorization: Bearer`); a request with both is judged by its key. ID tokens act in live
/// mode; a key's owner passes the subscription gate.
pub struct KeyOrToken(pub Caller);

impl FromRequestParts<AppState> for KeyOrToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = caller(state, parts, Accepts::KeyOrToken).await?;
        if let Credential::ApiKey(_) = caller.credential {
            auth::gate(state, &caller)?;
            auth::scopes::require_scope(&caller, parts)?;
        }
        Ok(Self(caller))
    }
}

/// The signed-in user of a dashboard request (live mode; `Caller::session_info` has the
/// user's record and the session's CSRF token).
pub struct SessionUser(pub Caller);

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state, parts, Accepts::Session)
            .await
            .map(SessionUser)
    }
}

/// `Option<SessionUser>`: `None` without a valid session (the pages send such a visitor to
/// the sign-in page).
impl OptionalFromRequestParts<AppState> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        match auth::identified(state, parts, Accepts::Session).await {
            Ok(caller) => Ok(Some(SessionUser(caller))),
            Err(AuthFailure::NotSignedIn) => Ok(None),
            Err(failure) => Err(failure.reject(state)),
        }
    }
}

/// The signed-in user of a state-changing dashboard request, which must carry the session's
/// CSRF token in `X-CSRF-Token` (403 otherwise).
pub struct SessionForChange(pub Caller);

impl FromRequestParts<AppState> for SessionForChange {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        caller(state, parts, Accepts::SessionForChange)
            .await
            .map(SessionForChange)
    }
}

/// Where a request comes from, for the audit log: the client's address (through the trusted
/// proxies) and its `User-Agent`.
pub struct ClientOrigin(pub Origin);

impl FromRequestParts<AppState> for ClientOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ClientOrigin(origin_of(state, parts)))
    }
}

/// The audit origin of a request.
pub fn origin_of(state: &AppState, parts: &Parts) -> Origin {
    let ip = auth::client_address(state, &parts.headers, &parts.extensions);
    let agent = parts.headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
    Origin::new(Some(ip.to_string()), agent)
}

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req.headers().get(CONTENT_TYPE).cloned();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| ApiError::for_framework_status(rejection.status(), "POST"))?;
        if bytes.is_empty() {
            // Every field of a body-less call is optional or reported as required below.
            return parse_json(b"{}").map(ApiJson);
        }
        let is_json = content_type
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::for_framework_status(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "POST",
            ));
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// A file sent as the request's body: its `Content-Type` and `Content-Length` checked
/// (`media::declared`), its `Idempotency-Key`, and the body as a stream whose every chunk must
/// arrive within the server's upload idle time. Nothing of the body is read here.
pub struct MediaUpload {
    pub declared: Declared,
    pub idempotency_key: Option<String>,
    pub body: std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>,
}

impl FromRequest<AppState> for MediaUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let headers = req.headers();
        let idempotency_key = idempotency_key(headers.get(&IDEMPOTENCY_KEY))?;
        // HTTP/1 without `Transfer-Encoding` and without `Content-Length` has no body at all.
        let bodiless = req.version() < Version::HTTP_2 && !headers.contains_key(TRANSFER_ENCODING);
        let declared = media::declared(
            headers.get(CONTENT_TYPE),
            headers.get(CONTENT_LENGTH),
            bodiless,
        )?;
        Ok(MediaUpload {
            declared,
            idempotency_key,
            body: Box::pin(idle_bounded(req.into_body(), state.media.upload_idle)),
        })
    }
}

/// The body as a stream whose every chunk must arrive within `idle`.
fn idle_bounded(body: Body, idle: Duration) -> impl Stream<Item = Result<Bytes, BodyError>> {
    futures_util::stream::unfold(Some(body.into_data_stream()), move |stream| async move {
        let mut stream = stream?;
        let mut next = stream.next();
        // While bytes flow the next chunk is usually there already: a timer only when it is not.
        let polled = match futures_util::FutureExt::now_or_never(&mut next) {
            Some(ready) => Ok(ready),
            None => tokio::time::timeout(idle, next).await,
        };
        match polled {
            Err(_) => Some((Err(BodyError::Idle), None)),
            Ok(None) => None,
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
            Ok(Some(Err(_))) => Some((Err(BodyError::Broken), None)),
        }
    })
}

/// Parses a JSON object into `T`, naming the failing field and reason the way the spec asks.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::validation(
            "body",
            "invalid_json",
            format!("The request body is not valid JSON ({e})."),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "body",
            "invalid_type",
            "The request body must be a JSON object.",
        ));
    }
    // JSON can carry a NUL only as `\u0000`: the walk runs only when the bytes hold one.
    if bytes.windows(6).any(|w| w == b"\\u0000")
        && let Some(field) = nul_path(&value, "")
    {
        return Err(ApiError::validation(
            &field,
            "invalid_value",
            format!("'{field}' must not contain the NUL character (U+0000)."),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let (field, reason) = classify(&path, &inner);
        ApiError::validation(
            &field,
            reason,
            format!("Invalid value for '{field}': {inner}."),
        )
    })
}

/// The path of the first string (or member name) holding a NUL character, in the spec's
/// `details.field` form (`post.content.platform[1]`; `body` for the whole body). No text of
/// this API can mean one, platforms refuse it, and PostgreSQL cannot store it: refused at the
/// door, it is refused the same way on every backend instead of failing later.
fn nul_path(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    let here = || {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        Value::String(s) => s.contains('\0').then(here),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, &format!("{path}[{i}]"))),
        Value::Object(members) => members.iter().find_map(|(name, member)| {
            if name.contains('\0') {
                return Some(here());
            }
            let inner = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            nul_path(member, &inner)
        }),
        _ => None,
    }
}

fn classify(path: &str, message: &str) -> (String, &'static str) {
    let base = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        let field = if base.is_empty() {
            name.to_owned()
        } else {
            format!("{base}.{name}")
        };
        return (field, "required");
    }
    let reason = if message.starts_with("invalid type") {
        "invalid_type"
    } else if message.starts_with("unknown field") {
        "unknown_field"
    } else {
        "invalid_value"
    };
    let field = if base.is_empty() {
        "body".to_owned()
    } else {
        base.to_owned()
    };
    (field, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        post: Inner,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        content: Content,
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Content {
        text: Option<String>,
        platform: Vec<String>,
        #[serde(default)]
        mode: Option<Mode>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Live,
    }

    fn details(body: &str) -> (String, String) {
        let e = parse_json::<Outer>(body.as_bytes()).unwrap_err();
        let d = e.details.unwrap();
        (
            d["field"].as_str().unwrap().into(),
            d["reason"].as_str().unwrap().into(),
        )
    }

    #[test]
    fn names_the_json_path() {
        assert_eq!(
            details(r#"{"post":{"content":{"text":"x"}}}"#),
            ("post.content.platform".into(), "required".into())
        );
        assert_eq!(
            details(r#"{"post":{"content":{"text":5,"platform":[]}}}"#),
            ("post.content.text".into(), "invalid_type".into())
        );
        assert_eq!(
            details(r#"{"post":{"content":{"platform":[1]}}}"#),
            ("post.content.platform[0]".into(), "invalid_type".into())
        );
        assert_eq!(
            details(r#"{"post":{"content":{"platform":[],"mode":"x"}}}"#),
            ("post.content.mode".into(), "invalid_value".into())
        );
        assert_eq!(details(r#"{}"#), ("post".into(), "required".into()));
        assert_eq!(details(r#"[1]"#), ("body".into(), "invalid_type".into()));
        assert_eq!(
            details(r#"{"post":"#),
            ("body".into(), "invalid_json".into())
        );
    }

    #[test]
    fn a_nul_anywhere_is_refused_with_its_path() {
        assert_eq!(
            details(r#"{"post":{"content":{"text":"a\u0000b","platform":["x"]}}}"#),
            ("post.content.text".into(), "invalid_value".into())
        );
        assert_eq!(
            details(r#"{"post":{"content":{"platform":["x","y\u0000"]}}}"#),
            ("post.content.platform[1]".into(), "invalid_value".into())
        );
        assert_eq!(
            details(r#"{"post":{"content":{"platform":[]},"k\u0000":1}}"#),
            ("post".into(), "invalid_value".into())
        );
        // An escaped backslash followed by `u0000` is six characters of text, not a NUL.
        let fine = r#"{"post":{"content":{"text":"a\\u0000b","platform":["x"]}}}"#;
        assert!(parse_json::<Outer>(fine.as_bytes()).is_ok());
    }
}
