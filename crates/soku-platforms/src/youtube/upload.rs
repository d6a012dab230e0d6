//! The resumable upload: the session started and saved, the file sent in chunks, a saved
//! session asked where it stands (see the module documentation, "Exactly once").

use super::errors::classify;
use super::{PLATFORM, VIDEO_LIMITS, VIDEO_MAX_BYTES, YouTube};
use crate::http::{self, Effect};
use crate::media::MediaStream;
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use soku_core::connector::{FailureClass, PublishError, PublishRequest};

impl YouTube {
    /// The session URI goes only to Google (or to the configured API's own origin, for fakes
    /// and staging setups): it carries the account's token.
    pub(super) fn check_session_uri(&self, uri: &str) -> Result<(), PublishError> {
        let ok = url::Url::parse(uri).ok().is_some_and(|u| {
            let google = u.scheme() == "https"
                && u.host_str().is_some_and(|h| {
                    let h = h.to_ascii_lowercase();
                    h == "googleapis.com" || h.ends_with(".googleapis.com")
                });
            let same_origin =
                url::Url::parse(&self.settings.api_url).is_ok_and(|api| api.origin() == u.origin());
            google || same_origin
        });
        if ok {
            Ok(())
        } else {
            Err(PublishError::new(
                FailureClass::Permanent,
                "unexpected_response",
                format!("{PLATFORM} named an upload session outside Google; not uploading."),
            ))
        }
    }

