//! Video through LinkedIn's Videos API: the file's limits, `initializeUpload`, the parts sent to
//! the upload URLs LinkedIn hands out (resumed from the saved ETags), `finalizeUpload`, and the
//! wait for processing. See the module documentation of `linkedin`, "Video".

use super::*;

impl LinkedIn {
    /// The URN of the post's video, uploaded once and processed: an upload an earlier attempt
    /// started or finished is resumed when LinkedIn still has it, else the video is uploaded.
    pub(super) async fn video(
        &self,
        request: &PublishRequest,
        token: &str,
        owner: &str,
        url: &str,
    ) -> Result<String, PublishError> {
        check_video_facts(request)?;
        if let Some(mut saved) = VideoProgress::for_video(request.progress.saved(), url) {
            match self.video_status(token, &saved.video).await? {
                None => {
                    tracing::info!(video = %saved.video, "LinkedIn no longer knows the video; uploading it again");
                }
                Some(state) if saved.finalized || state.status != "WAITING_UPLOAD" => {
                    tracing::info!(video = %saved.video, status = %state.status, "resuming a LinkedIn video's processing");
                    if !saved.finalized {
                        // Finalized by an attempt that could not save it.
                        saved.finalized = true;
                        request.progress.save(saved.to_json()).await?;
                    }
                    self.processed(token, &saved.video, Some(state)).await?;
                    return Ok(saved.video);
                }
                Some(_) if saved.urls_valid(Utc::now().timestamp_millis()) => {
                    tracing::info!(
                        video = %saved.video,
                        parts_done = saved.etags.len(),
                        parts = saved.instructions.len(),
                        "resuming a LinkedIn video's upload"
                    );
                    let stream = self.media.stream(url, &VIDEO_LIMITS).await?;
                    check_video_stream(&stream, url)?;
                    if covers(&saved.instructions, stream.size) {
                        match self.upload_parts(request, token, url, stream, saved).await {
                            Ok(saved) => {
                                self.processed(token, &saved.video, None).await?;
                                return Ok(saved.video);
                            }
                            // An upload URL or token LinkedIn no longer takes: start over.
                            Err(e) if matches!(e.code.as_str(), "rejected" | "forbidden") => {
                                tracing::info!(error = %e, "LinkedIn refused the resumed upload; uploading the video again");
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Some(_) => {
                    tracing::info!(video = %saved.video, "the video's upload URLs have expired; uploading it again");
                }
            }
        }
        let stream = self.media.stream(url, &VIDEO_LIMITS).await?;
        check_video_stream(&stream, url)?;
        let saved = self
            .initialize_video(request, token, owner, url, stream.size)
            .await?;
        let saved = self
            .upload_parts(request, token, url, stream, saved)
            .await?;
        self.processed(token, &saved.video, None).await?;
        Ok(saved.video)
    }

    /// `initializeUpload` for a video of `size` bytes; the progress saved.
    async fn initialize_video(
        &self,
        request: &PublishRequest,
        token: &str,
        owner: &str,
        url: &str,
        size: u64,
    ) -> Result<VideoProgress, PublishError> {
        let (_, _, body) = self
            .call(
                self.rest(
                    reqwest::Method::POST,
                    "/rest/videos?action=initializeUpload",
                    token,
                )
                .json(&json!({"initializeUploadRequest": {
                    "owner": owner,
                    "fileSizeBytes": size,
                    "uploadCaptions": false,
                    "uploadThumbnail": false,
                }})),
                Effect::Repeatable,
            )
            .await?;
        let init: VideoInitialize = http::parse_json(&body, Effect::Repeatable, PLATFORM)?;
        let value = init.value;
        if !value.video.starts_with("urn:li:video:") || !covers(&value.upload_instructions, size) {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "unexpected_response",
                format!(
                    "{PLATFORM} answered the video upload with instructions that do not cover \
                     the file's {size} bytes."
                ),
            )
            .with_platform_error(http::platform_text(&body)));
        }
        for part in &value.upload_instructions {
            self.check_upload_url(&part.upload_url)?;
        }
        let saved = VideoProgress {
            video_url: url.to_owned(),
            video: value.video,
            upload_token: value.upload_token,
            urls_expire_at: value.upload_urls_expire_at,
            instructions: value.upload_instructions,
            etags: Vec::new(),
            finalized: false,
        };
        request.progress.save(saved.to_json()).await?;
        Ok(saved)
    }

    /// Uploads the parts of `saved` that have no ETag yet, reading `stream` once and holding at
    /// most one part, then finalizes the upload; the progress saved after each part and after
    /// finalizing.
    async fn upload_parts(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        stream: MediaStream,
        mut saved: VideoProgress,
    ) -> Result<VideoProgress, PublishError> {
        let MediaStream {
            size, mut chunks, ..
        } = stream;
        let changed = || {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "media_changed",
                format!(
                    "{} did not have the size it announced; the post will be tried again.",
                    crate::media::describe_as(url, "video")
                ),
            )
        };
        let mut index = saved.etags.len();
        if index < saved.instructions.len() {
            // Bytes before the first part still to upload are read past.
            let start = saved.instructions[index].first_byte;
            let mut offset = 0u64;
            let mut part = bytes::BytesMut::new();
            while let Some(chunk) = chunks.next().await {
                let mut chunk = chunk?;
                if offset < start {
                    let skip = (start - offset).min(chunk.len() as u64) as usize;
                    let _ = chunk.split_to(skip);
                    offset += skip as u64;
                }
                while !chunk.is_empty() {
                    let Some(instruction) = saved.instructions.get(index) else {
                        return Err(changed());
                    };
                    let want = (instruction.last_byte - instruction.first_byte + 1) as usize;
                    if part.is_empty() {
                        part.reserve(want);
                    }
                    let take = (want - part.len()).min(chunk.len());
                    part.extend_from_slice(&chunk.split_to(take));
                    offset += take as u64;
                    if part.len() == want {
                        let etag = self
                            .put_part(token, &instruction.upload_url, part.split().freeze())
                            .await?;
                        saved.etags.push(etag);
                        request.progress.save(saved.to_json()).await?;
                        index += 1;
                    }
                }
            }
            if index != saved.instructions.len() || offset != size {
                return Err(changed());
            }
        }
        drop(chunks);

        self.call(
            self.rest(
                reqwest::Method::POST,
                "/rest/videos?action=finalizeUpload",
                token,
            )
            .json(&json!({"finalizeUploadRequest": {
                "video": saved.video,
                "uploadToken": saved.upload_token,
                "uploadedPartIds": saved.etags,
            }})),
            Effect::Repeatable,
        )
        .await?;
        saved.finalized = true;
        request.progress.save(saved.to_json()).await?;
        Ok(saved)
    }

    /// PUTs one part to its upload URL; the answer's ETag.
    async fn put_part(
        &self,
        token: &str,
        upload_url: &str,
        bytes: bytes::Bytes,
    ) -> Result<String, PublishError> {
        self.check_upload_url(upload_url)?;
        let (_, headers, _) = self
            .call(
                self.client
                    .put(upload_url)
                    .timeout(http::upload_timeout(
                        self.settings.timeout,
                        bytes.len() as u64,
                    ))
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes),
                Effect::Repeatable,
            )
            .await?;
        headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                PublishError::new(
                    FailureClass::Retryable { retry_after: None },
                    "unexpected_response",
                    format!("{PLATFORM} took a part of the video without an ETag."),
                )
            })
    }

    /// `GET /rest/videos/{urn}`: the video's state, or `None` when LinkedIn no longer knows it.
    async fn video_status(
        &self,
        token: &str,
        urn: &str,
    ) -> Result<Option<VideoState>, PublishError> {
        let effect = Effect::Repeatable;
        let request = self.rest(
            reqwest::Method::GET,
            &format!("/rest/videos/{}", percent_encode(urn)),
            token,
        );
        let response = http::send(request, effect, PLATFORM).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&e, effect, PLATFORM))?;
        if matches!(status.as_u16(), 404 | 410) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.failure(status, &headers, &body, effect));
        }
        let mut state: VideoState = http::parse_json(&body, effect, PLATFORM)?;
        state.raw = http::platform_text(&body);
        Ok(Some(state))
    }

    /// Waits until the video `urn` is `AVAILABLE`, asking LinkedIn (at once when `state` is
    /// `None`) ever less often: `Ok` once it may be posted, a `Permanent` error when processing
    /// failed, a `Retryable` one when the wait runs out or LinkedIn forgot the video.
    async fn processed(
        &self,
        token: &str,
        urn: &str,
        mut state: Option<VideoState>,
    ) -> Result<(), PublishError> {
        let started = Instant::now();
        let mut wait = VIDEO_POLL_FIRST;
        loop {
            let now = match state.take() {
                Some(now) => now,
                None => self.video_status(token, urn).await?.ok_or_else(|| {
                    PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "media_expired",
                        format!(
                            "{PLATFORM} no longer knows the video being processed; it will be \
                             uploaded again."
                        ),
                    )
                })?,
            };
            match now.status.as_str() {
                "AVAILABLE" => return Ok(()),
                "PROCESSING_FAILED" => return Err(processing_failed(&now)),
                _ => {}
            }
            if started.elapsed() + wait > self.video_wait {
                return Err(PublishError::new(
                    FailureClass::Retryable {
                        retry_after: Some(wait),
                    },
                    "media_processing",
                    format!(
                        "{PLATFORM} is still processing the video ({}); the next attempt waits \
                         for it again without uploading it again.",
                        now.status
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(VIDEO_POLL_MAX);
        }
    }
}

/// The Videos API's limits, from what the engine knows of the file (its type, size and duration)
/// before anything is read.
fn check_video_facts(request: &PublishRequest) -> Result<(), PublishError> {
    let Some(facts) = request
        .media
        .iter()
        .map(|m| &m.facts)
        .find(|f| f.kind == soku_core::media::MediaKind::Video)
    else {
        return Ok(());
    };
    check_video_file(facts.mime, facts.size, "the video")?;
    if let Some(ms) = facts.duration_ms {
        let d = Duration::from_millis(ms);
        if d < VIDEO_MIN_DURATION || d > VIDEO_MAX_DURATION {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "unsupported_media",
                format!(
                    "LinkedIn takes videos of {} seconds to {} minutes; this one lasts {:.1} s.",
                    VIDEO_MIN_DURATION.as_secs(),
                    VIDEO_MAX_DURATION.as_secs() / 60,
                    d.as_secs_f64()
                ),
            ));
        }
    }
    Ok(())
}

