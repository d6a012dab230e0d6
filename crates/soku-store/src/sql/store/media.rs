//! `soku-core`'s `MediaStore` for both backends: hosted files' rows.

use crate::sql::media::Media;
use crate::sql::{Backend, SqlStore};
use async_trait::async_trait;
use soku_core::keys::KeyMode;
use soku_core::media::{MediaDeletion, MediaPage, MediaRecord, MediaStore};
use soku_core::store::StoreResult;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};

#[async_trait]
impl<DB: Backend> MediaStore for SqlStore<DB>
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
    async fn insert_media(&self, media: &MediaRecord) -> StoreResult<()> {
        Media(&self.pool).insert(media).await
    }

    async fn get_media(&self, id: &str) -> StoreResult<Option<MediaRecord>> {
        Media(&self.pool).get(id).await
    }

    async fn find_media_by_key(
        &self,
        user_id: &str,
        mode: KeyMode,
        key: &str,
    ) -> StoreResult<Option<MediaRecord>> {
        Media(&self.pool).by_key(user_id, mode, key).await
    }

    async fn release_media_key(&self, id: &str) -> StoreResult<()> {
        Media(&self.pool).release_key(id).await
    }

    async fn list_media(
        &self,
        user_id: &str,
        mode: KeyMode,
        page: &MediaPage,
    ) -> StoreResult<Vec<MediaRecord>> {
        Media(&self.pool).list(user_id, mode, page).await
    }

    async fn delete_media(
        &self,
        user_id: &str,
        mode: KeyMode,
        id: &str,
        url_prefix: &str,
    ) -> StoreResult<MediaDeletion> {
        Media(&self.pool)
            .delete_unless_used(user_id, mode, id, url_prefix)
            .await
    }
}
