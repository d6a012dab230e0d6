//! Key management with an ID token (spec section 4).

use crate::util::{TestApp, expect_error};
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn create_use_list_and_revoke() {
    let app = TestApp::start().await;
    let (uid, _) = app.subscriber().await;
    let token = app.token(&uid);

    let response = create(
        &app,
        &token,
        json!({"name": "  Production Server  ", "mode": "live"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let secret = created["apiKey"].as_str().unwrap().to_owned();
    assert!(soku_core::keys::parse(&secret).is_some(), "{secret}");
    assert!(secret.starts_with("sk_live_"));
    assert_eq!(created["name"], "Production Server");
    assert_eq!(created["createdAt"].as_str().unwrap().len(), 24);
    let id = created["id"].as_str().unwrap().to_owned();

    // The new key works at once.
    assert_eq!(app.get_with_key("/v1/me", &secret).await.status(), 200);

    let test_key: Value = create(&app, &token, json!({"mode": "test"}))
        .await
        .json()
        .await
        .unwrap();
    assert!(test_key["apiKey"].as_str().unwrap().starts_with("sk_test_"));
    assert_eq!(test_key["name"], Value::Null);

    let list = app.get_with_token("/v1/api-keys", &token).await;
    assert_eq!(list.status(), 200);
    let text = list.text().await.unwrap();
    assert!(!text.contains(&secret), "the full key is never listed");
    assert!(!text.contains("apiKey\""), "{text}");
    assert!(!text.to_lowercase().contains("hash"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let keys = list["apiKeys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        3,
        "the subscriber's own key and the two created here"
    );
    let mine = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
    let body = &secret[8..];
    assert_eq!(
        mine["preview"],
        format!("sk_live_{}...{}", &body[..3], &body[body.len() - 3..])
    );
    assert_eq!(mine["status"], "active");
    assert_eq!(mine["revokedAt"], Value::Null);
    for field in [
        "id",
        "name",
        "preview",
        "createdAt",
        "lastUsedAt",
        "revokedAt",
        "status",
    ] {
        assert!(mine.get(field).is_some(), "{field} missing from {mine}");
    }

    let response = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert_eq!(revoked["id"], id.as_str());
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked["revokedAt"].is_string());

    // Immediate: the very next request is refused.
    expect_error(
        app.get_with_key("/v1/me", &secret).await,
        401,
        "unauthorized",
        Some("Invalid or missing API key."),
    )
    .await;

    // Revoking again keeps the first revocation time.
    let again: Value = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["revokedAt"], revoked["revokedAt"]);
}

#[tokio::test]
async fn users_see_and_revoke_only_their_own_keys() {
    let app = TestApp::start().await;
    let (alice, alice_key) = app.subscriber().await;
    let (bob, _) = app.subscriber().await;
    let alice_key_id = app.store.list_api_keys(&alice).await.unwrap()[0].id.clone();
    let bob_token = app.token(&bob);

    let list: Value = app
        .get_with_token("/v1/api-keys", &bob_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list["apiKeys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != alice_key_id.as_str())
    );

    let response = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{alice_key_id}")))
        .bearer_auth(&bob_token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found", None).await;
    let response = app
        .http
        .delete(app.url("/v1/api-keys/key_doesnotexist"))
        .bearer_auth(&bob_token)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found", None).await;
    assert_eq!(app.get_with_key("/v1/me", &alice_key).await.status(), 200);
}

#[tokio::test]
async fn a_new_user_starts_with_no_keys_and_is_created_on_first_sight() {
    let app = TestApp::start().await;
    // A token for a user the database has never seen (as with a fresh Firebase sign-in).
    let token = app.token("fresh-user");
    let list: Value = app
        .get_with_token("/v1/api-keys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({"apiKeys": []}));
    assert!(app.store.get_user("fresh-user").await.unwrap().is_some());
}

#[tokio::test]
async fn a_body_is_optional() {
    let app = TestApp::start().await;
    let token = app.token("u-empty");
    let response = app
        .http
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created["apiKey"].as_str().unwrap().starts_with("sk_live_"));
}

#[tokio::test]
async fn bad_names_and_modes_are_named() {
    let app = TestApp::start().await;
    let token = app.token("u-validation");
    let cases = [
        (json!({"name": "x".repeat(101)}), "name", "too_long"),
        (json!({"name": "   "}), "name", "invalid_value"),
        (json!({"name": 5}), "name", "invalid_type"),
        (json!({"mode": "prod"}), "mode", "invalid_value"),
        (json!({"mode": true}), "mode", "invalid_type"),
        // A misspelt restriction is refused: ignored, it would make a key with full access,
        // from anywhere, that never expires.
        (
            json!({"name": "ci", "scope": ["posts:read"]}),
            "scope",
            "unknown_field",
        ),
        (
            json!({"allowedIPs": ["10.0.0.1"]}),
            "allowedIPs",
            "unknown_field",
        ),
        (
            json!({"expires_at": "2027-01-01T00:00:00Z"}),
            "expires_at",
            "unknown_field",
        ),
    ];
    for (body, field, reason) in cases {
        let response = create(&app, &token, body.clone()).await;
        let error = expect_error(response, 400, "validation_error", None).await;
        assert_eq!(error["error"]["details"]["field"], field, "{body}");
        assert_eq!(error["error"]["details"]["reason"], reason, "{body}");
    }
    // A 100-character name is fine.
    assert_eq!(
        create(&app, &token, json!({"name": "é".repeat(100)}))
            .await
            .status(),
        201
    );
    let list: Value = app
        .get_with_token("/v1/api-keys", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["apiKeys"].as_array().unwrap().len(),
        1,
        "no failed attempt created a key"
    );
}
