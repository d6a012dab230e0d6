//! The real `soku` binary: operator commands, several processes on one database, logs,
//! graceful shutdown.

use crate::util::eventually;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_soku");

pub(crate) fn soku(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("SOKU_DATABASE_URL", db)
        .env_remove("SOKU_PUBLIC_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `soku ARGS` with extra environment variables (and none of the runner's rate-limit ones):
/// (success, stdout, stderr). A process still running after 60 s is killed and fails the test.
pub(crate) fn soku_env(db: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    use std::io::Read;
    let mut command = Command::new(BIN);
    command.args(args).env("SOKU_DATABASE_URL", db);
    for name in [
        "SOKU_RATE_LIMITS",
        "SOKU_REDIS_URL",
        "SOKU_REDIS_PREFIX",
        "SOKU_RATE_LIMIT_ON_ERROR",
        "SOKU_TRUSTED_PROXIES",
        "SOKU_REDIS_TIMEOUT_MS",
    ] {
        command.env_remove(name);
    }
    let mut child = command
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("soku {args:?} did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.success(), out, err)
}

/// A user with an active subscription, made with the operator commands; returns the user id.
pub(crate) fn subscriber(db: &str, email: &str) -> String {
    let uid = ok(db, &["admin", "user", "create", "--email", email]);
    ok(
        db,
        &[
            "admin",
            "subscription",
            "set",
            "--uid",
            &uid,
            "--status",
            "active",
        ],
    );
    uid
}

pub(crate) fn ok(db: &str, args: &[&str]) -> String {
    let (success, stdout, stderr) = soku(db, args);
    assert!(success, "soku {args:?} failed: {stderr}");
    stdout.trim_end().to_owned()
}

/// A `soku serve` process with JSON logs, its stdout collected line by line.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// The media store, unless the test named one (`SOKU_MEDIA_STORE`).
    _media: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with rate limits off: these tests poll (`eventually`) faster than the Default
    /// tier refills. The rate-limit tests start theirs with `start_with`.
    fn start(db: &str) -> Server {
        Self::start_with(db, &[], &[("SOKU_RATE_LIMITS", "off")])
    }

    /// A server with these arguments, and these environment variables on top of the defaults
    /// (and of nothing the test runner's environment says about rate limits).
    pub(crate) fn start_with(db: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("SOKU_DATABASE_URL", db)
            .env("SOKU_LOG_FORMAT", "json")
            .env("SOKU_LOG", "debug,sqlx=warn,hyper=warn,reqwest=warn")
            .env_remove("SOKU_PUBLIC_URL")
            .env_remove("FIREBASE_AUTH_EMULATOR_HOST");
        for name in [
            "SOKU_RATE_LIMITS",
            "SOKU_REDIS_URL",
            "SOKU_REDIS_PREFIX",
            "SOKU_RATE_LIMIT_ON_ERROR",
            "SOKU_TRUSTED_PROXIES",
            "SOKU_REDIS_TIMEOUT_MS",
        ] {
            command.env_remove(name);
        }
        // Never the default (`./media` beside a PostgreSQL test's working directory).
        let media = (!env.iter().any(|(k, _)| *k == "SOKU_MEDIA_STORE"))
            .then(|| tempfile::tempdir().unwrap());
        if let Some(dir) = &media {
            command.env("SOKU_MEDIA_STORE", dir.path());
        }
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "soku is serving"
                {
                    let _ = tx.send(v["fields"]["listen"].as_str().unwrap().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let listen = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server reports its address");
        Server {
            child,
            base: format!("http://{listen}"),
            logs,
            _media: media,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh database for one test: a SQLite file, or a new schema on the PostgreSQL server
/// named by `SOKU_TEST_POSTGRES_URL`.
pub(crate) async fn database(dir: &tempfile::TempDir, label: &str) -> String {
    match std::env::var("SOKU_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => soku_store::postgres::fresh_schema_url(&url, label)
            .await
            .unwrap(),
        _ => format!("sqlite://{}", dir.path().join("soku.db").display()),
    }
}

async fn status(http: &reqwest::Client, url: &str, key: &str) -> u16 {
    http.get(url)
        .header("soku-api-key", key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn operator_commands_drive_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "ops").await;
    let mut server = Server::start(&db);
    let http = reqwest::Client::new();

    let uid = ok(
        &db,
        &["admin", "user", "create", "--email", "ops@example.com"],
    );
    assert!(
        !uid.is_empty() && !uid.contains(char::is_whitespace),
        "{uid}"
    );
    let fixed = ok(
        &db,
        &[
            "admin",
            "user",
            "create",
            "--email",
            "b@example.com",
            "--uid",
            "fixed-uid",
        ],
    );
    assert_eq!(fixed, "fixed-uid");
    let key = ok(
        &db,
        &["admin", "key", "create", "--uid", &uid, "--name", "laptop"],
    );
    assert!(
        soku_core::keys::parse(&key).is_some(),
        "the key alone on its line: {key:?}"
    );
    assert!(key.starts_with("sk_live_"));

    // No subscription yet: 403; then one is given while the server runs.
    assert_eq!(status(&http, &server.url("/v1/me"), &key).await, 403);
    ok(
        &db,
        &[
            "admin",
            "subscription",
            "set",
            "--uid",
            &uid,
            "--status",
            "active",
        ],
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            status(&http, &server.url("/v1/me"), &key).await == 200
        })
        .await
    );
    ok(
        &db,
        &[
            "admin", "user", "set-role", "--uid", &uid, "--role", "admin",
        ],
    );

    let test_key = ok(&db, &["admin", "key", "create", "--uid", &uid, "--test"]);
    assert!(test_key.starts_with("sk_test_"));

    let listing = ok(&db, &["admin", "key", "list", "--uid", &uid]);
    assert!(
        !listing.contains(&key) && !listing.contains(&test_key),
        "never the keys themselves"
    );
    assert!(
        listing.contains("laptop") && listing.contains("sk_live_"),
        "{listing}"
    );
    let key_id = listing
        .lines()
        .find(|l| l.contains("laptop"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_owned();

    // A token from `soku admin token` is accepted by the server on the same database.
    let token = ok(&db, &["admin", "token", "--uid", &uid, "--ttl", "120"]);
    let keys: Value = http
        .get(server.url("/v1/api-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["apiKeys"].as_array().unwrap().len(), 2);

    // Revocation from the command line reaches the running server within 5 seconds.
    ok(&db, &["admin", "key", "revoke", "--id", &key_id]);
    let started = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async {
            status(&http, &server.url("/v1/me"), &key).await == 401
        })
        .await
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // Errors: stderr, non-zero exit.
    for args in [
        vec!["admin", "key", "create", "--uid", "nobody"],
        vec!["admin", "key", "revoke", "--id", "key_nothing"],
        vec![
            "admin",
            "subscription",
            "set",
            "--uid",
            &uid,
            "--status",
            "paused",
        ],
        vec![
            "admin",
            "subscription",
            "set",
            "--uid",
            &uid,
            "--status",
            "active",
            "--period-end",
            "tomorrow",
        ],
        vec![
            "admin", "user", "set-role", "--uid", &uid, "--role", "owner",
        ],
        vec![
            "admin",
            "user",
            "create",
            "--email",
            "c@example.com",
            "--uid",
            "fixed-uid",
        ],
        vec!["admin", "token", "--uid", "nobody"],
    ] {
        let (success, stdout, stderr) = soku(&db, &args);
        assert!(!success, "{args:?} succeeded");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
    let period = ok(
        &db,
        &[
            "admin",
            "subscription",
            "set",
            "--uid",
            &uid,
            "--status",
            "trialing",
            "--period-end",
            "2031-01-02T03:04:05Z",
        ],
    );
    assert!(period.contains("2031-01-02T03:04:05.000Z"), "{period}");

    // Logs: every line of a request carries its id; no key, token or hash ever appears.
    let response = http
        .get(server.url("/v1/me"))
        .header("soku-api-key", &test_key)
        .send()
        .await
        .unwrap();
    let rid = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let exit = server.terminate();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let logs = server.logs();
    let tagged: Vec<&String> = logs.iter().filter(|l| l.contains(&rid)).collect();
    assert!(!tagged.is_empty(), "the request's log lines carry its id");
    for line in &tagged {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["span"]["request_id"], rid.as_str(), "{line}");
    }
    for line in &logs {
        for secret in [&key, &test_key, &token] {
            assert!(
                !line.contains(secret.as_str()),
                "a secret reached the log: {line}"
            );
        }
        assert!(
            !line.contains("sk_live_") && !line.contains("sk_test_") || line.contains("..."),
            "{line}"
        );
    }
    assert!(logs.iter().any(|l| l.contains("soku stopped")));
}

/// `soku admin` refuses a leap second ("23:59:60") like any time that is not RFC 3339: chrono
/// accepts it, and it would be written back as ":60", which JavaScript and Python cannot parse.
#[tokio::test]
async fn admin_commands_refuse_a_leap_second() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "leap").await;
    let uid = subscriber(&db, "leap@example.com");
    let leap = "2031-06-30T23:59:60Z";
    let commands = [
        (
            vec![
                "admin",
                "subscription",
                "set",
                "--uid",
                &uid,
                "--status",
                "active",
                "--period-end",
                leap,
            ],
            "--period-end",
        ),
        (
            vec![
                "admin",
                "account",
                "add",
                "--uid",
                &uid,
                "--platform",
                "bluesky",
                "--account-id",
                "did:plc:leap",
                "--access-token",
                "t",
                "--token-expires-at",
                leap,
            ],
            "--token-expires-at",
        ),
    ];
    for (args, flag) in commands {
        let (success, stdout, stderr) = soku(&db, &args);
        assert!(!success, "{args:?} succeeded: {stdout}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
        assert!(
            stderr.starts_with(&format!("error: {flag} \"{leap}\" is not an RFC 3339 time")),
            "{args:?}: {stderr}"
        );
    }
    // The second before is a time like any other.
    let period = ok(
        &db,
        &[
            "admin",
            "subscription",
            "set",
            "--uid",
            &uid,
            "--status",
            "active",
            "--period-end",
            "2031-06-30T23:59:59Z",
        ],
    );
    assert!(period.contains("2031-06-30T23:59:59.000Z"), "{period}");
    let listed = ok(&db, &["admin", "account", "list", "--uid", &uid]);
    assert!(!listed.contains("did:plc:leap"), "{listed}");
}

#[tokio::test]
async fn two_servers_on_one_database_share_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "nodes").await;
    let a = Server::start(&db);
    let b = Server::start(&db);
    let http = reqwest::Client::new();
    let uid = subscriber(&db, "two@example.com");
    let token_a = {
        // Each node's issuer is its own URL unless SOKU_PUBLIC_URL is shared; ask for A's.
        ok(
            &db,
            &["admin", "token", "--uid", &uid, "--public-url", &a.base],
        )
    };
    let created: Value = http
        .post(a.url("/v1/api-keys"))
        .bearer_auth(&token_a)
        .json(&serde_json::json!({"name": "shared"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["apiKey"].as_str().unwrap().to_owned();
    assert_eq!(status(&http, &b.url("/v1/me"), &key).await, 200);
    assert_eq!(status(&http, &a.url("/v1/me"), &key).await, 200);

    let id = created["id"].as_str().unwrap();
    let revoked = http
        .delete(a.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        status(&http, &a.url("/v1/me"), &key).await,
        401,
        "at once on the node that revoked"
    );
    let started = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || async {
            status(&http, &b.url("/v1/me"), &key).await == 401
        })
        .await
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within 5 s on the other node"
    );
}

/// A media store for processes that keep no media (workers), never the default `./media`.
pub(crate) fn unused_media_store() -> std::path::PathBuf {
    std::env::temp_dir().join("soku-test-unused-media")
}

/// `soku worker` processes.
fn start_worker(db: &str, env: &[(&str, &str)]) -> Child {
    Command::new(BIN)
        .arg("worker")
        .env("SOKU_MEDIA_STORE", unused_media_store())
        .envs(env.iter().copied())
        .env("SOKU_DATABASE_URL", db)
        .env("SOKU_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

const PLATFORMS: [&str; 3] = ["x", "threads", "bluesky"];

/// `GET base+path` with an API key, as JSON.
async fn get_json(http: &reqwest::Client, url: String, key: &str) -> Value {
    http.get(url)
        .header("soku-api-key", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// What the three simulated platforms received.
async fn sandbox_total(http: &reqwest::Client, base: &str, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for p in PLATFORMS {
        let page = get_json(http, format!("{base}/v1/sandbox/{p}/posts?limit=1000"), key).await;
        all.extend(page["posts"].as_array().unwrap().iter().cloned());
    }
    all
}

/// Every submission, through the API.
async fn all_submissions(http: &reqwest::Client, base: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get_json(http, format!("{base}/v1/posts?limit=100{cursor}"), key).await;
        out.extend(page["posts"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

/// The crash test of the posts issue: 500 test-mode posts to 3 simulated platforms, the
/// process publishing them killed with SIGKILL in the middle, restarted; every target must end
/// `published` or `unknown`, and no simulated platform may have been asked twice for one
/// target. On PostgreSQL the API runs with `--no-workers` beside two `soku worker` processes,
/// and one of the workers is the one killed.
#[tokio::test]
async fn killed_mid_publishing_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "crash").await;
    let postgres = db.starts_with("postgres");
    let engine_env = [
        ("SOKU_RATE_LIMITS", "off"),
        ("SOKU_SIMULATED_LATENCY_MS", "40"),
        ("SOKU_JOB_LEASE_SECS", "3"),
        ("SOKU_WORKER_CONCURRENCY", "8"),
    ];
    let uid = subscriber(&db, "crash@example.com");
    let key = ok(&db, &["admin", "key", "create", "--uid", &uid, "--test"]);

    let mut api = if postgres {
        Server::start_with(&db, &["--no-workers"], &engine_env)
    } else {
        Server::start_with(&db, &[], &engine_env)
    };
    let mut workers: Vec<Child> = if postgres {
        vec![
            start_worker(&db, &engine_env),
            start_worker(&db, &engine_env),
        ]
    } else {
        Vec::new()
    };
    let http = reqwest::Client::new();

    // 500 posts, 8 requests at a time.
    let mut ids = Vec::new();
    for chunk in 0..(500 / 25) {
        let mut batch = Vec::new();
        for i in 0..25 {
            let request = http
                .post(api.url("/v1/posts"))
                .header("soku-api-key", &key)
                .json(&serde_json::json!({"post": {"content": {"text": format!("post {}", chunk * 25 + i), "platform": PLATFORMS}}}));
            batch.push(tokio::spawn(async move { request.send().await.unwrap() }));
        }
        for b in batch {
            let r = b.await.unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            ids.push(body["postSubmissionId"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 500);

    // Kill the publisher while it is busy.
    assert!(
        eventually(Duration::from_secs(60), || async {
            sandbox_total(&http, &api.base, &key).await.len() >= 300
        })
        .await,
        "publishing did not start"
    );
    let at_kill = if postgres {
        let mut victim = workers.remove(0);
        victim.kill().unwrap();
        victim.wait().unwrap();
        sandbox_total(&http, &api.base, &key).await.len()
    } else {
        api.child.kill().unwrap();
        api.child.wait().unwrap();
        let db = soku_store::open(&db).await.unwrap();
        let mut n = 0;
        for p in PLATFORMS {
            n += db
                .sandbox_list(
                    &uid,
                    soku_core::platform::Platform::parse(p).unwrap(),
                    10_000,
                )
                .await
                .unwrap()
                .len();
        }
        n
    };
    assert!(
        at_kill < 1500,
        "the kill came after everything was published: the test proved nothing"
    );

    // Restart.
    if postgres {
        workers.push(start_worker(&db, &engine_env));
    } else {
        api = Server::start_with(&db, &[], &engine_env);
    }
    let done = eventually(Duration::from_secs(120), || async {
        all_submissions(&http, &api.base, &key)
            .await
            .iter()
            .all(|s| {
                s["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|t| t["status"] == "published" || t["status"] == "unknown")
            })
    })
    .await;
    let submissions = all_submissions(&http, &api.base, &key).await;
    assert_eq!(submissions.len(), 500, "every accepted post is still there");
    assert!(done, "targets left unfinished");

    let received = sandbox_total(&http, &api.base, &key).await;
    let mut markers = std::collections::HashSet::new();
    for p in &received {
        assert_eq!(
            p["createCount"], 1,
            "a simulated platform was asked twice: {p}"
        );
        assert!(
            markers.insert(format!("{}|{}", p["submissionId"], p["targetId"])),
            "two posts for one target: {p}"
        );
    }
    let published: usize = submissions
        .iter()
        .map(|s| {
            s["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["status"] == "published")
                .count()
        })
        .sum();
    assert_eq!(
        received.len(),
        published,
        "every published target is on its platform once"
    );
    let retaken = submissions
        .iter()
        .flat_map(|s| s["targets"].as_array().unwrap().iter())
        .filter(|t| t["attempts"].as_i64().unwrap() >= 2)
        .count();
    assert!(
        retaken > 0,
        "no target was taken over after the kill: the interrupted path went untested"
    );
    eprintln!(
        "crash test: {at_kill} of 1500 received at the kill; {retaken} taken over; {published} published, {} unknown",
        1500 - published
    );
    for mut w in workers {
        let _ = w.kill();
        let _ = w.wait();
    }
}

/// The binary's connectors come from the environment (`SOKU_<PLATFORM>_*`): pointed at the
/// fakes, a Bluesky account connects with the default PDS and publishes, an X authorization
/// starts at the configured page with the configured client, and the server's own log never
/// holds the app password or a token.
#[tokio::test]
async fn connectors_are_configured_from_the_environment() {
    let x = soku_fakes::x::XFake::start().await;
    let bluesky = soku_fakes::bluesky::FakeBluesky::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "conn").await;
    let authorize = x.authorize_url();
    let server = Server::start_with(
        &db,
        &[],
        &[
            ("SOKU_RATE_LIMITS", "off"),
            ("SOKU_ALLOW_LOOPBACK", "1"),
            ("SOKU_X_API_URL", &x.url),
            ("SOKU_X_AUTH_URL", &authorize),
            ("SOKU_X_CLIENT_ID", "test-client-id"),
            ("SOKU_X_CLIENT_SECRET", "test-client-secret"),
            ("SOKU_BLUESKY_API_URL", &bluesky.url),
        ],
    );
    let http = reqwest::Client::new();
    let uid = subscriber(&db, "conn@example.com");
    let key = ok(&db, &["admin", "key", "create", "--uid", &uid]);

    let r = http
        .post(server.url("/v1/accounts/connect"))
        .header("soku-api-key", &key)
        .json(&serde_json::json!({"platform": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    let url = started["authorizationUrl"].as_str().unwrap();
    assert!(url.starts_with(&authorize), "{url}");
    assert!(url.contains("client_id=test-client-id"), "{url}");

    let r = http
        .post(server.url("/v1/accounts/connect"))
        .header("soku-api-key", &key)
        .json(&serde_json::json!({
            "platform": "bluesky",
            "identifier": soku_fakes::bluesky::HANDLE,
            "appPassword": soku_fakes::bluesky::APP_PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = http
        .post(server.url("/v1/posts"))
        .header("soku-api-key", &key)
        .json(&serde_json::json!({"post": {"content": {"text": "From the binary", "platform": ["bluesky"]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["postSubmissionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let published = eventually(Duration::from_secs(20), || {
        let (http, url, key) = (
            http.clone(),
            server.url(&format!("/v1/posts/{id}")),
            key.clone(),
        );
        async move { get_json(&http, url, &key).await["status"] == "published" }
    })
    .await;
    assert!(published, "the post reached the Bluesky fake");
    assert_eq!(bluesky.posts().len(), 1);

    let logs = server.logs().join("\n");
    assert!(
        !logs.contains(soku_fakes::bluesky::APP_PASSWORD),
        "the app password is logged"
    );
    assert!(
        !logs.contains("test-client-secret"),
        "the client secret is logged"
    );
    assert!(
        logs.contains("SOKU_ALLOW_LOOPBACK is set"),
        "the test flag is announced"
    );
}

/// Test mode's one-time failures (`[fail:rate_limit]`, `[fail:server_error]`) are served once
/// per target, not once per process: the attempt after a restart (or on another node of the
/// same database) publishes. Before, each process served the failure again.
#[tokio::test]
async fn a_one_time_failure_is_served_once_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir, "fail_once").await;
    let uid = subscriber(&db, "once@example.com");
    let key = ok(&db, &["admin", "key", "create", "--uid", &uid, "--test"]);
    // Retries due 10 to 20 s later, well after the first process stops (so that the attempt
    // after the failure is the second process's, even on a loaded machine); leases long enough
    // that no attempt of the second process is given up on a loaded machine either.
    let env = [
        ("SOKU_RATE_LIMITS", "off"),
        ("SOKU_RETRY_BASE_MS", "20000"),
        ("SOKU_JOB_LEASE_SECS", "15"),
    ];
    let http = reqwest::Client::new();
    let first = Server::start_with(&db, &[], &env);
    let mut ids = Vec::new();
    for text in ["busy [fail:rate_limit]", "down [fail:server_error]"] {
        let r = http
            .post(first.url("/v1/posts"))
            .header("soku-api-key", &key)
            .json(&serde_json::json!({"post": {"content": {"text": text, "platform": ["x"]}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        ids.push(body["postSubmissionId"].as_str().unwrap().to_owned());
    }
    let target = |base: String, id: String| {
        let http = http.clone();
        let key = key.clone();
        async move {
            let s = get_json(&http, format!("{base}/v1/posts/{id}"), &key).await;
            s["targets"][0].clone()
        }
    };
    // Both failed once on the first process (their first attempt is over: a retry is due; the
    // attempt count alone goes up when an attempt starts); it stops before the retries are due.
    for id in &ids {
        let failed = eventually(Duration::from_secs(20), || async {
            let t = target(first.base.clone(), id.clone()).await;
            t["attempts"] == 1 && t["nextAttemptAt"].is_string()
        })
        .await;
        assert!(failed, "{:?}", target(first.base.clone(), id.clone()).await);
    }
    drop(first);

    let second = Server::start_with(&db, &[], &env);
    for id in &ids {
        let done = eventually(Duration::from_secs(60), || async {
            target(second.base.clone(), id.clone()).await["status"] == "published"
        })
        .await;
        let t = target(second.base.clone(), id.clone()).await;
        assert!(done, "{t}");
        assert_eq!(t["attempts"], 2, "served once, then published: {t}");
    }
}
