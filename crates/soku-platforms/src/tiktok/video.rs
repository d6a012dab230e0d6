//! A video sent by `FILE_UPLOAD`: the init, the chunks PUT to the `upload_url` in order, and the
//! progress saved so that a restart resumes the upload instead of sending the video twice.

use super::api::{self, PublishStatus};
use super::rules::{self, Settings};
use super::{PLATFORM, TikTok};
use crate::http::{self, Effect};
use crate::media::{MediaLimits, MediaStream};
use chrono::Utc;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use soku_core::connector::{FailureClass, PublishError, PublishRequest};

/// "Supported media formats | MP4 (recommended) WebM MOV"; "Maximum of 4GB"
/// (<https://developers.tiktok.com/doc/content-posting-api-media-transfer-guide>); the PUT's
/// `Content-Type` is "Select from: video/mp4 video/quicktime video/webm".
pub const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];
pub const VIDEO_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
pub const VIDEO_LIMITS: MediaLimits = MediaLimits {
    max_bytes: VIDEO_MAX_BYTES,
    types: VIDEO_TYPES,
};
/// The chunk size sent: 10 MiB, within "at least 5 MB but no greater than 64 MB" whichever way
/// "MB" is read; the final chunk takes the trailing bytes ("can be greater than `chunk_size` (up
/// to 128 MB)"), so it stays under 20 MiB, and a 4 GiB video needs 409 chunks (4096 MiB / 10 MiB
/// rounded down; the last takes 16 MiB), within "a maximum of 1000 chunks". A video of at most one chunk goes whole ("Videos with a total size less than 5 MB
/// must be uploaded as a whole, with `chunk_size` equal to the entire video's byte size").
pub const CHUNK_BYTES: u64 = 10 * 1024 * 1024;
/// "The `upload_url` is valid for one hour after issuance. The upload must be completed in this
/// time range."
pub const UPLOAD_URL_TTL_MS: i64 = 3600 * 1000;
/// A saved `upload_url` is used again only when it stays valid this much longer.
const UPLOAD_URL_MARGIN_MS: i64 = 2 * 60 * 1000;

/// `(chunk_size, total_chunk_count)` for a video of `size` bytes: "The value of
/// `total_chunk_count` should be equal to `video_size` divided by `chunk_size`, rounded down to
/// the nearest integer."
pub fn chunk_plan(size: u64) -> (u64, u64) {
    if size <= CHUNK_BYTES {
        (size, 1)
    } else {
        (CHUNK_BYTES, size / CHUNK_BYTES)
    }
}

/// What an attempt at a video post saves (`PublishRequest::progress`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct VideoProgress {
    /// Always `video`.
    pub kind: String,
    /// The post's video (its hosted URL).
    pub video_url: String,
    pub publish_id: String,
    pub upload_url: String,
    /// Unix milliseconds after which the `upload_url` no longer works.
    pub upload_expires_at: i64,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
    /// Chunks TikTok took (206 or 201), the first ones.
    #[serde(default)]
    pub chunks_done: u64,
    /// TikTok has every byte (the last chunk answered 201): it posts on its own from here.
    #[serde(default)]
    pub uploaded: bool,
    /// The chunk completing the upload went out (or may have: saved before its `PUT`, whose
    /// answer may be lost). From here TikTok may post this publish on its own, so no new
    /// publish is started unless TikTok says this one `FAILED`.
    #[serde(default)]
    pub final_sent: bool,
    /// TikTok answered 403 or 404 to a chunk: the `upload_url` no longer works.
    #[serde(default)]
    pub upload_dead: bool,
}

impl VideoProgress {
    /// What an earlier attempt saved about a video post of `url`, when it is that.
    pub fn for_video(saved: &Value, url: &str) -> Option<VideoProgress> {
        let p: VideoProgress = serde_json::from_value(saved.clone()).ok()?;
        (p.kind == "video"
            && p.video_url == url
            && !p.publish_id.is_empty()
            && p.total_chunk_count > 0
            && p.chunks_done <= p.total_chunk_count)
            .then_some(p)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("progress serializes")
    }

    /// Whether TikTok may post this publish without another byte from this server: the last
    /// chunk went out (or may have), or TikTok took every chunk.
    pub fn may_be_posted(&self) -> bool {
        self.uploaded || self.final_sent || self.chunks_done >= self.total_chunk_count
    }

