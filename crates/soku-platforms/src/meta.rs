//! Facebook Login, shared by the Facebook Page (`facebook`) and Instagram (`instagram`)
//! connectors: the login dialog, the code traded for a user token and that for a long-lived
//! one, and the Pages the user manages with their linked Instagram professional accounts. Tested
//! against `soku_fakes::graph`.
//!
//! Sources (Meta's documentation; the fake quotes each line it follows):
//! - Manual login flow:
//!   <https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow>: the
//!   dialog `https://www.facebook.com/{version}/dialog/oauth?client_id&redirect_uri&state&scope`,
//!   then `GET /{version}/oauth/access_token?client_id&redirect_uri&client_secret&code`.
//! - Long-lived tokens:
//!   <https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived>:
//!   `grant_type=fb_exchange_token` with `fb_exchange_token`; "If you used a long-lived User
//!   access token, the Page access token has no expiration date."
//! - Pages: <https://developers.facebook.com/docs/graph-api/reference/user/accounts/> (`id`,
//!   `name`, `access_token`, `tasks`) and the Page's `instagram_business_account`
//!   (<https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/page>).
//!
//! One login grants every Page (and Instagram account) the user chose in the dialog: the
//! connectors answer them all through `Connector::exchange_all`, one account each, each with
//! the Page's own token (for an Instagram account, the token of the Page it is linked to).

use crate::http;
use crate::settings::PlatformSettings;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use soku_core::connector::{
    AuthorizationRequest, AuthorizationStart, CodeExchange, ConnectError, ConnectErrorKind,
    ConnectedAccount, TokenSet,
};

/// The Graph API version the fake's spec check is stamped with (see `soku_fakes::graph`),
/// supported until 29 July 2028 (Graph API changelog).
pub const GRAPH_VERSION: &str = "v25.0";
/// The Graph API (the version goes after it).
pub const DEFAULT_API_URL: &str = "https://graph.facebook.com";
/// Where the login dialog is (`/{version}/dialog/oauth` goes after it).
pub const DEFAULT_AUTH_URL: &str = "https://www.facebook.com";
/// Meta's resumable upload host for Page reels and video stories
/// (`/video-upload/{version}/{video-id}` goes after it).
pub const DEFAULT_UPLOAD_URL: &str = "https://rupload.facebook.com";

/// The permissions the Facebook Page connector asks for: list the Pages, read them, publish.
pub const PAGE_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
];
/// The permissions the Instagram connector asks for: the Pages (to find the linked accounts),
/// the account's profile, and content publishing.
pub const INSTAGRAM_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_read_engagement",
    "instagram_basic",
    "instagram_content_publish",
];

/// What a login granted: the long-lived user token and the Pages it manages.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    pub user_token: TokenSet,
    pub pages: Vec<PageGrant>,
}

/// One Page the user manages.
#[derive(Clone, Deserialize)]
pub struct PageGrant {
    pub id: String,
    pub name: Option<String>,
    /// The Page token: does not expire when taken with a long-lived user token.
    pub access_token: String,
    /// What the user may do on the Page (`CREATE_CONTENT`, `MANAGE`, ...).
    #[serde(default)]
    pub tasks: Vec<String>,
    /// The Instagram professional account linked to the Page.
    #[serde(default)]
    pub instagram_business_account: Option<InstagramAccount>,
}

impl std::fmt::Debug for PageGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageGrant")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("tasks", &self.tasks)
            .field(
                "instagram_business_account",
                &self.instagram_business_account,
            )
            .finish_non_exhaustive()
    }
}

