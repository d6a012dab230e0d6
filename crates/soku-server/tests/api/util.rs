//! The test app: a server on a loopback port with its own fresh database, and personas.

use axum::Router;
use axum::routing::get;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use soku_core::model::{Subscription, SubscriptionStatus, new_api_key};
use soku_core::{Clock, Store, SystemClock};
use soku_engine::EngineConfig;
use soku_server::auth::tokens::{FirebaseSettings, generate_signing_key};
use soku_server::ratelimit::RateLimitOptions;
use soku_server::state::AppState;
use soku_server::{ServerOptions, build_state, router, serve, spawn_engine};
use std::sync::{Arc, OnceLock};
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
    _stop_engine: tokio::sync::watch::Sender<bool>,
}

pub struct Builder {
    firebase: Option<FirebaseSettings>,
    engine: Option<EngineConfig>,
    simulated_latency: std::time::Duration,
    rate_limits: Option<RateLimitOptions>,
    trusted_proxies: Vec<soku_server::auth::client_ip::Cidr>,
    routes: Option<Router<AppState>>,
    live_connectors: soku_platforms::LiveConnectors,
    github_keys_url: Option<String>,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            firebase: None,
            // Quick retries so that tests of retry paths finish in seconds.
            engine: Some(EngineConfig {
                backoff_base: std::time::Duration::from_millis(200),
                backoff_max: std::time::Duration::from_secs(2),
                ..EngineConfig::default()
            }),
            simulated_latency: std::time::Duration::ZERO,
            rate_limits: None,
            trusted_proxies: Vec::new(),
            routes: None,
            live_connectors: Default::default(),
            github_keys_url: None,
        }
    }
}

/// The limits of a `TestApp` unless a test sets its own: the spec's rates with bursts so large
/// that no test runs out (many requests from one address in quick succession would otherwise
/// exhaust the Default tier). Limiting stays on, so every test goes through the middleware.
pub fn generous_limits() -> RateLimitOptions {
    let mut options = RateLimitOptions::default();
    let huge = soku_core::ratelimit::MAX_BURST;
    let t = &mut options.policy.tiers;
    for q in [
        &mut t.default,
        &mut t.authenticated,
        &mut t.premium,
        &mut t.admin,
    ] {
        q.burst = huge;
    }
    for e in &mut options.policy.endpoints {
        e.rate = soku_core::ratelimit::MAX_RATE;
    }
    options
}

impl Builder {
    pub fn firebase(mut self, project_id: &str, certs_url: &str, emulator: bool) -> Self {
        self.firebase = Some(FirebaseSettings {
            project_id: project_id.into(),
            certs_url: certs_url.into(),
            emulator,
            web_api_key: None,
            auth_url: soku_server::auth::tokens::firebase_auth_url(None),
        });
        self
    }

    /// Firebase sign-in on the dashboard: this Web API key, against `auth_url`.
    pub fn firebase_web(mut self, api_key: &str, auth_url: &str) -> Self {
        let f = self.firebase.as_mut().expect("firebase() first");
        f.web_api_key = Some(api_key.into());
        f.auth_url = auth_url.into();
        self
    }

    /// No publishing engine in this process.
    pub fn without_engine(mut self) -> Self {
        self.engine = None;
        self
    }

    pub fn engine(mut self, config: EngineConfig) -> Self {
        self.engine = Some(config);
        self
    }

    /// How long test mode's simulated platforms take to answer.
    pub fn simulated_latency(mut self, latency: std::time::Duration) -> Self {
        self.simulated_latency = latency;
        self
    }

    /// Rate limits for this app (default: `generous_limits()`).
    pub fn rate_limits(mut self, options: RateLimitOptions) -> Self {
        self.rate_limits = Some(options);
        self
    }

    /// Proxies whose `X-Forwarded-For` is believed (`SOKU_TRUSTED_PROXIES` syntax).
    pub fn trusted_proxies(mut self, list: &str) -> Self {
        self.trusted_proxies = soku_server::auth::client_ip::parse_list(list).unwrap();
        self
    }

