//! Connecting real accounts end to end, against the platform fakes on loopback: the OAuth round
//! trip through `POST /v1/accounts/connect`, the platform's authorization page and our
//! callback; the state checks (replayed, expired, another user's); Bluesky app passwords;
//! publishing through the connected account; tokens refreshed ahead of expiry and after a
//! refused token; a refresh that fails; and a timeout after sending that reconciliation resolves.

use crate::posts::{submit, text_post, wait_for_status};
use crate::util::*;
use serde_json::{Value, json};
use sha2::Digest;
use soku_core::connector::Connector;
use soku_core::platform::Platform;
use soku_core::queue::{AccountStatus, OAuthState, RefreshedTokens};
use soku_fakes::Fault;
use soku_fakes::bluesky::FakeBluesky;
use soku_fakes::x::XFake;
use soku_platforms::PlatformSettings;
use soku_platforms::fetch::SafeFetcher;
use soku_platforms::net::NetPolicy;
use std::sync::Arc;
use std::time::Duration;

const CLIENT_DONE: &str = "https://client.example/connected";

fn loopback() -> NetPolicy {
    NetPolicy {
        allow_loopback: true,
    }
}

fn media() -> Arc<dyn soku_platforms::media::MediaSource> {
    Arc::new(SafeFetcher::new(loopback(), Duration::from_secs(5)))
}

fn x_connector(fake: &XFake) -> Arc<dyn Connector> {
    let settings = PlatformSettings {
        auth_url: fake.authorize_url(),
        timeout: Duration::from_secs(1),
        ..PlatformSettings::at(&fake.url)
    };
    Arc::new(soku_platforms::x::X::new(settings, media()))
}

pub(crate) async fn x_app(fake: &XFake) -> TestApp {
    let app = Builder::default()
        .connector(Platform::X, x_connector(fake))
        .start()
        .await;
    fake.register_redirect_uri(&app.url("/v1/oauth/x/callback"));
    app
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A dashboard session cookie (`name=value`) for the user, from an ID token.
pub(crate) async fn session_cookie(app: &TestApp, uid: &str) -> String {
    let session = app
        .http
        .post(app.url("/dashboard/session"))
        .bearer_auth(app.token(uid))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 204);
    let set = session.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Starts an authorization for the key's user and has the fake's user approve it: the
/// callback URL the platform sends the browser to.
async fn approved_callback(app: &TestApp, key: &str, redirect: Option<&str>) -> String {
    let mut body = json!({"platform": "x"});
    if let Some(r) = redirect {
        body["redirectUri"] = json!(r);
    }
    let r = app.post_json("/v1/accounts/connect", key, &body).await;
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    let url = started["authorizationUrl"].as_str().unwrap().to_owned();
    assert_eq!(
        query(&url, "redirect_uri").unwrap(),
        app.url("/v1/oauth/x/callback")
    );
    assert_eq!(
        query(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(
        query(&url, "state").unwrap().len() >= 40,
        "a long random state"
    );
    let page = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 302, "the fake's user approves");
    page.headers()["location"].to_str().unwrap().to_owned()
}

/// Connects the fake's X user to `key`'s user; the account's id.
pub(crate) async fn connect_x(app: &TestApp, key: &str) -> String {
    let callback = approved_callback(app, key, Some(CLIENT_DONE)).await;
    let done = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let back = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(CLIENT_DONE), "{back}");
    assert_eq!(
        query(&back, "status").as_deref(),
        Some("connected"),
        "{back}"
    );
    query(&back, "id").unwrap()
}

#[tokio::test]
async fn x_oauth_round_trip_connects_the_account_and_publishes_through_it() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (uid, key) = app.subscriber().await;

    let callback = approved_callback(&app, &key, Some(CLIENT_DONE)).await;
    assert!(
        callback.starts_with(&app.url("/v1/oauth/x/callback")),
        "{callback}"
    );
    let done = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let back = done.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query(&back, "status").as_deref(), Some("connected"));
    assert_eq!(query(&back, "platform").as_deref(), Some("x"));
    assert_eq!(
        query(&back, "accountId").as_deref(),
        Some(soku_fakes::x::USER_ID)
    );

    // The state works once.
    let again = no_redirects().get(&callback).send().await.unwrap();
    let body = expect_error(again, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "state_used");

    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    let account = &listed["accounts"][0];
    assert_eq!(account["platform"], "x");
    assert_eq!(account["username"], soku_fakes::x::USERNAME);
    assert_eq!(account["status"], "active");
    assert!(account["tokenExpiresAt"].is_string());
    assert!(
        !listed.to_string().contains("access"),
        "no tokens listed: {listed}"
    );

    // Tokens are stored sealed: the database holds neither token's text.
    let id = account["id"].as_str().unwrap();
    let (_, sealed) = app.store.account_secrets(id).await.unwrap().unwrap();
    let access = app
        .state
        .secrets
        .open(sealed.access_token.as_deref().unwrap())
        .unwrap();
    assert!(fake.access_token_works(&access));
    assert!(!String::from_utf8_lossy(sealed.access_token.as_deref().unwrap()).contains(&access));
    assert!(
        sealed.refresh_token.is_some(),
        "offline.access gives a refresh token"
    );

    // A post to the connected account reaches X once.
    let sub = submit(
        &app,
        &key,
        &text_post("Hello from Soku server", json!(["x"])),
    )
    .await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(done["status"], "published", "{done}");
    let target = &done["targets"][0];
    assert!(
        target["platformPostUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "https://x.com/{}/status/",
                soku_fakes::x::USERNAME
            )),
        "{target}"
    );
    assert_eq!(fake.posts().len(), 1);
    assert_eq!(fake.posts()[0].text, "Hello from Soku server");
    let _ = uid;

    // Without a redirectUri, a browser gets a page and a script the account.
    let callback = approved_callback(&app, &key, None).await;
    let r = app
        .http
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["account"]["id"], id, "reconnecting keeps the account");
    let callback = approved_callback(&app, &key, None).await;
    let r = app
        .http
        .get(&callback)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("X account connected"));
}

