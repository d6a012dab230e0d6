//! What every handler can reach.

use crate::auth::client_ip::{self, Cidr};
use crate::auth::keys::KeyAuthenticator;
use crate::auth::tokens::TokenVerifier;
use crate::auth::users::Users;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use axum::http::HeaderMap;
use soku_core::batch::GroupCommit;
use soku_core::queue::NewSubmission;
use soku_core::{Clock, Store};
use soku_engine::account_tokens::AccountTokens;
use soku_engine::metrics::EngineMetrics;
use soku_engine::secrets::SecretBox;
use soku_platforms::Connectors;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyAuthenticator,
    pub tokens: TokenVerifier,
    pub metrics: Metrics,
    /// The publishing engine's and token refresher's counters, rendered with `metrics`.
    pub engine_metrics: Arc<EngineMetrics>,
    /// `None` when limits are off (`SOKU_RATE_LIMITS=off`).
    pub rate_limits: Option<RateLimits>,
    /// Users known by ID token or session: created on first sight, their rate profiles.
    pub users: Users,
    /// The OpenAPI document, generated from the routes when the router is built.
    pub openapi: OnceLock<serde_json::Value>,
    pub connectors: Connectors,
    pub secrets: SecretBox,
    /// Connected accounts' tokens: opened for a call, refreshed.
    pub account_tokens: Arc<AccountTokens>,
    /// Wakes this process's publishing engine when a post is accepted.
    pub engine_wake: Arc<tokio::sync::Notify>,
    /// Accepted posts, written in one transaction with the others accepted meanwhile.
    pub new_submissions: GroupCommit<NewSubmission, bool>,
    /// Failed password sign-ins, per email and per client address.
    pub login_throttle: crate::auth::passwords::Throttle,
    /// Turns to check a password: at most one check per CPU at once.
    pub password_checks: crate::auth::passwords::Checks,
    /// Peers whose `X-Forwarded-For` is believed (`SOKU_TRUSTED_PROXIES`), for whatever counts
    /// per client address: rate limits and the sign-in throttle. Kept with limits off too.
    pub trusted_proxies: Vec<Cidr>,
    /// The https origins a connection's `redirectUri` may have; `None`: any.
    pub connect_redirect_origins: Option<Vec<String>>,
    /// Hosted media: the store, the files' base URL, the importer.
    pub media: crate::service::media::MediaHost,
    /// The keys GitHub signs secret scanning reports with (`POST /v1/secret-scanning/github`).
    pub github_keys: crate::auth::github::GithubKeys,
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        tokens: TokenVerifier,
        connectors: Connectors,
        secrets: SecretBox,
        rate_limits: Option<RateLimits>,
        trusted_proxies: Vec<Cidr>,
        connect_redirect_origins: Option<Vec<String>>,
        media: crate::service::media::MediaHost,
        github_keys_url: String,
    ) -> Self {
        let new_submissions = {
            let store = store.clone();
            GroupCommit::spawn(256, move |batch: Arc<[NewSubmission]>| {
                let store = store.clone();
                async move { store.create_submissions(&batch).await }
            })
        };
        let engine_metrics = Arc::new(EngineMetrics::default());
        let account_tokens = Arc::new(AccountTokens::new(
            store.clone(),
            clock.clone(),
            connectors.clone(),
            secrets.clone(),
            engine_metrics.clone(),
        ));
        Self(Arc::new(Inner {
            account_tokens,
            new_submissions,
            login_throttle: crate::auth::passwords::Throttle::new(
                5,
                std::time::Duration::from_secs(15 * 60),
            ),
            password_checks: crate::auth::passwords::Checks::new(),
            keys: KeyAuthenticator::new(store.clone(), clock.clone()),
            store,
            clock,
            tokens,
            metrics: Metrics::default(),
            engine_metrics,
            rate_limits,
            trusted_proxies,
            connect_redirect_origins,
            media,
            github_keys: crate::auth::github::GithubKeys::new(github_keys_url),
            users: Users::default(),
            openapi: OnceLock::new(),
            connectors,
            secrets,
            engine_wake: Arc::new(tokio::sync::Notify::new()),
        }))
    }

    /// The client's address: the TCP peer's, or, from a trusted proxy, the one its
    /// `X-Forwarded-For` names.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_ip::client_ip(peer, headers, &self.trusted_proxies)
    }

    pub fn wake_engine(&self) {
        self.engine_wake.notify_one();
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
