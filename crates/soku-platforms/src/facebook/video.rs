//! Videos (`POST /{page}/videos`, published at once) and the video status every upload reads
//! (`GET /{video-id}?fields=status`), reels and video stories included.

use super::progress::{Resume, Saved, clear_or_log, save_or_log};
use super::{FacebookPages, PLATFORM, WEB};
use crate::graph::{self, Backoff};
use crate::http::Effect;
use serde::Deserialize;
use soku_core::connector::{FailureClass, Progress, PublishError, PublishedPost};

#[derive(Deserialize)]
pub(super) struct VideoRead {
    #[serde(default)]
    pub status: Option<VideoStatus>,
    #[serde(default)]
    pub permalink_url: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct VideoStatus {
    #[serde(default)]
    video_status: Option<String>,
    #[serde(default)]
    uploading_phase: Option<Phase>,
    #[serde(default)]
    processing_phase: Option<Phase>,
    #[serde(default)]
    publishing_phase: Option<Phase>,
}

#[derive(Deserialize)]
struct Phase {
    #[serde(default)]
    status: Option<String>,
    /// The spec's `errors[]`.
    #[serde(default)]
    errors: Vec<PhaseError>,
    /// The documentation example's single `error`.
    #[serde(default)]
    error: Option<PhaseError>,
    /// `publishing_phase` only: "`published` or `not_published`" (Stories guide).
    #[serde(default)]
    publish_status: Option<String>,
}

#[derive(Deserialize)]
struct PhaseError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Where a video's processing is.
pub(super) enum Processing {
    Ready,
    /// Facebook's words on why.
    Failed(String),
    Expired,
    Pending,
}

fn is_complete(phase: &Option<Phase>) -> bool {
    phase
        .as_ref()
        .and_then(|p| p.status.as_deref())
        .is_some_and(|s| s == "complete" || s == "completed")
}

impl VideoStatus {
    pub fn state(&self) -> Processing {
        let failed_phase = [&self.processing_phase, &self.uploading_phase]
            .into_iter()
            .flatten()
            .find(|p| p.status.as_deref() == Some("error"));
        match self.video_status.as_deref() {
            Some("error" | "upload_failed") => Processing::Failed(self.why()),
            Some("expired") => Processing::Expired,
            Some("ready") => Processing::Ready,
            _ if failed_phase.is_some() => Processing::Failed(self.why()),
            _ if is_complete(&self.processing_phase) => Processing::Ready,
            _ => Processing::Pending,
        }
    }

    /// Where a reel or video story session is. Uploaded: the uploading phase complete, or a
    /// `video_status` past uploading. Finishable: processing complete (or `ready`), or processing
    /// `not_started` after the upload (the guides finish right after the upload, the status
    /// check being optional: a session Facebook processes only once finished must not wait
    /// here forever). Published: the publishing phase under way or done, or `publish_status`
    /// `published`.
    pub fn session_state(&self) -> SessionState {
        match self.state() {
            Processing::Failed(why) => return SessionState::Failed(why),
            Processing::Expired => return SessionState::Expired,
            Processing::Ready | Processing::Pending => {}
        }
        let phase = |p: &Option<Phase>| p.as_ref().and_then(|p| p.status.clone());
        let publishing = self.publishing_phase.as_ref();
        if publishing.and_then(|p| p.publish_status.as_deref()) == Some("published")
            || matches!(
                phase(&self.publishing_phase).as_deref(),
                Some("complete" | "completed" | "in_progress")
            )
        {
            return SessionState::Published;
        }
        let status = self.video_status.as_deref();
        let uploaded = is_complete(&self.uploading_phase)
            || matches!(status, Some("upload_complete" | "processing" | "ready"));
        if !uploaded {
            return match phase(&self.uploading_phase).as_deref() {
                Some("in_progress") => SessionState::Pending,
                _ => SessionState::NotUploaded,
            };
        }
        if status == Some("ready")
            || is_complete(&self.processing_phase)
            || phase(&self.processing_phase).as_deref() == Some("not_started")
        {
            SessionState::Finishable
        } else {
            SessionState::Pending
        }
    }

