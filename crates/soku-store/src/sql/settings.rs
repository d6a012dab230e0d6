//! The server's own state: its token-signing keys and named settings.

use super::Backend;
use super::rows::e;
use soku_core::model::SigningKey;
use soku_core::store::StoreResult;
use soku_core::time::{from_millis, to_millis};
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

pub struct Settings<'p, DB: Backend>(pub &'p Pool<DB>);

impl<DB: Backend> Settings<'_, DB>
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
    pub async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let all = sqlx::query(
            "SELECT kid, private_pem, created_at FROM signing_keys ORDER BY generation",
        )
        .fetch_all(self.0)
        .await
        .map_err(e)?;
        all.iter()
            .map(|r| {
                Ok(SigningKey {
                    kid: r.try_get(0).map_err(e)?,
                    private_pem: r.try_get(1).map_err(e)?,
                    created_at: from_millis(r.try_get(2).map_err(e)?),
                })
            })
            .collect()
    }

    pub async fn insert_signing_key_if_none(&self, key: &SigningKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (generation, kid, private_pem, created_at) \
             VALUES (1, $1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.private_pem)
        .bind(to_millis(key.created_at))
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }

    pub async fn get(&self, name: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.0)
            .await
            .map_err(e)
    }

    pub async fn insert_if_absent(&self, name: &str, value: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(DB::rows_affected(&done) == 1)
    }

    pub async fn put(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(self.0)
        .await
        .map_err(e)?;
        Ok(())
    }
}
