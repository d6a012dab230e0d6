//! Snapchat: Stories, Saved Stories and Spotlights posted to a Public Profile through Snap's
//! Public Profile API (part of the Marketing API), the profile connected with Snap's OAuth.
//!
//! # Sources, and what they do not say
//!
//! Snap's own pages (quoted where each is used; the research is in
//! `docs/research/snapchat.md`):
//! - [GETSTARTED] <https://developers.snap.com/api/marketing-api/Public-Profile-API/GetStarted>:
//!   "The Public Profile API is currently allowlist only."
//! - [AUTH] <https://developers.snap.com/api/marketing-api/Ads-API/authentication>: the
//!   authorization URL and its parameters.
//! - [PROFILES] <https://developers.snap.com/api/marketing-api/Public-Profile-API/Profiles>: the
//!   Public Profile entity.
//! - [ASSET] <https://developers.snap.com/api/marketing-api/Public-Profile-API/ProfileAssetManagement>:
//!   the encryption, the split into parts and the Create Media call.
//! - [RATE] <https://developers.snap.com/api/marketing-api/Ads-API/rate-limits>.
//!
//! The rest of [ASSET] (the multipart upload, and the Story, Saved Story and Spotlight posting
//! sections with their constraints) could not be read here, and Snap allowlists the API, so
//! nothing could be tried against it. What this connector does beyond the official lines
//! follows what open-source publishers that call the API agree on (six or more independent
//! codebases for each call below unless noted), and is **unverified against Snap**:
//! - the token endpoint `POST https://accounts.snapchat.com/login/oauth2/access_token` (form,
//!   client credentials in the body) and the scope `snapchat-profile-api`;
//! - `GET /v1/public_profiles/my_profile` (the profile the authorizing user hosts);
//! - Create Media's answer `{media_id, add_path, finalize_path}` (the paths relative, e.g.
//!   `/us/v1/public_profiles/{id}/media/{media_id}/multipart-upload`);
//! - `ADD` (multipart `action`, `part_number` from 1, `file`), at most 35 parts, and `FINALIZE`;
//! - `POST .../stories` `{media_id}` (the answer names no story), `POST .../spotlights`
//!   `{media_id, description, locale, skip_save_to_profile}` (answer `spotlight_id`), `POST
//!   .../saved_stories` `{saved_stories: [{title, snap_sources: [{media_id}]}]}` (three to four
//!   codebases; answer `saved_stories[0].saved_story.id`);
//! - the error codes `MEDIA_PROCESSING` (one codebase), `MEDIA_EXPIRED` and
//!   `MEDIA_POSTING_ALREADY_IN_PROGRESS`, sometimes with HTTP 200.
//!
//! Where they disagree this connector takes the majority and reads both forms where it can
//! (`my_profile` as one object or a list).
//!
//! # What the operator's app needs
//!
//! A Snap Business account and an OAuth app made in Business Manager ("OAuth apps are set up in
//! the 'Business Details' section in Snap Business Manager", [AUTH]), with this server's
//! callback (`{public URL}/v1/oauth/snapchat/callback`) as its redirect URI, and the app's client
//! id allowlisted by Snap for the Public Profile API ([GETSTARTED]: "Send just the client ID to
//! your Snap contact"). Until then every call is refused. Only Public Profiles can be posted to.
//!
//! # Publishing
//!
//! One image (JPEG, PNG) or one video (MP4) per post; `post.options.snapchat.postType` is
//! `story` (the default: image or video), `spotlight` (a video, with `description`, else the
//! post's text, up to 160 characters, and the locale [`SPOTLIGHT_LOCALE`]) or `savedStory`
//! (`title` up to 45). Stories and Saved Stories carry no text. Steps:
//! 1. A media container ([ASSET]: `type` `VIDEO`/`IMAGE`, `name`, and the base64 of a random
//!    32-byte AES key and 16-byte IV), saved with the key and IV before any part is sent.
//! 2. The file streamed from the media store, encrypted once with AES-256-CBC and PKCS#7 as
//!    [ASSET]'s `openssl enc -aes-256-cbc -nosalt` sample does, its ciphertext sent in parts of
//!    8 to 31 MiB ([`upload::part_size`]), progress saved after each part; then `FINALIZE`.
//! 3. The post. `MEDIA_PROCESSING` (refused: nothing posted) sends it again after a pause, as
//!    [`crate::graph::Polling`] waits; still processing at the end of the attempt's wait, the
//!    target is retried later from step 3. `MEDIA_EXPIRED` starts over at step 1.
//!
//! # Exactly once
//!
//! Snap has no idempotency key, a Story's answer names nothing, and nothing is documented that
//! finds a post after a lost answer. So: `post_sent` is saved before the post request (no
//! request if that save fails); its answer names the post (`post_id`, saved). A lost answer, a
//! 5xx or `MEDIA_POSTING_ALREADY_IN_PROGRESS` is `Ambiguous`; `find_existing` then answers
//! `Found` when the id was saved, `CannotTell` when the request went out without an answer
//! (the engine ends the target `unknown`, never posts twice), `NotFound` when no post request
//! went out. A refusal clears `post_sent`. Parts and the container itself are repeatable: a
//! restart goes on from the last saved part into the same container while it is younger than
//! 23 hours ("A media object stays active for 24 hours after creation", [ASSET]), encrypting
//! the file again with the saved key and IV to carry the cipher's chain.
//!
//! `FINALIZE` is sent again only when its answer was lost (`finalize_sent`, saved before it).
//! Snap refusing it outright (a 4xx: the file does not decrypt, or is not one Snap takes) fails
//! the target for good (`upload_failed`, with Snap's message): the file is never uploaded again
//! for a refusal that would repeat. A refusal that follows a lost answer may only mean the first
//! `FINALIZE` worked, so the container is posted from; if that post is refused, the file is
//! uploaded again once (see `upload.rs`, `Snapchat::finalize`).
//!
//! # Failures
//!
//! [`api::classify`]: 401 `token_invalid`, 403 permanent (not allowlisted, or not this
//! profile's), 429 after `Retry-After` or 5 s ([RATE]: "individual Access tokens ... at an
//! average of 10 requests/second"), 5xx ambiguous for the post and retryable otherwise. The
//! access token lives as long as the token answer's `expires_in` says (1,800 s in Snap's old
//! example; [`ASSUMED_TOKEN_LIFETIME`] when an answer does not say); it is refreshed
//! [`REFRESH_AHEAD`] before, and an answer without a refresh token keeps the old one.

