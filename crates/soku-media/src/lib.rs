//! Hosted media: where the server keeps the files clients upload or import (`storage`), how a
//! file is received without holding it in memory (`ingest`), and what it is (`probe`).
//!
//! `library` puts a received file and its row together, once per idempotency key, for the API
//! and the publishing engine alike. The HTTP side (`POST /v1/media`, `POST /v1/media/uploads`,
//! `GET /media/{id}/{file}`) is the server's; the rows are the store's
//! (`soku_core::media::MediaStore`).

pub mod ingest;
pub mod library;
pub mod probe;
pub mod storage;

pub use ingest::{IngestError, Received, receive};
pub use library::{LibraryError, MediaLibrary, Owner, Saved};
pub use probe::ProbeError;
pub use storage::{MediaStorage, Spool, StorageError, StoreLocation, StoreOptions};
