//! Media files: their kinds, the types the server takes, and a file's type told from its first
//! bytes (spec 8.1: never from a file name or the sender's `Content-Type`).

use crate::keys::KeyMode;
use crate::store::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<MediaKind> {
        match s {
            "image" => Some(MediaKind::Image),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }

    /// The kind of an accepted type (`IMAGE_TYPES`, `VIDEO_TYPES`); `None` for any other.
    pub fn of(mime: &str) -> Option<MediaKind> {
        if IMAGE_TYPES.contains(&mime) {
            Some(MediaKind::Image)
        } else if VIDEO_TYPES.contains(&mime) {
            Some(MediaKind::Video)
        } else {
            None
        }
    }

    /// Spec 8.1: images up to 50 MB, videos up to 500 MB.
    pub fn max_bytes(self) -> u64 {
        match self {
            MediaKind::Image => IMAGE_MAX_BYTES,
            MediaKind::Video => VIDEO_MAX_BYTES,
        }
    }
}

/// What is known of a stored file once it has been read: what platform rules are checked
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFacts {
    pub kind: MediaKind,
    /// From the bytes: one of `IMAGE_TYPES` or `VIDEO_TYPES`.
    pub mime: &'static str,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Videos only.
    pub duration_ms: Option<u64>,
}

/// A hosted file, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    /// `med_` and 24 random letters and digits: the hosted URL's secret part.
    pub id: String,
    pub user_id: String,
    pub mode: KeyMode,
    pub facts: MediaFacts,
    /// Lower-case hex.
    pub sha256: String,
    /// Where the file is in the media store.
    pub storage_key: String,
    /// The hosted URL's last segment (`<id>.<extension>`).
    pub file_name: String,
    /// Where an imported file came from; `None` for uploads.
    pub source_url: Option<String>,
    /// The client's `Idempotency-Key`, or the one derived from the request; `None` once it has
    /// expired (`MEDIA_IDEMPOTENCY_HOURS`) and another request took it.
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of what the request asked for: an import's body, an upload's bytes.
    pub request_hash: String,
    pub created_at: DateTime<Utc>,
}

/// How long a media request's idempotency key replays its file (as for posts, spec 6.1).
pub const MEDIA_IDEMPOTENCY_HOURS: i64 = 24;

/// Newest first, older than the cursor.
#[derive(Debug, Clone)]
pub struct MediaPage {
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: i64,
}

/// The media rows.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// `Conflict` when the user already has a file under this idempotency key (in this mode).
    async fn insert_media(&self, media: &MediaRecord) -> StoreResult<()>;
    /// Any user's file (the hosted URL needs no key).
    async fn get_media(&self, id: &str) -> StoreResult<Option<MediaRecord>>;
    /// The user's file recorded under this idempotency key.
    async fn find_media_by_key(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
    ) -> StoreResult<Option<MediaRecord>>;
    /// Frees an expired idempotency key for a new request (the file stays).
    async fn release_media_key(&self, id: &str) -> StoreResult<()>;
    async fn list_media(
        &self,
        user_id: &str,
        mode: KeyMode,
        page: &MediaPage,
    ) -> StoreResult<Vec<MediaRecord>>;
    /// Deletes the user's file's row unless a post of the user that has not finished
    /// publishing names its hosted URL (`url_prefix`: the URL up to the id and the slash after
    /// it), in one transaction that a post being stored with the file (`NewSubmission::
    /// media_ids`) waits for, or waits for.
    async fn delete_media(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
        url_prefix: &str,
    ) -> StoreResult<MediaDeletion>;
}

/// What `MediaStore::delete_media` did.
#[derive(Debug)]
pub enum MediaDeletion {
    /// The row is gone (its bytes are the caller's to delete).
    Deleted(Box<MediaRecord>),
    /// A post that has not finished publishing names the file.
    InUse,
    /// The user has no such file.
    NotFound,
}

pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
pub const VIDEO_TYPES: &[&str] = &[
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
];
/// Spec 8.1: images up to 50 MB, videos up to 500 MB; platforms narrow these.
pub const IMAGE_MAX_BYTES: u64 = 50 * 1024 * 1024;
pub const VIDEO_MAX_BYTES: u64 = 500 * 1024 * 1024;

