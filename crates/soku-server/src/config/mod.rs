//! The configuration of the `soku` command: every setting it reads, each a flag with an
//! environment variable, shown by `soku serve --help` and documented once in
//! `docs/OPERATIONS.md` (a test keeps the two in step).
//!
//! Libraries never read the environment: each gets its settings as a plain struct built here
//! (`soku_platforms::LiveSettings`, `soku_engine::EngineConfig`, `RateLimitOptions`, ...).
//! Secrets and URLs that may carry a password are `Secret`s, so printing the configuration
//! never shows them.

mod media;

pub use media::MediaArgs;

use crate::admin::AdminCommand;
use crate::auth::client_ip::{Cidr, parse_list};
use crate::auth::tokens::{DEFAULT_FIREBASE_CERTS_URL, FirebaseSettings, firebase_auth_url};
use crate::ratelimit::redis::RedisLimiter;
use crate::ratelimit::{OnError, RateLimitOptions};
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use soku_core::Secret;
use soku_engine::EngineConfig;
use soku_platforms::{LiveSettings, PlatformSettings};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "soku",
    version,
    about = "A self-hostable server for the Soku publishing API"
)]
pub struct Config {
    /// `sqlite://FILE` (created on first start) or `postgres://USER@HOST/DB`. On SQLite,
    /// `?synchronous=full` makes every commit survive a power loss too (the default, `normal`,
    /// survives a killed process).
    #[arg(
        long,
        env = "SOKU_DATABASE_URL",
        default_value = "sqlite://soku.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Secret<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once at start, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API (and, unless --no-workers, the publishing engine).
    Serve(ServeArgs),
    /// Run the publishing engine alone, sharing the work with the other processes on the
    /// same database.
    Worker(WorkerCommand),
    /// Operator commands; they work while a server runs on the same database.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// `soku serve`: every setting.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub firebase: FirebaseArgs,
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
    #[command(flatten)]
    pub secret_scanning: SecretScanningArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Leaked keys")]
pub struct SecretScanningArgs {
    /// Where GitHub publishes the keys that sign its secret scanning reports
    /// (`POST /v1/secret-scanning/github`).
    #[arg(long, env = "SOKU_GITHUB_SECRET_SCANNING_KEYS_URL", default_value = crate::auth::github::DEFAULT_KEYS_URL)]
    pub github_secret_scanning_keys_url: String,
}

/// `soku worker`: the engine's settings, and where its metrics are served.
#[derive(Args, Debug)]
pub struct WorkerCommand {
    #[command(flatten)]
    pub worker: WorkerArgs,
    /// Serve `GET /metrics` (and nothing else) on this address. Default: no HTTP at all, and
    /// this worker's publishing counters are seen nowhere.
    #[arg(long, env = "SOKU_WORKER_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

/// `soku worker`, and the publishing engine of `soku serve`.
#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub networks: NetworkArgs,
    #[command(flatten)]
    pub media: MediaArgs,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "HTTP")]
pub struct HttpArgs {
    /// Address to listen on.
    #[arg(long, env = "SOKU_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The URL clients reach this server at; `iss` of the built-in issuer's ID tokens, and the
    /// base of the OAuth callbacks. Default: `http://<listen address>`. Set it when several
    /// nodes serve one database.
    #[arg(long, env = "SOKU_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Do not run the publishing engine in this process (run `soku worker` elsewhere).
    #[arg(long, env = "SOKU_NO_WORKERS",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub no_workers: bool,
    /// Comma-separated origins: only these https origins may be a connection's
    /// `redirectUri`. Default: any https origin.
    #[arg(long, env = "SOKU_CONNECT_REDIRECT_ORIGINS", value_name = "ORIGINS")]
    pub connect_redirect_origins: Option<String>,
    /// Seconds a request's handler (reading the body included) may take before the client gets
    /// 503 `service_unavailable`.
    #[arg(long, env = "SOKU_REQUEST_TIMEOUT_SECS", default_value_t = crate::server::REQUEST_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Seconds a client has to send each request's head (HTTP/1); a connection that trickles
    /// its headers, or sits idle between requests, longer than this is closed.
    #[arg(long, env = "SOKU_HEADER_READ_TIMEOUT_SECS", default_value_t = crate::server::HEADER_READ_TIMEOUT.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,
}

