//! Hosted media (spec 8.1): import a file by URL, take an uploaded one, read, list and delete
//! them. The bytes go through `soku_media::receive` (type from the bytes, size bounded while
//! they arrive, SHA-256, dimensions and duration) into the media store; the row goes to the
//! database once the file is stored, so a row always has its file.
//!
//! Idempotency (decision, after posts' spec 6.1): a request's key is its `Idempotency-Key`, or
//! one derived from the request (an import's body; an upload's bytes), scoped to the user and
//! mode and kept `MEDIA_IDEMPOTENCY_HOURS`. The same key with the same request answers the first
//! file again (201, `Idempotent-Replayed: true`); with another request, 409
//! `idempotency_conflict`. Two identical requests at the same moment both read their file; the
//! first row written wins and the other's copy is deleted.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{MediaCreated, MediaPageView, MediaView};
use axum::http::HeaderValue;
use bytes::Bytes;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use soku_core::ErrorCode;
use soku_core::media::{MediaDeletion, MediaKind, MediaPage, MediaRecord, known_type};
use soku_media::ingest::hex;
use soku_media::{IngestError, LibraryError, MediaLibrary, Owner, ProbeError, Received};
use soku_platforms::import::{ImportError, Importer};

/// What the media endpoints need besides the store.
#[derive(Clone)]
pub struct MediaHost {
    /// The files and their rows; its base URL is the server's public URL unless configured
    /// otherwise.
    pub library: MediaLibrary,
    /// Fetches imports (SSRF-guarded, bounded in size and time).
    pub importer: Importer,
    /// How long an upload's body may stay silent before it is abandoned.
    pub upload_idle: std::time::Duration,
}

/// `POST /v1/media`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportMedia {
    /// An http(s) URL of an image (JPEG, PNG, GIF, WebP; up to 50 MB) or a video (MP4, MOV,
    /// WebM, MKV; up to 500 MB).
    pub url: String,
}

/// `GET /v1/media`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListMedia {
    /// 1 to 100, default 20
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page
    pub cursor: Option<String>,
}

/// Imports the file at `request.url` for the caller.
pub async fn import(
    state: &AppState,
    caller: &Caller,
    request: ImportMedia,
    idempotency_key: Option<String>,
) -> ApiResult<MediaCreated> {
    let url = request.url.trim().to_owned();
    let parsed = url::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    if parsed.is_none() {
        return Err(ApiError::validation(
            "url",
            "invalid_value",
            "'url' must be an http:// or https:// URL.",
        ));
    }
    let request_hash = hex(&Sha256::digest(format!("url:{url}")));
    let key = idempotency_key.unwrap_or_else(|| format!("derived:{request_hash}"));
    let owner = Owner {
        user_id: &caller.user_id,
        mode: caller.mode,
        idempotency_key: &key,
        request_hash: &request_hash,
    };
    if let Some(done) = replay(state, &owner).await? {
        return Ok(done);
    }
    let max = MediaKind::Video
        .max_bytes()
        .max(MediaKind::Image.max_bytes());
    let download = state
        .media
        .importer
        .open(&url, max)
        .await
        .map_err(import_failed)?;
    let declared = download.content_length;
    let received = soku_media::receive(
        &state.media.library.storage,
        download.into_stream(),
        declared,
    )
    .await
    .map_err(|e| ingest_failed(e, false, |e: ImportError| import_failed(e)))?;
    store(state, &owner, received, Some(url)).await
}