/// The accepted type equal to `mime`, as a `&'static str`.
pub fn known_type(mime: &str) -> Option<&'static str> {
    IMAGE_TYPES
        .iter()
        .chain(VIDEO_TYPES)
        .find(|t| **t == mime)
        .copied()
}

/// The most first bytes `sniff` looks at.
pub const SNIFF_LEN: usize = 64;

/// The type of a file from its first bytes: `sniff_basic`, except that HEIF images (HEIC, AVIF),
/// which `sniff_basic` reports as MP4 video because they share its `ftyp` box, are told apart by their
/// brands. No platform here takes them, so they must not pass as `video/mp4`.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if let Some(image) = heif_type(bytes) {
        return Some(image);
    }
    sniff_basic(bytes)
}

/// `image/avif`, `image/heic` or `image/heif` for an ISO-BMFF file whose `ftyp` box names an image
/// brand (ISO/IEC 23008-12 and the AV1 Image File Format).
fn heif_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let kind = |brand: &[u8]| match brand {
        b"avif" | b"avis" => Some("image/avif"),
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs" => {
            Some("image/heic")
        }
        _ => None,
    };
    let major = &bytes[8..12];
    if let Some(found) = kind(major) {
        return Some(found);
    }
    if major != b"mif1" && major != b"msf1" {
        return None;
    }
    // Generic HEIF: the compatible brands (after the minor version) say which codec.
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let compatible = bytes.get(16..size.min(bytes.len())).unwrap_or_default();
    Some(
        compatible
            .chunks_exact(4)
            .find_map(kind)
            .unwrap_or("image/heif"),
    )
}

/// The type of a file from its first bytes, by magic number: JPEG, PNG, GIF, WebP, ISO-BMFF
/// (MP4 or QuickTime by the `ftyp` brand) and EBML (WebM or Matroska by the doctype).
pub fn sniff_basic(bytes: &[u8]) -> Option<&'static str> {
    let starts = |p: &[u8]| bytes.starts_with(p);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        if &bytes[8..10] == b"qt" {
            Some("video/quicktime")
        } else {
            Some("video/mp4")
        }
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        // EBML: WebM declares its doctype early; anything else is Matroska.
        let head = &bytes[..bytes.len().min(SNIFF_LEN)];
        if head.windows(4).any(|w| w == b"webm") {
            Some("video/webm")
        } else {
            Some("video/x-matroska")
        }
    } else {
        None
    }
}

/// The file extension for a type, for platforms that want a file name and for hosted URLs.
pub fn extension(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "video/x-matroska" => "mkv",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"GIF89a..."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  "), Some("video/quicktime"));
        assert_eq!(sniff(b"<html><body>not an image"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(MediaKind::of("video/webm"), Some(MediaKind::Video));
        assert_eq!(MediaKind::of("image/heic"), None);
    }

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut b = size.to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0, 0, 0, 0]);
        for c in compatible {
            b.extend_from_slice(*c);
        }
        b.extend_from_slice(b"\0\0\0\x08meta");
        b
    }

    #[test]
    fn heif_images_are_not_taken_for_video() {
        assert_eq!(
            sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            Some("image/heic")
        );
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"avif", b"mif1"])),
            Some("image/avif")
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"avif"])),
            Some("image/avif")
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])),
            Some("image/heic")
        );
        assert_eq!(sniff(&ftyp(b"mif1", &[b"mif1"])), Some("image/heif"));
        // The base sniffer calls all of these MP4, which VIDEO_TYPES would accept.
        assert_eq!(sniff_basic(&ftyp(b"heic", &[])), Some("video/mp4"));
        // Video stays video.
        assert_eq!(
            sniff(&ftyp(b"isom", &[b"isom", b"mp41"])),
            Some("video/mp4")
        );
        assert_eq!(
            sniff(b"\0\0\0\x14ftypqt  \0\0\0\0"),
            Some("video/quicktime")
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        // A truncated or lying box size does not panic.
        let mut b = ftyp(b"mif1", &[b"avif"]);
        b[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(sniff(&b), Some("image/avif"));
        assert_eq!(sniff(&b[..14]), Some("image/heif"));
        assert_eq!(sniff(b"\0\0\0\x0cftypmif1"), Some("image/heif"));
    }
}