    /// The video id of the post's upload: the saved one, the one a saved session completed, or
    /// a new upload's (resumed from a saved session when it still stands).
    pub(super) async fn upload(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        metadata: &Value,
    ) -> Result<String, PublishError> {
        let saved = match UploadProgress::load(request.progress.saved(), url) {
            Saved::This(p) => Some(p),
            // `publish` answers that before uploading; never a second upload.
            Saved::Other(p) => return Err(other_video(&p)),
            Saved::Nothing => None,
        };
        let mut resume = None;
        if let Some(p) = saved.filter(|p| p.session.is_some()) {
            match self.session_status(token, &p).await? {
                SessionState::Complete(id) => {
                    tracing::info!(video = %id, "the saved YouTube upload session had completed");
                    let mut p = p;
                    p.video_id = Some(id.clone());
                    request.progress.save(p.to_json()).await?;
                    return Ok(id);
                }
                SessionState::Incomplete(received) => {
                    tracing::info!(received, size = p.size, "resuming a YouTube upload");
                    resume = Some((p, received));
                }
                SessionState::Gone if p.final_sent => return Err(outcome_unknown()),
                SessionState::Gone => {
                    tracing::info!(
                        "the YouTube upload session expired before completing; starting a new one"
                    );
                }
            }
        }
        for restart in [false, true] {
            let stream = self.media.stream(url, &VIDEO_LIMITS).await?;
            check_stream(&stream)?;
            let (progress, offset) = match resume.take() {
                Some((p, received)) if !restart && p.size == stream.size => (p, received),
                _ => {
                    let (size, mime) = (stream.size, stream.mime);
                    let p = self
                        .start_session(request, token, url, metadata, size, mime)
                        .await?;
                    (p, 0)
                }
            };
            match self
                .send_chunks(request, token, stream, progress, offset)
                .await?
            {
                Sent::Done(id) => return Ok(id),
                // The session expired before its last chunk: nothing was created.
                Sent::Expired if !restart => {
                    tracing::info!(
                        "the YouTube upload session expired mid-upload; starting a new one"
                    );
                }
                Sent::Expired => break,
            }
        }
        Err(PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "upload_session_expired",
            format!(
                "{PLATFORM} let the upload session expire twice; the post will be tried again."
            ),
        ))
    }

    /// `videos.insert` with `uploadType=resumable`: the session URI, saved.
    pub(super) async fn start_session(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        metadata: &Value,
        size: u64,
        mime: &str,
    ) -> Result<UploadProgress, PublishError> {
        let (_, headers, body) = self
            .call(
                self.api(
                    reqwest::Method::POST,
                    "/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status",
                    token,
                )
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/json; charset=UTF-8",
                )
                .header("X-Upload-Content-Length", size.to_string())
                .header("X-Upload-Content-Type", mime)
                .body(metadata.to_string()),
                Effect::Repeatable,
            )
            .await?;
        let session = headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "unexpected_response",
                    format!("{PLATFORM} started the upload without naming its session."),
                )
                .with_platform_error(http::platform_text(&body))
            })?
            .to_owned();
        self.check_session_uri(&session)?;
        let progress = UploadProgress {
            video_url: url.to_owned(),
            session: Some(session),
            size,
            final_sent: false,
            video_id: None,
        };
        request.progress.save(progress.to_json()).await?;
        Ok(progress)
    }

    /// Asks the session how far it got.
    pub(super) async fn session_status(
        &self,
        token: &str,
        p: &UploadProgress,
    ) -> Result<SessionState, PublishError> {
        let session = p.session.as_deref().unwrap_or_default();
        self.check_session_uri(session)?;
        let (status, headers, body) = self
            .send(
                self.client
                    .put(session)
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    .header(
                        reqwest::header::CONTENT_RANGE,
                        format!("bytes */{}", p.size),
                    ),
                Effect::Repeatable,
            )
            .await?;
        match status.as_u16() {
            200 | 201 => Ok(SessionState::Complete(video_id(&body, Effect::Repeatable)?)),
            // `308 Resume Incomplete` reaches this code only because `http::api_client` follows
            // no redirects (`redirect::Policy::none()`): a client that followed them would
            // re-send the PUT to a `Location` and never show the 308.
            308 => Ok(SessionState::Incomplete(acknowledged(&headers))),
            404 | 410 => Ok(SessionState::Gone),
            _ => Err(classify(status, &headers, &body, Effect::Repeatable)),
        }
    }

    /// PUTs the file from `offset` in chunks; the progress saved before the last chunk and
    /// with the video id after it.
    pub(super) async fn send_chunks(
        &self,
        request: &PublishRequest,
        token: &str,
        stream: MediaStream,
        mut progress: UploadProgress,
        offset: u64,
    ) -> Result<Sent, PublishError> {
        let MediaStream {
            size, mut chunks, ..
        } = stream;
        let session = progress.session.clone().unwrap_or_default();
        let changed = || {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "media_changed",
                "The video did not have the size it announced; the post will be tried again.",
            )
        };
        let mut read = 0u64;
        let mut start = offset;
        let mut chunk = bytes::BytesMut::new();
        loop {
            let next = chunks.next().await;
            let done_reading = next.is_none();
            if let Some(piece) = next {
                let mut piece = piece?;
                if read + (piece.len() as u64) > size {
                    return Err(changed());
                }
                // Bytes the session already has are read past.
                if read < offset {
                    let skip = (offset - read).min(piece.len() as u64) as usize;
                    let _ = piece.split_to(skip);
                    read += skip as u64;
                }
                read += piece.len() as u64;
                chunk.extend_from_slice(&piece);
            } else if read != size {
                return Err(changed());
            }
            // Send every full chunk, and the rest once the file is read.
            while chunk.len() as u64 >= self.chunk_bytes || (done_reading && !chunk.is_empty()) {
                let len = (chunk.len() as u64).min(self.chunk_bytes);
                let is_last = start + len == size;
                if !is_last && len < self.chunk_bytes {
                    return Err(changed());
                }
                let body = chunk.split_to(len as usize).freeze();
                // Whether this is the session's first last chunk: only then does a refusal of it
                // say for certain that no video was made (an earlier attempt's last chunk, whose
                // answer was lost, might still complete the session).
                let first_final = is_last && !progress.final_sent;
                if first_final {
                    progress.final_sent = true;
                    request.progress.save(progress.to_json()).await?;
                }
                let effect = if is_last {
                    Effect::Creates
                } else {
                    Effect::Repeatable
                };
                let (status, headers, answer) = self
                    .send(
                        self.client
                            .put(&session)
                            .timeout(http::upload_timeout(self.settings.timeout, len))
                            .bearer_auth(token)
                            .header(
                                reqwest::header::CONTENT_RANGE,
                                format!("bytes {start}-{}/{size}", start + len - 1),
                            )
                            .body(body),
                        effect,
                    )
                    .await?;
                match status.as_u16() {
                    200 | 201 => {
                        let id = video_id(&answer, effect)?;
                        progress.video_id = Some(id.clone());
                        request.progress.save(progress.to_json()).await?;
                        return Ok(Sent::Done(id));
                    }
                    // As in `session_status`: seen only because redirects are not followed.
                    308 => {
                        let acked = acknowledged(&headers);
                        if acked != start + len {
                            if first_final {
                                // The session says the upload is incomplete.
                                final_not_taken(request, &mut progress).await;
                            }
                            return Err(PublishError::new(
                                FailureClass::Retryable { retry_after: None },
                                "upload_out_of_step",
                                format!(
                                    "{PLATFORM} acknowledged {acked} bytes of the video where \
                                     {} were sent; the next attempt resumes from its count.",
                                    start + len
                                ),
                            ));
                        }
                        start = acked;
                    }
                    404 | 410 => {
                        // The session is gone and did not take the chunk: nothing was created.
                        if first_final {
                            final_not_taken(request, &mut progress).await;
                        }
                        return Ok(Sent::Expired);
                    }
                    _ => {
                        // A definitive refusal (a 4xx other than 404 / 408 / 410) of the last
                        // chunk did not complete the upload.
                        if first_final
                            && status.is_client_error()
                            && !matches!(status.as_u16(), 404 | 408 | 410)
                        {
                            final_not_taken(request, &mut progress).await;
                        }
                        return Err(classify(status, &headers, &answer, effect));
                    }
                }
            }
            if done_reading {
                // Every byte went out and no chunk completed the upload.
                return Err(PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "unexpected_response",
                    format!(
                        "{PLATFORM} took every byte of the video without completing the upload."
                    ),
                ));
            }
        }
    }
}

