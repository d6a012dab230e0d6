//! `soku`: the server and its operator commands.

use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use soku_engine::EngineConfig;
use soku_server::admin::{self, AdminCommand};
use soku_server::auth::tokens::{DEFAULT_FIREBASE_CERTS_URL, FirebaseSettings};
use soku_server::ratelimit::client_ip::parse_list;
use soku_server::ratelimit::redis::RedisLimiter;
use soku_server::ratelimit::{OnError, RateLimitOptions};
use soku_server::{
    ServerOptions, build_state, router, serve, shutdown_signal, spawn_engine, telemetry,
};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc rather than the C library's allocator: with glibc, every block above 1 KiB takes
/// its slow path (no per-thread cache, fast bins consolidated first), and every `/v1` response
/// makes one (see docs/RATE-LIMITS-PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "soku",
    version,
    about = "A self-hostable server for the Soku publishing API"
)]
struct Cli {
    /// `sqlite://FILE` (created on first start) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "SOKU_DATABASE_URL",
        default_value = "sqlite://soku.db",
        global = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and, unless --no-workers, the publishing engine).
    Serve(ServeArgs),
    /// Run the publishing engine alone, sharing the work with the other processes on the
    /// same database.
    Worker(EngineArgs),
    /// Operator commands; they work while a server runs on the same database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SOKU_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The URL clients reach this server at; `iss` of the built-in issuer's ID tokens.
    /// Default: `http://<listen address>`. Set it when several nodes serve one database.
    #[arg(long, env = "SOKU_PUBLIC_URL")]
    public_url: Option<String>,
    /// Accept Firebase ID tokens of this project.
    #[arg(long, env = "SOKU_FIREBASE_PROJECT_ID")]
    firebase_project_id: Option<String>,
    /// Where Google publishes the certificates that sign Firebase ID tokens.
    #[arg(long, env = "SOKU_FIREBASE_CERTS_URL", default_value = DEFAULT_FIREBASE_CERTS_URL)]
    firebase_certs_url: String,
    /// The Firebase project's Web API key: the dashboard then offers Firebase sign-in.
    #[arg(long, env = "SOKU_FIREBASE_WEB_API_KEY")]
    firebase_web_api_key: Option<String>,
    /// Do not run the publishing engine in this process (run `soku worker` elsewhere).
    #[arg(long)]
    no_workers: bool,
    /// `on` (default) or `off`. Off: no rate limits and no X-RateLimit headers (benchmarks).
    #[arg(long, env = "SOKU_RATE_LIMITS", default_value = "on", ignore_case = true,
        value_parser = PossibleValuesParser::new(["on", "off"]))]
    rate_limits: String,
    /// Keep rate-limit budgets in this Redis, shared by every node using it
    /// (`redis://[:PASSWORD@]HOST[:PORT][/DB]`). Default: in this process's memory.
    #[arg(long, env = "SOKU_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Prefix of the rate-limit keys in Redis.
    #[arg(long, env = "SOKU_REDIS_PREFIX", default_value = "soku:")]
    redis_prefix: String,
    /// How long a rate-limit check waits for Redis before SOKU_RATE_LIMIT_ON_ERROR applies.
    #[arg(long, env = "SOKU_REDIS_TIMEOUT_MS", default_value_t = 250,
        value_parser = clap::value_parser!(u64).range(1..=60_000))]
    redis_timeout_ms: u64,
    /// When Redis cannot be asked: `allow` the request (default) or `deny` it with 503.
    #[arg(long, env = "SOKU_RATE_LIMIT_ON_ERROR", default_value = "allow", ignore_case = true,
        value_parser = PossibleValuesParser::new(["allow", "deny"]))]
    rate_limit_on_error: String,
    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed.
    /// Default: none (the TCP peer is the client).
    #[arg(long, env = "SOKU_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct EngineArgs {
    /// `text` (default) or `json`.
    #[arg(long, env = "SOKU_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// 32 bytes, base64: the key that encrypts account tokens. Default: generated on first
    /// start and kept in the database.
    #[arg(long, env = "SOKU_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Targets this process publishes at once.
    #[arg(long, env = "SOKU_WORKER_CONCURRENCY", default_value_t = 128)]
    worker_concurrency: usize,
    /// Seconds a worker holds a target; a dead worker's targets are taken over after it.
    #[arg(long, env = "SOKU_JOB_LEASE_SECS", default_value_t = 120)]
    job_lease_secs: u64,
    /// Attempts before a target that keeps failing retryably ends failed.
    #[arg(long, env = "SOKU_MAX_ATTEMPTS", default_value_t = 5)]
    max_attempts: i64,
    /// First retry delay in milliseconds; it doubles per attempt, with jitter.
    #[arg(long, env = "SOKU_RETRY_BASE_MS", default_value_t = 2000)]
    retry_base_ms: u64,
    /// How long the simulated platforms of test mode take to answer, in milliseconds.
    #[arg(long, env = "SOKU_SIMULATED_LATENCY_MS", default_value_t = 0)]
    simulated_latency_ms: u64,
}