    /// The phases' error messages, processing first.
    fn why(&self) -> String {
        let said: Vec<String> = [&self.processing_phase, &self.uploading_phase]
            .into_iter()
            .flatten()
            .flat_map(|p| p.errors.iter().chain(p.error.as_ref()))
            .filter_map(|e| {
                let m = e.message.as_deref()?.trim();
                (!m.is_empty()).then(|| match e.code {
                    Some(c) => format!("{m} ({c})"),
                    None => m.to_owned(),
                })
            })
            .collect();
        if said.is_empty() {
            format!(
                "status {}",
                self.video_status.as_deref().unwrap_or("unknown")
            )
        } else {
            said.join("; ")
        }
    }
}

/// Where a reel or video story session is (`VideoStatus::session_state`).
pub(super) enum SessionState {
    /// No file arrived: upload it.
    NotUploaded,
    /// Uploading or processing.
    Pending,
    Finishable,
    Published,
    /// Facebook's words on why.
    Failed(String),
    Expired,
}

/// How a wait for a video ended (a read that failed is an error).
pub(super) enum VideoState {
    Ready(PublishedPost),
    /// Facebook's words on why it could not process the video: it will never show.
    Failed(String),
    /// Facebook says its upload `expired`: it will never show.
    Expired,
    /// Facebook answers 100/33 for it ("does not exist, cannot be loaded due to missing
    /// permissions, or does not support this operation"): read-after-write lag, a permission
    /// lost, or gone. It may be live.
    Unreadable,
    /// Still processing at the deadline, with the `permalink_url` last read.
    Processing(Option<String>),
}

impl FacebookPages {
    /// A video: the one an earlier attempt uploaded (saved in `progress`), else a new upload,
    /// its marker saved first; then its processing waited for. Once Facebook has taken the
    /// upload (`published=true`: the video is the post), nothing but Facebook's own word that
    /// the video failed or expired ends the attempt unpublished (`after_upload`).
    pub(super) async fn video_post(
        &self,
        page: &str,
        token: &str,
        url: &str,
        description: Option<&str>,
        progress: &Progress,
        resume: Resume,
    ) -> Result<PublishedPost, PublishError> {
        let mut backoff = self.app.polling.start();
        match &resume {
            Resume::Mine(Saved::Video { video_id, .. }) => {
                match self.wait_video(page, video_id, token, &mut backoff).await {
                    Ok(VideoState::Expired) => tracing::info!(
                        "the Facebook video an earlier attempt uploaded expired; uploading it again"
                    ),
                    waited => return after_upload(page, video_id, waited),
                }
            }
            // The upload may have been taken: looked for, never sent again blindly.
            Resume::Mine(Saved::VideoSent { .. }) => {
                return Err(super::earlier_call_unconfirmed("video upload"));
            }
            _ => {}
        }
        // The marker first: no upload when it cannot be saved.
        progress
            .save(
                Saved::VideoSent {
                    video_url: url.to_owned(),
                }
                .to_value(),
            )
            .await?;
        let mut form = vec![("file_url", url), ("published", "true")];
        if let Some(d) = description {
            form.push(("description", d));
        }
        form.push(("access_token", token));
        let created: IdOnly = match self
            .page_call(
                self.app
                    .client
                    .post(self.app.url(&format!("{page}/videos")))
                    .form(&form),
                Effect::Creates,
            )
            .await
        {
            Ok(created) => created,
            Err(e) => {
                // A refusal took nothing (a timeout or 5xx may have: the marker stays).
                if e.class != FailureClass::Ambiguous {
                    clear_or_log(progress, "video").await;
                }
                return Err(e);
            }
        };
        // The video is the post from here on: a failed save is logged (the marker stays, so
        // no later attempt uploads again).
        save_or_log(
            progress,
            &Saved::Video {
                video_url: url.to_owned(),
                video_id: created.id.clone(),
            },
            "video",
        )
        .await;
        let waited = self
            .wait_video(page, &created.id, token, &mut backoff)
            .await;
        if matches!(waited, Ok(VideoState::Expired)) {
            // Never shown: the next attempt uploads afresh.
            clear_or_log(progress, "video").await;
        }
        after_upload(page, &created.id, waited)
    }

    /// `GET /{video}?fields=status,permalink_url`.
    pub(super) async fn read_video(
        &self,
        video: &str,
        token: &str,
        fields: &str,
    ) -> Result<VideoRead, PublishError> {
        self.call::<VideoRead>(
            self.app
                .client
                .get(self.app.url(video))
                .query(&[("fields", fields), ("access_token", token)]),
            Effect::Repeatable,
        )
        .await
    }

