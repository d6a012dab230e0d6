//! Reconciliation (`find_existing`): whether an earlier attempt's post exists.
//!
//! Facebook has no idempotency key and no hidden field for the marker. What was saved decides
//! first (`progress`): a saved id is read or looked for by id; a marker set (`sent`, `video_sent`,
//! `finish_sent`) with nothing to show yet is an `Err` (reconciliation runs again later and the
//! target ends `unknown` if it never shows), never `NotFound`, since publishing again could
//! post twice. Progress saved for other media that may have published is `CannotTell`.
//! Without a saved id, posts and videos are matched on their text in the Page's listings.
//!
//! Reconciliation within the attempt that made the ambiguous call sees the progress that
//! attempt started from, not the markers it saved; its `NotFound` is safe because the next
//! attempt finds the marker and asks again instead of sending anything.

use super::progress::{Resume, Saved, resume};
use super::sessions::{Session, reel_post, session_unconfirmed, story_not_listed};
use super::video::{Processing, SessionState, video_post_of};
use super::{FacebookPages, PLATFORM, Plan, Shape, WEB, id_of};
use crate::graph;
use crate::http::Effect;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use soku_core::connector::{Existing, FailureClass, PublishError, PublishRequest, PublishedPost};

const RECONCILE_SLACK_SECS: i64 = 60;
const RECONCILE_PAGES: usize = 3;
const RECONCILE_PAGE_SIZE: usize = 100;
const RECONCILE_PAGE_SIZE_PARAM: &str = "100";

impl FacebookPages {
    pub(super) async fn existing(
        &self,
        request: &PublishRequest,
        plan: &Plan<'_>,
        token: &str,
    ) -> Result<Existing, PublishError> {
        let page = request.account.account_id.as_str();
        let want = plan
            .message
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let since = request.not_before - chrono::Duration::seconds(RECONCILE_SLACK_SECS);
        let saved = match resume(request.progress.saved(), &plan.shape) {
            Resume::Conflict => return Ok(Existing::CannotTell),
            Resume::Fresh => None,
            Resume::Mine(saved) => Some(saved),
        };
        let posts_edge = format!("{page}/published_posts");
        let videos_edge = format!("{page}/videos");
        let posts = || {
            self.match_recent::<PagePost>(
                page,
                &posts_edge,
                "id,message,created_time,permalink_url",
                token,
                want,
                since,
            )
        };
        let videos = || {
            self.match_recent::<PageVideo>(
                page,
                &videos_edge,
                "id,description,created_time,permalink_url",
                token,
                want,
                since,
            )
        };
        match (plan.shape, saved) {
            (Shape::Video(_), Some(Saved::Video { video_id, .. })) => {
                let read = self
                    .read_video(&video_id, token, "status,permalink_url")
                    .await;
                match read {
                    Ok(v) => match v.status.unwrap_or_default().state() {
                        // Published once processed (it was uploaded with `published=true`).
                        Processing::Ready => Ok(Existing::Found(video_post_of(
                            page,
                            &video_id,
                            v.permalink_url.as_deref(),
                        ))),
                        // Taken with `published=true` and processing: the post, as
                        // publishing says at its deadline (`video::after_upload`).
                        Processing::Pending => Ok(Existing::Found(video_post_of(
                            page,
                            &video_id,
                            v.permalink_url.as_deref(),
                        ))),
                        // It will never show; publishing again reports why.
                        Processing::Failed(_) => Ok(Existing::NotFound),
                        // Never shown (a later upload saves its own marker first; progress
                        // saved before that marker existed may hide one: looked for).
                        Processing::Expired => videos().await,
                    },
                    // Ours, and it may be live (lag, a permission lost): looked for in the
                    // listing, and not there is not a reason to upload again.
                    Err(e) if graph::is_missing_object(&e) => match videos().await? {
                        Existing::NotFound => Err(not_listed("video")),
                        other => Ok(other),
                    },
                    Err(e) => Err(e),
                }
            }
            // The upload may have been taken, its answer lost: a video still being fetched or
            // processed may not be listed yet, and not listed is no reason to upload again.
            (Shape::Video(_), Some(Saved::VideoSent { .. })) => match videos().await? {
                Existing::NotFound => Err(not_listed("video")),
                other => Ok(other),
            },
            (Shape::Video(_), _) => videos().await,
            // No saved session: none was started, or its start's answer was lost; either way
            // no finish was sent with it (the session is saved before anything else).
            (Shape::Reel(_), Some(Saved::Reel(s))) => {
                match self.read_status(&s.video_id, token).await? {
                    Some(status) => match status.session_state() {
                        SessionState::Published => Ok(Existing::Found(reel_post(&s.video_id))),
                        SessionState::Failed(_) | SessionState::Expired => Ok(Existing::NotFound),
                        _ if s.finish_sent => Err(pending(Session::Reel)),
                        _ => Ok(Existing::NotFound),
                    },
                    None if s.finish_sent => Err(pending(Session::Reel)),
                    None => Ok(Existing::NotFound),
                }
            }
            (Shape::VideoStory(_), Some(Saved::VideoStory(s))) => {
                let published = match self.read_status(&s.video_id, token).await? {
                    Some(status) => match status.session_state() {
                        SessionState::Published => true,
                        SessionState::Failed(_) | SessionState::Expired => {
                            return Ok(Existing::NotFound);
                        }
                        _ if s.finish_sent => return Err(pending(Session::Story)),
                        _ => return Ok(Existing::NotFound),
                    },
                    // Unreadable: the stories listing may still show it.
                    None if s.finish_sent => false,
                    None => return Ok(Existing::NotFound),
                };
                match self
                    .story_of_published_session(page, token, &s.video_id)
                    .await?
                {
                    Existing::Found(post) => Ok(Existing::Found(post)),
                    _ if published => Err(story_not_listed(FailureClass::Retryable {
                        retry_after: None,
                    })),
                    _ => Err(pending(Session::Story)),
                }
            }
            (Shape::Reel(_) | Shape::VideoStory(_), _) => Ok(Existing::NotFound),
            (Shape::PhotoStory(_), Some(Saved::PhotoStory { photo_id, sent, .. })) => {
                match self.find_story(page, token, &photo_id, since).await? {
                    Existing::NotFound if sent => Err(not_listed("photo story")),
                    other => Ok(other),
                }
            }
            // No saved photo: `photo_stories` was never called (the photo is saved first).
            (Shape::PhotoStory(_), _) => Ok(Existing::NotFound),
            (Shape::Photos(_), Some(Saved::Photos { sent: true, .. })) => match posts().await? {
                Existing::NotFound => Err(not_listed("post")),
                other => Ok(other),
            },
            (Shape::Feed | Shape::Photo(_) | Shape::Photos(_), _) => posts().await,
        }
    }

