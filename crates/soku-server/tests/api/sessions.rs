//! Server-side dashboard sessions (spec 4.2): sign-out ends every copy of a cookie, the
//! Sessions page's calls, the audit of sign-ins, the cookie's own key, and changes made in the
//! store taking effect without a restart.

use crate::dashboard::{PASSWORD, csrf_of, in_session, login, password_user};
use crate::util::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use soku_core::audit::{AuditDraft, AuditEvent, AuditKind, Origin};
use soku_core::model::{SessionRecord, Subscription, SubscriptionStatus};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// A dashboard session of `email` signed in from a browser saying `agent`.
struct Signed {
    cookie: String,
    csrf: String,
}

async fn sign_in(app: &TestApp, email: &str, agent: &str) -> Signed {
    let token: Value = login(app, email, PASSWORD).await.json().await.unwrap();
    let r = app
        .http
        .post(app.url("/dashboard/session"))
        .bearer_auth(token["idToken"].as_str().unwrap())
        .header("user-agent", agent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = app
        .http
        .get(app.url("/settings/sessions"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Signed {
        csrf: csrf_of(&html),
        cookie,
    }
}

fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    s: &Signed,
    csrf: bool,
) -> reqwest::RequestBuilder {
    in_session(
        app,
        method,
        path,
        &s.cookie,
        csrf.then_some(s.csrf.as_str()),
    )
}

async fn sessions_of(app: &TestApp, s: &Signed) -> reqwest::Response {
    call(app, Method::GET, "/dashboard/api/sessions", s, false)
        .send()
        .await
        .unwrap()
}

async fn listed(app: &TestApp, s: &Signed) -> Vec<Value> {
    let r = sessions_of(app, s).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

async fn refused(app: &TestApp, s: &Signed) {
    expect_error(
        sessions_of(app, s).await,
        401,
        "unauthorized",
        Some("Sign in to use the dashboard."),
    )
    .await;
}

#[tokio::test]
async fn signing_out_ends_the_session_for_every_copy_of_its_cookie() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    let here = sign_in(&app, "ada@example.com", FIREFOX).await;
    let there = sign_in(&app, "ada@example.com", CHROME).await;
    let copy = Signed {
        cookie: here.cookie.clone(),
        csrf: here.csrf.clone(),
    };

    // Both sessions are listed, newest first, with their device, address and times.
    let list = listed(&app, &here).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["device"], "Chrome on Windows");
    assert_eq!(list[0]["userAgent"], CHROME);
    assert_eq!(list[0]["current"], false);
    assert_eq!(list[1]["device"], "Firefox on Linux");
    assert_eq!(list[1]["current"], true);
    for s in &list {
        assert_eq!(s["ip"], "127.0.0.1");
        assert!(s["id"].as_str().unwrap().starts_with("ses_"), "{s}");
        assert_eq!(s["id"].as_str().unwrap().len(), 36, "{s}");
        for field in ["createdAt", "lastSeenAt", "expiresAt"] {
            assert!(s[field].as_str().unwrap().ends_with('Z'), "{field} in {s}");
        }
    }
    // The cookie holds no readable user id or session id.
    let here_id = list[1]["id"].as_str().unwrap().to_owned();
    assert!(!here.cookie.contains(&here_id) && !here.cookie.contains(&uid));

    // Sign-out needs the CSRF token, then ends the session on the server.
    let out = |csrf| call(&app, Method::POST, "/dashboard/signout", &here, csrf).send();
    expect_error(out(false).await.unwrap(), 403, "forbidden", None).await;
    let r = out(true).await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // The copied cookie is refused too, on the API and on the pages ...
    refused(&app, &copy).await;
    refused(&app, &here).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = no_redirects
        .get(app.url("/posts"))
        .header("cookie", &copy.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/login");
    // ... and signing out again with it is no session either.
    let again = call(&app, Method::POST, "/dashboard/signout", &copy, true)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    // The other session still works.
    let list = listed(&app, &there).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["current"], true);

    // Audited: two sign-ins and one sign-out, with the address and User-Agent.
    let events = audit_events(&app, &uid).await;
    let ins = of_type(&events, "session.signed_in");
    assert_eq!(ins.len(), 2, "{events:?}");
    assert_eq!(ins[1]["userAgent"], FIREFOX);
    assert_eq!(ins[1]["ip"], "127.0.0.1");
    assert_eq!(ins[1]["details"]["sessionId"], here_id.as_str());
    let outs = of_type(&events, "session.signed_out");
    assert_eq!(outs.len(), 1, "{events:?}");
    assert_eq!(outs[0]["details"]["sessionId"], here_id.as_str());
    assert_eq!(outs[0]["details"]["sessions"], 1);
    assert_eq!(outs[0]["ip"], "127.0.0.1");
    // The test's HTTP client sends no User-Agent.
    assert!(outs[0]["userAgent"].is_null(), "{}", outs[0]);
}

#[tokio::test]
async fn the_sessions_page_signs_out_one_session_or_all_of_them() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    password_user(&app, "bob@example.com").await;
    let a1 = sign_in(&app, "ada@example.com", FIREFOX).await;
    let a2 = sign_in(&app, "ada@example.com", CHROME).await;
    let a3 = sign_in(&app, "ada@example.com", "curl/8.5.0").await;
    let bob = sign_in(&app, "bob@example.com", FIREFOX).await;
    let id_of = |list: &[Value], agent: &str| {
        list.iter()
            .find(|s| s["userAgent"] == agent)
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let list = listed(&app, &a1).await;
    assert_eq!(list.len(), 3, "another user's sessions are not listed");
    let a2_id = id_of(&list, CHROME);
    let bob_id = id_of(&listed(&app, &bob).await, FIREFOX);

    // The page: linked in the navigation, its table, no inline script.
    let page = call(&app, Method::GET, "/settings/sessions", &a1, false)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("<a href=\"/settings/sessions\" aria-current=\"page\">Sessions</a>"));
    assert!(html.contains("<body data-page=\"sessions\">"));
    assert!(html.contains("id=\"sessions-revoke-all\""));
    assert!(!html.contains("<script>"));

    // Revoking one: CSRF required; another user's session is not found (and stays).
    let revoke = |id: &str, csrf: bool| {
        let path = format!("/dashboard/api/sessions/{id}/revoke");
        call(&app, Method::POST, &path, &a1, csrf).send()
    };
    expect_error(revoke(&a2_id, false).await.unwrap(), 403, "forbidden", None).await;
    expect_error(revoke(&bob_id, true).await.unwrap(), 404, "not_found", None).await;
    expect_error(
        revoke("ses_nope", true).await.unwrap(),
        404,
        "not_found",
        None,
    )
    .await;
    assert_eq!(listed(&app, &bob).await.len(), 1);
    let r = revoke(&a2_id, true).await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        !r.headers().contains_key("set-cookie"),
        "not this browser's session"
    );
    refused(&app, &a2).await;
    assert_eq!(listed(&app, &a1).await.len(), 2);
    // Ended already: 404.
    expect_error(revoke(&a2_id, true).await.unwrap(), 404, "not_found", None).await;

    // Everywhere: CSRF required; ends all of the user's sessions, this one included.
    let all = |csrf| {
        call(
            &app,
            Method::POST,
            "/dashboard/api/sessions/revoke-all",
            &a1,
            csrf,
        )
        .send()
    };
    expect_error(all(false).await.unwrap(), 403, "forbidden", None).await;
    let r = all(true).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"revoked": 2}));
    refused(&app, &a1).await;
    refused(&app, &a3).await;
    assert_eq!(
        listed(&app, &bob).await.len(),
        1,
        "another user's session stays"
    );
    // Signing out one's own session from the list also clears this browser's cookie.
    let path = format!("/dashboard/api/sessions/{bob_id}/revoke");
    let r = call(&app, Method::POST, &path, &bob, true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    refused(&app, &bob).await;

    let events = audit_events(&app, &uid).await;
    let outs = of_type(&events, "session.signed_out");
    assert_eq!(outs.len(), 2, "{events:?}");
    assert_eq!(outs[0]["details"]["everywhere"], true);
    assert_eq!(outs[0]["details"]["sessions"], 2);
    assert_eq!(outs[1]["details"]["sessionId"], a2_id.as_str());
    assert_eq!(outs[1]["details"]["current"], false);
}