    /// Polls a video's status until it is ready, failed, expired or unreadable, or the
    /// deadline passes (first read at once, then backing off). A read that fails otherwise is
    /// the error.
    async fn wait_video(
        &self,
        page: &str,
        video: &str,
        token: &str,
        backoff: &mut Backoff,
    ) -> Result<VideoState, PublishError> {
        loop {
            let read = match self.read_video(video, token, "status,permalink_url").await {
                Ok(read) => read,
                Err(e) if graph::is_missing_object(&e) => return Ok(VideoState::Unreadable),
                Err(e) => return Err(e),
            };
            match read.status.unwrap_or_default().state() {
                Processing::Ready => {
                    return Ok(VideoState::Ready(video_post_of(
                        page,
                        video,
                        read.permalink_url.as_deref(),
                    )));
                }
                Processing::Failed(why) => return Ok(VideoState::Failed(why)),
                Processing::Expired => return Ok(VideoState::Expired),
                Processing::Pending => {}
            }
            if !backoff.wait().await {
                return Ok(VideoState::Processing(read.permalink_url));
            }
        }
    }
}

/// The outcome of a video Facebook took with `published=true` (`video`), from the wait for its
/// processing. Ready: published. Still processing at the deadline: published too, with its id
/// and URL: Facebook shows it once processed, as YouTube does (waiting across the engine's
/// attempts would spend them and end the target `failed` while the video goes live). A read
/// that fails (a 5xx, a throttle, a token refused since the upload): published, logged, for
/// the same reason (handed to the engine, a refused token whose account needs reconnecting
/// would end it `failed`). Only Facebook's word that processing failed (`Permanent`) or that
/// the upload expired (retryable: it never shows, the next attempt uploads afresh) ends it
/// unpublished; 100/33 is ambiguous (it may be live).
fn after_upload(
    page: &str,
    video: &str,
    waited: Result<VideoState, PublishError>,
) -> Result<PublishedPost, PublishError> {
    match waited {
        Ok(VideoState::Ready(post)) => Ok(post),
        Ok(VideoState::Processing(permalink)) => {
            tracing::info!(
                video = %video,
                "Facebook is still processing the video; it was uploaded published and shows once processed"
            );
            Ok(video_post_of(page, video, permalink.as_deref()))
        }
        Err(e) => {
            tracing::warn!(
                video = %video,
                code = %e.code,
                "the Facebook video's status could not be read; it was uploaded published, so it is the post"
            );
            Ok(video_post_of(page, video, None))
        }
        Ok(VideoState::Failed(why)) => Err(processing_failed("video", why)),
        Ok(VideoState::Expired) => Err(PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "video_gone",
            format!("{PLATFORM} dropped the video before it was processed."),
        )),
        Ok(VideoState::Unreadable) => Err(video_unreadable()),
    }
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Processing failed: permanent, with Facebook's words.
pub(super) fn processing_failed(what: &str, why: String) -> PublishError {
    PublishError::new(
        FailureClass::Permanent,
        "media_processing_failed",
        format!("{PLATFORM} could not process the {what}: {why}"),
    )
    .with_platform_error(why)
}

/// Still processing at the deadline: retryable (the next attempt resumes what was saved).
pub(super) fn still_processing(what: &str) -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "media_processing",
        format!("{PLATFORM} was still processing the {what}; the post will be tried again."),
    )
}

/// A video this target uploaded reads 100/33: it may be live, so nothing is uploaded again.
fn video_unreadable() -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "video_unconfirmed",
        format!(
            "{PLATFORM} does not let this connection read back the video it uploaded (not there yet, a permission lost, or deleted); it may be published, so it is looked for rather than uploaded again."
        ),
    )
}