    /// Whether the upload can go on with the saved `upload_url`.
    pub fn upload_usable(&self, now_ms: i64) -> bool {
        !self.upload_dead && self.upload_expires_at > now_ms + UPLOAD_URL_MARGIN_MS
    }

    /// The byte range of chunk `i`; the last one takes the trailing bytes.
    fn range(&self, i: u64) -> (u64, u64) {
        let start = i * self.chunk_size;
        let end = if i + 1 == self.total_chunk_count {
            self.video_size
        } else {
            start + self.chunk_size
        };
        (start, end)
    }
}

/// How a resumed video post goes on.
pub enum Resume {
    /// Only the processing is left to wait for.
    Wait(VideoProgress),
    /// Published (`PUBLISH_COMPLETE`).
    Done(PublishStatus),
    /// Nothing of the earlier attempt can be posted any more: start over.
    StartOver,
}

/// What a chunk's PUT came to.
enum Put {
    /// 206: more chunks to send.
    Partial,
    /// 201: "All parts are uploaded. TikTok will start the posting process."
    Complete,
    /// 416 with TikTok's `Content-Range: bytes 0-{UPLOADED_BYTES}/{total}`: its end, if any.
    OutOfSync(Option<u64>),
}

impl TikTok {
    /// Where an earlier attempt's video post stands, asked of TikTok (`status/fetch` with the
    /// saved `publish_id`); a partial upload goes on from the bytes TikTok has.
    pub(super) async fn resume_video(
        &self,
        request: &PublishRequest,
        token: &str,
        mut saved: VideoProgress,
    ) -> Result<Resume, PublishError> {
        let status = self.status(token, &saved.publish_id).await?;
        let committed = saved.may_be_posted();
        let Some(status) = status else {
            if committed {
                // The last chunk went to a publish TikTok no longer knows: it may have been
                // posted.
                return Err(PublishError::new(
                    FailureClass::Ambiguous,
                    "publish_unknown",
                    format!(
                        "{PLATFORM} no longer knows publish {} after the last part of its video \
                         was sent.",
                        saved.publish_id
                    ),
                ));
            }
            tracing::info!(publish_id = %saved.publish_id, "TikTok no longer knows the unfinished upload; starting over");
            return Ok(Resume::StartOver);
        };
        match status.status.as_str() {
            "PUBLISH_COMPLETE" => return Ok(Resume::Done(status)),
            "FAILED" if super::retry_from_scratch(&status) => return Ok(Resume::StartOver),
            "FAILED" | "SEND_TO_USER_INBOX" => return Err(super::not_published(&status)),
            _ => {}
        }
        if saved.uploaded || status.uploaded_bytes == Some(saved.video_size) {
            if !saved.uploaded {
                saved.uploaded = true;
                request.progress.save(saved.to_json()).await?;
            }
            tracing::info!(publish_id = %saved.publish_id, "resuming the wait for a TikTok post");
            return Ok(Resume::Wait(saved));
        }
        if !saved.upload_usable(Utc::now().timestamp_millis()) {
            if committed {
                // The last chunk went out, and the upload URL is gone: whether TikTok has the
                // file only its status can tell. Never a second publish while it may post.
                tracing::info!(publish_id = %saved.publish_id, "the TikTok upload URL is gone after the last chunk was sent; waiting on the publish's status");
                return Ok(Resume::Wait(saved));
            }
            // The file never arrived whole, and the upload URL is gone: TikTok cannot post it.
            tracing::info!(publish_id = %saved.publish_id, "the TikTok upload URL has expired; starting over");
            return Ok(Resume::StartOver);
        }
        // TikTok's count of bytes, when it falls on a chunk's start; else what was saved.
        if let Some(bytes) = status.uploaded_bytes
            && bytes.is_multiple_of(saved.chunk_size)
            && bytes / saved.chunk_size < saved.total_chunk_count
        {
            saved.chunks_done = bytes / saved.chunk_size;
        }
        tracing::info!(
            publish_id = %saved.publish_id,
            chunks_done = saved.chunks_done,
            chunks = saved.total_chunk_count,
            "resuming a TikTok upload"
        );
        let stream = self.media.stream(&saved.video_url, &VIDEO_LIMITS).await?;
        if stream.size != saved.video_size {
            if committed {
                return Ok(Resume::Wait(saved));
            }
            return Ok(Resume::StartOver);
        }
        let saved = self.upload_chunks(request, stream, saved).await?;
        Ok(Resume::Wait(saved))
    }

