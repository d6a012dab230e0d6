//! What a target's progress holds between attempts (`Progress`), and the rules for saving it
//! around a creating call.
//!
//! Every saved value is tagged with its `kind`. A marker (`sent` for the feed call attaching
//! saved photos and for `photo_stories`, `finish_sent` for a session's finish) is saved
//! **before** the creating call, and the call is not made when that save fails; it is cleared
//! (best effort) only after an answer that certainly had no effect. So a marker that is not set
//! means the call was never made with what was saved, and a marker that is set means it may have
//! been. A save **after** a creating call (the video's id) never fails the attempt: the failure
//! is logged and the attempt carries on, answering ambiguously where it would otherwise have
//! asked for a retry.

use super::Shape;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use soku_core::connector::Progress;

/// One target's saved progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum Saved {
    /// A multi-photo post's unpublished photos, in the post's order (`id` null for one not
    /// uploaded yet); `sent`: the feed call attaching them may have been made.
    Photos {
        photos: Vec<SavedPhoto>,
        #[serde(default)]
        sent: bool,
    },
    /// A video uploaded with `published=true`: it is the post.
    Video {
        video_url: String,
        video_id: String,
    },
    /// The marker saved before `POST /{page}/videos` (`published=true`): the upload may have
    /// been taken, its answer (the video id) not read. Replaced by `Video` once answered,
    /// cleared after a refusal that certainly took nothing.
    VideoSent {
        video_url: String,
    },
    Reel(SavedSession),
    VideoStory(SavedSession),
    /// A photo story's unpublished photo; `sent`: `photo_stories` may have been called with it.
    PhotoStory {
        image_url: String,
        photo_id: String,
        #[serde(default)]
        sent: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SavedPhoto {
    pub url: String,
    pub id: Option<String>,
}

/// A reel or video story upload session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SavedSession {
    pub video_url: String,
    pub video_id: String,
    /// The start's `upload_url`, when it was one the connector may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
    /// The finish may have been sent.
    #[serde(default)]
    pub finish_sent: bool,
}

impl Saved {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether a creating call may have been made with what was saved.
    fn may_have_published(&self) -> bool {
        match self {
            Saved::Photos { sent, .. } | Saved::PhotoStory { sent, .. } => *sent,
            Saved::Video { .. } | Saved::VideoSent { .. } => true,
            Saved::Reel(s) | Saved::VideoStory(s) => s.finish_sent,
        }
    }
}

/// What an attempt starts from.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Resume {
    /// Nothing saved for this post, or only what cannot have published anything (photos or a
    /// session of other media, never sent): start afresh.
    Fresh,
    /// What an earlier attempt saved for this very post.
    Mine(Saved),
    /// Saved for other media (another kind or other URLs, or unreadable) with a creating call
    /// that may have been made: something may have been published that this post cannot be
    /// matched with. Publishing answers ambiguously, reconciliation `CannotTell`.
    Conflict,
}

/// What `saved` (a target's progress) means for a post of `shape`.
pub(super) fn resume(saved: &Value, shape: &Shape<'_>) -> Resume {
    if saved.is_null() {
        return Resume::Fresh;
    }
    let Ok(saved) = serde_json::from_value::<Saved>(saved.clone()) else {
        return Resume::Conflict;
    };
    let mine = match (&saved, shape) {
        // Photos not yet sent are reused one by one where their URL matches; once sent, only
        // for the same photos.
        (Saved::Photos { photos, sent }, Shape::Photos(urls)) => {
            !*sent || photos.iter().map(|p| &p.url).eq(urls.iter())
        }
        (Saved::Video { video_url, .. } | Saved::VideoSent { video_url }, Shape::Video(url)) => {
            video_url == url
        }
        (Saved::Reel(s), Shape::Reel(url)) | (Saved::VideoStory(s), Shape::VideoStory(url)) => {
            s.video_url == *url
        }
        (Saved::PhotoStory { image_url, .. }, Shape::PhotoStory(url)) => image_url == url,
        _ => false,
    };
    if mine {
        Resume::Mine(saved)
    } else if saved.may_have_published() {
        Resume::Conflict
    } else {
        Resume::Fresh
    }
}

/// Clears a marker after an answer that certainly had no effect (best effort, logged).
pub(super) async fn clear_or_log(progress: &Progress, what: &str) {
    if let Err(e) = progress.save(Value::Null).await {
        tracing::warn!(code = %e.code, what, "could not clear the Facebook target's marker");
    }
}