/// The published video as a post: its id and URL (the `permalink_url` Facebook gives is
/// relative).
pub(super) fn video_post_of(page: &str, video: &str, permalink: Option<&str>) -> PublishedPost {
    let url = match permalink.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) if p.starts_with('/') => format!("{WEB}{p}"),
        Some(p) if p.starts_with("https://") => p.to_owned(),
        _ => format!("{WEB}/{page}/videos/{video}"),
    };
    PublishedPost {
        id: video.to_owned(),
        url: Some(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn state(v: Value) -> Processing {
        serde_json::from_value::<VideoStatus>(v).unwrap().state()
    }

    #[test]
    fn video_statuses_read_as_documented_and_as_the_examples_write_them() {
        assert!(matches!(
            state(json!({"video_status": "ready"})),
            Processing::Ready
        ));
        // The reference writes `completed`, the examples `complete`.
        for done in ["complete", "completed"] {
            assert!(matches!(
                state(json!({"video_status": "upload_complete",
                             "processing_phase": {"status": done}})),
                Processing::Ready
            ));
        }
        assert!(matches!(
            state(json!({"video_status": "processing",
                         "processing_phase": {"status": "in_progress"}})),
            Processing::Pending
        ));
        assert!(matches!(state(json!({})), Processing::Pending));
        assert!(matches!(
            state(json!({"video_status": "expired"})),
            Processing::Expired
        ));
        // The spec's `errors[]` and the documentation example's single `error`.
        match state(
            json!({"video_status": "error", "processing_phase": {"status": "error",
                "errors": [{"code": 1363030, "message": "Bad codec"}]}}),
        ) {
            Processing::Failed(why) => assert_eq!(why, "Bad codec (1363030)"),
            _ => panic!("failed expected"),
        }
        match state(
            json!({"video_status": "processing", "processing_phase": {"status": "error",
                "error": {"message": "Resolution too low"}}}),
        ) {
            Processing::Failed(why) => assert_eq!(why, "Resolution too low"),
            _ => panic!("failed expected"),
        }
        match state(json!({"video_status": "upload_failed"})) {
            Processing::Failed(why) => assert_eq!(why, "status upload_failed"),
            _ => panic!("failed expected"),
        }
    }

    fn session(v: Value) -> SessionState {
        serde_json::from_value::<VideoStatus>(v)
            .unwrap()
            .session_state()
    }

    #[test]
    fn session_statuses_say_what_to_do_next() {
        assert!(matches!(
            session(json!({"video_status": "uploading",
                "uploading_phase": {"status": "not_started"}})),
            SessionState::NotUploaded
        ));
        assert!(matches!(
            session(json!({"video_status": "uploading",
                "uploading_phase": {"status": "in_progress"}})),
            SessionState::Pending
        ));
        assert!(matches!(
            session(json!({"video_status": "processing",
                "uploading_phase": {"status": "complete"},
                "processing_phase": {"status": "in_progress"}})),
            SessionState::Pending
        ));
        // Uploaded, processing not started: the guides finish here.
        assert!(matches!(
            session(json!({"video_status": "processing",
                "uploading_phase": {"status": "complete"},
                "processing_phase": {"status": "not_started"},
                "publishing_phase": {"status": "not_started"}})),
            SessionState::Finishable
        ));
        assert!(matches!(
            session(json!({"video_status": "ready",
                "publishing_phase": {"status": "not_started", "publish_status": "not_published"}})),
            SessionState::Finishable
        ));
        for published in [
            json!({"video_status": "ready", "publishing_phase": {"status": "complete"}}),
            json!({"video_status": "ready", "publishing_phase": {"status": "in_progress"}}),
            json!({"video_status": "ready", "publishing_phase": {"publish_status": "published"}}),
        ] {
            assert!(matches!(session(published), SessionState::Published));
        }
        assert!(matches!(
            session(
                json!({"video_status": "error", "processing_phase": {"status": "error",
                "errors": [{"code": 1, "message": "Bad"}]}})
            ),
            SessionState::Failed(_)
        ));
        assert!(matches!(
            session(json!({"video_status": "expired"})),
            SessionState::Expired
        ));
    }

    #[test]
    fn a_video_url_is_made_absolute() {
        assert_eq!(
            video_post_of("1", "2", Some("/1/videos/2/")).url.unwrap(),
            "https://www.facebook.com/1/videos/2/"
        );
        assert_eq!(
            video_post_of("1", "2", None).url.unwrap(),
            "https://www.facebook.com/1/videos/2"
        );
        assert_eq!(
            video_post_of("1", "2", Some("javascript:x")).url.unwrap(),
            "https://www.facebook.com/1/videos/2"
        );
    }
}
