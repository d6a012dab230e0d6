//! What the OAuth 2.0 connectors share: the form-encoded token request (RFC 6749 §4.1.3 and
//! §6) and its answer, and the reading of a refused one (§5.2).
//!
//! LinkedIn, YouTube (Google) and Snapchat answer alike: a JSON token on success, an
//! `{"error", "error_description"}` body with a 4xx status on failure. TikTok answers its
//! errors with HTTP 200 and keeps its own reading (`tiktok::oauth`).

use crate::{answer, http};
use chrono::{Duration as ChronoDuration, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde_json::Value;
use soku_core::connector::{
    AccountCredentials, CodeExchange, ConnectError, ConnectErrorKind, TokenSet,
};
use std::time::Duration;

/// A token endpoint's answer (RFC 6749 §5.1). No `Debug`: it holds the tokens.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The longest lifetime a token answer is believed: ten years (a larger `expires_in` would
/// overflow the date).
const LONGEST_LIFETIME_SECS: i64 = 10 * 366 * 24 * 3600;

/// When an access token given now expires: in `expires_in` seconds, or, when the answer does
/// not say (no `expires_in`, or 0 or less, which says nothing usable), in `assumed`.
///
/// RFC 6749 §5.1 makes `expires_in` only RECOMMENDED: "If omitted, the authorization server
/// SHOULD provide the expiration time via other means or document the default value." A token
/// recorded without an expiry is never refreshed ahead, so it would live until the platform
/// refuses it. `assumed` is the lifetime the platform documents (the shortest, where it names
/// several), so the refresher renews the token ahead of it like any other; a token that dies
/// sooner is still refreshed when the platform refuses it (401: `token_invalid`, then the post
/// is tried again), and a refresh answer that names a lifetime replaces the assumption.
pub fn expires_at(expires_in: Option<i64>, assumed: Duration) -> chrono::DateTime<Utc> {
    let secs = expires_in
        .filter(|s| *s > 0)
        .unwrap_or_else(|| i64::try_from(assumed.as_secs()).unwrap_or(i64::MAX));
    Utc::now() + ChronoDuration::seconds(secs.min(LONGEST_LIFETIME_SECS))
}

impl TokenResponse {
    /// The tokens; an answer without `expires_in` is taken to live `assumed` ([`expires_at`]).
    pub fn into_token_set(self, assumed: Duration) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            refresh_token: self.refresh_token.filter(|t| !t.is_empty()),
            expires_at: Some(expires_at(self.expires_in, assumed)),
        }
    }

    /// Whether the granted `scope` (space- or comma-separated) includes `wanted`; an answer
    /// without `scope` is taken to grant what was asked (RFC 6749 §5.1: "OPTIONAL, if identical
    /// to the scope requested by the client").
    pub fn grants(&self, wanted: &str) -> bool {
        self.scope
            .as_deref()
            .is_none_or(|s| s.split([' ', ',']).any(|s| s == wanted))
    }
}

