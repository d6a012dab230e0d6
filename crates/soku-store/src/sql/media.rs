//! Hosted media's rows (spec 8.1): recorded, found by id or idempotency key, listed, deleted.

use super::Backend;
use super::rows::e;
use soku_core::StoreError;
use soku_core::keys::KeyMode;
use soku_core::media::{MediaDeletion, MediaFacts, MediaKind, MediaPage, MediaRecord, known_type};
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

const COLUMNS: &str = "id, user_id, mode, kind, mime_type, size_bytes, sha256, width, height, \
     duration_ms, storage_key, file_name, source_url, idempotency_key, request_hash, created_at";

/// Submission statuses whose posts may still be sent (spec 6.2).
const UNFINISHED: &str = "('scheduled', 'queued', 'publishing')";

pub struct Media<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Media<'_, DB>
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
    pub async fn insert(&self, m: &MediaRecord) -> StoreResult<()> {
        let f = &m.facts;
        sqlx::query(&format!(
            "INSERT INTO media ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&m.id)
        .bind(&m.user_id)
        .bind(m.mode.as_str())
        .bind(f.kind.as_str())
        .bind(f.mime)
        .bind(f.size as i64)
        .bind(&m.sha256)
        .bind(f.width.map(i64::from))
        .bind(f.height.map(i64::from))
        .bind(f.duration_ms.map(|d| d as i64))
        .bind(&m.storage_key)
        .bind(&m.file_name)
        .bind(m.source_url.as_deref())
        .bind(m.idempotency_key.as_deref())
        .bind(&m.request_hash)
        .bind(to_millis(m.created_at))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> StoreResult<Option<MediaRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM media WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.0)
            .await
            .map_err(e)?;
        row.as_ref().map(read).transpose()
    }

    pub async fn by_key(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
    ) -> StoreResult<Option<MediaRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM media \
             WHERE user_id = $1 AND mode = $2 AND idempotency_key = $3"
        ))
        .bind(user_id)
        .bind(mode.as_str())
        .bind(key)
        .fetch_optional(self.0)
        .await
        .map_err(e)?;
        row.as_ref().map(read).transpose()
    }

    pub async fn release_key(&self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE media SET idempotency_key = NULL WHERE id = $1")
            .bind(id)
            .execute(self.0)
            .await
            .map_err(e)?;
        Ok(())
    }

    /// Newest first, older than the page's cursor.
    pub async fn list(
        &self,
        user_id: &str,
        mode: KeyMode,
        page: &MediaPage,
    ) -> StoreResult<Vec<MediaRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM media WHERE user_id = $1 AND mode = $2 \
             AND (CAST($3 AS BIGINT) IS NULL OR created_at < $3 \
                  OR (created_at = $3 AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(user_id)
        .bind(mode.as_str())
        .bind(page.before.as_ref().map(|(t, _)| to_millis(*t)))
        .bind(
            page.before
                .as_ref()
                .map(|(_, id)| id.as_str())
                .unwrap_or(""),
        )
        .bind(page.limit)
        .fetch_all(self.0)
        .await
        .map_err(e)?;
        rows.iter().map(read).collect()
    }

    /// Whether an unfinished post of the user names `/media/<id>/` (the hosted URL's path).
    /// Deletes the user's file unless a post that has not finished publishing names it by a
    /// URL starting with `url_prefix`, in one transaction. The row is locked first
    /// (PostgreSQL), so a post being stored with the file (`Submissions::create`, which holds
    /// it `FOR SHARE`) is either committed before the check, and seen by it, or finds the row
    /// gone; SQLite's writers are serialised by `BEGIN IMMEDIATE`.
    pub async fn delete_unless_used(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
        url_prefix: &str,
    ) -> StoreResult<MediaDeletion> {
        let mut tx = self.0.begin_with(DB::BEGIN).await.map_err(e)?;
        let found = sqlx::query(&format!(
            "SELECT id FROM media WHERE id = $1 AND user_id = $2 AND mode = $3{}",
            DB::FOR_UPDATE
        ))
        .bind(id)
        .bind(user_id)
        .bind(mode.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(e)?;
        if found.is_none() {
            tx.rollback().await.map_err(e)?;
            return Ok(MediaDeletion::NotFound);
        }
        // A post names the file as a JSON string: `"<prefix>...`.
        let used = sqlx::query(&format!(
            "SELECT 1 FROM submissions WHERE user_id = $1 AND mode = $2 \
             AND status IN {UNFINISHED} AND post_json LIKE $3 ESCAPE '\\' LIMIT 1"
        ))
        .bind(user_id)
        .bind(mode.as_str())
        .bind(format!("%\"{}%", like_escaped(url_prefix)))
        .fetch_optional(&mut *tx)
        .await
        .map_err(e)?;
        if used.is_some() {
            tx.rollback().await.map_err(e)?;
            return Ok(MediaDeletion::InUse);
        }
        let row = sqlx::query(&format!(
            "DELETE FROM media WHERE id = $1 AND user_id = $2 AND mode = $3 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(user_id)
        .bind(mode.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(e)?;
        let record = row.as_ref().map(read).transpose()?;
        tx.commit().await.map_err(e)?;
        Ok(record.map_or(MediaDeletion::NotFound, |r| {
            MediaDeletion::Deleted(Box::new(r))
        }))
    }
}

/// `text` matched literally by `LIKE ... ESCAPE '\'` (`_`, in every media id, and `%` are
/// wildcards otherwise).
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '\\' | '_' | '%') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn read<R>(r: &R) -> StoreResult<MediaRecord>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let text = |c: &str| -> StoreResult<String> { r.try_get(c).map_err(e) };
    let opt_int = |c: &str| -> StoreResult<Option<i64>> { r.try_get(c).map_err(e) };
    let bad = |what: &str, v: &str| StoreError::Backend(format!("media row: bad {what} {v:?}"));
    let mode = text("mode")?;
    let kind = text("kind")?;
    let mime = text("mime_type")?;
    let size: i64 = r.try_get("size_bytes").map_err(e)?;
    let created: i64 = r.try_get("created_at").map_err(e)?;
    Ok(MediaRecord {
        id: text("id")?,
        user_id: text("user_id")?,
        mode: KeyMode::parse(&mode).ok_or_else(|| bad("mode", &mode))?,
        facts: MediaFacts {
            kind: MediaKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
            mime: known_type(&mime).ok_or_else(|| bad("type", &mime))?,
            size: size as u64,
            width: opt_int("width")?.map(|w| w as u32),
            height: opt_int("height")?.map(|h| h as u32),
            duration_ms: opt_int("duration_ms")?.map(|d| d as u64),
        },
        sha256: text("sha256")?,
        storage_key: text("storage_key")?,
        file_name: text("file_name")?,
        source_url: r.try_get("source_url").map_err(e)?,
        idempotency_key: r.try_get("idempotency_key").map_err(e)?,
        request_hash: text("request_hash")?,
        created_at: from_millis(created),
    })
}
