//! `GET /v1/me` (spec 3.4): a cheap call to check a key.

use super::docs::{ApiKeyErrors, CommonErrors};
use crate::extract::ApiKeyAuth;
use crate::json::Json;
use crate::service::accounts;
use crate::state::AppState;
use crate::views::MeResponse;
use axum::extract::State;

/// Who this API key belongs to, its mode, the subscription and the rate-limit tier.
#[utoipa::path(get, path = "/v1/me", tag = "account", operation_id = "getMe", security(("apiKey" = [])),
    responses((status = 200, description = "The key is valid", body = MeResponse), ApiKeyErrors, CommonErrors))]
pub async fn me(State(state): State<AppState>, ApiKeyAuth(caller): ApiKeyAuth) -> Json<MeResponse> {
    Json(accounts::me(&state, &caller))
}