    /// The Page's story made from `media_id` (a video or photo id), looked for in
    /// `GET /{page}/stories`, newest first, up to `RECONCILE_PAGES` pages or a story older than
    /// `since`.
    pub(super) async fn find_story(
        &self,
        page: &str,
        token: &str,
        media_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Existing, PublishError> {
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                (
                    "fields",
                    "post_id,status,creation_time,media_type,media_id,url",
                ),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
                ("access_token", token),
            ];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let rows: graph::Page<StoryRow> = self
                .page_call(
                    self.app
                        .client
                        .get(self.app.url(&format!("{page}/stories")))
                        .query(&query),
                    Effect::Repeatable,
                )
                .await?;
            let mut older_seen = false;
            for row in &rows.data {
                if row.media_id.as_ref().and_then(id_of).as_deref() == Some(media_id)
                    && let Some(id) = row.post_id.as_ref().and_then(id_of)
                {
                    return Ok(Existing::Found(super::story_post(&id, row.url.as_deref())));
                }
                if row.created().is_some_and(|t| t < since) {
                    older_seen = true;
                }
            }
            if older_seen {
                return Ok(Existing::NotFound);
            }
            match rows.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => return Ok(Existing::NotFound),
            }
        }
        Ok(Existing::CannotTell)
    }

    /// Reads up to `RECONCILE_PAGES` pages of an edge, newest first, and matches rows in the
    /// window on their text: `Found` for the first with the same text; for a post without text,
    /// `CannotTell` when any row is in the window.
    async fn match_recent<R: Recent + DeserializeOwned>(
        &self,
        page_id: &str,
        edge: &str,
        fields: &str,
        token: &str,
        want: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<Existing, PublishError> {
        let mut after: Option<String> = None;
        for _ in 0..RECONCILE_PAGES {
            let mut query = vec![
                ("fields", fields),
                ("limit", RECONCILE_PAGE_SIZE_PARAM),
                ("access_token", token),
            ];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let page: graph::Page<R> = self
                .page_call(
                    self.app.client.get(self.app.url(edge)).query(&query),
                    Effect::Repeatable,
                )
                .await?;
            let mut older_seen = false;
            for row in &page.data {
                let created = row.created().and_then(graph::parse_timestamp);
                if created.is_some_and(|t| t < since) {
                    older_seen = true;
                    continue;
                }
                let text = row.text().map(str::trim).filter(|t| !t.is_empty());
                match want {
                    None => return Ok(Existing::CannotTell),
                    Some(w) if text == Some(w) => return Ok(Existing::Found(row.post(page_id))),
                    Some(_) => {}
                }
            }
            // Newest first: past the window's start, nothing further can match.
            if older_seen {
                return Ok(Existing::NotFound);
            }
            match page.next_cursor(RECONCILE_PAGE_SIZE) {
                Some(cursor) => after = Some(cursor),
                None => return Ok(Existing::NotFound),
            }
        }
        Ok(Existing::CannotTell)
    }
}

