//! The hosted files as one library: a received file committed to the media store with its row,
//! once per idempotency key; what the API (`POST /v1/media`, `/v1/media/uploads`) and the
//! publishing engine (an outside URL in a post, imported once per submission) both use.
//!
//! Idempotency: a request's key is scoped to the user and mode and kept
//! `MEDIA_IDEMPOTENCY_HOURS`. The same key with the same request (`request_hash`) gives the first
//! file again; with another request it is a conflict. Two identical requests at the same moment
//! both receive their file; the first row written wins and the other's copy is deleted.

use crate::ingest::Received;
use crate::storage::{MediaStorage, StorageError};
use chrono::{DateTime, Duration, Utc};
use soku_core::StoreError;
use soku_core::keys::KeyMode;
use soku_core::media::{MEDIA_IDEMPOTENCY_HOURS, MediaRecord, MediaStore, extension};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// The key was used for another request within `MEDIA_IDEMPOTENCY_HOURS`.
    #[error("the idempotency key was used for another request")]
    KeyConflict,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a file is for and how it was asked for.
pub struct Owner<'a> {
    pub user_id: &'a str,
    pub mode: KeyMode,
    pub idempotency_key: &'a str,
    /// SHA-256 (hex) of what was asked: an import's URL, an upload's bytes.
    pub request_hash: &'a str,
}

/// A file and whether it was there already (`replayed`).
pub struct Saved {
    pub record: MediaRecord,
    pub replayed: bool,
}

#[derive(Clone)]
pub struct MediaLibrary {
    pub storage: MediaStorage,
    pub store: Arc<dyn MediaStore>,
    /// The hosted files' base URL (`<base>/media/<id>/<file>`).
    pub base_url: String,
}

impl MediaLibrary {
    /// The hosted URL of a file.
    pub fn url(&self, record: &MediaRecord) -> String {
        hosted_url(&self.base_url, &record.id, &record.file_name)
    }

    /// The start of every URL of the file `id`: `<base>/media/<id>/`.
    pub fn url_prefix(&self, id: &str) -> String {
        hosted_url(&self.base_url, id, "")
    }

    /// The id and file name of a hosted URL of this library; `None` for any other URL.
    pub fn parse_url<'u>(&self, url: &'u str) -> Option<(&'u str, &'u str)> {
        let rest = url
            .strip_prefix(self.base_url.trim_end_matches('/'))?
            .strip_prefix("/media/")?;
        let (id, file) = rest.split_once('/')?;
        (!id.is_empty() && !file.is_empty() && !file.contains('/')).then_some((id, file))
    }

    /// The file served at `/media/<id>/<file>`, if there is one (whoever owns it).
    pub async fn hosted(&self, id: &str, file: &str) -> Result<Option<MediaRecord>, StoreError> {
        Ok(self
            .store
            .get_media(id)
            .await?
            .filter(|m| m.file_name == file))
    }

    /// The file this key already names, if any: `Ok(Some)` to answer again, `Err(KeyConflict)`
    /// when it was for another request. An expired key is released.
    pub async fn existing(
        &self,
        owner: &Owner<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<MediaRecord>, LibraryError> {
        let Some(found) = self
            .store
            .find_media_by_key(owner.user_id, owner.mode, owner.idempotency_key)
            .await?
        else {
            return Ok(None);
        };
        if found.created_at < now - Duration::hours(MEDIA_IDEMPOTENCY_HOURS) {
            self.store.release_media_key(&found.id).await?;
            return Ok(None);
        }
        if found.request_hash != owner.request_hash {
            return Err(LibraryError::KeyConflict);
        }
        Ok(Some(found))
    }

    /// Commits a received file and writes its row; when a concurrent twin got its row in first,
    /// this copy is deleted and the twin answered. `source_url` is kept without its user name
    /// and password: every answer about the file shows it.
    pub async fn save(
        &self,
        received: Received,
        owner: &Owner<'_>,
        source_url: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Saved, LibraryError> {
        let Received {
            facts,
            sha256,
            spool,
        } = received;
        let id = soku_core::keys::random_id("med_", 24);
        let ext = extension(facts.mime);
        let record = MediaRecord {
            file_name: format!("{}.{ext}", facts.kind.as_str()),
            storage_key: format!("{}/{id}.{ext}", &id[4..6]),
            id,
            user_id: owner.user_id.to_owned(),
            mode: owner.mode,
            facts,
            sha256,
            source_url: source_url.as_deref().map(without_userinfo),
            idempotency_key: Some(owner.idempotency_key.to_owned()),
            request_hash: owner.request_hash.to_owned(),
            created_at: now,
        };
        self.storage.commit(spool, &record.storage_key).await?;
        match self.store.insert_media(&record).await {
            Ok(()) => Ok(Saved {
                record,
                replayed: false,
            }),
            Err(e) => {
                // Without its row the file is unreachable: remove it.
                if let Err(gone) = self.storage.delete(&record.storage_key).await {
                    tracing::warn!(error = %gone, "could not delete a file whose row was not written");
                }
                match e {
                    StoreError::Conflict => match self.existing(owner, now).await? {
                        Some(record) => Ok(Saved {
                            record,
                            replayed: true,
                        }),
                        None => Err(StoreError::Backend(
                            "a media key conflicted, then was gone".into(),
                        )
                        .into()),
                    },
                    other => Err(other.into()),
                }
            }
        }
    }
}

/// `<base>/media/<id>/<file>`.
pub fn hosted_url(base_url: &str, id: &str, file_name: &str) -> String {
    format!("{}/media/{id}/{file_name}", base_url.trim_end_matches('/'))
}

/// `url` without the user name and password it may carry (`http://user:pass@host/...`).
pub fn without_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.into()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn userinfo_is_dropped_and_the_rest_kept() {
        for (given, kept) in [
            (
                "http://user:pass@example.com/a.png?sig=1",
                "http://example.com/a.png?sig=1",
            ),
            (
                "https://user@example.com:8443/a.png",
                "https://example.com:8443/a.png",
            ),
            ("http://:pass@example.com/a.png", "http://example.com/a.png"),
            ("https://example.com/a.png#x", "https://example.com/a.png#x"),
            (
                "https://EXAMPLE.com/a%20b.png",
                "https://EXAMPLE.com/a%20b.png",
            ),
        ] {
            assert_eq!(without_userinfo(given), kept, "{given}");
        }
    }
}