#[tokio::test]
async fn failed_sign_ins_are_audited_without_the_password_and_bounded_by_the_throttle() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    let wrong = |password: &'static str| {
        app.http
            .post(app.url("/v1/auth/login"))
            .header("user-agent", FIREFOX)
            .json(&json!({"email": "ada@example.com", "password": password}))
            .send()
    };
    // Seven wrong passwords: five are checked (and recorded), then the throttle refuses.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            wrong("not the password 123")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    // An email nobody has records nothing (there is no user to record it against).
    let r = app
        .http
        .post(app.url("/v1/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "whatever 12345"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The events are written off the request's path.
    let five = eventually(std::time::Duration::from_secs(5), || async {
        of_type(&audit_events(&app, &uid).await, "session.sign_in_failed").len() == 5
    })
    .await;
    assert!(five, "{:?}", audit_events(&app, &uid).await);
    let events = audit_events(&app, &uid).await;
    let failed = of_type(&events, "session.sign_in_failed");
    assert_eq!(failed.len(), 5);
    assert_eq!(failed[0]["ip"], "127.0.0.1");
    assert_eq!(failed[0]["userAgent"], FIREFOX);
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("not the password"), "{all}");
}

#[tokio::test]
async fn cookies_sealed_with_another_key_are_refused() {
    use chacha20poly1305::aead::{Aead, KeyInit};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    let good = sign_in(&app, "ada@example.com", FIREFOX).await;
    let id = listed(&app, &good).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expiry = (Utc::now() + Duration::hours(1)).timestamp();
    let cookie_of = |sealed: Vec<u8>| Signed {
        cookie: format!("soku_session={}", URL_SAFE_NO_PAD.encode(sealed)),
        csrf: String::new(),
    };
    let content = json!({"s": id, "e": expiry, "c": "csrf"}).to_string();

    // The session cookie's own key opens it (the control) ...
    assert_eq!(
        sessions_of(&app, &cookie_of(app.state.secrets.seal_cookie(&content)))
            .await
            .status(),
        200
    );
    // ... the account-token key does not ...
    refused(&app, &cookie_of(app.state.secrets.seal(&content))).await;
    // ... nor the server's secret key itself, which sealed the cookies before (with the user
    // id in them, in the old format, or a session id in the new).
    let raw = app.store.get_setting("secret_key").await.unwrap().unwrap();
    let raw: [u8; 32] = STANDARD.decode(raw).unwrap().try_into().unwrap();
    let old_seal = |plain: &str| {
        let nonce = [3u8; 24];
        let mut out = nonce.to_vec();
        out.extend(
            XChaCha20Poly1305::new((&raw).into())
                .encrypt(&XNonce::from(nonce), plain.as_bytes())
                .unwrap(),
        );
        out
    };
    let old = json!({"u": uid, "e": expiry, "c": "csrf"}).to_string();
    refused(&app, &cookie_of(old_seal(&old))).await;
    refused(&app, &cookie_of(old_seal(&content))).await;
}

