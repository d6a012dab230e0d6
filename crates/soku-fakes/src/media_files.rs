//! Small, valid media files for the tests, built in memory on the fly (nothing is committed as
//! a binary fixture), whose dimensions and durations the server's probe
//! (`soku_media::probe::probe`) reads back exactly as they were asked for.
//!
//! - Images (`png`, `jpeg`, `gif`, `webp`) are real, decodable files: one flat grey picture
//!   encoded by the `image` crate. They hold `width * height` pixels in memory while encoding
//!   (one byte a pixel, three for GIF), and encoding is slow unoptimised: 12 megapixels take
//!   0.4 s (PNG), 1 s (JPEG), 2.5 s (WebP), 3.5 s (GIF) in a debug build. For a header declaring
//!   large dimensions without the pixels (all the probe reads), use `png_bomb`.
//! - Videos are hand-built containers: every box or element a reader needs to find the
//!   duration, the dimensions and the one video track, and a payload of zeros (or, for WebM and
//!   Matroska, a VP8 key frame header) that no decoder would play. MP4 and MOV use a time scale
//!   of 1000, so durations are exact to the millisecond; WebM and Matroska a `TimestampScale`
//!   of 1 ms and a float `Duration`, read back exactly too.
//!
//! Limits of the formats (the functions panic beyond them): GIF sides up to 65535 px, WebP up
//! to 16384 px, MP4/MOV sides up to 65535 px (16.16 fixed point) and durations up to
//! `u32::MAX` ms (version 0 `mvhd`, the only one nom-exif reads).

use bytes::Bytes;
use futures_util::Stream;
use image::{ExtendedColorType, ImageEncoder};

/// The chunk size of `mp4_stream`.
pub const STREAM_CHUNK: usize = 64 * 1024;

/// What `mp4_stream` sends after the header, a chunk at a time.
static ZEROS: [u8; STREAM_CHUNK] = [0; STREAM_CHUNK];

/// The grey the images are painted with.
const GREY: u8 = 0x80;

/// The size of the `mdat` payload of `mov`.
const MOV_MDAT_LEN: usize = 1024;

fn pixels(width: u32, height: u32, channels: usize) -> Vec<u8> {
    let len = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(channels))
        .expect("the image fits in memory");
    vec![GREY; len]
}

/// A real PNG (8-bit greyscale), `width` x `height`.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            &pixels(width, height, 1),
            width,
            height,
            ExtendedColorType::L8,
        )
        .expect("encode the PNG");
    out
}

/// A real baseline JPEG (greyscale), `width` x `height`.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 75)
        .write_image(
            &pixels(width, height, 1),
            width,
            height,
            ExtendedColorType::L8,
        )
        .expect("encode the JPEG");
    out
}

/// A real GIF89a of one frame, `width` x `height` (at most 65535 a side).
pub fn gif(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        // Speed 30: the picture has one colour, so the palette is exact and no quantising runs.
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 30);
        encoder
            .encode(
                &pixels(width, height, 3),
                width,
                height,
                ExtendedColorType::Rgb8,
            )
            .expect("encode the GIF");
        // The trailer is written when the encoder is dropped.
    }
    out
}

/// A real lossless (VP8L) WebP, `width` x `height` (at most 16384 a side).
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(
            &pixels(width, height, 1),
            width,
            height,
            ExtendedColorType::L8,
        )
        .expect("encode the WebP");
    out
}

/// A PNG header declaring `width` x `height` with almost no data: an "image bomb" (huge
/// dimensions, tiny file). Its `IHDR` is valid (1-bit greyscale) and every chunk has its CRC, so
/// a reader gets as far as the dimensions; the `IDAT` holds only a zlib header, so nothing
/// could decode it.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).expect("small").to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    assert!(
        width > 0 && height > 0 && width < 1 << 31 && height < 1 << 31,
        "PNG sides are 1 to 2^31 - 1 pixels"
    );
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 1, greyscale, deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0xDA]);
    chunk(&mut out, b"IEND", &[]);
    out
}

// ---------------------------------------------------------------------------------------------
// ISO-BMFF (MP4, QuickTime)

/// A box: 32-bit size, type, body.
fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(8 + body.len()).expect("a small box");
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// A box of the concatenation of `children`.
fn container(kind: &[u8; 4], children: &[Vec<u8>]) -> Vec<u8> {
    bx(kind, &children.concat())
}

