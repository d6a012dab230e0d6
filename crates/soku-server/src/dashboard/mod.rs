//! The dashboard at `/`: server-rendered pages with one small script, all embedded in the
//! binary (no Node at run time, nothing from a CDN).
//!
//! Sign-in gives an ID token (`POST /v1/auth/login` for the built-in identity provider), which
//! `POST /dashboard/session` exchanges for a session cookie: sealed (XChaCha20-Poly1305 with the
//! server's secret key), `HttpOnly`, `SameSite=Lax`, `Secure` when the public URL is HTTPS, 12
//! hours. The session holds a CSRF token, which the page carries in a `<meta>` tag and sends
//! back as `X-CSRF-Token` on every state-changing request. No key or token is ever written to
//! `localStorage`: the API-keys page asks for a short-lived ID token (`POST /dashboard/api/token`)
//! and keeps it in memory to call `/v1/api-keys` like any other client.

pub mod passwords;

use crate::api::{accounts, posts};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdTokenUser};
use crate::json::Json;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soku_core::ErrorCode;
use soku_core::keys::KeyMode;
use soku_core::model::{Subscription, User};
use soku_core::time::rfc3339_millis;
use std::collections::HashMap;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "soku_session";
const SESSION_HOURS: i64 = 12;
/// ID tokens handed to the page for `/v1/api-keys`.
const PAGE_TOKEN_TTL: Duration = Duration::from_secs(600);
static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page))
        .route("/posts", get(page_posts))
        .route("/settings/api-keys", get(page_keys))
        .route("/accounts", get(page_accounts))
        .route("/subscription", get(page_subscription))
        .route("/dashboard/assets/app.js", get(app_js))
        .route("/dashboard/assets/app.css", get(app_css))
        .route("/dashboard/session", post(open_session))
        .route("/dashboard/signout", post(sign_out))
        .route("/dashboard/api/token", post(page_token))
        .route("/dashboard/api/overview", get(overview))
        .route("/dashboard/api/posts", get(list_posts).post(create_post))
        .route("/dashboard/api/posts/{id}/cancel", post(cancel_post))
        .route("/dashboard/api/accounts", get(list_accounts))
        .route("/dashboard/api/connectable", get(connectable))
        .route("/dashboard/api/accounts/connect", post(connect_account))
        .route(
            "/dashboard/api/accounts/{id}/disconnect",
            post(disconnect_account),
        )
}

#[derive(Serialize, Deserialize)]
struct Session {
    /// The user id.
    u: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// The CSRF token of this session.
    c: String,
}

/// The signed-in user of a request, from its session cookie.
struct Signed {
    user: User,
    csrf: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Signed>> {
    let Some(raw) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|sealed| state.secrets.open(&sealed))
        .and_then(|json| serde_json::from_str::<Session>(&json).ok())
    else {
        return Ok(None);
    };
    if session.e <= state.clock.now().timestamp() {
        return Ok(None);
    }
    let Some(user) = state.store.get_user(&session.u).await? else {
        return Ok(None);
    };
    Ok(Some(Signed {
        user,
        csrf: session.c,
    }))
}

/// The user of the request's dashboard session, if it has a valid one.
pub async fn session_user_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    signed_in(state, headers)
        .await
        .ok()
        .flatten()
        .map(|s| s.user.id)
}

fn not_signed_in() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "Sign in to use the dashboard.")
}

/// The signed-in user of a state-changing request: the session, and its CSRF token in
/// `X-CSRF-Token`.
async fn signed_for_change(state: &AppState, headers: &HeaderMap) -> ApiResult<Signed> {
    let signed = signed_in(state, headers).await?.ok_or_else(not_signed_in)?;
    let sent = headers.get(&CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), signed.csrf.as_bytes())) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "The request lacks this session's CSRF token; reload the page.",
        ));
    }
    Ok(signed)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn secure(state: &AppState) -> bool {
    state.tokens.builtin().issuer().starts_with("https://")
}

fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie text is ASCII")
}

/// Exchanges an ID token (`Authorization: Bearer …`) for a session cookie.
async fn open_session(State(state): State<AppState>, user: IdTokenUser) -> ApiResult<Response> {
    let session = Session {
        u: user.uid,
        e: state.clock.now().timestamp() + SESSION_HOURS * 3600,
        c: soku_core::keys::random_id("", 32),
    };
    let sealed = state
        .secrets
        .seal(&serde_json::to_string(&session).expect("a session serialises"));
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        session_cookie(
            &state,
            &URL_SAFE_NO_PAD.encode(sealed),
            SESSION_HOURS * 3600,
        ),
    );
    Ok(response)
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    signed_for_change(&state, &headers).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

/// A short-lived ID token of the built-in issuer for the signed-in user, for the page to call
/// `/v1/api-keys` with. Kept in the page's memory only.
async fn page_token(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let signed = signed_for_change(&state, &headers).await?;
    let token = state
        .tokens
        .builtin()
        .issue(
            &signed.user.id,
            signed.user.email.as_deref(),
            state.clock.now(),
            PAGE_TOKEN_TTL,
        )
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({ "idToken": token, "expiresIn": PAGE_TOKEN_TTL.as_secs() }),
    ))
}

