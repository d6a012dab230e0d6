//! `GET /v1/accounts`: the caller's connected accounts, never their tokens. A test key sees
//! its simulated accounts.

use super::docs::{ApiKeyErrors, CommonErrors};
use crate::error::ApiResult;
use crate::extract::ApiKeyAuth;
use crate::json::Json;
use crate::state::AppState;
use axum::extract::State;
use serde_json::{Value, json};
use soku_core::accounts::test_account_id;
use soku_core::keys::KeyMode;
use soku_core::platform::Platform;
use soku_core::time::rfc3339_millis;

/// Connected accounts (live key) or the simulated ones (test key).
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", security(("apiKey" = [])),
    responses((status = 200, description = "`{accounts: [...]}`", body = Value), ApiKeyErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
) -> ApiResult<Json<Value>> {
    let grant = caller.grant().expect("an API-key caller has a grant");
    list_for(&state, &grant.user, caller.mode).await
}

/// `GET /v1/accounts` for a user and mode.
pub async fn list_for(
    state: &AppState,
    user: &soku_core::model::User,
    mode: KeyMode,
) -> ApiResult<Json<Value>> {
    let accounts: Vec<Value> = match mode {
        KeyMode::Test => Platform::ALL
            .iter()
            .map(|p| {
                json!({
                    "id": test_account_id(*p),
                    "platform": p.as_str(),
                    "accountId": test_account_id(*p),
                    "displayName": format!("Simulated {}", p.display_name()),
                    "username": test_account_id(*p),
                    "status": "active",
                    "isDefault": true,
                    "tokenExpiresAt": null,
                    "createdAt": rfc3339_millis(user.created_at),
                    "simulated": true,
                })
            })
            .collect(),
        KeyMode::Live => state
            .store
            .list_accounts(&user.id)
            .await?
            .iter()
            .map(super::connect::account_json)
            .collect(),
    };
    Ok(Json(json!({ "accounts": accounts })))
}