/// A full box: version, 24-bit flags, body.
fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + body.len());
    b.push(version);
    b.extend_from_slice(&flags.to_be_bytes()[1..]);
    b.extend_from_slice(body);
    bx(kind, &b)
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn push_u16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn push_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn push_matrix(b: &mut Vec<u8>) {
    for v in MATRIX {
        push_u32(b, v);
    }
}

/// 2024-01-01T00:00:00Z in seconds since 1904-01-01, the creation time of every video.
const CREATED_1904: u32 = 3_787_257_600;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Brand {
    Mp4,
    QuickTime,
}

fn ftyp(brand: Brand) -> Vec<u8> {
    match brand {
        Brand::Mp4 => bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41"),
        Brand::QuickTime => bx(b"ftyp", b"qt  \x20\x05\x03\0qt  "),
    }
}

/// A `moov` of one video track of one sample, `sample_size` bytes at `chunk_offset` in the file,
/// lasting `duration_ms`. Its length depends on none of the values.
fn moov(
    brand: Brand,
    width: u32,
    height: u32,
    duration_ms: u64,
    sample_size: u32,
    chunk_offset: u32,
) -> Vec<u8> {
    let width = u16::try_from(width).expect("MP4/MOV sides are at most 65535 px");
    let height = u16::try_from(height).expect("MP4/MOV sides are at most 65535 px");
    let duration = u32::try_from(duration_ms).expect("MP4/MOV durations are at most u32::MAX ms");

    let mut mvhd = Vec::with_capacity(96);
    push_u32(&mut mvhd, CREATED_1904); // creation
    push_u32(&mut mvhd, CREATED_1904); // modification
    push_u32(&mut mvhd, 1000); // time scale
    push_u32(&mut mvhd, duration);
    push_u32(&mut mvhd, 0x0001_0000); // rate 1.0
    push_u16(&mut mvhd, 0x0100); // volume 1.0
    mvhd.extend_from_slice(&[0; 10]); // reserved
    push_matrix(&mut mvhd);
    mvhd.extend_from_slice(&[0; 24]); // pre-defined (QuickTime: preview, poster, selection)
    push_u32(&mut mvhd, 2); // next track id
    let mvhd = full_box(b"mvhd", 0, 0, &mvhd);

    let mut tkhd = Vec::with_capacity(80);
    push_u32(&mut tkhd, CREATED_1904);
    push_u32(&mut tkhd, CREATED_1904);
    push_u32(&mut tkhd, 1); // track id
    push_u32(&mut tkhd, 0); // reserved
    push_u32(&mut tkhd, duration); // in the movie's time scale
    tkhd.extend_from_slice(&[0; 8]); // reserved
    push_u16(&mut tkhd, 0); // layer
    push_u16(&mut tkhd, 0); // alternate group
    push_u16(&mut tkhd, 0); // volume: none for video
    push_u16(&mut tkhd, 0); // reserved
    push_matrix(&mut tkhd);
    push_u32(&mut tkhd, u32::from(width) << 16); // 16.16 fixed point
    push_u32(&mut tkhd, u32::from(height) << 16);
    // Flags: enabled, in movie, in preview.
    let tkhd = full_box(b"tkhd", 0, 0x7, &tkhd);

    let mut mdhd = Vec::with_capacity(20);
    push_u32(&mut mdhd, CREATED_1904);
    push_u32(&mut mdhd, CREATED_1904);
    push_u32(&mut mdhd, 1000);
    push_u32(&mut mdhd, duration);
    push_u16(&mut mdhd, 0x55C4); // language "und" (ISO 639-2, packed)
    push_u16(&mut mdhd, 0); // quality
    let mdhd = full_box(b"mdhd", 0, 0, &mdhd);

    // ISO: pre-defined 0, handler type, 12 reserved bytes, a C string. QuickTime: component type
    // "mhlr", subtype, manufacturer, flags, mask, a Pascal string. Both put "vide" at offset 8
    // of the full box's body, where readers look.
    let mut hdlr = Vec::new();
    match brand {
        Brand::Mp4 => {
            hdlr.extend_from_slice(b"\0\0\0\0vide");
            hdlr.extend_from_slice(&[0; 12]);
            hdlr.extend_from_slice(b"VideoHandler\0");
        }
        Brand::QuickTime => {
            hdlr.extend_from_slice(b"mhlrvide");
            hdlr.extend_from_slice(&[0; 12]);
            hdlr.push(12);
            hdlr.extend_from_slice(b"VideoHandler");
        }
    }
    let hdlr = full_box(b"hdlr", 0, 0, &hdlr);

    // Graphics mode copy, no opcolor.
    let vmhd = full_box(b"vmhd", 0, 1, &[0; 8]);
    // One data reference: "the same file" (flag 1, no URL).
    let mut dref = Vec::new();
    push_u32(&mut dref, 1);
    dref.extend_from_slice(&full_box(b"url ", 0, 1, &[]));
    let dinf = container(b"dinf", &[full_box(b"dref", 0, 0, &dref)]);

    // One `avc1` visual sample entry with an `avcC` naming baseline profile, level 3.0, 4-byte
    // NAL lengths and no parameter sets (the payload is zeros: nothing to decode).
    let mut avc1 = Vec::new();
    avc1.extend_from_slice(&[0; 6]); // reserved
    push_u16(&mut avc1, 1); // data reference index
    avc1.extend_from_slice(&[0; 16]); // pre-defined, reserved
    push_u16(&mut avc1, width);
    push_u16(&mut avc1, height);
    push_u32(&mut avc1, 0x0048_0000); // 72 dpi
    push_u32(&mut avc1, 0x0048_0000);
    push_u32(&mut avc1, 0); // reserved
    push_u16(&mut avc1, 1); // frame count
    avc1.extend_from_slice(&[0; 32]); // compressor name
    push_u16(&mut avc1, 0x0018); // depth
    push_u16(&mut avc1, 0xFFFF); // pre-defined: -1
    avc1.extend_from_slice(&bx(b"avcC", &[1, 66, 0, 30, 0xFF, 0xE0, 0]));
    let mut stsd = Vec::new();
    push_u32(&mut stsd, 1);
    stsd.extend_from_slice(&bx(b"avc1", &avc1));
    let stsd = full_box(b"stsd", 0, 0, &stsd);
    // One sample lasting the whole duration, in one chunk.
    let stts = full_box(
        b"stts",
        0,
        0,
        &[1u32, 1, duration].map(u32::to_be_bytes).concat(),
    );
    let stss = full_box(b"stss", 0, 0, &[1u32, 1].map(u32::to_be_bytes).concat());
    let stsc = full_box(
        b"stsc",
        0,
        0,
        &[1u32, 1, 1, 1].map(u32::to_be_bytes).concat(),
    );
    let stsz = full_box(
        b"stsz",
        0,
        0,
        &[0u32, 1, sample_size].map(u32::to_be_bytes).concat(),
    );
    let stco = full_box(
        b"stco",
        0,
        0,
        &[1u32, chunk_offset].map(u32::to_be_bytes).concat(),
    );
    let stbl = container(b"stbl", &[stsd, stts, stss, stsc, stsz, stco]);

    let minf = container(b"minf", &[vmhd, dinf, stbl]);
    let mdia = container(b"mdia", &[mdhd, hdlr, minf]);
    let trak = container(b"trak", &[tkhd, mdia]);
    container(b"moov", &[mvhd, trak])
}

