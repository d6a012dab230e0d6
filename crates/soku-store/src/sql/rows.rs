//! From rows to the domain's types, and the column lists the mappers expect.

use soku_core::StoreError;
use soku_core::keys::KeyMode;
use soku_core::model::{ApiKey, Role, Subscription, SubscriptionStatus, User};
use soku_core::platform::Platform;
use soku_core::posts::{SubmissionStatus, TargetStatus};
use soku_core::queue::{
    Account, AccountStatus, SandboxPost, SubmissionRecord, TargetError, TargetRecord,
};
use soku_core::ratelimit::{MAX_BURST, MAX_RATE, Quota};
use soku_core::scopes::ScopeSet;
use soku_core::store::StoreResult;
use soku_core::time::from_millis;
use sqlx::{ColumnIndex, Decode, Row, Type};

/// Columns of `api_keys` (alias `k`), in [`ReadRow::api_key`]'s order.
pub const KEY_COLUMNS: &str = "k.id, k.user_id, k.name, k.mode, k.preview, k.created_at, \
     k.last_used_at, k.revoked_at, k.expires_at, k.last_used_ip, k.scopes, k.allowed_ips, \
     k.replaced_by";

/// The same columns unqualified, for `RETURNING` (SQLite does not accept the alias there).
pub const KEY_COLUMNS_RETURNING: &str = "id, user_id, name, mode, preview, created_at, \
     last_used_at, revoked_at, expires_at, last_used_ip, scopes, allowed_ips, replaced_by";

/// The stored form of a key's allowed addresses: CIDRs separated by spaces; `None` for
/// anywhere.
pub fn allowed_ips_text(nets: &[ipnet::IpNet]) -> Option<String> {
    (!nets.is_empty()).then(|| {
        nets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Columns of `targets` (alias `t`), in [`ReadRow::target`]'s order.
pub const TARGET_COLUMNS: &str = "t.id, t.submission_id, t.position, t.platform, \
     t.account_ref, t.account_id, t.status, t.attempts, t.platform_post_id, \
     t.platform_post_url, t.error_code, t.error_message, t.platform_error, t.published_at, \
     t.due_at, t.text";

/// How many columns [`TARGET_COLUMNS`] has.
pub const TARGET_COLUMN_COUNT: usize = 16;

/// Columns of `submissions` (alias `s`), in [`ReadRow::submission`]'s order.
pub const SUBMISSION_COLUMNS: &str =
    "s.id, s.user_id, s.mode, s.status, s.post_json, s.scheduled_at, s.created_at";

/// Columns of `accounts`, in [`ReadRow::account`]'s order.
pub const ACCOUNT_COLUMNS: &str = "id, user_id, platform, account_id, display_name, username, \
     status, is_default, token_expires_at, created_at, meta_json";

/// Columns of `sandbox_posts`, in [`ReadRow::sandbox`]'s order.
pub const SANDBOX_COLUMNS: &str = "id, user_id, platform, marker, submission_id, target_id, \
     text, media_json, received_at, create_count, options_json";

/// The error for a value the schema allows but the code does not know.
pub fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("unexpected value in column {what}"))
}

pub fn platform(s: &str) -> StoreResult<Platform> {
    Platform::parse(s).ok_or_else(|| corrupt("platform"))
}

pub fn mode(s: &str) -> StoreResult<KeyMode> {
    KeyMode::parse(s).ok_or_else(|| corrupt("mode"))
}

pub fn role(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| corrupt("users.role"))
}

/// An override from its two nullable columns (a LEFT JOIN that found nothing: None).
pub fn quota(rate: Option<i64>, burst: Option<i64>) -> Option<Quota> {
    match (rate, burst) {
        (Some(rate), Some(burst)) => Some(Quota::new(
            rate.clamp(1, i64::from(MAX_RATE)) as u32,
            burst.clamp(0, i64::from(MAX_BURST)) as u32,
        )),
        _ => None,
    }
}

/// A subscription from its two nullable columns (a LEFT JOIN that found nothing: None).
pub fn subscription(status: Option<String>, end: Option<i64>) -> StoreResult<Option<Subscription>> {
    match (status, end) {
        (Some(status), Some(end)) => Ok(Some(Subscription {
            status: SubscriptionStatus::parse(&status)
                .ok_or_else(|| corrupt("subscriptions.status"))?,
            current_period_end: from_millis(end),
        })),
        _ => Ok(None),
    }
}

/// The mappers, on any driver's row.
pub trait ReadRow {
    /// `id, email, role, created_at`, each name after `prefix`.
    fn user(&self, prefix: &str) -> StoreResult<User>;
    /// [`KEY_COLUMNS`] first.
    fn api_key(&self) -> StoreResult<ApiKey>;
    /// [`TARGET_COLUMNS`] from column `o`.
    fn target(&self, o: usize) -> StoreResult<TargetRecord>;
    /// [`SUBMISSION_COLUMNS`] first; the targets are left empty.
    fn submission(&self) -> StoreResult<SubmissionRecord>;
    /// [`ACCOUNT_COLUMNS`] first.
    fn account(&self) -> StoreResult<Account>;
    /// [`SANDBOX_COLUMNS`].
    fn sandbox(&self) -> StoreResult<SandboxPost>;
}

