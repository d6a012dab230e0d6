//! Media: images uploaded whole, and videos through the chunked upload (`initialize`,
//! `append` in segments, `finalize`, then `STATUS` until processed), resumed after a restart from
//! the saved progress. See the module documentation of `x`.

use super::*;

impl X {
    pub(super) async fn fetch_images(&self, urls: &[String]) -> Result<Vec<Media>, PublishError> {
        let limits = MediaLimits {
            max_bytes: GIF_MAX_BYTES,
            types: IMAGE_TYPES,
        };
        let mut out = Vec::with_capacity(urls.len());
        for url in urls {
            let media = self.media.fetch(url, &limits).await?;
            if !IMAGE_TYPES.contains(&media.mime) {
                return Err(PublishError::new(
                    FailureClass::Permanent,
                    "unsupported_media",
                    format!(
                        "X takes JPEG, PNG, GIF and WebP images; {} is {}.",
                        crate::media::describe(url),
                        media.mime
                    ),
                ));
            }
            let max = if media.mime == "image/gif" {
                GIF_MAX_BYTES
            } else {
                IMAGE_MAX_BYTES
            };
            if media.bytes.len() as u64 > max {
                return Err(PublishError::new(
                    FailureClass::Permanent,
                    "media_too_large",
                    format!(
                        "X takes {} images up to {} MB; {} has {} bytes.",
                        media.mime,
                        max / (1024 * 1024),
                        crate::media::describe(url),
                        media.bytes.len()
                    ),
                ));
            }
            out.push(media);
        }
        if out.len() > 1 && out.iter().any(|m| m.mime == "image/gif") {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "unsupported_media",
                "X takes up to 4 photos or one animated GIF alone; this post mixes a GIF with other images.",
            ));
        }
        Ok(out)
    }

    /// Uploads one image (initialize, append, finalize, status) and returns its media id.
    pub(super) async fn upload(&self, token: &str, media: &Media) -> Result<String, PublishError> {
        let category = if media.mime == "image/gif" {
            "tweet_gif"
        } else {
            "tweet_image"
        };
        let total = media.bytes.len() as u64;
        let id = self.initialize(token, media.mime, total, category).await?;
        for (index, chunk) in media.bytes.chunks(CHUNK_BYTES).enumerate() {
            let segment = bytes::Bytes::copy_from_slice(chunk);
            self.append(token, &id, index, segment, media.mime).await?;
        }
        let finalized = self.finalize(token, &id).await?;
        self.processed(
            token,
            &id,
            finalized.processing_info,
            Processed::Image,
            PROCESSING_MAX,
        )
        .await?;
        Ok(id)
    }

    /// `POST /2/media/upload/initialize`: the new media id.
    async fn initialize(
        &self,
        token: &str,
        mime: &str,
        total_bytes: u64,
        category: &str,
    ) -> Result<String, PublishError> {
        let init = self
            .http
            .post(self.url("/2/media/upload/initialize"))
            .bearer_auth(token)
            .json(&json!({
                "media_type": mime,
                "total_bytes": total_bytes,
                "media_category": category,
            }));
        let response = http::send(init, Effect::Repeatable, PLATFORM).await?;
        let init: Data<Upload> = self
            .read(response, Effect::Repeatable)
            .await
            .map_err(media_error)?;
        let id = init.data.id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                "X's media upload answered with no usable media id.",
            ));
        }
        Ok(id)
    }

    /// `POST /2/media/upload/{id}/append`: one segment.
    async fn append(
        &self,
        token: &str,
        id: &str,
        index: usize,
        segment: bytes::Bytes,
        mime: &str,
    ) -> Result<(), PublishError> {
        let file_name = format!("media.{}", crate::media::extension(mime));
        let length = segment.len() as u64;
        let part = reqwest::multipart::Part::stream_with_length(segment, length)
            .file_name(file_name)
            .mime_str("application/octet-stream")
            .expect("a valid MIME type");
        let form = reqwest::multipart::Form::new()
            .text("segment_index", index.to_string())
            .part("media", part);
        let append = self
            .http
            .post(self.url(&format!("/2/media/upload/{id}/append")))
            .bearer_auth(token)
            .multipart(form);
        let response = http::send(append, Effect::Repeatable, PLATFORM).await?;
        self.read_raw(response, Effect::Repeatable)
            .await
            .map_err(media_error)?;
        Ok(())
    }

    /// `POST /2/media/upload/{id}/finalize`.
    async fn finalize(&self, token: &str, id: &str) -> Result<Upload, PublishError> {
        let finalize = self
            .http
            .post(self.url(&format!("/2/media/upload/{id}/finalize")))
            .bearer_auth(token);
        let response = http::send(finalize, Effect::Repeatable, PLATFORM).await?;
        let finalized: Data<Upload> = self
            .read(response, Effect::Repeatable)
            .await
            .map_err(media_error)?;
        Ok(finalized.data)
    }

    /// `GET /2/media/upload?command=STATUS`; `None` when X does not know the media id (any more).
    async fn status(&self, token: &str, id: &str) -> Result<Option<Upload>, PublishError> {
        let check = self
            .http
            .get(self.url("/2/media/upload"))
            .query(&[("command", "STATUS"), ("media_id", id)])
            .bearer_auth(token);
        let response = http::send(check, Effect::Repeatable, PLATFORM).await?;
        if matches!(response.status().as_u16(), 400 | 404) {
            return Ok(None);
        }
        let status: Data<Upload> = self
            .read(response, Effect::Repeatable)
            .await
            .map_err(media_error)?;
        Ok(Some(status.data))
    }

    /// Waits, polling STATUS as X asks, until the media `id` is processed: `Ok` once it may be
    /// posted, a `Permanent` error when processing failed, a `Retryable` one when it is still
    /// processing after `max`.
    async fn processed(
        &self,
        token: &str,
        id: &str,
        mut info: Option<Processing>,
        what: Processed,
        max: Duration,
    ) -> Result<(), PublishError> {
        let started = Instant::now();
        loop {
            let Some(now) = &info else {
                return Ok(());
            };
            match now.state.as_str() {
                "succeeded" => return Ok(()),
                "failed" => return Err(processing_failed(now.error.as_ref(), what)),
                _ => {}
            }
            let asked = now.check_after_secs.unwrap_or(1);
            let wait = match what {
                Processed::Image => Duration::from_secs(asked.clamp(1, 10)),
                Processed::Video => Duration::from_secs(asked.max(1)).min(VIDEO_POLL_MAX),
            };
            if started.elapsed() + wait > max {
                return Err(match what {
                    Processed::Image => PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "media_processing",
                        "X is still processing an image; the post will be tried again.",
                    ),
                    Processed::Video => PublishError::new(
                        FailureClass::Retryable {
                            retry_after: Some(wait),
                        },
                        "media_processing",
                        format!(
                            "X is still processing the video ({}); the next attempt waits for it \
                             again without uploading it again.",
                            now.state
                        ),
                    ),
                });
            }
            tokio::time::sleep(wait).await;
            info = match self.status(token, id).await? {
                Some(status) => status.processing_info,
                None => {
                    return Err(PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "media_expired",
                        "X no longer knows the media being processed; it will be uploaded again.",
                    ));
                }
            };
        }
    }

    /// The media id of the post's video, processed and ready: the upload an earlier attempt
    /// finalized when X still knows it, else a new upload.
    pub(super) async fn video(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
    ) -> Result<String, PublishError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(saved) = VideoProgress::resumable(request.progress.saved(), url, now) {
            match self.status(token, &saved.media_id).await? {
                Some(status) => {
                    tracing::info!(media_id = %saved.media_id, "resuming an uploaded X video");
                    self.processed(
                        token,
                        &saved.media_id,
                        status.processing_info,
                        Processed::Video,
                        self.video_wait,
                    )
                    .await?;
                    return Ok(saved.media_id);
                }
                None => {
                    tracing::info!(
                        media_id = %saved.media_id,
                        "X no longer knows the uploaded video; uploading it again"
                    );
                }
            }
        }
        let limits = MediaLimits {
            max_bytes: VIDEO_MAX_BYTES,
            types: VIDEO_TYPES,
        };
        let stream = self.media.stream(url, &limits).await?;
        let (id, finalized) = self.upload_video(request, token, url, stream).await?;
        self.processed(
            token,
            &id,
            finalized.processing_info,
            Processed::Video,
            self.video_wait,
        )
        .await?;
        Ok(id)
    }

    /// Uploads the video read from `stream` (initialize, append segment by segment, finalize),
    /// saving the progress after INIT and after FINALIZE.
    async fn upload_video(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        stream: MediaStream,
    ) -> Result<(String, Upload), PublishError> {
        let MediaStream {
            mime,
            size,
            mut chunks,
        } = stream;
        if !VIDEO_TYPES.contains(&mime) {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "unsupported_media",
                format!(
                    "X takes MP4, MOV and WebM videos; {} is {mime}.",
                    crate::media::describe_as(url, "video")
                ),
            ));
        }
        if size > VIDEO_MAX_BYTES {
            return Err(PublishError::new(
                FailureClass::Permanent,
                "media_too_large",
                format!(
                    "X takes videos up to {} MB; {} has {size} bytes.",
                    VIDEO_MAX_BYTES / (1024 * 1024),
                    crate::media::describe_as(url, "video")
                ),
            ));
        }
        let id = self.initialize(token, mime, size, "tweet_video").await?;
        let mut saved = VideoProgress {
            video_url: url.to_owned(),
            media_id: id.clone(),
            uploaded: false,
            expires_at: None,
        };
        request.progress.save(progress_json(&saved)).await?;

        // One segment at a time: the bytes read are cut into segments of CHUNK_BYTES.
        let mut segment = bytes::BytesMut::new();
        let mut index = 0usize;
        let mut sent = 0u64;
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
        while let Some(chunk) = chunks.next().await {
            let mut chunk = chunk?;
            while !chunk.is_empty() {
                if segment.is_empty() {
                    segment.reserve(CHUNK_BYTES);
                }
                let take = (CHUNK_BYTES - segment.len()).min(chunk.len());
                segment.extend_from_slice(&chunk.split_to(take));
                if segment.len() == CHUNK_BYTES {
                    sent += CHUNK_BYTES as u64;
                    if sent > size {
                        return Err(changed());
                    }
                    let full = segment.split().freeze();
                    self.append(token, &id, index, full, mime).await?;
                    index += 1;
                }
            }
        }
        if !segment.is_empty() {
            sent += segment.len() as u64;
            if sent > size {
                return Err(changed());
            }
            self.append(token, &id, index, segment.freeze(), mime)
                .await?;
        }
        if sent != size {
            return Err(changed());
        }
        drop(chunks);

        let finalized = self.finalize(token, &id).await?;
        saved.uploaded = true;
        saved.expires_at = finalized
            .expires_after_secs
            .filter(|s| *s > 0)
            .map(|s| chrono::Utc::now().timestamp() + s);
        request.progress.save(progress_json(&saved)).await?;
        Ok((id, finalized))
    }
}