/// An Instagram professional account linked to a Page.
#[derive(Debug, Clone, Deserialize)]
pub struct InstagramAccount {
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl LoginGrant {
    /// One account per Page the user may publish to (a Page without `CREATE_CONTENT` is left
    /// out), with the Page's token.
    pub fn page_accounts(&self) -> Vec<ConnectedAccount> {
        self.pages
            .iter()
            .filter(|p| p.tasks.is_empty() || p.tasks.iter().any(|t| t == "CREATE_CONTENT"))
            .map(|p| ConnectedAccount {
                account_id: p.id.clone(),
                username: None,
                display_name: p.name.clone(),
                meta: json!({ "page_id": p.id }),
                tokens: page_token(p),
            })
            .collect()
    }

    /// One account per Instagram professional account linked to one of the Pages, with that
    /// Page's token (Instagram's publishing calls take it).
    pub fn instagram_accounts(&self) -> Vec<ConnectedAccount> {
        self.pages
            .iter()
            .filter_map(|p| {
                let ig = p.instagram_business_account.as_ref()?;
                Some(ConnectedAccount {
                    account_id: ig.id.clone(),
                    username: ig.username.clone(),
                    display_name: ig.name.clone(),
                    meta: json!({ "ig_user_id": ig.id, "page_id": p.id }),
                    tokens: page_token(p),
                })
            })
            .collect()
    }
}

/// A Page token taken with a long-lived user token does not expire.
fn page_token(page: &PageGrant) -> TokenSet {
    TokenSet {
        access_token: page.access_token.clone(),
        refresh_token: None,
        expires_at: None,
    }
}

/// Facebook Login against `settings.auth_url` (the dialog's host) and `settings.api_url`
/// (`graph.facebook.com`).
pub struct FacebookLogin {
    settings: PlatformSettings,
    client: reqwest::Client,
    version: String,
}

impl FacebookLogin {
    pub fn new(settings: PlatformSettings) -> Self {
        let client = http::api_client(settings.timeout);
        Self {
            settings,
            client,
            version: GRAPH_VERSION.to_owned(),
        }
    }

    /// Calls a Graph API version other than [`GRAPH_VERSION`] (`v26.0`); anything not of that
    /// form is ignored with a warning.
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version_or_default(Some(version));
        self
    }

    /// The Graph API version called.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether the app's id and secret are set.
    pub fn configured(&self) -> bool {
        self.settings.client_id.is_some() && self.settings.client_secret.is_some()
    }

    fn credentials(&self) -> Result<(&str, &str), ConnectError> {
        match (&self.settings.client_id, &self.settings.client_secret) {
            (Some(id), Some(secret)) => Ok((id.as_str(), secret.expose().as_str())),
            _ => Err(ConnectError::new(
                ConnectErrorKind::NotConfigured,
                "Facebook and Instagram are not configured on this server (SOKU_FACEBOOK_CLIENT_ID \
                 and SOKU_FACEBOOK_CLIENT_SECRET, the Meta app's id and secret).",
            )),
        }
    }

