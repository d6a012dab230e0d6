//! Key lifecycle (spec 4.1): expiry, rotation, scopes, allowed addresses, changes, last use and
//! the audit events that record them.

use crate::util::{Builder, TestApp, audit_events, eventually, expect_error, of_type};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use soku_core::time::rfc3339_millis;

const INVALID_KEY: &str = "Invalid or missing API key.";

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates a key and answers the creation's body.
async fn created(app: &TestApp, token: &str, body: Value) -> Value {
    let response = create(app, token, body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn rotate(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/v1/api-keys/{id}/rotate")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn listing(app: &TestApp, token: &str, id: &str) -> Value {
    let list: Value = app
        .get_with_token("/v1/api-keys", token)
        .await
        .json()
        .await
        .unwrap();
    list["apiKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed"))
}

/// A GET with a key, from `ip` as a trusted proxy names it.
async fn get_from(app: &TestApp, path: &str, key: &str, ip: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("soku-api-key", key)
        .header("x-forwarded-for", ip)
        .header("user-agent", "lifecycle-test/1.0")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn creation_takes_expiry_scopes_and_addresses_and_refuses_bad_ones() {
    let app = TestApp::start().await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let expires = rfc3339_millis(Utc::now() + Duration::days(30));
    let key = created(
        &app,
        &token,
        json!({
            "name": "CI",
            "expiresAt": expires,
            "scopes": ["posts:write", "posts:read"],
            "allowedIps": ["203.0.113.7", "10.1.2.3/16", "2001:db8::/48"],
        }),
    )
    .await;
    assert_eq!(key["expiresAt"], expires.as_str());
    assert_eq!(key["scopes"], json!(["posts:read", "posts:write"]));
    assert_eq!(
        key["allowedIps"],
        json!(["203.0.113.7/32", "10.1.0.0/16", "2001:db8::/48"])
    );
    let listed = listing(&app, &token, key["id"].as_str().unwrap()).await;
    for field in [
        "expiresAt",
        "scopes",
        "allowedIps",
        "lastUsedAt",
        "lastUsedIp",
        "replacedBy",
        "status",
    ] {
        assert!(listed.get(field).is_some(), "{field} missing from {listed}");
    }
    assert_eq!(listed["expiresAt"], key["expiresAt"]);
    assert_eq!(listed["scopes"], key["scopes"]);
    assert_eq!(listed["allowedIps"], key["allowedIps"]);
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["replacedBy"], Value::Null);
    // A key without them: full access, anywhere, no expiry.
    let plain = created(&app, &token, json!({})).await;
    assert_eq!(plain["scopes"], Value::Null);
    assert_eq!(plain["allowedIps"], Value::Null);
    assert_eq!(plain["expiresAt"], Value::Null);

    let past = rfc3339_millis(Utc::now() - Duration::minutes(1));
    let too_far = rfc3339_millis(Utc::now() + Duration::days(2 * 366));
    let twenty_one: Vec<String> = (0..21).map(|i| format!("10.0.0.{i}")).collect();
    // A leap second, a month ahead: JavaScript and Python cannot parse "23:59:60".
    let leap_second = (Utc::now() + Duration::days(30))
        .format("%Y-%m-%dT23:59:60Z")
        .to_string();
    let cases = [
        (json!({"expiresAt": past}), "expiresAt", "in_past"),
        (
            json!({"expiresAt": leap_second}),
            "expiresAt",
            "invalid_value",
        ),
        (json!({"expiresAt": too_far}), "expiresAt", "too_far"),
        (
            json!({"expiresAt": "next week"}),
            "expiresAt",
            "invalid_value",
        ),
        (json!({"scopes": []}), "scopes", "empty"),
        (
            json!({"scopes": ["posts:read", "posts:delete"]}),
            "scopes",
            "unknown_scope",
        ),
        (
            json!({"allowedIps": ["10.0.0.0/33"]}),
            "allowedIps[0]",
            "invalid_value",
        ),
        (
            json!({"allowedIps": ["1.2.3.4", "example.com"]}),
            "allowedIps[1]",
            "invalid_value",
        ),
        (json!({"allowedIps": twenty_one}), "allowedIps", "too_many"),
    ];
    for (body, field, reason) in cases {
        let e = expect_error(
            create(&app, &token, body.clone()).await,
            400,
            "validation_error",
            None,
        )
        .await;
        assert_eq!(e["error"]["details"]["field"], field, "{body}");
        assert_eq!(e["error"]["details"]["reason"], reason, "{body}");
    }
    // Nothing was created by the refused requests.
    let list: Value = app
        .get_with_token("/v1/api-keys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["apiKeys"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_expired_key_gets_the_401_and_is_listed_as_expired() {
    let app = TestApp::start().await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let key = created(
        &app,
        &token,
        json!({"expiresAt": rfc3339_millis(Utc::now() + Duration::milliseconds(1500))}),
    )
    .await;
    let secret = key["apiKey"].as_str().unwrap();
    assert_eq!(app.get_with_key("/v1/me", secret).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    // The cached lookup does not outlive the expiry.
    expect_error(
        app.get_with_key("/v1/me", secret).await,
        401,
        "unauthorized",
        Some(INVALID_KEY),
    )
    .await;
    let listed = listing(&app, &token, key["id"].as_str().unwrap()).await;
    assert_eq!(listed["status"], "expired");
}

#[tokio::test]
async fn rotation_replaces_a_key_after_its_grace_period() {
    let app = TestApp::start().await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let old = created(
        &app,
        &token,
        json!({"name": "Deploy", "mode": "test", "scopes": ["media:read"], "allowedIps": ["127.0.0.1"]}),
    )
    .await;
    let old_id = old["id"].as_str().unwrap();
    let old_secret = old["apiKey"].as_str().unwrap();
    assert_eq!(app.get_with_key("/v1/me", old_secret).await.status(), 200);

    // With a grace period both work; the new key has the old one's name, mode, scopes and
    // addresses.
    let response = rotate(&app, &token, old_id, json!({"gracePeriodHours": 24})).await;
    assert_eq!(response.status(), 201);
    let new: Value = response.json().await.unwrap();
    let new_secret = new["apiKey"].as_str().unwrap();
    assert!(new_secret.starts_with("sk_test_"));
    assert_ne!(new["id"], old["id"]);
    for field in ["name", "mode", "scopes", "allowedIps"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    assert_eq!(app.get_with_key("/v1/me", old_secret).await.status(), 200);
    assert_eq!(app.get_with_key("/v1/me", new_secret).await.status(), 200);
    let listed = listing(&app, &token, old_id).await;
    assert_eq!(listed["replacedBy"], new["id"]);
    assert_eq!(listed["status"], "active");
    let grace_end = chrono::DateTime::parse_from_rfc3339(listed["expiresAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let expected = Utc::now() + Duration::hours(24);
    assert!(
        (grace_end - expected).num_seconds().abs() < 60,
        "{grace_end}"
    );

    // A rotated key cannot be rotated again; a revoked one neither; another user's is 404.
    expect_error(
        rotate(&app, &token, old_id, json!({})).await,
        409,
        "conflict",
        None,
    )
    .await;
    let new_id = new["id"].as_str().unwrap();
    let (other, _) = app.subscriber().await;
    expect_error(
        rotate(&app, &app.token(&other), new_id, json!({})).await,
        404,
        "not_found",
        None,
    )
    .await;
    let e = expect_error(
        rotate(&app, &token, new_id, json!({"gracePeriodHours": 169})).await,
        400,
        "validation_error",
        None,
    )
    .await;
    assert_eq!(e["error"]["details"]["field"], "gracePeriodHours");

    // Without a grace period the old key stops at once.
    let response = rotate(&app, &token, new_id, json!({"gracePeriodHours": 0})).await;
    assert_eq!(response.status(), 201);
    let newest: Value = response.json().await.unwrap();
    expect_error(
        app.get_with_key("/v1/me", new_secret).await,
        401,
        "unauthorized",
        Some(INVALID_KEY),
    )
    .await;
    assert_eq!(
        app.get_with_key("/v1/me", newest["apiKey"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(listing(&app, &token, new_id).await["status"], "expired");
    expect_error(
        rotate(&app, &token, new_id, json!({})).await,
        409,
        "conflict",
        None,
    )
    .await;
    let revoked = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{}", newest["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    expect_error(
        rotate(&app, &token, newest["id"].as_str().unwrap(), json!({})).await,
        409,
        "conflict",
        None,
    )
    .await;

    let events = audit_events(&app, &uid).await;
    let rotations = of_type(&events, "api_key.rotated");
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[1]["keyId"], old_id);
    assert_eq!(rotations[1]["details"]["replacedBy"], new["id"]);
    assert_eq!(of_type(&events, "api_key.revoked").len(), 1);
}

#[tokio::test]
async fn scopes_limit_a_key_to_its_routes_without_revealing_resources() {
    let app = TestApp::start().await;
    let (uid, full) = app.test_subscriber().await;
    let token = app.token(&uid);
    // A post of the user's (test mode), made with the full-access key.
    let post = app
        .post_json(
            "/v1/posts",
            &full,
            &crate::posts::text_post("hi", json!("twitter")),
        )
        .await;
    assert_eq!(post.status(), 200);
    let post: Value = post.json().await.unwrap();
    let post_id = post["postSubmissionId"].as_str().unwrap().to_owned();

    let media_only = created(
        &app,
        &token,
        json!({"mode": "test", "scopes": ["media:read"]}),
    )
    .await;
    let media_only = media_only["apiKey"].as_str().unwrap();
    let readers = created(
        &app,
        &token,
        json!({"mode": "test", "scopes": ["posts:read"]}),
    )
    .await;
    let readers = readers["apiKey"].as_str().unwrap();

    // `GET /v1/me` needs no scope; a covered route answers.
    assert_eq!(app.get_with_key("/v1/me", media_only).await.status(), 200);
    assert_eq!(
        app.get_with_key("/v1/media", media_only).await.status(),
        200
    );
    assert_eq!(app.get_with_key("/v1/posts", readers).await.status(), 200);

    // Outside the scopes: the 403 of spec 4.1, the same for a post that exists and one
    // that does not.
    let mut bodies = Vec::new();
    for path in [
        format!("/v1/posts/{post_id}"),
        "/v1/posts/sub_doesnotexist".to_owned(),
    ] {
        let e = expect_error(
            app.get_with_key(&path, media_only).await,
            403,
            "forbidden",
            Some("This API key does not have the 'posts:read' scope."),
        )
        .await;
        assert_eq!(e["error"]["details"]["requiredScope"], "posts:read");
        bodies.push(e["error"]["details"].clone());
    }
    assert_eq!(bodies[0], bodies[1]);
    let e = expect_error(
        app.post_json("/v1/posts", readers, &json!({})).await,
        403,
        "forbidden",
        Some("This API key does not have the 'posts:write' scope."),
    )
    .await;
    assert_eq!(e["error"]["details"]["requiredScope"], "posts:write");
    let delete = app
        .http
        .delete(app.url("/v1/accounts/acc_whatever"))
        .header("soku-api-key", readers)
        .send()
        .await
        .unwrap();
    expect_error(
        delete,
        403,
        "forbidden",
        Some("This API key does not have the 'accounts:write' scope."),
    )
    .await;
    let upload = app
        .http
        .post(app.url("/v1/media/uploads"))
        .header("soku-api-key", readers)
        .header("content-type", "image/png")
        .body(vec![0u8; 16])
        .send()
        .await
        .unwrap();
    expect_error(
        upload,
        403,
        "forbidden",
        Some("This API key does not have the 'media:write' scope."),
    )
    .await;
    // The full-access key is not restricted.
    assert_eq!(
        app.get_with_key(&format!("/v1/posts/{post_id}"), &full)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn allowed_addresses_refuse_others_with_the_plain_401_and_record_it() {
    let app = Builder::default()
        .trusted_proxies("127.0.0.1/32")
        .start()
        .await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let key = created(
        &app,
        &token,
        json!({"name": "office", "allowedIps": ["203.0.113.0/24"]}),
    )
    .await;
    let (id, secret) = (key["id"].as_str().unwrap(), key["apiKey"].as_str().unwrap());
    assert_eq!(
        get_from(&app, "/v1/me", secret, "203.0.113.5")
            .await
            .status(),
        200
    );
    for _ in 0..3 {
        expect_error(
            get_from(&app, "/v1/me", secret, "198.51.100.1").await,
            401,
            "unauthorized",
            Some(INVALID_KEY),
        )
        .await;
    }
    // The public metrics count it as an unknown key: they would otherwise tell whoever holds a
    // key that it is valid elsewhere.
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"soku_auth_failures_total{reason="key_unknown_or_revoked"} 3"#),
        "{metrics}"
    );
    assert!(!metrics.contains("address"), "{metrics}");
    // One event for the refused address, however often it retries.
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            of_type(&audit_events(&app, &uid).await, "api_key.denied_ip").len() == 1
        })
        .await
    );
    let events_now = audit_events(&app, &uid).await;
    let denied = of_type(&events_now, "api_key.denied_ip")[0];
    assert_eq!(denied["keyId"], id);
    assert_eq!(denied["ip"], "198.51.100.1");
    assert_eq!(denied["userAgent"], "lifecycle-test/1.0");

    // A change of addresses takes effect at once; null is anywhere again.
    let response = patch(&app, &token, id, json!({"allowedIps": ["198.51.100.0/24"]})).await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["allowedIps"], json!(["198.51.100.0/24"]));
    assert_eq!(changed["name"], "office");
    assert_eq!(
        get_from(&app, "/v1/me", secret, "198.51.100.1")
            .await
            .status(),
        200
    );
    assert_eq!(
        get_from(&app, "/v1/me", secret, "203.0.113.5")
            .await
            .status(),
        401
    );
    let response = patch(
        &app,
        &token,
        id,
        json!({"allowedIps": null, "name": "anywhere"}),
    )
    .await;
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["allowedIps"], Value::Null);
    assert_eq!(changed["name"], "anywhere");
    assert_eq!(
        get_from(&app, "/v1/me", secret, "192.0.2.1").await.status(),
        200
    );

    // Bad changes name the field; another user's key is 404; an empty change is refused.
    let e = expect_error(
        patch(&app, &token, id, json!({"allowedIps": ["300.1.1.1"]})).await,
        400,
        "validation_error",
        None,
    )
    .await;
    assert_eq!(e["error"]["details"]["field"], "allowedIps[0]");
    let e = expect_error(
        patch(&app, &token, id, json!({"name": ""})).await,
        400,
        "validation_error",
        None,
    )
    .await;
    assert_eq!(e["error"]["details"]["field"], "name");
    expect_error(
        patch(&app, &token, id, json!({})).await,
        400,
        "validation_error",
        None,
    )
    .await;
    expect_error(
        patch(&app, &token, id, json!({"scopes": ["posts:read"]})).await,
        400,
        "validation_error",
        None,
    )
    .await;
    let (other, _) = app.subscriber().await;
    expect_error(
        patch(&app, &app.token(&other), id, json!({"name": "mine"})).await,
        404,
        "not_found",
        None,
    )
    .await;
    let updates = of_type(&audit_events(&app, &uid).await, "api_key.updated").len();
    assert_eq!(updates, 2);
}

#[tokio::test]
async fn last_use_and_new_addresses_are_recorded_off_the_request_path() {
    let app = Builder::default()
        .trusted_proxies("127.0.0.1/32")
        .start()
        .await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let key = created(&app, &token, json!({"name": "laptop"})).await;
    let (id, secret) = (key["id"].as_str().unwrap(), key["apiKey"].as_str().unwrap());
    for ip in ["192.0.2.10", "192.0.2.11", "192.0.2.10", "192.0.2.10"] {
        assert_eq!(get_from(&app, "/v1/me", secret, ip).await.status(), 200);
    }
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            of_type(&audit_events(&app, &uid).await, "api_key.used_from_new_ip").len() == 2
        })
        .await
    );
    let all = audit_events(&app, &uid).await;
    let mut addresses: Vec<&str> = of_type(&all, "api_key.used_from_new_ip")
        .iter()
        .map(|e| e["ip"].as_str().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["192.0.2.10", "192.0.2.11"]);
    let listed = listing(&app, &token, id).await;
    assert_eq!(listed["lastUsedIp"], "192.0.2.10");
    assert!(listed["lastUsedAt"].is_string());
}

#[tokio::test]
async fn audit_events_are_the_callers_own_paged_newest_first() {
    let app = TestApp::start().await;
    let (uid, key) = app.subscriber().await;
    let token = app.token(&uid);
    for name in ["a", "b", "c"] {
        created(&app, &token, json!({ "name": name })).await;
    }
    let (other, _) = app.subscriber().await;
    let other_token = app.token(&other);
    created(&app, &other_token, json!({"name": "theirs"})).await;

    let first: Value = app
        .get_with_token("/v1/audit-events?limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    let page = first["events"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["type"], "api_key.created");
    assert_eq!(page[0]["details"]["mode"], "live");
    for field in ["id", "type", "at", "keyId", "ip", "userAgent", "details"] {
        assert!(page[0].get(field).is_some(), "{field} missing");
    }
    assert_eq!(page[0]["ip"], "127.0.0.1");
    let cursor = first["nextCursor"].as_str().unwrap();
    let rest: Value = app
        .get_with_token(
            &format!("/v1/audit-events?limit=100&cursor={cursor}"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    let rest = rest["events"].as_array().unwrap();
    // Three created here, one for the subscriber's own key (stored directly).
    assert_eq!(page.len() + rest.len(), 4);
    assert!(
        page.iter()
            .chain(rest)
            .all(|e| e["type"] == "api_key.created")
    );
    assert!(
        page.iter()
            .chain(rest)
            .all(|e| e["details"]["name"] != "theirs")
    );
    expect_error(
        app.get_with_token("/v1/audit-events?cursor=nope", &token)
            .await,
        400,
        "validation_error",
        None,
    )
    .await;
    // An API key does not read them.
    expect_error(
        app.get_with_key("/v1/audit-events", &key).await,
        401,
        "unauthorized",
        Some("Invalid or missing ID token."),
    )
    .await;
}

/// A rotated key that expires gives its replacement the same lifetime, from the rotation, and
/// the settings the old key has at that moment (a change made just before is not lost).
#[tokio::test]
async fn rotation_keeps_the_lifetime_and_the_latest_settings() {
    let app = TestApp::start().await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let old = created(
        &app,
        &token,
        json!({"name": "ci", "expiresAt": rfc3339_millis(Utc::now() + Duration::days(30))}),
    )
    .await;
    let id = old["id"].as_str().unwrap();
    let r = patch(&app, &token, id, json!({"allowedIps": ["192.0.2.0/24"]})).await;
    assert_eq!(r.status(), 200);
    let r = rotate(&app, &token, id, json!({"gracePeriodHours": 1})).await;
    assert_eq!(r.status(), 201);
    let new: Value = r.json().await.unwrap();
    assert_eq!(new["allowedIps"], json!(["192.0.2.0/24"]));
    assert_eq!(new["name"], "ci");
    let expires = chrono::DateTime::parse_from_rfc3339(new["expiresAt"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert!(
        ((expires - Utc::now()) - Duration::days(30))
            .num_seconds()
            .abs()
            < 60,
        "{expires}"
    );
}

#[tokio::test]
async fn a_refused_address_is_looked_up_like_an_unknown_key() {
    // An unknown key's first 401 costs a lookup; a valid key's 401 for an address it does not
    // allow must cost one too, even while the owner's requests keep the key cached, or its
    // speed would tell whoever holds the key that it is valid. Seen from outside: a revocation
    // made in the store (as by another node) takes effect on this node with that lookup.
    let app = Builder::default()
        .trusted_proxies("127.0.0.1/32")
        .start()
        .await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let key = created(
        &app,
        &token,
        json!({"name": "office", "allowedIps": ["203.0.113.0/24"]}),
    )
    .await;
    let (id, secret) = (key["id"].as_str().unwrap(), key["apiKey"].as_str().unwrap());
    let cached = std::time::Instant::now();
    assert_eq!(
        get_from(&app, "/v1/me", secret, "203.0.113.5")
            .await
            .status(),
        200
    );
    app.store
        .revoke_api_key(None, id, Utc::now(), &crate::util::revoked_event())
        .await
        .unwrap();
    expect_error(
        get_from(&app, "/v1/me", secret, "198.51.100.1").await,
        401,
        "unauthorized",
        Some(INVALID_KEY),
    )
    .await;
    let owner = get_from(&app, "/v1/me", secret, "203.0.113.5").await;
    if cached.elapsed() < soku_server::auth::keys::KEY_CACHE_TTL {
        assert_eq!(
            owner.status(),
            401,
            "the refused address was answered from the cache"
        );
    }
}

#[tokio::test]
async fn a_refused_ipv6_network_records_one_event_per_64() {
    // Addresses cycling inside one /64 (one host's privacy addresses, or anyone holding the
    // network) add one `api_key.denied_ip` every ten minutes, not one per address.
    let app = Builder::default()
        .trusted_proxies("127.0.0.1/32")
        .start()
        .await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);
    let key = created(&app, &token, json!({"allowedIps": ["203.0.113.0/24"]})).await;
    let secret = key["apiKey"].as_str().unwrap();
    for ip in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:aaaa:bbbb:cccc:dddd",
        "2001:db8:1:2::1",
        "2001:db8:1:3::1",
    ] {
        expect_error(
            get_from(&app, "/v1/me", secret, ip).await,
            401,
            "unauthorized",
            Some(INVALID_KEY),
        )
        .await;
    }
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            of_type(&audit_events(&app, &uid).await, "api_key.denied_ip").len() == 2
        })
        .await
    );
    let events = audit_events(&app, &uid).await;
    let denied = of_type(&events, "api_key.denied_ip");
    let mut seen: Vec<(&str, &str)> = denied
        .iter()
        .map(|e| {
            (
                e["ip"].as_str().unwrap(),
                e["details"]["address"].as_str().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64")
        ]
    );
}
