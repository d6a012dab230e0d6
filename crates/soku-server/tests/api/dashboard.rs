//! Password sign-in, dashboard sessions, CSRF and the pages' security headers, over HTTP.
//! (The browser drives the same pages in `browser.rs`.)

use crate::util::*;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use soku_core::model::SubscriptionStatus;
use soku_core::platform::Platform;
use soku_core::queue::{Account, AccountStatus, NewAccount};

/// A live account of `uid` on `platform`, in `status`; its id.
pub async fn live_account(
    app: &TestApp,
    uid: &str,
    platform: Platform,
    status: AccountStatus,
) -> String {
    let id = soku_core::keys::random_id("acc_", 12);
    app.store
        .insert_account(&NewAccount {
            account: Account {
                id: id.clone(),
                user_id: uid.into(),
                platform,
                account_id: format!("{platform}-{id}"),
                display_name: Some(format!("{platform} display")),
                username: Some("handle".into()),
                status,
                is_default: true,
                token_expires_at: None,
                created_at: Utc::now(),
                meta: serde_json::json!({}),
            },
            access_token: None,
            refresh_token: None,
        })
        .await
        .unwrap();
    id
}

pub const PASSWORD: &str = "correct horse battery";

/// A user with this email, an active subscription and the password `PASSWORD`; its id.
pub async fn password_user(app: &TestApp, email: &str) -> String {
    let uid = soku_core::keys::random_id("u", 12);
    app.store
        .create_user(&uid, Some(email), Utc::now())
        .await
        .unwrap();
    app.store
        .set_subscription(
            &uid,
            &soku_core::model::Subscription {
                status: SubscriptionStatus::Active,
                current_period_end: Utc::now() + Duration::days(30),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let hash = soku_server::auth::passwords::hash(PASSWORD).unwrap();
    assert!(app.store.set_password_hash(&uid, &hash).await.unwrap());
    uid
}

pub async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Sign-in failures counted per client address: behind a trusted proxy, the client the proxy
/// names, not the proxy (one client must not lock out everyone behind it); from an untrusted
/// peer, its `X-Forwarded-For` is ignored.
#[tokio::test]
async fn sign_in_failures_count_per_client_behind_a_trusted_proxy() {
    // Limits off: the client address must be found without them too.
    let app = Builder::default()
        .without_engine()
        .rate_limits(soku_server::ratelimit::RateLimitOptions::disabled())
        .trusted_proxies("127.0.0.1/32")
        .start()
        .await;
    password_user(&app, "ada@example.com").await;
    let now = std::time::Instant::now;
    let sign_in_via = |client: &'static str, password: &'static str| {
        app.http
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", client)
            .json(&json!({"email": "ada@example.com", "password": password}))
            .send()
    };

    // A client with 49 failures (say over 49 emails) fails once more through the proxy.
    for _ in 0..49 {
        app.state
            .login_throttle
            .failed(&["ip:198.51.100.7".to_owned()], now());
    }
    let r = sign_in_via("198.51.100.7", "wrong password!")
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // That was its fiftieth: it is locked out, right password or not ...
    let locked = sign_in_via("198.51.100.7", PASSWORD).await.unwrap();
    let body = expect_error(locked, 429, "rate_limit_exceeded", None).await;
    assert_eq!(body["error"]["details"]["limit"], "sign_in");
    // ... and another client behind the same proxy is not.
    let r = sign_in_via("198.51.100.8", PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200, "another client behind the proxy signs in");

    // Without trust in the peer, its X-Forwarded-For names nobody: the peer is counted.
    let app = TestApp::builder_without_engine().await;
    password_user(&app, "ada@example.com").await;
    for _ in 0..50 {
        app.state
            .login_throttle
            .failed(&["ip:127.0.0.1".to_owned()], now());
    }
    let r = app
        .http
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.8")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(r, 429, "rate_limit_exceeded", None).await;
}

#[tokio::test]
async fn password_sign_in_gives_an_id_token_and_failures_are_throttled() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "Ada@Example.com").await;

    expect_error(
        login(&app, "ada@example.com", "wrong password!").await,
        401,
        "unauthorized",
        Some("The email or password is incorrect."),
    )
    .await;
    expect_error(
        login(&app, "nobody@example.com", PASSWORD).await,
        401,
        "unauthorized",
        Some("The email or password is incorrect."),
    )
    .await;

    let ok = login(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["userId"], uid.as_str());
    assert_eq!(body["expiresIn"], 3600);
    let token = body["idToken"].as_str().unwrap();
    // The token is one of the built-in issuer's: it manages keys like any other.
    let keys = app.get_with_token("/v1/api-keys", token).await;
    assert_eq!(keys.status(), 200);

    // Five failures for one email lock it out, right password or not.
    password_user(&app, "grace@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            login(&app, "grace@example.com", "nope nope nope")
                .await
                .status(),
            401
        );
    }
    let locked = login(&app, "grace@example.com", PASSWORD).await;
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
    let body = expect_error(locked, 429, "rate_limit_exceeded", None).await;
    assert_eq!(body["error"]["details"]["limit"], "sign_in");
    // Another email from the same address is still fine.
    assert_eq!(login(&app, "ada@example.com", PASSWORD).await.status(), 200);

    expect_error(
        app.http
            .post(app.url("/v1/auth/login"))
            .json(&json!({"email": "ada@example.com"}))
            .send()
            .await
            .unwrap(),
        400,
        "validation_error",
        None,
    )
    .await;

    // An address longer than any email can be is refused before it costs a password check or
    // a place in the throttle; the longest possible one is an ordinary attempt.
    let local = "a".repeat(64);
    let longest = format!("{local}@{}.example", "b".repeat(254 - 64 - 1 - 8));
    assert_eq!(longest.len(), 254);
    assert_eq!(login(&app, &longest, PASSWORD).await.status(), 401);
    let body = expect_error(
        login(&app, &format!("x{longest}"), PASSWORD).await,
        400,
        "validation_error",
        Some("An email address has at most 254 characters."),
    )
    .await;
    assert_eq!(body["error"]["details"]["field"], "email");
    assert_eq!(body["error"]["details"]["reason"], "too_long");
}

