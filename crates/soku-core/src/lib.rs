//! The domain of Soku server: the types, the rules and the contract's vocabulary.
//!
//! Nothing in here knows about HTTP frameworks, SQL drivers or HTTP clients: the server and the
//! store depend on this crate, never the other way round.

pub mod accounts;
pub mod audit;
pub mod batch;
pub mod clock;
pub mod connector;
pub mod error;
pub mod idtoken;
pub mod keys;
pub mod media;
pub mod model;
pub mod platform;
pub mod posts;
pub mod queue;
pub mod ratelimit;
pub mod request;
pub mod scopes;
pub mod secret;
pub mod store;
pub mod time;

pub use clock::{Clock, SystemClock};
pub use error::ErrorCode;
pub use secret::Secret;
pub use store::{Store, StoreError};
