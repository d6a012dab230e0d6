//! Storage for Soku server: one `Store` trait (in `soku-core`), two databases.
//!
//! The embedded default is SQLite (one file, WAL mode); `postgres://` URLs select PostgreSQL.
//! Both implementations share their SQL text: it is written in the dialect the two have in
//! common (`$n` parameters, `ON CONFLICT`, `RETURNING`, integer milliseconds for time), and
//! the `sql_store!` macro instantiates it once per driver. Migrations are kept per backend.

mod sql;
mod sql_posts;

pub mod postgres;
pub mod sqlite;

use soku_core::{Store, StoreError};
use std::sync::Arc;

/// Opens (and migrates) the database named by `url`: `sqlite://path`, `sqlite::memory:`,
/// `postgres://…` or `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::Backend(
            "unsupported database URL: expected sqlite://… or postgres://…".into(),
        ))
    }
}

/// Removes a password from a database URL so that it can be logged.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Whether a connection coming back to the pool may be lent again. One still inside a
/// transaction is closed instead (which rolls the transaction back): a caller whose future was
/// dropped while its transaction began (a client that went away mid-request) leaves its
/// connection so, and on SQLite reusing it would keep the write lock taken for good.
pub(crate) fn reusable<C: sqlx::Connection>(conn: &C) -> bool {
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("closing a database connection returned inside a transaction");
    }
    clean
}

pub(crate) fn backend_error(e: sqlx::Error) -> StoreError {
    if e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
    {
        return StoreError::Conflict;
    }
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://soku.db"), "sqlite://soku.db");
    }
}
