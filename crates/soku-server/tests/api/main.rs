//! Black-box tests of the HTTP API: a real server on `127.0.0.1:0`, real HTTP, a real database
//! (SQLite, or PostgreSQL when `SOKU_TEST_POSTGRES_URL` is set). Grouped by area.

mod util;

mod api_keys;
mod binary;
mod browser;
mod common;
mod configuration;
mod connect;
mod dashboard;
mod database_blips;
mod engine_metrics;
mod headers;
mod id_tokens;
mod key_lifecycle;
mod keys_auth;
mod layout;
mod leases;
mod media;
mod media_binary;
mod meta;
mod nul_characters;
mod oauth;
mod oauth_platforms;
mod operations;
mod post_options;
mod posts;
mod rate_limits;
mod sandbox;
mod secret_scanning;
mod sessions;
mod snapchat;
mod tiktok;
mod timeouts;
mod token_saves;
mod youtube;