#[tokio::test]
async fn states_are_single_use_bound_to_their_user_and_expire() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (a_uid, a_key) = app.subscriber().await;
    let (b_uid, _) = app.subscriber().await;

    // User B's browser (signed in to the dashboard) completes user A's authorization: refused,
    // and the state is spent.
    let callback = approved_callback(&app, &a_key, Some(CLIENT_DONE)).await;
    let cookie = session_cookie(&app, &b_uid).await;
    let r = no_redirects()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 403, "forbidden", None).await;
    assert_eq!(body["error"]["details"]["reason"], "state_other_user");
    let r = no_redirects().get(&callback).send().await.unwrap();
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "state_used");
    assert!(app.store.list_accounts(&a_uid).await.unwrap().is_empty());
    assert!(app.store.list_accounts(&b_uid).await.unwrap().is_empty());

    // A's own browser session completes A's authorization.
    let callback = approved_callback(&app, &a_key, Some(CLIENT_DONE)).await;
    let cookie = session_cookie(&app, &a_uid).await;
    let r = no_redirects()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(app.store.list_accounts(&a_uid).await.unwrap().len(), 1);

    // An authorization older than 10 minutes.
    let now = chrono::Utc::now();
    app.store
        .insert_oauth_state(&OAuthState {
            state_hash: sha2::Sha256::digest(b"an-old-state").to_vec(),
            user_id: a_uid.clone(),
            platform: Platform::X,
            redirect_uri: app.url("/v1/oauth/x/callback"),
            return_to: None,
            from_dashboard: false,
            sealed: app.state.secrets.seal(r#"{"verifier":"v","pending":{}}"#),
            created_at: now - chrono::Duration::minutes(11),
            expires_at: now - chrono::Duration::minutes(1),
        })
        .await
        .unwrap();
    let r = app
        .http
        .get(app.url("/v1/oauth/x/callback?code=c&state=an-old-state"))
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "state_expired");

    // A state issued for X does not complete another platform's callback.
    let callback = approved_callback(&app, &a_key, None).await;
    let other = callback.replace("/v1/oauth/x/", "/v1/oauth/linkedin/");
    let body = expect_error(
        app.http.get(&other).send().await.unwrap(),
        400,
        "validation_error",
        None,
    )
    .await;
    assert_eq!(body["error"]["details"]["reason"], "state_unknown");

    // Where the browser may be sent: https, or http on loopback; not plain http elsewhere.
    for (uri, ok) in [
        ("http://client.example/done", false),
        ("javascript:alert(1)", false),
        ("http://localhost:3000/done", true),
        ("http://127.0.0.1:9/done", true),
        ("https://client.example/done", true),
    ] {
        let r = app
            .post_json(
                "/v1/accounts/connect",
                &a_key,
                &json!({"platform": "x", "redirectUri": uri}),
            )
            .await;
        if ok {
            assert_eq!(r.status(), 200, "{uri}");
        } else {
            let body = expect_error(r, 400, "validation_error", None).await;
            assert_eq!(body["error"]["details"]["field"], "redirectUri", "{uri}");
        }
    }

    // An authorization started in the dashboard completes only with that user's session.
    let page = app
        .http
        .get(app.url("/accounts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let at = html.find("name=\"csrf-token\" content=\"").unwrap() + 27;
    let csrf = html[at..at + html[at..].find('"').unwrap()].to_owned();
    let started = |app: &TestApp| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let http = app.http.clone();
        let url = app.url("/dashboard/api/accounts/connect");
        async move {
            let r = http
                .post(url)
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&json!({"platform": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            let page = no_redirects()
                .get(body["authorizationUrl"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            page.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    let callback = started(&app).await;
    let r = no_redirects().get(&callback).send().await.unwrap();
    let body = expect_error(r, 403, "forbidden", None).await;
    assert_eq!(body["error"]["details"]["reason"], "session_required");
    let callback = started(&app).await;
    let r = no_redirects()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .split('?')
            .next()
            .unwrap(),
        app.url("/accounts"),
        "back to the dashboard"
    );

    // The user declines at X: the client hears of it.
    let r = app
        .post_json(
            "/v1/accounts/connect",
            &a_key,
            &json!({"platform": "x", "redirectUri": CLIENT_DONE}),
        )
        .await;
    let url: Value = r.json().await.unwrap();
    let state = query(url["authorizationUrl"].as_str().unwrap(), "state").unwrap();
    let r = no_redirects()
        .get(app.url(&format!(
            "/v1/oauth/x/callback?error=access_denied&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(query(&back, "status").as_deref(), Some("error"), "{back}");
}

#[tokio::test]
async fn tokens_are_refreshed_ahead_of_expiry_and_after_a_refused_token() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (_, key) = app.subscriber().await;
    let id = connect_x(&app, &key).await;
    let sealed = |app: &TestApp, id: String| {
        let store = app.store.clone();
        let secrets = app.state.secrets.clone();
        async move {
            let (account, s) = store.account_secrets(&id).await.unwrap().unwrap();
            let open = |b: Option<Vec<u8>>| b.and_then(|b| secrets.open(&b));
            (account, open(s.access_token), open(s.refresh_token))
        }
    };

    // Not due: two hours left, refreshed 15 minutes ahead.
    assert_eq!(app.state.account_tokens.refresh_due().await, 0);
    // Ten minutes left: due.
    let (_, access, refresh) = sealed(&app, id.clone()).await;
    let now = chrono::Utc::now();
    assert!(
        app.store
            .lease_account_refresh(&id, "test", now, now + chrono::Duration::minutes(1))
            .await
            .unwrap()
    );
    assert!(
        app.store
            .save_refreshed_tokens(
                &id,
                "test",
                &RefreshedTokens {
                    access_token: app.state.secrets.seal(access.as_deref().unwrap()),
                    refresh_token: None,
                    expires_at: Some(now + chrono::Duration::minutes(10)),
                    needs_reconnect: false,
                },
                now,
            )
            .await
            .unwrap()
    );
    assert_eq!(app.state.account_tokens.refresh_due().await, 1);
    let (account, new_access, new_refresh) = sealed(&app, id.clone()).await;
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh, "X rotates refresh tokens");
    assert!(!fake.refresh_token_works(refresh.as_deref().unwrap()));
    assert!(fake.refresh_token_works(new_refresh.as_deref().unwrap()));
    assert!(
        account.token_expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::minutes(100)
    );

    // X stops accepting the access token before its time: the engine refreshes and publishes.
    fake.expire_access_tokens();
    let issued = fake.tokens_issued();
    let sub = submit(
        &app,
        &key,
        &text_post("After a refused token", json!(["x"])),
    )
    .await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(fake.tokens_issued(), issued + 1);
    assert_eq!(fake.posts().len(), 1);

    // The user revokes the app at X: the refresh fails, the account needs reconnecting, its
    // refresh token is kept, and posts to it fail at once with a clear error.
    let (_, _, kept) = sealed(&app, id.clone()).await;
    fake.expire_access_tokens();
    fake.revoke_refresh_tokens();
    let sub = submit(&app, &key, &text_post("After a revoked app", json!(["x"]))).await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["targets"][0]["error"]["code"], "account_needs_reconnect",
        "{done}"
    );
    let (account, _, still) = sealed(&app, id.clone()).await;
    assert_eq!(account.status, AccountStatus::NeedsReconnect);
    assert_eq!(still, kept, "a failed refresh keeps the refresh token");
    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["accounts"][0]["status"], "needs_reconnect");

    let started = std::time::Instant::now();
    let sub = submit(&app, &key, &text_post("While disconnected", json!(["x"]))).await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(
        done["targets"][0]["error"]["code"],
        "account_needs_reconnect"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails at once, does not hang"
    );
    assert_eq!(fake.posts().len(), 1);

    // Reconnecting makes it active again.
    connect_x(&app, &key).await;
    let (account, _, _) = sealed(&app, id.clone()).await;
    assert_eq!(account.status, AccountStatus::Active);
}

#[tokio::test]
async fn a_timeout_after_sending_is_reconciled_without_a_second_post() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect_x(&app, &key).await;

    // X makes the post but answers after the connector gave up (1 s).
    fake.faults.push(
        "POST",
        "/2/tweets",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let sub = submit(
        &app,
        &key,
        &text_post("Made once, answered late", json!(["x"])),
    )
    .await;
    let done = wait_for_status(
        &app,
        &key,
        &sub,
        &["published", "failed", "partially_published"],
    )
    .await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(
        fake.posts().len(),
        1,
        "reconciliation found it; no second post"
    );
    assert_eq!(fake.create_calls(), 1);
    assert_eq!(
        done["targets"][0]["platformPostId"],
        fake.posts()[0].id.as_str()
    );

    // X fails with a 503 before making anything: reconciliation finds nothing, the retry posts.
    fake.fail_next("POST", "/2/tweets");
    let sub = submit(&app, &key, &text_post("Retried after a 503", json!(["x"]))).await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(done["targets"][0]["attempts"], 2, "{done}");
    assert_eq!(fake.posts().len(), 2);
}

/// X made the tweet but its answer was lost, and its timeline lists the tweet only a while
/// later: the lookup right after the timeout finds nothing. The target stays in flight, so the
/// next attempt looks again before posting; a post X then refuses as duplicate content leads to
/// another lookup, not to `failed`, and the tweet is found once X lists it. Before, the retry
/// posted blindly and X's duplicate refusal failed a target whose tweet was live.
#[tokio::test]
async fn a_duplicate_refusal_after_a_lost_answer_finds_the_live_tweet() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect_x(&app, &key).await;

    fake.set_timeline_lag(Duration::from_millis(1500));
    fake.faults.push(
        "POST",
        "/2/tweets",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    let sub = submit(&app, &key, &text_post("Listed late", json!(["x"]))).await;
    let done = wait_for_status(
        &app,
        &key,
        &sub,
        &["published", "failed", "partially_published"],
    )
    .await;
    let target = &done["targets"][0];
    assert_eq!(target["status"], "published", "{done}");
    assert_eq!(fake.posts().len(), 1, "one tweet");
    assert_eq!(target["platformPostId"], fake.posts()[0].id.as_str());
    assert!(fake.timeline_calls() >= 2, "looked again after the timeout");
}

#[tokio::test]
async fn bluesky_connects_with_an_app_password_and_publishes() {
    let fake = FakeBluesky::start().await;
    let settings = PlatformSettings {
        timeout: Duration::from_secs(2),
        ..PlatformSettings::at(&fake.url)
    };
    let app = Builder::default()
        .connector(
            Platform::Bluesky,
            Arc::new(soku_platforms::bluesky::Bluesky::new(
                settings,
                media(),
                loopback(),
            )),
        )
        .start()
        .await;
    let (uid, key) = app.subscriber().await;

    let r = app
        .post_json(
            "/v1/accounts/connect",
            &key,
            &json!({"platform": "bluesky", "identifier": soku_fakes::bluesky::HANDLE, "appPassword": "wrong-pass-word-xxxx", "pds": fake.url}),
        )
        .await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "rejected");
    // Bluesky cannot tell a wrong handle from a wrong password; the app password is named.
    assert_eq!(body["error"]["details"]["field"], "appPassword");
    assert_eq!(body["error"]["details"]["platform"], "bluesky");
    let r = app
        .post_json(
            "/v1/accounts/connect",
            &key,
            &json!({"platform": "bluesky", "identifier": soku_fakes::bluesky::HANDLE, "pds": fake.url}),
        )
        .await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["field"], "appPassword");

    let r = app
        .post_json(
            "/v1/accounts/connect",
            &key,
            &json!({"platform": "bluesky", "identifier": soku_fakes::bluesky::HANDLE, "appPassword": soku_fakes::bluesky::APP_PASSWORD, "pds": fake.url}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["account"]["accountId"], soku_fakes::bluesky::DID);
    assert_eq!(body["account"]["username"], soku_fakes::bluesky::HANDLE);
    // The app password is kept nowhere.
    let accounts = app.store.list_accounts(&uid).await.unwrap();
    assert!(
        !accounts[0]
            .meta
            .to_string()
            .contains(soku_fakes::bluesky::APP_PASSWORD)
    );

    let sub = submit(
        &app,
        &key,
        &text_post("Hello Bluesky https://example.com", json!(["bluesky"])),
    )
    .await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(done["status"], "published", "{done}");
    assert!(
        done["targets"][0]["platformPostUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://bsky.app/profile/")
    );
    assert_eq!(fake.posts().len(), 1);

    // A PDS on a private address is refused when loopback is not allowed.
    let guarded = Builder::default()
        .connector(
            Platform::Bluesky,
            Arc::new(soku_platforms::bluesky::Bluesky::new(
                PlatformSettings::at(&fake.url),
                media(),
                NetPolicy::default(),
            )),
        )
        .start()
        .await;
    let (_, key) = guarded.subscriber().await;
    let r = guarded
        .post_json(
            "/v1/accounts/connect",
            &key,
            &json!({"platform": "bluesky", "identifier": "a", "appPassword": "b", "pds": "http://169.254.169.254"}),
        )
        .await;
    expect_error(r, 400, "validation_error", None).await;
}

#[tokio::test]
async fn an_in_flight_target_whose_account_must_be_reconnected_ends_unknown_not_failed() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (_, key) = app.subscriber().await;
    let id = connect_x(&app, &key).await;

    // X makes the post but answers too late, and then cannot be asked whether it exists.
    fake.faults.push(
        "POST",
        "/2/tweets",
        Fault::DelayAfterEffect(Duration::from_secs(3)),
    );
    fake.fail_next("GET", "/2/users/");
    let sub = submit(&app, &key, &text_post("Maybe published", json!(["x"]))).await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            fake.create_calls() == 1
        })
        .await,
        "the post reached X"
    );
    // Meanwhile the account is found to need reconnecting.
    let now = chrono::Utc::now();
    assert!(
        app.store
            .lease_account_refresh(&id, "t", now, now + chrono::Duration::minutes(1))
            .await
            .unwrap()
    );
    assert!(
        app.store
            .end_account_refresh(&id, "t", soku_core::queue::RefreshEnd::NeedsReconnect, now)
            .await
            .unwrap()
    );
    let done = wait_for_status(
        &app,
        &key,
        &sub,
        &["published", "failed", "partially_published"],
    )
    .await;
    let target = &done["targets"][0];
    assert_eq!(
        target["status"], "unknown",
        "it may have been published: {done}"
    );
    assert!(
        target["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may have published"),
        "{target}"
    );
    assert_eq!(fake.posts().len(), 1);
}