/// The type and size of the video as read.
fn check_video_stream(stream: &MediaStream, url: &str) -> Result<(), PublishError> {
    check_video_file(
        stream.mime,
        stream.size,
        &crate::media::describe_as(url, "video"),
    )
}

fn check_video_file(mime: &str, size: u64, what: &str) -> Result<(), PublishError> {
    if !VIDEO_TYPES.contains(&mime) {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            format!("LinkedIn takes MP4 videos; {what} is {mime}."),
        ));
    }
    if size > VIDEO_MAX_BYTES {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "media_too_large",
            format!(
                "LinkedIn takes videos up to {} MB; {what} has {size} bytes.",
                VIDEO_MAX_BYTES / (1024 * 1024)
            ),
        ));
    }
    if size < VIDEO_MIN_BYTES {
        return Err(PublishError::new(
            FailureClass::Permanent,
            "unsupported_media",
            format!(
                "LinkedIn takes videos of at least {} KB; {what} has {size} bytes.",
                VIDEO_MIN_BYTES / 1000
            ),
        ));
    }
    Ok(())
}

/// Whether upload instructions cut a file of `size` bytes into consecutive, non-empty parts from
/// its first byte to its last.
fn covers(instructions: &[UploadInstruction], size: u64) -> bool {
    let mut next = 0u64;
    for part in instructions {
        if part.first_byte != next || part.last_byte < part.first_byte {
            return false;
        }
        next = part.last_byte + 1;
    }
    !instructions.is_empty() && next == size
}