async fn overview(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let sub = state.store.get_subscription(&signed.user.id).await?;
    let now = state.clock.now();
    Ok(Json(json!({
        "user": { "id": signed.user.id, "email": signed.user.email },
        "subscription": sub.as_ref().map(|s| json!({
            "status": s.status.as_str(),
            "currentPeriodEnd": rfc3339_millis(s.current_period_end),
        })),
        "hasAccess": Subscription::grants_access(sub.as_ref(), now),
    })))
}

fn mode_of(params: &HashMap<String, String>) -> ApiResult<KeyMode> {
    parse_mode(params.get("mode").map(String::as_str))
}

/// `live` (the default) or `test`.
fn parse_mode(mode: Option<&str>) -> ApiResult<KeyMode> {
    match mode {
        None | Some("live") => Ok(KeyMode::Live),
        Some("test") => Ok(KeyMode::Test),
        Some(_) => Err(ApiError::validation(
            "mode",
            "invalid_value",
            "'mode' is live or test.",
        )),
    }
}

async fn list_posts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(mut params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let mode = mode_of(&params)?;
    params.remove("mode");
    posts::list_for(&state, &signed.user.id, mode, &params).await
}

#[derive(Deserialize)]
struct Compose {
    mode: Option<String>,
    /// What `POST /v1/posts` takes.
    request: Value,
}

/// The composer: `POST /v1/posts` on the signed-in user's behalf, behind the same
/// subscription gate as an API key.
async fn create_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Compose>,
) -> ApiResult<Response> {
    let signed = signed_for_change(&state, &headers).await?;
    let mode = parse_mode(body.mode.as_deref())?;
    let sub = state.store.get_subscription(&signed.user.id).await?;
    if !Subscription::grants_access(sub.as_ref(), state.clock.now()) {
        return Err(ApiError::subscription_required());
    }
    // The user's rate-limit budget, and POST /v1/posts' endpoint limit, as through the API.
    let admission = match &state.rate_limits {
        Some(rl) => {
            let mut a =
                crate::ratelimit::admit_user(&state, rl, &signed.user.id, "POST", "/v1/posts")
                    .await;
            if let Some(mut refusal) = a.take_refusal() {
                a.put_headers(refusal.headers_mut());
                return Ok(refusal);
            }
            Some(a)
        }
        None => None,
    };
    let mut response = match posts::create_for(
        &state,
        &signed.user.id,
        mode,
        &HeaderMap::new(),
        body.request,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(a) = admission {
        a.put_headers(response.headers_mut());
    }
    Ok(response)
}

async fn cancel_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let signed = signed_for_change(&state, &headers).await?;
    posts::cancel_for(&state, &signed.user.id, mode_of(&params)?, &id).await
}

async fn list_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let signed = signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    accounts::list_for(&state, &signed.user, mode_of(&params)?).await
}

/// The platforms this server can connect, and how.
async fn connectable(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    signed_in(&state, &headers)
        .await?
        .ok_or_else(not_signed_in)?;
    let mut platforms: Vec<Value> = soku_core::platform::Platform::ALL
        .iter()
        .filter_map(|p| {
            let connector = state.connectors.live.get(p)?;
            if !connector.configured() {
                return None;
            }
            let method = match connector.connect_method() {
                soku_core::connector::ConnectMethod::OAuth => "oauth",
                soku_core::connector::ConnectMethod::Credentials => "credentials",
                soku_core::connector::ConnectMethod::None => return None,
            };
            Some(json!({ "platform": p.as_str(), "name": p.display_name(), "method": method }))
        })
        .collect();
    platforms.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({ "platforms": platforms })))
}

/// Connects an account for the signed-in user; OAuth brings the browser back to the
/// Accounts page.
async fn connect_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Value>,
) -> ApiResult<Response> {
    let signed = signed_for_change(&state, &headers).await?;
    body["redirectUri"] = Value::String(format!(
        "{}/accounts",
        state.tokens.builtin().issuer().trim_end_matches('/')
    ));
    crate::api::connect::connect_for(&state, &signed.user.id, KeyMode::Live, &body, true).await
}

async fn disconnect_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let signed = signed_for_change(&state, &headers).await?;
    if state.store.delete_account(&signed.user.id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("account"))
    }
}

// Pages.

/// Firebase sign-in on the sign-in page: the Web API key and the Auth REST endpoint.
fn firebase_web(state: &AppState) -> Option<(&str, &str)> {
    let f = state.tokens.firebase()?;
    Some((f.web_api_key.as_deref()?, f.auth_url.as_str()))
}

