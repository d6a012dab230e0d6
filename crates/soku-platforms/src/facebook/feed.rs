//! Feed posts, photos and photo stories.

use super::progress::{Resume, Saved, SavedPhoto, save_or_log};
use super::{FacebookPages, WEB, earlier_call_unconfirmed, id_of, story_post, unconfirmed};
use crate::graph;
use crate::http::Effect;
use serde::Deserialize;
use serde_json::{Value, json};
use soku_core::connector::{FailureClass, Progress, PublishError, PublishedPost};

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct PhotoCreated {
    id: String,
    #[serde(default)]
    post_id: Option<String>,
}

/// A story's answer: `{"success":true,"post_id"}` (the guide's example writes `post_id` as a
/// number, Graph ids are strings: both are taken).
#[derive(Deserialize)]
pub(super) struct StoryDone {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default)]
    pub post_id: Option<Value>,
}

impl StoryDone {
    pub fn post_id(&self, what: &str) -> Result<String, PublishError> {
        match self.post_id.as_ref().and_then(id_of) {
            Some(id) if self.success.unwrap_or(true) => Ok(id),
            _ => Err(unconfirmed(what)),
        }
    }
}

impl FacebookPages {
    /// `POST /{page}/feed`: the post's id.
    pub(super) async fn feed_post(
        &self,
        page: &str,
        token: &str,
        message: Option<&str>,
        link: Option<&str>,
        attached: &[String],
    ) -> Result<String, PublishError> {
        let items: Vec<(String, String)> = attached
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    format!("attached_media[{i}]"),
                    json!({ "media_fbid": id }).to_string(),
                )
            })
            .collect();
        let mut form: Vec<(&str, &str)> = Vec::new();
        if let Some(m) = message {
            form.push(("message", m));
        }
        if let Some(l) = link {
            form.push(("link", l));
        }
        for (k, v) in &items {
            form.push((k.as_str(), v.as_str()));
        }
        form.push(("access_token", token));
        let created: IdOnly = self
            .page_call(
                self.app
                    .client
                    .post(self.app.url(&format!("{page}/feed")))
                    .form(&form),
                Effect::Creates,
            )
            .await?;
        Ok(created.id)
    }

    /// `POST /{page}/photos` with `published=false`: the photo's id (repeatable: nothing shows).
    async fn unpublished_photo(
        &self,
        page: &str,
        token: &str,
        url: &str,
    ) -> Result<String, PublishError> {
        let created: PhotoCreated = self
            .page_call(
                self.app
                    .client
                    .post(self.app.url(&format!("{page}/photos")))
                    .form(&[
                        ("url", url),
                        ("published", "false"),
                        ("access_token", token),
                    ]),
                Effect::Repeatable,
            )
            .await?;
        Ok(created.id)
    }

    /// One photo, published with its caption: the post.
    pub(super) async fn photo_post(
        &self,
        page: &str,
        token: &str,
        url: &str,
        caption: Option<&str>,
    ) -> Result<PublishedPost, PublishError> {
        let mut form = vec![("url", url), ("published", "true")];
        if let Some(c) = caption {
            form.push(("caption", c));
        }
        form.push(("access_token", token));
        let created: PhotoCreated = self
            .page_call(
                self.app
                    .client
                    .post(self.app.url(&format!("{page}/photos")))
                    .form(&form),
                Effect::Creates,
            )
            .await?;
        let id = created.post_id.unwrap_or(created.id);
        Ok(PublishedPost {
            url: Some(format!("{WEB}/{id}")),
            id,
        })
    }

    /// Several photos: each uploaded unpublished (or taken from what an earlier attempt saved),
    /// then one feed post attaching them all, its `sent` marker saved first.
    pub(super) async fn photos_post(
        &self,
        page: &str,
        token: &str,
        urls: &[String],
        message: Option<&str>,
        progress: &Progress,
        resume: Resume,
    ) -> Result<PublishedPost, PublishError> {
        let saved = match resume {
            Resume::Mine(Saved::Photos { sent: true, .. }) => {
                return Err(earlier_call_unconfirmed("feed post with these photos"));
            }
            Resume::Mine(Saved::Photos { photos, .. }) => photos,
            _ => Vec::new(),
        };
        let mut ids: Vec<Option<String>> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                saved
                    .get(i)
                    .filter(|p| &p.url == url)
                    .and_then(|p| p.id.clone())
                    .filter(|id| !id.is_empty())
            })
            .collect();
        let reused: Vec<usize> = (0..urls.len()).filter(|&i| ids[i].is_some()).collect();
        if !reused.is_empty() {
            tracing::info!(
                reused = reused.len(),
                "attaching the Facebook photos an earlier attempt uploaded"
            );
        }
        for i in 0..urls.len() {
            if ids[i].is_none() {
                ids[i] = Some(self.unpublished_photo(page, token, &urls[i]).await?);
                // Nothing shows yet: a failed save fails the attempt.
                progress.save(photos_progress(urls, &ids, false)).await?;
            }
        }
        let id = match self
            .photos_feed(page, token, urls, &ids, message, progress)
            .await
        {
            // The marker was not set, so no feed call was ever made with the reused photos:
            // Facebook dropped them (they are kept about a day). Uploaded again, sent once more.
            Err(e) if !reused.is_empty() && refuses_attachment(&e) => {
                tracing::info!(
                    "Facebook refused the photos an earlier attempt uploaded; uploading them again"
                );
                for &i in &reused {
                    ids[i] = Some(self.unpublished_photo(page, token, &urls[i]).await?);
                    progress.save(photos_progress(urls, &ids, false)).await?;
                }
                self.photos_feed(page, token, urls, &ids, message, progress)
                    .await?
            }
            other => other?,
        };
        Ok(PublishedPost {
            url: Some(format!("{WEB}/{id}")),
            id,
        })
    }

    /// The feed call attaching `ids`: `sent` saved before it (no call when that save fails),
    /// cleared after an answer that had no effect.
    async fn photos_feed(
        &self,
        page: &str,
        token: &str,
        urls: &[String],
        ids: &[Option<String>],
        message: Option<&str>,
        progress: &Progress,
    ) -> Result<String, PublishError> {
        progress.save(photos_progress(urls, ids, true)).await?;
        let attached: Vec<String> = ids.iter().flatten().cloned().collect();
        let sent = self.feed_post(page, token, message, None, &attached).await;
        if let Err(e) = &sent
            && e.class != FailureClass::Ambiguous
        {
            let cleared = Saved::Photos {
                photos: photos_saved(urls, ids),
                sent: false,
            };
            save_or_log(progress, &cleared, "photos").await;
        }
        sent
    }

    /// A photo story: the unpublished photo an earlier attempt uploaded (saved in `progress`),
    /// else a new one, then `POST /{page}/photo_stories` with its id, its `sent` marker saved
    /// first. If Facebook refuses a saved photo never sent (dropped), it is uploaded again and
    /// the story call made once more.
    pub(super) async fn photo_story_post(
        &self,
        page: &str,
        token: &str,
        url: &str,
        progress: &Progress,
        resume: Resume,
    ) -> Result<PublishedPost, PublishError> {
        let saved = match resume {
            Resume::Mine(Saved::PhotoStory { sent: true, .. }) => {
                return Err(earlier_call_unconfirmed("photo story"));
            }
            Resume::Mine(Saved::PhotoStory { photo_id, .. }) if !photo_id.is_empty() => {
                Some(photo_id)
            }
            _ => None,
        };
        let reused = saved.is_some();
        let photo = match saved {
            Some(id) => id,
            None => self.story_photo(page, token, url, progress).await?,
        };
        let post_id = match self
            .photo_story_sent(page, token, url, &photo, progress)
            .await
        {
            Err(e) if reused && refuses_attachment(&e) => {
                tracing::info!(
                    "Facebook refused the photo an earlier attempt uploaded for the story; uploading it again"
                );
                let photo = self.story_photo(page, token, url, progress).await?;
                self.photo_story_sent(page, token, url, &photo, progress)
                    .await?
            }
            other => other?,
        };
        Ok(story_post(&post_id, None))
    }

    /// The story's unpublished photo, its id saved at once (a failed save fails the attempt:
    /// nothing shows yet).
    async fn story_photo(
        &self,
        page: &str,
        token: &str,
        url: &str,
        progress: &Progress,
    ) -> Result<String, PublishError> {
        let id = self.unpublished_photo(page, token, url).await?;
        progress
            .save(photo_story_progress(url, &id, false).to_value())
            .await?;
        Ok(id)
    }

    /// `POST /{page}/photo_stories` with `photo_id` -> `{"success":true,"post_id"}`, its `sent`
    /// marker saved first and cleared after an answer that had no effect.
    async fn photo_story_sent(
        &self,
        page: &str,
        token: &str,
        url: &str,
        photo: &str,
        progress: &Progress,
    ) -> Result<String, PublishError> {
        progress
            .save(photo_story_progress(url, photo, true).to_value())
            .await?;
        let done = self
            .page_call::<StoryDone>(
                self.app
                    .client
                    .post(self.app.url(&format!("{page}/photo_stories")))
                    .form(&[("photo_id", photo), ("access_token", token)]),
                Effect::Creates,
            )
            .await;
        match done {
            Ok(done) => done.post_id("photo story"),
            Err(e) => {
                if e.class != FailureClass::Ambiguous {
                    let cleared = photo_story_progress(url, photo, false);
                    save_or_log(progress, &cleared, "photo story").await;
                }
                Err(e)
            }
        }
    }
}

fn photos_saved(urls: &[String], ids: &[Option<String>]) -> Vec<SavedPhoto> {
    urls.iter()
        .zip(ids)
        .map(|(url, id)| SavedPhoto {
            url: url.clone(),
            id: id.clone(),
        })
        .collect()
}

fn photos_progress(urls: &[String], ids: &[Option<String>], sent: bool) -> Value {
    Saved::Photos {
        photos: photos_saved(urls, ids),
        sent,
    }
    .to_value()
}

fn photo_story_progress(url: &str, photo: &str, sent: bool) -> Saved {
    Saved::PhotoStory {
        image_url: url.to_owned(),
        photo_id: photo.to_owned(),
        sent,
    }
}

/// Whether a creating call refused its photo (Graph code 100, other than the Page itself being
/// unreachable).
fn refuses_attachment(e: &PublishError) -> bool {
    e.class == FailureClass::Permanent
        && e.code != "page_unavailable"
        && graph::platform_graph_error(e).is_some_and(|g| g.code == Some(100))
}