/// Takes the uploaded file `body` (its `Content-Type` and `Content-Length` checked by `declared`).
pub async fn upload<S>(
    state: &AppState,
    caller: &Caller,
    declared: Declared,
    body: S,
    idempotency_key: Option<String>,
) -> ApiResult<MediaCreated>
where
    S: Stream<Item = Result<Bytes, BodyError>>,
{
    let received = soku_media::receive(&state.media.library.storage, body, Some(declared.length))
        .await
        .map_err(|e| ingest_failed(e, true, body_failed))?;
    if let Some(kind) = declared.kind
        && kind != received.facts.kind
    {
        return Err(upload_failed(
            "unsupported_type",
            format!(
                "The body was sent as {} but its contents are {} ({}).",
                declared.content_type,
                a_kind(received.facts.kind),
                received.facts.mime
            ),
        ));
    }
    let request_hash = received.sha256.clone();
    let key = idempotency_key.unwrap_or_else(|| format!("sha256:{request_hash}"));
    let owner = Owner {
        user_id: &caller.user_id,
        mode: caller.mode,
        idempotency_key: &key,
        request_hash: &request_hash,
    };
    if let Some(done) = replay(state, &owner).await? {
        return Ok(done);
    }
    store(state, &owner, received, None).await
}

/// What an upload's headers declared.
pub struct Declared {
    pub content_type: String,
    /// `None` for `application/octet-stream`.
    pub kind: Option<MediaKind>,
    pub length: u64,
}

/// Checks an upload's `Content-Type` (an accepted image or video type, or
/// `application/octet-stream`; the real type is read from the bytes) and `Content-Length`. An
/// HTTP/1 request with neither `Content-Length` nor `Transfer-Encoding` has no body (RFC 9112
/// 6.3): it is an empty file, not a missing length.
pub fn declared(
    content_type: Option<&HeaderValue>,
    length: Option<&HeaderValue>,
    bodiless: bool,
) -> ApiResult<Declared> {
    let content_type = content_type
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let kind = match content_type.as_str() {
        "application/octet-stream" => None,
        // Common misspellings of image/jpeg (what many HTTP libraries send for `.jpg`).
        "image/jpg" | "image/pjpeg" => Some(MediaKind::Image),
        t => Some(known_type(t).and_then(MediaKind::of).ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "Send the file with its type as Content-Type: image/jpeg, image/png, image/gif, \
                 image/webp, video/mp4, video/quicktime, video/webm, video/x-matroska (or \
                 application/octet-stream).",
            )
        })?),
    };
    let length = match length {
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()),
        None => bodiless.then_some(0),
    };
    let Some(length) = length else {
        return Err(ApiError::validation(
            "Content-Length",
            "required",
            "An upload must declare its size in Content-Length.",
        ));
    };
    Ok(Declared {
        content_type,
        kind,
        length,
    })
}

/// Why an upload's body stopped: the client's connection, or its silence.
#[derive(Debug)]
pub enum BodyError {
    Broken,
    Idle,
}

/// Stores a received file and its row (or answers the twin that got there first).
async fn store(
    state: &AppState,
    owner: &Owner<'_>,
    received: Received,
    source_url: Option<String>,
) -> ApiResult<MediaCreated> {
    let library = &state.media.library;
    let saved = library
        .save(received, owner, source_url, state.clock.now())
        .await
        .map_err(library_failed)?;
    Ok(MediaCreated {
        media: MediaView::of(&saved.record, &library.base_url),
        replayed: saved.replayed,
    })
}

/// The first answer for this key, or 409 when the key was used for another request.
async fn replay(state: &AppState, owner: &Owner<'_>) -> ApiResult<Option<MediaCreated>> {
    let library = &state.media.library;
    let found = library
        .existing(owner, state.clock.now())
        .await
        .map_err(library_failed)?;
    Ok(found.map(|record| MediaCreated {
        media: MediaView::of(&record, &library.base_url),
        replayed: true,
    }))
}

fn library_failed(e: LibraryError) -> ApiError {
    match e {
        LibraryError::KeyConflict => ApiError::new(
            ErrorCode::IdempotencyConflict,
            "This Idempotency-Key was used with a different request.",
        ),
        LibraryError::Storage(e) => {
            ApiError::unavailable("The media store could not take the file; try again.", e)
        }
        LibraryError::Store(e) => e.into(),
    }
}

pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<MediaView> {
    match state.store.get_media(id).await? {
        Some(m) if m.user_id == caller.user_id && m.mode == caller.mode => {
            Ok(MediaView::of(&m, &state.media.library.base_url))
        }
        _ => Err(ApiError::not_found("media")),
    }
}