    fn graph(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.settings.api_url, self.version)
    }

    /// The login dialog's URL for `request`, asking for `scopes`.
    pub fn authorize_url(
        &self,
        request: &AuthorizationRequest,
        scopes: &[&str],
    ) -> Result<String, ConnectError> {
        let (client_id, _) = self.credentials()?;
        let mut url = reqwest::Url::parse(&format!(
            "{}/{}/dialog/oauth",
            self.settings.auth_url, self.version
        ))
        .map_err(|e| ConnectError::new(ConnectErrorKind::NotConfigured, e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &request.redirect_uri)
            .append_pair("state", &request.state)
            .append_pair("response_type", "code")
            .append_pair("scope", &scopes.join(","));
        Ok(url.into())
    }

    /// The code for a user token, that for a long-lived one, and the Pages it manages (every
    /// page of `/me/accounts`), with their linked Instagram accounts when `with_instagram` (the
    /// field needs the `instagram_basic` permission, which the Page connector does not ask
    /// for).
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        with_instagram: bool,
    ) -> Result<LoginGrant, ConnectError> {
        let (client_id, client_secret) = self.credentials()?;
        let short: Token = self
            .get(
                &self.graph("oauth/access_token"),
                &[
                    ("client_id", client_id),
                    ("redirect_uri", redirect_uri),
                    ("client_secret", client_secret),
                    ("code", code),
                ],
            )
            .await?;
        let long: Token = self
            .get(
                &self.graph("oauth/access_token"),
                &[
                    ("grant_type", "fb_exchange_token"),
                    ("client_id", client_id),
                    ("client_secret", client_secret),
                    ("fb_exchange_token", short.access_token.as_str()),
                ],
            )
            .await?;
        let fields = if with_instagram {
            "id,name,access_token,tasks,instagram_business_account{id,username,name}"
        } else {
            "id,name,access_token,tasks"
        };
        // Paged by the `after` cursor on our own URL: `paging.next` is a whole URL with the
        // token in it, which this server does not follow wherever it points.
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![
                ("fields", fields),
                ("limit", "100"),
                ("access_token", long.access_token.as_str()),
            ];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let page: crate::graph::Page<PageGrant> =
                self.get(&self.graph("me/accounts"), &query).await?;
            let full = page.data.len();
            let has_next = page.paging.as_ref().is_some_and(|p| p.next.is_some());
            let cursor = page
                .paging
                .as_ref()
                .and_then(|p| p.cursors.as_ref())
                .and_then(|c| c.after.clone());
            pages.extend(page.data);
            // Facebook gives `paging.next` only when there is more.
            match cursor {
                Some(c) if has_next && full > 0 && pages.len() <= 1000 => after = Some(c),
                _ => break,
            }
        }
        Ok(LoginGrant {
            user_token: TokenSet {
                access_token: long.access_token,
                refresh_token: None,
                expires_at: long.expires_in.map(|s| expiry(s, Utc::now())),
            },
            pages,
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ConnectError> {
        let response = self
            .client
            .get(url)
            .query(query)
            .send()
            .await
            // Never the error's own text: it holds the URL, and the query holds the secret.
            .map_err(|e| http::connect_unavailable(&e, "Facebook"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::connect_unavailable(&e, "Facebook"))?;
        if status.is_success() {
            // Never quoted: the answers hold the user's and the Pages' tokens.
            return crate::oauth::parse_answer(&body, "Facebook", "the request");
        }
        Err(graph_connect_error(status.as_u16(), &body))
    }
}

/// What the Facebook Page and Instagram connectors share: the Meta app's settings, the Graph
/// API version, the HTTP client, Facebook Login, and how long to wait for processing.
pub struct MetaApp {
    pub settings: PlatformSettings,
    pub client: reqwest::Client,
    pub login: FacebookLogin,
    pub version: String,
    pub polling: crate::graph::Polling,
}

impl MetaApp {
    /// `settings`: the Meta app's (`api_url` = the `graph.facebook.com` base without a version,
    /// `auth_url` = the `www.facebook.com` base, client id and secret = the Facebook app's).
    pub fn new(settings: PlatformSettings) -> Self {
        Self {
            client: http::api_client(settings.timeout),
            login: FacebookLogin::new(settings.clone()),
            settings,
            version: GRAPH_VERSION.to_owned(),
            polling: crate::graph::Polling::DEFAULT,
        }
    }

    /// Calls this Graph API version (`v26.0`; anything else falls back to [`GRAPH_VERSION`],
    /// see [`version_or_default`]), for publishing and for Facebook Login.
    pub fn set_version(&mut self, version: &str) {
        self.version = version_or_default(Some(version));
        self.login.version = self.version.clone();
    }

    /// A Graph API URL: `{api_url}/{version}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.settings.api_url, self.version)
    }
}

/// What a connector connects from one login: the Pages, or the Instagram accounts linked to
/// them. The connect half of both connectors (`Connector::authorize`, `exchange`,
/// `exchange_all`, `refresh`) is [`FacebookLogin::start`], [`FacebookLogin::accounts`],
/// [`FacebookLogin::first_account`] and [`Grants::not_refreshable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grants {
    Pages,
    Instagram,
}

impl Grants {
    fn scopes(self) -> &'static [&'static str] {
        match self {
            Grants::Pages => PAGE_SCOPES,
            Grants::Instagram => INSTAGRAM_SCOPES,
        }
    }

    /// Page tokens do not expire and nothing refreshes them: the engine marks the account
    /// `needs_reconnect` once Facebook refuses its token.
    pub fn not_refreshable(self) -> ConnectError {
        let message = match self {
            Grants::Pages => {
                "Facebook Page tokens do not expire and cannot be refreshed; reconnect the Page if Facebook stops accepting its token."
            }
            Grants::Instagram => {
                "Instagram accounts publish with their Facebook Page's token, which does not expire and cannot be refreshed; reconnect the account if Instagram refuses it."
            }
        };
        ConnectError::new(ConnectErrorKind::NotRefreshable, message)
    }
}

impl FacebookLogin {
    /// The start of an authorization: the dialog asking for what `grants` needs.
    pub fn start(
        &self,
        request: &AuthorizationRequest,
        grants: Grants,
    ) -> Result<AuthorizationStart, ConnectError> {
        Ok(AuthorizationStart {
            url: self.authorize_url(request, grants.scopes())?,
            pending: json!({}),
        })
    }

    /// Every account the login granted: one per Page the user may publish to, or one per
    /// Instagram account linked to a granted Page. Empty when it granted none (the server
    /// refuses that).
    pub async fn accounts(
        &self,
        exchange: &CodeExchange,
        grants: Grants,
    ) -> Result<Vec<ConnectedAccount>, ConnectError> {
        // Facebook appends `#_=_` to the redirect; a callback that kept it must not send it.
        let code = exchange.code.trim_end_matches("#_=_");
        let with_instagram = grants == Grants::Instagram;
        let grant = self
            .exchange(code, &exchange.redirect_uri, with_instagram)
            .await?;
        Ok(match grants {
            Grants::Pages => grant.page_accounts(),
            Grants::Instagram => grant.instagram_accounts(),
        })
    }

