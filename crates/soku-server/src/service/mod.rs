//! The use cases: what the API and the dashboard do, whoever asks.
//!
//! A service function takes the application state, the `Caller` (who is asking, in which mode)
//! and a typed request, and returns a view (`crate::views`) or an `ApiError`. It owns the use
//! case: validation, idempotency, account resolution, the write. Handlers in `api/` and the
//! dashboard's endpoints parse, call one service function and render its answer; they never
//! call each other, and nothing re-applies a service's rules.

pub mod accounts;
pub mod connect;
pub mod keys;
pub mod login;
pub mod media;
pub mod posts;
pub mod sandbox;
pub mod secret_scanning;
pub mod sessions;
