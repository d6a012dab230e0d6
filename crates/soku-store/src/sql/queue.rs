//! The publishing queue: workers claim due targets under a lease, mark an attempt as sent,
//! and record its outcome, which settles the submission's status.

use super::Backend;
use super::rows::{ReadRow, TARGET_COLUMN_COUNT, TARGET_COLUMNS, e, mode};
use chrono::{DateTime, Utc};
use soku_core::posts::{SubmissionStatus, TargetStatus};
use soku_core::queue::{ClaimedTarget, FinishTarget, InFlight, TargetOutcome};
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};
use std::collections::BTreeMap;

pub struct Queue<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Queue<'_, DB>
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
    /// Leases up to `limit` targets to `owner`: those whose lease ran out first (their worker
    /// died), then those that are due, oldest due first.
    pub async fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedTarget>> {
        let (now, until) = (to_millis(now), to_millis(lease_until));
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let sql = format!(
            "UPDATE targets SET lease_owner = $1, lease_until = $3, attempts = attempts + 1, \
             updated_at = $2 WHERE id IN (SELECT id FROM targets \
             WHERE status = 'publishing' AND lease_until < $2 ORDER BY lease_until LIMIT $4{})",
            DB::SKIP_LOCKED
        );
        let expired = sqlx::query(&sql)
            .bind(owner)
            .bind(now)
            .bind(until)
            .bind(limit)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        let expired = DB::rows_affected(&expired) as i64;
        if expired < limit {
            let sql = format!(
                "UPDATE targets SET status = 'publishing', lease_owner = $1, lease_until = $3, \
                 attempts = attempts + 1, updated_at = $2 WHERE id IN (SELECT id FROM targets \
                 WHERE status IN ('scheduled', 'queued') AND due_at <= $2 \
                 ORDER BY due_at LIMIT $4{})",
                DB::SKIP_LOCKED
            );
            sqlx::query(&sql)
                .bind(owner)
                .bind(now)
                .bind(until)
                .bind(limit - expired)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
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
        .map_err(e)?;
        let sql = format!(
            "SELECT {TARGET_COLUMNS}, s.user_id, s.mode, s.content_json, t.in_flight, \
             s.created_at, s.scheduled_at, t.progress_json FROM targets t \
             JOIN submissions s ON s.id = t.submission_id \
             WHERE t.lease_owner = $1 AND t.status = 'publishing' ORDER BY t.due_at"
        );
        let rows = sqlx::query(&sql)
            .bind(owner)
            .fetch_all(&mut *tx)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
        rows.iter()
            .map(|r| {
                // The submission's columns follow the target's.
                let n = TARGET_COLUMN_COUNT;
                let mode_s: String = r.try_get(n + 1).map_err(e)?;
                let created: i64 = r.try_get(n + 4).map_err(e)?;
                let scheduled: Option<i64> = r.try_get(n + 5).map_err(e)?;
                Ok(ClaimedTarget {
                    target: r.target(0)?,
                    user_id: r.try_get(n).map_err(e)?,
                    mode: mode(&mode_s)?,
                    content_json: r.try_get(n + 2).map_err(e)?,
                    in_flight: r.try_get::<i64, _>(n + 3).map_err(e)? != 0,
                    submitted_at: from_millis(scheduled.unwrap_or(created)),
                    progress_json: r.try_get(n + 6).map_err(e)?,
                })
            })
            .collect()
    }

    /// Moves the lease of a target `owner` still holds to `until`; false when it holds it no
    /// more.
    pub async fn extend_lease(
        &self,
        target_id: &str,
        owner: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE targets SET lease_until = $3 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'publishing'",
        )
        .bind(target_id)
        .bind(owner)
        .bind(to_millis(until))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// Saves a connector's progress on a target; false when `owner` no longer holds its lease.
    pub async fn save_progress(
        &self,
        target_id: &str,
        owner: &str,
        progress_json: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE targets SET progress_json = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'publishing'",
        )
        .bind(target_id)
        .bind(owner)
        .bind(progress_json)
        .bind(to_millis(now))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    /// The earliest time a target becomes claimable (due or lease expiry), if any.
    pub async fn next_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = sqlx::query(
            "SELECT (SELECT MIN(due_at) FROM targets WHERE status IN ('scheduled', 'queued')), \
             (SELECT MIN(lease_until) FROM targets WHERE status = 'publishing')",
        )
        .fetch_one(self.0)
        .await
        .map_err(e)?;
        let due: Option<i64> = row.try_get(0).map_err(e)?;
        let lease: Option<i64> = row.try_get(1).map_err(e)?;
        Ok(match (due, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(from_millis))
    }

    /// Marks targets in flight and renews their leases, where `owner` holds a lease that has
    /// not run out.
    pub async fn mark_in_flight(&self, targets: &[InFlight]) -> StoreResult<Vec<bool>> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let mut marked = Vec::with_capacity(targets.len());
        for t in targets {
            // A lease that ran out may be taken over at any moment, even if no one has yet:
            // nothing is sent under it. The mark renews it, so the call starts with all of it.
            let done = sqlx::query(
                "UPDATE targets SET in_flight = 1, lease_until = $4 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'publishing' \
                 AND lease_until >= $3",
            )
            .bind(&t.target_id)
            .bind(&t.owner)
            .bind(to_millis(t.now))
            .bind(to_millis(t.lease_until))
            .execute(&mut *tx)
            .await
            .map_err(e)?;
            marked.push(DB::rows_affected(&done) == 1);
        }
        tx.commit().await.map_err(e)?;
        Ok(marked)
    }

    /// Records each attempt's outcome where its worker still holds the lease, then each
    /// touched submission's status from all its targets.
    pub async fn finish(&self, attempts: &[FinishTarget]) -> StoreResult<Vec<bool>> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let mut finished = Vec::with_capacity(attempts.len());
        let mut touched = BTreeMap::new();
        for a in attempts {
            let (status, due, post_id, url, published, error, in_flight) = match &a.outcome {
                TargetOutcome::Published { post_id, url } => (
                    TargetStatus::Published,
                    None,
                    Some(post_id.as_str()),
                    url.as_deref(),
                    Some(to_millis(a.now)),
                    None,
                    0i64,
                ),
                TargetOutcome::Retry {
                    due_at,
                    error,
                    in_flight,
                } => (
                    TargetStatus::Queued,
                    Some(to_millis(*due_at)),
                    None,
                    None,
                    None,
                    Some(error),
                    *in_flight as i64,
                ),
                TargetOutcome::Failed(error) => {
                    (TargetStatus::Failed, None, None, None, None, Some(error), 0)
                }
                TargetOutcome::Unknown(error) => (
                    TargetStatus::Unknown,
                    None,
                    None,
                    None,
                    None,
                    Some(error),
                    1,
                ),
            };
            let updated = sqlx::query(
                "UPDATE targets SET status = $3, due_at = COALESCE($4, due_at), \
                 platform_post_id = $5, platform_post_url = $6, published_at = $7, \
                 error_code = $8, error_message = $9, platform_error = $10, in_flight = $11, \
                 lease_owner = NULL, lease_until = NULL, updated_at = $12 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'publishing' \
                 RETURNING submission_id",
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
            .map_err(e)?;
            finished.push(updated.is_some());
            if let Some(row) = updated {
                let submission_id: String = row.try_get(0).map_err(e)?;
                let at = touched.entry(submission_id).or_insert(a.now);
                *at = (*at).max(a.now);
            }
        }
        // Then each submission's status from all its targets. Targets of one submission may
        // finish at once in two transactions: the submission's row lock (taken after the
        // targets', in the order claims and cancels take them, and in id order) makes the
        // second recount wait for the first commit; its next statement then sees both targets
        // final. SQLite's write lock serialises the whole transaction.
        let lock = format!("SELECT id FROM submissions WHERE id = $1{}", DB::FOR_UPDATE);
        for (submission_id, now) in &touched {
            sqlx::query(&lock)
                .bind(submission_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(e)?;
            let rows = sqlx::query("SELECT status FROM targets WHERE submission_id = $1")
                .bind(submission_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(e)?;
            let mut statuses = Vec::with_capacity(rows.len());
            for r in &rows {
                let s: String = r.try_get(0).map_err(e)?;
                statuses.push(TargetStatus::parse(&s).unwrap_or(TargetStatus::Unknown));
            }
            sqlx::query("UPDATE submissions SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(submission_id)
                .bind(SubmissionStatus::from_targets(&statuses).as_str())
                .bind(to_millis(*now))
                .execute(&mut *tx)
                .await
                .map_err(e)?;
        }
        tx.commit().await.map_err(e)?;
        Ok(finished)
    }
}