mod api;
mod oauth;
mod upload;

pub use upload::{Encrypting, MAX_PART_BYTES, MAX_PARTS, encrypted_len, part_size};

use crate::PlatformSettings;
use crate::graph::Polling;
use crate::http::{self, Effect};
use crate::media::{MediaLimits, MediaSource};
use async_trait::async_trait;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectMethod, ConnectedAccount, Connector, Existing, FailureClass, PublishError,
    PublishRequest, PublishedPost, TokenSet,
};
use soku_core::posts::{PlatformOptions, SnapchatOptions, SnapchatPostType};
use std::sync::Arc;
use std::time::Duration;
use upload::SnapProgress;

/// The Marketing API's host for Public Profiles.
pub const DEFAULT_API_URL: &str = "https://businessapi.snapchat.com";
/// Snap's accounts host: "GET https://accounts.snapchat.com/login/oauth2/authorize" ([AUTH]),
/// and the token endpoint beside it.
pub const DEFAULT_AUTH_URL: &str = "https://accounts.snapchat.com";
/// The scope of the Public Profile API.
pub const SCOPE: &str = "snapchat-profile-api";
/// A Spotlight's `locale`, which publishers calling the API send as required.
pub const SPOTLIGHT_LOCALE: &str = "en_US";
/// Access tokens live 30 minutes in Snap's example: refreshed 10 minutes ahead.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(600);
/// How long an access token whose answer gives no `expires_in` is taken to live: Snap's example
/// answer's 1,800 s (third-party code also reports 3,600; the shorter is assumed).
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(1800);
/// How long one attempt sends a post again while Snap answers `MEDIA_PROCESSING`. A post with
/// media runs under the engine's long bound (its lease renewed), not half the lease, and each
/// wait that runs out costs one of the target's attempts: five minutes per attempt, not the
/// 45 s of the shared default, so that a long Spotlight's processing does not end the target
/// `failed` while its media is still good for a day.
pub const PROCESSING_WAIT: Duration = Duration::from_secs(300);

