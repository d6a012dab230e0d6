//! The publishing engine (spec 7): workers that take due targets from the database queue,
//! publish them through their platform's connector, and record each outcome.
//!
//! Every target is leased to one worker at a time (`claim_targets`), so several processes share
//! the work. Before a request that may reach the platform, the target is marked in flight; a
//! target found in flight again (its worker died, or the platform's answer was ambiguous) is
//! reconciled with `find_existing` before anything is sent again, or ends `unknown` where the
//! platform cannot tell. Retryable failures back off exponentially with jitter, honouring
//! `Retry-After`, for a bounded number of attempts.
//!
//! The dispatcher sleeps until the next due time or lease expiry, woken early when this
//! process accepts a post, and looks at the database at least every `poll_interval` for work
//! that other processes added.
//!
//! The engine's parts, by concern: `dispatch` (the loop that claims due targets, and
//! housekeeping), `publish` (one attempt: the request, the call, the outcome), `reconcile`
//! (asking the platform whether an earlier attempt published), `media` (a post's media made
//! hosted: outside URLs imported once per submission), `lease` (the target's lease renewed
//! through the whole attempt), `retry` (backoff and the attempt budget) and `save` (writing an attempt's in-flight mark and outcome through a
//! database blip, within the lease). `metrics` counts what operators watch (outcomes, retries,
//! lag, refreshes, the queue). `account_tokens` keeps connected accounts' tokens alive;
//! `secrets` encrypts them at rest. The connectors come from `soku-platforms`; nothing here knows HTTP
//! servers.

pub mod account_tokens;
mod config;
mod dispatch;
mod lease;
pub mod media;
pub mod metrics;
mod publish;
mod reconcile;
mod retry;
mod save;
pub mod secrets;

pub use config::{EngineConfig, RETRY_AFTER_MAX};
pub use dispatch::Engine;
pub use media::EngineMedia;
pub use retry::{backoff, retry_delay};

/// Idempotency keys are kept this long (spec 6.1).
pub const IDEMPOTENCY_KEPT_HOURS: i64 = 24;
