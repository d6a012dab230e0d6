//! Login Kit for Web: the authorization URL (with PKCE as TikTok documents it), the code
//! exchange and the refresh, whose errors come as flat JSON, often with HTTP 200.

use super::{CREDENTIALS, PLATFORM, TikTok, api};
use crate::{http, oauth};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectedAccount, FailureClass, TOKEN_INVALID, TokenSet,
};

/// The scopes asked for: the profile (added by TikTok anyway: "The scope user.info.basic will be
/// added by default for all apps with Login Kit") and Direct Post.
pub const SCOPES: &str = "user.info.basic,video.publish";
/// The scope without which nothing can be posted ("Your app must be approved for the
/// `video.publish` scope", <https://developers.tiktok.com/doc/content-posting-api-get-started>).
pub const POST_SCOPE: &str = "video.publish";

/// TikTok's PKCE challenge: "You must use hex encoding of SHA256 to generate the code challenge
/// from the code verifier." (<https://developers.tiktok.com/doc/login-kit-desktop>), where RFC
/// 7636 (and the server's `AuthorizationRequest::code_challenge`) uses base64url. Both encode
/// the same SHA-256 digest: decoded and hex-encoded here, so the server's verifier still works.
pub fn hex_challenge(base64url_challenge: &str) -> Option<String> {
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(base64url_challenge.trim_end_matches('='))
        .ok()
        .filter(|d| d.len() == 32)?;
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// `POST /v2/oauth/token/`'s answer
/// (<https://developers.tiktok.com/doc/oauth-user-access-token-management>).
#[derive(Deserialize)]
pub(super) struct TokenResponse {
    #[serde(default)]
    pub access_token: String,
    #[serde(default, deserialize_with = "crate::oauth::seconds")]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub open_id: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl TokenResponse {
    /// The tokens; an answer without `expires_in` is taken to live
    /// [`super::ASSUMED_TOKEN_LIFETIME`] ([`oauth::expires_at`]).
    fn into_token_set(self) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            refresh_token: self.refresh_token.filter(|t| !t.is_empty()),
            expires_at: Some(oauth::expires_at(
                self.expires_in,
                super::ASSUMED_TOKEN_LIFETIME,
            )),
        }
    }
}

