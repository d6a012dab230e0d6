//! Fakes of the networks' public APIs, run on loopback by the tests. Each checks every request
//! against the platform's documented shape (method, path, auth scheme, required headers and
//! fields) and answers with the platform's documented responses and errors: a fake that accepted
//! anything would prove nothing.
//!
//! Every fake shares `Faults`: scripted failures (a 429 with the platform's rate-limit headers,
//! a 5xx, or a reply withheld until after the client gave up while the effect stands) served to
//! the next matching requests.

pub mod bluesky;
pub mod common;
pub mod graph;
pub mod linkedin;
pub mod mastodon;
pub mod media_files;
pub mod snapchat;
pub mod threads;
pub mod tiktok;
pub mod x;
pub mod youtube;

pub use common::{Fake, Fault, Faults};
