//! Storage for Soku server: one `Store` trait (in `soku-core`), two databases.
//!
//! The embedded default is SQLite (one file, WAL mode); `postgres://` URLs select PostgreSQL.
//! Both share one implementation (`sql/`), generic over the sqlx driver and written in the
//! dialect the two have in common; `sqlite.rs` and `postgres.rs` connect, migrate, and say
//! what differs. Migrations are kept per backend.

mod sql;

pub mod postgres;
pub mod sqlite;

use soku_core::{Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Removes secrets from a database or Redis URL so that it can be logged: the password in the
/// user part, and the value of every query parameter whose name speaks of one (`password`,
/// `sslpassword`, Redis's `pass`, a `token`...), since PostgreSQL and Redis URLs take passwords
/// there too.
pub fn redact_url(url: &str) -> String {
    // The user part first, up to the last `@`: a password may hold `?`, `/` or `@` unescaped
    // (more is masked then than needed, never less).
    let out = match (url.find("://"), url.rfind('@')) {
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
    };
    // Then every `name=value` after a `?` or an `&`, wherever it stands: an `@` in the query
    // may have been taken for the user part's end above, and what followed it is still read.
    let mut redacted = String::with_capacity(out.len());
    for (i, piece) in out.split_inclusive(['?', '&']).enumerate() {
        let param = piece.strip_suffix(['?', '&']).unwrap_or(piece);
        match param.split_once('=') {
            Some((name, _)) if i > 0 && names_a_secret(name) => {
                redacted.push_str(name);
                redacted.push_str("=***");
            }
            _ => redacted.push_str(param),
        }
        redacted.push_str(&piece[param.len()..]);
    }
    redacted
}

fn names_a_secret(param: &str) -> bool {
    let param = param.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "key", "auth"]
        .iter()
        .any(|word| param.contains(word))
}

/// Whether a connection coming back to the pool may be lent again. One still inside a
/// transaction is closed instead (which rolls the transaction back): a caller whose future was
/// dropped while its transaction began (a client that went away mid-request) leaves its
/// connection so, and on SQLite reusing it would keep the write lock taken for good.
///
/// A transaction dropped without commit or rollback (an early return) is not such a case: its
/// rollback is queued, and on SQLite it runs on the connection's worker after the connection
/// is back here. A ping waits for it (the worker runs commands in order) before judging.
pub(crate) async fn reusable<C: sqlx::Connection>(conn: &mut C, closed: &AtomicU64) -> bool {
    if !conn.is_in_transaction() {
        return true;
    }
    if conn.ping().await.is_ok() && !conn.is_in_transaction() {
        return true;
    }
    closed.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("closing a database connection returned inside a transaction");
    false
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
        for (url, logged) in [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://soku.db", "sqlite://soku.db"),
            (
                "redis://:secret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
        ] {
            assert_eq!(super::redact_url(url), logged, "{url}");
        }
    }

    #[test]
    fn redacts_passwords_given_as_query_parameters() {
        for (url, logged) in [
            (
                "redis+unix:///run/redis.sock?db=1&pass=secret",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            (
                "postgres://u@h/db?sslmode=require&password=secret&sslpassword=s2",
                "postgres://u@h/db?sslmode=require&password=***&sslpassword=***",
            ),
            // Both places at once; a parameter without a value is left as it is.
            (
                "postgres://u:secret@h/db?Password=x&sslmode",
                "postgres://u:***@h/db?Password=***&sslmode",
            ),
            // An `@` in the query is not the end of a user part ...
            (
                "postgres://h/db?options=a@b&password=x",
                "postgres://h/db?options=a@b&password=***",
            ),
            // ... and when one is taken for it, the parameters after it are still read ...
            (
                "postgres://h:5432/db?options=a@b&password=x",
                "postgres://h:***@b&password=***",
            ),
            // ... nor is a `?` in an unescaped password the start of the query.
            (
                "postgres://u:pa?ss@h/db?password=x",
                "postgres://u:***@h/db?password=***",
            ),
        ] {
            assert_eq!(super::redact_url(url), logged, "{url}");
        }
    }
}
