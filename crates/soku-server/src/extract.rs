//! Extractors: what a handler's signature says it needs.
//!
//! Each authentication extractor yields a `Caller` (`crate::auth::Caller`):
//! - `ApiKeyAuth`: a valid `soku-api-key` whose owner passes the subscription gate.
//! - `IdTokenUser`: a valid `Authorization: Bearer <ID token>`; the user is created on first
//!   sight.
//! - `KeyOrToken`: either of those.
//! - `ApiJson<T>`: a JSON object body, with the spec's 413/415/400 answers and the failing
//!   field's JSON path in `details.field`.

use crate::auth::Caller;
use crate::auth::keys::KeyFailure;
use crate::auth::tokens::TokenFailure;
use crate::error::ApiError;
use crate::middleware::RequestContext;
use crate::ratelimit::{Checked, bearer_token};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::Extensions;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub struct ApiKeyAuth(pub Caller);

/// The credentials the middleware's rate-limit step already checked, when it ran.
fn checked(extensions: &mut Extensions) -> Option<&mut Checked> {
    extensions
        .get_mut::<RequestContext>()
        .map(|c| &mut c.checked)
}

impl FromRequestParts<AppState> for ApiKeyAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate-limit middleware has usually checked the key already.
        let outcome = match checked(&mut parts.extensions).and_then(|c| c.key.take()) {
            Some(outcome) => outcome,
            None => state.keys.authenticate(&parts.headers).await,
        };
        match outcome {
            Ok(grant) => Ok(ApiKeyAuth(Caller::api_key(grant))),
            Err(failure) => {
                state.metrics.record_auth_failure(failure.reason());
                Err(match failure {
                    KeyFailure::Subscription => ApiError::subscription_required(),
                    KeyFailure::Unavailable => ApiError::unavailable(
                        "The service is temporarily unavailable.",
                        "the database did not answer the key lookup",
                    ),
                    _ => ApiError::invalid_api_key(),
                })
            }
        }
    }
}

/// The user behind a verified ID token.
pub struct IdTokenUser(pub Caller);

impl FromRequestParts<AppState> for IdTokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let reject = |reason: &'static str| {
            state.metrics.record_auth_failure(reason);
            ApiError::invalid_id_token()
        };
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Err(reject("token_missing"));
        }
        let Some(token) = bearer_token(&parts.headers) else {
            return Err(reject("token_malformed"));
        };
        // The rate-limit middleware has usually verified the token already.
        let verified = match checked(&mut parts.extensions).and_then(|c| c.token.take()) {
            Some(verified) => verified,
            None => state.tokens.verify(token).await,
        };
        let identity = match verified {
            Ok(identity) => identity,
            Err(TokenFailure::Rejected(r)) => return Err(reject(r.as_str())),
            Err(TokenFailure::KeysUnavailable) => {
                state.metrics.record_auth_failure("token_keys_unavailable");
                return Err(ApiError::unavailable(
                    "ID tokens cannot be verified right now; try again shortly.",
                    "the identity provider's public keys could not be fetched",
                ));
            }
        };
        let known = state
            .known_users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&identity.uid);
        if !known {
            state
                .store
                .ensure_user(&identity.uid, identity.email.as_deref(), state.clock.now())
                .await?;
            state
                .known_users
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(identity.uid.clone());
        }
        Ok(IdTokenUser(Caller::id_token(identity.uid)))
    }
}

/// The caller of an endpoint that takes an API key (`soku-api-key`) or an ID token
/// (`Authorization: Bearer`); a request with both is judged by its key. ID tokens act in live
/// mode.
pub struct KeyOrToken(pub Caller);

impl FromRequestParts<AppState> for KeyOrToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // An API key sent as a bearer token is a key in the wrong header: the key's 401.
        let key_as_bearer = bearer_token(&parts.headers).is_some_and(|t| t.starts_with("sk_"));
        if parts.headers.contains_key(AUTHORIZATION)
            && !parts.headers.contains_key("soku-api-key")
            && !key_as_bearer
        {
            let IdTokenUser(caller) = IdTokenUser::from_request_parts(parts, state).await?;
            return Ok(Self(caller));
        }
        let ApiKeyAuth(caller) = ApiKeyAuth::from_request_parts(parts, state).await?;
        Ok(Self(caller))
    }
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
}