/// The policy of the pages: `CSP`, plus the Firebase Auth endpoint's origin where the sign-in
/// page calls it.
fn csp(state: &AppState) -> HeaderValue {
    let origin = firebase_web(state).map(|(_, url)| {
        let start = url.find("://").map_or(0, |i| i + 3);
        let end = url[start..].find('/').map_or(url.len(), |i| start + i);
        &url[..end]
    });
    match origin {
        Some(o) => HeaderValue::from_str(
            &CSP.replace("connect-src 'self'", &format!("connect-src 'self' {o}")),
        )
        .unwrap_or(HeaderValue::from_static(CSP)),
        None => HeaderValue::from_static(CSP),
    }
}

fn security_headers(response: &mut Response, csp: HeaderValue) {
    let h = response.headers_mut();
    h.insert(HeaderName::from_static("content-security-policy"), csp);
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
}

fn redirect(to: &'static str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    r
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const NAV: [(&str, &str, &str); 4] = [
    ("posts", "/posts", "Posts"),
    ("accounts", "/accounts", "Accounts"),
    ("api-keys", "/settings/api-keys", "Settings › API Keys"),
    ("subscription", "/subscription", "Subscription"),
];

fn page(
    state: &AppState,
    page: &str,
    title: &str,
    signed: Option<&Signed>,
    main: &str,
) -> Response {
    let (nav, meta) = match signed {
        Some(s) => {
            let links: String = NAV
                .iter()
                .map(|(id, href, label)| {
                    let current = if *id == page {
                        " aria-current=\"page\""
                    } else {
                        ""
                    };
                    format!("<a href=\"{href}\"{current}>{label}</a>")
                })
                .collect();
            let who = escape(s.user.email.as_deref().unwrap_or(&s.user.id));
            (
                format!(
                    "<nav class=\"nav\">{links}</nav><div class=\"who\"><span id=\"who\">{who}</span>\
                     <button id=\"sign-out\" class=\"link\" type=\"button\">Sign out</button></div>"
                ),
                format!("<meta name=\"csrf-token\" content=\"{}\">", escape(&s.csrf)),
            )
        }
        None => (String::new(), String::new()),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{meta}\
         <title>{title} · Soku</title><link rel=\"stylesheet\" href=\"/dashboard/assets/app.css\">\
         <script src=\"/dashboard/assets/app.js\" defer></script></head>\
         <body data-page=\"{page}\"{firebase}><header class=\"top\"><a class=\"brand\" href=\"/\">Soku</a>{nav}</header>\
         <main class=\"main\">{main}</main></body></html>",
        title = escape(title),
        firebase = match (page, firebase_web(state)) {
            ("login", Some((key, url))) => format!(
                " data-firebase-key=\"{}\" data-firebase-url=\"{}\"",
                escape(key),
                escape(url)
            ),
            _ => String::new(),
        },
    );
    let mut response = (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    security_headers(&mut response, csp(state));
    response
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    Ok(match signed_in(&state, &headers).await? {
        Some(_) => redirect("/posts"),
        None => redirect("/login"),
    })
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if signed_in(&state, &headers).await?.is_some() {
        return Ok(redirect("/posts"));
    }
    Ok(page(
        &state,
        "login",
        "Sign in",
        None,
        "<section class=\"card narrow\"><h1>Sign in</h1>\
         <form id=\"login-form\" class=\"stack\">\
         <fieldset id=\"provider\" class=\"providers\" hidden><legend>Account</legend>\
         <label><input type=\"radio\" name=\"provider\" value=\"builtin\" checked> This server</label>\
         <label><input type=\"radio\" name=\"provider\" value=\"firebase\"> Firebase</label></fieldset>\
         <label>Email<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required></label>\
         <label>Password<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button id=\"sign-in\" class=\"primary\" type=\"submit\">Sign in</button>\
         <p id=\"login-error\" class=\"error\" role=\"alert\" hidden></p></form></section>",
    ))
}

async fn signed_page(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    title: &str,
    main: &str,
) -> ApiResult<Response> {
    Ok(match signed_in(state, headers).await? {
        Some(s) => page(state, id, title, Some(&s), main),
        None => redirect("/login"),
    })
}

async fn page_posts(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    signed_page(
        &state,
        &headers,
        "posts",
        "Posts",
        include_str!("assets/posts.html"),
    )
    .await
}

async fn page_keys(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    signed_page(
        &state,
        &headers,
        "api-keys",
        "API Keys",
        include_str!("assets/api-keys.html"),
    )
    .await
}

async fn page_accounts(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    signed_page(
        &state,
        &headers,
        "accounts",
        "Accounts",
        include_str!("assets/accounts.html"),
    )
    .await
}

async fn page_subscription(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    signed_page(
        &state,
        &headers,
        "subscription",
        "Subscription",
        "<section class=\"card\"><h1>Subscription</h1><dl id=\"subscription\" class=\"facts\"></dl></section>",
    )
    .await
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response();
    security_headers(&mut r, HeaderValue::from_static(CSP));
    r
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_cookies() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
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
