//! Where hosted files live: a local directory (the default, beside the SQLite database) or an
//! S3-compatible bucket, both through `object_store`.
//!
//! A file arrives in a *spool* file on local disk first (`Spool`): it is hashed, its size
//! bounded and its contents read (`probe`) there, and only a file that passed is committed under
//! its key. For a local store the spool directory is inside the store's directory, so committing
//! is a rename on the same file system (no second copy); for S3 the spool is uploaded with a
//! multipart upload, part by part, never whole in memory. A spool that is not committed (refused,
//! client gone, server stopped) is deleted when dropped; leftovers of a killed process are
//! removed at the next start (spool files a day old: younger ones may belong to another
//! process on the same directory, such as a `soku worker`).

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// S3 multipart part size: 8 MiB (S3 requires at least 5 MiB for every part but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at once during a commit to S3.
const PART_CONCURRENCY: usize = 2;
/// A spool file this old belongs to a process that died.
const STALE_SPOOL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("media store setting: {0}")]
    Config(String),
    #[error("no such file in the media store")]
    NotFound,
    #[error("media store: {0}")]
    Backend(String),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound,
            other => StorageError::Backend(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        StorageError::Backend(e.to_string())
    }
}

enum Backend {
    /// The store's root directory.
    Local(PathBuf),
    /// `s3://bucket/prefix`, for messages.
    S3(String),
}

/// The hosted files' store.
#[derive(Clone)]
pub struct MediaStorage(Arc<Inner>);

struct Inner {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    spool_dir: PathBuf,
    /// Sync a local file (and its directory entry) to disk before it counts as stored.
    sync: bool,
}

impl std::fmt::Debug for MediaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Where to put media: `--media-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Local(PathBuf),
    /// Bucket and key prefix (without slashes at either end; may be empty).
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl StoreLocation {
    /// `s3://bucket[/prefix]`, `file:///dir`, or a directory path.
    pub fn parse(setting: &str) -> Result<StoreLocation, StorageError> {
        let setting = setting.trim();
        if let Some(rest) = setting.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StorageError::Config(format!(
                    "{setting}: an S3 location is s3://BUCKET[/PREFIX]"
                )));
            }
            return Ok(StoreLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if setting.contains("://") && !setting.starts_with("file://") {
            return Err(StorageError::Config(format!(
                "{setting}: use a directory, file:///DIR or s3://BUCKET[/PREFIX]"
            )));
        }
        let dir = setting.strip_prefix("file://").unwrap_or(setting);
        if dir.is_empty() {
            return Err(StorageError::Config("the media directory is empty".into()));
        }
        Ok(StoreLocation::Local(PathBuf::from(dir)))
    }
}

/// How a store behaves besides where it is. For S3, the standard AWS variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_SESSION_TOKEN`...) are read
/// by `object_store` itself.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Local store: sync each file to disk before it counts as stored, so that it survives a
    /// power loss, not only a killed process (the server sets it with SQLite's
    /// `synchronous=full`, the same promise for the rows). S3 answers an upload once it is
    /// durable.
    pub sync: bool,
    /// An S3-compatible service's URL (MinIO, Ceph, moto...); `http://` is allowed for it.
    pub endpoint: Option<String>,
    /// Where files wait before they are uploaded; default: the system's temporary directory.
    pub spool_dir: Option<PathBuf>,
}

impl MediaStorage {
    /// Opens the store at `location`; a local directory is created if missing.
    pub async fn open(
        location: &StoreLocation,
        options: &StoreOptions,
    ) -> Result<Self, StorageError> {
        match location {
            StoreLocation::Local(dir) => Self::local_with(dir, options.sync).await,
            StoreLocation::S3 { bucket, prefix } => Self::s3(bucket, prefix, options).await,
        }
    }

    /// A store in `dir` (created if missing); its spool is `dir/.spool`. Files survive a killed
    /// process (`local_with` to sync them for a power loss too).
    pub async fn local(dir: &Path) -> Result<Self, StorageError> {
        Self::local_with(dir, false).await
    }