fn progress_json(progress: &VideoProgress) -> Value {
    serde_json::to_value(progress).expect("progress serializes")
}

/// X's `processing_info.state` `failed`: permanent.
fn processing_failed(error: Option<&Value>, what: Processed) -> PublishError {
    let said = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    let detail = said.unwrap_or("no reason given");
    match what {
        Processed::Image => PublishError::new(
            FailureClass::Permanent,
            "media_rejected",
            format!("X could not process an image: {detail}"),
        ),
        Processed::Video => {
            let e = PublishError::new(
                FailureClass::Permanent,
                "media_processing_failed",
                format!("X could not process the video: {detail}"),
            );
            match (said, error) {
                (Some(message), _) => e.with_platform_error(message),
                (None, Some(raw)) => e.with_platform_error(raw.to_string()),
                (None, None) => e,
            }
        }
    }
}

/// Upload failures: a refusal of the media itself gets its own code.
fn media_error(mut e: PublishError) -> PublishError {
    if e.class == FailureClass::Permanent && e.code == "rejected" {
        e.code = "media_rejected".into();
    }
    e
}

#[derive(Deserialize)]
struct Upload {
    id: String,
    #[serde(default)]
    processing_info: Option<Processing>,
    #[serde(default)]
    expires_after_secs: Option<i64>,
}

