//! Snap's OAuth 2.0 (the Marketing API's authorization code flow) and the connected Public
//! Profile.

use super::{CREDENTIALS, PLATFORM, SCOPE, Snapchat, api};
use crate::http::{self, Effect};
use crate::oauth::{self, TokenResponse};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError,
    ConnectErrorKind, ConnectedAccount, FailureClass, TOKEN_INVALID, TokenSet,
};

/// The Public Profile entity's fields this server reads
/// (<https://developers.snap.com/api/marketing-api/Public-Profile-API/Profiles>: `id` "UUID of
/// the profile", `display_name` "Profile display name", `snap_user_name` "Snap-user-name this
/// profile is hosted on", `organization_id`).
#[derive(Deserialize, Debug, Default)]
pub(super) struct Profile {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub snap_user_name: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
}

/// `my_profile`'s answer: publishers calling it read either a `public_profile` object or the
/// Marketing API's list form `public_profiles: [{sub_request_status, public_profile}]`.
fn profile_of(answer: &Value) -> Option<Profile> {
    let profile = if answer["public_profile"].is_object() {
        &answer["public_profile"]
    } else {
        &answer["public_profiles"][0]["public_profile"]
    };
    serde_json::from_value::<Profile>(profile.clone())
        .ok()
        .filter(|p| !p.id.is_empty())
}

fn failure(status: StatusCode, body: &[u8], what: &str) -> ConnectError {
    oauth::failure(status, body, what, PLATFORM, CREDENTIALS)
}

impl Snapchat {
    fn token_url(&self) -> String {
        format!("{}/login/oauth2/access_token", self.settings.auth_url)
    }

    /// The token endpoint at `url` ([`Snapchat::token_url`]), with the app's credentials in the
    /// form body.
    fn token_endpoint<'a>(
        &'a self,
        url: &'a str,
    ) -> Result<oauth::TokenEndpoint<'a>, ConnectError> {
        Ok(oauth::TokenEndpoint {
            client: &self.client,
            url,
            platform: PLATFORM,
            credentials: self.settings.credentials(PLATFORM, CREDENTIALS)?,
            failure,
        })
    }

    /// `GET {auth_url}/login/oauth2/authorize?client_id&redirect_uri&response_type=code&scope
    /// &state` ("GET https://accounts.snapchat.com/login/oauth2/authorize", parameters
    /// `client_id`, `redirect_uri` "must match URI on OAuth App", `response_type` "Must be
    /// "code"", `scope`, `state`: <https://developers.snap.com/api/marketing-api/Ads-API/authentication>).
    /// No PKCE: Snap's Business OAuth apps are confidential clients with a secret, and Snap
    /// documents no `code_challenge` for them.
    pub(super) fn authorization_url(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<AuthorizationStart, ConnectError> {
        let (client_id, _) = self.settings.credentials(PLATFORM, CREDENTIALS)?;
        let query = http::query_string(&[
            ("client_id", client_id),
            ("redirect_uri", &request.redirect_uri),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", &request.state),
        ]);
        Ok(AuthorizationStart {
            url: format!("{}/login/oauth2/authorize?{query}", self.settings.auth_url),
            pending: json!({}),
        })
    }

    /// The code exchange, then the Public Profile the authorizing Snapchat user hosts: the
    /// account is that profile (its `id`; the handle is `snap_user_name`).
    pub(super) async fn exchange_code(
        &self,
        exchange: &CodeExchange,
    ) -> Result<ConnectedAccount, ConnectError> {
        let url = self.token_url();
        let tokens = self.token_endpoint(&url)?.exchange(exchange, &[]).await?;
        check_scope(&tokens)?;
        let profile = self.my_profile(&tokens.access_token).await?;
        Ok(ConnectedAccount {
            account_id: profile.id.clone(),
            username: profile.snap_user_name.filter(|u| !u.is_empty()),
            display_name: profile.display_name.filter(|n| !n.is_empty()),
            meta: json!({
                "profile_id": profile.id,
                "organization_id": profile.organization_id,
                "scope": tokens.scope,
            }),
            tokens: tokens.into_token_set(super::ASSUMED_TOKEN_LIFETIME),
        })
    }

    /// `GET {api_url}/v1/public_profiles/my_profile`: "the current user's public profile given
    /// their auth token".
    async fn my_profile(&self, token: &str) -> Result<Profile, ConnectError> {
        let url = format!("{}/v1/public_profiles/my_profile", self.settings.api_url);
        let answer: Value = api::call(self.client.get(url), token, Effect::Repeatable)
            .await
            .map_err(|e| {
                let kind = match e.class {
                    _ if e.code == TOKEN_INVALID || e.code == "forbidden" => {
                        ConnectErrorKind::Rejected
                    }
                    FailureClass::Permanent => ConnectErrorKind::Rejected,
                    _ => ConnectErrorKind::Unavailable,
                };
                let mut error = ConnectError::new(kind, e.message);
                if let Some(raw) = e.platform_error {
                    error = error.with_platform_error(raw);
                }
                error
            })?;
        profile_of(&answer).ok_or_else(|| {
            ConnectError::new(
                ConnectErrorKind::Rejected,
                "This Snapchat account hosts no Public Profile: only a Public Profile can be \
                 posted to through Snap's API.",
            )
            .with_platform_error(http::platform_text(answer.to_string().as_bytes()))
        })
    }

    /// `grant_type=refresh_token`. An answer without a refresh token keeps the one the account
    /// has (the engine never overwrites a refresh token with nothing); Snap documents neither
    /// rotation nor the refresh token's lifetime.
    pub(super) async fn refresh_tokens(
        &self,
        account: &AccountCredentials,
    ) -> Result<TokenSet, ConnectError> {
        let url = self.token_url();
        let tokens = self
            .token_endpoint(&url)?
            .refresh(
                account,
                "This Snapchat account has no refresh token: reconnect it.",
            )
            .await?;
        // The scope is checked when connecting only: how Snap spells it in a refresh answer is
        // not documented, and a misreading would needlessly ask for reconnecting.
        Ok(tokens.into_token_set(super::ASSUMED_TOKEN_LIFETIME))
    }
}

/// A grant without the Public Profile scope cannot post.
fn check_scope(tokens: &TokenResponse) -> Result<(), ConnectError> {
    if tokens.grants(SCOPE) {
        return Ok(());
    }
    Err(ConnectError::new(
        ConnectErrorKind::Rejected,
        format!(
            "Snapchat did not grant access to the Public Profile API ({SCOPE}): connect again \
             and allow it."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_my_profile_are_read() {
        let p = json!({"id": "p1", "snap_user_name": "soku", "display_name": "Soku"});
        let flat = json!({"request_status": "SUCCESS", "public_profile": p});
        let listed = json!({"request_status": "SUCCESS",
            "public_profiles": [{"sub_request_status": "SUCCESS", "public_profile": p}]});
        for answer in [flat, listed] {
            let profile = profile_of(&answer).unwrap();
            assert_eq!(
                (profile.id.as_str(), profile.snap_user_name.as_deref()),
                ("p1", Some("soku"))
            );
        }
        assert!(profile_of(&json!({"request_status": "SUCCESS"})).is_none());
        assert!(profile_of(&json!({"public_profile": {"id": ""}})).is_none());
    }
}