/// The header of an `mdat` box of `payload` bytes: 8 bytes, or 16 (64-bit size) if `large`.
fn mdat_header(payload: u64, large: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    if large {
        push_u32(&mut out, 1);
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(payload + 16).to_be_bytes());
    } else {
        push_u32(
            &mut out,
            u32::try_from(payload + 8).expect("a 32-bit mdat size"),
        );
        out.extend_from_slice(b"mdat");
    }
    out
}

/// Whether an `mdat` of `payload` bytes needs a 64-bit size.
fn mdat_is_large(payload: u64) -> bool {
    payload + 8 > u64::from(u32::MAX)
}

/// The sample size written in `stsz` for a payload of `payload` bytes (32 bits: a payload over
/// 4 GiB is described as one sample of `u32::MAX` bytes, which no test reads).
fn sample_size(payload: u64) -> u32 {
    u32::try_from(payload).unwrap_or(u32::MAX)
}

/// `ftyp`, `moov`, then the header of an `mdat` of `payload` bytes.
fn faststart_header(
    brand: Brand,
    width: u32,
    height: u32,
    duration_ms: u64,
    payload: u64,
    large: bool,
) -> Vec<u8> {
    let ftyp = ftyp(brand);
    let mdat = mdat_header(payload, large);
    let moov_len = moov(brand, width, height, duration_ms, 0, 0).len();
    let offset = u32::try_from(ftyp.len() + moov_len + mdat.len()).expect("a small header");
    let moov = moov(
        brand,
        width,
        height,
        duration_ms,
        sample_size(payload),
        offset,
    );
    [ftyp, moov, mdat].concat()
}