/// What an attempt at a video post saves for the next ones (`PublishRequest::progress`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct VideoProgress {
    /// The video the media id holds (the post's `video_url`).
    video_url: String,
    media_id: String,
    /// Finalized: every byte is at X.
    uploaded: bool,
    /// Unix seconds after which X no longer knows the media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl VideoProgress {
    /// A finalized upload of `url` X should still know, from what an earlier attempt saved.
    fn resumable(saved: &Value, url: &str, now: i64) -> Option<VideoProgress> {
        let saved: VideoProgress = serde_json::from_value(saved.clone()).ok()?;
        let usable = saved.uploaded
            && saved.video_url == url
            && !saved.media_id.is_empty()
            && saved.media_id.bytes().all(|b| b.is_ascii_digit())
            && saved.expires_at.is_none_or(|at| at > now);
        usable.then_some(saved)
    }
}

/// What is being processed, for the polling's errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Processed {
    Image,
    Video,
}

#[derive(Deserialize)]
struct Processing {
    #[serde(default)]
    state: String,
    #[serde(default)]
    check_after_secs: Option<u64>,
    #[serde(default)]
    error: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_finalized_unexpired_upload_of_the_same_video_is_resumed() {
        let url = "https://media.test/media/med_a/a.mp4";
        let saved = |uploaded: bool, expires_at: Option<i64>, video: &str| {
            json!({ "video_url": video, "media_id": "1880028106020515840",
                    "uploaded": uploaded, "expires_at": expires_at })
        };
        let now = 1_000;
        let r = VideoProgress::resumable(&saved(true, Some(2_000), url), url, now).unwrap();
        assert_eq!(r.media_id, "1880028106020515840");
        assert!(VideoProgress::resumable(&saved(true, None, url), url, now).is_some());
        assert!(VideoProgress::resumable(&saved(false, Some(2_000), url), url, now).is_none());
        assert!(VideoProgress::resumable(&saved(true, Some(999), url), url, now).is_none());
        assert!(
            VideoProgress::resumable(&saved(true, None, "https://o.test/b.mp4"), url, now)
                .is_none()
        );
        assert!(VideoProgress::resumable(&Value::Null, url, now).is_none());
        assert!(VideoProgress::resumable(&json!({ "other": 1 }), url, now).is_none());
    }

    #[test]
    fn a_failed_video_keeps_x_s_message() {
        let e = processing_failed(
            Some(
                &json!({"code": 1, "name": "InvalidMedia", "message": "Unsupported video format"}),
            ),
            Processed::Video,
        );
        assert_eq!(
            (e.class, e.code.as_str(), e.platform_error.as_deref()),
            (
                FailureClass::Permanent,
                "media_processing_failed",
                Some("Unsupported video format")
            )
        );
        let e = processing_failed(Some(&json!({"code": 3})), Processed::Video);
        assert_eq!(e.platform_error.as_deref(), Some(r#"{"code":3}"#));
        assert_eq!(
            processing_failed(None, Processed::Image).code,
            "media_rejected"
        );
    }
}