    /// `POST /v2/post/publish/video/init/` with `source: FILE_UPLOAD`, then every chunk; the
    /// progress saved once TikTok named the publish, after each chunk and once all are up.
    ///
    /// The init is repeatable: with `FILE_UPLOAD` nothing is posted until the file has arrived
    /// ("The video processing will occur asynchronously once the upload is complete",
    /// <https://developers.tiktok.com/doc/content-posting-api-get-started>; 201 "All parts are
    /// uploaded. TikTok will start the posting process."), and a lost answer leaves TikTok a
    /// task whose `upload_url` nobody has, which expires within the hour.
    pub(super) async fn upload_video(
        &self,
        request: &PublishRequest,
        token: &str,
        url: &str,
        settings: &Settings,
        caption: Option<&str>,
    ) -> Result<VideoProgress, PublishError> {
        let stream = self.media.stream(url, &VIDEO_LIMITS).await?;
        check_stream(&stream)?;
        let (chunk_size, total_chunk_count) = chunk_plan(stream.size);
        let body = json!({
            "post_info": rules::video_post_info(settings, caption),
            "source_info": {
                "source": "FILE_UPLOAD",
                "video_size": stream.size,
                "chunk_size": chunk_size,
                "total_chunk_count": total_chunk_count,
            },
        });
        let started = Utc::now().timestamp_millis();
        let init: VideoInit = api::call(
            api::post(
                &self.client,
                &self.settings.api_url,
                "/v2/post/publish/video/init/",
                token,
                Some(&body),
            ),
            Effect::Repeatable,
        )
        .await?;
        if init.publish_id.is_empty() || init.upload_url.is_empty() {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                format!("{PLATFORM} answered the video init without a publish_id or upload_url."),
            ));
        }
        self.check_upload_url(&init.upload_url)?;
        let saved = VideoProgress {
            kind: "video".into(),
            video_url: url.to_owned(),
            publish_id: init.publish_id,
            upload_url: init.upload_url,
            upload_expires_at: started + UPLOAD_URL_TTL_MS,
            video_size: stream.size,
            chunk_size,
            total_chunk_count,
            chunks_done: 0,
            uploaded: false,
            final_sent: false,
            upload_dead: false,
        };
        request.progress.save(saved.to_json()).await?;
        self.upload_chunks(request, stream, saved).await
    }

    /// Sends the chunks `saved` has not sent yet, in order, reading `stream` once and holding
    /// at most one chunk; the progress saved after each, and `final_sent` saved before the
    /// last (no `PUT` when that save fails): the last `PUT` may post, the others cannot.
    async fn upload_chunks(
        &self,
        request: &PublishRequest,
        stream: MediaStream,
        mut saved: VideoProgress,
    ) -> Result<VideoProgress, PublishError> {
        let MediaStream {
            mime, mut chunks, ..
        } = stream;
        let changed = || {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "media_changed",
                "The video did not have the size it announced; the post will be tried again.",
            )
        };
        // Bytes of the chunks TikTok already has are read past.
        let skip_to = saved.range(saved.chunks_done).0;
        let mut offset = 0u64;
        let mut part = bytes::BytesMut::new();
        while saved.chunks_done < saved.total_chunk_count {
            let Some(piece) = chunks.next().await else {
                return Err(changed());
            };
            let mut piece = piece?;
            if offset < skip_to {
                let skip = (skip_to - offset).min(piece.len() as u64) as usize;
                let _ = piece.split_to(skip);
                offset += skip as u64;
            }
            while !piece.is_empty() && saved.chunks_done < saved.total_chunk_count {
                let (start, end) = saved.range(saved.chunks_done);
                let want = (end - start) as usize;
                if part.is_empty() {
                    part.reserve(want);
                }
                let take = (want - part.len()).min(piece.len());
                part.extend_from_slice(&piece.split_to(take));
                offset += take as u64;
                if part.len() < want {
                    continue;
                }
                let last = saved.chunks_done + 1 == saved.total_chunk_count;
                // The last chunk's first sending: a refusal of it is known to have created
                // nothing.
                let first_final = last && !saved.final_sent;
                if first_final {
                    saved.final_sent = true;
                    request.progress.save(saved.to_json()).await?;
                }
                let effect = if last {
                    Effect::Creates
                } else {
                    Effect::Repeatable
                };
                match self
                    .put_chunk(&saved, mime, start, part.split().freeze(), effect)
                    .await
                {
                    Ok(Put::Partial) if last => {
                        // The chunk completing the upload answered "more to come": TikTok may
                        // or may not hold the file.
                        return Err(PublishError::new(
                            FailureClass::Ambiguous,
                            "unexpected_response",
                            format!(
                                "{PLATFORM} took the last chunk of the video without saying the \
                                 upload was complete."
                            ),
                        ));
                    }
                    Ok(Put::Partial) => saved.chunks_done += 1,
                    Ok(Put::Complete) => {
                        saved.chunks_done = saved.total_chunk_count;
                        saved.uploaded = true;
                    }
                    Ok(Put::OutOfSync(end)) => return self.resync(request, saved, end).await,
                    Err(e) if e.code == "upload_expired" => {
                        saved.upload_dead = true;
                        if first_final {
                            // A 403 / 404 is a definite "not taken": TikTok never received the
                            // file, so nothing was posted (as YouTube's `final_not_taken`).
                            saved.final_sent = false;
                        }
                        request.progress.save(saved.to_json()).await?;
                        if saved.may_be_posted() {
                            // The last chunk went out earlier: TikTok may hold the file, and its
                            // status tells. Never start over.
                            tracing::info!(publish_id = %saved.publish_id, "the TikTok upload URL is gone after the last chunk was sent; waiting on the publish's status");
                            return Ok(saved);
                        }
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                }
                request.progress.save(saved.to_json()).await?;
            }
        }
        drop(chunks);
        if !saved.uploaded {
            // Every chunk answered 206: TikTok never said the file was whole, but the last
            // chunk went out.
            return Err(PublishError::new(
                FailureClass::Ambiguous,
                "unexpected_response",
                format!("{PLATFORM} took every chunk without saying the upload was complete."),
            ));
        }
        Ok(saved)
    }

    /// After a 416 whose `Content-Range` ends at `end` (`None`: no header, no bytes): see
    /// [`held`]. All of them: the upload is complete. At a chunk's start: the next attempt goes
    /// on from there. Anywhere else: the upload cannot go on (and, once the last chunk went out,
    /// the next attempt waits on the status instead of starting over).
    async fn resync(
        &self,
        request: &PublishRequest,
        mut saved: VideoProgress,
        end: Option<u64>,
    ) -> Result<VideoProgress, PublishError> {
        let what = match end {
            Some(end) => format!("bytes up to {end}"),
            None => "no bytes".to_owned(),
        };
        match held(&saved, end) {
            Held::All => {
                saved.chunks_done = saved.total_chunk_count;
                saved.uploaded = true;
                request.progress.save(saved.to_json()).await?;
                return Ok(saved);
            }
            Held::Chunks(n) => saved.chunks_done = n,
            Held::Unknown => saved.upload_dead = true,
        }
        request.progress.save(saved.to_json()).await?;
        Err(PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "upload_out_of_sync",
            format!(
                "{PLATFORM} holds {what} of the video, not what this server sent; the upload \
                 will go on from there."
            ),
        ))
    }

    /// PUTs one chunk: `Content-Type` the video's type, `Content-Length` its size,
    /// `Content-Range: bytes {first}-{last}/{total}`, and no `Authorization` ("Use the entire
    /// URL returned as the `upload_url`, including the returned query parameters.").
    async fn put_chunk(
        &self,
        saved: &VideoProgress,
        mime: &str,
        start: u64,
        bytes: bytes::Bytes,
        effect: Effect,
    ) -> Result<Put, PublishError> {
        let len = bytes.len() as u64;
        let request = self
            .client
            .put(&saved.upload_url)
            .timeout(http::upload_timeout_at(
                self.settings.timeout,
                len,
                self.upload_rate,
            ))
            .header(reqwest::header::CONTENT_TYPE, mime)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .header(
                reqwest::header::CONTENT_RANGE,
                format!("bytes {start}-{}/{}", start + len - 1, saved.video_size),
            )
            .body(bytes);
        let response = http::send(request, effect, PLATFORM).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&e, effect, PLATFORM))?;
        match status.as_u16() {
            201 => Ok(Put::Complete),
            206 | 200 => Ok(Put::Partial),
            // "`Content-Range` does not reflect the actual upload progress."
            416 => Ok(Put::OutOfSync(range_end(&headers))),
            // "The `upload_url` has expired." / "TikTok cannot find a valid upload task".
            403 | 404 => Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "upload_expired",
                format!(
                    "{PLATFORM} no longer takes the video at its upload URL ({status}); the \
                     video will be sent again from the start."
                ),
            )
            .with_platform_error(http::platform_text(&body))),
            // "Malformated request headers, or BYTE_SIZE_OF_THIS_CHUNK does not reflect the
            // true byte size": this server's fault, not worth repeating.
            400 => Err(PublishError::new(
                FailureClass::Permanent,
                "rejected",
                format!("{PLATFORM} refused a chunk of the video (400)."),
            )
            .with_platform_error(http::platform_text(&body))),
            // 5xx: "You should retry submitting this chunk."
            _ => Err(http::status_error(
                status, &headers, &body, effect, PLATFORM,
            )),
        }
    }

    /// The upload URL goes to TikTok (or to the configured API's own origin, for fakes and
    /// staging setups): the video is not sent anywhere else.
    fn check_upload_url(&self, upload_url: &str) -> Result<(), PublishError> {
        let ok = url::Url::parse(upload_url).ok().is_some_and(|u| {
            let tiktok = u.scheme() == "https"
                && u.host_str().is_some_and(|h| {
                    let h = h.to_ascii_lowercase();
                    h == "tiktokapis.com" || h.ends_with(".tiktokapis.com")
                });
            let same_origin =
                url::Url::parse(&self.settings.api_url).is_ok_and(|api| api.origin() == u.origin());
            tiktok || same_origin
        });
        if ok {
            Ok(())
        } else {
            Err(PublishError::new(
                FailureClass::Permanent,
                "unexpected_response",
                format!("{PLATFORM} named an upload location outside TikTok; not uploading."),
            ))
        }
    }
}