/// An MP4 (ISO-BMFF: `ftyp` isom, `moov` with `mvhd` and one video `trak`) placed before an
/// `mdat` of `mdat_len` payload bytes (faststart), so it can be streamed: the bytes up to and
/// including the `mdat` box header. The payload's first byte follows it.
pub fn mp4_header(width: u32, height: u32, duration_ms: u64, mdat_len: u64) -> Vec<u8> {
    faststart_header(
        Brand::Mp4,
        width,
        height,
        duration_ms,
        mdat_len,
        mdat_is_large(mdat_len),
    )
}

/// A whole faststart MP4: `mp4_header` then `mdat_len` bytes of zeros.
pub fn mp4(width: u32, height: u32, duration_ms: u64, mdat_len: usize) -> Vec<u8> {
    let mut out = mp4_header(width, height, duration_ms, mdat_len as u64);
    out.resize(out.len() + mdat_len, 0);
    out
}

/// The same MP4 with the `moov` after the `mdat` (what most cameras write): `ftyp`, `mdat` of
/// `mdat_len` zeros, `moov`.
pub fn mp4_moov_last(width: u32, height: u32, duration_ms: u64, mdat_len: usize) -> Vec<u8> {
    moov_last(Brand::Mp4, width, height, duration_ms, mdat_len, false)
}

fn moov_last(
    brand: Brand,
    width: u32,
    height: u32,
    duration_ms: u64,
    mdat_len: usize,
    wide: bool,
) -> Vec<u8> {
    let payload = mdat_len as u64;
    let mut out = ftyp(brand);
    if wide {
        // QuickTime's placeholder, where a writer could grow the mdat's size to 64 bits.
        out.extend_from_slice(&bx(b"wide", &[]));
    }
    out.extend_from_slice(&mdat_header(payload, mdat_is_large(payload)));
    let offset = u32::try_from(out.len()).expect("a small header");
    out.resize(out.len() + mdat_len, 0);
    out.extend_from_slice(&moov(
        brand,
        width,
        height,
        duration_ms,
        sample_size(payload),
        offset,
    ));
    out
}

/// A QuickTime movie (`ftyp` major brand `qt  `), laid out as an iPhone writes one: `ftyp`,
/// `wide`, `mdat` (1 KiB of zeros), then `moov`.
pub fn mov(width: u32, height: u32, duration_ms: u64) -> Vec<u8> {
    moov_last(
        Brand::QuickTime,
        width,
        height,
        duration_ms,
        MOV_MDAT_LEN,
        true,
    )
}

