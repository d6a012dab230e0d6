//! API keys: issued, found by hash with the user they grant, listed, revoked.

use super::Backend;
use super::rows::{KEY_COLUMNS, KEY_COLUMNS_RETURNING, ReadRow, e, quota, subscription};
use chrono::{DateTime, Utc};
use soku_core::keys::KeyHash;
use soku_core::model::{ApiKey, KeyGrant, NewApiKey};
use soku_core::store::StoreResult;
use soku_core::time::to_millis;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Keys<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Keys<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<Vec<u8>>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: ColumnIndex<DB::Row>,
{
    pub async fn insert(&self, key: &NewApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, mode, key_hash, preview, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&key.id)
        .bind(&key.user_id)
        .bind(&key.name)
        .bind(key.mode.as_str())
        .bind(&key.hash.0[..])
        .bind(&key.preview)
        .bind(to_millis(key.created_at))
        .bind(key.expires_at.map(to_millis))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }

    /// The live key with this hash, with its user and what limits them, in one query.
    pub async fn find_grant(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<KeyGrant>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS}, u.id AS u_id, u.email AS u_email, u.role AS u_role, \
             u.created_at AS u_created_at, s.status, s.current_period_end, \
             r.rate AS rl_rate, r.burst AS rl_burst \
             FROM api_keys k JOIN users u ON u.id = k.user_id \
             LEFT JOIN subscriptions s ON s.user_id = k.user_id \
             LEFT JOIN rate_limit_overrides r ON r.user_id = k.user_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL \
             AND (k.expires_at IS NULL OR k.expires_at > $2)"
        );
        let row = sqlx::query(&sql)
            .bind(&hash.0[..])
            .bind(to_millis(now))
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(KeyGrant {
            key: r.api_key()?,
            user: r.user("u_")?,
            subscription: subscription(
                r.try_get("status").map_err(e)?,
                r.try_get("current_period_end").map_err(e)?,
            )?,
            rate_limit: quota(
                r.try_get("rl_rate").map_err(e)?,
                r.try_get("rl_burst").map_err(e)?,
            ),
        }))
    }

    pub async fn list(&self, user_id: &str) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.user_id = $1 \
             ORDER BY k.created_at DESC, k.id DESC"
        );
        let all = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        all.iter().map(ReadRow::api_key).collect()
    }

    pub async fn get(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.as_ref().map(ReadRow::api_key).transpose()
    }

    /// Revokes the key (of `user_id`'s, when given); a revoked key keeps its first time.
    pub async fn revoke(
        &self,
        user_id: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ApiKey>> {
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) \
             RETURNING {KEY_COLUMNS_RETURNING}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(user_id)
            .bind(to_millis(now))
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.as_ref().map(ReadRow::api_key).transpose()
    }

    /// Records a use, at most once a minute.
    pub async fn touch(&self, id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let now = to_millis(now);
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - 60_000)
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }
}