/// A creating call may have been made and its result is not listed (yet): asked again later.
fn not_listed(what: &str) -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "not_listed_yet",
        format!(
            "The {what} may have been published on {PLATFORM} but is not listed yet; it will be looked for again rather than sent twice."
        ),
    )
}

/// A session whose finish may have been sent, not published yet: asked again later.
fn pending(kind: Session) -> PublishError {
    PublishError {
        class: FailureClass::Retryable { retry_after: None },
        ..session_unconfirmed(kind)
    }
}

/// A row of a listing reconciliation reads.
trait Recent {
    fn created(&self) -> Option<&str>;
    fn text(&self) -> Option<&str>;
    fn post(&self, page: &str) -> PublishedPost;
}

#[derive(Deserialize)]
struct PagePost {
    id: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    permalink_url: Option<String>,
}

impl Recent for PagePost {
    fn created(&self) -> Option<&str> {
        self.created_time.as_deref()
    }
    fn text(&self) -> Option<&str> {
        self.message.as_deref()
    }
    fn post(&self, _page: &str) -> PublishedPost {
        PublishedPost {
            id: self.id.clone(),
            url: Some(
                self.permalink_url
                    .clone()
                    .unwrap_or_else(|| format!("{WEB}/{}", self.id)),
            ),
        }
    }
}

#[derive(Deserialize)]
struct PageVideo {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    permalink_url: Option<String>,
}

impl Recent for PageVideo {
    fn created(&self) -> Option<&str> {
        self.created_time.as_deref()
    }
    fn text(&self) -> Option<&str> {
        self.description.as_deref()
    }
    fn post(&self, page: &str) -> PublishedPost {
        video_post_of(page, &self.id, self.permalink_url.as_deref())
    }
}

/// A row of `GET /{page}/stories`.
#[derive(Deserialize)]
struct StoryRow {
    #[serde(default)]
    post_id: Option<Value>,
    #[serde(default)]
    media_id: Option<Value>,
    /// "UNIX timestamp" (the example writes it as a string).
    #[serde(default)]
    creation_time: Option<Value>,
    #[serde(default)]
    url: Option<String>,
}

impl StoryRow {
    fn created(&self) -> Option<DateTime<Utc>> {
        let secs = match self.creation_time.as_ref()? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => return graph::parse_timestamp(s),
            },
            _ => None,
        }?;
        DateTime::from_timestamp(secs, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn story_times_are_unix_seconds_as_numbers_or_strings() {
        let row: StoryRow =
            serde_json::from_value(serde_json::json!({"creation_time": "1700000000"})).unwrap();
        assert_eq!(row.created().unwrap().timestamp(), 1_700_000_000);
        let row: StoryRow =
            serde_json::from_value(serde_json::json!({"creation_time": 1700000001})).unwrap();
        assert_eq!(row.created().unwrap().timestamp(), 1_700_000_001);
    }
}
