//! Health, readiness, metrics and the OpenAPI document.

use crate::util::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let health: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], app.store.backend());
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template() {
    let app = TestApp::start().await;
    let token = app.token("metrics-user");
    for _ in 0..2 {
        app.http
            .delete(app.url("/v1/api-keys/key_abcdefghijklmnopqrst"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    app.http.get(app.url("/v1/me")).send().await.unwrap();
    app.http
        .get(app.url("/v1/no/such/path"))
        .send()
        .await
        .unwrap();
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"soku_http_requests_total{route="/v1/api-keys/{id}",method="DELETE",status="404"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"soku_http_requests_total{route="/v1/me",method="GET",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"soku_http_requests_total{route="unmatched",method="GET",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("key_abcdefghijklmnopqrst"),
        "raw paths never become labels"
    );
    assert!(!text.contains("no/such/path"));
    assert!(
        text.contains(r#"soku_http_request_duration_seconds_count{route="/v1/me"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"soku_auth_failures_total{reason="key_missing"} 1"#),
        "{text}"
    );
}

/// Every route the server answers, with what its documentation must list.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("/healthz", "get", &["200", "500"]),
    ("/readyz", "get", &["200", "503"]),
    ("/metrics", "get", &["200"]),
    ("/.well-known/jwks.json", "get", &["200"]),
    ("/v1/openapi.json", "get", &["200"]),
    ("/v1/me", "get", &["200", "401", "403", "500"]),
    (
        "/v1/auth/login",
        "post",
        &["200", "400", "401", "413", "415", "429", "500"],
    ),
    (
        "/v1/api-keys",
        "post",
        &["201", "400", "401", "413", "415", "500"],
    ),
    ("/v1/api-keys", "get", &["200", "401", "500"]),
    ("/v1/api-keys/{id}", "delete", &["200", "401", "404", "500"]),
    (
        "/v1/api-keys/{id}",
        "patch",
        &["200", "400", "401", "404", "413", "415", "500"],
    ),
    (
        "/v1/api-keys/{id}/rotate",
        "post",
        &["201", "400", "401", "404", "409", "413", "415", "500"],
    ),
    ("/v1/audit-events", "get", &["200", "400", "401", "500"]),
    (
        "/v1/posts",
        "post",
        &["200", "400", "401", "403", "409", "413", "415", "500"],
    ),
    ("/v1/posts", "get", &["200", "400", "401", "403", "500"]),
    (
        "/v1/posts/{id}",
        "get",
        &["200", "401", "403", "404", "500"],
    ),
    (
        "/v1/posts/{id}",
        "delete",
        &["200", "401", "403", "404", "409", "500"],
    ),
    ("/v1/accounts", "get", &["200", "401", "403", "500"]),
    (
        "/v1/accounts/connect",
        "post",
        &[
            "200", "201", "400", "401", "403", "413", "415", "500", "503",
        ],
    ),
    (
        "/v1/accounts/{id}",
        "delete",
        &["204", "401", "403", "404", "500"],
    ),
    (
        "/v1/accounts/{id}",
        "patch",
        &["200", "400", "401", "403", "404", "500"],
    ),
    (
        "/v1/oauth/{platform}/callback",
        "get",
        &["200", "303", "400", "403", "404", "500"],
    ),
    (
        "/v1/sandbox/{platform}/posts",
        "get",
        &["200", "401", "403", "404", "500"],
    ),
    (
        "/v1/media",
        "post",
        &["201", "400", "401", "403", "409", "413", "415", "500"],
    ),
    ("/v1/media", "get", &["200", "400", "401", "403", "500"]),
    (
        "/v1/media/uploads",
        "post",
        &["201", "400", "401", "403", "409", "413", "415", "500"],
    ),
    (
        "/v1/media/{id}",
        "get",
        &["200", "401", "403", "404", "500"],
    ),
    (
        "/v1/media/{id}",
        "delete",
        &["200", "401", "403", "404", "409", "500"],
    ),
    (
        "/v1/secret-scanning/github",
        "post",
        &["200", "400", "401", "413", "415", "500", "503"],
    ),
    (
        "/media/{id}/{file}",
        "get",
        &["200", "206", "304", "404", "416", "500"],
    ),
];

#[tokio::test]
async fn openapi_documents_every_route_with_its_errors() {
    let app = TestApp::start().await;
    let doc: Value = app
        .http
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, operations) in paths {
        for (method, op) in operations.as_object().unwrap() {
            documented += 1;
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('4') || s.starts_with('5')),
                "{method} {path} documents no error response"
            );
            for (status, r) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &r["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorEnvelope",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert_eq!(
        documented,
        ROUTES.len(),
        "a route is documented but not listed here, or the reverse"
    );
    for (path, method, statuses) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        for status in *statuses {
            assert!(
                op["responses"][status].is_object(),
                "{method} {path} lacks {status}"
            );
        }
        // And the route is really served (not 404) by the running server.
        let response = app
            .http
            .request(
                method.to_uppercase().parse().unwrap(),
                app.url(&path.replace("{id}", "key_x").replace("{platform}", "x")),
            )
            .send()
            .await
            .unwrap();
        if path.starts_with("/media/") {
            // A hosted file that does not exist is a 404 of the route itself, not of the router.
            let body: Value = response.json().await.unwrap();
            assert_ne!(
                body["error"]["message"], "No such endpoint.",
                "{method} {path} is documented but not routed"
            );
            continue;
        }
        assert_ne!(
            response.status(),
            404,
            "{method} {path} is documented but not routed"
        );
    }
    assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());
    assert!(doc["components"]["securitySchemes"]["idToken"].is_object());
}

/// Follows a local `$ref` of the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "{r} is not in the document");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// The `type`s a schema's `oneOf` alternatives allow, references followed.
fn alternatives<'a>(doc: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let schema = resolve(doc, schema);
    schema["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("no oneOf in {schema}"))
        .iter()
        .map(|s| resolve(doc, s))
        .collect()
}

#[tokio::test]
async fn openapi_operation_ids_are_unique_and_the_post_body_is_the_real_shape() {
    let app = TestApp::start().await;
    let doc: Value = app
        .http
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids = std::collections::BTreeMap::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, op) in operations.as_object().unwrap() {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            if let Some(other) = ids.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {other} and {method} {path}");
            }
        }
    }
    assert_eq!(ids.len(), ROUTES.len());
    assert_eq!(ids["createPost"], "post /v1/posts");
    assert_eq!(ids["listApiKeys"], "get /v1/api-keys");

    // POST /v1/posts takes CreatePostRequest: post.content.platform is a platform name or an
    // array of platform names and {platform, accountId, text} objects (spec 8.2: a target's own
    // text).
    let body =
        &doc["paths"]["/v1/posts"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let request = resolve(&doc, body);
    assert_eq!(request["required"], json!(["post"]));
    let post = resolve(&doc, &request["properties"]["post"]);
    assert_eq!(post["required"], json!(["content"]));
    let content = resolve(&doc, &post["properties"]["content"]);
    assert!(
        content["required"]
            .as_array()
            .unwrap()
            .contains(&json!("platform")),
        "{content}"
    );
    let platform = alternatives(&doc, &content["properties"]["platform"]);
    assert_eq!(platform.len(), 2, "{platform:?}");
    assert_eq!(platform[0]["type"], "string");
    assert_eq!(platform[1]["type"], "array");
    let item = alternatives(&doc, &platform[1]["items"]);
    assert_eq!(item.len(), 2, "{item:?}");
    assert_eq!(item[0]["type"], "string");
    assert_eq!(item[1]["type"], "object");
    let account = item[1]["properties"].as_object().unwrap();
    assert_eq!(
        account.keys().collect::<Vec<_>>(),
        ["accountId", "platform", "text"],
        "{account:?}"
    );
    assert_eq!(item[1]["required"], json!(["platform"]));
    // No response body is an untyped object where the code has a type.
    for (path, operations) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/v1/") && *path != "/v1/openapi.json" {
            for (method, op) in operations.as_object().unwrap() {
                for (status, r) in op["responses"].as_object().unwrap() {
                    if let Some(schema) = r["content"]["application/json"]["schema"].as_object() {
                        assert!(
                            schema.contains_key("$ref"),
                            "{method} {path} {status} answers an untyped body: {schema:?}"
                        );
                    }
                }
            }
        }
    }
}
