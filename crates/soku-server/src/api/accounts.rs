//! `GET /v1/accounts`: the caller's connected accounts, never their tokens. A test key sees
//! its simulated accounts. `PATCH /v1/accounts/{id}` makes one its platform's default.

use super::docs::{ApiKeyErrors, BodyErrors, CommonErrors};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiKeyAuth, KeyOrToken};
use crate::json::Json;
use crate::service::accounts::{self, UpdateAccountRequest};
use crate::state::AppState;
use crate::views::{AccountList, AccountView};
use axum::extract::{Path, State};

/// Connected accounts (live key) or the simulated ones (test key).
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", operation_id = "listAccounts",
    security(("apiKey" = ["accounts:read"])),
    responses((status = 200, description = "The accounts", body = AccountList), ApiKeyErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
) -> ApiResult<Json<AccountList>> {
    accounts::list(&state, &caller).await.map(Json)
}

/// Makes one of the caller's accounts the default of its platform: a plain platform target
/// (no `accountId`) publishes to it. Another user's account id answers 404.
#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts",
    operation_id = "updateAccount",
    security(("apiKey" = ["accounts:write"]), ("idToken" = [])),
    params(("id" = String, Path, description = "The account's `id` from GET /v1/accounts")),
    request_body(content = UpdateAccountRequest, content_type = "application/json"),
    responses((status = 200, description = "The account, now its platform's default", body = AccountView),
        BodyErrors, ApiKeyErrors, CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    KeyOrToken(caller): KeyOrToken,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateAccountRequest>,
) -> ApiResult<Json<AccountView>> {
    accounts::update(&state, &caller, &id, body).await.map(Json)
}
