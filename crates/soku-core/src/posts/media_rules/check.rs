//! Checking a post's media against one set of rules, and the sentences that say what is
//! wrong.

use super::{
    ASPECT_TOLERANCE_PERCENT, GB, KB, MB, MIN, MediaItem, MediaRules, MediaViolation, SEC, Types,
};
use crate::media::MediaKind;
use crate::platform::Platform;

/// Checks a post's media (in order) against `rules`; the first violation. The post's shape
/// (images with videos, how many videos) is checked first, then each item in order.
pub fn check_with(rules: &MediaRules, items: &[MediaItem<'_>]) -> Result<(), MediaViolation> {
    let platform = rules.platform;
    let name = platform.display_name();
    let fail = |field: &str, rule: &'static str, message: String| MediaViolation {
        platform,
        field: field.to_owned(),
        rule,
        message,
    };

    let is_video = |i: &&MediaItem<'_>| i.facts.kind == MediaKind::Video;
    let has_images = items.iter().any(|i| i.facts.kind == MediaKind::Image);
    let has_videos = items.iter().any(|i| is_video(&i));
    if has_images && has_videos {
        if !rules.mixed {
            let first = items[0].facts.kind;
            let other = items
                .iter()
                .find(|i| i.facts.kind != first)
                .expect("both kinds are present");
            return Err(fail(
                other.field,
                "mixed_media",
                format!(
                    "{name} does not take images and videos in the same post; {} is {} and the \
                     post also has {}.",
                    other.field,
                    a_kind(other.facts.kind),
                    plural(first),
                ),
            ));
        }
        if let Some(max) = platform.rules().max_images
            && items.len() > max
        {
            let field = items[max].field;
            return Err(fail(
                field,
                "count",
                format!(
                    "{name} takes at most {max} images and videos in one post; this post has {} \
                     ({field} is item {}).",
                    items.len(),
                    max + 1,
                ),
            ));
        }
    }
    if let Some(max) = rules.max_videos
        && let Some(extra) = items.iter().filter(is_video).nth(max)
    {
        let count = items.iter().filter(is_video).count();
        return Err(fail(
            extra.field,
            "count",
            format!(
                "{name} takes at most {max} video{} in one post; this post has {count} ({} is \
                 video {}).",
                if max == 1 { "" } else { "s" },
                extra.field,
                max + 1,
            ),
        ));
    }

    for item in items {
        check_item(platform, rules, item)
            .map_err(|(rule, message)| fail(item.field, rule, message))?;
    }
    Ok(())
}