    /// Live-mode publishing to `platform` through this connector (a real one pointed at a fake).
    pub fn connector(
        mut self,
        platform: soku_core::platform::Platform,
        connector: Arc<dyn soku_core::connector::Connector>,
    ) -> Self {
        self.live_connectors.insert(platform, connector);
        self
    }

    /// Where GitHub's secret scanning keys are fetched from (a fake in the test).
    pub fn github_keys_url(mut self, url: &str) -> Self {
        self.github_keys_url = Some(url.into());
        self
    }

    /// Extra routes, served with the same middleware.
    pub fn routes(mut self, routes: Router<AppState>) -> Self {
        self.routes = Some(routes);
        self
    }

    pub async fn start(self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh_store(&dir).await;
        // One signing key per test process: RSA key generation is slow.
        static KEY: OnceLock<soku_core::model::SigningKey> = OnceLock::new();
        let key = KEY.get_or_init(|| generate_signing_key(Utc::now()).unwrap());
        store.insert_signing_key_if_none(key).await.unwrap();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let state = build_state(
            store.clone(),
            clock,
            ServerOptions {
                public_url: base.clone(),
                firebase: self.firebase,
                secret_key: None,
                simulated_latency: self.simulated_latency,
                rate_limits: self.rate_limits.unwrap_or_else(generous_limits),
                trusted_proxies: self.trusted_proxies,
                live_connectors: self.live_connectors,
                connect_redirect_origins: None,
                media: local_media(&dir, &base, store.clone()).await,
                github_secret_scanning_keys_url: self.github_keys_url.unwrap_or_else(|| {
                    // Nothing listens there: a test that does not set its own fake is refused.
                    "http://127.0.0.1:9/meta/public_keys/secret_scanning".into()
                }),
            },
        )
        .await
        .unwrap();
        let mut extra = Router::new().route(
            "/test/panic",
            get(|| async {
                if true {
                    panic!("deliberate panic for the test of the 500 envelope");
                }
                "unreachable"
            }),
        );
        let (stop_engine, engine_stopped) = tokio::sync::watch::channel(false);
        if let Some(config) = self.engine {
            spawn_engine(&state, config, engine_stopped);
        }
        if let Some(routes) = self.routes {
            extra = extra.merge(routes);
        }
        let app = router(state.clone(), Some(extra));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestApp {
            base,
            store,
            state,
            http: reqwest::Client::new(),
            _dir: dir,
            _stop: stop,
            _stop_engine: stop_engine,
        }
    }
}

/// Media kept in `dir/media`, served at `base`, imported from loopback too (the tests' file
/// servers), with 2-second idle timeouts so that a stalled source or client is seen quickly.
pub async fn local_media(
    dir: &tempfile::TempDir,
    base: &str,
    store: Arc<dyn Store>,
) -> soku_server::service::media::MediaHost {
    soku_server::service::media::MediaHost {
        library: soku_media::MediaLibrary {
            storage: soku_media::MediaStorage::local(&dir.path().join("media"))
                .await
                .unwrap(),
            store,
            base_url: base.to_owned(),
        },
        importer: soku_platforms::import::Importer::new(
            soku_platforms::net::NetPolicy {
                allow_loopback: true,
            },
            std::time::Duration::from_secs(30),
            std::time::Duration::from_secs(2),
        ),
        upload_idle: std::time::Duration::from_secs(2),
    }
}

async fn fresh_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    match std::env::var("SOKU_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Arc::new(
            soku_store::postgres::PgStore::connect_fresh_schema(&url, "api")
                .await
                .unwrap(),
        ),
        _ => soku_store::open(&format!(
            "sqlite://{}",
            dir.path().join("soku.db").display()
        ))
        .await
        .unwrap(),
    }
}

impl TestApp {
    pub async fn start() -> TestApp {
        Builder::default().start().await
    }

    /// A server whose publishing engine does not run: what is accepted stays queued.
    pub async fn builder_without_engine() -> TestApp {
        Builder::default().without_engine().start().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The default media store's directory (`Builder::media` not used).
    /// The SQLite database file, when the store is SQLite (`None` on the PostgreSQL pass).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        let postgres = std::env::var("SOKU_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty());
        (!postgres).then(|| self._dir.path().join("soku.db"))
    }

