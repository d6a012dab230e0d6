//! Users, their subscriptions, and the rate-limit overrides an admin sets on them.

use super::Backend;
use super::rows::{ReadRow, e, quota, role, subscription};
use chrono::{DateTime, Utc};
use soku_core::StoreError;
use soku_core::model::{RateProfile, Role, Subscription, User};
use soku_core::ratelimit::Quota;
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Users<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Users<'_, DB>
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
    pub async fn create(
        &self,
        id: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        let row = sqlx::query(
            "INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, 'user', $3) \
             RETURNING id, email, role, created_at",
        )
        .bind(id)
        .bind(email)
        .bind(to_millis(now))
        .fetch_one(self.0)
        .await
        .map_err(e)?;
        row.user("")
    }

    pub async fn ensure(
        &self,
        id: &str,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        sqlx::query(
            "INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, 'user', $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(email)
        .bind(to_millis(now))
        .execute(self.0)
        .await
        .map_err(e)?;
        self.get(id)
            .await?
            .ok_or_else(|| StoreError::Backend("user vanished after insert".into()))
    }

    pub async fn get(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query("SELECT id, email, role, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.map(|r| r.user("")).transpose()
    }

    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(hash)
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn with_password(&self, email: &str) -> StoreResult<Vec<(User, String)>> {
        let rows = sqlx::query(
            "SELECT id, email, role, created_at, password_hash FROM users \
             WHERE LOWER(email) = LOWER($1) AND password_hash IS NOT NULL ORDER BY created_at, id",
        )
        .bind(email)
        .fetch_all(self.0)
        .await
        .map_err(e)?;
        rows.iter()
            .map(|r| Ok((r.user("")?, r.try_get("password_hash").map_err(e)?)))
            .collect()
    }

    pub async fn set_role(&self, id: &str, role: Role) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
            .bind(id)
            .bind(role.as_str())
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn set_subscription(
        &self,
        user_id: &str,
        sub: &Subscription,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if self.get(user_id).await?.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO subscriptions (user_id, status, current_period_end, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, \
             current_period_end = excluded.current_period_end, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(sub.status.as_str())
        .bind(to_millis(sub.current_period_end))
        .bind(to_millis(now))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(true)
    }

    pub async fn subscription(&self, user_id: &str) -> StoreResult<Option<Subscription>> {
        let row =
            sqlx::query("SELECT status, current_period_end FROM subscriptions WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(self.0)
                .await
                .map_err(e)?;
        match row {
            None => Ok(None),
            Some(r) => subscription(r.try_get(0).map_err(e)?, r.try_get(1).map_err(e)?),
        }
    }

    pub async fn set_rate_limit_override(
        &self,
        user_id: &str,
        quota: Quota,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if self.get(user_id).await?.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO rate_limit_overrides (user_id, rate, burst, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET rate = excluded.rate, \
             burst = excluded.burst, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(i64::from(quota.rate))
        .bind(i64::from(quota.burst))
        .bind(to_millis(now))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(true)
    }

    pub async fn clear_rate_limit_override(&self, user_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM rate_limit_overrides WHERE user_id = $1")
            .bind(user_id)
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done) > 0)
    }

    pub async fn rate_profile(&self, user_id: &str) -> StoreResult<Option<RateProfile>> {
        let row = sqlx::query(
            "SELECT u.role, s.status, s.current_period_end, r.rate, r.burst, \
             u.tokens_valid_after \
             FROM users u \
             LEFT JOIN subscriptions s ON s.user_id = u.id \
             LEFT JOIN rate_limit_overrides r ON r.user_id = u.id \
             WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.0)
        .await
        .map_err(e)?;
        let Some(r) = row else { return Ok(None) };
        let role_s: String = r.try_get(0).map_err(e)?;
        Ok(Some(RateProfile {
            role: role(&role_s)?,
            subscription: subscription(r.try_get(1).map_err(e)?, r.try_get(2).map_err(e)?)?,
            rate_limit: quota(r.try_get(3).map_err(e)?, r.try_get(4).map_err(e)?),
            tokens_valid_after: r.try_get::<Option<i64>, _>(5).map_err(e)?.map(from_millis),
        }))
    }
}
