//! What a received file is: its dimensions (images, from their headers with the `image` crate;
//! nothing is decoded) and its duration and dimensions (videos, from the container with
//! `nom-exif`: MP4/MOV `moov`, WebM/Matroska segment headers). No ffmpeg, no full decode.
//!
//! A video's width and height are as it is shown: an MP4/MOV video track whose matrix turns it
//! a quarter (a phone's portrait recording is stored 1920x1080 and turned 90°) is reported
//! 1080x1920, which is what the platforms' aspect-ratio and resolution rules are about.
//! WebM/Matroska files carry no standard rotation and are reported as stored.

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
            let moov = if matches!(mime, "video/mp4" | "video/quicktime") {
                check_moov(path)?
            } else {
                Moov::default()
            };
            let long_header = moov.long_header;
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
                if moov.quarter_turn {
                    std::mem::swap(&mut facts.width, &mut facts.height);
                }
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

/// What `check_moov` learnt of an MP4/MOV's `moov`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Moov {
    /// The movie header (`moov`'s first box, `mvhd`) is version 1 (64-bit times), which
    /// `nom-exif` reads as version 0: its duration and dimensions would be wrong, so they are
    /// left unknown (the rules that need them are then skipped, never misapplied).
    long_header: bool,
    /// The video track's transformation matrix (`tkhd`) turns it a quarter (90° or 270°), as
    /// phones record portrait video: the stored width and height (what `tkhd` and `nom-exif`
    /// give) are the other way round from what is shown, so they are swapped.
    quarter_turn: bool,
}

/// Walks the top-level boxes of an ISO-BMFF file (8- or 16-byte headers only) and refuses a
/// `moov` box larger than `MAX_MOOV_BYTES`, which the container reader would hold in memory.
/// Reads the movie header's version and the video track's orientation (`Moov`).
fn check_moov(path: &Path) -> Result<Moov, ProbeError> {
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
            let long_header = read.is_ok() && &child[4..8] == b"mvhd" && child[8] == 1;
            let end = at.saturating_add(size).min(len);
            // An index that cannot be walked says nothing of the orientation: the container
            // reader decides whether the file is usable.
            let quarter_turn = video_quarter_turn(&mut file, at + header, end).unwrap_or(false);
            return Ok(Moov {
                long_header,
                quarter_turn,
            });
        }
        at = at.saturating_add(size);
    }
    Ok(Moov::default())
}

/// The most boxes `boxes` reads at one level. A real `moov`, `trak` or `mdia` has a handful of
/// children (a few dozen with many tracks); without a bound, a 64 MiB `moov` of empty 8-byte
/// boxes would cost eight million reads and a list of as many entries.
const MAX_CHILD_BOXES: usize = 1024;

/// The boxes between `start` and `end` of `file`: each one's type, where its body starts (after
/// an 8- or 16-byte header) and where it ends. Stops at the first header that does not fit, or
/// after `MAX_CHILD_BOXES`.
fn boxes(
    file: &mut std::fs::File,
    start: u64,
    end: u64,
) -> std::io::Result<Vec<([u8; 4], u64, u64)>> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 8 <= end && out.len() < MAX_CHILD_BOXES {
        let mut head = [0u8; 8];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut head)?;
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let (size, header) = match u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) {
            0 => (end - at, 8),
            1 => {
                let mut large = [0u8; 8];
                file.read_exact(&mut large)?;
                (u64::from_be_bytes(large), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header || at.saturating_add(size) > end {
            break;
        }
        out.push((kind, at + header, at + size));
        at += size;
    }
    Ok(out)
}

/// Whether the `moov` (children between `start` and `end`) has a video track (the first `trak`
/// whose `mdia/hdlr` handler type is `vide`, the one `nom-exif` reads) turned a quarter by its
/// `tkhd` matrix: `a` and `d` zero, `b` and `c` not (90° or 270°, mirrored or not). ISO/IEC
/// 14496-12 `tkhd`: version and flags (4 bytes), times, track id, reserved and duration (20
/// bytes, 32 in version 1), reserved, layer, alternate group, volume and reserved (16), then the
/// matrix `{a, b, u, c, d, v, x, y, w}` of 32-bit values.
fn video_quarter_turn(file: &mut std::fs::File, start: u64, end: u64) -> std::io::Result<bool> {
    for (kind, body, trak_end) in boxes(file, start, end)? {
        if &kind != b"trak" {
            continue;
        }
        let children = boxes(file, body, trak_end)?;
        let Some(&(_, mdia, mdia_end)) = children.iter().find(|(k, _, _)| k == b"mdia") else {
            continue;
        };
        let Some((_, hdlr, hdlr_end)) = boxes(file, mdia, mdia_end)?
            .into_iter()
            .find(|(k, _, _)| k == b"hdlr")
        else {
            continue;
        };
        let mut handler = [0u8; 12];
        if hdlr + 12 > hdlr_end {
            continue;
        }
        file.seek(SeekFrom::Start(hdlr))?;
        file.read_exact(&mut handler)?;
        if &handler[8..12] != b"vide" {
            continue;
        }
        let Some(&(_, tkhd, tkhd_end)) = children.iter().find(|(k, _, _)| k == b"tkhd") else {
            return Ok(false);
        };
        let mut version = [0u8; 1];
        file.seek(SeekFrom::Start(tkhd))?;
        file.read_exact(&mut version)?;
        let matrix_at = tkhd + 4 + if version[0] == 1 { 32 } else { 20 } + 16;
        if matrix_at + 20 > tkhd_end {
            return Ok(false);
        }
        let mut m = [0u8; 20];
        file.seek(SeekFrom::Start(matrix_at))?;
        file.read_exact(&mut m)?;
        let value = |i: usize| i32::from_be_bytes(m[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let (a, b, c, d) = (value(0), value(1), value(3), value(4));
        return Ok(a == 0 && d == 0 && b != 0 && c != 0);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_level_of_many_empty_boxes_is_read_only_up_to_the_bound() {
        let mut file = tempfile::tempfile().unwrap();
        let empty_box = [0, 0, 0, 8, b'f', b'r', b'e', b'e'];
        for _ in 0..5 * MAX_CHILD_BOXES {
            file.write_all(&empty_box).unwrap();
        }
        let end = (5 * MAX_CHILD_BOXES * 8) as u64;
        let read = boxes(&mut file, 0, end).unwrap();
        assert_eq!(read.len(), MAX_CHILD_BOXES);
        assert_eq!(read[1], (*b"free", 16, 16));
    }
}
