//! Operations: liveness, readiness, metrics, the built-in issuer's keys and the API document.

use super::docs::CommonErrors;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::state::AppState;
use crate::views::{Health, Readiness};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::Value;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "getHealth",
    responses((status = 200, description = "Up", body = Health), CommonErrors))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "getReadiness",
    responses((status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "`service_unavailable`: the database does not answer", body = crate::views::ErrorEnvelope),
        CommonErrors))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Readiness>> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("The database is not reachable.", e))?;
    Ok(Json(Readiness {
        status: "ready",
        database: state.store.backend(),
    }))
}

/// Prometheus metrics: requests by route template and status, latency histograms,
/// authentication failures by reason, publish outcomes, retries and lag, token refreshes, and
/// the queue (docs/OPERATIONS.md lists them with their alerts).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"), CommonErrors))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state
        .metrics
        .render_all(
            &state.engine_metrics,
            state.store.as_ref(),
            state.clock.now(),
        )
        .await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

/// The public keys of the built-in identity provider.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations", operation_id = "getJwks",
    responses((status = 200, description = "A JSON Web Key Set", body = Value), CommonErrors))]
pub async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.tokens.builtin().jwks().clone())
}

/// This document: OpenAPI 3.1, generated from the routes.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", operation_id = "getOpenApi",
    responses((status = 200, description = "OpenAPI 3.1", body = Value), CommonErrors))]
pub async fn openapi(State(state): State<AppState>) -> Json<Value> {
    Json(state.openapi.get().cloned().unwrap_or(Value::Null))
}