impl HttpArgs {
    /// The allowed `redirectUri` origins, `None` when any https origin is allowed.
    pub fn redirect_origins(&self) -> Option<Vec<String>> {
        redirect_origins(self.connect_redirect_origins.as_deref()?)
    }
}

/// Origins (`scheme://host[:port]`) of a comma-separated list of URLs; unparsable entries are
/// skipped, and an empty list is `None`.
pub fn redirect_origins(raw: &str) -> Option<Vec<String>> {
    let list: Vec<String> = raw
        .split(',')
        .filter_map(|o| url::Url::parse(o.trim()).ok())
        .map(|u| u.origin().ascii_serialization())
        .collect();
    (!list.is_empty()).then_some(list)
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Firebase ID tokens")]
pub struct FirebaseArgs {
    /// Accept Firebase ID tokens of this project.
    #[arg(long, env = "SOKU_FIREBASE_PROJECT_ID")]
    pub firebase_project_id: Option<String>,
    /// Where Google publishes the certificates that sign Firebase ID tokens.
    #[arg(long, env = "SOKU_FIREBASE_CERTS_URL", default_value = DEFAULT_FIREBASE_CERTS_URL)]
    pub firebase_certs_url: String,
    /// The Firebase project's Web API key (public by design): the dashboard then offers
    /// Firebase sign-in.
    #[arg(long, env = "SOKU_FIREBASE_WEB_API_KEY")]
    pub firebase_web_api_key: Option<String>,
    /// Development only: accept unsigned tokens of the Firebase Auth Emulator at HOST:PORT;
    /// the dashboard's Firebase sign-in then calls the emulator.
    #[arg(long, env = "FIREBASE_AUTH_EMULATOR_HOST", value_name = "HOST:PORT")]
    pub firebase_auth_emulator_host: Option<String>,
}

impl FirebaseArgs {
    /// `None` when Firebase ID tokens are not accepted.
    pub fn settings(&self) -> Result<Option<FirebaseSettings>, String> {
        let emulator_host = self.firebase_auth_emulator_host.as_deref();
        let emulator = emulator_host.is_some_and(|v| !v.trim().is_empty());
        let project = self
            .firebase_project_id
            .clone()
            .filter(|p| !p.trim().is_empty());
        match (project, emulator) {
            (Some(project_id), _) => Ok(Some(FirebaseSettings {
                project_id,
                certs_url: self.firebase_certs_url.clone(),
                emulator,
                web_api_key: self
                    .firebase_web_api_key
                    .clone()
                    .filter(|k| !k.trim().is_empty()),
                auth_url: firebase_auth_url(emulator_host),
            })),
            (None, true) => Err(
                "FIREBASE_AUTH_EMULATOR_HOST is set but SOKU_FIREBASE_PROJECT_ID is not: \
                 emulator tokens name a project"
                    .into(),
            ),
            (None, false) => Ok(None),
        }
    }
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Rate limits")]
pub struct RateLimitArgs {
    /// `on` (default) or `off`. Off: no rate limits and no X-RateLimit headers (benchmarks).
    #[arg(long, env = "SOKU_RATE_LIMITS", default_value = "on", ignore_case = true,
        value_parser = PossibleValuesParser::new(["on", "off"]))]
    pub rate_limits: String,
    /// Keep rate-limit budgets in this Redis, shared by every node using it
    /// (`redis://[:PASSWORD@]HOST[:PORT][/DB]`). Default: in this process's memory.
    #[arg(long, env = "SOKU_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret<String>>,
    /// Prefix of the rate-limit keys in Redis.
    #[arg(long, env = "SOKU_REDIS_PREFIX", default_value = "soku:")]
    pub redis_prefix: String,
    /// How long a rate-limit check waits for Redis before SOKU_RATE_LIMIT_ON_ERROR applies.
    #[arg(long, env = "SOKU_REDIS_TIMEOUT_MS", default_value_t = 250,
        value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_timeout_ms: u64,
    /// When Redis cannot be asked: `allow` the request (default) or `deny` it with 503.
    #[arg(long, env = "SOKU_RATE_LIMIT_ON_ERROR", default_value = "allow", ignore_case = true,
        value_parser = PossibleValuesParser::new(["allow", "deny"]))]
    pub rate_limit_on_error: String,
    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed (rate limits
    /// and the sign-in throttle). Default: none (the TCP peer is the client).
    #[arg(long, env = "SOKU_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
}

