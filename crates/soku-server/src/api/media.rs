//! Media (spec 8.1): `POST /v1/media` (import by URL), `POST /v1/media/uploads` (the bytes as
//! the body), `GET /v1/media`, `GET|DELETE /v1/media/{id}`, and the hosted files at
//! `GET|HEAD /media/{id}/{file}`.

use super::docs::{ApiKeyErrors, BodyErrors, CommonErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiKeyAuth, IDEMPOTENCY_KEY, MediaUpload};
use crate::json::Json;
use crate::service::media::{self, ImportMedia, ListMedia};
use crate::service::posts::idempotency_key;
use crate::state::AppState;
use crate::views::{ErrorEnvelope, MediaCreated, MediaPageView, MediaView};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    IF_RANGE, RANGE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// Imports the file at `url` and hosts it.
#[utoipa::path(post, path = "/v1/media", tag = "media", operation_id = "importMedia",
    security(("apiKey" = ["media:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; default: derived from the body (the same URL twice gives the same file within 24 hours)")),
    request_body(content = ImportMedia, content_type = "application/json"),
    responses(
        (status = 201, description = "Hosted (or replayed, with `Idempotent-Replayed: true`)", body = MediaView),
        (status = 409, description = "`idempotency_conflict`: the key was used for another request", body = ErrorEnvelope),
        BodyErrors, ApiKeyErrors, CommonErrors))]
pub async fn import(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ImportMedia>,
) -> ApiResult<MediaCreated> {
    let key = idempotency_key(headers.get(&IDEMPOTENCY_KEY))?;
    media::import(&state, &caller, body, key).await
}