/// `PROCESSING_FAILED`: permanent, LinkedIn's reason kept as the platform error.
fn processing_failed(state: &VideoState) -> PublishError {
    let reason = state
        .processing_failure_reason
        .as_deref()
        .filter(|r| !r.is_empty());
    let e = PublishError::new(
        FailureClass::Permanent,
        "media_processing_failed",
        format!(
            "{PLATFORM} could not process the video: {}",
            reason.unwrap_or("no reason given")
        ),
    );
    match reason {
        Some(reason) => e.with_platform_error(reason),
        None => e.with_platform_error(state.raw.clone()),
    }
}

#[derive(Deserialize)]
struct VideoInitialize {
    value: VideoInitializeValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoInitializeValue {
    video: String,
    #[serde(default)]
    upload_urls_expire_at: Option<i64>,
    upload_instructions: Vec<UploadInstruction>,
    /// Empty for a single part.
    #[serde(default)]
    upload_token: String,
}

/// Where one part of a video goes: bytes `first_byte..=last_byte`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct UploadInstruction {
    upload_url: String,
    first_byte: u64,
    last_byte: u64,
}

/// What an attempt at a video post saves for the next ones (`PublishRequest::progress`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct VideoProgress {
    /// The video the URN holds (the post's `video_url`).
    video_url: String,
    /// `urn:li:video:...`.
    video: String,
    #[serde(default)]
    upload_token: String,
    /// Unix milliseconds after which the upload URLs no longer work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    urls_expire_at: Option<i64>,
    instructions: Vec<UploadInstruction>,
    /// The ETags of the parts uploaded, in order (the first `etags.len()` parts).
    #[serde(default)]
    etags: Vec<String>,
    /// `finalizeUpload` succeeded: every byte is at LinkedIn.
    #[serde(default)]
    finalized: bool,
}