impl RateLimitArgs {
    /// The redis URL when one is set (not blank).
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url
            .as_ref()
            .map(|u| u.expose().as_str())
            .filter(|u| !u.trim().is_empty())
    }

    /// The limits; connects the Redis client when limits are on and a Redis is named.
    pub fn options(&self) -> Result<RateLimitOptions, String> {
        let on_error = if self.rate_limit_on_error.eq_ignore_ascii_case("deny") {
            OnError::Deny
        } else {
            OnError::Allow
        };
        let mut options = RateLimitOptions {
            enabled: !self.rate_limits.eq_ignore_ascii_case("off"),
            on_error,
            ..RateLimitOptions::default()
        };
        if let Some(url) = self.redis_url()
            && options.enabled
        {
            options.limiter = Arc::new(RedisLimiter::connect_with_timeout(
                url,
                &self.redis_prefix,
                Duration::from_millis(self.redis_timeout_ms),
            )?);
        }
        Ok(options)
    }

    pub fn trusted_proxies(&self) -> Result<Vec<Cidr>, String> {
        parse_list(&self.trusted_proxies).map_err(|e| format!("SOKU_TRUSTED_PROXIES: {e}"))
    }
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Logs")]
pub struct LogArgs {
    /// `text` (default) or `json` (one JSON object per line).
    #[arg(long, env = "SOKU_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// The log filter, in `tracing` syntax (e.g. `warn,soku_server=debug`).
    /// Default: `info,sqlx=warn,hyper=warn`.
    #[arg(long, env = "SOKU_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

impl LogArgs {
    pub fn init(&self) {
        crate::telemetry::init(
            self.log_format.eq_ignore_ascii_case("json"),
            self.log.as_deref(),
        );
    }
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Publishing engine")]
pub struct EngineArgs {
    /// 32 bytes, base64: the secret from which the keys that encrypt account tokens and seal
    /// dashboard session cookies are derived (HKDF). Default: generated on first start and
    /// kept in the database.
    #[arg(long, env = "SOKU_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret<String>>,
    /// Targets this process publishes at once.
    #[arg(long, env = "SOKU_WORKER_CONCURRENCY", default_value_t = 128)]
    pub worker_concurrency: usize,
    /// Seconds a worker holds a target; a dead worker's targets are taken over after it.
    #[arg(long, env = "SOKU_JOB_LEASE_SECS", default_value_t = 120)]
    pub job_lease_secs: u64,
    /// Attempts before a target that keeps failing retryably ends failed.
    #[arg(long, env = "SOKU_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: i64,
    /// First retry delay in milliseconds; it doubles per attempt, with jitter.
    #[arg(long, env = "SOKU_RETRY_BASE_MS", default_value_t = 2000)]
    pub retry_base_ms: u64,
    /// How long the simulated platforms of test mode take to answer, in milliseconds.
    #[arg(long, env = "SOKU_SIMULATED_LATENCY_MS", default_value_t = 0)]
    pub simulated_latency_ms: u64,
}

impl EngineArgs {
    pub fn config(&self) -> Result<EngineConfig, String> {
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

    pub fn simulated_latency(&self) -> Duration {
        Duration::from_millis(self.simulated_latency_ms)
    }
}

/// The connectors to the real networks.
#[derive(Args, Debug)]
#[command(next_help_heading = "Networks")]
pub struct NetworkArgs {
    /// Fetched images held in memory at once, across every post, in MiB.
    #[arg(long, env = "SOKU_MEDIA_MEMORY_MB", default_value_t = 256,
        value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub media_memory_mb: u64,
    /// Tests only: fetches and user-named hosts (Mastodon instances, Bluesky PDSes) may reach
    /// loopback addresses. Every other private, link-local and metadata range stays refused.
    #[arg(long, env = "SOKU_ALLOW_LOOPBACK",
        value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_loopback: bool,
    /// The `LinkedIn-Version` header (`YYYYMM`); anything else is ignored with a warning.
    /// Default: the version this server was written against.
    #[arg(long, env = "SOKU_LINKEDIN_VERSION", value_name = "YYYYMM")]
    pub linkedin_version: Option<String>,
    /// Bluesky's video service, where videos are uploaded and processed before they are posted.
    /// Default: the public one (tests point it at a fake).
    #[arg(long, env = "SOKU_BLUESKY_VIDEO_URL", value_name = "URL")]
    pub bluesky_video_url: Option<String>,
    /// The Graph API version the Facebook and Instagram connectors call (`vNN.N`); anything
    /// else is ignored with a warning. Default: the version this server was written against.
    #[arg(long, env = "SOKU_FACEBOOK_GRAPH_VERSION", value_name = "VERSION")]
    pub facebook_graph_version: Option<String>,
    /// Where Facebook Page reels and video stories are uploaded (Meta's resumable upload host).
    /// Default: the public one (tests point it at a fake).
    #[arg(long, env = "SOKU_FACEBOOK_UPLOAD_URL", value_name = "URL")]
    pub facebook_upload_url: Option<String>,
    #[command(flatten)]
    pub x: XArgs,
    #[command(flatten)]
    pub threads: ThreadsArgs,
    #[command(flatten)]
    pub linkedin: LinkedinArgs,
    #[command(flatten)]
    pub bluesky: BlueskyArgs,
    #[command(flatten)]
    pub mastodon: MastodonArgs,
    #[command(flatten)]
    pub facebook: FacebookArgs,
    #[command(flatten)]
    pub youtube: YoutubeArgs,
    #[command(flatten)]
    pub tiktok: TiktokArgs,
    #[command(flatten)]
    pub snapchat: SnapchatArgs,
    /// Google's token endpoint, where YouTube authorization codes and refresh tokens are
    /// traded. Default: the public one (tests point it at a fake).
    #[arg(long, env = "SOKU_YOUTUBE_TOKEN_URL", value_name = "URL")]
    pub youtube_token_url: Option<String>,
}

impl NetworkArgs {
    pub fn settings(&self) -> LiveSettings {
        let defaults = LiveSettings::default();
        LiveSettings {
            x: self.x.settings(defaults.x),
            threads: self.threads.settings(defaults.threads),
            linkedin: self.linkedin.settings(defaults.linkedin),
            bluesky: self.bluesky.settings(defaults.bluesky),
            mastodon: self.mastodon.settings(defaults.mastodon),
            facebook: self.facebook.settings(defaults.facebook),
            facebook_graph_version: given(&self.facebook_graph_version),
            youtube: self.youtube.settings(defaults.youtube),
            tiktok: self.tiktok.settings(defaults.tiktok),
            snapchat: self.snapchat.settings(defaults.snapchat),
            youtube_token_url: url_or(&self.youtube_token_url, defaults.youtube_token_url.clone()),
            facebook_upload_url: url_or(
                &self.facebook_upload_url,
                defaults.facebook_upload_url.clone(),
            ),
            linkedin_version: self.linkedin_version.clone(),
            bluesky_video_url: url_or(&self.bluesky_video_url, defaults.bluesky_video_url.clone()),
            media_memory: self.media_memory_mb * 1024 * 1024,
            allow_loopback: self.allow_loopback,
        }
    }
}

/// A configured value, unless it is blank.
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A configured URL over the default, without a trailing slash.
fn url_or(value: &Option<String>, default: String) -> String {
    given(value).map_or(default, |v| v.trim_end_matches('/').to_owned())
}

/// The flags of a network: its API URL and call timeout, and for OAuth platforms the
/// authorization page and the app's credentials. Flags `--<flag>-...`, variables
/// `SOKU_<ENV>_...`, the names operators have used since the connectors came.
macro_rules! network_args {
    (@common $name:ident, $display:literal, $flag:literal, $env:literal { $($oauth:tt)* }) => {
        #[derive(Args, Debug)]
        #[command(next_help_heading = concat!($display, " connector"))]
        pub struct $name {
            #[arg(id = concat!($flag, "-api-url"), long = concat!($flag, "-api-url"),
                env = concat!("SOKU_", $env, "_API_URL"), value_name = "URL",
                help = concat!("The ", $display, " API's base URL (tests point it at a fake). Default: the public one"))]
            pub api_url: Option<String>,
            #[arg(id = concat!($flag, "-timeout-secs"), long = concat!($flag, "-timeout-secs"),
                env = concat!("SOKU_", $env, "_TIMEOUT_SECS"), value_name = "SECS", default_value_t = 30,
                help = concat!("The longest one call to ", $display, " may take, in seconds"))]
            pub timeout_secs: u64,
            $($oauth)*
        }
    };
    ($name:ident, $display:literal, $flag:literal, $env:literal, oauth) => {
        network_args!(@common $name, $display, $flag, $env {
            #[arg(id = concat!($flag, "-auth-url"), long = concat!($flag, "-auth-url"),
                env = concat!("SOKU_", $env, "_AUTH_URL"), value_name = "URL",
                help = concat!("The ", $display, " authorization page. Default: the public one"))]
            pub auth_url: Option<String>,
            #[arg(id = concat!($flag, "-client-id"), long = concat!($flag, "-client-id"),
                env = concat!("SOKU_", $env, "_CLIENT_ID"), value_name = "ID",
                help = concat!("The client id of this server's ", $display, " app"))]
            pub client_id: Option<String>,
            #[arg(id = concat!($flag, "-client-secret"), long = concat!($flag, "-client-secret"),
                env = concat!("SOKU_", $env, "_CLIENT_SECRET"), hide_env_values = true,
                value_name = "SECRET",
                help = concat!("The client secret of this server's ", $display, " app"))]
            pub client_secret: Option<Secret<String>>,
        });
        impl $name {
            fn settings(&self, defaults: PlatformSettings) -> PlatformSettings {
                PlatformSettings {
                    api_url: url_or(&self.api_url, defaults.api_url),
                    auth_url: url_or(&self.auth_url, defaults.auth_url),
                    client_id: given(&self.client_id),
                    client_secret: self
                        .client_secret
                        .as_ref()
                        .map(|s| s.expose().trim())
                        .filter(|s| !s.is_empty())
                        .map(Secret::from),
                    timeout: Duration::from_secs(self.timeout_secs),
                }
            }
        }
    };
    ($name:ident, $display:literal, $flag:literal, $env:literal) => {
        network_args!(@common $name, $display, $flag, $env {});
        impl $name {
            fn settings(&self, defaults: PlatformSettings) -> PlatformSettings {
                PlatformSettings {
                    api_url: url_or(&self.api_url, defaults.api_url),
                    timeout: Duration::from_secs(self.timeout_secs),
                    ..defaults
                }
            }
        }
    };
}

