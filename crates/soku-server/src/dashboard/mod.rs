//! The dashboard at `/`: server-rendered pages with one small script, all embedded in the
//! binary (no Node at run time, nothing from a CDN).
//!
//! Sign-in gives an ID token (`POST /v1/auth/login` for the built-in identity provider), which
//! `POST /dashboard/session` exchanges for a session: a row in the store (`auth::session`)
//! and a cookie holding its id, sealed (XChaCha20-Poly1305 with the session-cookie key, derived
//! from the server's secret key apart from the account-token key), `HttpOnly`, `SameSite=Lax`,
//! `Secure` when the public URL is HTTPS, 12 hours. Every request looks the session up, so
//! signing out (`POST /dashboard/signout`), or ending a session from Settings › Sessions
//! (`/settings/sessions`, `/dashboard/api/sessions*`), ends it for every copy of its cookie.
//! The session holds a CSRF token, which the page carries in a `<meta>` tag and sends
//! back as `X-CSRF-Token` on every state-changing request. No key or token is ever written to
//! `localStorage`: the API-keys page asks for a short-lived ID token (`POST /dashboard/api/token`)
//! and keeps it in memory to call `/v1/api-keys` like any other client.

pub mod api;
pub mod pages;
pub mod session;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

pub use crate::auth::session::{SESSION_COOKIE, session_user_id};

/// The dashboard's upload, which reads its body at the browser's pace (no request timeout; see
/// `api::Routes::streaming`).
pub fn streaming_routes() -> Router<AppState> {
    Router::new().route("/dashboard/api/media", post(api::upload_media))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_page))
        .route("/posts", get(pages::page_posts))
        .route("/media", get(pages::page_media))
        .route("/settings/api-keys", get(pages::page_keys))
        .route("/settings/audit", get(pages::page_audit))
        .route("/accounts", get(pages::page_accounts))
        .route("/subscription", get(pages::page_subscription))
        .route("/settings/sessions", get(pages::page_sessions))
        .route("/dashboard/assets/app.js", get(pages::app_js))
        .route("/dashboard/assets/app.css", get(pages::app_css))
        .route("/dashboard/session", post(session::open_session))
        .route("/dashboard/signout", post(session::sign_out))
        .route("/dashboard/api/token", post(session::page_token))
        .route("/dashboard/api/overview", get(api::overview))
        .route(
            "/dashboard/api/posts",
            get(api::list_posts).post(api::create_post),
        )
        .route("/dashboard/api/posts/{id}/cancel", post(api::cancel_post))
        .route("/dashboard/api/media", get(api::list_media))
        .route("/dashboard/api/media/{id}/delete", post(api::delete_media))
        .route("/dashboard/api/accounts", get(api::list_accounts))
        .route("/dashboard/api/connectable", get(api::connectable))
        .route(
            "/dashboard/api/accounts/connect",
            post(api::connect_account),
        )
        .route(
            "/dashboard/api/accounts/{id}/disconnect",
            post(api::disconnect_account),
        )
        .route(
            "/dashboard/api/accounts/{id}/default",
            post(api::make_default_account),
        )
        .route("/dashboard/api/sessions", get(api::list_sessions))
        .route(
            "/dashboard/api/sessions/{id}/revoke",
            post(api::revoke_session),
        )
        .route(
            "/dashboard/api/sessions/revoke-all",
            post(api::revoke_all_sessions),
        )
}