impl VideoProgress {
    /// What an earlier attempt saved about an upload of `url`, when it is one.
    fn for_video(saved: &Value, url: &str) -> Option<VideoProgress> {
        let saved: VideoProgress = serde_json::from_value(saved.clone()).ok()?;
        let usable = saved.video_url == url
            && saved.video.starts_with("urn:li:video:")
            && saved.etags.len() <= saved.instructions.len();
        usable.then_some(saved)
    }

    /// Whether the saved upload URLs stay valid long enough to finish with them.
    fn urls_valid(&self, now_ms: i64) -> bool {
        self.urls_expire_at
            .is_none_or(|at| at > now_ms + UPLOAD_URL_MARGIN_MS)
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("progress serializes")
    }
}

/// `GET /rest/videos/{urn}`, what the connector reads of it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct VideoState {
    #[serde(default)]
    status: String,
    #[serde(default)]
    processing_failure_reason: Option<String>,
    /// The answer as LinkedIn sent it.
    #[serde(skip)]
    raw: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_instructions_must_cover_the_file_in_order() {
        let part = |first, last| UploadInstruction {
            upload_url: "https://www.linkedin.com/dms-uploads/sp/x".into(),
            first_byte: first,
            last_byte: last,
        };
        assert!(covers(&[part(0, 9), part(10, 14)], 15));
        assert!(!covers(&[part(0, 9), part(10, 14)], 16));
        assert!(!covers(&[part(0, 9), part(11, 14)], 15));
        assert!(!covers(&[part(10, 14), part(0, 9)], 15));
        assert!(!covers(&[], 0));
        let saved = VideoProgress {
            video_url: "u".into(),
            video: "urn:li:video:1".into(),
            upload_token: String::new(),
            urls_expire_at: Some(1_000_000),
            instructions: vec![part(0, 9)],
            etags: Vec::new(),
            finalized: false,
        };
        assert!(saved.urls_valid(1_000_000 - UPLOAD_URL_MARGIN_MS - 1));
        assert!(!saved.urls_valid(1_000_000 - UPLOAD_URL_MARGIN_MS));
        assert!(VideoProgress::for_video(&saved.to_json(), "u").is_some());
        assert!(VideoProgress::for_video(&saved.to_json(), "other").is_none());
    }
}