impl TikTok {
    /// The authorization page: `{auth_url}/?client_key&response_type=code&scope&redirect_uri
    /// &state&code_challenge&code_challenge_method=S256`, form-encoded ("the following query
    /// parameters below must be added to the Authorization Page URL using the
    /// application/x-www-form-urlencoded format", <https://developers.tiktok.com/doc/login-kit-web>).
    pub(super) fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        let (client_key, _) = self.settings.credentials(PLATFORM, CREDENTIALS)?;
        let challenge = hex_challenge(&request.code_challenge).ok_or_else(|| {
            ConnectError::new(
                ConnectErrorKind::Invalid,
                "The PKCE challenge is not a base64url SHA-256 digest.",
            )
        })?;
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_key", client_key)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("state", &request.state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        Ok(AuthorizationStart {
            url: format!("{}/?{query}", self.settings.auth_url.trim_end_matches('/')),
            pending: json!({}),
        })
    }

    /// `POST {api_url}/v2/oauth/token/`, form-encoded. TikTok answers errors as `{"error",
    /// "error_description", "log_id"}` (<https://developers.tiktok.com/doc/oauth-error-handling>),
    /// recorded live with HTTP 200: the body decides, whatever the status.
    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, ConnectError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(format!("{}/v2/oauth/token/", self.settings.api_url))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| http::connect_unavailable(&e, "TikTok"))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http::connect_unavailable(&e, "TikTok"))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error = value
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty());
        if let Some(error) = error {
            return Err(oauth_failure(error, &value, &bytes));
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(ConnectError::new(
                ConnectErrorKind::Unavailable,
                format!(
                    "{PLATFORM} could not serve the token request ({status}); try again later."
                ),
            )
            .with_platform_error(http::platform_text(&bytes)));
        }
        if !status.is_success() && value.is_null() {
            // Not TikTok's OAuth answer at all (a proxy's page, a wrong API URL): the server's
            // setup is at fault, not the account.
            return Err(ConnectError::new(
                ConnectErrorKind::NotConfigured,
                format!(
                    "{PLATFORM}'s token endpoint answered {status} with no OAuth error; check \
                     this server's TikTok settings (SOKU_TIKTOK_*)."
                ),
            )
            .with_platform_error(http::platform_text(&bytes)));
        }
        if !status.is_success() {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                format!("{PLATFORM} refused the token request ({status})."),
            )
            .with_platform_error(http::platform_text(&bytes)));
        }
        // Never quoted: the answer holds the tokens.
        let what = "the token request";
        let tokens: TokenResponse = match oauth::parse_answer(&bytes, PLATFORM, what) {
            Ok(tokens) => tokens,
            // The tokens kept from an answer with an odd field (TikTok rotates refresh tokens).
            Err(strict) => {
                let (common, map) = oauth::salvage(&bytes, PLATFORM).ok_or(strict)?;
                TokenResponse {
                    access_token: common.access_token,
                    expires_in: common.expires_in,
                    open_id: map
                        .get("open_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    refresh_token: common.refresh_token,
                    scope: common.scope,
                }
            }
        };
        if tokens.access_token.is_empty() {
            return Err(oauth::unexpected(PLATFORM, what, "`access_token` is empty"));
        }
        Ok(tokens)
    }

    /// The code exchange (`grant_type=authorization_code` with `client_key`, `client_secret`,
    /// `code`, `redirect_uri` and `code_verifier`), then the creator's handle and nickname from
    /// `creator_info/query` (which needs only `video.publish`, where `/v2/user/info/`'s username
    /// needs `user.info.profile`).
    pub(super) async fn exchange_code(
        &self,
        exchange: &CodeExchange,
    ) -> Result<ConnectedAccount, ConnectError> {
        let (client_key, client_secret) = self.settings.credentials(PLATFORM, CREDENTIALS)?;
        if exchange.code.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Invalid,
                "TikTok sent no authorization code.",
            ));
        }
        let tokens = self
            .token_request(&[
                ("client_key", client_key),
                ("client_secret", client_secret),
                ("code", &exchange.code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", &exchange.redirect_uri),
                ("code_verifier", &exchange.code_verifier),
            ])
            .await?;
        if tokens.open_id.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Unavailable,
                "TikTok's token answer names no open_id.",
            ));
        }
        // "Users can grant or deny the requested scopes or any subset of them"
        // (<https://developers.tiktok.com/doc/scopes-overview>).
        if let Some(scope) = tokens.scope.as_deref()
            && !scope.split([',', ' ']).any(|s| s == POST_SCOPE)
        {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "TikTok did not grant permission to post for this account (video.publish): \
                 connect again and allow posting.",
            ));
        }
        let (username, display_name) =
            match api::creator_info(&self.client, &self.settings.api_url, &tokens.access_token)
                .await
            {
                Ok(info) => (
                    info.creator_username.filter(|u| !u.is_empty()),
                    info.creator_nickname.filter(|n| !n.is_empty()),
                ),
                Err(e) if e.code == TOKEN_INVALID => {
                    return Err(ConnectError::new(ConnectErrorKind::Rejected, e.message)
                        .with_platform_error(e.platform_error.unwrap_or_default()));
                }
                Err(e)
                    if e.class != FailureClass::Permanent
                        && e.code != "daily_post_cap"
                        && e.code != "app_user_cap" =>
                {
                    return Err(ConnectError::new(ConnectErrorKind::Unavailable, e.message));
                }
                // A cap or a ban answers without the creator's names: connected all the same.
                Err(e) => {
                    tracing::warn!(error = %e, "TikTok's creator info failed while connecting");
                    (None, None)
                }
            };
        Ok(ConnectedAccount {
            account_id: tokens.open_id.clone(),
            username,
            display_name,
            meta: json!({ "open_id": tokens.open_id, "scope": tokens.scope }),
            tokens: tokens.into_token_set(),
        })
    }

    /// `grant_type=refresh_token`: "Although the fetched access_token expires within 24 hours,
    /// it can be refreshed without user consent." The answer's refresh token is kept: "You must
    /// use the newly-returned token if the value is different than the previous one."
    pub(super) async fn refresh_tokens(
        &self,
        account: &AccountCredentials,
    ) -> Result<TokenSet, ConnectError> {
        let (client_key, client_secret) = self.settings.credentials(PLATFORM, CREDENTIALS)?;
        let Some(refresh_token) = account.refresh_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ConnectError::new(
                ConnectErrorKind::NotRefreshable,
                "This TikTok account has no refresh token: reconnect it.",
            ));
        };
        let tokens = self
            .token_request(&[
                ("client_key", client_key),
                ("client_secret", client_secret),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await?;
        let other_account = !tokens.open_id.is_empty() && tokens.open_id != account.account_id;
        // The creator may have taken posting away since connecting (TikTok then answers posts
        // `scope_not_authorized`): a refresh cannot give it back, only reconnecting can.
        let posts = tokens
            .scope
            .as_deref()
            .is_none_or(|scope| scope.split([',', ' ']).any(|s| s == POST_SCOPE));
        let issued = tokens.into_token_set();
        // TikTok has spent the refresh token sent: the new tokens go with a refusal.
        if other_account {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "TikTok refreshed the tokens of another account.",
            )
            .with_issued(issued));
        }
        if !posts {
            return Err(ConnectError::new(
                ConnectErrorKind::Rejected,
                "TikTok no longer grants this app permission to post for this account \
                 (video.publish): reconnect it and allow posting.",
            )
            .with_issued(issued));
        }
        Ok(issued)
    }
}

