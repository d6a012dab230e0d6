//! Reels and video stories: upload sessions on their own Page edge (`video_reels`,
//! `video_stories`), started, sent the hosted file by URL, polled, then finished.

use super::feed::StoryDone;
use super::progress::{self, Resume, Saved, SavedSession, save_or_log};
use super::video::{SessionState, VideoStatus, processing_failed, still_processing};
use super::{
    FacebookPages, PLATFORM, REELS_QUOTA_CODE, REELS_QUOTA_RETRY, Shape, WEB, id_of, permanent,
};
use super::{story_post, unconfirmed};
use crate::graph::{self, Backoff};
use crate::http::Effect;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use soku_core::connector::{
    Existing, FailureClass, Progress, PublishError, PublishedPost, TOKEN_INVALID,
};

/// The upload host's path (`{upload host}/video-upload/{version}/{video-id}`).
const UPLOAD_PATH: &str = "video-upload";

/// A reel or a video story: both are upload sessions on their own Page edge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Session {
    Reel,
    Story,
}

impl Session {
    fn edge(self) -> &'static str {
        match self {
            Session::Reel => "video_reels",
            Session::Story => "video_stories",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Session::Reel => "reel",
            Session::Story => "video story",
        }
    }

    fn saved(self, session: SavedSession) -> Saved {
        match self {
            Session::Reel => Saved::Reel(session),
            Session::Story => Saved::VideoStory(session),
        }
    }
}

#[derive(Deserialize)]
struct SessionStarted {
    #[serde(default)]
    video_id: Value,
    #[serde(default)]
    upload_url: Option<String>,
}

#[derive(Deserialize)]
struct Success {
    #[serde(default)]
    success: bool,
}

/// How a wait for a session ended (a failure or the deadline is an error).
enum Waited {
    Finishable,
    Published,
    /// Its upload `expired`.
    Expired,
    /// Facebook answers 100/33 for it.
    Unreadable,
}

