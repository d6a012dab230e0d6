//! What a received file is: its dimensions (images, from their headers with the `image` crate;
//! nothing is decoded) and its duration and dimensions (videos, from the container with
//! `nom-exif`: MP4/MOV `moov`, WebM/Matroska segment headers). No ffmpeg, no full decode.

use soku_core::media::{MediaFacts, MediaKind};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The largest image side taken. Above it a file is refused before anything would decode it
/// (an "image bomb" declares huge dimensions in a few bytes). The platforms' own limits are far
/// lower (X: 8192 px; Instagram scales to 1440 px).
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// The most pixels in one image: 16384 x 6103, 100 megapixels.
pub const MAX_IMAGE_PIXELS: u64 = 100_000_000;
/// The largest `moov` box read. A 500 MB MP4's is a few MB; a larger one is refused rather than
/// read into memory.
pub const MAX_MOOV_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// The file is not what its first bytes say (truncated, damaged).
    #[error("{0}")]
    Invalid(String),
    /// Dimensions above `MAX_IMAGE_SIDE` / `MAX_IMAGE_PIXELS`, or a `moov` above
    /// `MAX_MOOV_BYTES`.
    #[error("{0}")]
    TooLarge(String),
}

/// Reads the facts of the file at `path`, whose type `mime` was told from its first bytes.
pub fn probe(path: &Path, mime: &'static str, size: u64) -> Result<MediaFacts, ProbeError> {
    let kind = MediaKind::of(mime)
        .ok_or_else(|| ProbeError::Invalid(format!("{mime} is not a type the server takes")))?;
    let mut facts = MediaFacts {
        kind,
        mime,
        size,
        width: None,
        height: None,
        duration_ms: None,
    };
    match kind {
        MediaKind::Image => {
            let (w, h) = image_dimensions(path, mime)?;
            if w == 0 || h == 0 {
                return Err(ProbeError::Invalid(format!("the image is {w}x{h} pixels")));
            }
            if w > MAX_IMAGE_SIDE
                || h > MAX_IMAGE_SIDE
                || u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS
            {
                return Err(ProbeError::TooLarge(format!(
                    "the image is {w}x{h} pixels; at most {MAX_IMAGE_SIDE} pixels a side and \
                     {} megapixels are taken",
                    MAX_IMAGE_PIXELS / 1_000_000
                )));
            }
            facts.width = Some(w);
            facts.height = Some(h);
        }
        MediaKind::Video => {
            let long_header = if matches!(mime, "video/mp4" | "video/quicktime") {
                check_moov(path)?
            } else {
                false
            };
            let track = nom_exif::read_track(path).map_err(|e| {
                ProbeError::Invalid(format!("the video's container could not be read ({e})"))
            })?;
            use nom_exif::TrackInfoTag as T;
            let u64_of = |tag| track.get(tag).and_then(|v| v.as_u64());
            let u32_of = |tag| {
                track.get(tag).and_then(|v| {
                    v.as_u32()
                        .or_else(|| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                })
            };
            if !long_header {
                facts.duration_ms = u64_of(T::DurationMs);
                facts.width = u32_of(T::Width).filter(|w| *w > 0);
                facts.height = u32_of(T::Height).filter(|h| *h > 0);
            }
            if !long_header && facts.duration_ms.is_none() && facts.width.is_none() {
                return Err(ProbeError::Invalid(
                    "the video's container names no video track".into(),
                ));
            }
        }
    }
    Ok(facts)
}

fn image_dimensions(path: &Path, mime: &str) -> Result<(u32, u32), ProbeError> {
    let format = match mime {
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/png" => image::ImageFormat::Png,
        "image/gif" => image::ImageFormat::Gif,
        _ => image::ImageFormat::WebP,
    };
    let file = std::fs::File::open(path).map_err(|e| ProbeError::Invalid(e.to_string()))?;
    let mut reader = image::ImageReader::new(std::io::BufReader::new(file));
    reader.set_format(format);
    reader
        .into_dimensions()
        .map_err(|e| ProbeError::Invalid(format!("the image's header could not be read ({e})")))
}

/// Walks the top-level boxes of an ISO-BMFF file (8- or 16-byte headers only) and refuses a
/// `moov` box larger than `MAX_MOOV_BYTES`, which the container reader would hold in memory.
/// True when the movie header (`moov`'s first box, `mvhd`) is version 1 (64-bit times), which
/// `nom-exif` reads as version 0: its duration and dimensions would be wrong, so they are
/// left unknown (the rules that need them are then skipped, never misapplied).
fn check_moov(path: &Path) -> Result<bool, ProbeError> {
    let mut file = std::fs::File::open(path).map_err(|e| ProbeError::Invalid(e.to_string()))?;
    let len = file
        .metadata()
        .map_err(|e| ProbeError::Invalid(e.to_string()))?
        .len();
    let mut at = 0u64;
    while at + 8 <= len {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut head[..8]))
            .map_err(|e| ProbeError::Invalid(e.to_string()))?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if size == 1 {
            file.read_exact(&mut head[8..16])
                .map_err(|_| ProbeError::Invalid("a box header is cut off".into()))?;
            size = u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
        } else if size == 0 {
            size = len - at;
        }
        if size < 8 {
            return Err(ProbeError::Invalid("a box has an impossible size".into()));
        }
        if &head[4..8] == b"moov" {
            if size > MAX_MOOV_BYTES {
                return Err(ProbeError::TooLarge(format!(
                    "the video's index (moov box) is {size} bytes; at most {MAX_MOOV_BYTES} are \
                     read"
                )));
            }
            // The first child's header and its version byte.
            let header =
                if u64::from_be_bytes([0, 0, 0, 0, head[0], head[1], head[2], head[3]]) == 1 {
                    16
                } else {
                    8
                };
            let mut child = [0u8; 9];
            let read = file
                .seek(SeekFrom::Start(at + header))
                .and_then(|_| file.read_exact(&mut child));
            return Ok(read.is_ok() && &child[4..8] == b"mvhd" && child[8] == 1);
        }
        at = at.saturating_add(size);
    }
    Ok(false)
}