pub async fn list(
    state: &AppState,
    caller: &Caller,
    query: &ListMedia,
) -> ApiResult<MediaPageView> {
    let limit = super::posts::page_limit(query.limit.as_deref())?;
    let before = super::posts::page_cursor(super::posts::Listing::Media, query.cursor.as_deref())?;
    let page = state
        .store
        .list_media(&caller.user_id, caller.mode, &MediaPage { before, limit })
        .await?;
    let next_cursor = (page.len() as i64 == limit)
        .then(|| page.last())
        .flatten()
        .map(|m| super::posts::encode_cursor(m.created_at.timestamp_millis(), &m.id));
    Ok(MediaPageView {
        media: page
            .iter()
            .map(|m| MediaView::of(m, &state.media.library.base_url))
            .collect(),
        next_cursor,
    })
}

/// Deletes the caller's file: its row, then its bytes. 409 while a post that has not finished
/// publishing names it.
pub async fn delete(state: &AppState, caller: &Caller, id: &str) -> ApiResult<MediaView> {
    let (user, mode) = (caller.user_id.as_str(), caller.mode);
    let prefix = state.media.library.url_prefix(id);
    let record = match state.store.delete_media(user, mode, id, &prefix).await? {
        MediaDeletion::Deleted(record) => record,
        MediaDeletion::NotFound => return Err(ApiError::not_found("media")),
        MediaDeletion::InUse => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "A post that has not finished publishing uses this file; delete it after the \
                 post is published or canceled.",
            )
            .with_details(json!({ "id": id })));
        }
    };
    if let Err(e) = state
        .media
        .library
        .storage
        .delete(&record.storage_key)
        .await
    {
        // The row is gone, so the file is served no more; the bytes stay until deleted by hand.
        tracing::warn!(media_id = %record.id, error = %e, "could not delete a media file's bytes");
    }
    Ok(MediaView::of(&record, &state.media.library.base_url))
}

/// The file served at `/media/<id>/<file_name>`, if there is one.
pub async fn hosted(state: &AppState, id: &str, file_name: &str) -> ApiResult<Option<MediaRecord>> {
    Ok(state.media.library.hosted(id, file_name).await?)
}

fn upload_failed(reason: &str, message: String) -> ApiError {
    ApiError::new(ErrorCode::UploadFailed, message).with_details(json!({ "reason": reason }))
}

fn import_failed(e: ImportError) -> ApiError {
    upload_failed(e.reason.as_str(), e.message)
}

fn body_failed(e: BodyError) -> ApiError {
    match e {
        BodyError::Broken => upload_failed(
            "truncated",
            "The body ended before its Content-Length; nothing was stored.".into(),
        ),
        // Spec 8.1's reason for a file that did not arrive in time, as for an import.
        BodyError::Idle => upload_failed(
            "timeout",
            "The body stopped arriving; nothing was stored.".into(),
        ),
    }
}

/// The answer to a file that was not taken. Uploads over the limit are 413 (spec 8.1); imports
/// name the reason in a 400 `upload_failed`.
fn ingest_failed<E>(
    e: IngestError<E>,
    upload: bool,
    source: impl FnOnce(E) -> ApiError,
) -> ApiError {
    match e {
        IngestError::Empty => upload_failed("empty", "The file is empty.".into()),
        IngestError::TooLarge { max, kind } => {
            let what = kind.map(a_kind).unwrap_or("a file");
            let message = format!(
                "The file is larger than the {} MB allowed for {what}.",
                max / (1024 * 1024)
            );
            if upload {
                ApiError::new(ErrorCode::PayloadTooLarge, message)
                    .with_details(json!({ "reason": "too_large", "limit": max }))
            } else {
                upload_failed("too_large", message)
            }
        }
        IngestError::UnsupportedType { found } => upload_failed(
            "unsupported_type",
            match found {
                Some(t) => format!(
                    "The file is {t} (from its contents), which is not taken; images: JPEG, \
                     PNG, GIF, WebP; videos: MP4, MOV, WebM, MKV."
                ),
                None => "The file is not an image or video this server takes (from its \
                         contents); images: JPEG, PNG, GIF, WebP; videos: MP4, MOV, WebM, MKV."
                    .into(),
            },
        ),
        IngestError::Probe(ProbeError::Invalid(why)) => upload_failed(
            "invalid_file",
            format!("The file could not be read: {why}."),
        ),
        IngestError::Probe(ProbeError::TooLarge(why)) => {
            upload_failed("too_large", format!("The file is too large: {why}."))
        }
        IngestError::Source(e) => source(e),
        IngestError::Storage(e) => {
            ApiError::unavailable("The media store could not take the file; try again.", e)
        }
    }
}

