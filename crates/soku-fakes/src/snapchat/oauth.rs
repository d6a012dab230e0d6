//! `accounts.snapchat.com`: the authorization page and the token endpoint.

use super::*;
use crate::common::{parse_form, percent_encode};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// [AUTH] "GET https://accounts.snapchat.com/login/oauth2/authorize" with `client_id` ("Client
/// ID"), `redirect_uri` ("URLEncoded Redirect URI (must match URI on OAuth App)"),
/// `response_type` ("Must be "code""), `scope` ("Refer to the scopes reference table below"),
/// `state` ("Optional; Will be passed through in redirect; Used for verification of request
/// authenticity"). Undocumented: the redirect's parameters; the fake sends `code` and `state`,
/// or the RFC 6749 §4.1.2.1 `error=access_denied` and `state` when the user refuses [3P code
/// reads `error` on the callback]. A bad `client_id`, `redirect_uri` or `response_type` gets a
/// 400 page (undocumented; RFC 6749 says not to redirect then).
pub(super) async fn authorize_page(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "authorize");
    st.authorize_queries.push(q.clone());
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "Invalid client_id").into_response();
    }
    let redirect_uri = get("redirect_uri").to_owned();
    if !st.redirect_uris.contains(&redirect_uri) {
        return (StatusCode::BAD_REQUEST, "Invalid redirect_uri").into_response();
    }
    if get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "response_type must be code").into_response();
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let state = q
        .get("state")
        .map(|v| format!("&state={}", percent_encode(v)))
        .unwrap_or_default();
    if std::mem::take(&mut st.deny_next) {
        let location = format!("{redirect_uri}{sep}error=access_denied{state}");
        return (StatusCode::FOUND, [("location", location)]).into_response();
    }
    let scope = st
        .granted_scope
        .clone()
        .unwrap_or_else(|| get("scope").to_owned());
    let code = new_token("code.");
    st.codes.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.clone(),
            scope,
            issued: Instant::now(),
        },
    );
    let location = format!("{redirect_uri}{sep}code={}{state}", percent_encode(&code));
    (StatusCode::FOUND, [("location", location)]).into_response()
}

/// [3P: every implementation] `POST https://accounts.snapchat.com/login/oauth2/access_token`,
/// `application/x-www-form-urlencoded`, the client's credentials in the body (`client_id`,
/// `client_secret`). Exchange: `grant_type=authorization_code`, `code`, `redirect_uri`.
/// Refresh: `grant_type=refresh_token`, `refresh_token`. Answer [3P: Snap's old doc example
/// copied by SDK fixtures]: `access_token`, `token_type` ("Bearer"), `expires_in` (1800),
/// `refresh_token`, `scope`. Undocumented: the error bodies; the fake chooses RFC 6749 §5.2:
/// 400 `invalid_request`, 401 `invalid_client`, 400 `invalid_grant` (a code unknown, used,
/// older than 10 minutes or issued for another `redirect_uri`; a refresh token unknown, rotated
/// away or revoked), 400 `unsupported_grant_type`. Codes are single-use (gone once presented).
pub(super) async fn token_endpoint(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "token");
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            400,
            "invalid_request",
            "The body must be application/x-www-form-urlencoded.",
        );
    }
    let form = parse_form(&body);
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return oauth_error(401, "invalid_client", "Client authentication failed.");
    }
    let (scope, old_refresh) = match get("grant_type") {
        "authorization_code" => {
            let Some(grant) = st.codes.remove(get("code")) else {
                return oauth_error(400, "invalid_grant", "Invalid authorization code.");
            };
            if grant.issued.elapsed() > CODE_TTL {
                return oauth_error(400, "invalid_grant", "The authorization code expired.");
            }
            if grant.redirect_uri != get("redirect_uri") {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "redirect_uri does not match the authorization request.",
                );
            }
            (grant.scope, None)
        }
        "refresh_token" => match st.refresh.get(get("refresh_token")) {
            Some(r) if !r.revoked => (r.scope.clone(), Some(get("refresh_token").to_owned())),
            _ => return oauth_error(400, "invalid_grant", "Invalid refresh token."),
        },
        "" => return oauth_error(400, "invalid_request", "grant_type is required."),
        _ => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                "The grant type is not supported.",
            );
        }
    };
    let access = new_token("snapat.");
    st.access.insert(
        access.clone(),
        AccessToken {
            scope: scope.clone(),
            expires: Instant::now() + Duration::from_secs(ACCESS_TTL_SECS),
            revoked: false,
        },
    );
    let mut answer = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL_SECS,
        "scope": scope,
    });
    let refresh = match (old_refresh, st.refresh_mode) {
        (Some(_), RefreshMode::Omit) => None,
        (Some(old), RefreshMode::Same) => Some(old),
        (old, _) => {
            if let Some(old) = old {
                st.refresh.remove(&old);
            }
            let r = new_token("snaprt.");
            st.refresh.insert(
                r.clone(),
                RefreshToken {
                    scope: scope.clone(),
                    revoked: false,
                },
            );
            Some(r)
        }
    };
    if let Some(r) = refresh {
        answer["refresh_token"] = json!(r);
    }
    if st.omit_expires_in {
        answer.as_object_mut().unwrap().remove("expires_in");
    }
    json(200, answer)
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"error": error, "error_description": description}),
    )
}
