//! API keys: issued, found by hash with the user they grant, listed, rotated, changed,
//! revoked, and the addresses each was used from. Each change writes its audit event in the
//! same transaction (`audit::insert_event`).

use super::Backend;
use super::audit::insert_event;
use super::rows::{
    KEY_COLUMNS, KEY_COLUMNS_RETURNING, ReadRow, allowed_ips_text, e, quota, subscription,
};
use chrono::{DateTime, Utc};
use soku_core::audit::{AuditDraft, AuditEvent};
use soku_core::keys::KeyHash;
use soku_core::model::{ApiKey, KeyGrant, KeyUpdate, NewApiKey, Rotation};
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
    pub async fn insert(&self, key: &NewApiKey, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        insert_key(&mut *tx, key).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await.map_err(e)
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

    /// The key with this hash, whatever its status.
    pub async fn by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.key_hash = $1");
        let row = sqlx::query(&sql)
            .bind(&hash.0[..])
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.as_ref().map(ReadRow::api_key).transpose()
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

    /// Revokes the key (of `user_id`'s, when given); a revoked key keeps its first time, and
    /// only the first revocation is recorded.
    pub async fn revoke(
        &self,
        user_id: Option<&str>,
        id: &str,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Option<ApiKey>> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k \
             WHERE k.id = $1 AND (CAST($2 AS TEXT) IS NULL OR k.user_id = $2){}",
            DB::FOR_UPDATE
        );
        let before = sqlx::query(&sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(e)?;
        let Some(before) = before.as_ref().map(ReadRow::api_key).transpose()? else {
            tx.rollback().await.map_err(e)?;
            return Ok(None);
        };
        if before.revoked_at.is_some() {
            tx.rollback().await.map_err(e)?;
            return Ok(Some(before));
        }
        let sql = format!(
            "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 RETURNING {KEY_COLUMNS_RETURNING}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(to_millis(now))
            .fetch_one(&mut *tx)
            .await
            .map_err(e)?;
        let revoked = row.api_key()?;
        insert_event(&mut *tx, &audit.event(&revoked.user_id, Some(id), now)).await?;
        tx.commit().await.map_err(e)?;
        Ok(Some(revoked))
    }

    pub async fn rotate(
        &self,
        user_id: &str,
        id: &str,
        new: &NewApiKey,
        grace_ends: DateTime<Utc>,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Rotation> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = $1 AND k.user_id = $2{}",
            DB::FOR_UPDATE
        );
        let old = sqlx::query(&sql)
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(e)?;
        let Some(old) = old.as_ref().map(ReadRow::api_key).transpose()? else {
            tx.rollback().await.map_err(e)?;
            return Ok(Rotation::NotFound);
        };
        if old.status(now) != "active" || old.replaced_by.is_some() {
            tx.rollback().await.map_err(e)?;
            return Ok(Rotation::NotActive);
        }
        // The settings as they are now, under the lock (a change made since the caller read
        // the key is not lost).
        let mut new = new.clone();
        new.name = old.name.clone();
        new.scopes = old.scopes;
        new.allowed_ips = old.allowed_ips.clone();
        new.expires_at = old.expires_at.map(|t| now + (t - old.created_at));
        insert_key(&mut *tx, &new).await?;
        let ends = old.expires_at.map_or(grace_ends, |t| t.min(grace_ends));
        let sql = format!(
            "UPDATE api_keys SET replaced_by = $2, expires_at = $3 WHERE id = $1 \
             RETURNING {KEY_COLUMNS_RETURNING}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(&new.id)
            .bind(to_millis(ends))
            .fetch_one(&mut *tx)
            .await
            .map_err(e)?;
        let rotated = row.api_key()?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = $1");
        let fresh = sqlx::query(&sql)
            .bind(&new.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(e)?
            .api_key()?;
        insert_event(&mut *tx, &audit.event(user_id, Some(id), now)).await?;
        tx.commit().await.map_err(e)?;
        Ok(Rotation::Rotated {
            old: Box::new(rotated),
            new: Box::new(fresh),
        })
    }

    pub async fn update(
        &self,
        user_id: &str,
        id: &str,
        update: &KeyUpdate,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<Option<ApiKey>> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        // `$3`/`$5`: whether to set the name / the addresses.
        let sql = format!(
            "UPDATE api_keys SET \
             name = CASE WHEN $3 = 1 THEN $4 ELSE name END, \
             allowed_ips = CASE WHEN $5 = 1 THEN $6 ELSE allowed_ips END \
             WHERE id = $1 AND user_id = $2 RETURNING {KEY_COLUMNS_RETURNING}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(user_id)
            .bind(update.name.is_some() as i64)
            .bind(update.name.clone().flatten())
            .bind(update.allowed_ips.is_some() as i64)
            .bind(update.allowed_ips.as_deref().and_then(allowed_ips_text))
            .fetch_optional(&mut *tx)
            .await
            .map_err(e)?;
        let Some(updated) = row.as_ref().map(ReadRow::api_key).transpose()? else {
            tx.rollback().await.map_err(e)?;
            return Ok(None);
        };
        insert_event(&mut *tx, &audit.event(user_id, Some(id), now)).await?;
        tx.commit().await.map_err(e)?;
        Ok(Some(updated))
    }

    /// Records a use, at most once a minute.
    pub async fn touch(&self, id: &str, now: DateTime<Utc>, ip: Option<&str>) -> StoreResult<()> {
        let now = to_millis(now);
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2, last_used_ip = COALESCE($4, last_used_ip) \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - 60_000)
        .bind(ip)
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }

    /// Notes a use from `ip`; a first use from it (among the key's `max_per_key` most
    /// recently seen addresses) records `audit`. Answers whether it was a first.
    pub async fn note_address(
        &self,
        user_id: &str,
        key_id: &str,
        ip: &str,
        max_per_key: usize,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<bool> {
        let at = to_millis(now);
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let updated =
            sqlx::query("UPDATE api_key_ips SET last_seen_at = $3 WHERE key_id = $1 AND ip = $2")
                .bind(key_id)
                .bind(ip)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        if DB::rows_affected(&updated) > 0 {
            tx.commit().await.map_err(e)?;
            return Ok(false);
        }
        // Make room: the least recently seen address gives way.
        let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_key_ips WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(e)?;
        if known >= max_per_key as i64 {
            sqlx::query(
                "DELETE FROM api_key_ips WHERE key_id = $1 AND ip IN (SELECT ip FROM api_key_ips \
                 WHERE key_id = $1 ORDER BY last_seen_at, ip LIMIT $2)",
            )
            .bind(key_id)
            .bind(known - max_per_key as i64 + 1)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        }
        let inserted = sqlx::query(
            "INSERT INTO api_key_ips (key_id, ip, first_seen_at, last_seen_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (key_id, ip) DO NOTHING",
        )
        .bind(key_id)
        .bind(ip)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        let first = DB::rows_affected(&inserted) > 0;
        if first {
            insert_event(&mut *tx, &audit.event(user_id, Some(key_id), now)).await?;
        }
        tx.commit().await.map_err(e)?;
        Ok(first)
    }
}

async fn insert_key<'c, DB, X>(conn: X, key: &NewApiKey) -> StoreResult<()>
where
    DB: Backend,
    X: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
{
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, mode, key_hash, preview, created_at, \
         expires_at, scopes, allowed_ips) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&key.id)
    .bind(&key.user_id)
    .bind(&key.name)
    .bind(key.mode.as_str())
    .bind(&key.hash.0[..])
    .bind(&key.preview)
    .bind(to_millis(key.created_at))
    .bind(key.expires_at.map(to_millis))
    .bind(key.scopes.map(|s| s.to_text()))
    .bind(allowed_ips_text(&key.allowed_ips))
    .execute(conn)
    .await
    .map_err(e)?;
    Ok(())
}