    /// A store in `dir`, syncing each file to disk before it counts as stored when `sync`.
    pub async fn local_with(dir: &Path, sync: bool) -> Result<Self, StorageError> {
        tokio::fs::create_dir_all(dir).await?;
        let root = tokio::fs::canonicalize(dir).await?;
        let spool_dir = root.join(".spool");
        tokio::fs::create_dir_all(&spool_dir).await?;
        remove_stale_spools(&spool_dir, STALE_SPOOL).await;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Self(Arc::new(Inner {
            store: Arc::new(store),
            backend: Backend::Local(root),
            spool_dir,
            sync,
        })))
    }

    async fn s3(bucket: &str, prefix: &str, options: &StoreOptions) -> Result<Self, StorageError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let s3 = builder.build()?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        let spool_dir = options
            .spool_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("soku-media-spool-{}", std::process::id()));
        tokio::fs::create_dir_all(&spool_dir).await?;
        let described = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Ok(Self(Arc::new(Inner {
            store,
            backend: Backend::S3(described),
            spool_dir,
            sync: false,
        })))
    }

    /// `s3://bucket/prefix` or the local directory, for logs.
    pub fn describe(&self) -> String {
        match &self.0.backend {
            Backend::Local(dir) => dir.display().to_string(),
            Backend::S3(url) => url.clone(),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self.0.backend, Backend::Local(_))
    }

    /// A new, empty spool file.
    pub async fn spool(&self) -> Result<Spool, StorageError> {
        let path = self
            .0
            .spool_dir
            .join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Spool {
            path,
            file: Some(file),
            sync: self.0.sync,
        })
    }

    /// Stores the spool's file under `key` (`Spool::finish` first).
    pub async fn commit(&self, mut spool: Spool, key: &str) -> Result<(), StorageError> {
        let key_path = ObjectPath::parse(key).map_err(|e| StorageError::Backend(e.to_string()))?;
        match &self.0.backend {
            Backend::Local(root) => {
                let target = root.join(key);
                if let Some(parent) = target.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::rename(&spool.path, &target).await?;
                spool.committed();
                // The rename itself survives a power loss once its directory is synced.
                if let Some(parent) = target.parent().filter(|_| self.0.sync) {
                    let parent = parent.to_owned();
                    let _ = tokio::task::spawn_blocking(move || {
                        std::fs::File::open(parent).and_then(|d| d.sync_all())
                    })
                    .await;
                }
                Ok(())
            }
            Backend::S3(_) => {
                let upload = self.0.store.put_multipart(&key_path).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                let mut file = tokio::fs::File::open(&spool.path).await?;
                let mut buf = vec![0u8; 1024 * 1024];
                loop {
                    let n = match file.read(&mut buf).await {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = writer.abort().await;
                            return Err(e.into());
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                        let _ = writer.abort().await;
                        return Err(e.into());
                    }
                    writer.write(&buf[..n]);
                }
                writer.finish().await?;
                Ok(())
            }
        }
    }

    /// The file at `key`, or the bytes `range` of it, as a stream. A local file is read directly
    /// in `READ_CHUNK` pieces (`object_store`'s local reads come in 8 KiB pieces, which costs a
    /// hosted file most of its serving speed); S3 streams through `object_store`.
    pub async fn read(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let path = ObjectPath::parse(key).map_err(|e| StorageError::Backend(e.to_string()))?;
        if let Backend::Local(root) = &self.0.backend {
            return read_local(root.join(path.as_ref()), range).await;
        }
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self.0.store.get_opts(&path, options).await?;
        Ok(got
            .into_stream()
            .map(|r| r.map_err(StorageError::from))
            .boxed())
    }

    /// Deletes the file at `key`; deleting a missing file succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = ObjectPath::parse(key).map_err(|e| StorageError::Backend(e.to_string()))?;
        match self.0.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the store answers (a listing of at most one entry).
    pub async fn check(&self) -> Result<(), StorageError> {
        let mut listing = self.0.store.list(None);
        match listing.next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
        }
    }
}

/// How much of a local file one read takes.
const READ_CHUNK: usize = 256 * 1024;

