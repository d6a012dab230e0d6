//! Security events (spec 4.1): written with the change they record (`insert_event` inside the
//! change's transaction), listed newest first, deleted after 90 days.

use super::Backend;
use super::rows::e;
use chrono::{DateTime, Utc};
use soku_core::StoreError;
use soku_core::audit::{AuditCursor, AuditEvent, AuditKind, Origin};
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Audit<'p, DB: Backend>(pub &'p Pool<DB>);

const EVENT_COLUMNS: &str = "id, user_id, type, at, key_id, ip, user_agent, details";

/// Writes `event` on `conn`: a transaction's connection, so that the event commits with the
/// change it records, or the pool.
pub async fn insert_event<'c, DB, X>(conn: X, event: &AuditEvent) -> StoreResult<()>
where
    DB: Backend,
    X: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB>,
{
    sqlx::query(
        "INSERT INTO audit_events (id, user_id, type, at, key_id, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&event.id)
    .bind(&event.user_id)
    .bind(event.kind.as_str())
    .bind(to_millis(event.at))
    .bind(&event.key_id)
    .bind(&event.origin.ip)
    .bind(&event.origin.user_agent)
    .bind(event.details.to_string())
    .execute(conn)
    .await
    .map_err(e)?;
    Ok(())
}

impl<DB: Backend> Audit<'_, DB>
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
    pub async fn insert(&self, event: &AuditEvent) -> StoreResult<()> {
        insert_event(self.0, event).await
    }

    pub async fn list(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<&AuditCursor>,
    ) -> StoreResult<Vec<AuditEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE user_id = $1 \
             AND (CAST($2 AS BIGINT) IS NULL OR at < $2 OR (at = $2 AND id < $3)) \
             ORDER BY at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(cursor.map(|c| to_millis(c.at)))
            .bind(cursor.map(|c| c.id.clone()).unwrap_or_default())
            .bind(limit as i64)
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(2).map_err(e)?;
                let details: String = r.try_get(7).map_err(e)?;
                Ok(AuditEvent {
                    id: r.try_get(0).map_err(e)?,
                    user_id: r.try_get(1).map_err(e)?,
                    kind: AuditKind::parse(&kind).ok_or_else(|| corrupt("audit_events.type"))?,
                    at: from_millis(r.try_get(3).map_err(e)?),
                    key_id: r.try_get(4).map_err(e)?,
                    origin: Origin {
                        ip: r.try_get(5).map_err(e)?,
                        user_agent: r.try_get(6).map_err(e)?,
                    },
                    details: serde_json::from_str(&details)
                        .map_err(|_| corrupt("audit_events.details"))?,
                })
            })
            .collect()
    }

    pub async fn purge(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(to_millis(before))
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done))
    }
}

fn corrupt(what: &str) -> StoreError {
    super::rows::corrupt(what)
}