#[tokio::test]
async fn the_dashboard_offers_only_platforms_this_server_can_connect() {
    let x = XFake::start().await;
    let bluesky = FakeBluesky::start().await;
    let unconfigured = PlatformSettings {
        client_id: None,
        client_secret: None,
        ..PlatformSettings::at(&x.url)
    };
    let app = Builder::default()
        .connector(
            Platform::X,
            Arc::new(soku_platforms::x::X::new(unconfigured, media())),
        )
        .connector(
            Platform::Bluesky,
            Arc::new(soku_platforms::bluesky::Bluesky::new(
                PlatformSettings::at(&bluesky.url),
                media(),
                loopback(),
            )),
        )
        .start()
        .await;
    let (uid, key) = app.subscriber().await;
    let cookie = session_cookie(&app, &uid).await;
    let listed: Value = app
        .http
        .get(app.url("/dashboard/api/connectable"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["platforms"],
        json!([{"platform": "bluesky", "name": "Bluesky", "method": "credentials"}])
    );
    // The API says what is missing.
    let r = app
        .post_json("/v1/accounts/connect", &key, &json!({"platform": "x"}))
        .await;
    let body = expect_error(r, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "not_configured");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("SOKU_X_CLIENT_ID"),
        "{body}"
    );
}

#[tokio::test]
async fn x_daily_cap_keeps_the_target_queued_until_the_day_resets() {
    let fake = XFake::start().await;
    fake.set_post_limits(soku_fakes::x::PostLimits {
        per_day_user: Some(1),
        ..Default::default()
    });
    let app = x_app(&fake).await;
    let (uid, key) = app.subscriber().await;
    connect_x(&app, &key).await;
    let first = submit(&app, &key, &text_post("Today's only post", json!(["x"]))).await;
    let done = wait_for_status(&app, &key, &first, &["published", "failed"]).await;
    assert_eq!(done["status"], "published", "{done}");

    let second = submit(&app, &key, &text_post("Over the daily cap", json!(["x"]))).await;
    let read = || async {
        app.get_with_key(&format!("/v1/posts/{second}"), &key)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(10), || async {
            read().await["targets"][0]["error"]["code"] == "rate_limited"
        })
        .await,
        "{}",
        read().await
    );
    // Longer than the engine's backoff (2 s here) several times over: the target waits for X's
    // daily reset, not for the 15-minute window nor the engine's backoff.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = read().await;
    let target = &waiting["targets"][0];
    assert_eq!(target["status"], "queued", "{waiting}");
    assert_eq!(target["attempts"], 1, "{waiting}");
    let message = target["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("24-hour limit for this account") && message.contains("resets at"),
        "{message}"
    );
    assert_eq!(fake.create_calls(), 2);
    assert_eq!(fake.posts().len(), 1);
    let record = app
        .store
        .get_submission(&uid, soku_core::keys::KeyMode::Live, &second)
        .await
        .unwrap()
        .unwrap();
    let due_in = record.targets[0].due_at - chrono::Utc::now();
    assert!(
        due_in > chrono::Duration::hours(23) && due_in <= chrono::Duration::hours(24),
        "the next attempt is due in {due_in}"
    );
}

