//! `GET /v1/me` (spec 3.4): a cheap call to check a key.

use super::docs::{ApiKeyErrors, CommonErrors};
use crate::extract::ApiKeyAuth;
use crate::json::Json;
use crate::state::AppState;
use axum::extract::State;
use serde::Serialize;
use soku_core::model::RateLimitTier;
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    user_id: String,
    key: MeKey,
    subscription: MeSubscription,
    /// `default`, `authenticated`, `premium` or `admin`.
    rate_limit_tier: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeKey {
    id: String,
    name: Option<String>,
    /// `live` or `test`.
    mode: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeSubscription {
    status: String,
    current_period_end: String,
}

/// Who this API key belongs to, its mode, the subscription and the rate-limit tier.
#[utoipa::path(get, path = "/v1/me", tag = "account", operation_id = "getMe", security(("apiKey" = [])),
    responses((status = 200, description = "The key is valid", body = MeResponse), ApiKeyErrors, CommonErrors))]
pub async fn me(State(state): State<AppState>, ApiKeyAuth(caller): ApiKeyAuth) -> Json<MeResponse> {
    let grant = caller.grant().expect("an API-key caller has a grant");
    let now = state.clock.now();
    // The gate has passed, so there is a subscription.
    let (status, end) = grant
        .subscription
        .as_ref()
        .map(|s| {
            (
                s.status.as_str().to_owned(),
                rfc3339_millis(s.current_period_end),
            )
        })
        .unwrap_or_default();
    Json(MeResponse {
        user_id: grant.user.id.clone(),
        key: MeKey {
            id: grant.key.id.clone(),
            name: grant.key.name.clone(),
            mode: grant.key.mode.as_str().to_owned(),
        },
        subscription: MeSubscription {
            status,
            current_period_end: end,
        },
        rate_limit_tier: RateLimitTier::for_user(grant.user.role, grant.subscription.as_ref(), now)
            .as_str()
            .to_owned(),
    })
}