network_args!(XArgs, "X", "x", "X", oauth);
network_args!(ThreadsArgs, "Threads", "threads", "THREADS", oauth);
network_args!(LinkedinArgs, "LinkedIn", "linkedin", "LINKEDIN", oauth);
network_args!(BlueskyArgs, "Bluesky", "bluesky", "BLUESKY");
network_args!(MastodonArgs, "Mastodon", "mastodon", "MASTODON");
// One Meta app (Facebook Login) serves the Facebook Page and Instagram connectors.
network_args!(
    FacebookArgs,
    "Facebook and Instagram",
    "facebook",
    "FACEBOOK",
    oauth
);
network_args!(YoutubeArgs, "YouTube", "youtube", "YOUTUBE", oauth);
network_args!(TiktokArgs, "TikTok", "tiktok", "TIKTOK", oauth);
network_args!(SnapchatArgs, "Snapchat", "snapchat", "SNAPCHAT", oauth);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn debug_never_prints_secrets() {
        let config = Config::try_parse_from([
            "soku",
            "--database-url",
            "postgres://soku:db-password@db/soku",
            "serve",
            "--secret-key",
            "the-secret-key",
            "--x-client-secret",
            "the-x-secret",
            "--redis-url",
            "redis://:redis-password@cache",
        ])
        .unwrap();
        let printed = format!("{config:?}");
        for secret in [
            "db-password",
            "the-secret-key",
            "the-x-secret",
            "redis-password",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        let Command::Serve(serve) = &config.command else {
            panic!("serve")
        };
        let live = serve.worker.networks.settings();
        assert_eq!(
            live.x.client_secret.as_ref().map(|s| s.expose().as_str()),
            Some("the-x-secret")
        );
        assert_eq!(live.x.api_url, soku_platforms::x::DEFAULT_API_URL);
        assert_eq!(live.media_memory, 256 * 1024 * 1024);
    }
}
