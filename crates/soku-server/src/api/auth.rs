//! `POST /v1/auth/login`: email and password of the built-in identity provider, for an ID token
//! of the built-in issuer (the dashboard's sign-in; scripts may use it too).

use super::docs::{BodyErrors, CommonErrors};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ClientOrigin};
use crate::json::Json;
use crate::state::AppState;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use std::net::SocketAddr;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// Signs in with the email and password of the built-in identity provider. Five failed
/// attempts for one email (or fifty from one address) within 15 minutes lock further attempts
/// out until the 15 minutes are over: 429 with `Retry-After`. A wrong password is recorded as
/// `session.sign_in_failed` in the audit log of the user with that email (never the password).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", operation_id = "login",
    request_body(content = LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "An ID token of the built-in issuer", body = crate::views::IdTokenIssued),
        (status = 401, description = "`unauthorized`: the email and password do not match a user", body = crate::views::ErrorEnvelope),
        (status = 429, description = "`rate_limit_exceeded`: too many failed attempts", body = crate::views::ErrorEnvelope),
        BodyErrors, CommonErrors))]
pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ClientOrigin(origin): ClientOrigin,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<crate::views::IdTokenIssued>> {
    let client = peer.map(|Extension(ConnectInfo(addr))| state.client_ip(addr.ip(), &headers));
    crate::service::login::sign_in(&state, &body.email, body.password, client, origin)
        .await
        .map(Json)
}
