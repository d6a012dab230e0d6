//! Connectors to the social networks. Each implements `soku_core::connector::Connector`.
//! `simulated` stands in for every network in test mode (spec section 9).

pub mod answer;
pub mod bluesky;
pub mod facebook;
pub mod fetch;
pub mod graph;
pub mod http;
pub mod import;
pub mod imports;
pub mod instagram;
pub mod linkedin;
pub mod mastodon;
pub mod media;
pub mod meta;
pub mod net;
pub mod oauth;
pub mod registry;
pub mod settings;
pub mod simulated;
pub mod snapchat;
pub mod threads;
pub mod tiktok;
pub mod x;
pub mod youtube;

pub use registry::{Connectors, LiveConnectors, live};
pub use settings::{LiveSettings, PlatformSettings};
