//! `GET /v1/accounts`: the caller's connected accounts, never their tokens. A test key sees
//! its simulated accounts.

use super::docs::{ApiKeyErrors, CommonErrors};
use crate::error::ApiResult;
use crate::extract::ApiKeyAuth;
use crate::json::Json;
use crate::service::accounts;
use crate::state::AppState;
use crate::views::AccountList;
use axum::extract::State;

/// Connected accounts (live key) or the simulated ones (test key).
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", operation_id = "listAccounts",
    security(("apiKey" = [])),
    responses((status = 200, description = "The accounts", body = AccountList), ApiKeyErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
) -> ApiResult<Json<AccountList>> {
    accounts::list(&state, &caller).await.map(Json)
}
