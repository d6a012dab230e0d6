//! Google's token endpoint and the answers read while connecting.

use super::YouTube;
use crate::http;
use crate::oauth;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use soku_core::connector::{ConnectError, ConnectErrorKind};

impl YouTube {
    /// Google's token endpoint (`{token_url}`), with the app's credentials.
    pub(super) fn token_endpoint(&self) -> Result<oauth::TokenEndpoint<'_>, ConnectError> {
        Ok(oauth::TokenEndpoint {
            client: &self.client,
            url: &self.token_url,
            platform: "Google",
            credentials: self
                .settings
                .credentials(super::PLATFORM, super::CREDENTIALS)?,
            failure: connect_failure,
        })
    }
}

/// A refused token or channel request: `invalid_grant` and other refusals are `Rejected`,
/// `invalid_client` (this server's credentials) `NotConfigured`, 429 and 5xx `Unavailable`.
pub(super) fn connect_failure(status: StatusCode, body: &[u8], what: &str) -> ConnectError {
    let raw = http::platform_text(body);
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = v["error"].as_str().unwrap_or("");
    let detail = v["error_description"]
        .as_str()
        .or(v["error"]["message"].as_str())
        .unwrap_or(error);
    let kind = match status.as_u16() {
        429 | 500..=599 => ConnectErrorKind::Unavailable,
        _ if error == "invalid_client" => ConnectErrorKind::NotConfigured,
        _ if v["error"]["errors"][0]["reason"] == "quotaExceeded" => ConnectErrorKind::Unavailable,
        _ => ConnectErrorKind::Rejected,
    };
    let message = match kind {
        ConnectErrorKind::Unavailable => {
            format!("Google could not serve {what} ({status}); try again later.")
        }
        ConnectErrorKind::NotConfigured => format!(
            "Google refused this server's client credentials for {what}: check \
             SOKU_YOUTUBE_CLIENT_ID and SOKU_YOUTUBE_CLIENT_SECRET."
        ),
        _ if detail.is_empty() => format!("Google refused {what} ({status})."),
        _ => format!("Google refused {what} ({status}): {detail}"),
    };
    ConnectError::new(kind, message).with_platform_error(raw)
}

#[derive(Deserialize)]
pub(super) struct ChannelList {
    #[serde(default)]
    pub(super) items: Vec<Channel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Channel {
    #[serde(default)]
    pub(super) id: String,
    #[serde(default)]
    pub(super) snippet: Option<ChannelSnippet>,
    #[serde(default)]
    pub(super) content_details: Option<ChannelContentDetails>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelSnippet {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) custom_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelContentDetails {
    #[serde(default)]
    pub(super) related_playlists: Option<RelatedPlaylists>,
}

#[derive(Deserialize)]
pub(super) struct RelatedPlaylists {
    #[serde(default)]
    pub(super) uploads: Option<String>,
}
