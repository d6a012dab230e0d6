//! Routes and their OpenAPI description, from one list: a route exists only through a
//! `routes!` entry, and that entry is what documents it.

pub mod accounts;
pub mod api_keys;
pub mod auth;
pub mod connect;
pub mod docs;
pub mod me;
pub mod media;
pub mod ops;
pub mod posts;
pub mod sandbox;
pub mod secret_scanning;

use crate::state::AppState;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The application's routes, and the OpenAPI document generated from them.
pub struct Routes {
    /// Routes whose handler, body included, runs under the request timeout.
    pub timed: Router<AppState>,
    /// Routes that read a large body at the client's pace, bounded by their own idle timeout
    /// instead (`POST /v1/media/uploads`).
    pub streaming: Router<AppState>,
    pub doc: utoipa::openapi::OpenApi,
}

pub fn routes() -> Routes {
    let (streaming, streaming_doc) = OpenApiRouter::new()
        .routes(routes!(media::upload))
        .split_for_parts();
    let (timed, mut doc) = OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::jwks))
        .routes(routes!(ops::openapi))
        .routes(routes!(me::me))
        .routes(routes!(auth::login))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke, api_keys::update))
        .routes(routes!(api_keys::rotate))
        .routes(routes!(api_keys::audit_events))
        .routes(routes!(posts::create, posts::list))
        .routes(routes!(posts::get, posts::cancel))
        .routes(routes!(accounts::list))
        .routes(routes!(connect::connect))
        .routes(routes!(connect::disconnect, accounts::update))
        .routes(routes!(connect::callback))
        .routes(routes!(sandbox::posts))
        .routes(routes!(media::import, media::list))
        .routes(routes!(media::get, media::delete))
        .routes(routes!(media::hosted))
        .routes(routes!(secret_scanning::github))
        .split_for_parts();
    doc.merge(streaming_doc);
    Routes {
        timed,
        streaming,
        doc,
    }
}
