//! A post's media, made hosted before a target is published (spec 8.1, "Media in posts").
//!
//! Each URL of the post becomes a file of the media library: a hosted URL is looked up (it must
//! still exist, and be the poster's own); an outside URL is imported, once per submission (its
//! idempotency key names the submission and the URL, so every target of the post, and every
//! later attempt, finds the one copy). The post the connector gets names the hosted copies, and
//! `PublishRequest::media` carries what each file is. An import that fails ends the target
//! `failed` with `upload_failed`; a database or media store that does not answer is retried.
//!
//! Then the files are checked against the target platform's media rules, as hosted files are
//! at submission (`soku_core::posts::media_rules`): an imported file that breaks one (a PNG for
//! Instagram, a landscape reel) ends the target `failed` with `media_rule` before anything is
//! sent to the platform.

use crate::dispatch::Engine;
use crate::retry::error;
use sha2::{Digest, Sha256};
use soku_core::media::{MediaKind, MediaRecord};
use soku_core::posts::media_rules::{self, MediaItem};
use soku_core::posts::{MediaType, PostContent, PostOptions};
use soku_core::queue::{ClaimedTarget, TargetOutcome};
use soku_media::ingest::hex;
use soku_media::{IngestError, LibraryError, MediaLibrary, Owner};
use soku_platforms::import::Importer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// What the engine needs to make a post's media hosted.
pub struct EngineMedia {
    pub library: MediaLibrary,
    pub importer: Importer,
    /// One import of a URL of a submission at a time in this process (its targets run at once).
    importing: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl EngineMedia {
    pub fn new(library: MediaLibrary, importer: Importer) -> Self {
        Self {
            library,
            importer,
            importing: Mutex::new(HashMap::new()),
        }
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.importing.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, lock| lock.strong_count() > 0);
        if let Some(lock) = map.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }
}

/// Why a URL could not be made hosted.
enum Failure {
    /// The file is gone or cannot be taken: the target fails.
    Permanent(String, String),
    /// The database or the media store did not answer: try again later.
    Unavailable(String),
}

impl Engine {
    /// The post with every media URL replaced by its hosted copy's, and the files, which keep
    /// to the target platform's media rules for this post (`options`).
    pub(crate) async fn prepare_media(
        &self,
        claimed: &ClaimedTarget,
        mut content: PostContent,
        options: &PostOptions,
    ) -> Result<(PostContent, Vec<MediaRecord>), TargetOutcome> {
        let Some(media) = &self.media else {
            return Ok((content, Vec::new()));
        };
        // Each file is named in a broken rule's message by where it came from.
        let labels: Vec<String> = content
            .image_urls
            .iter()
            .chain(content.video_url.as_ref())
            .map(|url| label(url))
            .collect();
        let mut files = Vec::new();
        let images = content.image_urls.len();
        let video_post = content.media_type == MediaType::Video;
        let urls = content
            .image_urls
            .iter_mut()
            .chain(content.video_url.as_mut());
        for (i, url) in urls.enumerate() {
            let record = match self.hosted_copy(media, claimed, url).await {
                Ok(record) => record,
                Err(Failure::Permanent(code, message)) => {
                    return Err(TargetOutcome::Failed(error(&code, message)));
                }
                Err(Failure::Unavailable(why)) => {
                    return Err(self.retry_or_fail(
                        claimed,
                        error("media_unavailable", why),
                        None,
                        claimed.in_flight,
                    ));
                }
            };
            if i == images
                && video_post
                && let Some(message) = media_rules::not_a_video(&labels[i], record.facts.kind)
            {
                return Err(TargetOutcome::Failed(error(
                    "media_rule",
                    format!("{message} (rule `media_type`)"),
                )));
            }
            *url = media.library.url(&record);
            files.push(record);
        }
        let items: Vec<MediaItem<'_>> = labels
            .iter()
            .zip(&files)
            .map(|(field, file)| MediaItem {
                field,
                facts: &file.facts,
            })
            .collect();
        if let Err(broken) =
            media_rules::check_post(claimed.target.platform, options, &content, &items)
        {
            return Err(TargetOutcome::Failed(error(
                "media_rule",
                format!("{} (rule `{}`)", broken.message, broken.rule),
            )));
        }
        Ok((content, files))
    }

    async fn hosted_copy(
        &self,
        media: &EngineMedia,
        claimed: &ClaimedTarget,
        url: &str,
    ) -> Result<MediaRecord, Failure> {
        let library = &media.library;
        if let Some((id, file)) = library.parse_url(url) {
            let found = library
                .hosted(id, file)
                .await
                .map_err(|e| Failure::Unavailable(e.to_string()))?;
            return found
                .filter(|m| m.user_id == claimed.user_id && m.mode == claimed.mode)
                .ok_or_else(|| {
                    Failure::Permanent(
                        "media_missing".into(),
                        format!("The hosted file {id} was deleted before the post was published."),
                    )
                });
        }
        let request_hash = hex(&Sha256::digest(format!("url:{url}")));
        let key = format!("submission:{}:{request_hash}", claimed.target.submission_id);
        let owner = Owner {
            user_id: &claimed.user_id,
            mode: claimed.mode,
            idempotency_key: &key,
            request_hash: &request_hash,
        };
        let lock = media.lock_for(&key);
        let _one_at_a_time = lock.lock().await;
        match library.existing(&owner, self.clock.now()).await {
            Ok(Some(record)) => return Ok(record),
            Ok(None) => {}
            Err(e) => return Err(library_failure(e)),
        }
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let failed = |message: String| {
            Failure::Permanent(
                "upload_failed".into(),
                format!("The media at {host} could not be imported: {message}"),
            )
        };
        let max = MediaKind::Video
            .max_bytes()
            .max(MediaKind::Image.max_bytes());
        let download = media
            .importer
            .open(url, max)
            .await
            .map_err(|e| failed(e.message))?;
        let declared = download.content_length;
        let received = soku_media::receive(&library.storage, download.into_stream(), declared)
            .await
            .map_err(|e| match e {
                IngestError::Source(e) => failed(e.message),
                IngestError::Storage(e) => Failure::Unavailable(e.to_string()),
                other => failed(other.to_string()),
            })?;
        let saved = library
            .save(received, &owner, Some(url.to_owned()), self.clock.now())
            .await
            .map_err(library_failure)?;
        Ok(saved.record)
    }
}

/// "the file at <url>", without the URL's user name, password, query or fragment (they may be
/// credentials or signatures: the label goes into the target's error).
fn label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            format!(
                "the file at {}://{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + u.path()
        }
        Err(_) => "a media file".to_owned(),
    }
}

fn library_failure(e: LibraryError) -> Failure {
    match e {
        // A key of the engine's own making names one URL of one submission: never reused.
        LibraryError::KeyConflict => Failure::Permanent(
            "upload_failed".into(),
            "The media's import record is inconsistent.".into(),
        ),
        LibraryError::Storage(e) => Failure::Unavailable(e.to_string()),
        LibraryError::Store(e) => Failure::Unavailable(e.to_string()),
    }
}