fn a_kind(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "an image",
        MediaKind::Video => "a video",
    }
}

/// Checks the post's hosted files (spec 8.1, "Media in posts") against every target platform's
/// media rules (`soku_core::posts::media_rules`), before anything is sent: a broken rule is 400
/// `validation_error` naming the platform, the field and the rule. A hosted URL must be one of
/// the caller's files in the caller's mode. Outside URLs are not known yet here and pass (the
/// engine checks them once imported). Returns the hosted files the post names: `(field, id)`.
pub async fn check_in_post(
    state: &AppState,
    user_id: &str,
    mode: soku_core::keys::KeyMode,
    post: &serde_json::Value,
    content: &soku_core::posts::PostContent,
    options: &soku_core::posts::PostOptions,
    platforms: impl IntoIterator<Item = soku_core::platform::Platform>,
) -> ApiResult<Vec<(String, String)>> {
    use soku_core::posts::MediaType;
    use soku_core::posts::media_rules::{self, MediaItem};
    let library = &state.media.library;
    let urls = content.image_urls.iter().chain(content.video_url.as_ref());
    let mut files = Vec::new();
    for (i, url) in urls.enumerate() {
        let Some((id, file)) = library.parse_url(url) else {
            continue;
        };
        let field = field_of(post, url);
        let record = library
            .hosted(id, file)
            .await?
            .filter(|m| m.user_id == user_id && m.mode == mode);
        let Some(record) = record else {
            return Err(ApiError::validation(
                &field,
                "not_found",
                format!("{field} names no hosted file of yours; upload it with POST /v1/media."),
            ));
        };
        let is_the_video = i == content.image_urls.len() && content.media_type == MediaType::Video;
        if is_the_video && let Some(message) = media_rules::not_a_video(&field, record.facts.kind) {
            return Err(ApiError::validation(&field, "invalid_value", message));
        }
        files.push((field, record));
    }
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<MediaItem<'_>> = files
        .iter()
        .map(|(field, record)| MediaItem {
            field,
            facts: &record.facts,
        })
        .collect();
    let mut seen = Vec::new();
    for platform in platforms {
        if seen.contains(&platform) {
            continue;
        }
        seen.push(platform);
        if let Err(v) = media_rules::check_post(platform, options, content, &items) {
            return Err(
                ApiError::new(ErrorCode::ValidationError, v.message).with_details(json!({
                    "field": v.field,
                    "reason": "media_rule",
                    "rule": v.rule,
                    "platform": v.platform.as_str(),
                })),
            );
        }
    }
    Ok(files
        .into_iter()
        .map(|(field, record)| (field, record.id))
        .collect())
}

/// The JSON path that names `url` in the request's `post` (`imageUrls`, `mediaUrls` or
/// `videoUrl`).
fn field_of(post: &serde_json::Value, url: &str) -> String {
    let content = &post["content"];
    for list in ["imageUrls", "mediaUrls"] {
        if let Some(i) = content[list].as_array().and_then(|a| {
            a.iter()
                .position(|v| v.as_str().map(str::trim) == Some(url))
        }) {
            return format!("post.content.{list}[{i}]");
        }
    }
    "post.content.videoUrl".into()
}