/// After a wait for processing runs out, the next attempt comes at least this much later.
pub const PROCESSING_RETRY_AFTER: Duration = Duration::from_secs(30);

const PLATFORM: &str = "Snapchat";
const CREDENTIALS: &str = "SOKU_SNAPCHAT_CLIENT_ID and SOKU_SNAPCHAT_CLIENT_SECRET";
/// [`soku_core::posts::media_rules`]' Snapchat figures: images JPEG or PNG up to 5 MiB, videos
/// MP4 up to 500 MiB.
const IMAGE_LIMITS: MediaLimits = MediaLimits {
    max_bytes: 5 * 1024 * 1024,
    types: &["image/jpeg", "image/png"],
};
const VIDEO_LIMITS: MediaLimits = MediaLimits {
    max_bytes: 500 * 1024 * 1024,
    types: &["video/mp4"],
};

pub struct Snapchat {
    settings: PlatformSettings,
    media: Arc<dyn MediaSource>,
    client: reqwest::Client,
    polling: Polling,
}

impl std::fmt::Debug for Snapchat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapchat")
            .field("settings", &self.settings)
            .field("polling", &self.polling)
            .finish_non_exhaustive()
    }
}

/// What one target posts.
struct Post<'a> {
    kind: SnapchatPostType,
    url: &'a str,
    limits: &'static MediaLimits,
    options: SnapchatOptions,
    text: Option<&'a str>,
}

impl<'a> Post<'a> {
    /// The post's one file and kind; what submission already refused is refused again here, for
    /// posts accepted before the rules existed.
    fn of(request: &'a PublishRequest) -> Result<Post<'a>, PublishError> {
        let content = &request.content;
        let options = match &request.options {
            PlatformOptions::Snapchat(o) => o.clone(),
            _ => SnapchatOptions::default(),
        };
        let kind = options.post_type.unwrap_or_default();
        let (url, limits) = match (content.video_url.as_deref(), content.image_urls.as_slice()) {
            (Some(v), []) => (v, &VIDEO_LIMITS),
            (None, [one]) => (one.as_str(), &IMAGE_LIMITS),
            (None, []) => {
                return Err(permanent(
                    "media_required",
                    "Snapchat posts need an image or a video.",
                ));
            }
            _ => {
                return Err(permanent(
                    "too_many_media",
                    "Snapchat posts one image or one video.",
                ));
            }
        };
        if kind == SnapchatPostType::Spotlight && content.video_url.is_none() {
            return Err(permanent(
                "unsupported_media",
                "A Snapchat Spotlight is a video.",
            ));
        }
        Ok(Post {
            kind,
            url,
            limits,
            options,
            text: content.text.as_deref().filter(|t| !t.trim().is_empty()),
        })
    }

    /// The post request's path (under the profile) and body.
    fn request(&self, media_id: &str) -> (&'static str, Value) {
        match self.kind {
            SnapchatPostType::Story => ("stories", json!({ "media_id": media_id })),
            SnapchatPostType::Spotlight => {
                let mut body = json!({
                    "media_id": media_id,
                    "locale": SPOTLIGHT_LOCALE,
                    "skip_save_to_profile": false,
                });
                let given = self
                    .options
                    .description
                    .as_deref()
                    .filter(|d| !d.is_empty());
                if let Some(d) = given.or(self.text) {
                    body["description"] = json!(d);
                }
                ("spotlights", body)
            }
            SnapchatPostType::SavedStory => {
                let mut story = json!({ "snap_sources": [{ "media_id": media_id }] });
                if let Some(t) = self.options.title.as_deref().filter(|t| !t.is_empty()) {
                    story["title"] = json!(t);
                }
                ("saved_stories", json!({ "saved_stories": [story] }))
            }
        }
    }

    /// The id of the post an accepted request made.
    fn id_in(&self, answer: &Value, media_id: &str) -> Option<String> {
        let id = match self.kind {
            // The answer names no story: the media id names it.
            SnapchatPostType::Story => Some(media_id),
            SnapchatPostType::Spotlight => answer["spotlight_id"].as_str(),
            SnapchatPostType::SavedStory => {
                answer["saved_stories"][0]["saved_story"]["id"].as_str()
            }
        };
        id.filter(|i| !i.is_empty()).map(str::to_owned)
    }
}

fn permanent(code: &str, message: &str) -> PublishError {
    PublishError::new(FailureClass::Permanent, code, message)
}

impl Snapchat {
    pub fn new(settings: PlatformSettings, media: Arc<dyn MediaSource>) -> Self {
        Self {
            client: http::api_client(settings.timeout),
            settings,
            media,
            polling: Polling {
                deadline: PROCESSING_WAIT,
                ..Polling::DEFAULT
            },
        }
    }

