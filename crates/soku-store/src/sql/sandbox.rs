//! What the sandbox platform received: one row per post a test key published.

use super::Backend;
use super::rows::{ReadRow, SANDBOX_COLUMNS, e};
use chrono::{DateTime, Utc};
use soku_core::platform::Platform;
use soku_core::queue::SandboxPost;
use soku_core::store::StoreResult;
use soku_core::time::to_millis;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Type};

pub struct Sandbox<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Sandbox<'_, DB>
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
    /// Stores each post, or counts one more create of a post with its marker.
    pub async fn create(&self, posts: &[SandboxPost]) -> StoreResult<Vec<SandboxPost>> {
        let sql = format!(
            "INSERT INTO sandbox_posts (id, user_id, platform, marker, submission_id, target_id, \
             text, media_json, received_at, create_count, options_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10) \
             ON CONFLICT (marker) DO UPDATE SET create_count = sandbox_posts.create_count + 1 \
             RETURNING {SANDBOX_COLUMNS}"
        );
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let mut stored = Vec::with_capacity(posts.len());
        for p in posts {
            let row = sqlx::query(&sql)
                .bind(&p.id)
                .bind(&p.user_id)
                .bind(p.platform.as_str())
                .bind(&p.marker)
                .bind(&p.submission_id)
                .bind(&p.target_id)
                .bind(&p.text)
                .bind(&p.media_json)
                .bind(to_millis(p.received_at))
                .bind(&p.options_json)
                .fetch_one(&mut *tx)
                .await
                .map_err(e)?;
            stored.push(row.sandbox()?);
        }
        tx.commit().await.map_err(e)?;
        Ok(stored)
    }

    pub async fn find(
        &self,
        user_id: &str,
        platform: Platform,
        marker: &str,
    ) -> StoreResult<Option<SandboxPost>> {
        let sql = format!(
            "SELECT {SANDBOX_COLUMNS} FROM sandbox_posts \
             WHERE user_id = $1 AND platform = $2 AND marker = $3"
        );
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(platform.as_str())
            .bind(marker)
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.as_ref().map(ReadRow::sandbox).transpose()
    }

    /// Newest first, from the cursor `(received_at, id)` on (exclusive).
    pub async fn list(
        &self,
        user_id: &str,
        platform: Platform,
        before: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> StoreResult<Vec<SandboxPost>> {
        let sql = format!(
            "SELECT {SANDBOX_COLUMNS} FROM sandbox_posts WHERE user_id = $1 AND platform = $2 \
             AND (CAST($3 AS BIGINT) IS NULL OR received_at < $3 \
                  OR (received_at = $3 AND id < $4)) \
             ORDER BY received_at DESC, id DESC LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .bind(platform.as_str())
            .bind(before.as_ref().map(|(t, _)| to_millis(*t)))
            .bind(before.as_ref().map(|(_, id)| id.as_str()).unwrap_or(""))
            .bind(limit)
            .fetch_all(self.0)
            .await
            .map_err(e)?;
        rows.iter().map(ReadRow::sandbox).collect()
    }
}
