//! The queue at a glance, for operators' metrics: open targets by platform, mode and status,
//! what is due and unclaimed, and accounts needing reconnection.

use super::Backend;
use super::rows::{e, mode, platform};
use chrono::{DateTime, Utc};
use soku_core::posts::TargetStatus;
use soku_core::queue::{QueueCount, QueueStats};
use soku_core::store::{StoreError, StoreResult};
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Stats<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Stats<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Reads only open targets: the statuses the queue's partial indexes cover.
    pub async fn queue(&self, now: DateTime<Utc>) -> StoreResult<QueueStats> {
        let now_ms = to_millis(now);
        let rows = sqlx::query(
            "SELECT t.platform, s.mode, t.status, COUNT(*), \
             SUM(CASE WHEN (t.status IN ('scheduled', 'queued') AND t.due_at <= $1) \
             OR (t.status = 'publishing' AND t.lease_until < $1) THEN 1 ELSE 0 END), \
             MIN(CASE WHEN t.status IN ('scheduled', 'queued') AND t.due_at <= $1 THEN t.due_at \
             WHEN t.status = 'publishing' AND t.lease_until < $1 THEN t.lease_until END) \
             FROM targets t JOIN submissions s ON s.id = t.submission_id \
             WHERE t.status IN ('scheduled', 'queued', 'publishing') \
             GROUP BY t.platform, s.mode, t.status \
             ORDER BY t.platform, s.mode, t.status",
        )
        .bind(now_ms)
        .fetch_all(self.0)
        .await
        .map_err(e)?;
        let mut targets = Vec::with_capacity(rows.len());
        for r in &rows {
            let p: String = r.try_get(0).map_err(e)?;
            let m: String = r.try_get(1).map_err(e)?;
            let st: String = r.try_get(2).map_err(e)?;
            let oldest: Option<i64> = r.try_get(5).map_err(e)?;
            targets.push(QueueCount {
                platform: platform(&p)?,
                mode: mode(&m)?,
                status: TargetStatus::parse(&st)
                    .ok_or_else(|| StoreError::Backend(format!("unknown target status {st}")))?,
                count: r.try_get(3).map_err(e)?,
                due: r.try_get::<Option<i64>, _>(4).map_err(e)?.unwrap_or(0),
                oldest_due: oldest.map(from_millis),
            });
        }
        let rows = sqlx::query(
            "SELECT platform, COUNT(*) FROM accounts WHERE status = 'needs_reconnect' \
             GROUP BY platform ORDER BY platform",
        )
        .fetch_all(self.0)
        .await
        .map_err(e)?;
        let mut accounts = Vec::with_capacity(rows.len());
        for r in &rows {
            let p: String = r.try_get(0).map_err(e)?;
            accounts.push((platform(&p)?, r.try_get(1).map_err(e)?));
        }
        Ok(QueueStats {
            targets,
            accounts_needing_reconnect: accounts,
        })
    }
}