/// One file against its kind's rules: the rule broken and the sentence.
fn check_item(
    platform: Platform,
    rules: &MediaRules,
    item: &MediaItem<'_>,
) -> Result<(), (&'static str, String)> {
    let name = platform.display_name();
    let field = item.field;
    let facts = item.facts;
    let kind = facts.kind;
    let r = rules.kind(kind);
    let kinds = plural(kind);

    match r.types {
        Types::Only([]) => {
            return Err((
                "type",
                format!(
                    "{name} takes no {kinds}; {field} is {} ({}).",
                    a_kind(kind),
                    facts.mime
                ),
            ));
        }
        Types::Only(list) if !list.contains(&facts.mime) => {
            return Err((
                "type",
                format!(
                    "{name} does not take {} {kinds}; {field} is {}. {name} takes {}.",
                    type_name(facts.mime),
                    facts.mime,
                    list.iter()
                        .map(|t| type_name(t))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ));
        }
        _ => {}
    }

    if let Some(max) = r.max_bytes_for(facts.mime)
        && facts.size > max
    {
        let what = if r.max_bytes_by_type.iter().any(|(t, _)| *t == facts.mime) {
            format!("{} {kinds}", type_name(facts.mime))
        } else {
            kinds.to_owned()
        };
        return Err((
            "max_size",
            format!(
                "{field} is {}; {name} takes {what} of at most {}.",
                size(facts.size),
                size(max)
            ),
        ));
    }
    if let Some(min) = r.min_bytes
        && facts.size < min
    {
        return Err((
            "min_size",
            format!(
                "{field} is {}; {name} takes {kinds} of at least {}.",
                size(facts.size),
                size(min)
            ),
        ));
    }

    if let Some(duration) = facts.duration_ms {
        if let Some(min) = r.min_duration_ms
            && duration < min
        {
            let limit = if min <= 1 {
                "longer than 0 seconds".to_owned()
            } else {
                format!("at least {} long", seconds(min))
            };
            return Err((
                "min_duration",
                format!(
                    "{field} lasts {}; {name} takes {kinds} {limit}.",
                    seconds(duration)
                ),
            ));
        }
        if let Some(max) = r.max_duration_ms
            && duration > max
        {
            return Err((
                "max_duration",
                format!(
                    "{field} lasts {}; {name} takes {kinds} of at most {}.",
                    seconds(duration),
                    seconds(max)
                ),
            ));
        }
    }

    // A single documented shape is checked before the sizes: a landscape file sent as a
    // vertical reel is told to change its shape, not its height.
    if let (Some(ratio), Some(w), Some(h)) = (r.aspect, facts.width, facts.height)
        && w > 0
        && h > 0
        && !ratio.is_within(w, h, ASPECT_TOLERANCE_PERCENT)
    {
        return Err((
            "aspect_ratio",
            format!(
                "{field} is {w}×{h}, an aspect ratio of {}:1; {name} takes {kinds} with an \
                 aspect ratio (width:height) of {ratio} ({}:1, within {ASPECT_TOLERANCE_PERCENT}%).",
                decimal(u64::from(w) * 100 / u64::from(h), 100),
                decimal(ratio.width * 100 / ratio.height, 100),
            ),
        ));
    }

    let bound = |rule: &'static str, value: u32, what: &str, limit: u32, most: bool| {
        (
            rule,
            format!(
                "{field} is {value} px {what}; {name} takes {kinds} {} {limit} px {what}.",
                if most { "at most" } else { "at least" }
            ),
        )
    };
    if let Some(w) = facts.width {
        if let Some(min) = r.min_width
            && w < min
        {
            return Err(bound("min_width", w, "wide", min, false));
        }
        if let Some(max) = r.max_width
            && w > max
        {
            return Err(bound("max_width", w, "wide", max, true));
        }
    }
    if let Some(h) = facts.height {
        if let Some(min) = r.min_height
            && h < min
        {
            return Err(bound("min_height", h, "high", min, false));
        }
        if let Some(max) = r.max_height
            && h > max
        {
            return Err(bound("max_height", h, "high", max, true));
        }
    }

    if let (Some(w), Some(h)) = (facts.width, facts.height) {
        let pixels = u64::from(w) * u64::from(h);
        if let Some(max) = r.max_pixels
            && pixels > max
        {
            return Err((
                "max_pixels",
                format!(
                    "{field} is {w}×{h}, {pixels} pixels; {name} takes {kinds} of at most {max} \
                     pixels."
                ),
            ));
        }
        if w > 0 && h > 0 {
            let too_narrow = r.min_aspect.is_some_and(|min| min.is_above(w, h));
            let too_wide = r.max_aspect.is_some_and(|max| max.is_below(w, h));
            if too_narrow || too_wide {
                let range = match (r.min_aspect, r.max_aspect) {
                    (Some(min), Some(max)) => format!("from {min} to {max}"),
                    (Some(min), None) => format!("of at least {min}"),
                    (None, Some(max)) => format!("of at most {max}"),
                    (None, None) => unreachable!("a bound was broken"),
                };
                return Err((
                    "aspect_ratio",
                    format!(
                        "{field} is {w}×{h}, an aspect ratio of {}:1; {name} takes {kinds} with \
                         an aspect ratio (width:height) {range}.",
                        decimal(u64::from(w) * 100 / u64::from(h), 100)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn plural(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "images",
        MediaKind::Video => "videos",
    }
}

/// A video post publishes its video as a video (spec 6.1): a file of another kind there would go
/// out as a photo on a network that takes both. The message when the file at `field`, the
/// post's video, is of `kind`, not a video.
pub fn not_a_video(field: &str, kind: MediaKind) -> Option<String> {
    (kind != MediaKind::Video).then(|| {
        format!(
            "{field} is {}; a post with mediaType 'video' publishes a video.",
            a_kind(kind)
        )
    })
}

fn a_kind(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "an image",
        MediaKind::Video => "a video",
    }
}

/// A type as people call it: "JPEG", "MP4", "QuickTime (MOV)".
pub(super) fn type_name(mime: &str) -> &str {
    match mime {
        "image/jpeg" => "JPEG",
        "image/png" => "PNG",
        "image/gif" => "GIF",
        "image/webp" => "WebP",
        "video/mp4" => "MP4",
        "video/quicktime" => "QuickTime (MOV)",
        "video/webm" => "WebM",
        "video/x-matroska" => "Matroska (MKV)",
        other => other,
    }
}

/// `n / unit` with up to two decimals, trailing zeros dropped: 191/100 is "1.91", 300/100 "3".
pub(super) fn decimal(n: u64, unit: u64) -> String {
    let whole = n / unit;
    let hundredths = (n % unit) * 100 / unit;
    if hundredths == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{hundredths:02}")
            .trim_end_matches('0')
            .to_owned()
    }
}

/// A byte count with its rounded size: "5242880 bytes (5 MB)".
pub(super) fn size(bytes: u64) -> String {
    let rounded = if bytes >= GB && bytes.is_multiple_of(GB) {
        format!("{} GB", bytes / GB)
    } else if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= 1_000_000 && bytes.is_multiple_of(1_000_000) {
        format!("{} MB", bytes / 1_000_000)
    } else if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= KB {
        format!("{:.0} KB", bytes as f64 / KB as f64)
    } else {
        return format!("{bytes} bytes");
    };
    format!("{bytes} bytes ({rounded})")
}

/// A duration: "140 s", "0.5 s", "15 min", "2.001 s".
pub(super) fn seconds(ms: u64) -> String {
    if ms >= MIN && ms.is_multiple_of(MIN) {
        return format!("{} min", ms / MIN);
    }
    let whole = ms / SEC;
    let rest = ms % SEC;
    if rest == 0 {
        format!("{whole} s")
    } else {
        format!("{}.{}", whole, format!("{rest:03}").trim_end_matches('0')) + " s"
    }
}