async fn read_local(
    path: PathBuf,
    range: Option<std::ops::Range<u64>>,
) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
    use tokio::io::AsyncSeekExt;
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata().await?.len();
    let range = range.unwrap_or(0..len);
    let (start, end) = (range.start.min(len), range.end.min(len));
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let left = end - start;
    Ok(
        futures_util::stream::unfold((file, left), |(mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let mut buf = vec![0u8; (left as usize).min(READ_CHUNK)];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(StorageError::Backend(
                        "the file ended before its length".into(),
                    )),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
                }
                Err(e) => Some((Err(e.into()), (file, 0))),
            }
        })
        .boxed(),
    )
}

/// Deletes the spool files in `dir` last written more than `age` ago.
async fn remove_stale_spools(dir: &Path, age: std::time::Duration) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let stale = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if stale {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

/// A file being received, deleted when dropped unless committed.
pub struct Spool {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    sync: bool,
}

impl Spool {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for writing.
    pub fn file(&mut self) -> &mut tokio::fs::File {
        self.file
            .as_mut()
            .expect("the spool is open until finished")
    }

    /// Closes the file, synced to disk first when the store asks for it.
    pub async fn finish(&mut self) -> Result<(), StorageError> {
        if let Some(file) = self.file.take()
            && self.sync
        {
            file.sync_all().await?;
        }
        Ok(())
    }

    fn committed(&mut self) {
        self.path = PathBuf::new();
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            StoreLocation::parse("s3://bucket/a/b/").unwrap(),
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            StoreLocation::parse("s3://bucket").unwrap(),
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreLocation::parse("file:///var/lib/soku/media").unwrap(),
            StoreLocation::Local("/var/lib/soku/media".into())
        );
        assert_eq!(
            StoreLocation::parse("media").unwrap(),
            StoreLocation::Local("media".into())
        );
        assert!(StoreLocation::parse("s3://").is_err());
        assert!(StoreLocation::parse("gs://bucket").is_err());
        assert!(StoreLocation::parse("").is_err());
    }

    #[tokio::test]
    async fn a_local_store_commits_by_rename_and_reads_ranges() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let storage = MediaStorage::local(&dir.path().join("media"))
            .await
            .unwrap();
        let mut spool = storage.spool().await.unwrap();
        spool.file().write_all(b"hello, world").await.unwrap();
        spool.finish().await.unwrap();
        let spooled = spool.path().to_owned();
        storage.commit(spool, "ab/med_x.bin").await.unwrap();
        assert!(!spooled.exists(), "the spool became the file");
        let read = |range| {
            let storage = storage.clone();
            async move {
                let mut s = storage.read("ab/med_x.bin", range).await.unwrap();
                let mut out = Vec::new();
                while let Some(chunk) = s.next().await {
                    out.extend_from_slice(&chunk.unwrap());
                }
                out
            }
        };
        assert_eq!(read(None).await, b"hello, world");
        assert_eq!(read(Some(7..12)).await, b"world");
        storage.delete("ab/med_x.bin").await.unwrap();
        storage.delete("ab/med_x.bin").await.unwrap();
        assert!(matches!(
            storage.read("ab/med_x.bin", None).await.err(),
            Some(StorageError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_dropped_spool_leaves_nothing_and_old_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = MediaStorage::local(dir.path()).await.unwrap();
        let spool = storage.spool().await.unwrap();
        let path = spool.path().to_owned();
        assert!(path.exists());
        drop(spool);
        assert!(!path.exists());
        // A file left by a killed process, and one another process is writing.
        let left = dir.path().join(".spool/left.part");
        let young = dir.path().join(".spool/young.part");
        std::fs::write(&left, b"x").unwrap();
        std::fs::write(&young, b"x").unwrap();
        let old = std::time::SystemTime::now() - STALE_SPOOL - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&left)
            .unwrap()
            .set_modified(old)
            .unwrap();
        MediaStorage::local(dir.path()).await.unwrap();
        assert!(!left.exists());
        assert!(young.exists());
    }
}