impl FacebookPages {
    /// `POST /{page}/video_reels` or `/video_stories` with `upload_phase=start`: the session
    /// (repeatable: a session never finished publishes nothing). The reels quota is enforced
    /// on this endpoint too.
    async fn start_session(
        &self,
        page: &str,
        token: &str,
        kind: Session,
        url: &str,
    ) -> Result<SavedSession, PublishError> {
        let started: SessionStarted = self
            .page_call(
                self.app
                    .client
                    .post(self.app.url(&format!("{page}/{}", kind.edge())))
                    .form(&[("upload_phase", "start"), ("access_token", token)]),
                Effect::Repeatable,
            )
            .await
            .map_err(|e| match kind {
                Session::Reel => reels_quota(e),
                Session::Story => e,
            })?;
        let Some(video_id) = id_of(&started.video_id) else {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "unexpected_response",
                format!(
                    "{PLATFORM} started the {} upload without a video id.",
                    kind.name()
                ),
            ));
        };
        let upload_url = started
            .upload_url
            .filter(|u| usable_upload_url(u, &self.upload_url));
        Ok(SavedSession {
            video_url: url.to_owned(),
            video_id,
            upload_url,
            finish_sent: false,
        })
    }

    /// Where the session's file goes: the start's `upload_url` when it is one the Page token
    /// may be sent to, else `{upload host}/video-upload/{version}/{video-id}`.
    fn upload_target(&self, session: &SavedSession) -> String {
        match session
            .upload_url
            .as_deref()
            .filter(|u| usable_upload_url(u, &self.upload_url))
        {
            Some(u) => u.to_owned(),
            None => format!(
                "{}/{UPLOAD_PATH}/{}/{}",
                self.upload_url, self.app.version, session.video_id
            ),
        }
    }

    /// The hosted-file upload: `POST {upload url}` with `Authorization: OAuth {page token}` and
    /// `file_url: {url}` -> `{"success":true}`. Repeatable: sending it again restarts it.
    async fn upload_hosted(&self, session: &SavedSession, token: &str) -> Result<(), PublishError> {
        use reqwest::header::{AUTHORIZATION, HeaderValue};
        let mut auth = HeaderValue::from_str(&format!("OAuth {token}")).map_err(|_| {
            permanent(
                TOKEN_INVALID,
                format!("The stored {PLATFORM} Page token cannot be sent; reconnect the Page."),
            )
        })?;
        auth.set_sensitive(true);
        let file = HeaderValue::from_str(&session.video_url).map_err(|_| {
            permanent(
                "media_unavailable",
                format!("The video's address cannot be given to {PLATFORM}'s upload host."),
            )
        })?;
        let done: Success = self
            .call(
                self.app
                    .client
                    .post(self.upload_target(session))
                    .header(AUTHORIZATION, auth)
                    .header("file_url", file),
                Effect::Repeatable,
            )
            .await?;
        if !done.success {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "upload_failed",
                format!("{PLATFORM}'s upload host did not take the video; it will be sent again."),
            ));
        }
        Ok(())
    }

    /// `GET /{video-id}?fields=status`: `None` when Facebook answers 100/33 for it.
    pub(super) async fn read_status(
        &self,
        video: &str,
        token: &str,
    ) -> Result<Option<VideoStatus>, PublishError> {
        match self.read_video(video, token, "status").await {
            Ok(v) => Ok(Some(v.status.unwrap_or_default())),
            Err(e) if graph::is_missing_object(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A reel or a video story: the session an earlier attempt saved, else a new one (saved at
    /// once); the file sent by its URL; the status polled; then the finish, `finish_sent`
    /// saved before it. A session whose finish may have been sent is only polled, never
    /// finished again.
    pub(super) async fn session_post(
        &self,
        page: &str,
        token: &str,
        kind: Session,
        url: &str,
        description: Option<&str>,
        progress: &Progress,
    ) -> Result<PublishedPost, PublishError> {
        let mut backoff = self.app.polling.start();
        let shape = match kind {
            Session::Reel => Shape::Reel(url),
            Session::Story => Shape::VideoStory(url),
        };
        let mut saved = match progress::resume(progress.saved(), &shape) {
            Resume::Mine(Saved::Reel(s) | Saved::VideoStory(s)) => {
                tracing::info!(
                    kind = kind.name(),
                    finish_sent = s.finish_sent,
                    "resuming the Facebook upload session an earlier attempt started"
                );
                Some(s)
            }
            _ => None,
        };
        let (session, waited) = loop {
            let (session, fresh) = match saved.take() {
                Some(s) => (s, false),
                None => {
                    let s = self.start_session(page, token, kind, url).await?;
                    // Nothing is published before the finish: a failed save fails the attempt.
                    progress.save(kind.saved(s.clone()).to_value()).await?;
                    (s, true)
                }
            };
            let waited = self
                .wait_session(token, kind, &session, fresh, &mut backoff)
                .await?;
            match waited {
                // The finish may have taken effect: never started again.
                Waited::Unreadable if session.finish_sent => {
                    return Err(session_unconfirmed(kind));
                }
                // Never finished (its marker is not set), so nothing of it shows: another.
                Waited::Expired | Waited::Unreadable if !fresh => tracing::info!(
                    kind = kind.name(),
                    "the Facebook upload session an earlier attempt started is gone; starting another"
                ),
                Waited::Expired | Waited::Unreadable => {
                    return Err(PublishError::new(
                        FailureClass::Retryable { retry_after: None },
                        "video_gone",
                        format!(
                            "{PLATFORM} dropped the {} before it was processed.",
                            kind.name()
                        ),
                    ));
                }
                Waited::Finishable | Waited::Published => break (session, waited),
            }
        };
        if let Waited::Published = waited {
            // An earlier attempt's finish took effect (its answer was lost, or reconciliation
            // ran before Facebook showed it).
            return match kind {
                Session::Reel => Ok(reel_post(&session.video_id)),
                Session::Story => match self
                    .story_of_published_session(page, token, &session.video_id)
                    .await?
                {
                    Existing::Found(post) => Ok(post),
                    _ => Err(story_not_listed(FailureClass::Ambiguous)),
                },
            };
        }
        let marked = SavedSession {
            finish_sent: true,
            ..session.clone()
        };
        progress.save(kind.saved(marked).to_value()).await?;
        let finished = self
            .finish(page, token, kind, &session.video_id, description)
            .await;
        if let Err(e) = &finished
            && e.class != FailureClass::Ambiguous
        {
            save_or_log(progress, &kind.saved(session), kind.name()).await;
        }
        finished
    }

    /// `upload_phase=finish`: for a reel with `video_state=PUBLISHED` and `description`, for a
    /// story without text.
    async fn finish(
        &self,
        page: &str,
        token: &str,
        kind: Session,
        video: &str,
        description: Option<&str>,
    ) -> Result<PublishedPost, PublishError> {
        let request = self
            .app
            .client
            .post(self.app.url(&format!("{page}/{}", kind.edge())));
        match kind {
            Session::Reel => {
                let mut form = vec![
                    ("upload_phase", "finish"),
                    ("video_id", video),
                    ("video_state", "PUBLISHED"),
                ];
                if let Some(d) = description {
                    form.push(("description", d));
                }
                form.push(("access_token", token));
                let done: Success = self
                    .page_call(request.form(&form), Effect::Creates)
                    .await
                    .map_err(reels_quota)?;
                if !done.success {
                    return Err(unconfirmed("reel"));
                }
                Ok(reel_post(video))
            }
            Session::Story => {
                let done: StoryDone = self
                    .page_call(
                        request.form(&[
                            ("upload_phase", "finish"),
                            ("video_id", video),
                            ("access_token", token),
                        ]),
                        Effect::Creates,
                    )
                    .await?;
                Ok(story_post(&done.post_id("video story")?, None))
            }
        }
    }

    /// Uploads the file (at once for a new session; for a resumed one never finished, when its
    /// status says nothing arrived) and polls the status until the session can be finished, is
    /// published, failed, expired or unreadable. Once the finish may have been sent, a
    /// finishable session is waited on like one processing, and the deadline is ambiguous.
    async fn wait_session(
        &self,
        token: &str,
        kind: Session,
        session: &SavedSession,
        fresh: bool,
        backoff: &mut Backoff,
    ) -> Result<Waited, PublishError> {
        let mut uploaded = false;
        loop {
            let not_uploaded = if fresh && !uploaded {
                true
            } else {
                let Some(status) = self.read_status(&session.video_id, token).await? else {
                    return Ok(Waited::Unreadable);
                };
                match status.session_state() {
                    SessionState::NotUploaded => !uploaded && !session.finish_sent,
                    SessionState::Pending => false,
                    SessionState::Finishable if session.finish_sent => false,
                    SessionState::Finishable => return Ok(Waited::Finishable),
                    SessionState::Published => return Ok(Waited::Published),
                    SessionState::Expired => return Ok(Waited::Expired),
                    SessionState::Failed(why) => return Err(processing_failed(kind.name(), why)),
                }
            };
            if not_uploaded {
                match self.upload_hosted(session, token).await {
                    Ok(()) => uploaded = true,
                    Err(e) if graph::is_missing_object(&e) => return Ok(Waited::Unreadable),
                    Err(e) => return Err(e),
                }
                continue;
            }
            if !backoff.wait().await {
                return Err(if session.finish_sent {
                    session_unconfirmed(kind)
                } else {
                    still_processing(kind.name())
                });
            }
        }
    }

    /// The story a session Facebook says is published made, in the Page's stories of the
    /// last 24 hours (stories are up for 24 hours).
    pub(super) async fn story_of_published_session(
        &self,
        page: &str,
        token: &str,
        video: &str,
    ) -> Result<Existing, PublishError> {
        let since = Utc::now() - chrono::Duration::hours(24);
        self.find_story(page, token, video, since).await
    }
}

/// Whether the start's `upload_url` may receive the Page token: https on `facebook.com` or one
/// of its subdomains, or on the configured upload host (same scheme, host and port); never with
/// credentials of its own.
fn usable_upload_url(returned: &str, configured: &str) -> bool {
    let Ok(u) = url::Url::parse(returned.trim()) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    let Some(host) = u.host_str() else {
        return false;
    };
    let facebook = u.scheme() == "https"
        && (host == "facebook.com" || host.ends_with(".facebook.com"))
        && u.port().is_none();
    let configured_host = url::Url::parse(configured).is_ok_and(|c| {
        c.scheme() == u.scheme()
            && c.host_str() == Some(host)
            && c.port_or_known_default() == u.port_or_known_default()
    });
    facebook || configured_host
}

/// The reel as a post: its id is the video id; its URL the address Facebook's web app gives
/// reels, `https://www.facebook.com/reel/{video-id}` (the Reels guide gives no URL and the API
/// answers none for it).
pub(super) fn reel_post(video: &str) -> PublishedPost {
    PublishedPost {
        id: video.to_owned(),
        url: Some(format!("{WEB}/reel/{video}")),
    }
}

/// The reels quota's refusal (30 in a moving 24 hours): retryable after a while.
fn reels_quota(e: PublishError) -> PublishError {
    match graph::platform_graph_error(&e) {
        Some(g) if e.class == FailureClass::Permanent && g.code == Some(REELS_QUOTA_CODE) => {
            PublishError {
                class: FailureClass::Retryable {
                    retry_after: Some(REELS_QUOTA_RETRY),
                },
                code: "quota_exceeded".into(),
                message: format!(
                    "{PLATFORM} allows a Page 30 reels published through the API in 24 hours, and this Page has used them; the reel will be published when the quota frees up."
                ),
                ..e
            }
        }
        _ => e,
    }
}

/// The finish may have been sent and Facebook does not show the result yet.
pub(super) fn session_unconfirmed(kind: Session) -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "media_processing",
        format!(
            "The {} was sent to {PLATFORM} to be published and {PLATFORM} does not show it published yet; it is looked for rather than sent again.",
            kind.name()
        ),
    )
}

/// The session says it is published, the Page's stories do not list it yet.
pub(super) fn story_not_listed(class: FailureClass) -> PublishError {
    PublishError::new(
        class,
        "story_not_listed",
        format!(
            "{PLATFORM} says the video story is published but does not list it yet; it will be looked for again."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_token_goes_only_to_facebook_or_the_configured_upload_host() {
        let rupload = "https://rupload.facebook.com";
        assert!(usable_upload_url(
            "https://rupload.facebook.com/video-upload/v25.0/1",
            rupload
        ));
        assert!(usable_upload_url(
            "https://rupload-x.facebook.com/video-upload/v25.0/1",
            "http://127.0.0.1:9"
        ));
        assert!(usable_upload_url(
            "http://127.0.0.1:4000/video-upload/v25.0/1",
            "http://127.0.0.1:4000/base"
        ));
        for refused in [
            "http://rupload.facebook.com/video-upload/v25.0/1",
            "https://rupload.facebook.com.evil.test/video-upload/v25.0/1",
            "https://evilfacebook.com/video-upload/v25.0/1",
            "https://u:p@rupload.facebook.com/video-upload/v25.0/1",
            "https://rupload.facebook.com:8443/video-upload/v25.0/1",
            "http://127.0.0.1:4001/video-upload/v25.0/1",
            "not a url",
        ] {
            assert!(
                !usable_upload_url(refused, "http://127.0.0.1:4000"),
                "{refused}"
            );
        }
    }
}
