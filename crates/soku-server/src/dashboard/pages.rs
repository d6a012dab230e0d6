//! The dashboard's pages: server-rendered HTML around one small script and one style sheet.

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::SessionUser;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Firebase sign-in on the sign-in page: the Web API key and the Auth REST endpoint.
pub(super) fn firebase_web(state: &AppState) -> Option<(&str, &str)> {
    let f = state.tokens.firebase()?;
    Some((f.web_api_key.as_deref()?, f.auth_url.as_str()))
}

/// The policy of the pages: `CSP`, plus the Firebase Auth endpoint's origin where the sign-in
/// page calls it.
pub(super) fn csp(state: &AppState) -> HeaderValue {
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

pub(super) fn security_headers(response: &mut Response, csp: HeaderValue) {
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

pub(super) fn redirect(to: &'static str) -> Response {
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

pub(super) fn page(
    state: &AppState,
    page: &str,
    title: &str,
    signed: Option<&Caller>,
    main: &str,
) -> Response {
    let (nav, meta) = match signed.and_then(Caller::session_info) {
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

pub(super) async fn home(signed: Option<SessionUser>) -> ApiResult<Response> {
    Ok(match signed {
        Some(_) => redirect("/posts"),
        None => redirect("/login"),
    })
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    if signed.is_some() {
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

pub(super) async fn signed_page(
    state: &AppState,
    signed: Option<SessionUser>,
    id: &str,
    title: &str,
    main: &str,
) -> ApiResult<Response> {
    Ok(match signed {
        Some(SessionUser(caller)) => page(state, id, title, Some(&caller), main),
        None => redirect("/login"),
    })
}

pub(super) async fn page_posts(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(
        &state,
        signed,
        "posts",
        "Posts",
        include_str!("assets/posts.html"),
    )
    .await
}

pub(super) async fn page_keys(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(
        &state,
        signed,
        "api-keys",
        "API Keys",
        include_str!("assets/api-keys.html"),
    )
    .await
}

pub(super) async fn page_accounts(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(
        &state,
        signed,
        "accounts",
        "Accounts",
        include_str!("assets/accounts.html"),
    )
    .await
}

pub(super) async fn page_subscription(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(
        &state,
        signed,
        "subscription",
        "Subscription",
        "<section class=\"card\"><h1>Subscription</h1><dl id=\"subscription\" class=\"facts\"></dl></section>",
    )
    .await
}

pub(super) fn asset(content_type: &'static str, body: &'static str) -> Response {
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

pub(super) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
