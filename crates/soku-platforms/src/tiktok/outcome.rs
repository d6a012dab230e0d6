//! What a publish's status means: the post TikTok made (its public id and URL), or why there
//! is none (`fail_reason` as a failure class), and whether the next attempt starts over.

use super::{PLATFORM, api};
use api::PublishStatus;
use soku_core::connector::{
    AccountCredentials, FailureClass, PublishError, PublishedPost, TOKEN_INVALID,
};

/// A `FAILED` after which the next attempt starts over (`FAILED`: "the entire process has
/// failed", nothing was posted): the reasons TikTok says may be retried, `internal` ("This is a
/// retryable error."), `video_pull_failed` / `photo_pull_failed` ("If developers are certain
/// that the URL is valid, a retry is recommended."); the daily cap
/// (`spam_risk_too_many_posts`, retried after [`api::DAILY_CAP_WAIT`]); and `auth_removed`,
/// retried only once the engine got the account a working token.
pub(super) fn retry_from_scratch(status: &PublishStatus) -> bool {
    matches!(
        status.fail_reason.as_deref(),
        Some(
            "internal"
                | "video_pull_failed"
                | "photo_pull_failed"
                | "spam_risk_too_many_posts"
                | "auth_removed"
        )
    )
}

/// A publish that ended without a post, as a failure: `fail_reason` mapped to a message
/// (<https://developers.tiktok.com/doc/content-posting-api-reference-get-video-status>, "Fail
/// reasons"); TikTok's answer kept as the platform error.
pub(super) fn not_published(status: &PublishStatus) -> PublishError {
    if status.status == "SEND_TO_USER_INBOX" {
        return PublishError::new(
            FailureClass::Permanent,
            "sent_to_inbox",
            format!(
                "{PLATFORM} sent the post to the creator's inbox as a draft instead of posting \
                 it; finish it in the TikTok app."
            ),
        )
        .with_platform_error(status.raw.clone());
    }
    let reason = status.fail_reason.as_deref().unwrap_or("");
    let retry = FailureClass::Retryable { retry_after: None };
    let (class, code, message) = match reason {
        "internal" => (
            retry,
            "platform_error",
            format!(
                "{PLATFORM} failed while processing the post (internal); it will be sent again."
            ),
        ),
        "video_pull_failed" | "photo_pull_failed" => (
            retry,
            "media_unavailable",
            format!(
                "{PLATFORM} could not download the post's media from this server ({reason}); it \
                 will be tried again."
            ),
        ),
        "file_format_check_failed" => (
            FailureClass::Permanent,
            "unsupported_media",
            format!(
                "{PLATFORM} does not take the file's format ({reason}): videos MP4, WebM or MOV \
                 (H.264, H.265, VP8, VP9), photos JPEG or WebP."
            ),
        ),
        "duration_check_failed" => (
            FailureClass::Permanent,
            "video_too_long",
            format!("The video's duration is outside what {PLATFORM} takes ({reason})."),
        ),
        "frame_rate_check_failed" => (
            FailureClass::Permanent,
            "unsupported_media",
            format!("{PLATFORM} takes videos of 23 to 60 frames per second ({reason})."),
        ),
        "picture_size_check_failed" => (
            FailureClass::Permanent,
            "unsupported_media",
            format!(
                "{PLATFORM} does not take the media's picture size ({reason}): videos 360 to \
                 4096 pixels a side, photos up to 1080p."
            ),
        ),
        "publish_cancelled" => (
            FailureClass::Permanent,
            "cancelled",
            format!("The post was cancelled on {PLATFORM} ({reason})."),
        ),
        // `token_invalid`: the engine refreshes the token, or marks the account
        // `needs_reconnect`.
        "auth_removed" => (
            FailureClass::Permanent,
            TOKEN_INVALID,
            format!(
                "The creator removed this app's access on {PLATFORM} while the post was \
                 processed ({reason}); reconnect the account."
            ),
        ),
        // As `api::classify` reads the same code: the daily cap, retried after an hour.
        "spam_risk_too_many_posts" => (
            FailureClass::Retryable {
                retry_after: Some(api::DAILY_CAP_WAIT),
            },
            "daily_post_cap",
            format!(
                "{PLATFORM} refused the post: too many posts through its API in the last 24 \
                 hours for this account ({reason}); it will be tried again later."
            ),
        ),
        "spam_risk_user_banned_from_posting" => (
            FailureClass::Permanent,
            "blocked",
            format!("{PLATFORM} has banned this account from making new posts ({reason})."),
        ),
        "spam_risk_text" | "spam_risk" => (
            FailureClass::Permanent,
            "content_refused",
            format!("{PLATFORM} refused the post as risky or spam ({reason})."),
        ),
        _ => (
            FailureClass::Permanent,
            "media_processing_failed",
            format!(
                "{PLATFORM} could not publish the post: {}",
                if reason.is_empty() {
                    "no reason given"
                } else {
                    reason
                }
            ),
        ),
    };
    PublishError::new(class, code, message).with_platform_error(status.raw.clone())
}