    /// How a post refused with `MEDIA_PROCESSING` is sent again: the first pause, and the
    /// longest wait per attempt.
    pub fn with_polling(mut self, interval: Duration, deadline: Duration) -> Self {
        self.polling = Polling { interval, deadline };
        self
    }

    /// Posts from the uploaded container, sending the post again while Snap is still
    /// processing the media, within this attempt's wait.
    async fn post(
        &self,
        request: &PublishRequest,
        token: &str,
        post: &Post<'_>,
        mut progress: SnapProgress,
    ) -> Result<PublishedPost, PublishError> {
        let media_id = progress.media_id.clone().unwrap_or_default();
        let (path, body) = post.request(&media_id);
        let url = format!(
            "{}/v1/public_profiles/{}/{path}",
            self.settings.api_url,
            upload::profile_id(request)
        );
        let mut backoff = self.polling.start();
        loop {
            progress.post_sent = true;
            request.progress.save(progress.to_json()).await?;
            let answer: Result<Value, PublishError> =
                api::call(self.client.post(&url).json(&body), token, Effect::Creates).await;
            let e = match answer {
                Ok(answer) => {
                    // Accepted: the post exists. An answer that does not name it (its shape is
                    // known from third-party code only) is named by its media.
                    let id = post.id_in(&answer, &media_id).unwrap_or_else(|| {
                        tracing::warn!(
                            media_id,
                            "Snapchat accepted the post without naming it; it is known by its media id"
                        );
                        media_id.clone()
                    });
                    progress.post_id = Some(id.clone());
                    if let Err(e) = request.progress.save(progress.to_json()).await {
                        // The engine records the post from this answer all the same.
                        tracing::warn!(error = %e, "the Snapchat post's id could not be saved in the progress");
                    }
                    return Ok(PublishedPost { id, url: None });
                }
                Err(e) if e.class == FailureClass::Ambiguous => return Err(e),
                Err(e) => e,
            };
            // Refused: nothing was posted.
            progress.post_sent = false;
            let mut e = e;
            if e.code == "media_expired" {
                progress.forget_container();
            } else if progress.finalize_unconfirmed()
                && e.class == FailureClass::Permanent
                && e.code != http::TOKEN_INVALID
                && e.code != "forbidden"
            {
                // The container was taken as finalized without Snap's word: most likely it
                // never was. The file goes up again into a new container, once.
                progress.forget_container();
                if !progress.reuploaded {
                    progress.reuploaded = true;
                    tracing::warn!(
                        media_id,
                        error = %e,
                        "Snapchat refused the post from a container whose FINALIZE was never \
                         confirmed; the next attempt uploads the file again"
                    );
                    e = PublishError {
                        class: FailureClass::Retryable { retry_after: None },
                        code: "upload_failed".into(),
                        message: format!(
                            "{PLATFORM} refused the post from a media upload whose finalizing \
                             was never confirmed; the file will be uploaded again ({})",
                            e.message
                        ),
                        platform_error: e.platform_error,
                    };
                }
            }
            if let Err(unsaved) = request.progress.save(progress.to_json()).await {
                // A permanent refusal stays one; otherwise the next attempt finds `post_sent`
                // and cannot tell.
                return Err(if e.class == FailureClass::Permanent {
                    e
                } else {
                    unsaved
                });
            }
            if e.code != "media_processing" {
                return Err(e);
            }
            if !backoff.wait().await {
                tracing::info!(
                    media_id,
                    "Snapchat is still processing the media at the end of this attempt's wait; \
                     the post is sent again later"
                );
                return Err(PublishError {
                    class: FailureClass::Retryable {
                        retry_after: Some(PROCESSING_RETRY_AFTER),
                    },
                    ..e
                });
            }
        }
    }
}

/// Whether saved progress (of whatever media) shows a post request went out.
fn may_have_posted(saved: &Value) -> bool {
    saved.get("kind").and_then(Value::as_str) == Some("snapchat")
        && (saved.get("post_sent").and_then(Value::as_bool) == Some(true)
            || saved.get("post_id").is_some_and(|v| !v.is_null()))
}

fn outcome_unknown() -> PublishError {
    PublishError::new(
        FailureClass::Ambiguous,
        "outcome_unknown",
        format!(
            "An earlier attempt sent the post to {PLATFORM} without learning whether it was \
             made: not posting again."
        ),
    )
}

#[async_trait]
impl Connector for Snapchat {
    async fn publish(&self, request: &PublishRequest) -> Result<PublishedPost, PublishError> {
        let post = Post::of(request)?;
        let earlier = request.progress.saved();
        let matched = SnapProgress::for_media(earlier, post.url);
        match &matched {
            None if may_have_posted(earlier) => return Err(outcome_unknown()),
            Some(p) if p.post_id.is_some() => {
                let id = p.post_id.clone().unwrap_or_default();
                return Ok(PublishedPost { id, url: None });
            }
            Some(p) if p.post_sent => return Err(outcome_unknown()),
            _ => {}
        }
        let token = http::access_token(&request.account, PLATFORM)?;
        let now = chrono::Utc::now().timestamp_millis();
        let progress = match matched {
            Some(p) if p.ready(now) => p,
            saved => {
                self.upload(request, token, post.url, post.limits, saved)
                    .await?
            }
        };
        self.post(request, token, &post, progress).await
    }