/// `expires_in` (RFC 6749 §5.1: "The lifetime in seconds of the access token"): a JSON number,
/// or a string of digits as some servers send it; `null` or absent is `None`. Anything else
/// fails as "expected a number of seconds" (never quoting it: see [`answer::describe`]).
pub fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Seconds;
    impl<'de> Visitor<'de> for Seconds {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of seconds")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() {
                Ok(Some(v as i64))
            } else {
                Err(E::invalid_type(Unexpected::Float(v), &self))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let digits = v.trim();
            match digits.parse::<u64>() {
                Ok(n) if !digits.starts_with('+') => self.visit_u64(n),
                _ => Err(E::invalid_type(Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(Seconds)
}

/// A token endpoint's (or an account lookup's) 2xx answer, a JSON object, read as `T`. One that
/// does not fit is `Unavailable` (tried again later), described by the field at fault and the
/// type expected: the answer itself is never quoted, in the message or as `platform_error`,
/// because it holds the tokens.
pub fn parse_answer<T: DeserializeOwned>(
    body: &[u8],
    platform: &str,
    what: &str,
) -> Result<T, ConnectError> {
    // serde reads a struct from an array too (`["abc"]` as `access_token: "abc"`).
    if body.trim_ascii_start().first() == Some(&b'[') {
        return Err(unexpected(
            platform,
            what,
            "the answer: expected a JSON object, found a sequence",
        ));
    }
    answer::from_json(body).map_err(|why| unexpected(platform, what, &why))
}

/// [`parse_answer`]'s failure, for a check made after parsing (an empty `access_token`).
pub fn unexpected(platform: &str, what: &str, why: &str) -> ConnectError {
    ConnectError::new(
        ConnectErrorKind::Unavailable,
        format!("{platform} answered {what} in an unexpected form: {why}."),
    )
}

/// A token answer read and checked: a non-empty `access_token` string, and the optional fields
/// of their types ([`parse_answer`]).
pub fn token_answer(body: &[u8], platform: &str) -> Result<TokenResponse, ConnectError> {
    let what = "the token request";
    let tokens: TokenResponse = match parse_answer(body, platform, what) {
        Ok(tokens) => tokens,
        Err(strict) => salvage(body, platform).ok_or(strict)?.0,
    };
    if tokens.access_token.is_empty() {
        return Err(unexpected(platform, what, "`access_token` is empty"));
    }
    Ok(tokens)
}

/// A successful token answer that does not parse whole, read field by field: the tokens are
/// what matters (a platform that rotates refresh tokens has spent the old one by now), so an odd
/// `expires_in` counts as missing (the platform's documented lifetime is assumed), an odd
/// `scope` as missing (what was asked), an odd `refresh_token` as none issued (the stored one is
/// kept). `None` without a non-empty `access_token` string. The odd fields are logged by name,
/// never their values. Also returns the answer's object, for a platform's own fields.
pub fn salvage(
    body: &[u8],
    platform: &str,
) -> Option<(TokenResponse, serde_json::Map<String, Value>)> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let access_token = map
        .get("access_token")?
        .as_str()
        .filter(|t| !t.is_empty())?
        .to_owned();
    let mut odd = Vec::new();
    let mut string = |name: &'static str| match map.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            odd.push(name);
            None
        }
    };
    let refresh_token = string("refresh_token");
    let scope = string("scope");
    let expires_in = map.get("expires_in").and_then(|v| {
        seconds(v).unwrap_or_else(|_| {
            odd.push("expires_in");
            None
        })
    });
    tracing::warn!(
        platform,
        fields = ?odd,
        "a token answer had fields of the wrong type; its tokens were kept and those fields taken as missing"
    );
    Some((
        TokenResponse {
            access_token,
            expires_in,
            refresh_token,
            scope,
        },
        map,
    ))
}

/// How a connector reads a refused request: the status, the body, and what was asked ("the
/// token request").
pub type Failure = fn(StatusCode, &[u8], &str) -> ConnectError;

/// `POST url` with `form` form-encoded; the token answer, or `failure`'s reading of a refusal.
/// `platform` names the network in messages.
pub async fn token_request(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    platform: &str,
    failure: Failure,
) -> Result<TokenResponse, ConnectError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = client
        .post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| http::connect_unavailable(&e, platform))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| http::connect_unavailable(&e, platform))?;
    if !status.is_success() {
        return Err(failure(status, &bytes, "the token request"));
    }
    token_answer(&bytes, platform)
}

/// A confidential client's token endpoint: where it is, the app's credentials, and how a
/// refusal reads. The code exchange and the refresh every such connector makes.
pub struct TokenEndpoint<'a> {
    pub client: &'a reqwest::Client,
    pub url: &'a str,
    /// Names the network in messages ("Google" for YouTube).
    pub platform: &'a str,
    /// The client id and secret, sent in the form body.
    pub credentials: (&'a str, &'a str),
    pub failure: Failure,
}

impl TokenEndpoint<'_> {
    /// The code exchange (RFC 6749 §4.1.3): `grant_type=authorization_code`, `code`,
    /// `redirect_uri`, the client credentials, and `extra` (a PKCE `code_verifier`).
    pub async fn exchange(
        &self,
        exchange: &CodeExchange,
        extra: &[(&str, &str)],
    ) -> Result<TokenResponse, ConnectError> {
        if exchange.code.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Invalid,
                format!("{} sent no authorization code.", self.platform),
            ));
        }
        let (client_id, client_secret) = self.credentials;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", exchange.code.as_str()),
            ("redirect_uri", exchange.redirect_uri.as_str()),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        form.extend_from_slice(extra);
        token_request(self.client, self.url, &form, self.platform, self.failure).await
    }

    /// The refresh (RFC 6749 §6) with the account's refresh token; an account without one is
    /// `NotRefreshable` with `missing` as the message.
    pub async fn refresh(
        &self,
        account: &AccountCredentials,
        missing: &str,
    ) -> Result<TokenResponse, ConnectError> {
        let Some(refresh_token) = account.refresh_token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(ConnectError::new(ConnectErrorKind::NotRefreshable, missing));
        };
        let (client_id, client_secret) = self.credentials;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        token_request(self.client, self.url, &form, self.platform, self.failure).await
    }
}

