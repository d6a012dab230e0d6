//! Which account each target publishes to (spec 6.1, account resolution).

use crate::keys::KeyMode;
use crate::platform::Platform;
use crate::posts::{TargetRequest, TargetText};
use crate::queue::Account;
use serde_json::{Value, json};

/// A target bound to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub platform: Platform,
    /// Our id of the connected account; `None` for simulated accounts.
    pub account_ref: Option<String>,
    /// The platform's account id.
    pub account_id: String,
    pub field: String,
    /// The target's own text (spec 8.2), when it has one.
    pub text: Option<TargetText>,
}

/// Why a target has no account: 400 `missing_account`, or a duplicate target (400
/// `validation_error`).
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    MissingAccount { message: String, details: Value },
    Duplicate { field: String, message: String },
}

/// The simulated account of a platform in test mode.
pub fn test_account_id(platform: Platform) -> String {
    format!("test_{}", platform.as_str())
}

pub fn resolve_targets(
    targets: &[TargetRequest],
    mode: KeyMode,
    accounts: &[Account],
) -> Result<Vec<ResolvedTarget>, ResolveError> {
    let mut out: Vec<ResolvedTarget> = Vec::with_capacity(targets.len());
    for t in targets {
        let name = t.platform.display_name();
        let missing = |reason: &str, message: String| ResolveError::MissingAccount {
            message,
            details: json!({ "field": t.field, "platform": t.platform.as_str(), "reason": reason }),
        };
        let resolved = match mode {
            KeyMode::Test => {
                let simulated = test_account_id(t.platform);
                match &t.account_id {
                    Some(id) if *id != simulated => {
                        return Err(missing(
                            "not_found",
                            format!("In test mode the only {name} account is '{simulated}'."),
                        ));
                    }
                    _ => ResolvedTarget {
                        platform: t.platform,
                        account_ref: None,
                        account_id: simulated,
                        field: t.field.clone(),
                        text: t.text.clone(),
                    },
                }
            }
            KeyMode::Live => {
                let mine: Vec<&Account> = accounts
                    .iter()
                    .filter(|a| a.platform == t.platform)
                    .collect();
                let chosen = match &t.account_id {
                    Some(id) => mine.iter().find(|a| a.account_id == *id).copied().ok_or_else(|| {
                        missing("not_found", format!("No connected {name} account has the accountId '{id}'."))
                    })?,
                    None => match mine.as_slice() {
                        [] => return Err(missing("none", format!("No {name} account is connected. Connect one first."))),
                        [only] => *only,
                        several => several.iter().find(|a| a.is_default).copied().ok_or_else(|| {
                            missing(
                                "ambiguous",
                                format!(
                                    "{} {name} accounts are connected and none is the default: name one with {{\"platform\": \"{}\", \"accountId\": ...}}.",
                                    several.len(),
                                    t.platform.as_str()
                                ),
                            )
                        })?,
                    },
                };
                ResolvedTarget {
                    platform: t.platform,
                    account_ref: Some(chosen.id.clone()),
                    account_id: chosen.account_id.clone(),
                    field: t.field.clone(),
                    text: t.text.clone(),
                }
            }
        };
        if out
            .iter()
            .any(|o| o.platform == resolved.platform && o.account_id == resolved.account_id)
        {
            return Err(ResolveError::Duplicate {
                field: t.field.clone(),
                message: format!(
                    "The {name} account '{}' is targeted twice in one post.",
                    resolved.account_id
                ),
            });
        }
        out.push(resolved);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::AccountStatus;
    use chrono::Utc;

    fn account(id: &str, platform: Platform, account_id: &str, default: bool) -> Account {
        Account {
            id: id.into(),
            user_id: "u".into(),
            platform,
            account_id: account_id.into(),
            display_name: None,
            username: None,
            status: AccountStatus::Active,
            is_default: default,
            token_expires_at: None,
            created_at: Utc::now(),
            meta: serde_json::json!({}),
        }
    }

    fn req(platform: Platform, account_id: Option<&str>) -> TargetRequest {
        TargetRequest {
            platform,
            account_id: account_id.map(Into::into),
            field: "post.content.platform[0]".into(),
            text: None,
        }
    }

    fn reason(e: ResolveError) -> String {
        match e {
            ResolveError::MissingAccount { details, .. } => {
                details["reason"].as_str().unwrap().to_owned()
            }
            ResolveError::Duplicate { .. } => "duplicate".into(),
        }
    }

    #[test]
    fn live_resolution() {
        let accounts = vec![
            account("a1", Platform::X, "x1", false),
            account("a2", Platform::Threads, "t1", false),
            account("a3", Platform::Threads, "t2", false),
        ];
        let r = resolve_targets(&[req(Platform::X, None)], KeyMode::Live, &accounts).unwrap();
        assert_eq!(
            (r[0].account_ref.as_deref(), r[0].account_id.as_str()),
            (Some("a1"), "x1")
        );
        let r = resolve_targets(
            &[req(Platform::Threads, Some("t2"))],
            KeyMode::Live,
            &accounts,
        )
        .unwrap();
        assert_eq!(r[0].account_ref.as_deref(), Some("a3"));
        assert_eq!(
            reason(
                resolve_targets(&[req(Platform::Threads, None)], KeyMode::Live, &accounts)
                    .unwrap_err()
            ),
            "ambiguous"
        );
        assert_eq!(
            reason(
                resolve_targets(&[req(Platform::Linkedin, None)], KeyMode::Live, &accounts)
                    .unwrap_err()
            ),
            "none"
        );
        assert_eq!(
            reason(
                resolve_targets(
                    &[req(Platform::X, Some("someone-elses"))],
                    KeyMode::Live,
                    &accounts
                )
                .unwrap_err()
            ),
            "not_found"
        );
        assert_eq!(
            reason(
                resolve_targets(
                    &[req(Platform::X, None), req(Platform::X, Some("x1"))],
                    KeyMode::Live,
                    &accounts
                )
                .unwrap_err()
            ),
            "duplicate"
        );
        let mut with_default = accounts.clone();
        with_default[2].is_default = true;
        let r = resolve_targets(
            &[req(Platform::Threads, None)],
            KeyMode::Live,
            &with_default,
        )
        .unwrap();
        assert_eq!(r[0].account_id, "t2");
    }

    #[test]
    fn test_mode_has_one_simulated_account_per_platform() {
        let r = resolve_targets(&[req(Platform::Tiktok, None)], KeyMode::Test, &[]).unwrap();
        assert_eq!(
            (r[0].account_ref.as_deref(), r[0].account_id.as_str()),
            (None, "test_tiktok")
        );
        assert!(
            resolve_targets(
                &[req(Platform::Tiktok, Some("test_tiktok"))],
                KeyMode::Test,
                &[]
            )
            .is_ok()
        );
        assert_eq!(
            reason(
                resolve_targets(&[req(Platform::Tiktok, Some("real"))], KeyMode::Test, &[])
                    .unwrap_err()
            ),
            "not_found"
        );
    }
}
