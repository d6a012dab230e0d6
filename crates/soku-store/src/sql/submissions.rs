//! Submissions and their targets as the API creates, reads and cancels them, and the
//! idempotency keys that make a retried create safe.

use super::Backend;
use super::rows::{ReadRow, SUBMISSION_COLUMNS, TARGET_COLUMNS, e};
use chrono::{DateTime, Utc};
use soku_core::StoreError;
use soku_core::keys::KeyMode;
use soku_core::queue::{
    CancelOutcome, IdempotencyState, NewSubmission, SubmissionFilter, SubmissionRecord,
};
use soku_core::store::StoreResult;
use soku_core::time::to_millis;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Submissions<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Submissions<'_, DB>
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
    /// Inserts the submissions, their targets and their idempotency responses, all in one
    /// transaction.
    pub async fn create(&self, submissions: &[NewSubmission]) -> StoreResult<Vec<bool>> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let mut stored = Vec::with_capacity(submissions.len());
        'submissions: for s in submissions {
            // The post's hosted files, still the user's, and kept so until this commits: a
            // deletion (`Media::delete_unless_used`) waits for it, or it for the deletion.
            for id in &s.media_ids {
                let found = sqlx::query(&format!(
                    "SELECT id FROM media WHERE id = $1 AND user_id = $2 AND mode = $3{}",
                    DB::FOR_SHARE
                ))
                .bind(id)
                .bind(&s.user_id)
                .bind(s.mode.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(e)?;
                if found.is_none() {
                    stored.push(false);
                    continue 'submissions;
                }
            }
            sqlx::query(
                "INSERT INTO submissions (id, user_id, mode, status, post_json, content_json, \
                 scheduled_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
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
            .map_err(e)?;
            for t in &s.targets {
                sqlx::query(
                    "INSERT INTO targets (id, submission_id, position, platform, account_ref, \
                     account_id, status, due_at, updated_at, text) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                .bind(&t.text)
                .execute(&mut *tx)
                .await
                .map_err(e)?;
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
                .map_err(e)?;
            }
            stored.push(true);
        }
        tx.commit().await.map_err(e)?;
        Ok(stored)
    }

    pub async fn get(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
    ) -> StoreResult<Option<SubmissionRecord>> {
        let sql = format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions s \
             WHERE s.id = $1 AND s.user_id = $2 AND s.mode = $3"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(user_id)
            .bind(mode.as_str())
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        let Some(row) = row else { return Ok(None) };
        let mut found = [row.submission()?];
        self.load_targets(&mut found).await?;
        let [s] = found;
        Ok(Some(s))
    }

    /// Newest first, from the filter's cursor on.
    pub async fn list(
        &self,
        user_id: &str,
        mode: KeyMode,
        f: &SubmissionFilter,
    ) -> StoreResult<Vec<SubmissionRecord>> {
        let sql = format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions s WHERE s.user_id = $1 AND s.mode = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR s.status = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR EXISTS \
                  (SELECT 1 FROM targets t WHERE t.submission_id = s.id AND t.platform = $4)) \
             AND (CAST($5 AS BIGINT) IS NULL OR s.created_at < $5 \
                  OR (s.created_at = $5 AND s.id < $6)) \
             ORDER BY s.created_at DESC, s.id DESC LIMIT $7"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(mode.as_str())
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.platform.map(|p| p.as_str()))
            .bind(f.before.as_ref().map(|(t, _)| to_millis(*t)))
            .bind(f.before.as_ref().map(|(_, id)| id.as_str()).unwrap_or(""))
            .bind(f.limit)
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        let mut out = rows
            .iter()
            .map(ReadRow::submission)
            .collect::<Result<Vec<_>, _>>()?;
        self.load_targets(&mut out).await?;
        Ok(out)
    }

    /// Fills in the targets of each submission, in position order.
    async fn load_targets(&self, submissions: &mut [SubmissionRecord]) -> StoreResult<()> {
        if submissions.is_empty() {
            return Ok(());
        }
        let placeholders: Vec<String> = (1..=submissions.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {TARGET_COLUMNS} FROM targets t WHERE t.submission_id IN ({}) \
             ORDER BY t.submission_id, t.position",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for s in submissions.iter() {
            query = query.bind(&s.id);
        }
        let rows = query.fetch_all(self.0).await.map_err(e)?;
        for row in &rows {
            let t = row.target(0)?;
            if let Some(s) = submissions.iter_mut().find(|s| s.id == t.submission_id) {
                s.targets.push(t);
            }
        }
        Ok(())
    }

    /// Cancels every target, or none when one has started (been attempted or sent).
    pub async fn cancel(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<CancelOutcome> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let owned =
            sqlx::query("SELECT id FROM submissions WHERE id = $1 AND user_id = $2 AND mode = $3")
                .bind(id)
                .bind(user_id)
                .bind(mode.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(e)?;
        if owned.is_none() {
            tx.rollback().await.map_err(e)?;
            return Ok(CancelOutcome::NotFound);
        }
        let sql = format!(
            "SELECT status, attempts, in_flight FROM targets WHERE submission_id = $1{}",
            DB::FOR_UPDATE
        );
        let states = sqlx::query(&sql)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(e)?;
        let mut cancelable = true;
        for r in &states {
            let status: String = r.try_get(0).map_err(e)?;
            let attempts: i64 = r.try_get(1).map_err(e)?;
            let in_flight: i64 = r.try_get(2).map_err(e)?;
            if !(status == "scheduled" || status == "queued") || attempts > 0 || in_flight != 0 {
                cancelable = false;
            }
        }
        if cancelable {
            let now = to_millis(now);
            sqlx::query(
                "UPDATE targets SET status = 'canceled', updated_at = $2 WHERE submission_id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
            sqlx::query(
                "UPDATE submissions SET status = 'canceled', updated_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(e)?;
            tx.commit().await.map_err(e)?;
        } else {
            tx.rollback().await.map_err(e)?;
        }
        let record = self
            .get(user_id, mode, id)
            .await?
            .ok_or_else(|| StoreError::Backend("submission vanished".into()))?;
        Ok(if cancelable {
            CancelOutcome::Canceled(record)
        } else {
            CancelOutcome::TooLate(record)
        })
    }

    /// Takes the key unless another request holds or completed it; a stale record (expired,
    /// or in flight since before `abandoned_before`) is taken over.
    #[allow(clippy::too_many_arguments)]
    pub async fn idempotency_acquire(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
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
            .execute(self.0)
            .await
            .map_err(e)?;
            if DB::rows_affected(&inserted) == 1 {
                return Ok(IdempotencyState::Acquired);
            }
            let row = sqlx::query(
                "SELECT request_hash, response_status, response_body, created_at \
                 FROM idempotency_keys WHERE user_id = $1 AND mode = $2 AND key = $3",
            )
            .bind(user_id)
            .bind(mode.as_str())
            .bind(key)
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
            let Some(row) = row else { continue };
            let hash: String = row.try_get(0).map_err(e)?;
            let status: Option<i64> = row.try_get(1).map_err(e)?;
            let body: Option<Vec<u8>> = row.try_get(2).map_err(e)?;
            let created: i64 = row.try_get(3).map_err(e)?;
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
                .execute(self.0)
                .await
                .map_err(e)?;
                if DB::rows_affected(&taken) == 1 {
                    return Ok(IdempotencyState::Acquired);
                }
                continue;
            }
            return Ok(IdempotencyState::Existing {
                request_hash: hash,
                response: status.map(|s| (s as u16, body.unwrap_or_default())),
            });
        }
        Err(StoreError::Backend("idempotency key kept changing".into()))
    }

    pub async fn idempotency_release(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE user_id = $1 AND mode = $2 AND key = $3 \
             AND response_status IS NULL",
        )
        .bind(user_id)
        .bind(mode.as_str())
        .bind(key)
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }

    pub async fn idempotency_purge(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(to_millis(before))
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(DB::rows_affected(&done))
    }
}