/// An OAuth error body: `server_error` and `temporarily_unavailable` are worth trying again;
/// `invalid_client` ("Client authentication failed") and `unauthorized_client` ("The client is
/// not authorized to request an authorization code using this method") mean this server's app
/// credentials or setup are wrong, `NotConfigured` (no account is to blame); every other
/// (`invalid_grant`: a code or refresh token "invalid, expired, revoked"; `invalid_request`,
/// `access_denied`, ...) is TikTok refusing this account's grant, `Rejected`.
fn oauth_failure(error: &str, value: &Value, raw: &[u8]) -> ConnectError {
    let description = value
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = match error {
        "server_error" | "temporarily_unavailable" => ConnectErrorKind::Unavailable,
        "invalid_client" | "unauthorized_client" => ConnectErrorKind::NotConfigured,
        _ => ConnectErrorKind::Rejected,
    };
    let message = match kind {
        ConnectErrorKind::Unavailable => {
            format!("{PLATFORM} could not serve the token request ({error}); try again later.")
        }
        ConnectErrorKind::NotConfigured => format!(
            "{PLATFORM} refused this server's app credentials ({error}); check \
             SOKU_TIKTOK_CLIENT_ID (the client key) and SOKU_TIKTOK_CLIENT_SECRET."
        ),
        _ if description.is_empty() => format!("{PLATFORM} refused the token request ({error})."),
        _ => format!("{PLATFORM} refused the token request ({error}): {description}"),
    };
    ConnectError::new(kind, message).with_platform_error(http::platform_text(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn the_challenge_is_the_hex_of_the_same_digest() {
        let verifier = "the-quick-brown-fox-jumps-over-the-lazy-dog-0123456789";
        let digest = sha2::Sha256::digest(verifier.as_bytes());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex_challenge(&b64).as_deref(), Some(hex.as_str()));
        assert_ne!(hex, b64);
        assert_eq!(hex_challenge("not base64!"), None);
        assert_eq!(hex_challenge("AAAA"), None, "not a SHA-256 digest");
    }
}