    /// See the module documentation, "Exactly once".
    async fn find_existing(&self, request: &PublishRequest) -> Result<Existing, PublishError> {
        let saved = request.progress.saved();
        let url = Post::of(request).ok().map(|p| p.url);
        Ok(match url.and_then(|u| SnapProgress::for_media(saved, u)) {
            Some(p) => match p.post_id {
                Some(id) => Existing::Found(PublishedPost { id, url: None }),
                None if p.post_sent => Existing::CannotTell,
                None => Existing::NotFound,
            },
            None if may_have_posted(saved) => Existing::CannotTell,
            None => Existing::NotFound,
        })
    }

    fn connect_method(&self) -> ConnectMethod {
        ConnectMethod::OAuth
    }

    fn configured(&self) -> bool {
        self.settings.client_id.is_some() && self.settings.client_secret.is_some()
    }

    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        self.authorization_url(request)
    }

    async fn exchange(&self, exchange: &CodeExchange) -> Result<ConnectedAccount, ConnectError> {
        self.exchange_code(exchange).await
    }

    async fn refresh(&self, account: &AccountCredentials) -> Result<TokenSet, ConnectError> {
        self.refresh_tokens(account).await
    }

    fn refresh_ahead(&self) -> Duration {
        REFRESH_AHEAD
    }
}
