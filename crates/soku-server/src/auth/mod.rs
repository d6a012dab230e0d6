//! Authentication: who is asking (`Caller`), by API key (spec 3.1 and 3.2), ID token (3.3) or
//! dashboard session.

pub mod caller;
pub mod keys;
pub mod tokens;

pub use caller::{Caller, Credential, Scopes};
