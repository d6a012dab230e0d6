//! The claim rules for ID tokens (spec 3.3), apart from signatures: those need keys and are
//! checked by the server before these rules run.

use serde::Deserialize;

/// The claims a Firebase ID token carries that we check or use. `aud` may be a string or an
/// array in JWTs in general; Firebase always sends a string.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenClaims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub exp: Option<f64>,
    #[serde(default)]
    pub iat: Option<f64>,
    #[serde(default)]
    pub auth_time: Option<f64>,
    #[serde(default)]
    pub email: Option<String>,
    /// The dashboard session a token of the built-in issuer was issued for (a page token):
    /// such a token is valid only while that session is.
    #[serde(default)]
    pub sid: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, want: &str) -> bool {
        match self {
            Audience::One(a) => a == want,
            Audience::Many(all) => all.iter().any(|a| a == want),
        }
    }
}

/// Why a token was refused; for metrics and logs only. Clients always see the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    Algorithm,
    UnknownIssuer,
    UnknownKid,
    Signature,
    Expired,
    IssuedInFuture,
    Audience,
    Subject,
    /// A page token whose dashboard session has ended (signed out, revoked or expired).
    SessionEnded,
    /// Signed in before its user signed out everywhere.
    Revoked,
}

impl TokenRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "token_malformed",
            Self::Algorithm => "token_algorithm",
            Self::UnknownIssuer => "token_issuer",
            Self::UnknownKid => "token_unknown_kid",
            Self::Signature => "token_signature",
            Self::Expired => "token_expired",
            Self::IssuedInFuture => "token_issued_in_future",
            Self::Audience => "token_audience",
            Self::Subject => "token_subject",
            Self::SessionEnded => "token_session_ended",
            Self::Revoked => "token_revoked",
        }
    }
}

/// Tolerated clock difference between the issuer and us, in seconds.
pub const CLOCK_SKEW_SECS: f64 = 30.0;

/// A verified identity: the user id (`sub`) and the email when the token has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub uid: String,
    pub email: Option<String>,
    /// The dashboard session a page token belongs to (built-in issuer only).
    pub session: Option<String>,
    /// When the user signed in for this token, Unix seconds: its `auth_time` (what Firebase
    /// keeps across the tokens a sign-in's refresh token yields), else its `iat`. A token
    /// signed in before its user's last "sign out everywhere" is refused.
    pub signed_in_at: i64,
}

/// Checks `iss`, `aud`, `exp`, `iat`, `auth_time` and `sub` as the Firebase Admin SDKs do.
/// `require_auth_time` is true for Firebase tokens, whose `auth_time` is mandatory.
pub fn validate_claims(
    claims: &IdTokenClaims,
    issuer: &str,
    audience: &str,
    now_secs: f64,
    require_auth_time: bool,
) -> Result<VerifiedIdentity, TokenRejection> {
    if claims.iss.as_deref() != Some(issuer) {
        return Err(TokenRejection::UnknownIssuer);
    }
    if !claims.aud.as_ref().is_some_and(|a| a.contains(audience)) {
        return Err(TokenRejection::Audience);
    }
    let exp = claims.exp.ok_or(TokenRejection::Malformed)?;
    if exp + CLOCK_SKEW_SECS <= now_secs {
        return Err(TokenRejection::Expired);
    }
    let iat = claims.iat.ok_or(TokenRejection::Malformed)?;
    if iat > now_secs + CLOCK_SKEW_SECS {
        return Err(TokenRejection::IssuedInFuture);
    }
    match claims.auth_time {
        Some(t) if t > now_secs + CLOCK_SKEW_SECS => return Err(TokenRejection::IssuedInFuture),
        None if require_auth_time => return Err(TokenRejection::Malformed),
        _ => {}
    }
    let sub = claims.sub.as_deref().unwrap_or("");
    // Firebase: non-empty, at most 128 characters.
    if sub.is_empty() || sub.chars().count() > 128 || sub.chars().any(char::is_control) {
        return Err(TokenRejection::Subject);
    }
    Ok(VerifiedIdentity {
        uid: sub.to_owned(),
        email: claims.email.clone(),
        session: None,
        signed_in_at: claims.auth_time.unwrap_or(iat).floor() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://securetoken.google.com/proj";
    const NOW: f64 = 1_800_000_000.0;

    fn claims(v: serde_json::Value) -> IdTokenClaims {
        serde_json::from_value(v).unwrap()
    }

    fn good() -> serde_json::Value {
        json!({"iss": ISS, "aud": "proj", "sub": "u1", "exp": NOW + 3600.0, "iat": NOW - 10.0, "auth_time": NOW - 10.0})
    }

    fn check(v: serde_json::Value) -> Result<VerifiedIdentity, TokenRejection> {
        validate_claims(&claims(v), ISS, "proj", NOW, true)
    }

    #[test]
    fn accepts_a_good_token() {
        assert_eq!(check(good()).unwrap().uid, "u1");
    }

    #[test]
    fn signed_in_at_is_the_sign_in_not_the_refresh() {
        // A Firebase token refreshed an hour after its sign-in keeps the sign-in's auth_time.
        let mut refreshed = good();
        refreshed["auth_time"] = json!(NOW - 3600.5);
        assert_eq!(check(refreshed).unwrap().signed_in_at, 1_799_996_399);
        let mut no_auth_time = good();
        no_auth_time.as_object_mut().unwrap().remove("auth_time");
        let identity = validate_claims(&claims(no_auth_time), ISS, "proj", NOW, false).unwrap();
        assert_eq!(identity.signed_in_at, 1_799_999_990);
    }

    #[test]
    fn rejects_each_bad_claim() {
        let with = |k: &str, v: serde_json::Value| {
            let mut g = good();
            g[k] = v;
            g
        };
        assert_eq!(
            check(with("exp", json!(NOW - 3600.0))),
            Err(TokenRejection::Expired)
        );
        assert_eq!(
            check(with("iat", json!(NOW + 3600.0))),
            Err(TokenRejection::IssuedInFuture)
        );
        assert_eq!(
            check(with("auth_time", json!(NOW + 3600.0))),
            Err(TokenRejection::IssuedInFuture)
        );
        assert_eq!(
            check(with("aud", json!("other"))),
            Err(TokenRejection::Audience)
        );
        assert_eq!(
            check(with("iss", json!("https://evil"))),
            Err(TokenRejection::UnknownIssuer)
        );
        assert_eq!(check(with("sub", json!(""))), Err(TokenRejection::Subject));
        assert_eq!(
            check(with("sub", json!("x".repeat(129)))),
            Err(TokenRejection::Subject)
        );
        let mut no_auth_time = good();
        no_auth_time.as_object_mut().unwrap().remove("auth_time");
        assert_eq!(check(no_auth_time.clone()), Err(TokenRejection::Malformed));
        assert!(validate_claims(&claims(no_auth_time), ISS, "proj", NOW, false).is_ok());
    }
}