/// "The response header includes the following key-value pair indicating the number of bytes
/// uploaded: `Content-Range:bytes 0-{UPLOADED_BYTES}/{TOTAL_BYTE_LENGTH}`": the range's end, as
/// sent. Whether it is an HTTP range's end (the last byte's index) or the count of bytes the
/// name says is not documented: [`held`] reads it both ways.
fn range_end(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes "))
        .and_then(|v| v.split_once('/'))
        .and_then(|(range, _)| range.split_once('-'))
        .and_then(|(_, end)| end.trim().parse::<u64>().ok())
}

/// What TikTok holds after a 416.
#[derive(Debug, PartialEq, Eq)]
enum Held {
    /// The whole file.
    All,
    /// The first `n` chunks, exactly.
    Chunks(u64),
    /// Neither: the upload cannot go on.
    Unknown,
}

/// The 416's `Content-Range` end read both ways (HTTP's inclusive end, so `end + 1` bytes; or
/// TikTok's `{UPLOADED_BYTES}`, a count): whichever reading falls on the end of the file or of
/// a chunk. The two cannot both: they differ by one byte, and chunks are megabytes (the last
/// chunk's start plus one byte is never the file's end either). No header: no bytes.
fn held(saved: &VideoProgress, end: Option<u64>) -> Held {
    let Some(end) = end else {
        return Held::Chunks(0);
    };
    if end.checked_add(1) == Some(saved.video_size) || end == saved.video_size {
        return Held::All;
    }
    [end.saturating_add(1), end]
        .into_iter()
        .find(|have| {
            have.is_multiple_of(saved.chunk_size)
                && have / saved.chunk_size < saved.total_chunk_count
        })
        .map_or(Held::Unknown, |have| Held::Chunks(have / saved.chunk_size))
}

