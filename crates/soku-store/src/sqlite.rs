//! The embedded default: one SQLite file in WAL mode.

use crate::backend_error;
use crate::sql::{Backend, SqlStore};
use soku_core::StoreError;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The store on SQLite: `SqliteStore::connect("sqlite://soku.db")`.
pub type SqliteStore = SqlStore<Sqlite>;

impl Backend for Sqlite {
    const BACKEND: &'static str = "sqlite";
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const FOR_UPDATE: &'static str = "";
    const FOR_SHARE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl SqlStore<Sqlite> {
    /// Opens `url`. Besides sqlx's own query parameters, `synchronous=normal` (the default:
    /// a commit survives the process being killed) or `synchronous=full` (it survives a power
    /// loss too, at one fsync per commit) chooses the durability of commits.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (url, synchronous) = durability(url)?;
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(backend_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let closed_in_transaction = Arc::new(AtomicU64::new(0));
        let closed = closed_in_transaction.clone();
        let pool = SqlitePoolOptions::new()
            .after_release(move |conn, _| {
                let closed = closed.clone();
                Box::pin(async move { Ok(crate::reusable(conn, &closed).await) })
            })
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend_error)?;
        let migrator = sqlx::migrate!("./migrations/sqlite");
        // Two processes (a server and an admin command) may start on a new file together;
        // the loser of that race finds the migration applied on its second look.
        if let Err(first) = migrator.run(&pool).await {
            tokio::time::sleep(Duration::from_millis(250)).await;
            migrator.run(&pool).await.map_err(|e| {
                StoreError::Backend(format!("migration failed: {first}; then: {e}"))
            })?;
        }
        Ok(Self {
            pool,
            closed_in_transaction,
        })
    }
}

/// Takes our `synchronous` parameter out of the URL; the rest goes to sqlx.
fn durability(url: &str) -> Result<(String, SqliteSynchronous), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), SqliteSynchronous::Normal));
    };
    let mut synchronous = SqliteSynchronous::Normal;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                synchronous = match value.to_ascii_lowercase().as_str() {
                    "normal" => SqliteSynchronous::Normal,
                    "full" => SqliteSynchronous::Full,
                    "extra" => SqliteSynchronous::Extra,
                    _ => {
                        return Err(StoreError::Backend(format!(
                            "synchronous={value}: use normal, full or extra"
                        )));
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, synchronous))
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use soku_core::Store;
    use sqlx::Connection;
    use std::time::Duration;

    #[test]
    fn the_synchronous_parameter_is_ours_and_the_rest_goes_to_sqlx() {
        use super::durability;
        use sqlx::sqlite::SqliteSynchronous;
        let (url, s) = durability("sqlite://a.db").unwrap();
        assert_eq!(url, "sqlite://a.db");
        assert!(matches!(s, SqliteSynchronous::Normal));
        let (url, s) = durability("sqlite://a.db?mode=rwc&synchronous=FULL").unwrap();
        assert_eq!(url, "sqlite://a.db?mode=rwc");
        assert!(matches!(s, SqliteSynchronous::Full));
        let (url, _) = durability("sqlite://a.db?synchronous=normal").unwrap();
        assert_eq!(url, "sqlite://a.db");
        assert!(durability("sqlite://a.db?synchronous=off").is_err());
    }

    #[tokio::test]
    async fn a_connection_returned_inside_a_transaction_is_not_lent_again() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        {
            // What a dropped request leaves behind: a transaction begun (the write lock
            // taken) whose guard never came to exist.
            let mut conn = store.pool.acquire().await.unwrap();
            let tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
            std::mem::forget(tx);
        }
        for i in 0..4 {
            tokio::time::timeout(
                Duration::from_secs(3),
                store.put_setting("k", &i.to_string()),
            )
            .await
            .expect("a write must not wait for a lock nobody will release")
            .unwrap();
        }
    }
}
