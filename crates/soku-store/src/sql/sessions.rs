//! Dashboard sessions (spec 4.2): one row per sign-in; signing out revokes the row, so every
//! copy of the cookie stops working.

use super::Backend;
use super::audit::insert_event;
use super::rows::{ReadRow, e};
use chrono::{DateTime, Utc};
use soku_core::audit::{AuditDraft, AuditEvent};
use soku_core::model::{SessionRecord, User};
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Sessions<'p, DB: Backend>(pub &'p Pool<DB>);

const SESSION_COLUMNS: &str = "s.id, s.user_id, s.created_at, s.expires_at, s.last_seen_at, \
     s.ip, s.user_agent, s.revoked_at";

fn session<R>(r: &R) -> StoreResult<SessionRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(SessionRecord {
        id: r.try_get(0).map_err(e)?,
        user_id: r.try_get(1).map_err(e)?,
        created_at: from_millis(r.try_get(2).map_err(e)?),
        expires_at: from_millis(r.try_get(3).map_err(e)?),
        last_seen_at: from_millis(r.try_get(4).map_err(e)?),
        ip: r.try_get(5).map_err(e)?,
        user_agent: r.try_get(6).map_err(e)?,
        revoked_at: r.try_get::<Option<i64>, _>(7).map_err(e)?.map(from_millis),
    })
}

impl<DB: Backend> Sessions<'_, DB>
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
    pub async fn insert(&self, s: &SessionRecord, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, last_seen_at, ip, \
             user_agent, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(to_millis(s.created_at))
        .bind(to_millis(s.expires_at))
        .bind(to_millis(s.last_seen_at))
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.revoked_at.map(to_millis))
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await.map_err(e)
    }

    pub async fn find(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(SessionRecord, User)>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, u.id AS u_id, u.email AS u_email, u.role AS u_role, \
             u.created_at AS u_created_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(to_millis(now))
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.map(|r| Ok((session(&r)?, r.user("u_")?))).transpose()
    }

    pub async fn touch(&self, id: &str, now: DateTime<Utc>, ip: Option<&str>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2, ip = COALESCE($3, ip) WHERE id = $1")
            .bind(id)
            .bind(to_millis(now))
            .bind(ip)
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(())
    }

    pub async fn list(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 \
             AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.created_at DESC, s.id DESC"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(to_millis(now))
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        rows.iter().map(session).collect()
    }

    pub async fn revoke(
        &self,
        user_id: &str,
        only: Option<&str>,
        now: DateTime<Utc>,
        audit: &AuditDraft,
    ) -> StoreResult<u64> {
        let at = to_millis(now);
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR id = $2) \
             AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(user_id)
        .bind(only)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        let ended = DB::rows_affected(&done);
        if only.is_none() {
            // Everywhere: the user's ID tokens signed in before now end too.
            sqlx::query(
                "UPDATE users SET tokens_valid_after = $2 WHERE id = $1 \
                 AND (tokens_valid_after IS NULL OR tokens_valid_after < $2)",
            )
            .bind(user_id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        }
        if ended > 0 {
            let mut event = audit.event(user_id, None, now);
            if !event.details.is_object() {
                event.details = serde_json::json!({});
            }
            event.details["sessions"] = ended.into();
            insert_event(&mut *tx, &event).await?;
        }
        tx.commit().await.map_err(e)?;
        Ok(ended)
    }

    pub async fn purge(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let at = to_millis(before);
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(at)
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done))
    }
}
