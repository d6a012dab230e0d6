//! Connected platform accounts (their tokens and the leases that refresh them) and the OAuth
//! authorizations in progress that connect them.

use super::Backend;
use super::rows::{ACCOUNT_COLUMNS, ReadRow, e, platform};
use chrono::{DateTime, Utc};
use soku_core::queue::{
    Account, AccountSecrets, NewAccount, OAuthState, RefreshEnd, RefreshedTokens, StateUse,
};
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Accounts<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Accounts<'_, DB>
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
    pub async fn insert(&self, new: &NewAccount) -> StoreResult<()> {
        let a = &new.account;
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        if a.is_default {
            sqlx::query("UPDATE accounts SET is_default = 0 WHERE user_id = $1 AND platform = $2")
                .bind(&a.user_id)
                .bind(a.platform.as_str())
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        }
        sqlx::query(
            "INSERT INTO accounts (id, user_id, platform, account_id, display_name, username, \
             access_token, refresh_token, token_expires_at, is_default, status, created_at, \
             meta_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&a.id)
        .bind(&a.user_id)
        .bind(a.platform.as_str())
        .bind(&a.account_id)
        .bind(&a.display_name)
        .bind(&a.username)
        .bind(&new.access_token)
        .bind(&new.refresh_token)
        .bind(a.token_expires_at.map(to_millis))
        .bind(a.is_default as i64)
        .bind(a.status.as_str())
        .bind(to_millis(a.created_at))
        .bind(a.meta.to_string())
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)
    }

    pub async fn upsert(&self, new: &NewAccount) -> StoreResult<Account> {
        let a = &new.account;
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        // The first account of a platform is the default one.
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM accounts \
             WHERE user_id = $1 AND platform = $2 AND account_id <> $3",
        )
        .bind(&a.user_id)
        .bind(a.platform.as_str())
        .bind(&a.account_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(e)?;
        sqlx::query(
            "INSERT INTO accounts (id, user_id, platform, account_id, display_name, username, \
             access_token, refresh_token, token_expires_at, is_default, status, created_at, \
             meta_json, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12, $11) \
             ON CONFLICT (user_id, platform, account_id) DO UPDATE SET \
             display_name = excluded.display_name, username = excluded.username, \
             access_token = excluded.access_token, \
             refresh_token = COALESCE(excluded.refresh_token, accounts.refresh_token), \
             token_expires_at = excluded.token_expires_at, status = 'active', \
             meta_json = excluded.meta_json, refresh_lease_until = NULL, \
             refresh_lease_owner = NULL, next_refresh_at = NULL, updated_at = excluded.updated_at",
        )
        .bind(&a.id)
        .bind(&a.user_id)
        .bind(a.platform.as_str())
        .bind(&a.account_id)
        .bind(&a.display_name)
        .bind(&a.username)
        .bind(&new.access_token)
        .bind(&new.refresh_token)
        .bind(a.token_expires_at.map(to_millis))
        .bind((others == 0) as i64)
        .bind(to_millis(a.created_at))
        .bind(a.meta.to_string())
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts \
             WHERE user_id = $1 AND platform = $2 AND account_id = $3"
        );
        let row = sqlx::query(&sql)
            .bind(&a.user_id)
            .bind(a.platform.as_str())
            .bind(&a.account_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(e)?;
        let stored = row.account()?;
        tx.commit().await.map_err(e)?;
        Ok(stored)
    }

    pub async fn expiring(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts \
             WHERE status = 'active' AND token_expires_at IS NOT NULL \
             AND token_expires_at < $1 AND (next_refresh_at IS NULL OR next_refresh_at <= $2) \
             ORDER BY token_expires_at LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(to_millis(before))
            .bind(to_millis(now))
            .bind(limit)
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        rows.iter().map(ReadRow::account).collect()
    }

    pub async fn lease_refresh(
        &self,
        id: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET refresh_lease_until = $1, refresh_lease_owner = $2 \
             WHERE id = $3 AND (refresh_lease_until IS NULL OR refresh_lease_until < $4)",
        )
        .bind(to_millis(until))
        .bind(owner)
        .bind(id)
        .bind(to_millis(now))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn save_refreshed_tokens(
        &self,
        id: &str,
        owner: &str,
        tokens: &RefreshedTokens,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET access_token = $1, \
             refresh_token = COALESCE($2, refresh_token), token_expires_at = $3, \
             status = $7, refresh_lease_until = NULL, refresh_lease_owner = NULL, \
             next_refresh_at = NULL, updated_at = $4 WHERE id = $5 AND refresh_lease_owner = $6",
        )
        .bind(&tokens.access_token)
        .bind(&tokens.refresh_token)
        .bind(tokens.expires_at.map(to_millis))
        .bind(to_millis(now))
        .bind(id)
        .bind(owner)
        .bind(if tokens.needs_reconnect {
            "needs_reconnect"
        } else {
            "active"
        })
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn end_refresh(
        &self,
        id: &str,
        owner: &str,
        end: RefreshEnd,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (status, retry_at) = match end {
            RefreshEnd::NeedsReconnect => ("needs_reconnect", None),
            RefreshEnd::RetryAt(at) => ("active", Some(to_millis(at))),
        };
        let done = sqlx::query(
            "UPDATE accounts SET status = $1, next_refresh_at = $2, refresh_lease_until = NULL, \
             refresh_lease_owner = NULL, updated_at = $3 \
             WHERE id = $4 AND refresh_lease_owner = $5",
        )
        .bind(status)
        .bind(retry_at)
        .bind(to_millis(now))
        .bind(id)
        .bind(owner)
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn list(&self, user_id: &str) -> StoreResult<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE user_id = $1 \
             ORDER BY platform, created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        rows.iter().map(ReadRow::account).collect()
    }

    pub async fn secrets(
        &self,
        account_ref: &str,
    ) -> StoreResult<Option<(Account, AccountSecrets)>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, access_token, refresh_token FROM accounts WHERE id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(account_ref)
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        let Some(r) = row else { return Ok(None) };
        let secrets = AccountSecrets {
            access_token: r.try_get(11).map_err(e)?,
            refresh_token: r.try_get(12).map_err(e)?,
        };
        Ok(Some((r.account()?, secrets)))
    }

    pub async fn delete(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let platform: Option<String> = sqlx::query_scalar(
            "DELETE FROM accounts WHERE id = $1 AND user_id = $2 RETURNING platform",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(e)?;
        let Some(platform) = platform else {
            tx.rollback().await.map_err(e)?;
            return Ok(false);
        };
        // The platform's oldest remaining account becomes its default if none is.
        sqlx::query(
            "UPDATE accounts SET is_default = 1 WHERE id = (SELECT id FROM accounts \
             WHERE user_id = $1 AND platform = $2 ORDER BY created_at, id LIMIT 1) \
             AND NOT EXISTS (SELECT 1 FROM accounts \
             WHERE user_id = $1 AND platform = $2 AND is_default = 1)",
        )
        .bind(user_id)
        .bind(&platform)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(true)
    }

    pub async fn set_default(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let platform: Option<String> =
            sqlx::query_scalar("SELECT platform FROM accounts WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(e)?;
        let Some(platform) = platform else {
            tx.rollback().await.map_err(e)?;
            return Ok(false);
        };
        sqlx::query(
            "UPDATE accounts SET is_default = CASE WHEN id = $3 THEN 1 ELSE 0 END \
             WHERE user_id = $1 AND platform = $2",
        )
        .bind(user_id)
        .bind(&platform)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        tx.commit().await.map_err(e)?;
        Ok(true)
    }

    pub async fn insert_oauth_state(&self, st: &OAuthState) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, user_id, platform, redirect_uri, return_to, \
             sealed, created_at, expires_at, started_in) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&st.state_hash)
        .bind(&st.user_id)
        .bind(st.platform.as_str())
        .bind(&st.redirect_uri)
        .bind(&st.return_to)
        .bind(&st.sealed)
        .bind(to_millis(st.created_at))
        .bind(to_millis(st.expires_at))
        .bind(if st.from_dashboard {
            "dashboard"
        } else {
            "api"
        })
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }

    pub async fn use_oauth_state(
        &self,
        state_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<StateUse> {
        let row = sqlx::query(
            "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL \
             RETURNING user_id, platform, redirect_uri, return_to, sealed, created_at, \
             expires_at, started_in",
        )
        .bind(to_millis(now))
        .bind(state_hash)
        .fetch_optional(self.0)
        .await
        .map_err(e)?;
        if let Some(r) = row {
            let platform_s: String = r.try_get(1).map_err(e)?;
            return Ok(StateUse::Used(OAuthState {
                state_hash: state_hash.to_vec(),
                user_id: r.try_get(0).map_err(e)?,
                platform: platform(&platform_s)?,
                redirect_uri: r.try_get(2).map_err(e)?,
                return_to: r.try_get(3).map_err(e)?,
                sealed: r.try_get(4).map_err(e)?,
                created_at: from_millis(r.try_get(5).map_err(e)?),
                expires_at: from_millis(r.try_get(6).map_err(e)?),
                from_dashboard: r.try_get::<String, _>(7).map_err(e)? == "dashboard",
            }));
        }
        let seen: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM oauth_states WHERE state_hash = $1")
                .bind(state_hash)
                .fetch_one(self.0)
                .await
                .map_err(e)?;
        Ok(if seen > 0 {
            StateUse::AlreadyUsed
        } else {
            StateUse::Unknown
        })
    }

    pub async fn purge_oauth_states(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(to_millis(before))
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done))
    }
}
