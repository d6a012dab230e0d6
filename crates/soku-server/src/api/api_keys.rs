//! API key management with an ID token (spec section 4).

use super::docs::{BodyErrors, CommonErrors, IdTokenErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdTokenUser};
use crate::json::Json;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use soku_core::keys::KeyMode;
use soku_core::model::{ApiKey, new_api_key, normalize_key_name};
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// 1 to 100 characters after trimming.
    #[serde(default)]
    name: Option<String>,
    /// `live` (default) or `test`.
    #[serde(default)]
    mode: Option<ModeParam>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ModeParam {
    Live,
    Test,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The full key. This is the only time it is shown.
    api_key: String,
    id: String,
    name: Option<String>,
    mode: String,
    preview: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyListing {
    id: String,
    name: Option<String>,
    /// `sk_live_abc...xyz`
    preview: String,
    mode: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    /// `active` or `revoked`.
    status: String,
}

impl From<&ApiKey> for KeyListing {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            preview: k.preview.clone(),
            mode: k.mode.as_str().to_owned(),
            created_at: rfc3339_millis(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339_millis),
            revoked_at: k.revoked_at.map(rfc3339_millis),
            status: k.status().to_owned(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    api_keys: Vec<KeyListing>,
}

/// Creates an API key. The full key is in this response and nowhere else, ever.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("idToken" = [])),
    request_body(content = CreateKeyRequest, content_type = "application/json"),
    responses((status = 201, description = "Created", body = CreatedKey), BodyErrors, IdTokenErrors, CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    IdTokenUser(user): IdTokenUser,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let name = normalize_key_name(body.name.as_deref()).map_err(|reason| {
        ApiError::validation(
            "name",
            reason,
            "The 'name' field must be 1 to 100 characters after trimming, without control characters.",
        )
    })?;
    let mode = match body.mode {
        Some(ModeParam::Test) => KeyMode::Test,
        Some(ModeParam::Live) | None => KeyMode::Live,
    };
    let (record, generated) = new_api_key(&user.user_id, name, mode, state.clock.now());
    state.store.insert_api_key(&record).await?;
    tracing::info!(key_id = %record.id, mode = mode.as_str(), "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            api_key: generated.secret,
            id: record.id,
            name: record.name,
            mode: mode.as_str().to_owned(),
            preview: record.preview,
            created_at: rfc3339_millis(record.created_at),
        }),
    ))
}

/// The caller's keys, newest first: never the full key or its hash.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("idToken" = [])),
    responses((status = 200, description = "The caller's keys", body = KeyList), IdTokenErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    IdTokenUser(user): IdTokenUser,
) -> ApiResult<Json<KeyList>> {
    let keys = state.store.list_api_keys(&user.user_id).await?;
    Ok(Json(KeyList {
        api_keys: keys.iter().map(KeyListing::from).collect(),
    }))
}

/// Revokes one of the caller's keys, at once: the next request with it gets 401.
/// Another user's key id answers 404.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("idToken" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "Revoked (or already revoked)", body = KeyListing), IdTokenErrors, CommonErrors))]
pub async fn revoke(
    State(state): State<AppState>,
    IdTokenUser(user): IdTokenUser,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyListing>> {
    let revoked = state
        .store
        .revoke_api_key(Some(&user.user_id), &id, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    state.keys.evict(&revoked.id);
    tracing::info!(key_id = %revoked.id, "API key revoked");
    Ok(Json(KeyListing::from(&revoked)))
}