/// A refused OAuth request read the common way: 408, 429 and 5xx `Unavailable`; `invalid_client`
/// (RFC 6749 §5.2: "Client authentication failed") `NotConfigured`, naming `credentials` (the
/// settings to check); another error of RFC 6749 §5.2's JSON shape (`invalid_grant`: the code or
/// refresh token is "invalid, expired, revoked") `Rejected`: the account needs connecting again.
/// An answer without that shape (a proxy's or firewall's HTML page) and `temporarily_unavailable`
/// or `server_error` say nothing about the grant: `Unavailable`, so that a passing fault in
/// front of the token endpoint does not make every account refreshed meanwhile need
/// reconnecting by hand.
pub fn failure(
    status: StatusCode,
    body: &[u8],
    what: &str,
    platform: &str,
    credentials: &str,
) -> ConnectError {
    let raw = http::platform_text(body);
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = v["error"].as_str().unwrap_or("");
    let detail = v["error_description"].as_str().unwrap_or(error);
    let kind = match (status.as_u16(), error) {
        (408 | 429 | 500..=599, _) => ConnectErrorKind::Unavailable,
        (_, "invalid_client") => ConnectErrorKind::NotConfigured,
        (_, "" | "temporarily_unavailable" | "server_error") => ConnectErrorKind::Unavailable,
        _ => ConnectErrorKind::Rejected,
    };
    let message = match kind {
        ConnectErrorKind::Unavailable => {
            format!("{platform} could not serve {what} ({status}); try again later.")
        }
        ConnectErrorKind::NotConfigured => format!(
            "{platform} refused this server's client credentials for {what}: check {credentials}."
        ),
        _ if detail.is_empty() => format!("{platform} refused {what} ({status})."),
        _ => format!("{platform} refused {what} ({status}): {detail}"),
    };
    ConnectError::new(kind, message).with_platform_error(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_by_status_and_error() {
        let kind = |status: u16, body: &str| {
            failure(
                StatusCode::from_u16(status).unwrap(),
                body.as_bytes(),
                "the token request",
                "Net",
                "SOKU_NET_CLIENT_ID",
            )
            .kind
        };
        assert_eq!(
            kind(400, r#"{"error":"invalid_grant"}"#),
            ConnectErrorKind::Rejected
        );
        assert_eq!(
            kind(401, r#"{"error":"invalid_client"}"#),
            ConnectErrorKind::NotConfigured
        );
        assert_eq!(kind(503, "<html>"), ConnectErrorKind::Unavailable);
        assert_eq!(kind(429, ""), ConnectErrorKind::Unavailable);
        // Not the token endpoint's word on the grant: a firewall's page, a timeout, a pause.
        assert_eq!(
            kind(403, "<html>blocked</html>"),
            ConnectErrorKind::Unavailable
        );
        assert_eq!(kind(408, ""), ConnectErrorKind::Unavailable);
        assert_eq!(
            kind(400, r#"{"error":"temporarily_unavailable"}"#),
            ConnectErrorKind::Unavailable
        );
        assert_eq!(
            kind(401, r#"{"error":"unauthorized_client"}"#),
            ConnectErrorKind::Rejected
        );
        let e = failure(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"Refresh token revoked"}"#,
            "the token request",
            "Net",
            "",
        );
        assert!(
            e.message.ends_with("Refresh token revoked"),
            "{}",
            e.message
        );
    }

    /// The tokens of an answer with an odd field are kept; the odd field counts as missing.
    #[test]
    fn the_tokens_of_an_answer_with_an_odd_field_are_kept() {
        let assumed = Duration::from_secs(3600);
        for body in [
            r#"{"access_token": "A", "expires_in": "soon", "refresh_token": "R", "scope": "s"}"#,
            r#"{"access_token": "A", "expires_in": true, "refresh_token": "R", "scope": "s"}"#,
            r#"{"access_token": "A", "expires_in": 60, "refresh_token": "R", "scope": ["s"]}"#,
        ] {
            let t = token_answer(body.as_bytes(), "Net").unwrap();
            assert_eq!(
                (t.access_token.as_str(), t.refresh_token.as_deref()),
                ("A", Some("R"))
            );
            assert!(t.grants("s"), "{body}");
        }
        let t = token_answer(
            br#"{"access_token": "A", "expires_in": "soon", "refresh_token": "R"}"#,
            "Net",
        )
        .unwrap();
        let left = t.into_token_set(assumed).expires_at.unwrap() - Utc::now();
        assert!((3590..=3600).contains(&left.num_seconds()), "{left}");
        // An odd refresh token is taken as none issued (the stored one is kept).
        let t = token_answer(
            br#"{"access_token": "A", "refresh_token": {"v": "R"}}"#,
            "Net",
        )
        .unwrap();
        assert_eq!(t.refresh_token, None);
    }

    #[test]
    fn a_token_answer_that_does_not_fit_is_described_never_quoted() {
        for (body, why) in [
            (
                r#"{"access_token": 1234567, "refresh_token": "SECRET-2"}"#,
                "`access_token`: expected a string, found an integer",
            ),
            (
                r#"{"access_token": {"value": "SECRET-1"}, "expires_in": "soon"}"#,
                "`access_token`: expected a string, found a map",
            ),
            (
                r#"{"access_token": "", "refresh_token": "SECRET-2"}"#,
                "`access_token` is empty",
            ),
            (
                r#"{"refresh_token": "SECRET-2"}"#,
                "the answer: the field `access_token` is missing",
            ),
            (
                r#"[{"access_token": "SECRET-1"}]"#,
                "the answer: expected a JSON object, found a sequence",
            ),
        ] {
            let e = match token_answer(body.as_bytes(), "Net") {
                Ok(_) => panic!("{body} was taken"),
                Err(e) => e,
            };
            assert_eq!(e.kind, ConnectErrorKind::Unavailable);
            assert_eq!(
                e.message,
                format!("Net answered the token request in an unexpected form: {why}.")
            );
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert_eq!(e.platform_error, None);
        }
    }

    #[test]
    fn expires_in_is_read_as_seconds() {
        let read = |v: &str| {
            token_answer(
                format!(r#"{{"access_token":"a","expires_in":{v}}}"#).as_bytes(),
                "Net",
            )
            .map(|t| t.expires_in)
            .map_err(|e| e.message)
        };
        assert_eq!(read("3600"), Ok(Some(3600)));
        assert_eq!(read("\"3600\""), Ok(Some(3600)), "a string of digits");
        assert_eq!(read("3599.6"), Ok(Some(3599)));
        assert_eq!(read("null"), Ok(None));
        // Not a number of seconds: taken as missing (the tokens are kept).
        assert_eq!(read("\"-5\""), Ok(None));
        assert_eq!(read("true"), Ok(None));
        // A lifetime too long for a date is believed for ten years, not a panic.
        let t = token_answer(
            br#"{"access_token":"a","expires_in":9223372036854775807}"#,
            "Net",
        )
        .unwrap()
        .into_token_set(Duration::from_secs(60));
        assert!(t.expires_at.unwrap() > Utc::now() + ChronoDuration::days(3650));
    }

    #[test]
    fn a_token_without_a_lifetime_is_taken_to_live_the_assumed_one() {
        let hour = Duration::from_secs(3600);
        let left = |body: &str| {
            let at = token_answer(body.as_bytes(), "Net")
                .unwrap()
                .into_token_set(hour)
                .expires_at
                .expect("every token gets an expiry");
            (at - Utc::now()).num_seconds()
        };
        for body in [
            r#"{"access_token":"a"}"#,
            r#"{"access_token":"a","expires_in":null}"#,
            r#"{"access_token":"a","expires_in":0}"#,
            r#"{"access_token":"a","expires_in":-30}"#,
        ] {
            assert!(
                (3595..=3600).contains(&left(body)),
                "{body}: {}",
                left(body)
            );
        }
        // A lifetime the answer gives wins, shorter or longer.
        assert!((295..=300).contains(&left(r#"{"access_token":"a","expires_in":300}"#)));
        assert!((7195..=7200).contains(&left(r#"{"access_token":"a","expires_in":7200}"#)));
    }

    #[test]
    fn granted_scopes() {
        let t = |scope: Option<&str>| TokenResponse {
            access_token: "a".into(),
            expires_in: None,
            refresh_token: None,
            scope: scope.map(str::to_owned),
        };
        assert!(t(None).grants("x"));
        assert!(t(Some("a x")).grants("x"));
        assert!(t(Some("a,x")).grants("x"));
        assert!(!t(Some("a xy")).grants("x"));
    }
}
