//! ID tokens (spec 3.3): Firebase tokens against a local stand-in for Google's certificate
//! endpoint, the emulator mode, and the built-in issuer.

use crate::util::{Builder, TestApp, eventually, expect_error};
use axum::Router;
use axum::http::header::CACHE_CONTROL;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PROJECT: &str = "soku-test";
const TOKEN_MESSAGE: &str = "Invalid or missing ID token.";
const KEY_A: &str = include_str!("../fixtures/firebase-a.key");
const CERT_A: &str = include_str!("../fixtures/firebase-a.crt");
const KEY_B: &str = include_str!("../fixtures/firebase-b.key");
const CERT_B: &str = include_str!("../fixtures/firebase-b.crt");

/// Serves `{kid: certificate}` as Google's x509 endpoint does, with a `max-age`, and counts
/// how often it is asked.
struct FakeGoogle {
    url: String,
    hits: Arc<AtomicUsize>,
    certs: Arc<Mutex<HashMap<String, String>>>,
}

async fn fake_google(max_age: u64) -> FakeGoogle {
    let hits = Arc::new(AtomicUsize::new(0));
    let certs = Arc::new(Mutex::new(HashMap::from([(
        "kid-a".to_owned(),
        CERT_A.to_owned(),
    )])));
    let (h, c) = (hits.clone(), certs.clone());
    let app = Router::new().route(
        "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
        get(move || {
            let (h, c) = (h.clone(), c.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let body = serde_json::to_string(&*c.lock().unwrap()).unwrap();
                (
                    [
                        (
                            CACHE_CONTROL,
                            format!("public, max-age={max_age}, must-revalidate, no-transform"),
                        ),
                        (
                            axum::http::header::CONTENT_TYPE,
                            "application/json; charset=UTF-8".into(),
                        ),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeGoogle { url, hits, certs }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn firebase_claims(sub: &str) -> Value {
    json!({
        "iss": format!("https://securetoken.google.com/{PROJECT}"),
        "aud": PROJECT,
        "auth_time": now() - 60,
        "user_id": sub,
        "sub": sub,
        "iat": now() - 60,
        "exp": now() + 3600,
        "email": format!("{sub}@example.com"),
        "firebase": {"identities": {}, "sign_in_provider": "password"}
    })
}

fn sign(claims: &Value, kid: &str, pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

async fn expect_token_401(app: &TestApp, token: &str, case: &str) {
    let response = app.get_with_token("/v1/api-keys", token).await;
    assert_eq!(response.status(), 401, "{case}");
    expect_error(response, 401, "unauthorized", Some(TOKEN_MESSAGE)).await;
}

#[tokio::test]
async fn firebase_tokens_are_verified_for_real() {
    let google = fake_google(3600).await;
    let app = Builder::default()
        .firebase(PROJECT, &google.url, false)
        .start()
        .await;

    let good = sign(&firebase_claims("fb-user"), "kid-a", KEY_A);
    let response = app.get_with_token("/v1/api-keys", &good).await;
    assert_eq!(response.status(), 200);
    let user = app
        .store
        .get_user("fb-user")
        .await
        .unwrap()
        .expect("created on first sight");
    assert_eq!(user.email.as_deref(), Some("fb-user@example.com"));

    let base = firebase_claims("fb-user");
    let hs256 = {
        // The RSA public certificate used as an HMAC secret: the classic confusion attack.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("kid-a".into());
        jsonwebtoken::encode(&header, &base, &EncodingKey::from_secret(CERT_A.as_bytes())).unwrap()
    };
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let payload =
            URL_SAFE_NO_PAD.encode(with(base.clone(), "sub", json!("someone-else")).to_string());
        format!("{}.{}.{}", parts[0], payload, parts[2])
    };
    let cases = vec![
        (
            "expired",
            sign(
                &with(base.clone(), "exp", json!(now() - 3600)),
                "kid-a",
                KEY_A,
            ),
        ),
        (
            "iat in the future",
            sign(
                &with(base.clone(), "iat", json!(now() + 3600)),
                "kid-a",
                KEY_A,
            ),
        ),
        (
            "auth_time in the future",
            sign(
                &with(base.clone(), "auth_time", json!(now() + 3600)),
                "kid-a",
                KEY_A,
            ),
        ),
        (
            "wrong aud",
            sign(
                &with(base.clone(), "aud", json!("another-project")),
                "kid-a",
                KEY_A,
            ),
        ),
        (
            "wrong iss",
            sign(
                &with(
                    base.clone(),
                    "iss",
                    json!("https://securetoken.google.com/another-project"),
                ),
                "kid-a",
                KEY_A,
            ),
        ),
        ("unknown kid", sign(&base, "kid-unknown", KEY_A)),
        ("bad signature", sign(&base, "kid-a", KEY_B)),
        ("tampered payload", tampered),
        ("alg none outside emulator mode", unsigned(&base)),
        ("HS256 with the public key as secret", hs256),
        (
            "empty sub",
            sign(&with(base.clone(), "sub", json!("")), "kid-a", KEY_A),
        ),
        (
            "no sub",
            sign(
                &{
                    let mut c = base.clone();
                    c.as_object_mut().unwrap().remove("sub");
                    c
                },
                "kid-a",
                KEY_A,
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("two parts", "abc.def".to_owned()),
    ];
    for (case, token) in &cases {
        expect_token_401(&app, token, case).await;
    }
    // No header, another scheme, an API key in place of a token.
    let (_, key) = app.subscriber().await;
    for (case, request) in [
        ("no header", app.http.get(app.url("/v1/api-keys"))),
        (
            "basic scheme",
            app.http
                .get(app.url("/v1/api-keys"))
                .header("authorization", format!("Basic {good}")),
        ),
        (
            "api key header",
            app.http
                .get(app.url("/v1/api-keys"))
                .header("soku-api-key", &key),
        ),
        (
            "api key as bearer",
            app.http.get(app.url("/v1/api-keys")).bearer_auth(&key),
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        expect_error(response, 401, "unauthorized", Some(TOKEN_MESSAGE)).await;
    }
    // And a valid token does not open an API-key endpoint.
    expect_error(
        app.get_with_token("/v1/me", &good).await,
        401,
        "unauthorized",
        Some("Invalid or missing API key."),
    )
    .await;
    assert!(app.store.get_user("someone-else").await.unwrap().is_none());
}

#[tokio::test]
async fn certificates_are_cached_and_unknown_kids_refetch_at_most_once_a_minute() {
    let google = fake_google(3600).await;
    let app = Builder::default()
        .firebase(PROJECT, &google.url, false)
        .start()
        .await;
    let good = sign(&firebase_claims("cache-user"), "kid-a", KEY_A);
    for _ in 0..3 {
        assert_eq!(
            app.get_with_token("/v1/api-keys", &good).await.status(),
            200
        );
    }
    assert_eq!(google.hits.load(Ordering::SeqCst), 1, "cached per max-age");

    // Google rotates in a new key: the first token naming it triggers one refetch.
    google
        .certs
        .lock()
        .unwrap()
        .insert("kid-b".into(), CERT_B.into());
    let rotated = sign(&firebase_claims("cache-user"), "kid-b", KEY_B);
    assert_eq!(
        app.get_with_token("/v1/api-keys", &rotated).await.status(),
        200
    );
    assert_eq!(google.hits.load(Ordering::SeqCst), 2);

    // Unknown kids: one refetch at most within the minute, however many tokens ask.
    let unknown = sign(&firebase_claims("cache-user"), "kid-c", KEY_B);
    for _ in 0..5 {
        expect_token_401(&app, &unknown, "unknown kid").await;
    }
    assert_eq!(
        google.hits.load(Ordering::SeqCst),
        2,
        "refetched within a minute of the last fetch"
    );
    // The known keys keep working meanwhile.
    assert_eq!(
        app.get_with_token("/v1/api-keys", &good).await.status(),
        200
    );
}

#[tokio::test]
async fn certificates_are_refetched_when_max_age_runs_out() {
    let google = fake_google(1).await;
    let app = Builder::default()
        .firebase(PROJECT, &google.url, false)
        .start()
        .await;
    let good = sign(&firebase_claims("ttl-user"), "kid-a", KEY_A);
    assert_eq!(
        app.get_with_token("/v1/api-keys", &good).await.status(),
        200
    );
    assert_eq!(google.hits.load(Ordering::SeqCst), 1);
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            assert_eq!(
                app.get_with_token("/v1/api-keys", &good).await.status(),
                200
            );
            google.hits.load(Ordering::SeqCst) == 2
        })
        .await
    );
}

#[tokio::test]
async fn unreachable_certificates_are_a_503_not_a_401() {
    // A closed port: Google cannot be reached and no certificate was ever fetched.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let app = Builder::default()
        .firebase(PROJECT, &format!("http://{closed}/certs"), false)
        .start()
        .await;
    let good = sign(&firebase_claims("u"), "kid-a", KEY_A);
    expect_error(
        app.get_with_token("/v1/api-keys", &good).await,
        503,
        "service_unavailable",
        None,
    )
    .await;
    // Built-in tokens do not depend on Google.
    assert_eq!(
        app.get_with_token("/v1/api-keys", &app.token("u"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn emulator_mode_accepts_unsigned_emulator_tokens() {
    let google = fake_google(3600).await;
    let app = Builder::default()
        .firebase(PROJECT, &google.url, true)
        .start()
        .await;
    let claims = with(
        firebase_claims("emu-user"),
        "firebase",
        json!({"sign_in_provider": "password"}),
    );
    let token = unsigned(&claims);
    assert_eq!(
        app.get_with_token("/v1/api-keys", &token).await.status(),
        200
    );
    assert!(app.store.get_user("emu-user").await.unwrap().is_some());
    // Claims are still checked.
    expect_token_401(
        &app,
        &unsigned(&with(claims.clone(), "aud", json!("other"))),
        "emulator wrong aud",
    )
    .await;
    expect_token_401(
        &app,
        &unsigned(&with(claims.clone(), "exp", json!(now() - 3600))),
        "emulator expired",
    )
    .await;
    expect_token_401(
        &app,
        &unsigned(&with(claims, "sub", json!(""))),
        "emulator empty sub",
    )
    .await;
    // Signed tokens still need a good signature.
    expect_token_401(
        &app,
        &sign(&firebase_claims("x"), "kid-a", KEY_B),
        "bad signature",
    )
    .await;
}

#[tokio::test]
async fn built_in_issuer_tokens() {
    let app = TestApp::start().await;
    let uid = app.user(None, chrono::Utc::now()).await;
    assert_eq!(
        app.get_with_token("/v1/api-keys", &app.token(&uid))
            .await
            .status(),
        200
    );

    // Tokens signed with the server's own key but with bad claims.
    let signing = app.store.signing_keys().await.unwrap().remove(0);
    let base = json!({"iss": app.base, "aud": "soku", "sub": uid, "iat": now() - 5, "exp": now() + 600, "auth_time": now() - 5});
    let own = |c: &Value| sign(c, &signing.kid, &signing.private_pem);
    assert_eq!(
        app.get_with_token("/v1/api-keys", &own(&base))
            .await
            .status(),
        200
    );
    for (case, claims) in [
        ("expired", with(base.clone(), "exp", json!(now() - 600))),
        (
            "iat in the future",
            with(base.clone(), "iat", json!(now() + 600)),
        ),
        ("wrong aud", with(base.clone(), "aud", json!("other"))),
        (
            "wrong iss",
            with(base.clone(), "iss", json!("http://elsewhere.example")),
        ),
        ("empty sub", with(base.clone(), "sub", json!(""))),
    ] {
        expect_token_401(&app, &own(&claims), case).await;
    }
    expect_token_401(
        &app,
        &sign(&base, &signing.kid, KEY_A),
        "signed with another key",
    )
    .await;
    expect_token_401(
        &app,
        &sign(&base, "other-kid", &signing.private_pem),
        "unknown kid",
    )
    .await;
    // No Firebase project configured: Firebase-shaped tokens and unsigned tokens are refused.
    expect_token_401(
        &app,
        &sign(&firebase_claims("x"), "kid-a", KEY_A),
        "firebase without a project",
    )
    .await;
    expect_token_401(&app, &unsigned(&base), "alg none").await;

    // The JWKS publishes the signing key.
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], signing.kid.as_str());
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(keys[0].get("d").is_none(), "never the private part");
}

/// A database that does not answer while an ID token is checked is a passing fault: 503, as for
/// an API key's lookup, not a 500 (SQLite only: its table is renamed under the server).
#[tokio::test]
async fn a_database_fault_while_checking_an_id_token_is_a_503() {
    let app = TestApp::start().await;
    let Some(path) = app.sqlite_path() else {
        return;
    };
    let first = app.token("u-before-the-fault");
    assert_eq!(
        app.get_with_token("/v1/api-keys", &first).await.status(),
        200
    );
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE users RENAME TO users_elsewhere")
        .execute(&pool)
        .await
        .unwrap();
    // A user the server has not seen: recording them fails.
    let token = app.token("u-during-the-fault");
    let r = app.get_with_token("/v1/api-keys", &token).await;
    expect_error(r, 503, "service_unavailable", None).await;
}
