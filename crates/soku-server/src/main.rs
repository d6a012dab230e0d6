//! `soku`: the server and its operator commands. The settings are `soku_server::config`.

use clap::Parser;
use soku_server::admin;
use soku_server::config::{Command, Config, ServeArgs, WorkerCommand};
use soku_server::ratelimit::RateLimitOptions;
use soku_server::{
    ServerOptions, build_state, router_with_timeout, server, shutdown_signal, spawn_engine,
};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc rather than the C library's allocator: with glibc, every block above 1 KiB takes
/// its slow path (no per-thread cache, fast bins consolidated first), and every `/v1` response
/// makes one (see docs/RATE-LIMITS-PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let database_url = config.database_url.expose().clone();
    let outcome = runtime.block_on(async move {
        match config.command {
            Command::Serve(args) => run_server(&database_url, args).await,
            Command::Worker(args) => run_worker(&database_url, args).await,
            Command::Admin { command } => admin::run(&database_url, command).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(database_url: &str, args: ServeArgs) -> Result<(), String> {
    args.worker.log.init();
    let engine_config = args.worker.engine.config()?;
    let rate_limits = args.rate_limits.options()?;
    let trusted_proxies = args.rate_limits.trusted_proxies()?;
    let firebase = args.firebase.settings()?;
    if firebase.as_ref().is_some_and(|f| f.emulator) {
        tracing::warn!(
            "FIREBASE_AUTH_EMULATOR_HOST is set: unsigned Firebase emulator tokens are accepted"
        );
    }

    let store = soku_store::open(database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", soku_store::redact_url(database_url)))?;
    let listener = tokio::net::TcpListener::bind(&args.http.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.http.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = args
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    store
        .put_setting(admin::PUBLIC_URL_SETTING, &public_url)
        .await
        .map_err(|e| e.to_string())?;
    let backend = store.backend();
    let media = args
        .worker
        .media
        .host(
            database_url,
            &public_url,
            args.worker.networks.allow_loopback,
            store.clone(),
        )
        .await?;
    let media_store = media.library.storage.describe();
    let state = build_state(
        store,
        Arc::new(soku_core::SystemClock),
        ServerOptions {
            public_url: public_url.clone(),
            firebase,
            secret_key: args.worker.engine.secret_key.clone(),
            simulated_latency: args.worker.engine.simulated_latency(),
            rate_limits,
            trusted_proxies,
            live_connectors: soku_platforms::live(
                &args.worker.networks.settings(),
                Some(media.library.clone()),
            ),
            connect_redirect_origins: args.http.redirect_origins(),
            media,
            github_secret_scanning_keys_url: args.secret_scanning.github_secret_scanning_keys_url,
        },
    )
    .await
    .map_err(|e| format!("cannot load the identity provider's keys: {e}"))?;
    match &state.rate_limits {
        None => tracing::warn!(
            "rate limiting is OFF (SOKU_RATE_LIMITS=off): no limits, no X-RateLimit headers"
        ),
        Some(rl) => tracing::info!(
            backend = rl.backend(),
            redis = %args.rate_limits.redis_url().map(soku_store::redact_url).unwrap_or_default(),
            on_error = rl.on_error().as_str(),
            "rate limits on"
        ),
    }
    tracing::info!(
        listen = %addr,
        public_url = %public_url,
        database = %soku_store::redact_url(database_url),
        backend,
        trusted_proxies = %args.rate_limits.trusted_proxies,
        media_store = %media_store,
        "soku is serving"
    );
    let (stop_engine, stopped) = tokio::sync::watch::channel(false);
    let engine = (!args.http.no_workers).then(|| spawn_engine(&state, engine_config, stopped));
    if engine.is_none() {
        tracing::info!("--no-workers: this process publishes nothing; run `soku worker`");
    }
    let app = router_with_timeout(
        state,
        None,
        Duration::from_secs(args.http.request_timeout_secs),
    );
    server::serve(
        listener,
        app,
        shutdown_signal(),
        Duration::from_secs(args.http.header_read_timeout_secs),
    )
    .await
    .map_err(|e| e.to_string())?;
    let _ = stop_engine.send(true);
    if let Some(engine) = engine {
        let _ = engine.await;
    }
    tracing::info!("soku stopped");
    Ok(())
}

async fn run_worker(database_url: &str, command: WorkerCommand) -> Result<(), String> {
    let args = command.worker;
    args.log.init();
    let config = args.engine.config()?;
    let store = soku_store::open(database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", soku_store::redact_url(database_url)))?;
    let public_url = store
        .get_setting(admin::PUBLIC_URL_SETTING)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let media = args
        .media
        .host(
            database_url,
            &public_url,
            args.networks.allow_loopback,
            store.clone(),
        )
        .await?;
    let state = build_state(
        store,
        Arc::new(soku_core::SystemClock),
        ServerOptions {
            public_url,
            firebase: None,
            secret_key: args.engine.secret_key.clone(),
            simulated_latency: args.engine.simulated_latency(),
            // A worker serves no HTTP.
            rate_limits: RateLimitOptions {
                enabled: false,
                ..RateLimitOptions::default()
            },
            trusted_proxies: Vec::new(),
            live_connectors: soku_platforms::live(
                &args.networks.settings(),
                Some(media.library.clone()),
            ),
            // A worker starts no connections.
            connect_redirect_origins: None,
            media,
            // A worker serves no HTTP: it is never asked.
            github_secret_scanning_keys_url: soku_server::auth::github::DEFAULT_KEYS_URL.into(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let metrics = match &command.metrics_listen {
        Some(listen) => Some(
            tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?,
        ),
        None => None,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = spawn_engine(&state, config, stopped);
    tracing::info!(database = %soku_store::redact_url(database_url), metrics = ?command.metrics_listen, "soku worker running");
    match metrics {
        // Only `/metrics`: the worker serves no API.
        Some(listener) => {
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(soku_server::api::ops::metrics),
                )
                .with_state(state);
            soku_server::serve(listener, app, shutdown_signal())
                .await
                .map_err(|e| e.to_string())?;
        }
        None => shutdown_signal().await,
    }
    let _ = stop.send(true);
    let _ = engine.await;
    tracing::info!("soku worker stopped");
    Ok(())
}
