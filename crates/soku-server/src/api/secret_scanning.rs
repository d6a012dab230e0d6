//! `POST /v1/secret-scanning/github`: leaked keys reported by GitHub's secret scanning partner
//! program (spec 4.1). No credential: GitHub's signature over the raw body is the
//! authentication, checked before the body is parsed.

use super::docs::CommonErrors;
use crate::auth::github::{self, SignatureFailure};
use crate::error::{ApiError, ApiResult};
use crate::extract::origin_of;
use crate::json::Json;
use crate::service::secret_scanning::{self, ReportedToken, TokenLabels};
use crate::state::AppState;
use crate::views::ErrorEnvelope;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use soku_core::ErrorCode;

const BAD_SIGNATURE: &str = "Invalid or missing GitHub signature.";

/// Receives GitHub's secret scanning reports. GitHub signs each request: the header
/// `Github-Public-Key-Identifier` names one of the keys it publishes (the setting
/// `SOKU_GITHUB_SECRET_SCANNING_KEYS_URL`), and `Github-Public-Key-Signature` is the base64 of
/// the DER ECDSA P-256 SHA-256 signature of the raw body. Every reported string that is an
/// active key of this server is revoked at once (`api_key.leaked` in its owner's audit log);
/// the answer labels each token by its SHA-256.
#[utoipa::path(post, path = "/v1/secret-scanning/github", tag = "secret-scanning",
    operation_id = "githubSecretScanning",
    params(
        ("Github-Public-Key-Identifier" = String, Header, description = "Which of GitHub's published keys signed the body"),
        ("Github-Public-Key-Signature" = String, Header, description = "Base64 of the DER ECDSA (P-256, SHA-256) signature of the raw body"),
    ),
    request_body(content = Vec<ReportedToken>, content_type = "application/json"),
    responses(
        (status = 200, description = "Each reported token, labelled", body = TokenLabels),
        (status = 400, description = "`validation_error`: a signed body that is not an array of objects with a string `token`", body = ErrorEnvelope),
        (status = 401, description = "`unauthorized`: a missing, malformed or wrong signature, or an unknown key identifier; nothing is revoked", body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`: above 1 MiB, or more than 1,000 tokens; nothing is revoked", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: a body without `Content-Type: application/json`", body = ErrorEnvelope),
        (status = 503, description = "`service_unavailable`: GitHub's keys could not be fetched (GitHub retries)", body = ErrorEnvelope),
        CommonErrors))]
pub async fn github(
    State(state): State<AppState>,
    request: Request,
) -> ApiResult<Json<TokenLabels>> {
    let (parts, body) = request.into_parts();
    // The headers and the key they name are checked before the body is read: a request
    // without a plausible signature costs no more than its headers.
    let signed = github::signature_headers(&parts.headers).map_err(refusal)?;
    let key = state
        .github_keys
        .key(&signed.key_id)
        .await
        .map_err(refusal)?;
    let origin = origin_of(&state, &parts);
    let is_json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    // Within the body limit of every JSON route (1 MiB, 413 above).
    let bytes = Bytes::from_request(Request::from_parts(parts, body), &state)
        .await
        .map_err(|rejection| ApiError::for_framework_status(rejection.status(), "POST"))?;
    if !github::verifies(&key, &signed.signature, &bytes) {
        return Err(refusal(SignatureFailure::Rejected(
            "signature does not verify",
        )));
    }
    if !is_json {
        return Err(ApiError::for_framework_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST",
        ));
    }
    let tokens = secret_scanning::parse_report(&bytes)?;
    secret_scanning::report_from_github(&state, origin, tokens)
        .await
        .map(Json)
}

fn refusal(failure: SignatureFailure) -> ApiError {
    match failure {
        SignatureFailure::Rejected(why) => {
            let mut e = ApiError::new(ErrorCode::Unauthorized, BAD_SIGNATURE);
            e.cause = Some(format!("GitHub secret scanning report refused: {why}"));
            e
        }
        SignatureFailure::KeysUnavailable => ApiError::unavailable(
            "GitHub's secret scanning keys could not be fetched; try again later.",
            "no GitHub secret scanning key could be fetched",
        ),
        SignatureFailure::NotYetKnown => ApiError::unavailable(
            "The signing key is not known yet; try again later.",
            "unknown GitHub key identifier within a minute of the last refetch",
        ),
    }
}
