//! `PostStore` in the SQL both backends share, instantiated per driver by `post_store!`.
//! The differences are parameters: how a writing transaction begins (SQLite takes the write
//! lock up front with `BEGIN IMMEDIATE`) and the row locks of PostgreSQL (`FOR UPDATE`, and
//! `SKIP LOCKED` for claims, so that several workers never take the same target).

macro_rules! target_columns {
    () => {
        "t.id, t.submission_id, t.position, t.platform, t.account_ref, t.account_id, t.status, \
         t.attempts, t.platform_post_id, t.platform_post_url, t.error_code, t.error_message, \
         t.platform_error, t.published_at, t.due_at"
    };
}
pub(crate) use target_columns;

macro_rules! submission_columns {
    () => {
        "s.id, s.user_id, s.mode, s.status, s.post_json, s.scheduled_at, s.created_at"
    };
}
pub(crate) use submission_columns;

macro_rules! account_columns {
    () => {
        "id, user_id, platform, account_id, display_name, username, status, is_default, \
         token_expires_at, created_at, meta_json"
    };
}
pub(crate) use account_columns;

macro_rules! sandbox_columns {
    () => {
        "id, user_id, platform, marker, submission_id, target_id, text, media_json, received_at, create_count"
    };
}
pub(crate) use sandbox_columns;