/// The post TikTok made: its public id and URL when TikTok gave the id, else the `publish_id`.
pub(super) fn published(
    account: &AccountCredentials,
    publish_id: &str,
    status: &PublishStatus,
    photo: bool,
) -> PublishedPost {
    match status.post_id() {
        Some(id) => {
            let url = account
                .username
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(|u| {
                    let kind = if photo { "photo" } else { "video" };
                    format!("https://www.tiktok.com/@{u}/{kind}/{id}")
                });
            PublishedPost { id, url }
        }
        None => PublishedPost {
            id: publish_id.to_owned(),
            url: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn status(s: &str, reason: Option<&str>, ids: Value) -> PublishStatus {
        let mut v = json!({"status": s, "publicaly_available_post_id": ids});
        if let Some(r) = reason {
            v["fail_reason"] = json!(r);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fail_reasons_map_to_classes() {
        let e = not_published(&status("FAILED", Some("internal"), json!([])));
        assert!(matches!(e.class, FailureClass::Retryable { .. }));
        assert!(retry_from_scratch(&status(
            "FAILED",
            Some("photo_pull_failed"),
            json!([])
        )));
        for (reason, code) in [
            ("file_format_check_failed", "unsupported_media"),
            ("duration_check_failed", "video_too_long"),
            ("spam_risk_text", "content_refused"),
            ("auth_removed", TOKEN_INVALID),
            ("something_new", "media_processing_failed"),
        ] {
            let e = not_published(&status("FAILED", Some(reason), json!([])));
            assert_eq!((e.class, e.code.as_str()), (FailureClass::Permanent, code));
            assert_eq!(
                retry_from_scratch(&status("FAILED", Some(reason), json!([]))),
                reason == "auth_removed"
            );
        }
        // The daily cap means what `api::classify` says it means: retried after an hour, from
        // scratch.
        let cap = status("FAILED", Some("spam_risk_too_many_posts"), json!([]));
        let e = not_published(&cap);
        assert_eq!(
            (e.class, e.code.as_str()),
            (
                FailureClass::Retryable {
                    retry_after: Some(api::DAILY_CAP_WAIT)
                },
                "daily_post_cap"
            )
        );
        assert!(retry_from_scratch(&cap));
        let e = not_published(&status("SEND_TO_USER_INBOX", None, json!([])));
        assert_eq!(e.code, "sent_to_inbox");
    }

    #[test]
    fn the_post_id_and_url_come_from_the_status() {
        let account = AccountCredentials {
            account_id: "o".into(),
            username: Some("creator".into()),
            access_token: None,
            refresh_token: None,
            meta: Value::Null,
        };
        let p = published(
            &account,
            "v_pub_file~v2.1",
            &status("PUBLISH_COMPLETE", None, json!([7312345678901234567u64])),
            false,
        );
        assert_eq!(p.id, "7312345678901234567");
        assert_eq!(
            p.url.as_deref(),
            Some("https://www.tiktok.com/@creator/video/7312345678901234567")
        );
        let p = published(
            &account,
            "p_pub_url~v2.1",
            &status("PUBLISH_COMPLETE", None, json!([])),
            true,
        );
        assert_eq!((p.id.as_str(), p.url), ("p_pub_url~v2.1", None));
    }
}
