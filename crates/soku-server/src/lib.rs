//! Soku server: the HTTP API over the domain (`soku-core`) and the stores (`soku-store`).

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod ratelimit;
pub mod server;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod templates;
pub mod views;

use crate::auth::tokens::{BuiltinIssuer, FirebaseSettings, TokenVerifier};
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use soku_core::{Clock, Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// JSON bodies above this size get 413 `payload_too_large` (spec section 1).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Everything the server needs besides its store and clock.
pub struct ServerOptions {
    /// The server's public URL: `iss` of the built-in identity provider's tokens.
    pub public_url: String,
    pub firebase: Option<FirebaseSettings>,
    /// `SOKU_SECRET_KEY`, the key that encrypts account tokens.
    pub secret_key: Option<soku_core::Secret<String>>,
    /// How long a simulated platform takes to answer.
    pub simulated_latency: std::time::Duration,
    /// Rate limits (spec section 5): on, in memory, by default.
    pub rate_limits: ratelimit::RateLimitOptions,
    /// Peers whose `X-Forwarded-For` is believed (`SOKU_TRUSTED_PROXIES`), for whatever counts
    /// per client address: rate limits and the sign-in throttle.
    pub trusted_proxies: Vec<auth::client_ip::Cidr>,
    /// The real networks' connectors (`soku_platforms::live` for the binary; tests point
    /// them at fakes).
    pub live_connectors: soku_platforms::LiveConnectors,
    /// The https origins a connection's `redirectUri` may have (`SOKU_CONNECT_REDIRECT_ORIGINS`);
    /// `None`: any.
    pub connect_redirect_origins: Option<Vec<String>>,
    /// Hosted media: the store, the files' base URL, the importer.
    pub media: service::media::MediaHost,
    /// Where GitHub publishes the keys that sign secret scanning reports
    /// (`SOKU_GITHUB_SECRET_SCANNING_KEYS_URL`; `auth::github::DEFAULT_KEYS_URL`).
    pub github_secret_scanning_keys_url: String,
}

/// Loads (or, on first start, creates) the identity provider's key and assembles the state.
pub async fn build_state(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    options: ServerOptions,
) -> Result<AppState, StoreError> {
    let builtin =
        BuiltinIssuer::load_or_create(store.as_ref(), options.public_url, clock.now()).await?;
    let tokens = TokenVerifier::new(builtin, options.firebase, clock.clone());
    let secrets = soku_engine::secrets::SecretBox::load(
        store.as_ref(),
        options.secret_key.as_ref().map(|k| k.expose().as_str()),
    )
    .await
    .map_err(StoreError::Backend)?;
    let connectors = soku_platforms::Connectors {
        simulated: Arc::new(soku_platforms::simulated::Simulated::new(
            store.clone(),
            clock.clone(),
            options.simulated_latency,
        )),
        live: options.live_connectors,
    };
    Ok(AppState::new(
        store,
        clock,
        tokens,
        connectors,
        secrets,
        ratelimit::RateLimits::new(options.rate_limits),
        options.trusted_proxies,
        options.connect_redirect_origins,
        options.media,
        options.github_secret_scanning_keys_url,
    ))
}

/// Starts the publishing engine of this process; it stops when `shutdown` turns true.
pub fn spawn_engine(
    state: &AppState,
    config: soku_engine::EngineConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let engine = soku_engine::Engine::new(
        state.store.clone(),
        state.clock.clone(),
        state.connectors.clone(),
        state.account_tokens.clone(),
        config,
        state.engine_wake.clone(),
        state.engine_metrics.clone(),
        Some(Arc::new(soku_engine::EngineMedia::new(
            state.media.library.clone(),
            state.media.importer.clone(),
        ))),
    );
    // Where the engine runs, accounts' tokens are kept alive too.
    tokio::spawn(
        state
            .account_tokens
            .clone()
            .run(shutdown.clone(), soku_engine::account_tokens::REFRESH_EVERY),
    );
    tokio::spawn(engine.run(shutdown))
}

/// The whole application, with the default request timeout (`server::REQUEST_TIMEOUT`).
/// `extra` routes (tests use it) get the same middleware.
pub fn router(state: AppState, extra: Option<Router<AppState>>) -> Router {
    router_with_timeout(state, extra, server::REQUEST_TIMEOUT)
}

/// The whole application; a request whose handler (reading the body included) takes longer than
/// `request_timeout` gets 503 `service_unavailable`.
///
/// Layers, outermost first: request id, rate limits and envelope
/// (`middleware::request_context`), the header limits (`limits`, 431), the request timeout, the
/// body limit, then the routes. Uploads (`api::Routes::streaming`) have no request timeout.
pub fn router_with_timeout(
    state: AppState,
    extra: Option<Router<AppState>>,
    request_timeout: Duration,
) -> Router {
    let api::Routes {
        timed: mut routes,
        streaming,
        doc,
    } = api::routes();
    let doc = serde_json::to_value(&doc).expect("the OpenAPI document serialises");
    let _ = state.openapi.set(doc);
    routes = routes.merge(dashboard::routes());
    if let Some(extra) = extra {
        routes = routes.merge(extra);
    }
    routes
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        // Uploads read their body at the client's pace, each chunk within an idle timeout.
        .merge(streaming)
        .merge(dashboard::streaming_routes())
        .layer(limits::HeaderLimitLayer)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .with_state(state)
}

/// Serves `app` on a listener the caller bound, until `shutdown` completes; requests in
/// flight are finished first. A client has `server::HEADER_READ_TIMEOUT` to send each
/// request's head.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, app, shutdown, server::HEADER_READ_TIMEOUT).await
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
