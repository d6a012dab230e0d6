//! Leaked keys (spec 4.1): a report from GitHub's secret scanning partner program, already
//! verified as GitHub's (`auth::github`), revokes every reported key of ours that is still
//! active, and each token is labelled the way GitHub documents.
//!
//! A token never leaves this module: not in a response (GitHub gets its SHA-256), not in a log
//! line (key ids and counts only), not in an audit event (the URL and source only).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use soku_core::ErrorCode;
use soku_core::audit::{AuditDraft, AuditKind, Origin};
use soku_core::keys;
use std::fmt;
use utoipa::ToSchema;

/// GitHub sends far fewer per request; a longer report is refused whole, revoking nothing.
pub const MAX_TOKENS_PER_REPORT: usize = 1000;

/// One match GitHub found: the string, the token type it was registered under, where it was
/// found. Unknown fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct ReportedToken {
    /// The string that matched our pattern.
    pub token: String,
    /// The token type the pattern was registered under (`soku_api_key`).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Where it was found (may be empty).
    #[serde(default)]
    pub url: Option<String>,
    /// `content`, `commit`, `pull_request_description`, ...
    #[serde(default)]
    pub source: Option<String>,
}

impl fmt::Debug for ReportedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportedToken")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// GitHub's optional feedback on one reported token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenLabel {
    /// SHA-256 of the reported token, lower-case hex (never the token itself).
    pub token_hash: String,
    /// The type as GitHub sent it.
    pub token_type: String,
    /// `true_positive` (a key of this server, whatever its status) or `false_positive`.
    pub label: &'static str,
}

/// The answer to a report: one label per reported token, in the report's order (a JSON array,
/// as GitHub expects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenLabels(pub Vec<TokenLabel>);

/// The tokens of a verified report body: a JSON array of objects with a string `token`, at most
/// `MAX_TOKENS_PER_REPORT` of them.
pub fn parse_report(body: &[u8]) -> ApiResult<Vec<ReportedToken>> {
    let invalid = |field: &str| {
        ApiError::validation(
            field,
            "invalid_value",
            "The report must be a JSON array of objects with a string 'token'.",
        )
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let tokens: Vec<ReportedToken> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        invalid(if path == "." { "body" } else { &path })
    })?;
    de.end().map_err(|_| invalid("body"))?;
    if tokens.len() > MAX_TOKENS_PER_REPORT {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("A report may name at most {MAX_TOKENS_PER_REPORT} tokens."),
        )
        .with_details(json!({ "limit": MAX_TOKENS_PER_REPORT, "count": tokens.len() })));
    }
    Ok(tokens)
}

/// Labels every reported token and revokes each active key of ours among them at once, with an
/// `api_key.leaked` event (written by the store with the revocation, only when the key was
/// not revoked yet). A key already revoked or expired is labelled and left alone.
pub async fn report_from_github(
    state: &AppState,
    origin: Origin,
    tokens: Vec<ReportedToken>,
) -> ApiResult<TokenLabels> {
    let now = state.clock.now();
    let mut labels = Vec::with_capacity(tokens.len());
    let (mut ours, mut revoked) = (0usize, 0usize);
    for reported in tokens {
        let key = match keys::parse(&reported.token) {
            // Shape and checksum first: no database work for a string that cannot be a key.
            Some(well_formed) => state.store.find_api_key_by_hash(&well_formed.hash).await?,
            None => None,
        };
        if let Some(key) = &key {
            ours += 1;
            if key.status(now) == "active" {
                let draft = AuditDraft::new(
                    AuditKind::KeyLeaked,
                    origin.clone(),
                    json!({
                        "url": reported.url.as_deref().filter(|u| !u.is_empty()),
                        "source": reported.source.as_deref().map(str::to_ascii_lowercase),
                        "reporter": "github",
                    }),
                );
                if let Some(done) = state
                    .store
                    .revoke_api_key(None, &key.id, now, &draft)
                    .await?
                {
                    state.keys.evict(&done.id);
                    revoked += 1;
                    tracing::warn!(
                        key_id = %done.id,
                        user_id = %done.user_id,
                        "API key reported leaked by GitHub secret scanning: revoked"
                    );
                }
            } else {
                tracing::info!(
                    key_id = %key.id,
                    status = key.status(now),
                    "API key reported leaked by GitHub secret scanning: not active, left alone"
                );
            }
        }
        labels.push(TokenLabel {
            token_hash: hex_sha256(reported.token.as_bytes()),
            token_type: reported.kind.unwrap_or_default(),
            label: if key.is_some() {
                "true_positive"
            } else {
                "false_positive"
            },
        });
    }
    tracing::info!(
        reported = labels.len(),
        ours,
        revoked,
        "GitHub secret scanning report handled"
    );
    Ok(TokenLabels(labels))
}

fn hex_sha256(bytes: &[u8]) -> String {
    soku_media::ingest::hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(body: &str) -> String {
        let e = parse_report(body.as_bytes()).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationError, "{body}");
        e.details().unwrap()["field"].as_str().unwrap().to_owned()
    }

    #[test]
    fn reads_githubs_reports_leniently() {
        let tokens = parse_report(
            br#"[{"token":"a","type":"soku_api_key","url":"","source":"Commit","extra":1},{"token":"b"}]"#,
        )
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].kind.as_deref(), Some("soku_api_key"));
        assert_eq!(tokens[1].url, None);
        assert!(parse_report(b"[]").unwrap().is_empty());
    }

    #[test]
    fn refuses_anything_but_an_array_of_objects_with_a_string_token() {
        assert_eq!(field(r#"{"token":"a"}"#), "body");
        assert_eq!(field(r#"[{"token":"a"},{"type":"x"}]"#), "[1]");
        assert_eq!(field(r#"[{"token":5}]"#), "[0].token");
        assert_eq!(field(r#"["a"]"#), "[0]");
        assert_eq!(field(r#"[{"token":"a"}] x"#), "body");
        assert_eq!(field(""), "body");
    }

    #[test]
    fn refuses_more_than_the_limit() {
        let one = r#"{"token":"x"}"#;
        let at_limit = format!("[{}]", vec![one; MAX_TOKENS_PER_REPORT].join(","));
        assert_eq!(parse_report(at_limit.as_bytes()).unwrap().len(), 1000);
        let over = format!("[{}]", vec![one; MAX_TOKENS_PER_REPORT + 1].join(","));
        let e = parse_report(over.as_bytes()).unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn hashes_as_hex() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