impl EngineArgs {
    fn config(&self) -> Result<EngineConfig, String> {
        if self.worker_concurrency == 0 || self.worker_concurrency > 1024 {
            return Err("SOKU_WORKER_CONCURRENCY must be 1 to 1024".into());
        }
        if self.job_lease_secs < 2 {
            return Err("SOKU_JOB_LEASE_SECS must be at least 2".into());
        }
        if self.max_attempts < 1 {
            return Err("SOKU_MAX_ATTEMPTS must be at least 1".into());
        }
        Ok(EngineConfig {
            concurrency: self.worker_concurrency,
            lease: Duration::from_secs(self.job_lease_secs),
            max_attempts: self.max_attempts,
            backoff_base: Duration::from_millis(self.retry_base_ms.max(1)),
            ..EngineConfig::default()
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => run_server(&cli.database_url, args).await,
            Command::Worker(args) => run_worker(&cli.database_url, args).await,
            Command::Admin { command } => admin::run(&cli.database_url, command).await,
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

fn rate_limit_options(args: &ServeArgs) -> Result<RateLimitOptions, String> {
    let on_error = if args.rate_limit_on_error.eq_ignore_ascii_case("deny") {
        OnError::Deny
    } else {
        OnError::Allow
    };
    let mut options = RateLimitOptions {
        enabled: !args.rate_limits.eq_ignore_ascii_case("off"),
        on_error,
        ..RateLimitOptions::default()
    };
    if let Some(url) = args.redis_url.as_deref().filter(|u| !u.trim().is_empty())
        && options.enabled
    {
        options.limiter = Arc::new(RedisLimiter::connect_with_timeout(
            url,
            &args.redis_prefix,
            std::time::Duration::from_millis(args.redis_timeout_ms),
        )?);
    }
    Ok(options)
}

async fn run_server(database_url: &str, args: ServeArgs) -> Result<(), String> {
    telemetry::init(args.engine.log_format.eq_ignore_ascii_case("json"));
    let engine_config = args.engine.config()?;
    let rate_limits = rate_limit_options(&args)?;
    let trusted_proxies =
        parse_list(&args.trusted_proxies).map_err(|e| format!("SOKU_TRUSTED_PROXIES: {e}"))?;
    let emulator_host = std::env::var("FIREBASE_AUTH_EMULATOR_HOST").ok();
    let emulator = emulator_host
        .as_deref()
        .is_some_and(|v| !v.trim().is_empty());
    let firebase = match (
        args.firebase_project_id.filter(|p| !p.trim().is_empty()),
        emulator,
    ) {
        (Some(project_id), _) => Some(FirebaseSettings {
            project_id,
            certs_url: args.firebase_certs_url,
            emulator,
            web_api_key: args.firebase_web_api_key.filter(|k| !k.trim().is_empty()),
            auth_url: soku_server::auth::tokens::firebase_auth_url(emulator_host.as_deref()),
        }),
        (None, true) => {
            return Err(
                "FIREBASE_AUTH_EMULATOR_HOST is set but SOKU_FIREBASE_PROJECT_ID is not: \
                        emulator tokens name a project"
                    .into(),
            );
        }
        (None, false) => None,
    };
    if emulator {
        tracing::warn!(
            "FIREBASE_AUTH_EMULATOR_HOST is set: unsigned Firebase emulator tokens are accepted"
        );
    }

    let store = soku_store::open(database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", soku_store::redact_url(database_url)))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    store
        .put_setting(admin::PUBLIC_URL_SETTING, &public_url)
        .await
        .map_err(|e| e.to_string())?;
    let backend = store.backend();
    let state = build_state(
        store,
        Arc::new(soku_core::SystemClock),
        ServerOptions {
            public_url: public_url.clone(),
            firebase,
            secret_key: args.engine.secret_key.clone(),
            simulated_latency: Duration::from_millis(args.engine.simulated_latency_ms),
            rate_limits,
            trusted_proxies,
            live_connectors: soku_server::live_connectors_from_env(),
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
            redis = %args.redis_url.as_deref().map(soku_store::redact_url).unwrap_or_default(),
            on_error = rl.on_error().as_str(),
            "rate limits on"
        ),
    }
    tracing::info!(
        listen = %addr,
        public_url = %public_url,
        database = %soku_store::redact_url(database_url),
        backend,
        trusted_proxies = %args.trusted_proxies,
        "soku is serving"
    );
    let (stop_engine, stopped) = tokio::sync::watch::channel(false);
    let engine = (!args.no_workers).then(|| spawn_engine(&state, engine_config, stopped));
    if engine.is_none() {
        tracing::info!("--no-workers: this process publishes nothing; run `soku worker`");
    }
    serve(listener, router(state, None), shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    let _ = stop_engine.send(true);
    if let Some(engine) = engine {
        let _ = engine.await;
    }
    tracing::info!("soku stopped");
    Ok(())
}

async fn run_worker(database_url: &str, args: EngineArgs) -> Result<(), String> {
    telemetry::init(args.log_format.eq_ignore_ascii_case("json"));
    let config = args.config()?;
    let store = soku_store::open(database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", soku_store::redact_url(database_url)))?;
    let public_url = store
        .get_setting(admin::PUBLIC_URL_SETTING)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let state = build_state(
        store,
        Arc::new(soku_core::SystemClock),
        ServerOptions {
            public_url,
            firebase: None,
            secret_key: args.secret_key.clone(),
            simulated_latency: Duration::from_millis(args.simulated_latency_ms),
            // A worker serves no HTTP.
            rate_limits: RateLimitOptions {
                enabled: false,
                ..RateLimitOptions::default()
            },
            trusted_proxies: Vec::new(),
            live_connectors: soku_server::live_connectors_from_env(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = spawn_engine(&state, config, stopped);
    tracing::info!(database = %soku_store::redact_url(database_url), "soku worker running");
    shutdown_signal().await;
    let _ = stop.send(true);
    let _ = engine.await;
    tracing::info!("soku worker stopped");
    Ok(())
}
