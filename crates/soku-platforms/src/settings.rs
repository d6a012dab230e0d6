//! What the connectors are told: plain structs the server fills from its configuration. No
//! connector reads the environment.

use soku_core::Secret;
use std::time::Duration;

/// The connectors to the real networks: each platform's endpoints and app credentials, and
/// what every connector shares.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub x: PlatformSettings,
    pub threads: PlatformSettings,
    pub linkedin: PlatformSettings,
    pub bluesky: PlatformSettings,
    pub mastodon: PlatformSettings,
    /// The Meta app (Facebook Login) that the Facebook Page and Instagram connectors share:
    /// `api_url` is the Graph API (`https://graph.facebook.com`, without a version), `auth_url`
    /// the login dialog's host (`https://www.facebook.com`).
    pub facebook: PlatformSettings,
    /// YouTube (Google OAuth and the Data API): `api_url` is `https://www.googleapis.com`,
    /// `auth_url` Google's authorization page.
    pub youtube: PlatformSettings,
    /// TikTok (Login Kit and the Content Posting API): `client_id` is the app's client key.
    pub tiktok: PlatformSettings,
    /// Snapchat (Snap's OAuth and the Public Profile API): `api_url` is
    /// `https://businessapi.snapchat.com`, `auth_url` Snap's accounts host
    /// (`https://accounts.snapchat.com`), where both the authorization page and the token
    /// endpoint are.
    pub snapchat: PlatformSettings,
    /// Google's token endpoint (`https://oauth2.googleapis.com/token`).
    pub youtube_token_url: String,
    /// The Graph API version to call (`vNN.N`); `None`: [`crate::meta::GRAPH_VERSION`].
    pub facebook_graph_version: Option<String>,
    /// Meta's resumable upload host (`https://rupload.facebook.com`), where Page reels and video
    /// stories are uploaded.
    pub facebook_upload_url: String,
    /// The `LinkedIn-Version` to send (`YYYYMM`); `None`: [`crate::linkedin::LINKEDIN_VERSION`].
    pub linkedin_version: Option<String>,
    /// Bluesky's video service (`app.bsky.video.*`), without a trailing slash.
    pub bluesky_video_url: String,
    /// Bytes of fetched images held in memory at once, across every post.
    pub media_memory: u64,
    /// Tests only: fetches and user-named hosts may reach loopback addresses, where tests run
    /// their platform fakes. Every other private, link-local and metadata range stays refused.
    pub allow_loopback: bool,
}

impl Default for LiveSettings {
    /// The networks' public endpoints, no app credentials.
    fn default() -> Self {
        use crate::{bluesky, linkedin, mastodon, meta, snapchat, threads, tiktok, x, youtube};
        Self {
            x: PlatformSettings::public(x::DEFAULT_API_URL, x::DEFAULT_AUTH_URL),
            threads: PlatformSettings::public(threads::DEFAULT_API_URL, threads::DEFAULT_AUTH_URL),
            linkedin: PlatformSettings::public(
                linkedin::DEFAULT_API_URL,
                linkedin::DEFAULT_AUTH_URL,
            ),
            bluesky: PlatformSettings::public(bluesky::DEFAULT_API_URL, bluesky::DEFAULT_API_URL),
            mastodon: PlatformSettings::public(
                mastodon::DEFAULT_API_URL,
                mastodon::DEFAULT_API_URL,
            ),
            facebook: PlatformSettings::public(meta::DEFAULT_API_URL, meta::DEFAULT_AUTH_URL),
            facebook_graph_version: None,
            youtube: PlatformSettings::public(youtube::DEFAULT_API_URL, youtube::DEFAULT_AUTH_URL),
            youtube_token_url: youtube::DEFAULT_TOKEN_URL.to_owned(),
            tiktok: PlatformSettings::public(tiktok::DEFAULT_API_URL, tiktok::DEFAULT_AUTH_URL),
            snapchat: PlatformSettings::public(
                snapchat::DEFAULT_API_URL,
                snapchat::DEFAULT_AUTH_URL,
            ),
            facebook_upload_url: meta::DEFAULT_UPLOAD_URL.to_owned(),
            linkedin_version: None,
            bluesky_video_url: bluesky::DEFAULT_VIDEO_URL.to_owned(),
            media_memory: crate::fetch::DEFAULT_MEMORY_BUDGET,
            allow_loopback: false,
        }
    }
}

/// Where a platform's API is and how this server identifies itself to it. Every URL is
/// configurable so that tests (and staging setups) can point a connector at a fake.
#[derive(Debug, Clone)]
pub struct PlatformSettings {
    /// The API's base URL, without a trailing slash.
    pub api_url: String,
    /// The authorization page's base URL (OAuth platforms), without a trailing slash.
    pub auth_url: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret<String>>,
    /// The longest one call to the platform may take.
    pub timeout: Duration,
}

impl PlatformSettings {
    /// The app's client id and secret, or `NotConfigured` saying which settings to set
    /// (`settings` names them, e.g. "SOKU_YOUTUBE_CLIENT_ID and SOKU_YOUTUBE_CLIENT_SECRET").
    pub fn credentials(
        &self,
        platform: &str,
        settings: &str,
    ) -> Result<(&str, &str), soku_core::connector::ConnectError> {
        match (
            self.client_id.as_deref(),
            self.client_secret.as_ref().map(|s| s.expose().as_str()),
        ) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(soku_core::connector::ConnectError::new(
                soku_core::connector::ConnectErrorKind::NotConfigured,
                format!("{platform} is not configured on this server ({settings})."),
            )),
        }
    }
}

/// The longest one call to a platform may take unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl PlatformSettings {
    /// A platform's public endpoints, without app credentials.
    pub fn public(api_url: &str, auth_url: &str) -> Self {
        Self {
            api_url: api_url.trim_end_matches('/').to_owned(),
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            client_id: None,
            client_secret: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Settings for a fake at `base` (tests).
    pub fn at(base: &str) -> Self {
        Self {
            api_url: base.trim_end_matches('/').to_owned(),
            auth_url: base.trim_end_matches('/').to_owned(),
            client_id: Some("test-client-id".into()),
            client_secret: Some("test-client-secret".into()),
            timeout: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_client_secret() {
        let mut s = LiveSettings::default();
        s.x.client_secret = Some("the-app-secret".into());
        let printed = format!("{s:?}");
        assert!(!printed.contains("the-app-secret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
