//! Operator commands (`soku admin ...`). Each opens the same database as the server and works
//! while servers run on it. Results go to stdout, errors to stderr with a non-zero exit.

use crate::auth::tokens::BuiltinIssuer;
use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use serde_json::json;
use soku_core::audit::{AuditDraft, AuditKind, Origin};
use soku_core::keys::KeyMode;
use soku_core::model::{Subscription, SubscriptionStatus, new_api_key, normalize_key_name};
use soku_core::platform::Platform;
use soku_core::queue::{Account, AccountStatus, NewAccount};
use soku_core::ratelimit::Quota;
use soku_core::scopes::ScopeSet;
use soku_core::time::{parse_rfc3339, rfc3339_millis};
use soku_core::{Secret, Store, StoreError};
use soku_engine::secrets::SecretBox;
use std::sync::Arc;

mod users;
pub use users::UserCommand;

/// The setting where `soku serve` records its public URL, so that `soku admin token` issues
/// tokens for the server running on this database.
pub const PUBLIC_URL_SETTING: &str = "public_url";

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Subscriptions.
    Subscription {
        #[command(subcommand)]
        command: SubscriptionCommand,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Connected accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Per-user rate-limit overrides.
    Ratelimit {
        #[command(subcommand)]
        command: RatelimitCommand,
    },
    /// Print an ID token of the built-in issuer for a user.
    Token {
        #[arg(long)]
        uid: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The server's public URL (the token's `iss`); default: what the server recorded.
        #[arg(long, env = "SOKU_PUBLIC_URL")]
        public_url: Option<String>,
        /// Where the server listens: the issuer is `http://` this address when no public URL is
        /// given or recorded.
        #[arg(long, env = "SOKU_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionCommand {
    /// Set a user's subscription.
    Set {
        #[arg(long)]
        uid: String,
        /// trialing, active, canceled, expired, past_due or unpaid.
        #[arg(long)]
        status: String,
        /// RFC 3339; default 30 days from now.
        #[arg(long)]
        period_end: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Connect an account by hand (OAuth connection comes with the connectors). Tokens are
    /// encrypted at rest with SOKU_SECRET_KEY (or the key generated on first start).
    Add {
        #[arg(long)]
        uid: String,
        #[arg(long)]
        platform: String,
        #[arg(long)]
        account_id: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        access_token: Option<Secret<String>>,
        #[arg(long)]
        refresh_token: Option<Secret<String>>,
        /// RFC 3339 expiry of the access token.
        #[arg(long)]
        token_expires_at: Option<String>,
        /// The account string targets of this platform use when the user has several.
        #[arg(long)]
        default: bool,
        /// The key that encrypts account tokens: the server's (32 bytes, base64). Default: the
        /// one generated on first start and kept in the database.
        #[arg(long, env = "SOKU_SECRET_KEY", hide_env_values = true)]
        secret_key: Option<Secret<String>>,
    },
    /// List a user's accounts (never their tokens).
    List {
        #[arg(long)]
        uid: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a key and print it, once, alone on its line.
    Create {
        #[arg(long)]
        uid: String,
        #[arg(long)]
        name: Option<String>,
        /// An `sk_test_` key (test mode).
        #[arg(long)]
        test: bool,
        /// Restrict the key to this scope (repeatable; spec 4.1). None: full access.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Allow the key only from this address or CIDR (repeatable, up to 20). None: anywhere.
        #[arg(long = "allow-ip")]
        allowed_ips: Vec<String>,
        /// Expire the key this many days from now (1 to 730).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a user's keys (never the keys themselves).
    List {
        #[arg(long)]
        uid: String,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(long)]
        id: String,
    },
    /// Say whether a string is a well-formed key of this server's format (prefix, length,
    /// alphabet, checksum) and its mode, without a database: whether it exists is not asked.
    /// Exit status 0 when well formed, 1 otherwise. The key is never printed back in full.
    Check {
        /// The string to check; `-` reads it from the first line of standard input (keeps it
        /// out of the shell's history and the process list).
        key: Secret<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RatelimitCommand {
    /// Give a user their own rate and burst instead of their tier's (effective within 2 s).
    Set {
        #[arg(long)]
        uid: String,
        /// Requests per 60 seconds, 1 to 1000000.
        #[arg(long, allow_negative_numbers = true)]
        rate: i64,
        /// Extra requests allowed at once on top of the rate, 0 to 10000000.
        #[arg(long, allow_negative_numbers = true)]
        burst: i64,
    },
    /// Remove a user's override: their tier's quota applies again.
    Clear {
        #[arg(long)]
        uid: String,
    },
}

/// An event of a change the operator made from the command line.
fn by_operator(kind: AuditKind) -> AuditDraft {
    AuditDraft::new(kind, Origin::default(), json!({ "by": "operator" }))
}

pub async fn run(database_url: &str, command: AdminCommand) -> Result<(), String> {
    // The one command that needs no database: it must work where none is reachable.
    if let AdminCommand::Key {
        command: KeyCommand::Check { key },
    } = &command
    {
        let key = read_key(key)?;
        println!("{}", check_key(&key)?);
        return Ok(());
    }
    let store = soku_store::open(database_url)
        .await
        .map_err(|e| format!("cannot open {}: {e}", soku_store::redact_url(database_url)))?;
    let out = execute(store, command, Utc::now()).await?;
    println!("{out}");
    Ok(())
}

/// Runs one command and returns what it prints.
pub async fn execute(
    store: Arc<dyn Store>,
    command: AdminCommand,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let db = |e: StoreError| format!("database error: {e}");
    match command {
        AdminCommand::User { command } => users::execute(&store, command, now).await,
        AdminCommand::Subscription {
            command:
                SubscriptionCommand::Set {
                    uid,
                    status,
                    period_end,
                },
        } => {
            let status = SubscriptionStatus::parse(&status).ok_or_else(|| {
                format!("unknown status {status:?}: use trialing, active, canceled, expired, past_due or unpaid")
            })?;
            let end = match period_end {
                Some(text) => parse_rfc3339(text.trim()).ok_or_else(|| {
                    format!(
                        "--period-end {text:?} is not an RFC 3339 time such as 2031-01-02T03:04:05Z \
                         (a leap second is refused)"
                    )
                })?,
                None => now + Duration::days(30),
            };
            let sub = Subscription {
                status,
                current_period_end: end,
            };
            if store.set_subscription(&uid, &sub, now).await.map_err(db)? {
                Ok(format!(
                    "{uid}: {} until {}",
                    status.as_str(),
                    rfc3339_millis(end)
                ))
            } else {
                Err(format!("no user with id {uid:?}"))
            }
        }
        AdminCommand::Key {
            command:
                KeyCommand::Create {
                    uid,
                    name,
                    test,
                    scopes,
                    allowed_ips,
                    expires_in_days,
                },
        } => {
            if store.get_user(&uid).await.map_err(db)?.is_none() {
                return Err(format!("no user with id {uid:?}"));
            }
            let name = normalize_key_name(name.as_deref())
                .map_err(|_| "--name must be 1 to 100 characters after trimming".to_owned())?;
            let mode = if test { KeyMode::Test } else { KeyMode::Live };
            let (mut record, generated) = new_api_key(&uid, name, mode, now);
            if !scopes.is_empty() {
                record.scopes = Some(
                    ScopeSet::parse(scopes.iter().map(String::as_str))
                        .map_err(|unknown| format!("unknown scope {unknown:?}"))?
                        .ok_or("no scope given")?,
                );
            }
            record.allowed_ips = crate::service::keys::allowed_ips(&allowed_ips)
                .map_err(|e| format!("--allow-ip: {}", e.message()))?;
            if let Some(days) = expires_in_days {
                if !(1..=730).contains(&days) {
                    return Err("--expires-in-days must be 1 to 730".into());
                }
                record.expires_at = Some(now + Duration::days(days.into()));
            }
            let event = record.created_event(Origin::default(), json!({ "by": "operator" }));
            store.insert_api_key(&record, &event).await.map_err(db)?;
            Ok(generated.secret)
        }
        AdminCommand::Key {
            command: KeyCommand::List { uid },
        } => {
            let keys = store.list_api_keys(&uid).await.map_err(db)?;
            let mut out = String::from("ID\tNAME\tPREVIEW\tMODE\tSTATUS\tCREATED\tLAST USED");
            for k in keys {
                out.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.name.as_deref().unwrap_or("-"),
                    k.preview,
                    k.mode.as_str(),
                    k.status(now),
                    rfc3339_millis(k.created_at),
                    k.last_used_at
                        .map(rfc3339_millis)
                        .unwrap_or_else(|| "-".into()),
                ));
            }
            Ok(out)
        }
        AdminCommand::Key {
            command: KeyCommand::Check { key },
        } => check_key(&read_key(&key)?),
        AdminCommand::Key {
            command: KeyCommand::Revoke { id },
        } => match store
            .revoke_api_key(None, &id, now, &by_operator(AuditKind::KeyRevoked))
            .await
            .map_err(db)?
        {
            Some(k) => Ok(format!("{} revoked", k.id)),
            None => Err(format!("no API key with id {id:?}")),
        },
        AdminCommand::Account {
            command:
                AccountCommand::Add {
                    uid,
                    platform,
                    account_id,
                    username,
                    display_name,
                    access_token,
                    refresh_token,
                    token_expires_at,
                    default,
                    secret_key,
                },
        } => {
            if store.get_user(&uid).await.map_err(db)?.is_none() {
                return Err(format!("no user with id {uid:?}"));
            }
            let platform = Platform::parse(&platform)
                .ok_or_else(|| format!("unknown platform {platform:?}"))?;
            let account_id = account_id.trim().to_owned();
            if account_id.is_empty() || account_id.len() > 255 {
                return Err("--account-id must be 1 to 255 characters".into());
            }
            let token_expires_at = match token_expires_at {
                Some(t) => Some(parse_rfc3339(t.trim()).ok_or_else(|| {
                    format!(
                        "--token-expires-at {t:?} is not an RFC 3339 time such as \
                         2031-01-02T03:04:05Z (a leap second is refused)"
                    )
                })?),
                None => None,
            };
            let secrets = SecretBox::load(
                store.as_ref(),
                secret_key.as_ref().map(|k| k.expose().as_str()),
            )
            .await?;
            let id = soku_core::keys::random_id("acc_", 20);
            let new = NewAccount {
                account: Account {
                    id: id.clone(),
                    user_id: uid,
                    platform,
                    account_id,
                    display_name,
                    username,
                    status: AccountStatus::Active,
                    is_default: default,
                    token_expires_at,
                    created_at: now,
                    meta: serde_json::json!({}),
                },
                access_token: access_token.as_ref().map(|t| secrets.seal(t.expose())),
                refresh_token: refresh_token.as_ref().map(|t| secrets.seal(t.expose())),
            };
            match store.insert_account(&new).await {
                Ok(()) => Ok(id),
                Err(StoreError::Conflict) => Err("that account is connected already".into()),
                Err(e) => Err(db(e)),
            }
        }
        AdminCommand::Account {
            command: AccountCommand::List { uid },
        } => {
            let accounts = store.list_accounts(&uid).await.map_err(db)?;
            let mut out = String::from("ID\tPLATFORM\tACCOUNT ID\tUSERNAME\tSTATUS\tDEFAULT");
            for a in accounts {
                out.push_str(&format!(
                    "\n{}\t{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.platform,
                    a.account_id,
                    a.username.as_deref().unwrap_or("-"),
                    a.status.as_str(),
                    if a.is_default { "yes" } else { "no" },
                ));
            }
            Ok(out)
        }
        AdminCommand::Ratelimit {
            command: RatelimitCommand::Set { uid, rate, burst },
        } => {
            let quota = Quota::validate(rate, burst)?;
            if store
                .set_rate_limit_override(&uid, quota, now)
                .await
                .map_err(db)?
            {
                Ok(format!(
                    "{uid}: {} requests per 60 s, burst {} (instead of the tier's)",
                    quota.rate, quota.burst
                ))
            } else {
                Err(format!("no user with id {uid:?}"))
            }
        }
        AdminCommand::Ratelimit {
            command: RatelimitCommand::Clear { uid },
        } => {
            if store.get_user(&uid).await.map_err(db)?.is_none() {
                return Err(format!("no user with id {uid:?}"));
            }
            if store.clear_rate_limit_override(&uid).await.map_err(db)? {
                Ok(format!("{uid}: override removed; the tier's quota applies"))
            } else {
                Ok(format!("{uid} had no override; the tier's quota applies"))
            }
        }
        AdminCommand::Token {
            uid,
            ttl,
            public_url,
            listen,
        } => {
            if ttl == 0 || ttl > 30 * 24 * 3600 {
                return Err("--ttl must be between 1 and 2592000 seconds".into());
            }
            let user = store
                .get_user(&uid)
                .await
                .map_err(db)?
                .ok_or_else(|| format!("no user with id {uid:?}"))?;
            let issuer = match public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => match store.get_setting(PUBLIC_URL_SETTING).await.map_err(db)? {
                    Some(url) => url,
                    None => format!("http://{listen}"),
                },
            };
            let issuer = BuiltinIssuer::load_or_create(store.as_ref(), issuer, now)
                .await
                .map_err(db)?;
            issuer.issue(
                &user.id,
                user.email.as_deref(),
                now,
                std::time::Duration::from_secs(ttl),
            )
        }
    }
}

/// The argument of `soku admin key check`, or the first line of standard input for `-`.
fn read_key(arg: &Secret<String>) -> Result<String, String> {
    if arg.expose() != "-" {
        return Ok(arg.expose().clone());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the key: {e}"))?;
    Ok(line)
}

/// `soku admin key check`: whether `candidate` (surrounding whitespace ignored) is a
/// well-formed key, by the same check the server makes before any database work. What it
/// prints never holds the key: its preview when well formed, the failed check otherwise.
pub fn check_key(candidate: &str) -> Result<String, String> {
    let candidate = candidate.trim();
    match soku_core::keys::check(candidate) {
        Ok(key) => Ok(format!(
            "{}: a well-formed {} key (prefix, length, alphabet and checksum are right; whether \
             it exists and is active is not checked)",
            soku_core::keys::preview(candidate),
            key.mode.as_str()
        )),
        Err(why) => Err(format!(
            "not a well-formed Soku API key: {}",
            why.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_check_says_well_formed_or_why_not_without_echoing_the_key() {
        let key = soku_core::keys::generate(KeyMode::Test).secret;
        let out = check_key(&format!("  {key}\n")).unwrap();
        assert!(out.starts_with(&soku_core::keys::preview(&key)), "{out}");
        assert!(out.contains("well-formed test key"), "{out}");
        assert!(!out.contains(&key[8..]), "the key is echoed: {out}");

        let mut wrong_sum = key.clone();
        wrong_sum.replace_range(47.., if key.ends_with('a') { "b" } else { "a" });
        for (candidate, why) in [
            (wrong_sum.as_str(), "checksum"),
            (&key[..40], "48 ASCII characters"),
            (
                key.replacen("sk_test_", "sk_prod_", 1).as_str(),
                "sk_live_ or sk_test_",
            ),
            (
                key.replacen("sk_test_", "sk_test-", 1).as_str(),
                "sk_live_ or sk_test_",
            ),
            (
                format!("{}!{}", &key[..20], &key[21..]).as_str(),
                "0-9A-Za-z",
            ),
        ] {
            let err = check_key(candidate).unwrap_err();
            assert!(err.contains(why), "{err}");
            assert!(
                !err.contains(&candidate[8..]),
                "the candidate is echoed: {err}"
            );
        }
    }
}
