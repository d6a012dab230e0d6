//! Users known by ID token or dashboard session: their record, written on an ID token's first
//! sight, and their rate profile (role, subscription, override), cached like key lookups.
//! (An API key's lookup brings its owner's profile with it.)

use super::keys::KEY_CACHE_TTL;
use soku_core::idtoken::VerifiedIdentity;
use soku_core::model::RateProfile;
use soku_core::{Clock, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::Instant;

/// Above this many cached profiles, the cache is emptied.
const PROFILE_CACHE_MAX: usize = 100_000;

#[derive(Default)]
pub struct Users {
    /// Users this process has already seen or created, so that a token's first sight writes
    /// the user record once rather than on every request.
    known: RwLock<HashSet<String>>,
    profiles: RwLock<HashMap<String, (Instant, Option<RateProfile>)>>,
}

impl Users {
    /// Creates the user of a verified ID token on first sight.
    pub async fn ensure(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        identity: &VerifiedIdentity,
    ) -> Result<(), StoreError> {
        let known = self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&identity.uid);
        if !known {
            store
                .ensure_user(&identity.uid, identity.email.as_deref(), clock.now())
                .await?;
            self.known
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(identity.uid.clone());
        }
        Ok(())
    }

    /// The user's role, subscription and override, at most `KEY_CACHE_TTL` old.
    pub async fn profile(
        &self,
        store: &dyn Store,
        uid: &str,
    ) -> Result<Option<RateProfile>, StoreError> {
        if let Some((fetched, profile)) = self
            .profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            && fetched.elapsed() < KEY_CACHE_TTL
        {
            return Ok(profile.clone());
        }
        let profile = store.rate_profile(uid).await?;
        let mut cache = self.profiles.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PROFILE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(uid.to_owned(), (Instant::now(), profile.clone()));
        Ok(profile)
    }
}