    pub fn media_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("media")
    }

    /// A user with the given subscription (none when `status` is `None`).
    pub async fn user(
        &self,
        status: Option<SubscriptionStatus>,
        period_end: DateTime<Utc>,
    ) -> String {
        let uid = soku_core::keys::random_id("u", 12);
        self.store
            .create_user(&uid, Some("user@example.com"), Utc::now())
            .await
            .unwrap();
        if let Some(status) = status {
            let sub = Subscription {
                status,
                current_period_end: period_end,
            };
            self.store
                .set_subscription(&uid, &sub, Utc::now())
                .await
                .unwrap();
        }
        uid
    }

    /// A user with an active subscription and a test key: `(uid, key)`.
    pub async fn test_subscriber(&self) -> (String, String) {
        let uid = self
            .user(
                Some(SubscriptionStatus::Active),
                Utc::now() + Duration::days(30),
            )
            .await;
        let (record, generated) = new_api_key(
            &uid,
            Some("test".into()),
            soku_core::keys::KeyMode::Test,
            Utc::now(),
        );
        self.store
            .insert_api_key(&record, &created(&record))
            .await
            .unwrap();
        (uid, generated.secret)
    }

    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("soku-api-key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A user with an active subscription and a live key: `(uid, key)`.
    pub async fn subscriber(&self) -> (String, String) {
        let uid = self
            .user(
                Some(SubscriptionStatus::Active),
                Utc::now() + Duration::days(30),
            )
            .await;
        let key = self.key_for(&uid).await;
        (uid, key)
    }

    pub async fn key_for(&self, uid: &str) -> String {
        let (record, generated) = new_api_key(
            uid,
            Some("test".into()),
            soku_core::keys::KeyMode::Live,
            Utc::now(),
        );
        self.store
            .insert_api_key(&record, &created(&record))
            .await
            .unwrap();
        generated.secret
    }

    /// An ID token of the built-in issuer.
    pub fn token(&self, uid: &str) -> String {
        self.state
            .tokens
            .builtin()
            .issue(uid, None, Utc::now(), std::time::Duration::from_secs(600))
            .unwrap()
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header("soku-api-key", key)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts the spec's envelope and returns it: status, type, code, message (when given),
/// a well-formed request id equal to the header, and the timestamp format.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
    message: Option<&str>,
) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let header_id = request_id(&response);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], code, "code in {body}");
    let expected_type = match status {
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    assert_eq!(error["type"], expected_type, "type in {body}");
    if let Some(message) = message {
        assert_eq!(error["message"], message, "message in {body}");
    }
    assert_eq!(error["requestId"], header_id.as_str());
    assert_timestamp(error["timestamp"].as_str().unwrap());
    body
}

pub fn request_id(response: &reqwest::Response) -> String {
    let id = response
        .headers()
        .get("x-request-id")
        .expect("every response has X-Request-ID")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        id.len() == 16
            && id.starts_with("req_")
            && id[4..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "malformed request id {id}"
    );
    id
}

fn assert_timestamp(t: &str) {
    // 2026-02-28T12:00:00.000Z
    assert_eq!(t.len(), 24, "{t}");
    assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    assert!(DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
}

/// Polls `check` every 50 ms until it returns true or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The `api_key.created` event of a key stored by a test.
pub fn created(key: &soku_core::model::NewApiKey) -> soku_core::audit::AuditEvent {
    key.created_event(Default::default(), serde_json::json!({}))
}

/// The event of a revocation made by a test.
pub fn revoked_event() -> soku_core::audit::AuditDraft {
    soku_core::audit::AuditDraft::new(
        soku_core::audit::AuditKind::KeyRevoked,
        Default::default(),
        serde_json::json!({}),
    )
}

/// The user's audit events (`GET /v1/audit-events` with their ID token), newest first, one page
/// of 100.
pub async fn audit_events(app: &TestApp, uid: &str) -> Vec<Value> {
    let r = app
        .get_with_token("/v1/audit-events?limit=100", &app.token(uid))
        .await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    page["events"].as_array().unwrap().clone()
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}