macro_rules! post_store {
    ($store:ty, $row:ty, $begin:literal, $for_update:literal, $skip_locked:literal) => {
        mod post_rows {
            use soku_core::StoreError;
            use soku_core::keys::KeyMode;
            use soku_core::platform::Platform;
            use soku_core::posts::{SubmissionStatus, TargetStatus};
            use soku_core::queue::*;
            use soku_core::time::from_millis;
            use sqlx::Row;

            fn bad(what: &str) -> StoreError {
                StoreError::Backend(format!("unexpected value in column {what}"))
            }
            pub fn e(err: sqlx::Error) -> StoreError {
                crate::backend_error(err)
            }
            pub fn platform(s: &str) -> Result<Platform, StoreError> {
                Platform::parse(s).ok_or_else(|| bad("platform"))
            }
            pub fn mode(s: &str) -> Result<KeyMode, StoreError> {
                KeyMode::parse(s).ok_or_else(|| bad("mode"))
            }

            /// `target_columns!()` from offset `o`.
            pub fn target(r: &$row, o: usize) -> Result<TargetRecord, StoreError> {
                let platform_s: String = r.try_get(o + 3).map_err(e)?;
                let status_s: String = r.try_get(o + 6).map_err(e)?;
                let code: Option<String> = r.try_get(o + 10).map_err(e)?;
                let error = match code {
                    Some(code) => Some(TargetError {
                        code,
                        message: r.try_get::<Option<String>, _>(o + 11).map_err(e)?.unwrap_or_default(),
                        platform_error: r.try_get(o + 12).map_err(e)?,
                    }),
                    None => None,
                };
                Ok(TargetRecord {
                    id: r.try_get(o).map_err(e)?,
                    submission_id: r.try_get(o + 1).map_err(e)?,
                    position: r.try_get(o + 2).map_err(e)?,
                    platform: platform(&platform_s)?,
                    account_ref: r.try_get(o + 4).map_err(e)?,
                    account_id: r.try_get(o + 5).map_err(e)?,
                    status: TargetStatus::parse(&status_s).ok_or_else(|| bad("targets.status"))?,
                    attempts: r.try_get(o + 7).map_err(e)?,
                    platform_post_id: r.try_get(o + 8).map_err(e)?,
                    platform_post_url: r.try_get(o + 9).map_err(e)?,
                    error,
                    published_at: r.try_get::<Option<i64>, _>(o + 13).map_err(e)?.map(from_millis),
                    due_at: from_millis(r.try_get(o + 14).map_err(e)?),
                })
            }

            pub fn submission(r: &$row) -> Result<SubmissionRecord, StoreError> {
                let mode_s: String = r.try_get(2).map_err(e)?;
                let status_s: String = r.try_get(3).map_err(e)?;
                Ok(SubmissionRecord {
                    id: r.try_get(0).map_err(e)?,
                    user_id: r.try_get(1).map_err(e)?,
                    mode: mode(&mode_s)?,
                    status: SubmissionStatus::parse(&status_s).ok_or_else(|| bad("submissions.status"))?,
                    post_json: r.try_get(4).map_err(e)?,
                    scheduled_at: r.try_get::<Option<i64>, _>(5).map_err(e)?.map(from_millis),
                    created_at: from_millis(r.try_get(6).map_err(e)?),
                    targets: Vec::new(),
                })
            }

            pub fn account(r: &$row) -> Result<Account, StoreError> {
                let platform_s: String = r.try_get(2).map_err(e)?;
                let status_s: String = r.try_get(6).map_err(e)?;
                Ok(Account {
                    id: r.try_get(0).map_err(e)?,
                    user_id: r.try_get(1).map_err(e)?,
                    platform: platform(&platform_s)?,
                    account_id: r.try_get(3).map_err(e)?,
                    display_name: r.try_get(4).map_err(e)?,
                    username: r.try_get(5).map_err(e)?,
                    status: AccountStatus::parse(&status_s).ok_or_else(|| bad("accounts.status"))?,
                    is_default: r.try_get::<i64, _>(7).map_err(e)? != 0,
                    token_expires_at: r.try_get::<Option<i64>, _>(8).map_err(e)?.map(from_millis),
                    created_at: from_millis(r.try_get(9).map_err(e)?),
                    meta: serde_json::from_str(&r.try_get::<String, _>(10).map_err(e)?)
                        .map_err(|_| bad("accounts.meta_json"))?,
                })
            }

            pub fn sandbox(r: &$row) -> Result<SandboxPost, StoreError> {
                let platform_s: String = r.try_get(2).map_err(e)?;
                Ok(SandboxPost {
                    id: r.try_get(0).map_err(e)?,
                    user_id: r.try_get(1).map_err(e)?,
                    platform: platform(&platform_s)?,
                    marker: r.try_get(3).map_err(e)?,
                    submission_id: r.try_get(4).map_err(e)?,
                    target_id: r.try_get(5).map_err(e)?,
                    text: r.try_get(6).map_err(e)?,
                    media_json: r.try_get(7).map_err(e)?,
                    received_at: from_millis(r.try_get(8).map_err(e)?),
                    create_count: r.try_get(9).map_err(e)?,
                })
            }
        }

        impl $store {
            async fn load_targets(
                &self,
                submissions: &mut [soku_core::queue::SubmissionRecord],
            ) -> soku_core::store::StoreResult<()> {
                if submissions.is_empty() {
                    return Ok(());
                }
                let placeholders: Vec<String> = (1..=submissions.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    concat!("SELECT ", crate::sql_posts::target_columns!(),
                        " FROM targets t WHERE t.submission_id IN ({}) ORDER BY t.submission_id, t.position"),
                    placeholders.join(", ")
                );
                let mut query = sqlx::query(&sql);
                for s in submissions.iter() {
                    query = query.bind(&s.id);
                }
                let rows = query.fetch_all(&self.pool).await.map_err(post_rows::e)?;
                for row in &rows {
                    let t = post_rows::target(row, 0)?;
                    if let Some(s) = submissions.iter_mut().find(|s| s.id == t.submission_id) {
                        s.targets.push(t);
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl soku_core::queue::PostStore for $store {
            async fn insert_account(&self, new: &soku_core::queue::NewAccount) -> soku_core::store::StoreResult<()> {
                let a = &new.account;
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                if a.is_default {
                    sqlx::query("UPDATE accounts SET is_default = 0 WHERE user_id = $1 AND platform = $2")
                        .bind(&a.user_id)
                        .bind(a.platform.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                }
                sqlx::query(
                    "INSERT INTO accounts (id, user_id, platform, account_id, display_name, username, \
                     access_token, refresh_token, token_expires_at, is_default, status, created_at, meta_json) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&a.id)
                .bind(&a.user_id)
                .bind(a.platform.as_str())
                .bind(&a.account_id)
                .bind(&a.display_name)
                .bind(&a.username)
                .bind(&new.access_token)
                .bind(&new.refresh_token)
                .bind(a.token_expires_at.map(soku_core::time::to_millis))
                .bind(a.is_default as i64)
                .bind(a.status.as_str())
                .bind(soku_core::time::to_millis(a.created_at))
                .bind(a.meta.to_string())
                .execute(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                tx.commit().await.map_err(post_rows::e)
            }

            async fn upsert_account(&self, new: &soku_core::queue::NewAccount) -> soku_core::store::StoreResult<soku_core::queue::Account> {
                use soku_core::time::to_millis;
                let a = &new.account;
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                // The first account of a platform is the default one.
                let others: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM accounts WHERE user_id = $1 AND platform = $2 AND account_id <> $3",
                )
                .bind(&a.user_id)
                .bind(a.platform.as_str())
                .bind(&a.account_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                sqlx::query(
                    "INSERT INTO accounts (id, user_id, platform, account_id, display_name, username, \
                     access_token, refresh_token, token_expires_at, is_default, status, created_at, meta_json, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12, $11) \
                     ON CONFLICT (user_id, platform, account_id) DO UPDATE SET \
                     display_name = excluded.display_name, username = excluded.username, \
                     access_token = excluded.access_token, \
                     refresh_token = COALESCE(excluded.refresh_token, accounts.refresh_token), \
                     token_expires_at = excluded.token_expires_at, status = 'active', \
                     meta_json = excluded.meta_json, refresh_lease_until = NULL, refresh_lease_owner = NULL, \
                     next_refresh_at = NULL, updated_at = excluded.updated_at",
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
                .map_err(post_rows::e)?;
                let row = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::account_columns!(),
                    " FROM accounts WHERE user_id = $1 AND platform = $2 AND account_id = $3"
                ))
                .bind(&a.user_id)
                .bind(a.platform.as_str())
                .bind(&a.account_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                let stored = post_rows::account(&row)?;
                tx.commit().await.map_err(post_rows::e)?;
                Ok(stored)
            }

            async fn accounts_expiring(
                &self,
                before: chrono::DateTime<chrono::Utc>,
                now: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> soku_core::store::StoreResult<Vec<soku_core::queue::Account>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::account_columns!(),
                    " FROM accounts WHERE status = 'active' AND token_expires_at IS NOT NULL \
                     AND token_expires_at < $1 AND (next_refresh_at IS NULL OR next_refresh_at <= $2) \
                     ORDER BY token_expires_at LIMIT $3"
                ))
                .bind(soku_core::time::to_millis(before))
                .bind(soku_core::time::to_millis(now))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(post_rows::e)?;
                rows.iter().map(post_rows::account).collect()
            }

            async fn lease_account_refresh(
                &self,
                id: &str,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                until: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE accounts SET refresh_lease_until = $1, refresh_lease_owner = $2 WHERE id = $3 \
                     AND (refresh_lease_until IS NULL OR refresh_lease_until < $4)",
                )
                .bind(soku_core::time::to_millis(until))
                .bind(owner)
                .bind(id)
                .bind(soku_core::time::to_millis(now))
                .execute(&self.pool)
                .await
                .map_err(post_rows::e)?;
                Ok(done.rows_affected() == 1)
            }

            async fn save_refreshed_tokens(
                &self,
                id: &str,
                owner: &str,
                tokens: &soku_core::queue::RefreshedTokens,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE accounts SET access_token = $1, \
                     refresh_token = COALESCE($2, refresh_token), token_expires_at = $3, \
                     status = 'active', refresh_lease_until = NULL, refresh_lease_owner = NULL, \
                     next_refresh_at = NULL, updated_at = $4 WHERE id = $5 AND refresh_lease_owner = $6",
                )
                .bind(&tokens.access_token)
                .bind(&tokens.refresh_token)
                .bind(tokens.expires_at.map(soku_core::time::to_millis))
                .bind(soku_core::time::to_millis(now))
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await
                .map_err(post_rows::e)?;
                Ok(done.rows_affected() == 1)
            }

            async fn end_account_refresh(
                &self,
                id: &str,
                owner: &str,
                end: soku_core::queue::RefreshEnd,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<bool> {
                use soku_core::queue::RefreshEnd;
                let (status, retry_at) = match end {
                    RefreshEnd::NeedsReconnect => ("needs_reconnect", None),
                    RefreshEnd::RetryAt(at) => ("active", Some(soku_core::time::to_millis(at))),
                };
                let done = sqlx::query(
                    "UPDATE accounts SET status = $1, next_refresh_at = $2, refresh_lease_until = NULL, \
                     refresh_lease_owner = NULL, updated_at = $3 WHERE id = $4 AND refresh_lease_owner = $5",
                )
                .bind(status)
                .bind(retry_at)
                .bind(soku_core::time::to_millis(now))
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await
                .map_err(post_rows::e)?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_oauth_state(&self, st: &soku_core::queue::OAuthState) -> soku_core::store::StoreResult<()> {
                use soku_core::time::to_millis;
                sqlx::query(
                    "INSERT INTO oauth_states (state_hash, user_id, platform, redirect_uri, return_to, \
                     sealed, created_at, expires_at, started_in) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&st.state_hash)
                .bind(&st.user_id)
                .bind(st.platform.as_str())
                .bind(&st.redirect_uri)
                .bind(&st.return_to)
                .bind(&st.sealed)
                .bind(to_millis(st.created_at))
                .bind(to_millis(st.expires_at))
                .bind(if st.from_dashboard { "dashboard" } else { "api" })
                .execute(&self.pool)
                .await
                .map_err(post_rows::e)?;
                Ok(())
            }

            async fn use_oauth_state(
                &self,
                state_hash: &[u8],
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<soku_core::queue::StateUse> {
                use soku_core::queue::{OAuthState, StateUse};
                use soku_core::time::from_millis;
                use sqlx::Row;
                let row = sqlx::query(
                    "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL \
                     RETURNING user_id, platform, redirect_uri, return_to, sealed, created_at, expires_at, started_in",
                )
                .bind(soku_core::time::to_millis(now))
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(post_rows::e)?;
                if let Some(r) = row {
                    let platform: String = r.try_get(1).map_err(post_rows::e)?;
                    return Ok(StateUse::Used(OAuthState {
                        state_hash: state_hash.to_vec(),
                        user_id: r.try_get(0).map_err(post_rows::e)?,
                        platform: post_rows::platform(&platform)?,
                        redirect_uri: r.try_get(2).map_err(post_rows::e)?,
                        return_to: r.try_get(3).map_err(post_rows::e)?,
                        sealed: r.try_get(4).map_err(post_rows::e)?,
                        created_at: from_millis(r.try_get(5).map_err(post_rows::e)?),
                        expires_at: from_millis(r.try_get(6).map_err(post_rows::e)?),
                        from_dashboard: r.try_get::<String, _>(7).map_err(post_rows::e)? == "dashboard",
                    }));
                }
                let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oauth_states WHERE state_hash = $1")
                    .bind(state_hash)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(post_rows::e)?;
                Ok(if seen > 0 { StateUse::AlreadyUsed } else { StateUse::Unknown })
            }

            async fn purge_oauth_states(&self, before: chrono::DateTime<chrono::Utc>) -> soku_core::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                    .bind(soku_core::time::to_millis(before))
                    .execute(&self.pool)
                    .await
                    .map_err(post_rows::e)?;
                Ok(done.rows_affected())
            }

            async fn list_accounts(&self, user_id: &str) -> soku_core::store::StoreResult<Vec<soku_core::queue::Account>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::account_columns!(),
                    " FROM accounts WHERE user_id = $1 ORDER BY platform, created_at, id"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(post_rows::e)?;
                rows.iter().map(post_rows::account).collect()
            }

            async fn account_secrets(
                &self,
                account_ref: &str,
            ) -> soku_core::store::StoreResult<Option<(soku_core::queue::Account, soku_core::queue::AccountSecrets)>> {
                use sqlx::Row;
                let row = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::account_columns!(),
                    ", access_token, refresh_token FROM accounts WHERE id = $1"
                ))
                .bind(account_ref)
                .fetch_optional(&self.pool)
                .await
                .map_err(post_rows::e)?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some((
                    post_rows::account(&r)?,
                    soku_core::queue::AccountSecrets {
                        access_token: r.try_get(11).map_err(post_rows::e)?,
                        refresh_token: r.try_get(12).map_err(post_rows::e)?,
                    },
                )))
            }

            async fn delete_account(&self, user_id: &str, id: &str) -> soku_core::store::StoreResult<bool> {
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                let platform: Option<String> = sqlx::query_scalar(
                    "DELETE FROM accounts WHERE id = $1 AND user_id = $2 RETURNING platform",
                )
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                let Some(platform) = platform else {
                    return Ok(false);
                };
                // The platform's oldest remaining account becomes its default if none is.
                sqlx::query(
                    "UPDATE accounts SET is_default = 1 WHERE id = (SELECT id FROM accounts \
                     WHERE user_id = $1 AND platform = $2 ORDER BY created_at, id LIMIT 1) \
                     AND NOT EXISTS (SELECT 1 FROM accounts WHERE user_id = $1 AND platform = $2 AND is_default = 1)",
                )
                .bind(user_id)
                .bind(&platform)
                .execute(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                tx.commit().await.map_err(post_rows::e)?;
                Ok(true)
            }

            async fn create_submissions(
                &self,
                submissions: &[soku_core::queue::NewSubmission],
            ) -> soku_core::store::StoreResult<()> {
                use soku_core::time::to_millis;
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                for s in submissions {
                    sqlx::query(
                        "INSERT INTO submissions (id, user_id, mode, status, post_json, content_json, \
                         scheduled_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    )
                    .bind(&s.id)
                    .bind(&s.user_id)
                    .bind(s.mode.as_str())
                    .bind(s.status.as_str())
                    .bind(&s.post_json)
                    .bind(&s.content_json)
                    .bind(s.scheduled_at.map(to_millis))
                    .bind(to_millis(s.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(post_rows::e)?;
                    for t in &s.targets {
                        sqlx::query(
                            "INSERT INTO targets (id, submission_id, position, platform, account_ref, account_id, \
                             status, due_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(&t.id)
                        .bind(&s.id)
                        .bind(t.position)
                        .bind(t.platform.as_str())
                        .bind(&t.account_ref)
                        .bind(&t.account_id)
                        .bind(t.status.as_str())
                        .bind(to_millis(t.due_at))
                        .bind(to_millis(s.created_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                    }
                    if let Some(idem) = &s.idempotency {
                        sqlx::query(
                            "UPDATE idempotency_keys SET response_status = $4, response_body = $5 \
                             WHERE user_id = $1 AND mode = $2 AND key = $3",
                        )
                        .bind(&s.user_id)
                        .bind(s.mode.as_str())
                        .bind(&idem.key)
                        .bind(idem.status as i64)
                        .bind(&idem.body)
                        .execute(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                    }
                }
                tx.commit().await.map_err(post_rows::e)
            }

            async fn get_submission(
                &self,
                user_id: &str,
                mode: soku_core::keys::KeyMode,
                id: &str,
            ) -> soku_core::store::StoreResult<Option<soku_core::queue::SubmissionRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::submission_columns!(),
                    " FROM submissions s WHERE s.id = $1 AND s.user_id = $2 AND s.mode = $3"
                ))
                .bind(id)
                .bind(user_id)
                .bind(mode.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(post_rows::e)?;
                let Some(row) = row else { return Ok(None) };
                let mut found = [post_rows::submission(&row)?];
                self.load_targets(&mut found).await?;
                let [s] = found;
                Ok(Some(s))
            }

            async fn list_submissions(
                &self,
                user_id: &str,
                mode: soku_core::keys::KeyMode,
                f: &soku_core::queue::SubmissionFilter,
            ) -> soku_core::store::StoreResult<Vec<soku_core::queue::SubmissionRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::submission_columns!(),
                    " FROM submissions s WHERE s.user_id = $1 AND s.mode = $2 \
                     AND (CAST($3 AS TEXT) IS NULL OR s.status = $3) \
                     AND (CAST($4 AS TEXT) IS NULL OR EXISTS \
                          (SELECT 1 FROM targets t WHERE t.submission_id = s.id AND t.platform = $4)) \
                     AND (CAST($5 AS BIGINT) IS NULL OR s.created_at < $5 OR (s.created_at = $5 AND s.id < $6)) \
                     ORDER BY s.created_at DESC, s.id DESC LIMIT $7"
                ))
                .bind(user_id)
                .bind(mode.as_str())
                .bind(f.status.map(|s| s.as_str()))
                .bind(f.platform.map(|p| p.as_str()))
                .bind(f.before.as_ref().map(|(t, _)| soku_core::time::to_millis(*t)))
                .bind(f.before.as_ref().map(|(_, id)| id.as_str()).unwrap_or(""))
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await
                .map_err(post_rows::e)?;
                let mut out = rows.iter().map(post_rows::submission).collect::<Result<Vec<_>, _>>()?;
                self.load_targets(&mut out).await?;
                Ok(out)
            }

            async fn cancel_submission(
                &self,
                user_id: &str,
                mode: soku_core::keys::KeyMode,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<soku_core::queue::CancelOutcome> {
                use soku_core::queue::CancelOutcome;
                use sqlx::Row;
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                let owned = sqlx::query("SELECT id FROM submissions WHERE id = $1 AND user_id = $2 AND mode = $3")
                    .bind(id)
                    .bind(user_id)
                    .bind(mode.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(post_rows::e)?;
                if owned.is_none() {
                    return Ok(CancelOutcome::NotFound);
                }
                let states = sqlx::query(concat!(
                    "SELECT status, attempts, in_flight FROM targets WHERE submission_id = $1",
                    $for_update
                ))
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                let mut cancelable = true;
                for r in &states {
                    let status: String = r.try_get(0).map_err(post_rows::e)?;
                    let attempts: i64 = r.try_get(1).map_err(post_rows::e)?;
                    let in_flight: i64 = r.try_get(2).map_err(post_rows::e)?;
                    if !(status == "scheduled" || status == "queued") || attempts > 0 || in_flight != 0 {
                        cancelable = false;
                    }
                }
                if cancelable {
                    let now = soku_core::time::to_millis(now);
                    sqlx::query("UPDATE targets SET status = 'canceled', updated_at = $2 WHERE submission_id = $1")
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                    sqlx::query("UPDATE submissions SET status = 'canceled', updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                    tx.commit().await.map_err(post_rows::e)?;
                } else {
                    tx.rollback().await.map_err(post_rows::e)?;
                }
                let record = self
                    .get_submission(user_id, mode, id)
                    .await?
                    .ok_or_else(|| soku_core::StoreError::Backend("submission vanished".into()))?;
                Ok(if cancelable { CancelOutcome::Canceled(record) } else { CancelOutcome::TooLate(record) })
            }

            async fn idempotency_acquire(
                &self,
                user_id: &str,
                mode: soku_core::keys::KeyMode,
                key: &str,
                request_hash: &str,
                now: chrono::DateTime<chrono::Utc>,
                abandoned_before: chrono::DateTime<chrono::Utc>,
                expired_before: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<soku_core::queue::IdempotencyState> {
                use soku_core::queue::IdempotencyState;
                use soku_core::time::to_millis;
                use sqlx::Row;
                for _ in 0..3 {
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (user_id, mode, key, request_hash, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(user_id)
                    .bind(mode.as_str())
                    .bind(key)
                    .bind(request_hash)
                    .bind(to_millis(now))
                    .execute(&self.pool)
                    .await
                    .map_err(post_rows::e)?;
                    if inserted.rows_affected() == 1 {
                        return Ok(IdempotencyState::Acquired);
                    }
                    let row = sqlx::query(
                        "SELECT request_hash, response_status, response_body, created_at FROM idempotency_keys \
                         WHERE user_id = $1 AND mode = $2 AND key = $3",
                    )
                    .bind(user_id)
                    .bind(mode.as_str())
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(post_rows::e)?;
                    let Some(row) = row else { continue };
                    let hash: String = row.try_get(0).map_err(post_rows::e)?;
                    let status: Option<i64> = row.try_get(1).map_err(post_rows::e)?;
                    let body: Option<Vec<u8>> = row.try_get(2).map_err(post_rows::e)?;
                    let created: i64 = row.try_get(3).map_err(post_rows::e)?;
                    let stale = created < to_millis(expired_before)
                        || (status.is_none() && created < to_millis(abandoned_before));
                    if stale {
                        let taken = sqlx::query(
                            "UPDATE idempotency_keys SET request_hash = $4, response_status = NULL, \
                             response_body = NULL, created_at = $5 \
                             WHERE user_id = $1 AND mode = $2 AND key = $3 AND created_at = $6",
                        )
                        .bind(user_id)
                        .bind(mode.as_str())
                        .bind(key)
                        .bind(request_hash)
                        .bind(to_millis(now))
                        .bind(created)
                        .execute(&self.pool)
                        .await
                        .map_err(post_rows::e)?;
                        if taken.rows_affected() == 1 {
                            return Ok(IdempotencyState::Acquired);
                        }
                        continue;
                    }
                    return Ok(IdempotencyState::Existing {
                        request_hash: hash,
                        response: status.map(|s| (s as u16, body.unwrap_or_default())),
                    });
                }
                Err(soku_core::StoreError::Backend("idempotency key kept changing".into()))
            }

            async fn idempotency_release(
                &self,
                user_id: &str,
                mode: soku_core::keys::KeyMode,
                key: &str,
            ) -> soku_core::store::StoreResult<()> {
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE user_id = $1 AND mode = $2 AND key = $3 \
                     AND response_status IS NULL",
                )
                .bind(user_id)
                .bind(mode.as_str())
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(post_rows::e)?;
                Ok(())
            }

            async fn idempotency_purge(&self, before: chrono::DateTime<chrono::Utc>) -> soku_core::store::StoreResult<u64> {
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(soku_core::time::to_millis(before))
                    .execute(&self.pool)
                    .await
                    .map_err(post_rows::e)?;
                Ok(done.rows_affected())
            }

            async fn claim_targets(
                &self,
                owner: &str,
                now: chrono::DateTime<chrono::Utc>,
                lease_until: chrono::DateTime<chrono::Utc>,
                limit: i64,
            ) -> soku_core::store::StoreResult<Vec<soku_core::queue::ClaimedTarget>> {
                use soku_core::time::to_millis;
                use sqlx::Row;
                let (now, until) = (to_millis(now), to_millis(lease_until));
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                // Leases that ran out first (their worker died), then targets that are due.
                let expired = sqlx::query(concat!(
                    "UPDATE targets SET lease_owner = $1, lease_until = $3, attempts = attempts + 1, updated_at = $2 \
                     WHERE id IN (SELECT id FROM targets WHERE status = 'publishing' AND lease_until < $2 \
                     ORDER BY lease_until LIMIT $4", $skip_locked, ")"
                ))
                .bind(owner)
                .bind(now)
                .bind(until)
                .bind(limit)
                .execute(&mut *tx)
                .await
                .map_err(post_rows::e)?
                .rows_affected() as i64;
                if expired < limit {
                    sqlx::query(concat!(
                        "UPDATE targets SET status = 'publishing', lease_owner = $1, lease_until = $3, \
                         attempts = attempts + 1, updated_at = $2 \
                         WHERE id IN (SELECT id FROM targets WHERE status IN ('scheduled', 'queued') AND due_at <= $2 \
                         ORDER BY due_at LIMIT $4", $skip_locked, ")"
                    ))
                    .bind(owner)
                    .bind(now)
                    .bind(until)
                    .bind(limit - expired)
                    .execute(&mut *tx)
                    .await
                    .map_err(post_rows::e)?;
                }
                sqlx::query(
                    "UPDATE submissions SET status = 'publishing', updated_at = $2 WHERE id IN \
                     (SELECT submission_id FROM targets WHERE lease_owner = $1) \
                     AND status IN ('scheduled', 'queued')",
                )
                .bind(owner)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                let rows = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::target_columns!(),
                    ", s.user_id, s.mode, s.content_json, t.in_flight, s.created_at, s.scheduled_at FROM targets t \
                     JOIN submissions s ON s.id = t.submission_id \
                     WHERE t.lease_owner = $1 AND t.status = 'publishing' ORDER BY t.due_at"
                ))
                .bind(owner)
                .fetch_all(&mut *tx)
                .await
                .map_err(post_rows::e)?;
                tx.commit().await.map_err(post_rows::e)?;
                rows.iter()
                    .map(|r| {
                        let mode: String = r.try_get(16).map_err(post_rows::e)?;
                        Ok(soku_core::queue::ClaimedTarget {
                            target: post_rows::target(r, 0)?,
                            user_id: r.try_get(15).map_err(post_rows::e)?,
                            mode: post_rows::mode(&mode)?,
                            content_json: r.try_get(17).map_err(post_rows::e)?,
                            in_flight: r.try_get::<i64, _>(18).map_err(post_rows::e)? != 0,
                            submitted_at: soku_core::time::from_millis(
                                r.try_get::<Option<i64>, _>(20)
                                    .map_err(post_rows::e)?
                                    .unwrap_or(r.try_get(19).map_err(post_rows::e)?),
                            ),
                        })
                    })
                    .collect()
            }

            async fn next_due(&self) -> soku_core::store::StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
                use sqlx::Row;
                let row = sqlx::query(
                    "SELECT (SELECT MIN(due_at) FROM targets WHERE status IN ('scheduled', 'queued')), \
                     (SELECT MIN(lease_until) FROM targets WHERE status = 'publishing')",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(post_rows::e)?;
                let due: Option<i64> = row.try_get(0).map_err(post_rows::e)?;
                let lease: Option<i64> = row.try_get(1).map_err(post_rows::e)?;
                Ok(match (due, lease) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
                .map(soku_core::time::from_millis))
            }

            async fn mark_in_flight_batch(
                &self,
                targets: &[soku_core::queue::InFlight],
            ) -> soku_core::store::StoreResult<Vec<bool>> {
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                let mut marked = Vec::with_capacity(targets.len());
                for t in targets {
                    let done = sqlx::query(
                        "UPDATE targets SET in_flight = 1 WHERE id = $1 AND lease_owner = $2 AND status = 'publishing'",
                    )
                    .bind(&t.target_id)
                    .bind(&t.owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(post_rows::e)?;
                    marked.push(done.rows_affected() == 1);
                }
                tx.commit().await.map_err(post_rows::e)?;
                Ok(marked)
            }

            async fn finish_targets(
                &self,
                attempts: &[soku_core::queue::FinishTarget],
            ) -> soku_core::store::StoreResult<Vec<bool>> {
                use soku_core::posts::{SubmissionStatus, TargetStatus};
                use soku_core::queue::TargetOutcome;
                use soku_core::time::to_millis;
                use sqlx::Row;
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                let mut finished = Vec::with_capacity(attempts.len());
                let mut touched = std::collections::BTreeMap::new();
                for a in attempts {
                    let (status, due, post_id, url, published, error, in_flight) = match &a.outcome {
                        TargetOutcome::Published { post_id, url } => {
                            (TargetStatus::Published, None, Some(post_id.as_str()), url.as_deref(), Some(to_millis(a.now)), None, 0i64)
                        }
                        TargetOutcome::Retry { due_at, error, in_flight } => {
                            (TargetStatus::Queued, Some(to_millis(*due_at)), None, None, None, Some(error), *in_flight as i64)
                        }
                        TargetOutcome::Failed(error) => (TargetStatus::Failed, None, None, None, None, Some(error), 0),
                        TargetOutcome::Unknown(error) => (TargetStatus::Unknown, None, None, None, None, Some(error), 1),
                    };
                    let updated = sqlx::query(
                        "UPDATE targets SET status = $3, due_at = COALESCE($4, due_at), platform_post_id = $5, \
                         platform_post_url = $6, published_at = $7, error_code = $8, error_message = $9, \
                         platform_error = $10, in_flight = $11, lease_owner = NULL, lease_until = NULL, updated_at = $12 \
                         WHERE id = $1 AND lease_owner = $2 AND status = 'publishing' RETURNING submission_id",
                    )
                    .bind(&a.target_id)
                    .bind(&a.owner)
                    .bind(status.as_str())
                    .bind(due)
                    .bind(post_id)
                    .bind(url)
                    .bind(published)
                    .bind(error.map(|e| e.code.as_str()))
                    .bind(error.map(|e| e.message.as_str()))
                    .bind(error.and_then(|e| e.platform_error.as_deref()))
                    .bind(in_flight)
                    .bind(to_millis(a.now))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(post_rows::e)?;
                    finished.push(updated.is_some());
                    if let Some(row) = updated {
                        let submission_id: String = row.try_get(0).map_err(post_rows::e)?;
                        let at = touched.entry(submission_id).or_insert(a.now);
                        *at = (*at).max(a.now);
                    }
                }
                // Then each submission's status from all its targets. Targets of one submission
                // may finish at once in two transactions: the submission's row lock (taken after
                // the targets', in the order claims and cancels take them, and in id order)
                // makes the second recount wait for the first commit; its next statement then
                // sees both targets final. SQLite's write lock serialises the whole transaction.
                for (submission_id, now) in &touched {
                    sqlx::query(concat!("SELECT id FROM submissions WHERE id = $1", $for_update))
                        .bind(submission_id)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                    let rows = sqlx::query("SELECT status FROM targets WHERE submission_id = $1")
                        .bind(submission_id)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                    let mut statuses = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let s: String = r.try_get(0).map_err(post_rows::e)?;
                        statuses.push(TargetStatus::parse(&s).unwrap_or(TargetStatus::Unknown));
                    }
                    sqlx::query("UPDATE submissions SET status = $2, updated_at = $3 WHERE id = $1")
                        .bind(submission_id)
                        .bind(SubmissionStatus::from_targets(&statuses).as_str())
                        .bind(to_millis(*now))
                        .execute(&mut *tx)
                        .await
                        .map_err(post_rows::e)?;
                }
                tx.commit().await.map_err(post_rows::e)?;
                Ok(finished)
            }

            async fn sandbox_create_batch(
                &self,
                posts: &[soku_core::queue::SandboxPost],
            ) -> soku_core::store::StoreResult<Vec<soku_core::queue::SandboxPost>> {
                let mut tx = self.pool.begin_with($begin).await.map_err(post_rows::e)?;
                let mut stored = Vec::with_capacity(posts.len());
                for p in posts {
                    let row = sqlx::query(concat!(
                        "INSERT INTO sandbox_posts (id, user_id, platform, marker, submission_id, target_id, text, \
                         media_json, received_at, create_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) \
                         ON CONFLICT (marker) DO UPDATE SET create_count = sandbox_posts.create_count + 1 \
                         RETURNING ", crate::sql_posts::sandbox_columns!()
                    ))
                    .bind(&p.id)
                    .bind(&p.user_id)
                    .bind(p.platform.as_str())
                    .bind(&p.marker)
                    .bind(&p.submission_id)
                    .bind(&p.target_id)
                    .bind(&p.text)
                    .bind(&p.media_json)
                    .bind(soku_core::time::to_millis(p.received_at))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(post_rows::e)?;
                    stored.push(post_rows::sandbox(&row)?);
                }
                tx.commit().await.map_err(post_rows::e)?;
                Ok(stored)
            }

            async fn sandbox_find(
                &self,
                user_id: &str,
                platform: soku_core::platform::Platform,
                marker: &str,
            ) -> soku_core::store::StoreResult<Option<soku_core::queue::SandboxPost>> {
                let row = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::sandbox_columns!(),
                    " FROM sandbox_posts WHERE user_id = $1 AND platform = $2 AND marker = $3"
                ))
                .bind(user_id)
                .bind(platform.as_str())
                .bind(marker)
                .fetch_optional(&self.pool)
                .await
                .map_err(post_rows::e)?;
                row.as_ref().map(post_rows::sandbox).transpose()
            }

            async fn sandbox_list(
                &self,
                user_id: &str,
                platform: soku_core::platform::Platform,
                limit: i64,
            ) -> soku_core::store::StoreResult<Vec<soku_core::queue::SandboxPost>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", crate::sql_posts::sandbox_columns!(),
                    " FROM sandbox_posts WHERE user_id = $1 AND platform = $2 \
                     ORDER BY received_at DESC, id DESC LIMIT $3"
                ))
                .bind(user_id)
                .bind(platform.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(post_rows::e)?;
                rows.iter().map(post_rows::sandbox).collect()
            }
        }
    };
}
pub(crate) use post_store;
