//! The dashboard's pages: server-rendered HTML around one small script and one style sheet.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::SessionUser;
use crate::state::AppState;
use crate::templates::{self, DashboardPage, FirebaseWeb, Layout, Viewer};
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

/// A dashboard page's HTML (`templates/`) with the pages' headers; `signed`: the session whose
/// user the page shows (`None` on the sign-in page).
pub(super) fn page(state: &AppState, page: DashboardPage, signed: Option<&Caller>) -> Response {
    let layout = Layout {
        page: page.id(),
        title: page.title(),
        viewer: signed.and_then(Caller::session_info).map(|s| Viewer {
            who: s.user.email.as_deref().unwrap_or(&s.user.id),
            csrf: &s.csrf,
        }),
        firebase: match page {
            DashboardPage::Login => firebase_web(state).map(|(key, url)| FirebaseWeb { key, url }),
            _ => None,
        },
    };
    let html = match templates::dashboard_page(page, layout) {
        Ok(html) => html,
        Err(e) => {
            return ApiError::internal(format!("rendering the {} page: {e}", page.id()))
                .into_response();
        }
    };
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
    Ok(page(&state, DashboardPage::Login, None))
}

pub(super) async fn signed_page(
    state: &AppState,
    signed: Option<SessionUser>,
    which: DashboardPage,
) -> ApiResult<Response> {
    Ok(match signed {
        Some(SessionUser(caller)) => page(state, which, Some(&caller)),
        None => redirect("/login"),
    })
}

pub(super) async fn page_posts(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::Posts).await
}

pub(super) async fn page_media(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::Media).await
}

pub(super) async fn page_keys(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::ApiKeys).await
}

pub(super) async fn page_audit(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::Audit).await
}

pub(super) async fn page_accounts(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::Accounts).await
}

pub(super) async fn page_subscription(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::Subscription).await
}

pub(super) async fn page_sessions(
    State(state): State<AppState>,
    signed: Option<SessionUser>,
) -> ApiResult<Response> {
    signed_page(&state, signed, DashboardPage::Sessions).await
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
