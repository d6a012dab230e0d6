//! What Instagram answers, and what an attempt saves for the next (`Saved`).

use super::*;

#[derive(Deserialize)]
pub(super) struct IdOnly {
    pub(super) id: String,
}

#[derive(Deserialize)]
pub(super) struct ContainerStatus {
    pub(super) status_code: Option<String>,
    pub(super) status: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct QuotaRow {
    #[serde(default)]
    pub(super) quota_usage: Option<u64>,
    #[serde(default)]
    pub(super) config: Option<QuotaConfig>,
}

#[derive(Deserialize)]
pub(super) struct QuotaConfig {
    #[serde(default)]
    pub(super) quota_total: Option<u64>,
    #[serde(default)]
    pub(super) quota_duration: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct Permalink {
    pub(super) permalink: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct IgMedia {
    pub(super) id: String,
    pub(super) caption: Option<String>,
    pub(super) timestamp: Option<String>,
    pub(super) permalink: Option<String>,
    pub(super) media_type: Option<String>,
    pub(super) media_product_type: Option<String>,
}

/// One read of a container's `status_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Read {
    InProgress,
    Done(State),
    /// A `status_code` this server does not know, or none: it cannot tell what it means.
    Unknown(String),
}

/// A container's state once it is no longer processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Finished,
    Published,
    /// Unknown to Instagram: never published when `media_publish` was never sent for it, else
    /// it may have been (published, then dropped).
    Gone,
    /// EXPIRED, or ERROR with a subcode worth a new container: certainly never published.
    Expired,
    /// ERROR, with the subcode of `status`.
    Failed(String),
}

/// What the publish can go on with.
pub(super) enum Ready {
    Container(String),
    /// The saved container was already published.
    Published,
    /// The saved container was sent to `media_publish` and Instagram no longer knows it.
    Vanished,
}

/// What earlier attempts saved for this post (nothing when they saved it for another):
/// `{"kind", "key", "children", "container_id", "publish_sent", "media_id", "permalink"}`.
#[derive(Debug, Default)]
pub(super) struct Saved {
    pub(super) kind: &'static str,
    pub(super) key: String,
    pub(super) children: Vec<Option<String>>,
    pub(super) container_id: Option<String>,
    /// `media_publish` may have been sent for `container_id` (saved before it is sent).
    /// Progress saved before this field existed has none: read as sent, the safe side.
    pub(super) publish_sent: bool,
    /// The post `media_publish` made, once it answered.
    pub(super) media_id: Option<String>,
    pub(super) permalink: Option<String>,
}

impl Saved {
    pub(super) fn load(saved: &Value, kind: &'static str, key: &str) -> Self {
        let mut out = Saved {
            kind,
            key: key.to_owned(),
            ..Saved::default()
        };
        if !Self::is_for(saved, kind, key) {
            return out;
        }
        let id = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        out.container_id = saved.get("container_id").and_then(id);
        out.publish_sent = out.container_id.is_some() && publish_sent(saved);
        out.media_id = saved.get("media_id").and_then(id);
        out.permalink = saved.get("permalink").and_then(id);
        out.children = saved
            .get("children")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(id).collect())
            .unwrap_or_default();
        out
    }

    /// Whether `saved` is progress for the post of this kind and key.
    pub(super) fn is_for(saved: &Value, kind: &str, key: &str) -> bool {
        saved.get("kind").and_then(Value::as_str) == Some(kind)
            && saved.get("key").and_then(Value::as_str) == Some(key)
    }

    /// Whether `saved` (for whatever post) holds a container that may have been published, or
    /// a post.
    pub(super) fn may_be_published(saved: &Value) -> bool {
        let has = |field: &str| {
            saved
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        has("media_id") || (has("container_id") && publish_sent(saved))
    }

    /// The post an earlier attempt published and saved.
    pub(super) fn post(&self) -> Option<PublishedPost> {
        self.media_id.as_ref().map(|id| PublishedPost {
            id: id.clone(),
            url: self.permalink.clone(),
        })
    }

    /// A new top-level container, never sent to be published.
    pub(super) fn set_container(&mut self, id: &str) {
        self.container_id = Some(id.to_owned());
        self.publish_sent = false;
    }

    /// The saved top-level container is no use (and was never published).
    pub(super) fn forget_container(&mut self) {
        self.container_id = None;
        self.publish_sent = false;
    }

    pub(super) fn to_json(&self) -> Value {
        let mut v = json!({ "kind": self.kind, "key": self.key });
        if !self.children.is_empty() {
            v["children"] = json!(self.children);
        }
        if let Some(id) = &self.container_id {
            v["container_id"] = json!(id);
            v["publish_sent"] = json!(self.publish_sent);
        }
        if let Some(id) = &self.media_id {
            v["media_id"] = json!(id);
        }
        if let Some(url) = &self.permalink {
            v["permalink"] = json!(url);
        }
        v
    }
}

/// `publish_sent` as saved; absent (progress saved before it existed) reads as sent.
pub(super) fn publish_sent(saved: &Value) -> bool {
    saved
        .get("publish_sent")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// Saves the post `media_publish` made, so that later attempts and reconciliation answer it
/// without looking. The post exists: a failure to save is logged, not returned (a retry must
/// not come of it).
pub(super) async fn keep_post(request: &PublishRequest, saved: &mut Saved, post: &PublishedPost) {
    saved.media_id = Some(post.id.clone());
    saved.permalink = post.url.clone();
    if let Err(e) = request.progress.save(saved.to_json()).await {
        tracing::warn!(
            code = %e.code,
            "the Instagram post is published, but its id could not be saved in the progress"
        );
    }
}

/// A container status this server does not know: worth trying again later (Instagram may
/// answer a known one then), not worth polling on.
pub(super) fn unknown_status(code: &str) -> PublishError {
    PublishError::new(
        FailureClass::Retryable { retry_after: None },
        "container_status_unknown",
        format!(
            "Instagram answered a media container status this server does not know ({code}); the post will be tried again."
        ),
    )
}
