//! PostgreSQL, for installs that run several nodes on one database.

use crate::backend_error;
use crate::sql::{Backend, SqlStore};
use soku_core::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The store on PostgreSQL: `PgStore::connect("postgres://…")`.
pub type PgStore = SqlStore<Postgres>;

impl Backend for Postgres {
    const BACKEND: &'static str = "postgres";
    const BEGIN: &'static str = "BEGIN";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_SHARE: &'static str = " FOR SHARE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

impl SqlStore<Postgres> {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend_error)?;
        Self::connect_with(options).await
    }

    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let closed_in_transaction = Arc::new(AtomicU64::new(0));
        let closed = closed_in_transaction.clone();
        let pool = PgPoolOptions::new()
            .after_release(move |conn, _| {
                let closed = closed.clone();
                Box::pin(async move { Ok(crate::reusable(conn, &closed).await) })
            })
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(backend_error)?;
        // sqlx takes an advisory lock, so nodes starting together migrate once.
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        Ok(Self {
            pool,
            closed_in_transaction,
        })
    }

    /// A store in a new, empty schema of the database at `url`: for tests that share one
    /// PostgreSQL database. The schema is named after `label` and a random suffix.
    pub async fn connect_fresh_schema(url: &str, label: &str) -> Result<Self, StoreError> {
        Self::connect(&fresh_schema_url(url, label).await?).await
    }
}

/// Creates a new, empty schema (`t_<label>_<random>`) in the database at `url` and returns a
/// URL whose connections use it: for tests, which share one PostgreSQL database.
pub async fn fresh_schema_url(url: &str, label: &str) -> Result<String, StoreError> {
    let schema = soku_core::keys::random_id(&format!("t_{label}_"), 10);
    let admin = PgPool::connect(url).await.map_err(backend_error)?;
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&admin)
        .await
        .map_err(backend_error)?;
    admin.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{url}{separator}options=-c%20search_path%3D{schema}"
    ))
}
