//! Instagram's error table: container subcodes in words, and failure classes refined.

use super::*;

/// ERROR subcodes worth a new container (the -1 and -2 rows of the error table: "Instagram
/// server error", download timeout, "media expired", "please try to re-create media", "unknown
/// upload error").
pub(super) const TRANSIENT_SUBCODES: &[&str] =
    &["2207001", "2207003", "2207020", "2207032", "2207053"];

/// A container subcode (Instagram "Error Codes" table) in words.
pub(super) fn subcode_words(sub: &str) -> String {
    let words = match sub.trim() {
        "2207004" => "the image is larger than 8 MB",
        "2207005" => "the image format is not supported (Instagram takes JPEG)",
        "2207009" => "the image's aspect ratio is outside 4:5 to 1.91:1",
        "2207010" => "the caption is too long",
        "2207023" => "the media type is not one Instagram expects",
        "2207026" => "the video format is not supported",
        "2207028" => "a carousel needs 2 to 10 photos or videos",
        "2207040" => "the caption has more than 20 @ tags",
        "2207050" => "the Instagram account is restricted",
        "2207051" => "Instagram restricted this activity to protect its community",
        "2207052" => "Instagram could not fetch the media from its URL",
        "2207057" => "the thumbnail offset is outside the video",
        "2207001" | "2207032" | "2207053" => "Instagram failed to create the media",
        "2207003" => "Instagram took too long to download the media",
        "2207020" => "the media expired",
        _ => "Instagram could not process the media",
    };
    if sub.trim().is_empty() {
        words.to_owned()
    } else {
        format!("{words} (error {})", sub.trim())
    }
}

pub(super) fn container_failed(shape: &Shape<'_>, sub: &str) -> PublishError {
    failed(shape.has_video(), sub)
}

pub(super) fn container_failed_item(item: Item<'_>, sub: &str) -> PublishError {
    failed(matches!(item, Item::Video(_)), sub)
}

pub(super) fn failed(video: bool, sub: &str) -> PublishError {
    let (code, what) = if video {
        ("media_processing_failed", "process the video")
    } else {
        ("media_rejected", "use the media")
    };
    permanent(
        code,
        format!("Instagram could not {what}: {}.", subcode_words(sub)),
    )
    .with_platform_error(sub.trim())
}

/// A container Instagram no longer has, read as a state: -2/2207020 ("has expired") is
/// `Expired`; code 100/33, 24/2207006 ("cannot be found") and 24/2207008 ("does not exist or
/// has been expired") are `Gone`.
pub(super) fn missing(e: &PublishError) -> Option<State> {
    let g = graph::platform_graph_error(e)?;
    match (g.code, g.error_subcode) {
        (Some(-2), Some(2_207_020)) => Some(State::Expired),
        (Some(24), Some(2_207_006 | 2_207_008)) => Some(State::Gone),
        _ if graph::is_missing_object(e) => Some(State::Gone),
        _ => None,
    }
}

/// [`graph::classify`]'s failure, refined by Instagram's error table (module docs).
pub(super) fn refine(e: PublishError, effect: Effect) -> PublishError {
    let Some(g) = graph::platform_graph_error(&e) else {
        return e;
    };
    let said: String = g
        .error_user_msg
        .clone()
        .or_else(|| g.message.clone())
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    let raw = e.platform_error.clone().unwrap_or_default();
    let creates = effect == Effect::Creates;
    let out = match (g.code, g.error_subcode) {
        (Some(190 | 102), _) => return e,
        (Some(4), Some(2_207_051)) => permanent(
            "spam_restricted",
            format!("Instagram refused the post to protect its community: {said}"),
        ),
        (Some(9), Some(2_207_042)) => quota_exceeded(format!(
            "Instagram's limit of API-published posts per 24 hours is used up for this account: {said}"
        )),
        (Some(9007), _) => PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "media_processing",
            format!("Instagram has not finished processing the media: {said}"),
        ),
        // The container is missing or expired: certainly not published by this call.
        (Some(24), Some(2_207_008)) | (Some(-2), Some(2_207_020)) => PublishError::new(
            FailureClass::Retryable { retry_after: None },
            "container_expired",
            format!("Instagram no longer has the post's media container: {said}"),
        ),
        (Some(24), Some(2_207_006)) if creates => PublishError::new(
            FailureClass::Ambiguous,
            "platform_error",
            format!("Instagram could not find the container it was asked to publish: {said}"),
        ),
        (Some(-1 | -2), _) => PublishError::new(
            if creates {
                FailureClass::Ambiguous
            } else {
                FailureClass::Retryable { retry_after: None }
            },
            "platform_error",
            format!("Instagram failed temporarily: {said}"),
        ),
        (Some(25), Some(2_207_050)) => permanent(
            "account_restricted",
            format!("Instagram has restricted this account: {said}"),
        ),
        (Some(352 | 9004 | 36000..=36004), _)
        | (Some(100), Some(2_207_000..=2_207_099))
        | (Some(1), Some(2_207_057)) => permanent(
            "media_rejected",
            format!("Instagram refused the media: {said}"),
        ),
        _ => return e,
    };
    out.with_platform_error(raw)
}