#[tokio::test]
async fn changes_in_the_store_take_effect_without_a_restart() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    let s = sign_in(&app, "ada@example.com", FIREFOX).await;

    // A session seen more than a minute ago records the time and address of its next use.
    let now = Utc::now();
    let stale = SessionRecord {
        id: soku_core::keys::random_id("ses_", 32),
        user_id: uid.clone(),
        created_at: now - Duration::minutes(10),
        expires_at: now + Duration::hours(1),
        last_seen_at: now - Duration::minutes(2),
        ip: Some("203.0.113.9".into()),
        user_agent: Some(CHROME.into()),
        revoked_at: None,
    };
    let event = AuditEvent::new(
        &uid,
        AuditKind::SignedIn,
        stale.created_at,
        None,
        Origin::default(),
        json!({}),
    );
    app.store.insert_session(&stale, &event).await.unwrap();
    let content =
        json!({"s": stale.id, "e": stale.expires_at.timestamp(), "c": "csrf"}).to_string();
    let old = Signed {
        cookie: format!(
            "soku_session={}",
            URL_SAFE_NO_PAD.encode(app.state.secrets.seal_cookie(&content))
        ),
        csrf: String::new(),
    };
    assert_eq!(sessions_of(&app, &old).await.status(), 200);
    let touched = eventually(std::time::Duration::from_secs(5), || async {
        let list = app.store.list_sessions(&uid, Utc::now()).await.unwrap();
        list.iter().any(|r| {
            r.id == stale.id
                && r.last_seen_at > now - Duration::seconds(5)
                && r.ip.as_deref() == Some("127.0.0.1")
        })
    })
    .await;
    assert!(touched);

    // The subscription, set in the store, shows on the next requests (within the profile
    // cache's two seconds, as for API keys).
    app.store
        .set_subscription(
            &uid,
            &Subscription {
                status: SubscriptionStatus::Canceled,
                current_period_end: Utc::now() + Duration::days(30),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let lapsed = eventually(std::time::Duration::from_secs(4), || async {
        let r = call(&app, Method::GET, "/dashboard/api/overview", &s, false)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["hasAccess"] == false
    })
    .await;
    assert!(lapsed);

    // A key revoked in the store is listed revoked on the API-keys page's next call.
    let key = app.key_for(&uid).await;
    let token: Value = call(&app, Method::POST, "/dashboard/api/token", &s, true)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["idToken"].as_str().unwrap().to_owned();
    let keys: Value = app
        .get_with_token("/v1/api-keys", &token)
        .await
        .json()
        .await
        .unwrap();
    let key_id = keys["apiKeys"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(keys["apiKeys"][0]["status"], "active");
    app.store
        .revoke_api_key(Some(&uid), &key_id, Utc::now(), &revoked_event())
        .await
        .unwrap();
    let keys: Value = app
        .get_with_token("/v1/api-keys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys["apiKeys"][0]["status"], "revoked");
    let refused_key = eventually(std::time::Duration::from_secs(4), || async {
        app.get_with_key("/v1/me", &key).await.status() == 401
    })
    .await;
    assert!(refused_key);

    // A session ended in the store fails on its very next request: sessions are not cached.
    let draft = AuditDraft::new(AuditKind::SignedOut, Origin::default(), json!({}));
    let ended = app
        .store
        .revoke_sessions(&uid, None, Utc::now(), &draft)
        .await
        .unwrap();
    assert_eq!(ended, 2);
    refused(&app, &s).await;
    refused(&app, &old).await;
}

/// A page token (`POST /dashboard/api/token`) lives no longer than its session, and opens no
/// other session: a copied cookie cannot outlive "Sign out everywhere" through the tokens it
/// can mint.
#[tokio::test]
async fn page_tokens_end_with_their_session_and_open_no_session() {
    let app = TestApp::start().await;
    password_user(&app, "pages@example.com").await;
    let s = sign_in(&app, "pages@example.com", FIREFOX).await;
    let r = call(&app, Method::POST, "/dashboard/api/token", &s, true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let token = token["idToken"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_with_token("/v1/api-keys", &token).await.status(),
        200
    );
    // It cannot open a new session.
    let reopen = app
        .http
        .post(app.url("/dashboard/session"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(
        reopen,
        401,
        "unauthorized",
        Some("Invalid or missing ID token."),
    )
    .await;
    // Signed out everywhere: the page token stops at once.
    let r = call(
        &app,
        Method::POST,
        "/dashboard/api/sessions/revoke-all",
        &s,
        true,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    expect_error(
        app.get_with_token("/v1/api-keys", &token).await,
        401,
        "unauthorized",
        Some("Invalid or missing ID token."),
    )
    .await;
    let create = app
        .http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "after sign-out"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 401);
}

/// "Sign out everywhere" ends the user's ID tokens too (a password sign-in's last an hour):
/// those signed in before are refused, for the API and for opening a session, at once on this
/// node and within the profile cache's two seconds on others; a sign-in after it works; ending
/// one session, or another user's sign-out, leaves tokens alone.
#[tokio::test]
async fn signing_out_everywhere_ends_the_users_id_tokens() {
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    let bob = password_user(&app, "bob@example.com").await;
    let s = sign_in(&app, "ada@example.com", FIREFOX).await;
    sign_in(&app, "ada@example.com", CHROME).await;
    // What `POST /v1/auth/login` gave each of them a few seconds ago (whole seconds apart from
    // the sign-out: a token signed in within its very second is not refused).
    let issuer = app.state.tokens.builtin();
    let earlier = Utc::now() - Duration::seconds(5);
    let hour = std::time::Duration::from_secs(3600);
    let old = issuer
        .issue(&uid, Some("ada@example.com"), earlier, hour)
        .unwrap();
    let bobs = issuer
        .issue(&bob, Some("bob@example.com"), earlier, hour)
        .unwrap();
    let open_with = |token: &str| {
        app.http
            .post(app.url("/dashboard/session"))
            .bearer_auth(token)
            .send()
    };
    // In use (its user's profile is cached now).
    assert_eq!(app.get_with_token("/v1/api-keys", &old).await.status(), 200);

    // Ending one session is no sign-out everywhere.
    let chrome = listed(&app, &s)
        .await
        .into_iter()
        .find(|l| l["userAgent"] == CHROME)
        .unwrap();
    let path = format!(
        "/dashboard/api/sessions/{}/revoke",
        chrome["id"].as_str().unwrap()
    );
    let r = call(&app, Method::POST, &path, &s, true)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get_with_token("/v1/api-keys", &old).await.status(), 200);

    let r = call(
        &app,
        Method::POST,
        "/dashboard/api/sessions/revoke-all",
        &s,
        true,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    expect_error(
        app.get_with_token("/v1/api-keys", &old).await,
        401,
        "unauthorized",
        Some("Invalid or missing ID token."),
    )
    .await;
    expect_error(
        open_with(&old).await.unwrap(),
        401,
        "unauthorized",
        Some("Invalid or missing ID token."),
    )
    .await;
    assert_eq!(app.state.metrics.auth_failures("token_revoked"), 2);
    assert_eq!(
        app.get_with_token("/v1/api-keys", &bobs).await.status(),
        200,
        "another user's token"
    );

    // Signing in again works at once.
    let fresh: Value = login(&app, "ada@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let fresh = fresh["idToken"].as_str().unwrap();
    assert_eq!(
        app.get_with_token("/v1/api-keys", fresh).await.status(),
        200
    );
    assert_eq!(open_with(fresh).await.unwrap().status(), 204);

    // Signed out everywhere by another node (the store changed under this one): within the
    // profile cache's two seconds.
    let draft = AuditDraft::new(AuditKind::SignedOut, Origin::default(), json!({}));
    app.store
        .revoke_sessions(&bob, None, Utc::now(), &draft)
        .await
        .unwrap();
    let refused = eventually(std::time::Duration::from_secs(4), || async {
        app.get_with_token("/v1/api-keys", &bobs).await.status() == 401
    })
    .await;
    assert!(refused, "still accepted after 4 s");
}

/// Signing in beyond the limit of live sessions ends the oldest ones.
#[tokio::test]
async fn a_user_has_at_most_fifty_live_sessions() {
    let app = TestApp::start().await;
    password_user(&app, "many@example.com").await;
    let first = sign_in(&app, "many@example.com", FIREFOX).await;
    let token: Value = login(&app, "many@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = token["idToken"].as_str().unwrap().to_owned();
    for _ in 0..soku_server::auth::session::MAX_SESSIONS_PER_USER {
        let r = app
            .http
            .post(app.url("/dashboard/session"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    // The first session was the oldest: it is gone; the newest fifty remain.
    refused(&app, &first).await;
    let last = sign_in(&app, "many@example.com", CHROME).await;
    assert_eq!(
        listed(&app, &last).await.len(),
        soku_server::auth::session::MAX_SESSIONS_PER_USER
    );
}

/// `soku admin user set-password` and `soku admin user sign-out`, for a user who cannot help
/// themselves (a forgotten password, a stolen laptop): the new password works and the old one
/// no longer does; both sign the user out everywhere (sessions and ID tokens signed in before),
/// record it in the user's audit log as the operator's doing, and leave other users alone.
#[tokio::test]
async fn the_operator_sets_a_password_and_signs_a_user_out_everywhere() {
    use soku_server::admin::{AdminCommand, UserCommand, execute};
    let app = TestApp::builder_without_engine().await;
    let uid = password_user(&app, "ada@example.com").await;
    let bob = password_user(&app, "bob@example.com").await;
    let run = |command: UserCommand| {
        execute(
            app.store.clone(),
            AdminCommand::User { command },
            Utc::now(),
        )
    };
    let s = sign_in(&app, "ada@example.com", FIREFOX).await;
    let bobs = sign_in(&app, "bob@example.com", CHROME).await;
    let issuer = app.state.tokens.builtin();
    let hour = std::time::Duration::from_secs(3600);
    let earlier = Utc::now() - Duration::seconds(5);
    let old = issuer
        .issue(&uid, Some("ada@example.com"), earlier, hour)
        .unwrap();
    assert_eq!(app.get_with_token("/v1/api-keys", &old).await.status(), 200);
    assert_eq!(sessions_of(&app, &s).await.status(), 200);

    // Refused: too short, no such user, a user without an email.
    let short = run(UserCommand::SetPassword {
        uid: uid.clone(),
        password: "short".into(),
    })
    .await;
    assert!(short.unwrap_err().contains("at least 10 characters"));
    let nobody = run(UserCommand::SetPassword {
        uid: "nobody".into(),
        password: "a new password".into(),
    })
    .await;
    assert_eq!(nobody.unwrap_err(), "no user with id \"nobody\"");
    app.store
        .create_user("no_email", None, Utc::now())
        .await
        .unwrap();
    let no_email = run(UserCommand::SetPassword {
        uid: "no_email".into(),
        password: "a new password".into(),
    })
    .await;
    assert!(no_email.unwrap_err().contains("no email address"));
    // Nothing changed by the refusals.
    assert_eq!(login(&app, "ada@example.com", PASSWORD).await.status(), 200);
    assert_eq!(sessions_of(&app, &s).await.status(), 200);

    let out = run(UserCommand::SetPassword {
        uid: uid.clone(),
        password: "a brand new password".into(),
    })
    .await
    .unwrap();
    assert!(
        out.contains("password set") && out.contains("signed out everywhere"),
        "{out}"
    );
    assert!(!out.contains("brand new"), "the password is printed: {out}");
    assert_eq!(login(&app, "ada@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        login(&app, "ada@example.com", "a brand new password")
            .await
            .status(),
        200
    );
    assert_eq!(
        sessions_of(&app, &s).await.status(),
        401,
        "the session signed in before"
    );
    let refused = eventually(std::time::Duration::from_secs(4), || async {
        app.get_with_token("/v1/api-keys", &old).await.status() == 401
    })
    .await;
    assert!(refused, "the ID token signed in before is still accepted");
    assert_eq!(
        sessions_of(&app, &bobs).await.status(),
        200,
        "another user's session"
    );

    // Sign-out alone: Bob's session and tokens end, his password stays.
    let bobs_token = issuer
        .issue(&bob, Some("bob@example.com"), earlier, hour)
        .unwrap();
    let out = run(UserCommand::SignOut { uid: bob.clone() })
        .await
        .unwrap();
    assert_eq!(
        out,
        format!("{bob}: signed out everywhere (1 session ended)")
    );
    assert_eq!(sessions_of(&app, &bobs).await.status(), 401);
    let refused = eventually(std::time::Duration::from_secs(4), || async {
        app.get_with_token("/v1/api-keys", &bobs_token)
            .await
            .status()
            == 401
    })
    .await;
    assert!(refused, "Bob's ID token signed in before is still accepted");
    assert_eq!(login(&app, "bob@example.com", PASSWORD).await.status(), 200);
    assert!(
        run(UserCommand::SignOut {
            uid: "nobody".into()
        })
        .await
        .is_err()
    );

    // Each is in the user's audit log as the operator's.
    let events = app.store.list_audit_events(&bob, 10, None).await.unwrap();
    let out_event = events
        .iter()
        .find(|e| e.kind == AuditKind::SignedOut)
        .expect("a session.signed_out event");
    assert_eq!(
        out_event.details["by"], "operator",
        "{:?}",
        out_event.details
    );
    assert_eq!(out_event.details["sessions"], 1);
    assert_eq!(out_event.details["everywhere"], true);
    assert_eq!(out_event.details["reason"], "operator");
}