/// The last chunk was refused in a way that certainly created nothing: the progress forgets it
/// was sent, so that a later attempt may start a new session if this one expires. Best effort:
/// a failed save leaves `final_sent`, which can only end the target `unknown`, never upload
/// twice.
async fn final_not_taken(request: &PublishRequest, progress: &mut UploadProgress) {
    progress.final_sent = false;
    if let Err(e) = request.progress.save(progress.to_json()).await {
        tracing::warn!(error = %e, "could not record that YouTube refused the last chunk");
    }
}

/// The saved progress is of another media URL and may have made a video.
pub(super) fn other_video(p: &UploadProgress) -> PublishError {
    let what = match &p.video_id {
        Some(id) => format!("uploaded video {id}"),
        None => "sent the last part of a video (its answer lost)".to_owned(),
    };
    PublishError::new(
        FailureClass::Ambiguous,
        "upload_outcome_unknown",
        format!(
            "An earlier attempt {what} from another media URL than this post's: whether the \
             post is on {PLATFORM} cannot be told, so it is not uploaded again."
        ),
    )
}

pub(super) fn outcome_unknown() -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "upload_outcome_unknown",
        format!(
            "The last part of the video was sent to {PLATFORM}, its answer was lost and the \
             upload session has expired: whether the video was created cannot be told."
        ),
    )
}

/// The session's answer to a status query.
pub(super) enum SessionState {
    Complete(String),
    /// Bytes received.
    Incomplete(u64),
    Gone,
}

pub(super) enum Sent {
    Done(String),
    Expired,
}

/// What the saved progress says about the post's video.
pub(super) enum Saved {
    /// Nothing bears on it: nothing saved, or an upload of another URL that never sent its last
    /// chunk (so made nothing).
    Nothing,
    /// The progress of this video's upload.
    This(UploadProgress),
    /// The upload of another URL that made, or may have made, a video (its id is saved, or its
    /// last chunk was sent): the post may be on YouTube already.
    Other(UploadProgress),
}

/// What an attempt at the post's upload saves (`PublishRequest::progress`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub(super) struct UploadProgress {
    /// The video the upload is of (missing: matches no URL).
    #[serde(default)]
    pub(super) video_url: String,
    /// The resumable session URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) session: Option<String>,
    /// The file's size, as the session was told.
    #[serde(default)]
    pub(super) size: u64,
    /// The chunk completing the upload was sent (its answer may have been lost).
    #[serde(default)]
    pub(super) final_sent: bool,
    /// The video the completed upload made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) video_id: Option<String>,
}

impl UploadProgress {
    /// What was saved, matched on the media URL.
    pub(super) fn load(saved: &Value, url: &str) -> Saved {
        let Ok(p) = serde_json::from_value::<UploadProgress>(saved.clone()) else {
            return Saved::Nothing;
        };
        if p.video_url == url {
            Saved::This(p)
        } else if p.video_id.is_some() || p.final_sent {
            Saved::Other(p)
        } else {
            Saved::Nothing
        }
    }

    pub(super) fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("progress serializes")
    }
}

/// The bytes a `308` acknowledges: `Range: bytes=0-N` is N + 1; none is 0.
pub(super) fn acknowledged(headers: &HeaderMap) -> u64 {
    headers
        .get(reqwest::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes=0-"))
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |n| n + 1)
}

/// The `id` of a video resource answer.
pub(super) fn video_id(body: &[u8], effect: Effect) -> Result<String, PublishError> {
    #[derive(Deserialize)]
    struct Created {
        #[serde(default)]
        id: String,
    }
    let created: Created = http::parse_json(body, effect, PLATFORM)?;
    if created.id.is_empty() {
        let class = match effect {
            Effect::Creates => FailureClass::Ambiguous,
            Effect::Repeatable => FailureClass::Retryable { retry_after: None },
        };
        return Err(PublishError::new(
            class,
            "unexpected_response",
            format!("{PLATFORM} completed the upload without naming the video."),
        )
        .with_platform_error(http::platform_text(body)));
    }
    Ok(created.id)
}

pub(super) fn check_stream(stream: &MediaStream) -> Result<(), PublishError> {
    if !stream.mime.starts_with("video/") {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            format!("YouTube takes video files; this one is {}.", stream.mime),
        ));
    }
    if stream.size == 0 || stream.size > VIDEO_MAX_BYTES {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "media_too_large",
            format!(
                "YouTube takes videos of 1 byte to 256 GB; this one has {} bytes.",
                stream.size
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_give_the_bytes_received() {
        let mut h = HeaderMap::new();
        assert_eq!(acknowledged(&h), 0);
        h.insert("range", "bytes=0-262143".parse().unwrap());
        assert_eq!(acknowledged(&h), 262_144);
    }
}