    /// The first account the login granted; refused when there is none.
    pub async fn first_account(
        &self,
        exchange: &CodeExchange,
        grants: Grants,
    ) -> Result<ConnectedAccount, ConnectError> {
        self.accounts(exchange, grants)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                let message = match grants {
                    Grants::Pages => {
                        "The Facebook login granted no Page this account may publish to."
                    }
                    Grants::Instagram => {
                        "No Instagram professional account is linked to the Facebook Pages granted."
                    }
                };
                ConnectError::new(ConnectErrorKind::Rejected, message)
            })
    }
}

/// A configured Graph API version (`v25.0`, `v26.1`) when it has that form, else
/// [`GRAPH_VERSION`] (with a warning for a value that is not blank).
pub fn version_or_default(configured: Option<&str>) -> String {
    let Some(v) = configured.map(str::trim).filter(|v| !v.is_empty()) else {
        return GRAPH_VERSION.to_owned();
    };
    let ok = v.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.split('.');
        let major = parts
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let minor = parts
            .next()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        major.is_some() && minor.is_some() && parts.next().is_none()
    });
    if ok {
        v.to_owned()
    } else {
        tracing::warn!(
            configured = v,
            "the Graph API version is not of the form vNN.N; using {GRAPH_VERSION}"
        );
        GRAPH_VERSION.to_owned()
    }
}

/// A Graph API error answer as a connect error: throttling, outages and transient errors are
/// worth retrying later; everything else (an invalid or used code, a revoked or expired token,
/// a missing permission) is the platform refusing.
///
/// Codes (<https://developers.facebook.com/docs/graph-api/guides/error-handling>): 1 and 2 are
/// temporary ("API Unknown", "API Service"), 4, 17, 32, 613 and 80001–80002 are throttling;
/// `is_transient: true` marks any error Meta says to retry.
pub fn graph_connect_error(status: u16, body: &[u8]) -> ConnectError {
    let error = crate::graph::parse_error(body);
    let code = error.as_ref().and_then(|e| e.code);
    let transient = error.as_ref().and_then(|e| e.is_transient) == Some(true);
    let message = error
        .and_then(|e| e.message)
        .map(|m| m.chars().take(300).collect::<String>())
        .unwrap_or_else(|| format!("status {status}"));
    let retry = transient
        || status >= 500
        || matches!(code, Some(1 | 2 | 4 | 17 | 32 | 341 | 613 | 80001 | 80002));
    let kind = if retry {
        ConnectErrorKind::Unavailable
    } else {
        ConnectErrorKind::Rejected
    };
    ConnectError::new(kind, format!("Facebook refused: {message}"))
        .with_platform_error(http::platform_text(body))
}

fn expiry(seconds: u64, now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::seconds(seconds.min(i64::MAX as u64 / 2) as i64)
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_versions_are_checked() {
        assert_eq!(version_or_default(None), GRAPH_VERSION);
        assert_eq!(version_or_default(Some(" v26.0 ")), "v26.0");
        assert_eq!(version_or_default(Some("26.0")), GRAPH_VERSION);
        assert_eq!(version_or_default(Some("v26")), GRAPH_VERSION);
        assert_eq!(version_or_default(Some("v26.0/../x")), GRAPH_VERSION);
    }

    #[test]
    fn graph_errors_are_retried_or_refused_as_documented() {
        let err = |code: i64, transient: bool| {
            json!({"error": {"message": "m", "type": "OAuthException", "code": code,
                             "is_transient": transient, "fbtrace_id": "x"}})
            .to_string()
            .into_bytes()
        };
        for code in [1, 2, 4, 17, 32, 613, 80001] {
            assert_eq!(
                graph_connect_error(400, &err(code, false)).kind,
                ConnectErrorKind::Unavailable,
                "{code}"
            );
        }
        for code in [100, 190, 10, 200] {
            assert_eq!(
                graph_connect_error(400, &err(code, false)).kind,
                ConnectErrorKind::Rejected,
                "{code}"
            );
        }
        assert_eq!(
            graph_connect_error(400, &err(100, true)).kind,
            ConnectErrorKind::Unavailable
        );
        assert_eq!(
            graph_connect_error(503, b"<html>").kind,
            ConnectErrorKind::Unavailable
        );
    }
}
