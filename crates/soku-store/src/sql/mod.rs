//! The SQL both backends share: one implementation, generic over the sqlx driver.
//!
//! The statements are written in the dialect SQLite and PostgreSQL have in common (`$n`
//! parameters, `ON CONFLICT`, `RETURNING`, integer milliseconds for time); what differs
//! (how a writing transaction begins, row locks, the store's name) is a [`Backend`]
//! constant, set in `sqlite.rs` and `postgres.rs`.
//!
//! By concern: `users` (users, subscriptions, rate-limit overrides), `keys` (API keys),
//! `settings` (signing keys and settings), `accounts` (connected accounts and OAuth states),
//! `submissions` (submissions, their targets, idempotency keys), `queue` (claims and outcomes
//! of publishing), `sandbox` (what the sandbox platform received), `media` (hosted files' rows), `audit` (security events), `sessions` (dashboard
//! sessions), `stats` (the queue at a glance, for metrics); `rows` maps rows to the
//! domain's types, and `store` implements `soku-core`'s traits by calling the rest.
//!
//! Every generic `impl` repeats one `where` clause: Rust does not carry bounds on other
//! types (`i64: Encode<'q, DB>`) from a trait to its users, so no trait can name them once.

mod accounts;
mod audit;
mod keys;
mod media;
mod queue;
mod rows;
mod sandbox;
mod sessions;
mod settings;
mod stats;
mod store;
mod submissions;
mod users;

use sqlx::{Database, Pool};

/// What sets one database apart from the other.
pub trait Backend: Database {
    /// `Store::backend`'s answer.
    const BACKEND: &'static str;
    /// How a transaction that writes begins. SQLite's `BEGIN IMMEDIATE` takes the write lock
    /// up front, so two writers never both read and then fail to upgrade.
    const BEGIN: &'static str;
    /// Appended to a `SELECT` whose rows the transaction goes on to update: PostgreSQL's
    /// `FOR UPDATE`; nothing on SQLite, where `BEGIN IMMEDIATE` serialises writers.
    const FOR_UPDATE: &'static str;
    /// Appended to a `SELECT` of rows the transaction relies on staying as they are (a media
    /// row a new post names): PostgreSQL's `FOR SHARE`, which a deletion's `FOR UPDATE` waits
    /// for; nothing on SQLite.
    const FOR_SHARE: &'static str;
    /// Appended to the selection of targets to claim: PostgreSQL's
    /// `FOR UPDATE SKIP LOCKED`, so that several workers never take the same target.
    const SKIP_LOCKED: &'static str;

    /// How many rows a statement changed (each driver has its own result type).
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// A store on one database: `SqliteStore` or `PgStore`.
pub struct SqlStore<DB: Database> {
    pub(crate) pool: Pool<DB>,
    /// Connections that came back to the pool inside a transaction and were closed.
    pub(crate) closed_in_transaction: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<DB: Database> SqlStore<DB> {
    /// How many connections came back to the pool still inside a transaction and were closed
    /// (each also logs a warning): a request dropped mid-transaction, or a transaction left
    /// open by mistake.
    pub fn connections_closed_in_transaction(&self) -> u64 {
        self.closed_in_transaction
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}