/// The MP4 or MOV `video` (one made here) with its video track turned by `degrees` (90, 180 or
/// 270, clockwise) as a phone records it: the `tkhd` matrix says the turn, the stored width and
/// height stay as they were. A portrait phone video is `turned(mp4(1920, 1080, ..), 90)`, shown
/// 1080x1920.
pub fn turned(mut video: Vec<u8>, degrees: u32) -> Vec<u8> {
    // 16.16 fixed point: 1.0 and -1.0.
    const ONE: u32 = 0x0001_0000;
    const MINUS_ONE: u32 = 0xFFFF_0000;
    let (a, b, c, d) = match degrees {
        90 => (0, ONE, MINUS_ONE, 0),
        180 => (MINUS_ONE, 0, 0, MINUS_ONE),
        270 => (0, MINUS_ONE, ONE, 0),
        other => panic!("a turn of {other} degrees: 90, 180 or 270"),
    };
    let at = video
        .windows(4)
        .position(|w| w == b"tkhd")
        .expect("a video made by media_files");
    // After the type: version and flags (4), times, track id, reserved, duration (20), reserved,
    // layer, alternate group, volume, reserved (16), then the matrix {a, b, u, c, d, v, x, y, w}.
    let matrix = at + 4 + 4 + 20 + 16;
    for (i, v) in [(0, a), (1, b), (3, c), (4, d)] {
        video[matrix + i * 4..matrix + i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    video
}

/// A stream of a `total_len`-byte faststart MP4 (`mp4_header`, then zeros), produced chunk by
/// chunk: every chunk is `STREAM_CHUNK` (64 KiB) bytes but the last, the first holding the
/// header, and the zeros are never allocated. For tests of uploads of hundreds of MB.
///
/// Panics if `total_len` cannot hold the header (under 1 KiB).
pub fn mp4_stream(
    width: u32,
    height: u32,
    duration_ms: u64,
    total_len: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let head = mp4_stream_header(width, height, duration_ms, total_len);
    let mut left = total_len - head.len() as u64;
    let mut head = Some(head);
    futures_util::stream::iter(std::iter::from_fn(move || {
        if let Some(mut first) = head.take() {
            let fill = STREAM_CHUNK.saturating_sub(first.len()).min(left as usize);
            first.resize(first.len() + fill, 0);
            left -= fill as u64;
            return Some(Ok(Bytes::from(first)));
        }
        if left == 0 {
            return None;
        }
        let n = (left.min(STREAM_CHUNK as u64)) as usize;
        left -= n as u64;
        Some(Ok(Bytes::from_static(&ZEROS[..n])))
    }))
}

/// The header of `mp4_stream`'s file: `mp4_header` with the `mdat` payload that makes the
/// whole file `total_len` bytes.
fn mp4_stream_header(width: u32, height: u32, duration_ms: u64, total_len: u64) -> Vec<u8> {
    // The header's length depends only on whether the mdat's size takes 64 bits.
    let base = faststart_header(Brand::Mp4, width, height, duration_ms, 0, false).len() as u64 - 8;
    assert!(
        total_len >= base + 8,
        "an MP4 of {width}x{height} takes at least {} bytes",
        base + 8
    );
    let large = total_len - base > u64::from(u32::MAX);
    let payload = total_len - base - if large { 16 } else { 8 };
    faststart_header(Brand::Mp4, width, height, duration_ms, payload, large)
}

// ---------------------------------------------------------------------------------------------
// EBML (WebM, Matroska)

/// An EBML element: its ID (with its length marker, as the specifications write it), its size
/// as a variable-length integer of the fewest bytes, its body.
fn el(id: u32, body: &[u8]) -> Vec<u8> {
    let id = id.to_be_bytes();
    let skip = id.iter().take_while(|b| **b == 0).count();
    let mut out = id[skip..].to_vec();
    let len = body.len() as u64;
    // A size of n bytes holds 7n bits; all ones is reserved ("unknown size").
    let n = (1..=8u32)
        .find(|n| len < (1u64 << (7 * n)) - 1)
        .expect("an EBML size");
    let size = len | (1u64 << (7 * n));
    out.extend_from_slice(&size.to_be_bytes()[8 - n as usize..]);
    out.extend_from_slice(body);
    out
}

fn el_uint(id: u32, v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    el(id, &bytes[skip..])
}

fn el_float(id: u32, v: f64) -> Vec<u8> {
    el(id, &v.to_be_bytes())
}

fn el_parent(id: u32, children: &[Vec<u8>]) -> Vec<u8> {
    el(id, &children.concat())
}

/// An EBML file of `doc_type`: header, then a Segment of Info (`TimestampScale` 1 ms, before
/// `Duration` as readers need it), Tracks (one VP8 video track) and one Cluster of one key
/// frame.
fn ebml_video(doc_type: &str, width: u32, height: u32, duration_ms: u64) -> Vec<u8> {
    let header = el_parent(
        0x1A45_DFA3,
        &[
            el_uint(0x4286, 1),              // EBMLVersion
            el_uint(0x42F7, 1),              // EBMLReadVersion
            el_uint(0x42F2, 4),              // EBMLMaxIDLength
            el_uint(0x42F3, 8),              // EBMLMaxSizeLength
            el(0x4282, doc_type.as_bytes()), // DocType
            el_uint(0x4287, 4),              // DocTypeVersion
            el_uint(0x4285, 2),              // DocTypeReadVersion
        ],
    );
    let info = el_parent(
        0x1549_A966,
        &[
            el_uint(0x2A_D7B1, 1_000_000),        // TimestampScale: 1 ms
            el_float(0x4489, duration_ms as f64), // Duration, in TimestampScale units
            el(0x4D80, b"soku-fakes"),            // MuxingApp
            el(0x5741, b"soku-fakes"),            // WritingApp
        ],
    );
    let video = el_parent(
        0xE0,
        &[
            el_uint(0xB0, u64::from(width)),  // PixelWidth
            el_uint(0xBA, u64::from(height)), // PixelHeight
        ],
    );
    let tracks = el_parent(
        0x1654_AE6B,
        &[el_parent(
            0xAE, // TrackEntry
            &[
                el_uint(0xD7, 1),   // TrackNumber
                el_uint(0x73C5, 1), // TrackUID
                el_uint(0x83, 1),   // TrackType: video
                el_uint(0x9C, 0),   // FlagLacing
                el(0x86, b"V_VP8"), // CodecID
                video,
            ],
        )],
    );
    // A VP8 key frame's header (RFC 6386, 9.1): frame tag (key frame, version 0, shown, first
    // partition of 0 bytes), start code, 14-bit width and height. Nothing follows: not playable.
    let mut frame = vec![0x10, 0x00, 0x00, 0x9D, 0x01, 0x2A];
    frame.extend_from_slice(&((width & 0x3FFF) as u16).to_le_bytes());
    frame.extend_from_slice(&((height & 0x3FFF) as u16).to_le_bytes());
    // SimpleBlock: track 1, relative timestamp 0, key frame.
    let mut block = vec![0x81, 0x00, 0x00, 0x80];
    block.extend_from_slice(&frame);
    let cluster = el_parent(
        0x1F43_B675,
        &[
            el_uint(0xE7, 0), // Timestamp
            el(0xA3, &block), // SimpleBlock
        ],
    );
    let segment = el_parent(0x1853_8067, &[info, tracks, cluster]);
    [header, segment].concat()
}

/// A WebM (EBML DocType `webm`): Segment with Info (`TimestampScale` 1000000, float
/// `Duration`), Tracks with one VP8 video track (`PixelWidth`, `PixelHeight`), one Cluster.
pub fn webm(width: u32, height: u32, duration_ms: u64) -> Vec<u8> {
    ebml_video("webm", width, height, duration_ms)
}

/// The same as `webm` with DocType `matroska`.
pub fn mkv(width: u32, height: u32, duration_ms: u64) -> Vec<u8> {
    ebml_video("matroska", width, height, duration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use soku_core::media::{MediaFacts, MediaKind, SNIFF_LEN, sniff};
    use soku_media::probe::{ProbeError, probe};
    use std::io::Write;

    /// The type `sniff` tells from the first bytes, and what `probe` reads of the file written
    /// to disk.
    fn probed(bytes: &[u8]) -> Result<MediaFacts, ProbeError> {
        let mime = sniff(&bytes[..bytes.len().min(SNIFF_LEN)]).expect("a known type");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(bytes).unwrap();
        file.flush().unwrap();
        probe(file.path(), mime, bytes.len() as u64)
    }

    fn image_facts(mime: &'static str, bytes: &[u8], width: u32, height: u32) -> MediaFacts {
        MediaFacts {
            kind: MediaKind::Image,
            mime,
            size: bytes.len() as u64,
            width: Some(width),
            height: Some(height),
            duration_ms: None,
        }
    }

    fn video_facts(
        mime: &'static str,
        size: u64,
        width: u32,
        height: u32,
        duration_ms: u64,
    ) -> MediaFacts {
        MediaFacts {
            kind: MediaKind::Video,
            mime,
            size,
            width: Some(width),
            height: Some(height),
            duration_ms: Some(duration_ms),
        }
    }

    #[test]
    fn media_files_images_probe_to_their_dimensions() {
        for (w, h) in [(1, 1), (640, 480), (1080, 1920), (333, 17)] {
            let b = png(w, h);
            assert_eq!(
                probed(&b),
                Ok(image_facts("image/png", &b, w, h)),
                "png {w}x{h}"
            );
            let b = jpeg(w, h);
            assert_eq!(
                probed(&b),
                Ok(image_facts("image/jpeg", &b, w, h)),
                "jpeg {w}x{h}"
            );
            let b = gif(w, h);
            assert_eq!(
                probed(&b),
                Ok(image_facts("image/gif", &b, w, h)),
                "gif {w}x{h}"
            );
            let b = webp(w, h);
            assert_eq!(
                probed(&b),
                Ok(image_facts("image/webp", &b, w, h)),
                "webp {w}x{h}"
            );
        }
    }

    #[test]
    fn media_files_images_decode_whole() {
        // Not only headers: every pixel is there.
        for (bytes, format) in [
            (png(31, 7), image::ImageFormat::Png),
            (jpeg(31, 7), image::ImageFormat::Jpeg),
            (gif(31, 7), image::ImageFormat::Gif),
            (webp(31, 7), image::ImageFormat::WebP),
        ] {
            let img = image::load_from_memory_with_format(&bytes, format)
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((img.width(), img.height()), (31, 7), "{format:?}");
        }
    }

    #[test]
    fn media_files_png_bomb_is_refused_before_decoding() {
        let bomb = png_bomb(100_000, 100_000);
        assert!(bomb.len() < 100, "{} bytes", bomb.len());
        assert_eq!(sniff(&bomb), Some("image/png"));
        assert!(matches!(probed(&bomb), Err(ProbeError::TooLarge(_))));
        // Within the limits, the header alone reads as its dimensions.
        let b = png_bomb(16_384, 6_103);
        assert_eq!(probed(&b), Ok(image_facts("image/png", &b, 16_384, 6_103)));
    }

    #[test]
    fn media_files_mp4_both_layouts_probe_exactly() {
        for (w, h, ms, mdat) in [
            (1920, 1080, 12_345, 4096),
            (720, 1280, 1, 0),
            (65_535, 2, 4_000_000_000, 10),
        ] {
            let first = mp4(w, h, ms, mdat);
            assert_eq!(&first[4..12], b"ftypisom");
            assert_eq!(
                probed(&first),
                Ok(video_facts("video/mp4", first.len() as u64, w, h, ms)),
                "moov first {w}x{h} {ms} ms"
            );
            let header = mp4_header(w, h, ms, mdat as u64);
            assert_eq!(first.len(), header.len() + mdat);
            assert_eq!(&first[..header.len()], header.as_slice());
            assert_eq!(&header[header.len() - 4..], b"mdat");

            let last = mp4_moov_last(w, h, ms, mdat);
            assert_eq!(last.len(), first.len());
            let moov_at = ftyp(Brand::Mp4).len() + 8 + mdat;
            assert_eq!(&last[moov_at + 4..moov_at + 8], b"moov");
            assert_eq!(
                probed(&last),
                Ok(video_facts("video/mp4", last.len() as u64, w, h, ms)),
                "moov last {w}x{h} {ms} ms"
            );
        }
        // A large mdat with the moov last (a real phone video's layout), past nom-exif's first
        // buffer: the reader skips it.
        let big = mp4_moov_last(1280, 720, 61_500, 3 << 20);
        assert_eq!(
            probed(&big),
            Ok(video_facts(
                "video/mp4",
                big.len() as u64,
                1280,
                720,
                61_500
            ))
        );
    }

    /// The `stco` chunk offset and `stsz` sample size of a one-sample file.
    fn sample_table(file: &[u8]) -> (u64, u64) {
        let at = |kind: &[u8]| file.windows(4).position(|w| w == kind).unwrap() + 4;
        let u32_at = |i: usize| u64::from(u32::from_be_bytes(file[i..i + 4].try_into().unwrap()));
        // Full box header, then stco: entry count, offset; stsz: size 0, count, size.
        (u32_at(at(b"stco") + 8), u32_at(at(b"stsz") + 12))
    }

    #[test]
    fn media_files_mp4_sample_tables_point_at_the_mdat_payload() {
        let first = mp4(640, 480, 1000, 777);
        let header = mp4_header(640, 480, 1000, 777);
        assert_eq!(sample_table(&first), (header.len() as u64, 777));
        let last = mp4_moov_last(640, 480, 1000, 777);
        // ftyp (32 bytes), mdat.
        assert_eq!(&last[36..40], b"mdat");
        assert_eq!(sample_table(&last), (40, 777));
        let mov = mov(640, 480, 1000);
        // ftyp (20 bytes), wide (8), mdat.
        assert_eq!(&mov[24..28], b"wide");
        assert_eq!(&mov[32..36], b"mdat");
        assert_eq!(sample_table(&mov), (36, MOV_MDAT_LEN as u64));
    }

    #[test]
    fn media_files_mov_probes_exactly() {
        let b = mov(1080, 1920, 7_250);
        assert_eq!(&b[4..12], b"ftypqt  ");
        assert_eq!(
            probed(&b),
            Ok(video_facts(
                "video/quicktime",
                b.len() as u64,
                1080,
                1920,
                7_250
            ))
        );
    }

    /// A video turned a quarter by its track's matrix (a phone's portrait recording) probes as
    /// it is shown, width and height swapped; half a turn changes neither. Both layouts, and
    /// QuickTime.
    #[test]
    fn media_files_turned_videos_probe_as_they_are_shown() {
        for (bytes, mime) in [
            (mp4(1920, 1080, 12_000, 100), "video/mp4"),
            (mp4_moov_last(1920, 1080, 12_000, 100), "video/mp4"),
            (mov(1920, 1080, 12_000), "video/quicktime"),
        ] {
            let size = bytes.len() as u64;
            assert_eq!(
                probed(&bytes),
                Ok(video_facts(mime, size, 1920, 1080, 12_000))
            );
            for (degrees, w, h) in [(90, 1080, 1920), (270, 1080, 1920), (180, 1920, 1080)] {
                let t = turned(bytes.clone(), degrees);
                assert_eq!(
                    probed(&t),
                    Ok(video_facts(mime, size, w, h, 12_000)),
                    "{mime} turned {degrees}"
                );
            }
        }
    }

    #[test]
    fn media_files_webm_and_mkv_probe_to_what_was_asked() {
        for (w, h, ms) in [(640, 360, 12_000), (1920, 1080, 1), (3840, 2160, 3_599_999)] {
            let b = webm(w, h, ms);
            assert!(b[..SNIFF_LEN].windows(4).any(|x| x == b"webm"));
            let facts = probed(&b).unwrap();
            assert_eq!(
                facts,
                video_facts("video/webm", b.len() as u64, w, h, ms),
                "webm {w}x{h} {ms} ms"
            );
            let b = mkv(w, h, ms);
            assert_eq!(sniff(&b), Some("video/x-matroska"));
            assert_eq!(
                probed(&b).unwrap(),
                video_facts("video/x-matroska", b.len() as u64, w, h, ms),
                "mkv {w}x{h} {ms} ms"
            );
        }
    }

    #[tokio::test]
    async fn media_files_mp4_stream_is_the_file_chunk_by_chunk() {
        let total: u64 = 5_000_000;
        let (w, h, ms) = (1280, 720, 30_000);
        let mut stream = std::pin::pin!(mp4_stream(w, h, ms, total));
        let mut file = Vec::with_capacity(total as usize);
        let mut chunks = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= STREAM_CHUNK && !chunk.is_empty());
            if file.len() as u64 + (chunk.len() as u64) < total {
                assert_eq!(chunk.len(), STREAM_CHUNK, "only the last chunk is short");
            }
            file.extend_from_slice(&chunk);
            chunks += 1;
        }
        assert_eq!(file.len() as u64, total);
        assert_eq!(chunks, total.div_ceil(STREAM_CHUNK as u64));
        let header = mp4_header(w, h, ms, total - mp4_header(w, h, ms, 0).len() as u64);
        assert!(file.starts_with(&header));
        assert!(file[header.len()..].iter().all(|b| *b == 0));
        assert_eq!(probed(&file), Ok(video_facts("video/mp4", total, w, h, ms)));

        // The smallest stream is the header alone.
        let least = mp4_header(w, h, ms, 0).len() as u64;
        let mut one = std::pin::pin!(mp4_stream(w, h, ms, least));
        assert_eq!(one.next().await.unwrap().unwrap().len() as u64, least);
        assert!(one.next().await.is_none());
    }

    #[test]
    fn media_files_mp4_stream_header_takes_64_bit_sizes_past_4_gib() {
        let total = 5u64 << 30;
        let head = mp4_stream_header(640, 480, 1000, total);
        let small = mp4_header(640, 480, 1000, 0);
        assert_eq!(head.len(), small.len() + 8);
        assert_eq!(&head[head.len() - 16..head.len() - 8], b"\0\0\0\x01mdat");
        let mdat_size = u64::from_be_bytes(head[head.len() - 8..].try_into().unwrap());
        assert_eq!(head.len() as u64 - 16 + mdat_size, total);
        assert_eq!(head, mp4_header(640, 480, 1000, mdat_size - 16));
    }
}