fn check_stream(stream: &MediaStream) -> Result<(), PublishError> {
    if !VIDEO_TYPES.contains(&stream.mime) {
        return Err(rules::permanent(
            "unsupported_media",
            format!(
                "{PLATFORM} takes MP4, MOV and WebM videos; this one is {}.",
                stream.mime
            ),
        ));
    }
    if stream.size == 0 || stream.size > VIDEO_MAX_BYTES {
        return Err(rules::permanent(
            "media_too_large",
            format!(
                "{PLATFORM} takes videos of up to 4 GB; this one has {} bytes.",
                stream.size
            ),
        ));
    }
    Ok(())
}

/// The init's answer: `publish_id` ("The maximum length of this field is 64") and
/// `upload_url` ("This field is only for `source=FILE_UPLOAD`").
#[derive(Deserialize)]
struct VideoInit {
    #[serde(default)]
    publish_id: String,
    #[serde(default)]
    upload_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_tiktoks_rules() {
        // Small: whole.
        assert_eq!(chunk_plan(4_194_304), (4_194_304, 1));
        assert_eq!(chunk_plan(CHUNK_BYTES), (CHUNK_BYTES, 1));
        // Larger: 10 MiB chunks, the trailing bytes in the last.
        let size = 2 * CHUNK_BYTES + 123;
        assert_eq!(chunk_plan(size), (CHUNK_BYTES, 2));
        // 4 GB: within 1000 chunks, the last under 128 MB.
        let (chunk, n) = chunk_plan(VIDEO_MAX_BYTES);
        assert!(n <= 1000);
        assert!(VIDEO_MAX_BYTES - (n - 1) * chunk < 128_000_000);
        let p = VideoProgress {
            kind: "video".into(),
            video_url: "u".into(),
            publish_id: "v".into(),
            upload_url: "https://open-upload.tiktokapis.com/video/?upload_id=1".into(),
            upload_expires_at: 1_000_000,
            video_size: size,
            chunk_size: CHUNK_BYTES,
            total_chunk_count: 2,
            chunks_done: 0,
            uploaded: false,
            final_sent: false,
            upload_dead: false,
        };
        assert_eq!(p.range(0), (0, CHUNK_BYTES));
        assert_eq!(p.range(1), (CHUNK_BYTES, size));
        assert!(p.upload_usable(1_000_000 - UPLOAD_URL_MARGIN_MS - 1));
        assert!(!p.upload_usable(1_000_000 - UPLOAD_URL_MARGIN_MS));
        assert!(VideoProgress::for_video(&p.to_json(), "u").is_some());
        assert!(VideoProgress::for_video(&p.to_json(), "other").is_none());
        assert!(VideoProgress::for_video(&json!({"kind": "photo"}), "u").is_none());
        // 4 GiB in 10 MiB chunks: 409, the last 16 MiB.
        assert_eq!(n, 409);
        assert_eq!(VIDEO_MAX_BYTES - (n - 1) * chunk, 16 * 1024 * 1024);
        // Progress saved before `final_sent` existed still reads.
        let mut old = p.to_json();
        old.as_object_mut().unwrap().remove("final_sent");
        let read = VideoProgress::for_video(&old, "u").unwrap();
        assert!(!read.final_sent && !read.may_be_posted());
    }