impl<R> ReadRow for R
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    fn user(&self, prefix: &str) -> StoreResult<User> {
        let col = |c: &str| format!("{prefix}{c}");
        let role_s: String = self.try_get(col("role").as_str()).map_err(e)?;
        Ok(User {
            id: self.try_get(col("id").as_str()).map_err(e)?,
            email: self.try_get(col("email").as_str()).map_err(e)?,
            role: role(&role_s)?,
            created_at: from_millis(self.try_get(col("created_at").as_str()).map_err(e)?),
        })
    }

    fn api_key(&self) -> StoreResult<ApiKey> {
        let mode: String = self.try_get(3).map_err(e)?;
        Ok(ApiKey {
            id: self.try_get(0).map_err(e)?,
            user_id: self.try_get(1).map_err(e)?,
            name: self.try_get(2).map_err(e)?,
            mode: KeyMode::parse(&mode).ok_or_else(|| corrupt("api_keys.mode"))?,
            preview: self.try_get(4).map_err(e)?,
            created_at: from_millis(self.try_get(5).map_err(e)?),
            last_used_at: millis(self, 6)?,
            revoked_at: millis(self, 7)?,
            expires_at: millis(self, 8)?,
            last_used_ip: self.try_get(9).map_err(e)?,
            scopes: match self.try_get::<Option<String>, _>(10).map_err(e)? {
                Some(text) => {
                    Some(ScopeSet::from_text(&text).ok_or_else(|| corrupt("api_keys.scopes"))?)
                }
                None => None,
            },
            allowed_ips: match self.try_get::<Option<String>, _>(11).map_err(e)? {
                Some(text) => text
                    .split_ascii_whitespace()
                    .map(|net| net.parse().map_err(|_| corrupt("api_keys.allowed_ips")))
                    .collect::<StoreResult<_>>()?,
                None => Vec::new(),
            },
            replaced_by: self.try_get(12).map_err(e)?,
        })
    }

    fn target(&self, o: usize) -> StoreResult<TargetRecord> {
        let platform_s: String = self.try_get(o + 3).map_err(e)?;
        let status_s: String = self.try_get(o + 6).map_err(e)?;
        let code: Option<String> = self.try_get(o + 10).map_err(e)?;
        let error = match code {
            Some(code) => Some(TargetError {
                code,
                message: self
                    .try_get::<Option<String>, _>(o + 11)
                    .map_err(e)?
                    .unwrap_or_default(),
                platform_error: self.try_get(o + 12).map_err(e)?,
            }),
            None => None,
        };
        Ok(TargetRecord {
            id: self.try_get(o).map_err(e)?,
            submission_id: self.try_get(o + 1).map_err(e)?,
            position: self.try_get(o + 2).map_err(e)?,
            platform: platform(&platform_s)?,
            account_ref: self.try_get(o + 4).map_err(e)?,
            account_id: self.try_get(o + 5).map_err(e)?,
            status: TargetStatus::parse(&status_s).ok_or_else(|| corrupt("targets.status"))?,
            attempts: self.try_get(o + 7).map_err(e)?,
            platform_post_id: self.try_get(o + 8).map_err(e)?,
            platform_post_url: self.try_get(o + 9).map_err(e)?,
            error,
            published_at: millis(self, o + 13)?,
            due_at: from_millis(self.try_get(o + 14).map_err(e)?),
            text: self.try_get(o + 15).map_err(e)?,
        })
    }

    fn submission(&self) -> StoreResult<SubmissionRecord> {
        let mode_s: String = self.try_get(2).map_err(e)?;
        let status_s: String = self.try_get(3).map_err(e)?;
        Ok(SubmissionRecord {
            id: self.try_get(0).map_err(e)?,
            user_id: self.try_get(1).map_err(e)?,
            mode: mode(&mode_s)?,
            status: SubmissionStatus::parse(&status_s)
                .ok_or_else(|| corrupt("submissions.status"))?,
            post_json: self.try_get(4).map_err(e)?,
            scheduled_at: millis(self, 5)?,
            created_at: from_millis(self.try_get(6).map_err(e)?),
            targets: Vec::new(),
        })
    }

    fn account(&self) -> StoreResult<Account> {
        let platform_s: String = self.try_get(2).map_err(e)?;
        let status_s: String = self.try_get(6).map_err(e)?;
        Ok(Account {
            id: self.try_get(0).map_err(e)?,
            user_id: self.try_get(1).map_err(e)?,
            platform: platform(&platform_s)?,
            account_id: self.try_get(3).map_err(e)?,
            display_name: self.try_get(4).map_err(e)?,
            username: self.try_get(5).map_err(e)?,
            status: AccountStatus::parse(&status_s).ok_or_else(|| corrupt("accounts.status"))?,
            is_default: self.try_get::<i64, _>(7).map_err(e)? != 0,
            token_expires_at: millis(self, 8)?,
            created_at: from_millis(self.try_get(9).map_err(e)?),
            meta: serde_json::from_str(&self.try_get::<String, _>(10).map_err(e)?)
                .map_err(|_| corrupt("accounts.meta_json"))?,
        })
    }

    fn sandbox(&self) -> StoreResult<SandboxPost> {
        let platform_s: String = self.try_get(2).map_err(e)?;
        Ok(SandboxPost {
            id: self.try_get(0).map_err(e)?,
            user_id: self.try_get(1).map_err(e)?,
            platform: platform(&platform_s)?,
            marker: self.try_get(3).map_err(e)?,
            submission_id: self.try_get(4).map_err(e)?,
            target_id: self.try_get(5).map_err(e)?,
            text: self.try_get(6).map_err(e)?,
            media_json: self.try_get(7).map_err(e)?,
            received_at: from_millis(self.try_get(8).map_err(e)?),
            create_count: self.try_get(9).map_err(e)?,
            options_json: self.try_get(10).map_err(e)?,
        })
    }
}

/// A nullable time column.
fn millis<R>(r: &R, i: usize) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(r.try_get::<Option<i64>, _>(i).map_err(e)?.map(from_millis))
}

/// Short for [`crate::backend_error`], which every statement's error goes through.
pub fn e(err: sqlx::Error) -> StoreError {
    crate::backend_error(err)
}
