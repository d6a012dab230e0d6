//! `POST /v1/secret-scanning/github` (spec 4.1): GitHub's signed reports of leaked keys, with
//! GitHub's published keys served by a fake on loopback and reports signed in the test.

use crate::util::{Builder, TestApp, audit_events, expect_error, of_type, revoked_event};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use soku_core::keys::{self, KeyMode};
use soku_server::ratelimit::RateLimitOptions;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PATH: &str = "/v1/secret-scanning/github";
const INVALID_KEY: &str = "Invalid or missing API key.";

/// A refused request: what it is, its headers, its body.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);

/// GitHub's key server: the published keys (identifier, PEM) and how often they were fetched.
struct FakeGithub {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl FakeGithub {
    async fn start() -> FakeGithub {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f) = (keys.clone(), fetches.clone());
        let app = Router::new().route(
            "/meta/public_keys/secret_scanning",
            get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({ "public_keys": *k.lock().unwrap() }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/meta/public_keys/secret_scanning",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGithub { url, keys, fetches }
    }

    /// Publishes a fresh key; returns it with its identifier.
    fn publish(&self, id: &str) -> GithubSigner {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        self.keys.lock().unwrap().push(json!({
            "key_identifier": id, "key": pem, "is_current": true,
        }));
        GithubSigner { id: id.into(), key }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

struct GithubSigner {
    id: String,
    key: SigningKey,
}

impl GithubSigner {
    fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        STANDARD.encode(signature.to_der().as_bytes())
    }
}

async fn post(
    app: &TestApp,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url(PATH))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body).send().await.unwrap()
}

async fn post_signed(app: &TestApp, signer: &GithubSigner, body: &[u8]) -> reqwest::Response {
    let signature = signer.sign(body);
    post(
        app,
        &[
            ("Github-Public-Key-Identifier", &signer.id),
            ("Github-Public-Key-Signature", &signature),
        ],
        body.to_vec(),
    )
    .await
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn key_id(app: &TestApp, secret: &str) -> String {
    app.store
        .find_api_key_by_hash(&keys::hash(secret))
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn leaked_events(app: &TestApp, uid: &str) -> Vec<Value> {
    let all = audit_events(app, uid).await;
    of_type(&all, "api_key.leaked")
        .into_iter()
        .cloned()
        .collect()
}

async fn app_with(github: &FakeGithub) -> TestApp {
    Builder::default()
        .without_engine()
        .github_keys_url(&github.url)
        .start()
        .await
}

#[tokio::test]
async fn a_signed_report_revokes_active_keys_at_once_and_labels_every_token() {
    let github = FakeGithub::start().await;
    let signer = github.publish("key-1");
    let app = app_with(&github).await;
    let (uid, live) = app.subscriber().await;
    let already = app.key_for(&uid).await;
    let already_id = key_id(&app, &already).await;
    app.store
        .revoke_api_key(
            Some(&uid),
            &already_id,
            chrono::Utc::now(),
            &revoked_event(),
        )
        .await
        .unwrap()
        .unwrap();
    let live_id = key_id(&app, &live).await;
    assert_eq!(app.get_with_key("/v1/me", &live).await.status(), 200);
    let not_ours = keys::generate(KeyMode::Live).secret;
    let other_format = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    let url = "https://github.com/octo/app/blob/0123abc/.env";
    let body = serde_json::to_vec(&json!([
        {"token": live, "type": "soku_api_key", "url": url, "source": "Content", "extra": true},
        {"token": other_format, "type": "soku_api_key", "url": "", "source": "commit"},
        {"token": not_ours, "type": "soku_api_key", "url": url, "source": "commit"},
        {"token": already, "type": "soku_api_key", "url": url, "source": "commit"},
    ]))
    .unwrap();

    let r = post_signed(&app, &signer, &body).await;
    assert_eq!(r.status(), 200);
    let labels: Value = r.json().await.unwrap();
    let expected = |token: &str, label: &str| json!({"token_hash": sha256_hex(token), "token_type": "soku_api_key", "label": label});
    let expected_labels = json!([
        expected(&live, "true_positive"),
        expected(other_format, "false_positive"),
        expected(&not_ours, "false_positive"),
        expected(&already, "true_positive"),
    ]);
    assert_eq!(labels, expected_labels);
    assert!(
        !labels.to_string().contains(&live[8..]),
        "a token is echoed"
    );

    // Revoked at once: the very next request with it is refused.
    let r = app.get_with_key("/v1/me", &live).await;
    expect_error(r, 401, "unauthorized", Some(INVALID_KEY)).await;
    let events = leaked_events(&app, &uid).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["keyId"], live_id.as_str());
    assert_eq!(events[0]["details"]["url"], url);
    assert_eq!(events[0]["details"]["source"], "content");
    assert_eq!(events[0]["details"]["reporter"], "github");
    assert!(!events[0].to_string().contains(&live[8..]));
    let listed: Value = app
        .get_with_token("/v1/api-keys", &app.token(&uid))
        .await
        .json()
        .await
        .unwrap();
    let status = |id: &str| {
        listed["apiKeys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&live_id), "revoked");
    assert_eq!(status(&already_id), "revoked");

    // The same report again (GitHub retries): the same labels, nothing new recorded.
    let r = post_signed(&app, &signer, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), expected_labels);
    assert_eq!(leaked_events(&app, &uid).await.len(), 1);
    assert_eq!(github.fetches(), 1, "the keys are cached");
}

#[tokio::test]
async fn reports_without_githubs_signature_are_refused_and_revoke_nothing() {
    let github = FakeGithub::start().await;
    let signer = github.publish("key-1");
    let app = app_with(&github).await;
    let (uid, live) = app.subscriber().await;
    let body =
        serde_json::to_vec(&json!([{"token": live, "type": "soku_api_key", "url": ""}])).unwrap();
    let good = signer.sign(&body);
    let impostor = GithubSigner {
        id: "key-1".into(),
        key: SigningKey::random(&mut rand::rngs::OsRng),
    };
    let forged = impostor.sign(&body);
    let other_body =
        serde_json::to_vec(&json!([{"token": "sk_live_x", "type": "soku_api_key"}])).unwrap();
    let id = "Github-Public-Key-Identifier";
    let sig = "Github-Public-Key-Signature";
    let cases: Vec<Case> = vec![
        ("no headers", vec![], &body),
        ("no signature", vec![(id, "key-1")], &body),
        ("no identifier", vec![(sig, &good)], &body),
        (
            "not base64",
            vec![(id, "key-1"), (sig, "@@not base64@@")],
            &body,
        ),
        ("not DER", vec![(id, "key-1"), (sig, "AAAA")], &body),
        ("wrong key", vec![(id, "key-1"), (sig, &forged)], &body),
        ("unknown key id", vec![(id, "key-9"), (sig, &good)], &body),
        // A replay of GitHub's signature with another body.
        ("other body", vec![(id, "key-1"), (sig, &good)], &other_body),
    ];
    for (case, headers, body) in cases {
        let r = post(&app, &headers, body.to_vec()).await;
        let e = expect_error(r, 401, "unauthorized", None).await;
        assert_eq!(
            e["error"]["message"], "Invalid or missing GitHub signature.",
            "{case}"
        );
    }
    assert_eq!(app.get_with_key("/v1/me", &live).await.status(), 200);
    assert!(leaked_events(&app, &uid).await.is_empty());
    // The unknown identifier caused the one refetch (after the first fetch).
    assert_eq!(github.fetches(), 2);

    // A signed body that is not a report: 400; signed, but not JSON's content type: 415.
    let r = post_signed(&app, &signer, br#"{"token": "x"}"#).await;
    expect_error(r, 400, "validation_error", None).await;
    let r = post_signed(&app, &signer, br#"[{"type": "x"}]"#).await;
    let e = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(e["error"]["details"]["field"], "[0]");
    let r = app
        .http
        .post(app.url(PATH))
        .header("content-type", "text/plain")
        .header(id, "key-1")
        .header(sig, &good)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type", None).await;
    assert_eq!(app.get_with_key("/v1/me", &live).await.status(), 200);
}

#[tokio::test]
async fn a_rotated_github_key_is_fetched_once_per_interval() {
    let github = FakeGithub::start().await;
    let first = github.publish("key-1");
    let app = app_with(&github).await;
    let (_uid, live) = app.subscriber().await;
    let harmless = br#"[{"token": "nothing of ours", "type": "soku_api_key"}]"#;
    assert_eq!(post_signed(&app, &first, harmless).await.status(), 200);
    assert_eq!(github.fetches(), 1);

    // GitHub rotates: a key the cache does not know yet is fetched, once.
    let second = github.publish("key-2");
    let body = serde_json::to_vec(&json!([{"token": live, "type": "soku_api_key"}])).unwrap();
    let r = post_signed(&app, &second, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()[0]["label"],
        "true_positive"
    );
    assert_eq!(github.fetches(), 2);
    expect_error(
        app.get_with_key("/v1/me", &live).await,
        401,
        "unauthorized",
        None,
    )
    .await;

    // Another unknown identifier within the interval: no fetch, even once GitHub publishes
    // it; 503, so that GitHub retries later (its keys may have just rotated).
    let third = github.publish("key-3");
    for _ in 0..3 {
        let r = post_signed(&app, &third, harmless).await;
        expect_error(r, 503, "service_unavailable", None).await;
    }
    assert_eq!(github.fetches(), 2);
    // The known keys keep working.
    assert_eq!(post_signed(&app, &first, harmless).await.status(), 200);
    assert_eq!(post_signed(&app, &second, harmless).await.status(), 200);
    assert_eq!(github.fetches(), 2);
}

#[tokio::test]
async fn without_githubs_keys_the_answer_is_503() {
    let github = FakeGithub::start().await;
    let signer = github.publish("key-1");
    // The app's keys URL points where nothing listens.
    let app = Builder::default().without_engine().start().await;
    let (_uid, live) = app.subscriber().await;
    let body = serde_json::to_vec(&json!([{"token": live, "type": "soku_api_key"}])).unwrap();
    let r = post_signed(&app, &signer, &body).await;
    expect_error(r, 503, "service_unavailable", None).await;
    assert_eq!(app.get_with_key("/v1/me", &live).await.status(), 200);
}

#[tokio::test]
async fn oversized_reports_are_refused_whole() {
    let github = FakeGithub::start().await;
    let signer = github.publish("key-1");
    let app = app_with(&github).await;
    let (uid, live) = app.subscriber().await;
    let report = |n: usize| {
        let one = json!({"token": live, "type": "soku_api_key", "url": ""});
        serde_json::to_vec(&vec![one; n]).unwrap()
    };
    // 100,000 tokens: far above the 1 MiB body limit.
    let huge = report(100_000);
    assert!(huge.len() > 1024 * 1024);
    let r = post_signed(&app, &signer, &huge).await;
    expect_error(r, 413, "payload_too_large", None).await;
    // 1,001 tokens: within 1 MiB, above the limit on tokens.
    let many = report(1001);
    assert!(many.len() < 1024 * 1024);
    let r = post_signed(&app, &signer, &many).await;
    let e = expect_error(r, 413, "payload_too_large", None).await;
    assert_eq!(e["error"]["details"]["limit"], 1000);
    assert_eq!(app.get_with_key("/v1/me", &live).await.status(), 200);
    assert!(leaked_events(&app, &uid).await.is_empty());
    // 1,000 are fine.
    let r = post_signed(&app, &signer, &report(1000)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1000
    );
    assert_eq!(leaked_events(&app, &uid).await.len(), 1);
}

/// Reports are counted like any request without a credential, by client address (spec 5: the
/// Default tier, 25 a minute with a burst of 10, and the `X-RateLimit-*` headers), so forged
/// reports cannot make the server read and verify megabytes without end; GitHub sends a
/// report per batch of matches and meets a 429 with `Retry-After`.
#[tokio::test]
async fn reports_are_counted_by_address_like_other_requests_without_a_credential() {
    let github = FakeGithub::start().await;
    let signer = github.publish("key-1");
    let app = Builder::default()
        .without_engine()
        .github_keys_url(&github.url)
        .rate_limits(RateLimitOptions::default())
        .start()
        .await;
    let harmless = br#"[{"token": "nothing of ours", "type": "soku_api_key"}]"#;
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = if i % 2 == 0 {
            post_signed(&app, &signer, harmless).await
        } else {
            post(&app, &[], harmless.to_vec()).await
        };
        assert_eq!(r.headers()["x-ratelimit-tier"], "default", "request {i}");
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
        }
        statuses.push(r.status().as_u16());
    }
    // 25 + 10 admitted from idle, in order; then 429.
    assert!(
        statuses[..35].iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    assert!(statuses[35..].iter().all(|s| *s == 429), "{statuses:?}");
}

/// `soku admin key check` works with no database reachable.
#[test]
fn admin_key_check_needs_no_database() {
    let unreachable = "postgres://nobody@127.0.0.1:9/nothing";
    let key = keys::generate(KeyMode::Live).secret;
    let (ok, out, err) = crate::binary::soku(unreachable, &["admin", "key", "check", &key]);
    assert!(ok, "{out} {err}");
    assert!(out.contains(&keys::preview(&key)), "{out}");
    assert!(out.contains("well-formed live key"), "{out}");
    assert!(!out.contains(&key[8..]) && !err.contains(&key[8..]));

    let mut broken = key.clone();
    broken.replace_range(20..21, if &key[20..21] == "a" { "b" } else { "a" });
    let (ok, out, err) = crate::binary::soku(unreachable, &["admin", "key", "check", &broken]);
    assert!(!ok);
    assert!(err.contains("not a well-formed Soku API key"), "{err}");
    assert!(err.contains("checksum"), "{err}");
    assert!(!out.contains(&broken[8..]) && !err.contains(&broken[8..]));
}

/// The Python check published in docs/SECURITY.md agrees with the server's on generated keys
/// and on keys with one character changed. Skipped where there is no `python3`.
#[test]
fn the_published_python_check_agrees_with_the_server() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/SECURITY.md"
    ))
    .unwrap();
    let snippet = doc
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("SECURITY.md has a Python snippet");
    let mut candidates = Vec::new();
    for i in 0..40 {
        let mode = if i % 2 == 0 {
            KeyMode::Live
        } else {
            KeyMode::Test
        };
        let key = keys::generate(mode).secret;
        let mut changed = key.clone().into_bytes();
        let at = 8 + i;
        changed[at] = if changed[at] == b'z' { b'y' } else { b'z' };
        candidates.push(key);
        candidates.push(String::from_utf8(changed).unwrap());
    }
    candidates.push("sk_prod_0123456789abcdefghijABCDEFGHIJklmn0ODjlX".into());
    candidates.push("sk_live_0123456789abcdefghijABCDEFGHIJklmn0ODjl".into());
    let program = format!(
        "{snippet}\nimport sys\nfor line in sys.stdin.read().split():\n    print(is_soku_key(line))\n"
    );
    let child = std::process::Command::new("python3")
        .arg("-c")
        .arg(&program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("no python3: the published snippet is not run");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(candidates.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<bool> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "True")
        .collect();
    let expected: Vec<bool> = candidates
        .iter()
        .map(|c| keys::parse(c).is_some())
        .collect();
    assert_eq!(verdicts, expected);
    assert_eq!(
        expected.iter().filter(|v| **v).count(),
        40,
        "{candidates:?}"
    );
}