    #[test]
    fn a_416_range_end_is_read_as_an_index_or_a_count() {
        let p = VideoProgress {
            kind: "video".into(),
            video_url: "u".into(),
            publish_id: "v".into(),
            upload_url: "https://open-upload.tiktokapis.com/video/?upload_id=1".into(),
            upload_expires_at: 0,
            video_size: 3 * CHUNK_BYTES + 5,
            chunk_size: CHUNK_BYTES,
            total_chunk_count: 3,
            chunks_done: 0,
            uploaded: false,
            final_sent: false,
            upload_dead: false,
        };
        assert_eq!(held(&p, None), Held::Chunks(0));
        // One chunk: as the last byte's index, or as the count.
        assert_eq!(held(&p, Some(CHUNK_BYTES - 1)), Held::Chunks(1));
        assert_eq!(held(&p, Some(CHUNK_BYTES)), Held::Chunks(1));
        assert_eq!(held(&p, Some(2 * CHUNK_BYTES)), Held::Chunks(2));
        // The whole file, either way.
        assert_eq!(held(&p, Some(p.video_size - 1)), Held::All);
        assert_eq!(held(&p, Some(p.video_size)), Held::All);
        // Neither reading on a boundary.
        assert_eq!(held(&p, Some(CHUNK_BYTES + 7)), Held::Unknown);
        assert_eq!(held(&p, Some(3 * CHUNK_BYTES)), Held::Unknown);
    }

    #[test]
    fn the_range_end_is_read_from_content_range() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(range_end(&h), None);
        h.insert(
            "content-range",
            "bytes 0-10485759/20971643".parse().unwrap(),
        );
        assert_eq!(range_end(&h), Some(10_485_759));
    }
}
