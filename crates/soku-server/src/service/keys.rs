//! API keys (spec section 4): create, list and revoke the caller's keys.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{CreatedKey, KeyList, KeyListing};
use serde::Deserialize;
use soku_core::keys::KeyMode;
use soku_core::model::{new_api_key, normalize_key_name};
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

/// The body of `POST /v1/api-keys`.
#[derive(Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// 1 to 100 characters after trimming.
    #[serde(default)]
    pub name: Option<String>,
    /// `live` (default) or `test`.
    #[serde(default)]
    pub mode: Option<ModeParam>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ModeParam {
    Live,
    Test,
}

/// Creates a key for the caller. The full key is in the answer and nowhere else, ever.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: CreateKeyRequest,
) -> ApiResult<CreatedKey> {
    let name = normalize_key_name(request.name.as_deref()).map_err(|reason| {
        ApiError::validation(
            "name",
            reason,
            "The 'name' field must be 1 to 100 characters after trimming, without control characters.",
        )
    })?;
    let mode = match request.mode {
        Some(ModeParam::Test) => KeyMode::Test,
        Some(ModeParam::Live) | None => KeyMode::Live,
    };
    let (record, generated) = new_api_key(&caller.user_id, name, mode, state.clock.now());
    state.store.insert_api_key(&record).await?;
    tracing::info!(key_id = %record.id, mode = mode.as_str(), "API key created");
    Ok(CreatedKey {
        api_key: generated.secret,
        id: record.id,
        name: record.name,
        mode: mode.as_str(),
        preview: record.preview,
        created_at: rfc3339_millis(record.created_at),
    })
}

/// The caller's keys, newest first: never the full key or its hash.
pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<KeyList> {
    let keys = state.store.list_api_keys(&caller.user_id).await?;
    Ok(KeyList {
        api_keys: keys.iter().map(KeyListing::from).collect(),
    })
}

/// Revokes one of the caller's keys, at once; another user's key is 404.
pub async fn revoke(state: &AppState, caller: &Caller, id: &str) -> ApiResult<KeyListing> {
    let revoked = state
        .store
        .revoke_api_key(Some(&caller.user_id), id, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    state.keys.evict(&revoked.id);
    tracing::info!(key_id = %revoked.id, "API key revoked");
    Ok(KeyListing::from(&revoked))
}