#[tokio::test]
async fn patch_is_default_moves_a_plain_target_to_another_account() {
    use soku_core::queue::{Account, NewAccount};
    let app = Builder::default()
        .without_engine()
        .connector(
            Platform::Bluesky,
            Arc::new(soku_platforms::bluesky::Bluesky::new(
                PlatformSettings::at("http://127.0.0.1:9"),
                media(),
                loopback(),
            )),
        )
        .start()
        .await;
    let (uid, key) = app.subscriber().await;
    let (other, other_key) = app.subscriber().await;
    // The first account connected on a platform is its default (as connecting makes it).
    let add = |owner: String, id: &'static str, did: &'static str, default: bool| {
        let app = &app;
        async move {
            app.store
                .insert_account(&NewAccount {
                    account: Account {
                        id: id.into(),
                        user_id: owner,
                        platform: Platform::Bluesky,
                        account_id: did.into(),
                        display_name: None,
                        username: None,
                        status: AccountStatus::Active,
                        is_default: default,
                        token_expires_at: None,
                        created_at: chrono::Utc::now(),
                        meta: json!({"pds": "http://127.0.0.1:9"}),
                    },
                    access_token: Some(app.state.secrets.seal("token")),
                    refresh_token: None,
                })
                .await
                .unwrap();
        }
    };
    add(uid.clone(), "acc_first", "did:plc:first", true).await;
    add(uid.clone(), "acc_second", "did:plc:second", false).await;
    add(other.clone(), "acc_theirs", "did:plc:theirs", true).await;

    let plain_target = || async {
        let r = app
            .post_json("/v1/posts", &key, &text_post("hi", json!("bluesky")))
            .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["targets"][0]["accountId"].as_str().unwrap().to_owned()
    };
    assert_eq!(plain_target().await, "did:plc:first");

    let patch = |id: &str, k: &str, body: Value| {
        app.http
            .patch(app.url(&format!("/v1/accounts/{id}")))
            .header("soku-api-key", k)
            .json(&body)
            .send()
    };
    // The body names what to fix.
    for (body, reason) in [
        (json!({}), "required"),
        (json!({"isDefault": false}), "invalid_value"),
    ] {
        let e = expect_error(
            patch("acc_second", &key, body).await.unwrap(),
            400,
            "validation_error",
            None,
        )
        .await;
        assert_eq!(e["error"]["details"]["field"], "isDefault");
        assert_eq!(e["error"]["details"]["reason"], reason);
    }
    let e = expect_error(
        patch("acc_second", &key, json!({"isDefault": "yes"}))
            .await
            .unwrap(),
        400,
        "validation_error",
        None,
    )
    .await;
    assert_eq!(e["error"]["details"]["field"], "isDefault", "{e}");
    // Another user's account is not found, and stays as it was.
    expect_error(
        patch("acc_theirs", &key, json!({"isDefault": true}))
            .await
            .unwrap(),
        404,
        "not_found",
        None,
    )
    .await;
    expect_error(
        patch("acc_second", &other_key, json!({"isDefault": true}))
            .await
            .unwrap(),
        404,
        "not_found",
        None,
    )
    .await;
    assert_eq!(plain_target().await, "did:plc:first");

    let r = patch("acc_second", &key, json!({"isDefault": true}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["id"].as_str(), body["isDefault"].as_bool()),
        (Some("acc_second"), Some(true))
    );
    let listed: Value = app
        .get_with_key("/v1/accounts", &key)
        .await
        .json()
        .await
        .unwrap();
    let defaults: Vec<&str> = listed["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isDefault"] == true)
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["acc_second"]);
    assert_eq!(plain_target().await, "did:plc:second");

    // An ID token works as for DELETE.
    let r = app
        .http
        .patch(app.url("/v1/accounts/acc_first"))
        .bearer_auth(app.token(&uid))
        .json(&json!({"isDefault": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(plain_target().await, "did:plc:first");
}

/// An X connector whose authorization grants `extra` more accounts than X's one (like a
/// Facebook login that manages several Pages), or none at all when `extra` is `None`.
struct ManyAccounts {
    inner: Arc<dyn Connector>,
    extra: Option<usize>,
}

#[async_trait::async_trait]
impl Connector for ManyAccounts {
    async fn publish(
        &self,
        request: &soku_core::connector::PublishRequest,
    ) -> Result<soku_core::connector::PublishedPost, soku_core::connector::PublishError> {
        self.inner.publish(request).await
    }
    async fn find_existing(
        &self,
        request: &soku_core::connector::PublishRequest,
    ) -> Result<soku_core::connector::Existing, soku_core::connector::PublishError> {
        self.inner.find_existing(request).await
    }
    fn connect_method(&self) -> soku_core::connector::ConnectMethod {
        self.inner.connect_method()
    }
    async fn authorize(
        &self,
        request: &soku_core::connector::AuthorizationRequest,
    ) -> Result<soku_core::connector::AuthorizationStart, soku_core::connector::ConnectError> {
        self.inner.authorize(request).await
    }
    async fn exchange_all(
        &self,
        exchange: &soku_core::connector::CodeExchange,
    ) -> Result<Vec<soku_core::connector::ConnectedAccount>, soku_core::connector::ConnectError>
    {
        let Some(extra) = self.extra else {
            return Ok(Vec::new());
        };
        let first = self.inner.exchange(exchange).await?;
        let mut all = vec![first.clone()];
        for i in 0..extra {
            let mut more = first.clone();
            more.account_id = format!("{}-{i}", first.account_id);
            more.username = Some(format!("page{i}"));
            all.push(more);
        }
        Ok(all)
    }
}

/// One authorization that grants several accounts connects them all, each with its own row;
/// one that grants none is refused.
#[tokio::test]
async fn an_authorization_granting_several_accounts_connects_them_all() {
    for extra in [Some(2), None] {
        let fake = XFake::start().await;
        let app = Builder::default()
            .connector(
                Platform::X,
                Arc::new(ManyAccounts {
                    inner: x_connector(&fake),
                    extra,
                }),
            )
            .start()
            .await;
        fake.register_redirect_uri(&app.url("/v1/oauth/x/callback"));
        let (_, key) = app.subscriber().await;
        let callback = approved_callback(&app, &key, None).await;
        let done = no_redirects().get(&callback).send().await.unwrap();
        if extra.is_none() {
            let e = expect_error(done, 400, "validation_error", None).await;
            assert_eq!(e["error"]["details"]["reason"], "no_accounts");
            continue;
        }
        assert_eq!(done.status(), 200);
        let body: Value = done.json().await.unwrap();
        let accounts = body["accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 3);
        assert_eq!(body["account"], accounts[0]);
        let listed: Value = app
            .get_with_key("/v1/accounts", &key)
            .await
            .json()
            .await
            .unwrap();
        let mut names: Vec<String> = listed["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["platform"] == "x")
            .map(|a| a["username"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{listed}");
        assert!(names.contains(&"page0".to_owned()) && names.contains(&"page1".to_owned()));
    }
}