/// Password checks run one per CPU at once: a sign-in that gets no turn within the wait is
/// answered 503 with `Retry-After`, and one that gets a turn later goes through.
#[tokio::test]
async fn password_checks_are_bounded() {
    let app = TestApp::builder_without_engine().await;
    password_user(&app, "ada@example.com").await;
    let checks = &app.state.password_checks;
    let mut held = Vec::new();
    while let Ok(Some(turn)) =
        tokio::time::timeout(std::time::Duration::from_millis(100), checks.turn()).await
    {
        held.push(turn);
    }
    assert!(!held.is_empty());
    let busy = login(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(busy.headers()["retry-after"], "1");
    expect_error(busy, 503, "service_unavailable", None).await;
    drop(held);
    assert_eq!(login(&app, "ada@example.com", PASSWORD).await.status(), 200);
}

/// Signs in over HTTP and returns the session cookie (`name=value`).
async fn session(app: &TestApp, email: &str) -> String {
    let token: Value = login(app, email, PASSWORD).await.json().await.unwrap();
    let r = app
        .http
        .post(app.url("/dashboard/session"))
        .bearer_auth(token["idToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("soku_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Secure"), "not over plain HTTP: {set}");
    set.split(';').next().unwrap().to_owned()
}

/// A dashboard call in the session `cookie`; `csrf` is the token sent as `X-CSRF-Token`, if any.
pub fn in_session(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> reqwest::RequestBuilder {
    let r = app
        .http
        .request(method, app.url(path))
        .header("cookie", cookie);
    match csrf {
        Some(token) => r.header("x-csrf-token", token),
        None => r,
    }
}

/// `GET path` in the session, as JSON.
async fn get_json(app: &TestApp, path: &str, cookie: &str) -> Value {
    let r = in_session(app, reqwest::Method::GET, path, cookie, None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

pub fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf-token\" content=\"")
        .expect("csrf meta")
        + 27;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn dashboard_pages_sessions_and_csrf() {
    let app = TestApp::start().await;
    let uid = password_user(&app, "<script>alert(1)</script>@example.com").await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Without a session, pages send to the sign-in page.
    for path in [
        "/",
        "/posts",
        "/settings/api-keys",
        "/accounts",
        "/subscription",
    ] {
        let r = no_redirects.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    let login_page = app.http.get(app.url("/login")).send().await.unwrap();
    assert_eq!(login_page.status(), 200);
    let csp = login_page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login_page.headers()["x-frame-options"], "DENY");

    let cookie = session(&app, "<script>alert(1)</script>@example.com").await;
    let page = no_redirects
        .get(app.url("/settings/api-keys"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "the email is escaped");
    // askama writes character references by number (`&#60;` for `<`).
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;@example.com"));
    let csrf = csrf_of(&html);

    // A state-changing call needs the session's CSRF token.
    let post = |path: &str, csrf: Option<&str>| {
        in_session(&app, reqwest::Method::POST, path, &cookie, csrf)
    };
    let no_csrf = post("/dashboard/api/token", None).send().await.unwrap();
    expect_error(no_csrf, 403, "forbidden", None).await;
    let wrong_csrf = "x".repeat(csrf.len());
    let wrong = post("/dashboard/api/token", Some(&wrong_csrf))
        .send()
        .await
        .unwrap();
    expect_error(wrong, 403, "forbidden", None).await;
    let token: Value = post("/dashboard/api/token", Some(&csrf))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = app
        .http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(token["idToken"].as_str().unwrap())
        .json(&json!({"name": "from the page"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // The composer publishes a test post on the user's behalf.
    let composed = post("/dashboard/api/posts", Some(&csrf))
        .json(&json!({"mode": "test", "request": {"post": {"content": {"text": "from the composer", "platform": ["x", "bluesky"]}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(composed.status(), 200);
    let id = composed.json::<Value>().await.unwrap()["postSubmissionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let published = eventually(std::time::Duration::from_secs(10), || async {
        let list = get_json(&app, "/dashboard/api/posts?mode=test", &cookie).await;
        list["posts"][0]["id"] == id.as_str() && list["posts"][0]["status"] == "published"
    })
    .await;
    assert!(published);
    let bad = post("/dashboard/api/posts", Some(&csrf))
        .json(&json!({"mode": "test", "request": {"post": {"content": {"text": "", "platform": []}}}}))
        .send()
        .await
        .unwrap();
    expect_error(bad, 400, "validation_error", None).await;

    let overview = get_json(&app, "/dashboard/api/overview", &cookie).await;
    assert_eq!(overview["user"]["id"], uid.as_str());
    assert_eq!(overview["subscription"]["status"], "active");

    // Accounts: listed with their status, disconnected with the CSRF token, never someone else's.
    let mine = live_account(&app, &uid, Platform::X, AccountStatus::NeedsReconnect).await;
    let other_user = password_user(&app, "other@example.com").await;
    let theirs = live_account(&app, &other_user, Platform::X, AccountStatus::Active).await;
    let accounts = get_json(&app, "/dashboard/api/accounts?mode=live", &cookie).await;
    assert_eq!(
        accounts["accounts"].as_array().unwrap().len(),
        1,
        "{accounts}"
    );
    assert_eq!(accounts["accounts"][0]["id"], mine.as_str());
    assert_eq!(accounts["accounts"][0]["status"], "needs_reconnect");
    let disconnect = |id: &str, csrf: Option<&str>| {
        let path = format!("/dashboard/api/accounts/{id}/disconnect");
        in_session(&app, reqwest::Method::POST, &path, &cookie, csrf).send()
    };
    expect_error(
        disconnect(&mine, None).await.unwrap(),
        403,
        "forbidden",
        None,
    )
    .await;
    expect_error(
        disconnect(&theirs, Some(&csrf)).await.unwrap(),
        404,
        "not_found",
        None,
    )
    .await;
    assert_eq!(disconnect(&mine, Some(&csrf)).await.unwrap().status(), 204);
    assert!(app.store.list_accounts(&uid).await.unwrap().is_empty());
    assert_eq!(app.store.list_accounts(&other_user).await.unwrap().len(), 1);

    // "Make default": with the CSRF token, only the user's own account, the others cleared.
    let first = live_account(&app, &uid, Platform::X, AccountStatus::Active).await;
    let second = live_account(&app, &uid, Platform::X, AccountStatus::Active).await;
    let make_default = |id: &str, csrf: Option<&str>| {
        let path = format!("/dashboard/api/accounts/{id}/default");
        in_session(&app, reqwest::Method::POST, &path, &cookie, csrf).send()
    };
    expect_error(
        make_default(&first, None).await.unwrap(),
        403,
        "forbidden",
        None,
    )
    .await;
    expect_error(
        make_default(&theirs, Some(&csrf)).await.unwrap(),
        404,
        "not_found",
        None,
    )
    .await;
    let r = make_default(&first, Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), 200);
    let defaults: Vec<String> = app
        .store
        .list_accounts(&uid)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.is_default)
        .map(|a| a.id)
        .collect();
    assert_ne!(first, second);
    assert_eq!(defaults, [first]);

    // A forged or stale cookie is no session.
    let forged = no_redirects
        .get(app.url("/posts"))
        .header("cookie", "soku_session=AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 303);

    // Sign out clears the cookie.
    let out = post("/dashboard/signout", Some(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn the_composer_counts_against_the_users_rate_limit_budget() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "limited@example.com").await;
    // 1 per 60 s with a burst of 2: three posts at once, then 429.
    app.store
        .set_rate_limit_override(&uid, soku_core::ratelimit::Quota::new(1, 2), Utc::now())
        .await
        .unwrap();
    let cookie = session(&app, "limited@example.com").await;
    let html = in_session(&app, reqwest::Method::GET, "/posts", &cookie, None)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&html);
    let compose = || async {
        in_session(&app, reqwest::Method::POST, "/dashboard/api/posts", &cookie, Some(&csrf))
            .json(&json!({"mode": "test", "request": {"post": {"content": {"text": "hi", "platform": ["x"]}}}}))
            .send()
            .await
            .unwrap()
    };
    for remaining in ["2", "1", "0"] {
        let r = compose().await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "1");
        assert_eq!(r.headers()["x-ratelimit-remaining"], remaining);
    }
    let refused = compose().await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let body = expect_error(refused, 429, "rate_limit_exceeded", None).await;
    assert_eq!(body["error"]["details"]["limit"], "tier", "{body}");
    assert_eq!(body["error"]["details"]["rate"], 1, "{body}");
    let stored = app
        .store
        .list_submissions(
            &uid,
            soku_core::keys::KeyMode::Test,
            &soku_core::queue::SubmissionFilter {
                status: None,
                platform: None,
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "a refused post is not stored");
}

/// The composer is behind the subscription gate of API keys, with rate limits on (the 403 is
/// counted against the user, with the headers of their tier) and off (the same 403).
#[tokio::test]
async fn the_composer_is_behind_the_subscription_gate_with_limits_on_and_off() {
    for limits in [
        generous_limits(),
        soku_server::ratelimit::RateLimitOptions::disabled(),
    ] {
        let enabled = limits.enabled;
        let app = Builder::default()
            .without_engine()
            .rate_limits(limits)
            .start()
            .await;
        let uid = password_user(&app, "lapsed@example.com").await;
        let cookie = session(&app, "lapsed@example.com").await;
        let html = in_session(&app, reqwest::Method::GET, "/posts", &cookie, None)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&html);
        app.store
            .set_subscription(
                &uid,
                &soku_core::model::Subscription {
                    status: SubscriptionStatus::Canceled,
                    current_period_end: Utc::now() + Duration::days(30),
                },
                Utc::now(),
            )
            .await
            .unwrap();
        let compose = || {
            in_session(&app, reqwest::Method::POST, "/dashboard/api/posts", &cookie, Some(&csrf))
                .json(&json!({"mode": "test", "request": {"post": {"content": {"text": "hi", "platform": ["x"]}}}}))
                .send()
        };
        // The user's profile is cached for up to two seconds, as a key's lookup is.
        assert!(
            eventually(std::time::Duration::from_secs(4), || async {
                compose().await.unwrap().status() == 403
            })
            .await,
            "limits on: {enabled}"
        );
        let refused = compose().await.unwrap();
        assert_eq!(
            refused
                .headers()
                .get("x-ratelimit-tier")
                .map(|v| v.to_str().unwrap()),
            enabled.then_some("authenticated"),
            "limits on: {enabled}"
        );
        expect_error(
            refused,
            403,
            "forbidden",
            Some("An active subscription is required to access the API."),
        )
        .await;
        // Without the CSRF token: the session's 403, before the gate.
        let no_csrf = in_session(
            &app,
            reqwest::Method::POST,
            "/dashboard/api/posts",
            &cookie,
            None,
        )
        .json(&json!({"request": {}}))
        .send()
        .await
        .unwrap();
        expect_error(
            no_csrf,
            403,
            "forbidden",
            Some("The request lacks this session's CSRF token; reload the page."),
        )
        .await;
        let signed_out = app
            .http
            .post(app.url("/dashboard/api/posts"))
            .json(&json!({"request": {}}))
            .send()
            .await
            .unwrap();
        expect_error(
            signed_out,
            401,
            "unauthorized",
            Some("Sign in to use the dashboard."),
        )
        .await;
    }
}