/// Takes the file itself as the body and hosts it.
#[utoipa::path(post, path = "/v1/media/uploads", tag = "media", operation_id = "uploadMedia",
    security(("apiKey" = ["media:write"])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; default: derived from the bytes (the same file twice gives the same media within 24 hours)"),
        ("Content-Length" = u64, Header, description = "Required: the file's size")),
    request_body(content = Vec<u8>, description = "The file: an image (JPEG, PNG, GIF, WebP; up to 50 MB) or a video (MP4, MOV, WebM, MKV; up to 500 MB). Content-Type: its type, or application/octet-stream; the real type is read from the bytes.",
        content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Hosted (or replayed, with `Idempotent-Replayed: true`)", body = MediaView),
        (status = 400, description = "`upload_failed` (`details.reason`: `empty`, `unsupported_type`, `invalid_file`, `too_large` for dimensions, `truncated`) or `validation_error` (no Content-Length)", body = ErrorEnvelope),
        (status = 409, description = "`idempotency_conflict`: the key was used for another file", body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`: above the type's limit", body = ErrorEnvelope),
        (status = 415, description = "`unsupported_media_type`: a Content-Type that is not an accepted image or video type", body = ErrorEnvelope),
        ApiKeyErrors, CommonErrors))]
pub async fn upload(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    upload: MediaUpload,
) -> ApiResult<MediaCreated> {
    let MediaUpload {
        declared,
        idempotency_key,
        body,
    } = upload;
    media::upload(&state, &caller, declared, body, idempotency_key).await
}

/// The caller's files, newest first, with cursor pagination.
#[utoipa::path(get, path = "/v1/media", tag = "media", operation_id = "listMedia",
    security(("apiKey" = ["media:read"])),
    params(ListMedia),
    responses((status = 200, description = "A page of files", body = MediaPageView),
        (status = 400, description = "`validation_error`: a bad limit or cursor", body = ErrorEnvelope), ApiKeyErrors, CommonErrors))]
pub async fn list(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Query(query): Query<ListMedia>,
) -> ApiResult<Json<MediaPageView>> {
    media::list(&state, &caller, &query).await.map(Json)
}

/// One of the caller's files.
#[utoipa::path(get, path = "/v1/media/{id}", tag = "media", operation_id = "getMedia",
    security(("apiKey" = ["media:read"])),
    params(("id" = String, Path, description = "The media id")),
    responses((status = 200, description = "The file", body = MediaView), ApiKeyErrors, CommonErrors))]
pub async fn get(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<MediaView>> {
    media::get(&state, &caller, &id).await.map(Json)
}

/// Deletes one of the caller's files; its hosted URL stops working.
#[utoipa::path(delete, path = "/v1/media/{id}", tag = "media", operation_id = "deleteMedia",
    security(("apiKey" = ["media:write"])),
    params(("id" = String, Path, description = "The media id")),
    responses((status = 200, description = "Deleted: the file as it was", body = MediaView),
        (status = 409, description = "`conflict`: a post that has not finished publishing uses it", body = ErrorEnvelope),
        ApiKeyErrors, CommonErrors))]
pub async fn delete(
    State(state): State<AppState>,
    ApiKeyAuth(caller): ApiKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<MediaView>> {
    media::delete(&state, &caller, &id).await.map(Json)
}

static NOSNIFF: HeaderName = HeaderName::from_static("x-content-type-options");
static CSP: HeaderName = HeaderName::from_static("content-security-policy");

/// A hosted file, without authentication (the id is unguessable): `Range` (one range; 206),
/// `HEAD`, `If-None-Match` (304, weak comparison) and `If-Range`, an `ETag` of the file's
/// SHA-256, and a year's immutable caching (the bytes under a URL never change). Streamed from
/// the media store.
#[utoipa::path(get, path = "/media/{id}/{file}", tag = "media", operation_id = "getHostedFile",
    params(("id" = String, Path, description = "The media id"), ("file" = String, Path, description = "The file name in the media's `url`")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 416, description = "The range is outside the file", body = ErrorEnvelope),
        CommonErrors))]
pub async fn hosted(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(record) = media::hosted(&state, &id, &file).await? else {
        return Err(ApiError::not_found("file"));
    };
    let size = record.facts.size;
    let etag = format!("\"{}\"", record.sha256);
    let mut out = HeaderMap::new();
    out.insert(CONTENT_TYPE, HeaderValue::from_static(record.facts.mime));
    out.insert(ETAG, HeaderValue::from_str(&etag).expect("hex"));
    out.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    out.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(NOSNIFF.clone(), HeaderValue::from_static("nosniff"));
    out.insert(
        CSP.clone(),
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );

    // If-None-Match compares weakly (RFC 9110 13.1.2): W/"<etag>" matches too.
    if headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
    {
        // A body of no declared length: axum gives an empty body `Content-Length: 0`, which is
        // not the file's length and must not be sent with a 304.
        let none = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
        return Ok((StatusCode::NOT_MODIFIED, out, Body::from_stream(none)).into_response());
    }
    // If-Range compares strongly: a weak tag never matches.
    let if_range_holds = headers
        .get(IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    // Two `Range` fields are served whole, like two ranges in one.
    let mut asked = headers.get_all(RANGE).iter();
    let only_range = match (asked.next(), asked.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    };
    let range = match only_range.filter(|_| if_range_holds) {
        None => None,
        Some(v) => match parse_range(v.to_str().unwrap_or(""), size) {
            RangeAsked::Ignore => None,
            RangeAsked::Bytes(r) => Some(r),
            RangeAsked::Unsatisfiable => {
                return Err(ApiError::new(
                    soku_core::ErrorCode::ValidationError,
                    "The requested range is outside the file.",
                )
                .with_header(
                    CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                )
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE));
            }
        },
    };
    let (status, length) = match &range {
        Some(r) => {
            out.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
                    .expect("ascii"),
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, size),
    };
    out.insert(CONTENT_LENGTH, HeaderValue::from(length));
    if method == Method::HEAD || length == 0 {
        return Ok((status, out).into_response());
    }
    let stream = match state
        .media
        .library
        .storage
        .read(&record.storage_key, range)
        .await
    {
        Ok(s) => s,
        Err(soku_media::StorageError::NotFound) => {
            tracing::error!(media_id = %record.id, "a media row's file is missing from the store");
            return Err(ApiError::not_found("file"));
        }
        Err(e) => {
            return Err(ApiError::unavailable(
                "The media store did not answer; try again.",
                e,
            ));
        }
    };
    Ok((status, out, Body::from_stream(stream)).into_response())
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    /// Serve the whole file: no byte ranges, several ranges, or a form this server does not
    /// serve (RFC 9110 lets a server ignore `Range`).
    Ignore,
    Bytes(std::ops::Range<u64>),
    /// 416.
    Unsatisfiable,
}

/// One `bytes=` range (the unit in any case): `a-b`, `a-` or `-n` (the last n bytes).
fn parse_range(header: &str, size: u64) -> RangeAsked {
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangeAsked::Ignore;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeAsked::Ignore;
    }
    if spec.contains(',') {
        return RangeAsked::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsked::Ignore;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    let range = match (first.is_empty(), last.is_empty()) {
        (true, false) => match number(last) {
            Some(0) => return RangeAsked::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
            None => return RangeAsked::Ignore,
        },
        (false, _) => {
            let Some(start) = number(first) else {
                return RangeAsked::Ignore;
            };
            let end = if last.is_empty() {
                size
            } else {
                match number(last) {
                    Some(l) if l >= start => l.saturating_add(1).min(size),
                    _ => return RangeAsked::Ignore,
                }
            };
            if start >= size {
                return RangeAsked::Unsatisfiable;
            }
            start..end
        }
        (true, true) => return RangeAsked::Ignore,
    };
    if range.is_empty() {
        RangeAsked::Unsatisfiable
    } else {
        RangeAsked::Bytes(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsked::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Bytes(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), Bytes(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), Bytes(900..1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Bytes(0..1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), Bytes(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 1000), Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Ignore);
        assert_eq!(parse_range("items=0-1", 1000), Ignore);
        assert_eq!(parse_range("BYTES=0-9", 1000), Bytes(0..10));
        assert_eq!(parse_range("Bytes=-10", 1000), Bytes(990..1000));
        assert_eq!(parse_range("bytes=x-1", 1000), Ignore);
        assert_eq!(parse_range("bytes=-", 1000), Ignore);
    }
}
