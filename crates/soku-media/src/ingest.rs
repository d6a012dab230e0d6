//! Receiving a file: from a stream of bytes (an upload's body, an import's download) into a
//! spool file, with its type told from its first bytes, its size bounded as it arrives, its
//! SHA-256 computed on the way, and its facts read (`probe`) once it is whole. Nothing is held
//! whole in memory: a chunk at a time is hashed and written.

use crate::probe::{self, ProbeError};
use crate::storage::{MediaStorage, Spool, StorageError};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use soku_core::media::{MediaFacts, MediaKind, SNIFF_LEN, sniff};

/// Why a file was not taken. `E` is the byte stream's own error (a client that went away, a
/// download that broke).
#[derive(Debug, thiserror::Error)]
pub enum IngestError<E> {
    #[error("the file is empty")]
    Empty,
    /// Larger than its kind's limit (or, before the type is known, than any kind's).
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: u64, kind: Option<MediaKind> },
    /// Not an image or video type the server takes; `found` is what the bytes are, when known.
    #[error("the file is not an image or video of a type this server takes")]
    UnsupportedType { found: Option<&'static str> },
    /// What the bytes say it is, it is not (damaged, truncated) or too much to read.
    #[error("{0}")]
    Probe(ProbeError),
    /// The stream failed before its end.
    #[error("the transfer failed")]
    Source(E),
    /// The server could not write the file.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A file received whole and read: its facts and hash, waiting in the spool to be committed.
pub struct Received {
    pub facts: MediaFacts,
    /// Lower-case hex.
    pub sha256: String,
    pub spool: Spool,
}

/// Receives `body` into a spool file of `storage`. `declared_len` (a `Content-Length`) is
/// checked against the limit before anything is read, and again against the type's limit once
/// the type is known; the body is cut off as soon as it passes the limit whatever it declared.
pub async fn receive<S, E>(
    storage: &MediaStorage,
    body: S,
    declared_len: Option<u64>,
) -> Result<Received, IngestError<E>>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let any_max = MediaKind::Video
        .max_bytes()
        .max(MediaKind::Image.max_bytes());
    if declared_len.is_some_and(|n| n > any_max) {
        return Err(IngestError::TooLarge {
            max: any_max,
            kind: None,
        });
    }
    if declared_len == Some(0) {
        return Err(IngestError::Empty);
    }
    let mut body = std::pin::pin!(body);
    let mut spool = storage.spool().await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    // The first bytes, until the type is known.
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_LEN);
    let mut typed: Option<(&'static str, u64)> = None;
    // Written with blocking writes in place (`block_in_place`): a page-cache write of a chunk
    // takes microseconds, and this saves tokio's file buffer copy and a thread hand-off per
    // write. Falls back to a blocking task outside a multi-threaded runtime.
    let mut file = open_std(spool.path()).await?;
    loop {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(IngestError::Source(e)),
            None => break,
        };
        size += chunk.len() as u64;
        if let Some((_, max)) = typed
            && size > max
        {
            return Err(too_large(max, typed));
        }
        if typed.is_none() {
            let need = SNIFF_LEN - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(need)]);
            if head.len() == SNIFF_LEN {
                typed = Some(type_of(&head, declared_len)?);
                if size > typed.expect("just set").1 {
                    return Err(too_large(typed.expect("just set").1, typed));
                }
            }
        }
        hasher.update(&chunk);
        file = write_chunk(file, chunk).await?;
    }
    if size == 0 {
        return Err(IngestError::Empty);
    }
    let (mime, _) = match typed {
        Some(t) => t,
        // A file shorter than the sniffing window.
        None => type_of(&head, declared_len)?,
    };
    drop(file);
    spool.finish().await?;
    let path = spool.path().to_owned();
    let facts = tokio::task::spawn_blocking(move || probe::probe(&path, mime, size))
        .await
        .map_err(|e| StorageError::Backend(format!("the probe stopped: {e}")))?
        .map_err(IngestError::Probe)?;
    Ok(Received {
        facts,
        sha256: hex(&hasher.finalize()),
        spool,
    })
}

/// The type of a file from its first bytes, and its kind's limit (checked against a declared
/// length at once).
fn type_of<E>(
    head: &[u8],
    declared_len: Option<u64>,
) -> Result<(&'static str, u64), IngestError<E>> {
    let found = sniff(head);
    let Some(kind) = found.and_then(MediaKind::of) else {
        return Err(IngestError::UnsupportedType { found });
    };
    let max = kind.max_bytes();
    if declared_len.is_some_and(|n| n > max) {
        return Err(IngestError::TooLarge {
            max,
            kind: Some(kind),
        });
    }
    Ok((found.expect("a kind has a type"), max))
}

fn too_large<E>(max: u64, typed: Option<(&'static str, u64)>) -> IngestError<E> {
    IngestError::TooLarge {
        max,
        kind: typed.and_then(|(mime, _)| MediaKind::of(mime)),
    }
}

async fn open_std(path: &std::path::Path) -> Result<std::fs::File, StorageError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(path))
        .await
        .map_err(|e| StorageError::Backend(e.to_string()))?
        .map_err(StorageError::from)
}

/// Appends `chunk` to `file`.
async fn write_chunk(mut file: std::fs::File, chunk: Bytes) -> Result<std::fs::File, StorageError> {
    use std::io::Write;
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| file.write_all(&chunk))?;
        Ok(file)
    } else {
        tokio::task::spawn_blocking(move || file.write_all(&chunk).map(|()| file))
            .await
            .map_err(|e| StorageError::Backend(e.to_string()))?
            .map_err(StorageError::from)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
