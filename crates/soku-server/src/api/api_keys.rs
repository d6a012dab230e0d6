//! API key management with an ID token (spec 4 and 4.1), and the caller's audit events.

use super::docs::{BodyErrors, CommonErrors, IdTokenErrors};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ClientOrigin, IdTokenUser};
use crate::json::Json;
use crate::service::keys::{
    self, CreateKeyRequest, ListAuditEvents, RotateKeyRequest, UpdateKeyRequest,
};
use crate::state::AppState;
use crate::views::{AuditPage, CreatedKey, ErrorEnvelope, KeyList, KeyListing};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

/// Creates an API key. The full key is in this response and nowhere else, ever.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", operation_id = "createApiKey",
    security(("idToken" = [])),
    request_body(content = CreateKeyRequest, content_type = "application/json"),
    responses((status = 201, description = "Created", body = CreatedKey), BodyErrors, IdTokenErrors, CommonErrors))]
pub async fn create(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let created = keys::create(&state, &caller, origin, body).await?;
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
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyListing>> {
    keys::revoke(&state, &caller, origin, &id).await.map(Json)
}

/// Changes a key's name or allowed addresses.
#[utoipa::path(patch, path = "/v1/api-keys/{id}", tag = "api-keys", operation_id = "updateApiKey",
    security(("idToken" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = UpdateKeyRequest, content_type = "application/json"),
    responses((status = 200, description = "Changed", body = KeyListing), BodyErrors, IdTokenErrors, CommonErrors))]
pub async fn update(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateKeyRequest>,
) -> ApiResult<Json<KeyListing>> {
    keys::update(&state, &caller, origin, &id, body)
        .await
        .map(Json)
}

/// Replaces an active key by a new one (same name, mode, scopes and allowed addresses). The
/// old key keeps working for the grace period, then gets 401 and is listed as `expired`.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", operation_id = "rotateApiKey",
    security(("idToken" = [])),
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = RotateKeyRequest, content_type = "application/json"),
    responses((status = 201, description = "The new key", body = CreatedKey),
        (status = 409, description = "`conflict`: the key is revoked, expired or already rotated", body = ErrorEnvelope),
        BodyErrors, IdTokenErrors, CommonErrors))]
pub async fn rotate(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
    ClientOrigin(origin): ClientOrigin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let created = keys::rotate(&state, &caller, origin, &id, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The caller's security events, newest first, kept 90 days.
#[utoipa::path(get, path = "/v1/audit-events", tag = "api-keys", operation_id = "listAuditEvents",
    security(("idToken" = [])),
    params(ListAuditEvents),
    responses((status = 200, description = "A page of events", body = AuditPage),
        (status = 400, description = "`validation_error`: a bad `limit` or `cursor`", body = ErrorEnvelope),
        IdTokenErrors, CommonErrors))]
pub async fn audit_events(
    State(state): State<AppState>,
    IdTokenUser(caller): IdTokenUser,
    Query(query): Query<ListAuditEvents>,
) -> ApiResult<Json<AuditPage>> {
    keys::audit_events(&state, &caller, &query).await.map(Json)
}
