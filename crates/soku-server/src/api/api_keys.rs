//! API key management with an ID token (spec section 4).

use super::docs::{BodyErrors, CommonErrors, IdTokenErrors};
use crate::error::ApiResult;
use crate::extract::{ApiJson, IdTokenUser};
use crate::json::Json;
use crate::service::keys::{self, CreateKeyRequest};
use crate::state::AppState;
use crate::views::{CreatedKey, KeyList, KeyListing};
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// Creates an API key. The full key is in this response and nowhere else, ever.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", operation_id = "createApiKey",
    security(("idToken" = [])),
    request_body(content = CreateKeyRequest, content_type = "application/json"),
    responses((status = 201, description = "Created", body = CreatedKey), BodyErrors, IdTokenErrors, CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let created = keys::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The caller's keys, newest first: never the full key or its hash.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", operation_id = "listApiKeys",
    security(("idToken" = [])),
    responses((status = 200, description = "The caller's keys", body = KeyList), IdTokenErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
) -> ApiResult<Json<KeyList>> {
    keys::list(&state, &caller).await.map(Json)
}

/// Revokes one of the caller's keys, at once: the next request with it gets 401.
/// Another user's key id answers 404.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", operation_id = "revokeApiKey",
    security(("idToken" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 200, description = "Revoked (or already revoked)", body = KeyListing), IdTokenErrors, CommonErrors))]
pub async fn revoke(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyListing>> {
    keys::revoke(&state, &caller, &id).await.map(Json)
}