/// Saves `value` after a creating call took effect: a failed save is logged, never turned into
/// a failure of the attempt (the caller knows whether it was kept). Also for clearing a marker
/// after an answer that had no effect.
pub(super) async fn save_or_log(progress: &Progress, value: &Saved, what: &str) -> bool {
    match progress.save(value.to_value()).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                code = %e.code,
                what,
                "could not save the Facebook target's progress; carrying on"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn saved_progress_is_tagged_and_read_back() {
        let v = Saved::Video {
            video_url: "u".into(),
            video_id: "9".into(),
        };
        assert_eq!(
            v.to_value(),
            json!({"kind": "video", "video_url": "u", "video_id": "9"})
        );
        let reel = Saved::Reel(SavedSession {
            video_url: "u".into(),
            video_id: "9".into(),
            upload_url: None,
            finish_sent: true,
        });
        assert_eq!(
            reel.to_value(),
            json!({"kind": "reel", "video_url": "u", "video_id": "9", "finish_sent": true})
        );
        let photos = json!({"kind": "photos", "photos": [{"url": "a", "id": "1"}, {"url": "b", "id": null}]});
        assert_eq!(
            resume(&photos, &Shape::Photos(&["a".into(), "b".into()])),
            Resume::Mine(Saved::Photos {
                photos: vec![
                    SavedPhoto {
                        url: "a".into(),
                        id: Some("1".into())
                    },
                    SavedPhoto {
                        url: "b".into(),
                        id: None
                    },
                ],
                sent: false
            })
        );
    }

    #[test]
    fn progress_of_other_media_is_a_conflict_only_when_it_may_have_published() {
        let video = json!({"kind": "video", "video_url": "u", "video_id": "9"});
        assert!(matches!(
            resume(&video, &Shape::Video("u")),
            Resume::Mine(_)
        ));
        // Another URL, or a reel of the same URL: the video may be live.
        assert_eq!(resume(&video, &Shape::Video("other")), Resume::Conflict);
        assert_eq!(resume(&video, &Shape::Reel("u")), Resume::Conflict);
        assert_eq!(resume(&video, &Shape::Feed), Resume::Conflict);
        // The upload's marker: this video's, or, for other media, something that may be live.
        let sent = json!({"kind": "video_sent", "video_url": "u"});
        assert_eq!(
            resume(&sent, &Shape::Video("u")),
            Resume::Mine(Saved::VideoSent {
                video_url: "u".into()
            })
        );
        assert_eq!(resume(&sent, &Shape::Video("other")), Resume::Conflict);
        assert_eq!(resume(&sent, &Shape::Reel("u")), Resume::Conflict);
        // A reel session never finished published nothing; once its finish was sent, it may have.
        let reel = json!({"kind": "reel", "video_url": "u", "video_id": "9"});
        assert_eq!(resume(&reel, &Shape::Video("u")), Resume::Fresh);
        assert!(matches!(resume(&reel, &Shape::Reel("u")), Resume::Mine(_)));
        assert_eq!(resume(&reel, &Shape::VideoStory("u")), Resume::Fresh);
        let finished =
            json!({"kind": "reel", "video_url": "u", "video_id": "9", "finish_sent": true});
        assert_eq!(resume(&finished, &Shape::Video("u")), Resume::Conflict);
        assert_eq!(resume(&finished, &Shape::Reel("x")), Resume::Conflict);
        // Photos: reused by URL until sent; once sent, only for the same photos.
        let urls = ["a".to_owned(), "c".to_owned()];
        let unsent =
            json!({"kind": "photos", "photos": [{"url": "a", "id": "1"}, {"url": "b", "id": "2"}]});
        assert!(matches!(
            resume(&unsent, &Shape::Photos(&urls)),
            Resume::Mine(_)
        ));
        let sent = json!({"kind": "photos", "photos": [{"url": "a", "id": "1"}, {"url": "b", "id": "2"}], "sent": true});
        assert_eq!(resume(&sent, &Shape::Photos(&urls)), Resume::Conflict);
        let story = json!({"kind": "photo_story", "image_url": "i", "photo_id": "5", "sent": true});
        assert!(matches!(
            resume(&story, &Shape::PhotoStory("i")),
            Resume::Mine(_)
        ));
        assert_eq!(resume(&story, &Shape::PhotoStory("j")), Resume::Conflict);
        // Unreadable progress may be anything.
        assert_eq!(
            resume(&json!({"video_id": "9"}), &Shape::Video("u")),
            Resume::Conflict
        );
        assert_eq!(resume(&Value::Null, &Shape::Video("u")), Resume::Fresh);
    }
}
