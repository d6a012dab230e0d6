//! Processing read back: `videos.list?part=status,processingDetails` until the video is
//! processed, failed or the wait ends (see the module documentation).

use super::{PLATFORM, YouTube, percent_encode};
use crate::http::{self, Effect};
use serde::Deserialize;
use soku_core::connector::{FailureClass, PublishError};

impl YouTube {
    /// Waits for YouTube to process the uploaded video `id`: `Ok` once processed, still
    /// processing at the deadline, or when its state cannot be read (see the module
    /// documentation: the upload completed, so the video is on the channel); a `Permanent`
    /// error when YouTube reports it failed, rejected or deleted, or does not list it.
    pub(super) async fn processed(&self, token: &str, id: &str) -> Result<(), PublishError> {
        let mut backoff = self.polling.start();
        loop {
            let state = match self.video_state(token, id).await {
                Ok(state) => state,
                Err(e) => {
                    unread_state(id, &e);
                    return Ok(());
                }
            };
            match verdict(state.as_ref()) {
                Verdict::Done => return Ok(()),
                Verdict::Failed(e) => return Err(e),
                Verdict::Waiting => {}
            }
            if !backoff.wait().await {
                tracing::info!(
                    video = %id,
                    status = ?state.as_ref().map(|s| s.status.upload_status.as_str()),
                    "YouTube is still processing the video; it is on the channel and YouTube \
                     publishes it when processing ends"
                );
                return Ok(());
            }
        }
    }

    /// `videos.list?part=status,processingDetails&id=ID`; `None` when YouTube does not list it.
    pub(super) async fn video_state(
        &self,
        token: &str,
        id: &str,
    ) -> Result<Option<VideoState>, PublishError> {
        let (_, _, body) = self
            .call(
                self.api(
                    reqwest::Method::GET,
                    &format!(
                        "/youtube/v3/videos?part=status,processingDetails&id={}",
                        percent_encode(id)
                    ),
                    token,
                ),
                Effect::Repeatable,
            )
            .await?;
        let list: VideoList = http::parse_json(&body, Effect::Repeatable, PLATFORM)?;
        Ok(list.items.into_iter().find(|v| v.id == id).map(|mut v| {
            v.raw = http::platform_text(&body);
            v
        }))
    }
}

#[derive(Deserialize)]
pub(super) struct VideoList {
    #[serde(default)]
    pub(super) items: Vec<VideoState>,
}

/// A video as `videos.list?part=status,processingDetails` answers it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct VideoState {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "status")]
    status: VideoStatusPart,
    #[serde(default)]
    processing_details: ProcessingDetails,
    #[serde(skip)]
    raw: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct VideoStatusPart {
    #[serde(default)]
    pub(super) upload_status: String,
    #[serde(default)]
    pub(super) failure_reason: Option<String>,
    #[serde(default)]
    pub(super) rejection_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProcessingDetails {
    #[serde(default)]
    pub(super) processing_status: String,
    #[serde(default)]
    pub(super) processing_failure_reason: Option<String>,
}

/// The log line of an uploaded video whose state could not be read: it counts as published.
pub(super) fn unread_state(id: &str, e: &PublishError) {
    tracing::warn!(
        video = %id,
        code = %e.code,
        error = %e.message,
        "YouTube's state of the uploaded video could not be read; the upload completed, so it is \
         on the channel and counts as published"
    );
}

/// What YouTube's listing of an uploaded video says: `None` (not listed) means it is gone from
/// the channel, `media_deleted`.
pub(super) fn verdict(state: Option<&VideoState>) -> Verdict {
    match state {
        Some(state) => state.verdict(),
        None => Verdict::Failed(PublishError::new(
            FailureClass::Permanent,
            "media_deleted",
            format!(
                "{PLATFORM} no longer lists the uploaded video: it was deleted or removed from \
                 the channel."
            ),
        )),
    }
}

pub(super) enum Verdict {
    Done,
    Waiting,
    Failed(PublishError),
}

impl VideoState {
    pub(super) fn verdict(&self) -> Verdict {
        let failed = |code: &str, what: &str, reason: Option<&str>| {
            let reason = reason
                .filter(|r| !r.is_empty())
                .unwrap_or("no reason given");
            Verdict::Failed(
                PublishError::new(
                    FailureClass::Permanent,
                    code,
                    format!("{PLATFORM} {what} the video: {reason}"),
                )
                .with_platform_error(self.raw.clone()),
            )
        };
        match self.status.upload_status.as_str() {
            "processed" => return Verdict::Done,
            "failed" => {
                return failed(
                    "media_processing_failed",
                    "could not process",
                    self.status
                        .failure_reason
                        .as_deref()
                        .or(self.processing_details.processing_failure_reason.as_deref()),
                );
            }
            "rejected" => {
                return failed(
                    "media_rejected",
                    "rejected",
                    self.status.rejection_reason.as_deref(),
                );
            }
            "deleted" => return failed("media_deleted", "deleted", Some("deleted")),
            _ => {}
        }
        match self.processing_details.processing_status.as_str() {
            "failed" | "terminated" => failed(
                "media_processing_failed",
                "could not process",
                self.processing_details.processing_failure_reason.as_deref(),
            ),
            _ => Verdict::Waiting,
        }
    }
}
