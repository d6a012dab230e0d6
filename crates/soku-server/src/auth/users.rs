//! Users known by ID token or dashboard session: their record, written on an ID token's first
//! sight, and their rate profile (role, subscription, override, and the instant before which
//! their ID tokens are refused), cached like key lookups: `KEY_CACHE_TTL`, so a change made on
//! another node (or by hand) is seen within it; a sign-out everywhere on this node forgets the
//! cached profile at once. (An API key's lookup brings its owner's profile with it.)

use super::keys::KEY_CACHE_TTL;
use soku_core::idtoken::VerifiedIdentity;
use soku_core::model::RateProfile;
use soku_core::{Clock, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Above this many cached profiles, the cache is emptied.
const PROFILE_CACHE_MAX: usize = 100_000;

#[derive(Default)]
pub struct Users {
    /// Users this process has already seen or created, so that a token's first sight writes
    /// the user record once rather than on every request.
    known: RwLock<HashSet<String>>,
    profiles: RwLock<HashMap<String, (Instant, Option<RateProfile>)>>,
    /// Bumped by every `forget`: a profile read that overlapped one is not cached, since what
    /// it read may predate the change that caused it.
    forgets: AtomicU64,
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
        let generation = self.forgets.load(Ordering::Acquire);
        let profile = store.rate_profile(uid).await?;
        let mut cache = self.profiles.write().unwrap_or_else(|p| p.into_inner());
        if self.forgets.load(Ordering::Acquire) != generation {
            return Ok(profile);
        }
        if cache.len() >= PROFILE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(uid.to_owned(), (Instant::now(), profile.clone()));
        Ok(profile)
    }

    /// Forgets the user's cached profile (after they signed out everywhere on this node): the
    /// next request reads it from the store.
    pub fn forget(&self, uid: &str) {
        self.forgets.fetch_add(1, Ordering::AcqRel);
        self.profiles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }
}
