//! Authentication: API keys (spec 3.1 and 3.2) and ID tokens (3.3).

pub mod keys;
pub mod tokens;
