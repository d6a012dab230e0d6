//! Which scope each API-key route needs (spec 4.1), checked once, in the extractors of API-key
//! callers (`extract::ApiKeyAuth`, `extract::KeyOrToken`), before the handler runs: a request
//! outside its key's scopes learns nothing about the resource it names.
//!
//! The table is by method and route template. The OpenAPI document names the same scope in
//! each operation's `apiKey` security requirement; a test holds the two equal, so that no
//! API-key route lacks an entry.

use super::caller::{Caller, Scopes};
use crate::error::ApiError;
use axum::extract::MatchedPath;
use axum::http::Method;
use axum::http::request::Parts;
use serde_json::json;
use soku_core::ErrorCode;
use soku_core::scopes::Scope;

/// What a route asks of a restricted key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Any valid key (`GET /v1/me`).
    AnyKey,
    Scope(Scope),
}

/// The requirement of an API-key route; `None` for a route the table does not know (refused
/// to restricted keys).
pub fn requirement(method: &Method, route: &str) -> Option<Requirement> {
    use Requirement::{AnyKey, Scope as S};
    use Scope::*;
    let read = *method == Method::GET || *method == Method::HEAD;
    Some(match route {
        "/v1/me" if read => AnyKey,
        "/v1/posts" | "/v1/posts/{id}" if read => S(PostsRead),
        r if r.starts_with("/v1/sandbox/") && read => S(PostsRead),
        "/v1/posts" if *method == Method::POST => S(PostsWrite),
        "/v1/posts/{id}" if *method == Method::DELETE => S(PostsWrite),
        "/v1/media" | "/v1/media/{id}" if read => S(MediaRead),
        "/v1/media" | "/v1/media/uploads" if *method == Method::POST => S(MediaWrite),
        "/v1/media/{id}" if *method == Method::DELETE => S(MediaWrite),
        "/v1/media/render-og" | "/v1/templates" if *method == Method::POST => S(TemplatesWrite),
        r if r.starts_with("/v1/accounts") && read => S(AccountsRead),
        "/v1/accounts/connect" if *method == Method::POST => S(AccountsWrite),
        "/v1/accounts/{id}" if *method == Method::PATCH || *method == Method::DELETE => {
            S(AccountsWrite)
        }
        "/v1/ai/transcribe" if *method == Method::POST => S(AiTranscribe),
        r if r.starts_with("/v1/repurposeLinks") && read => S(RepurposeRead),
        r if r.starts_with("/v1/repurposeLinks")
            && (*method == Method::POST || *method == Method::DELETE) =>
        {
            S(RepurposeWrite)
        }
        _ => return None,
    })
}

/// Refuses a caller by API key whose scopes do not cover the request's route: 403 `forbidden`
/// with `details.requiredScope`. Keys with full access (and other credentials) pass without a
/// lookup.
pub fn require_scope(caller: &Caller, parts: &Parts) -> Result<(), ApiError> {
    let Scopes::Only(_) = caller.scopes else {
        return Ok(());
    };
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    match route.and_then(|r| requirement(&parts.method, r)) {
        Some(Requirement::AnyKey) => Ok(()),
        Some(Requirement::Scope(scope)) if caller.scopes.covers(scope) => Ok(()),
        Some(Requirement::Scope(scope)) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("This API key does not have the '{scope}' scope."),
        )
        .with_details(json!({ "requiredScope": scope.as_str() }))),
        None => Err(ApiError::new(
            ErrorCode::Forbidden,
            "This API key's scopes do not cover this endpoint.",
        )
        .with_details(json!({ "requiredScope": null }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation that takes an API key names, in the OpenAPI document, the scope the
    /// table requires of it (none for `GET /v1/me`), and the table has an entry for each.
    #[test]
    fn every_api_key_route_has_its_scope_in_the_table_and_the_document() {
        let doc = serde_json::to_value(crate::api::routes().doc).unwrap();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(documented) = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find_map(|s| s.get("apiKey"))
                else {
                    continue;
                };
                let documented: Vec<&str> = documented
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let method: Method = method.to_uppercase().parse().unwrap();
                let expected = match requirement(&method, path) {
                    Some(Requirement::AnyKey) => vec![],
                    Some(Requirement::Scope(s)) => vec![s.as_str()],
                    None => panic!("{method} {path} takes an API key but has no scope"),
                };
                assert_eq!(documented, expected, "{method} {path}");
                checked += 1;
            }
        }
        assert!(checked >= 14, "only {checked} API-key operations found");
    }

    #[test]
    fn the_table_follows_the_spec() {
        let cases = [
            (Method::GET, "/v1/me", Some(Requirement::AnyKey)),
            (
                Method::GET,
                "/v1/posts/{id}",
                Some(Requirement::Scope(Scope::PostsRead)),
            ),
            (
                Method::DELETE,
                "/v1/posts/{id}",
                Some(Requirement::Scope(Scope::PostsWrite)),
            ),
            (
                Method::GET,
                "/v1/sandbox/{platform}/posts",
                Some(Requirement::Scope(Scope::PostsRead)),
            ),
            (
                Method::POST,
                "/v1/media/uploads",
                Some(Requirement::Scope(Scope::MediaWrite)),
            ),
            (
                Method::HEAD,
                "/v1/media/{id}",
                Some(Requirement::Scope(Scope::MediaRead)),
            ),
            (
                Method::PATCH,
                "/v1/accounts/{id}",
                Some(Requirement::Scope(Scope::AccountsWrite)),
            ),
            (
                Method::POST,
                "/v1/media/render-og",
                Some(Requirement::Scope(Scope::TemplatesWrite)),
            ),
            (
                Method::DELETE,
                "/v1/repurposeLinks/{id}",
                Some(Requirement::Scope(Scope::RepurposeWrite)),
            ),
            (Method::PUT, "/v1/posts/{id}", None),
            (Method::POST, "/v1/me", None),
        ];
        for (method, route, expected) in cases {
            assert_eq!(requirement(&method, route), expected, "{method} {route}");
        }
    }
}
