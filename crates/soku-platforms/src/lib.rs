//! Connectors to the social networks. Each implements `soku_core::connector::Connector`.
//! `simulated` stands in for every network in test mode (spec section 9).

pub mod bluesky;
pub mod fetch;
pub mod http;
pub mod linkedin;
pub mod mastodon;
pub mod media;
pub mod net;
pub mod registry;
pub mod simulated;
pub mod threads;
pub mod x;

use soku_core::connector::Connector;
use soku_core::platform::Platform;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use registry::{Connectors, LiveConnectors};

/// Test only: lets media fetches and user-named hosts (Mastodon instances, Bluesky PDSes)
/// reach loopback addresses, where tests run their platform fakes. Every other private,
/// link-local and metadata range stays refused.
pub const ALLOW_LOOPBACK_ENV: &str = "SOKU_ALLOW_LOOPBACK";

/// The connectors to the real networks, configured from the environment: for each platform
/// `SOKU_<PLATFORM>_API_URL`, `_AUTH_URL`, `_CLIENT_ID`, `_CLIENT_SECRET`, `_TIMEOUT_SECS`.
/// Images named by URL are fetched by `fetch::SafeFetcher`.
pub fn live_from_env() -> HashMap<Platform, Arc<dyn Connector>> {
    let net = net::NetPolicy {
        allow_loopback: std::env::var(ALLOW_LOOPBACK_ENV)
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on")),
    };
    if net.allow_loopback {
        tracing::warn!(
            "{ALLOW_LOOPBACK_ENV} is set: fetches may reach loopback addresses (tests only)"
        );
    }
    let budget = std::env::var("SOKU_MEDIA_MEMORY_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|mb| *mb > 0)
        .map_or(fetch::DEFAULT_MEMORY_BUDGET, |mb| mb * 1024 * 1024);
    let media: Arc<dyn media::MediaSource> =
        Arc::new(fetch::SafeFetcher::new(net, Duration::from_secs(60)).with_memory_budget(budget));
    let settings =
        |prefix: &str, api: &str, auth: &str| PlatformSettings::from_env(prefix, api, auth);
    let mut live: HashMap<Platform, Arc<dyn Connector>> = HashMap::new();
    live.insert(
        Platform::X,
        Arc::new(x::X::new(
            settings("X", x::DEFAULT_API_URL, x::DEFAULT_AUTH_URL),
            media.clone(),
        )),
    );
    live.insert(
        Platform::Threads,
        Arc::new(threads::ThreadsConnector::new(
            settings(
                "THREADS",
                threads::DEFAULT_API_URL,
                threads::DEFAULT_AUTH_URL,
            ),
            media.clone(),
        )),
    );
    live.insert(
        Platform::Linkedin,
        Arc::new(linkedin::LinkedIn::new(
            settings(
                "LINKEDIN",
                linkedin::DEFAULT_API_URL,
                linkedin::DEFAULT_AUTH_URL,
            ),
            media.clone(),
        )),
    );
    live.insert(
        Platform::Bluesky,
        Arc::new(bluesky::Bluesky::new(
            settings(
                "BLUESKY",
                bluesky::DEFAULT_API_URL,
                bluesky::DEFAULT_API_URL,
            ),
            media.clone(),
            net,
        )),
    );
    live.insert(
        Platform::Mastodon,
        Arc::new(mastodon::Mastodon::new(
            mastodon::Mastodon::settings_from_env(),
            media,
            net,
        )),
    );
    live
}

/// Where a platform's API is and how this server identifies itself to it. Every URL is
/// configurable so that tests (and staging setups) can point a connector at a fake.
#[derive(Clone)]
pub struct PlatformSettings {
    /// The API's base URL, without a trailing slash.
    pub api_url: String,
    /// The authorization page's base URL (OAuth platforms), without a trailing slash.
    pub auth_url: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The longest one call to the platform may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for PlatformSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformSettings")
            .field("api_url", &self.api_url)
            .field("auth_url", &self.auth_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<set>"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PlatformSettings {
    /// Settings from `SOKU_<PREFIX>_API_URL`, `_AUTH_URL`, `_CLIENT_ID`, `_CLIENT_SECRET` and
    /// `_TIMEOUT_SECS`, with the platform's public endpoints as defaults.
    pub fn from_env(prefix: &str, api_url: &str, auth_url: &str) -> Self {
        let var = |name: &str| {
            std::env::var(format!("SOKU_{prefix}_{name}"))
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            api_url: var("API_URL")
                .unwrap_or_else(|| api_url.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            auth_url: var("AUTH_URL")
                .unwrap_or_else(|| auth_url.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            client_id: var("CLIENT_ID"),
            client_secret: var("CLIENT_SECRET"),
            timeout: Duration::from_secs(
                var("TIMEOUT_SECS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(30),
            ),
        }
    }

    /// Settings for a fake at `base` (tests).
    pub fn at(base: &str) -> Self {
        Self {
            api_url: base.trim_end_matches('/').to_owned(),
            auth_url: base.trim_end_matches('/').to_owned(),
            client_id: Some("test-client-id".into()),
            client_secret: Some("test-client-secret".into()),
            timeout: Duration::from_secs(5),
        }
    }
}
