//! The SQL shared by both backends, instantiated per driver by `sql_store!`.

/// Columns of `api_keys` as the listing reads them, in `api_key_from_row`'s order.
macro_rules! key_columns {
    () => {
        "k.id, k.user_id, k.name, k.mode, k.preview, k.created_at, k.last_used_at, k.revoked_at, k.expires_at"
    };
}
pub(crate) use key_columns;

/// The same columns unqualified, for `RETURNING` (SQLite does not accept the alias there).
macro_rules! key_columns_returning {
    () => {
        "id, user_id, name, mode, preview, created_at, last_used_at, revoked_at, expires_at"
    };
}
pub(crate) use key_columns_returning;

macro_rules! sql_store {
    ($store:ty, $backend:literal, $row:ty) => {
        mod rows {
            use soku_core::keys::KeyMode;
            use soku_core::model::{ApiKey, Role, Subscription, SubscriptionStatus, User};
            use soku_core::time::from_millis;
            use soku_core::StoreError;
            use sqlx::Row;

            fn corrupt(what: &str) -> StoreError {
                StoreError::Backend(format!("unexpected value in column {what}"))
            }

            pub fn user(r: &$row, prefix: &str) -> Result<User, StoreError> {
                let col = |c: &str| format!("{prefix}{c}");
                let role: String = r.try_get(col("role").as_str()).map_err(crate::backend_error)?;
                Ok(User {
                    id: r.try_get(col("id").as_str()).map_err(crate::backend_error)?,
                    email: r.try_get(col("email").as_str()).map_err(crate::backend_error)?,
                    role: Role::parse(&role).ok_or_else(|| corrupt("users.role"))?,
                    created_at: from_millis(
                        r.try_get(col("created_at").as_str()).map_err(crate::backend_error)?,
                    ),
                })
            }

            pub fn api_key(r: &$row) -> Result<ApiKey, StoreError> {
                let e = crate::backend_error;
                let mode: String = r.try_get(3).map_err(e)?;
                Ok(ApiKey {
                    id: r.try_get(0).map_err(e)?,
                    user_id: r.try_get(1).map_err(e)?,
                    name: r.try_get(2).map_err(e)?,
                    mode: KeyMode::parse(&mode).ok_or_else(|| corrupt("api_keys.mode"))?,
                    preview: r.try_get(4).map_err(e)?,
                    created_at: from_millis(r.try_get(5).map_err(e)?),
                    last_used_at: r.try_get::<Option<i64>, _>(6).map_err(e)?.map(from_millis),
                    revoked_at: r.try_get::<Option<i64>, _>(7).map_err(e)?.map(from_millis),
                    expires_at: r.try_get::<Option<i64>, _>(8).map_err(e)?.map(from_millis),
                })
            }

            /// An override from its two nullable columns (a LEFT JOIN that found nothing: None).
            pub fn quota(rate: Option<i64>, burst: Option<i64>) -> Option<soku_core::ratelimit::Quota> {
                use soku_core::ratelimit::{MAX_BURST, MAX_RATE, Quota};
                match (rate, burst) {
                    (Some(rate), Some(burst)) => Some(Quota::new(
                        rate.clamp(1, i64::from(MAX_RATE)) as u32,
                        burst.clamp(0, i64::from(MAX_BURST)) as u32,
                    )),
                    _ => None,
                }
            }

            pub fn subscription(status: Option<String>, end: Option<i64>) -> Result<Option<Subscription>, StoreError> {
                match (status, end) {
                    (Some(status), Some(end)) => Ok(Some(Subscription {
                        status: SubscriptionStatus::parse(&status)
                            .ok_or_else(|| corrupt("subscriptions.status"))?,
                        current_period_end: from_millis(end),
                    })),
                    _ => Ok(None),
                }
            }
        }

        #[async_trait::async_trait]
        impl soku_core::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> soku_core::store::StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                Ok(())
            }

            async fn create_user(
                &self,
                id: &str,
                email: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<soku_core::model::User> {
                let row = sqlx::query(
                    "INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, 'user', $3) \
                     RETURNING id, email, role, created_at",
                )
                .bind(id)
                .bind(email)
                .bind(soku_core::time::to_millis(now))
                .fetch_one(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                rows::user(&row, "")
            }

            async fn ensure_user(
                &self,
                id: &str,
                email: Option<&str>,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<soku_core::model::User> {
                sqlx::query(
                    "INSERT INTO users (id, email, role, created_at) VALUES ($1, $2, 'user', $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(email)
                .bind(soku_core::time::to_millis(now))
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                self.get_user(id).await?.ok_or_else(|| {
                    soku_core::StoreError::Backend("user vanished after insert".into())
                })
            }

            async fn get_user(&self, id: &str) -> soku_core::store::StoreResult<Option<soku_core::model::User>> {
                let row = sqlx::query("SELECT id, email, role, created_at FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                row.map(|r| rows::user(&r, "")).transpose()
            }

            async fn set_password_hash(&self, user_id: &str, hash: &str) -> soku_core::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(hash)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn password_users(
                &self,
                email: &str,
            ) -> soku_core::store::StoreResult<Vec<(soku_core::model::User, String)>> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT id, email, role, created_at, password_hash FROM users \
                     WHERE LOWER(email) = LOWER($1) AND password_hash IS NOT NULL ORDER BY created_at, id",
                )
                .bind(email)
                .fetch_all(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            rows::user(r, "")?,
                            r.try_get::<String, _>("password_hash").map_err(crate::backend_error)?,
                        ))
                    })
                    .collect()
            }

            async fn set_role(&self, id: &str, role: soku_core::model::Role) -> soku_core::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                    .bind(id)
                    .bind(role.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_subscription(
                &self,
                user_id: &str,
                sub: &soku_core::model::Subscription,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<bool> {
                if self.get_user(user_id).await?.is_none() {
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
                .bind(soku_core::time::to_millis(sub.current_period_end))
                .bind(soku_core::time::to_millis(now))
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                Ok(true)
            }

            async fn get_subscription(
                &self,
                user_id: &str,
            ) -> soku_core::store::StoreResult<Option<soku_core::model::Subscription>> {
                use sqlx::Row;
                let row = sqlx::query("SELECT status, current_period_end FROM subscriptions WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                match row {
                    None => Ok(None),
                    Some(r) => rows::subscription(
                        r.try_get(0).map_err(crate::backend_error)?,
                        r.try_get(1).map_err(crate::backend_error)?,
                    ),
                }
            }

            async fn insert_api_key(&self, key: &soku_core::model::NewApiKey) -> soku_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO api_keys (id, user_id, name, mode, key_hash, preview, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&key.id)
                .bind(&key.user_id)
                .bind(&key.name)
                .bind(key.mode.as_str())
                .bind(&key.hash.0[..])
                .bind(&key.preview)
                .bind(soku_core::time::to_millis(key.created_at))
                .bind(key.expires_at.map(soku_core::time::to_millis))
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                Ok(())
            }

            async fn find_key_grant(
                &self,
                hash: &soku_core::keys::KeyHash,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<Option<soku_core::model::KeyGrant>> {
                use sqlx::Row;
                let row = sqlx::query(concat!(
                    "SELECT ",
                    crate::sql::key_columns!(),
                    ", u.id AS u_id, u.email AS u_email, u.role AS u_role, u.created_at AS u_created_at, \
                     s.status, s.current_period_end, r.rate AS rl_rate, r.burst AS rl_burst \
                     FROM api_keys k JOIN users u ON u.id = k.user_id \
                     LEFT JOIN subscriptions s ON s.user_id = k.user_id \
                     LEFT JOIN rate_limit_overrides r ON r.user_id = k.user_id \
                     WHERE k.key_hash = $1 AND k.revoked_at IS NULL \
                     AND (k.expires_at IS NULL OR k.expires_at > $2)"
                ))
                .bind(&hash.0[..])
                .bind(soku_core::time::to_millis(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                let Some(r) = row else { return Ok(None) };
                Ok(Some(soku_core::model::KeyGrant {
                    key: rows::api_key(&r)?,
                    user: rows::user(&r, "u_")?,
                    subscription: rows::subscription(
                        r.try_get("status").map_err(crate::backend_error)?,
                        r.try_get("current_period_end").map_err(crate::backend_error)?,
                    )?,
                    rate_limit: rows::quota(
                        r.try_get("rl_rate").map_err(crate::backend_error)?,
                        r.try_get("rl_burst").map_err(crate::backend_error)?,
                    ),
                }))
            }

            async fn list_api_keys(&self, user_id: &str) -> soku_core::store::StoreResult<Vec<soku_core::model::ApiKey>> {
                let all = sqlx::query(concat!(
                    "SELECT ",
                    crate::sql::key_columns!(),
                    " FROM api_keys k WHERE k.user_id = $1 ORDER BY k.created_at DESC, k.id DESC"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                all.iter().map(rows::api_key).collect()
            }

            async fn get_api_key(&self, id: &str) -> soku_core::store::StoreResult<Option<soku_core::model::ApiKey>> {
                let row = sqlx::query(concat!("SELECT ", crate::sql::key_columns!(), " FROM api_keys k WHERE k.id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                row.as_ref().map(rows::api_key).transpose()
            }

            async fn revoke_api_key(
                &self,
                user_id: Option<&str>,
                id: &str,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<Option<soku_core::model::ApiKey>> {
                let row = sqlx::query(concat!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
                     WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR user_id = $2) RETURNING ",
                    crate::sql::key_columns_returning!()
                ))
                .bind(id)
                .bind(user_id)
                .bind(soku_core::time::to_millis(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                row.as_ref().map(rows::api_key).transpose()
            }

            async fn touch_api_key(&self, id: &str, now: chrono::DateTime<chrono::Utc>) -> soku_core::store::StoreResult<()> {
                let now = soku_core::time::to_millis(now);
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
                )
                .bind(id)
                .bind(now)
                .bind(now - 60_000)
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                Ok(())
            }

            async fn set_rate_limit_override(
                &self,
                user_id: &str,
                quota: soku_core::ratelimit::Quota,
                now: chrono::DateTime<chrono::Utc>,
            ) -> soku_core::store::StoreResult<bool> {
                if self.get_user(user_id).await?.is_none() {
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
                .bind(soku_core::time::to_millis(now))
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                Ok(true)
            }

            async fn clear_rate_limit_override(&self, user_id: &str) -> soku_core::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM rate_limit_overrides WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn rate_profile(
                &self,
                user_id: &str,
            ) -> soku_core::store::StoreResult<Option<soku_core::model::RateProfile>> {
                use sqlx::Row;
                let row = sqlx::query(
                    "SELECT u.role, s.status, s.current_period_end, r.rate, r.burst \
                     FROM users u \
                     LEFT JOIN subscriptions s ON s.user_id = u.id \
                     LEFT JOIN rate_limit_overrides r ON r.user_id = u.id \
                     WHERE u.id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                let Some(r) = row else { return Ok(None) };
                let e = crate::backend_error;
                let role: String = r.try_get(0).map_err(e)?;
                Ok(Some(soku_core::model::RateProfile {
                    role: soku_core::model::Role::parse(&role)
                        .ok_or_else(|| soku_core::StoreError::Backend("unexpected value in column users.role".into()))?,
                    subscription: rows::subscription(r.try_get(1).map_err(e)?, r.try_get(2).map_err(e)?)?,
                    rate_limit: rows::quota(r.try_get(3).map_err(e)?, r.try_get(4).map_err(e)?),
                }))
            }

            async fn signing_keys(&self) -> soku_core::store::StoreResult<Vec<soku_core::model::SigningKey>> {
                use sqlx::Row;
                let all = sqlx::query("SELECT kid, private_pem, created_at FROM signing_keys ORDER BY generation")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                all.iter()
                    .map(|r| {
                        Ok(soku_core::model::SigningKey {
                            kid: r.try_get(0).map_err(crate::backend_error)?,
                            private_pem: r.try_get(1).map_err(crate::backend_error)?,
                            created_at: soku_core::time::from_millis(r.try_get(2).map_err(crate::backend_error)?),
                        })
                    })
                    .collect()
            }

            async fn insert_signing_key_if_none(&self, key: &soku_core::model::SigningKey) -> soku_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (generation, kid, private_pem, created_at) VALUES (1, $1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&key.kid)
                .bind(&key.private_pem)
                .bind(soku_core::time::to_millis(key.created_at))
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                Ok(())
            }

            async fn get_setting(&self, name: &str) -> soku_core::store::StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::backend_error)
            }

            async fn insert_setting_if_absent(&self, name: &str, value: &str) -> soku_core::store::StoreResult<bool> {
                let done = sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(crate::backend_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn put_setting(&self, name: &str, value: &str) -> soku_core::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await
                .map_err(crate::backend_error)?;
                Ok(())
            }
        }
    };
}
pub(crate) use sql_store;
