//! Hosted media's settings (spec 8.1): where files are kept and served from, and how long an
//! import may take.

use crate::service::media::MediaHost;
use clap::Args;
use soku_core::media::MediaStore;
use soku_media::{MediaLibrary, MediaStorage, StoreLocation, StoreOptions};
use soku_platforms::import::Importer;
use soku_platforms::net::NetPolicy;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(next_help_heading = "Media")]
pub struct MediaArgs {
    /// Where uploaded and imported files are kept: a directory, `file:///DIR`, or
    /// `s3://BUCKET[/PREFIX]` (credentials and region from the standard AWS variables).
    /// Default: `media` beside the SQLite database (`./media` with PostgreSQL).
    #[arg(long, env = "SOKU_MEDIA_STORE", value_name = "LOCATION")]
    pub media_store: Option<String>,
    /// The URL of an S3-compatible service (MinIO, Ceph, moto...) for an `s3://` media store;
    /// `http://` is allowed. Default: AWS.
    #[arg(long, env = "SOKU_MEDIA_S3_ENDPOINT", value_name = "URL")]
    pub media_s3_endpoint: Option<String>,
    /// Where files wait on local disk while they are received and checked, before they go to an
    /// `s3://` media store. Default: the system's temporary directory. (A local media store
    /// keeps them in its own `.spool` directory.)
    #[arg(long, env = "SOKU_MEDIA_SPOOL_DIR", value_name = "DIR")]
    pub media_spool_dir: Option<PathBuf>,
    /// The base of hosted files' URLs (`<base>/media/<id>/<file>`), e.g. a CDN in front of this
    /// server. Default: the public URL.
    #[arg(long, env = "SOKU_MEDIA_BASE_URL", value_name = "URL")]
    pub media_base_url: Option<String>,
    /// The longest one import (`POST /v1/media`) may take, download included, in seconds.
    #[arg(long, env = "SOKU_MEDIA_IMPORT_TIMEOUT_SECS", default_value_t = 600,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub media_import_timeout_secs: u64,
}

/// How long an import's source, or an upload's client, may stay silent before the transfer
/// ends (`timeout`).
pub const TRANSFER_IDLE: Duration = Duration::from_secs(30);

impl MediaArgs {
    /// The store's location: the setting, or `media` beside the SQLite database.
    pub fn location(&self, database_url: &str) -> Result<StoreLocation, String> {
        match self
            .media_store
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(setting) => StoreLocation::parse(setting).map_err(|e| e.to_string()),
            None => Ok(StoreLocation::Local(default_dir(database_url))),
        }
    }

    /// Opens the store and assembles what the media endpoints need.
    pub async fn host(
        &self,
        database_url: &str,
        public_url: &str,
        allow_loopback: bool,
        store: Arc<dyn MediaStore>,
    ) -> Result<MediaHost, String> {
        let location = self.location(database_url)?;
        let storage = MediaStorage::open(
            &location,
            &StoreOptions {
                sync: syncs_fully(database_url),
                endpoint: self
                    .media_s3_endpoint
                    .clone()
                    .filter(|e| !e.trim().is_empty()),
                spool_dir: self.media_spool_dir.clone(),
            },
        )
        .await
        .map_err(|e| format!("cannot open the media store: {e}"))?;
        let base_url = self
            .media_base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(public_url)
            .trim_end_matches('/')
            .to_owned();
        Ok(MediaHost {
            library: MediaLibrary {
                storage,
                store,
                base_url,
            },
            importer: Importer::new(
                NetPolicy { allow_loopback },
                Duration::from_secs(self.media_import_timeout_secs),
                TRANSFER_IDLE,
            ),
            upload_idle: TRANSFER_IDLE,
        })
    }
}

/// Whether the database is asked to survive a power loss (`synchronous=full` on SQLite;
/// PostgreSQL always syncs its commits): then a local media store syncs its files too.
fn syncs_fully(database_url: &str) -> bool {
    let url = database_url.to_ascii_lowercase();
    url.starts_with("postgres")
        || url.contains("synchronous=full")
        || url.contains("synchronous=extra")
}

/// `media` in the SQLite database's directory; `./media` for any other database.
fn default_dir(database_url: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|f| !f.is_empty() && !f.starts_with(":memory:"));
    match file.map(std::path::Path::new).and_then(|f| f.parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("media"),
        _ => PathBuf::from("media"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_lives_beside_the_sqlite_database_by_default() {
        assert_eq!(default_dir("sqlite://soku.db"), PathBuf::from("media"));
        assert_eq!(
            default_dir("sqlite:///var/lib/soku/soku.db?synchronous=full"),
            PathBuf::from("/var/lib/soku/media")
        );
        assert_eq!(
            default_dir("sqlite://data/soku.db"),
            PathBuf::from("data/media")
        );
        assert_eq!(default_dir("sqlite::memory:"), PathBuf::from("media"));
        assert_eq!(default_dir("postgres://u@h/db"), PathBuf::from("media"));
    }

    #[test]
    fn media_files_are_synced_when_the_database_promises_a_power_loss() {
        assert!(!syncs_fully("sqlite://soku.db"));
        assert!(syncs_fully("sqlite://soku.db?synchronous=FULL"));
        assert!(syncs_fully("postgres://u@h/db"));
    }
}
