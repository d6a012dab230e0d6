//! Keeping connected accounts' tokens alive (spec 7, issue 6): refreshed in the background
//! ahead of expiry, refreshed on demand when a platform says a token stopped working, one
//! refresh at a time per account across every process (a lease in the database: platforms such
//! as X rotate refresh tokens, so two concurrent refreshes would lose one).
//!
//! A refresh the platform refuses (revoked grant) marks the account `needs_reconnect` and keeps
//! its old refresh token; posts to it then fail at once with `account_needs_reconnect`. A refresh
//! that could not reach the platform ends the lease at once (so that a post waiting for the
//! account can try again) and the background refresher comes back to it after a pause. An
//! account that cannot be refreshed at all (LinkedIn apps without refresh tokens) stays usable
//! until its token expires. A reconnection during a refresh wins: the refresh's tokens are not
//! saved over it (the lease has an owner).
//!
//! A refresh rotates the refresh token on X and TikTok: once the platform has answered, the old
//! one is spent, so the new tokens must not be lost to a database blip. Their write is tried
//! again through a short blip (`save::with_retries`, as the engine writes outcomes). When it
//! still fails they are kept in this process ([`AccountTokens::credentials`] hands them out in
//! place of the stored, spent ones) and the refresh lease is kept too, so that no other process
//! refreshes with the spent token while it runs; every later refresh of the account (the
//! background refresher's round included) writes them first. A restart of the process before
//! that write loses them (the account then needs reconnecting at its next refresh).

use crate::metrics::EngineMetrics;
use crate::save::{StoreHealth, with_retries};
use crate::secrets::SecretBox;
use soku_core::connector::{AccountCredentials, ConnectError, ConnectErrorKind, TokenSet};
use soku_core::keys::KeyMode;
use soku_core::queue::{Account, AccountSecrets, RefreshEnd, RefreshedTokens};
use soku_core::{Clock, Store};
use soku_platforms::Connectors;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long one process holds the right to refresh an account: longer than a refresh can take
/// (a platform call is bounded by its `SOKU_<P>_TIMEOUT_SECS`, 30 s by default), so that a
/// lease only runs out when its holder died.
const LEASE: Duration = Duration::from_secs(300);
/// After a refresh that could not reach the platform, the background refresher waits this long.
const RETRY_AFTER: chrono::Duration = chrono::Duration::minutes(2);
/// An account that cannot be refreshed is looked at again this often until it expires.
const NOT_REFRESHABLE_RECHECK: chrono::Duration = chrono::Duration::hours(6);
/// Refreshes the background refresher runs at once.
const CONCURRENT_REFRESHES: usize = 8;
/// How often the background refresher looks for tokens about to expire.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// How far ahead it looks: the longest `refresh_ahead` of any connector (Threads: days).
const LOOK_AHEAD: chrono::Duration = chrono::Duration::days(8);
/// How long a refresh's new tokens are written again through a database blip before they are
/// kept in the process instead (a post may be waiting for them).
const SAVE_RETRIES_FOR: Duration = Duration::from_secs(5);

/// What a refresh came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Refreshed,
    /// Another worker is refreshing this account right now.
    Busy,
    /// The platform refused: the account is now `needs_reconnect`.
    NeedsReconnect(String),
    /// The platform could not be asked; the old tokens stay.
    Unavailable(String),
}

/// Refreshed tokens the database did not take: the platform has spent the refresh token they
/// replace, so they are the account's only working ones until they are written.
struct Unsaved {
    /// The refresh lease they were obtained under, still held.
    owner: String,
    /// The account's stored (sealed) refresh token when they were obtained: once the stored one
    /// differs, the account was reconnected (or refreshed elsewhere) and they no longer apply.
    replaces: Option<Vec<u8>>,
    tokens: RefreshedTokens,
}

pub struct AccountTokens {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    connectors: Connectors,
    secrets: SecretBox,
    metrics: Arc<EngineMetrics>,
    health: StoreHealth,
    /// By account reference.
    unsaved: Mutex<HashMap<String, Unsaved>>,
}

impl AccountTokens {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: Connectors,
        secrets: SecretBox,
        metrics: Arc<EngineMetrics>,
    ) -> Self {
        Self {
            store,
            clock,
            connectors,
            secrets,
            metrics,
            health: StoreHealth::default(),
            unsaved: Mutex::new(HashMap::new()),
        }
    }

    /// The box that seals what the engine keeps at rest (tokens, and targets' progress).
    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// The account's decrypted credentials, for one call to its platform: the refreshed tokens
    /// this process could not save yet, when the stored ones are those they replace.
    pub fn credentials(&self, account: &Account, secrets: &AccountSecrets) -> AccountCredentials {
        let open = |sealed: Option<&Vec<u8>>| sealed.and_then(|s| self.secrets.open(s));
        let unsaved = self.unsaved_for(&account.id, secrets);
        let (access, refresh) = match &unsaved {
            Some(t) => (
                Some(&t.access_token),
                t.refresh_token.as_ref().or(secrets.refresh_token.as_ref()),
            ),
            None => (
                secrets.access_token.as_ref(),
                secrets.refresh_token.as_ref(),
            ),
        };
        AccountCredentials {
            account_id: account.account_id.clone(),
            username: account.username.clone(),
            access_token: open(access),
            refresh_token: open(refresh),
            meta: account.meta.clone(),
        }
    }

    /// The unsaved refreshed tokens of the account, if they replace its stored ones.
    fn unsaved_for(&self, account_ref: &str, stored: &AccountSecrets) -> Option<RefreshedTokens> {
        let unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        unsaved
            .get(account_ref)
            .filter(|u| u.replaces == stored.refresh_token)
            .map(|u| u.tokens.clone())
    }

    /// Writes refreshed tokens through a short database blip.
    async fn save_tokens(
        &self,
        account_ref: &str,
        owner: &str,
        tokens: &RefreshedTokens,
    ) -> Result<bool, soku_core::StoreError> {
        let until = Instant::now() + SAVE_RETRIES_FOR;
        with_retries(&self.health, "saving refreshed tokens", until, || {
            self.store
                .save_refreshed_tokens(account_ref, owner, tokens, self.clock.now())
        })
        .await
    }

    /// Stores tokens a refresh of the leased account obtained (false: reconnected meanwhile),
    /// through a short database blip; when they cannot be written they are kept in the process
    /// ([`Unsaved`]) and the error says so.
    async fn keep(
        &self,
        account_ref: &str,
        owner: &str,
        stored: &AccountSecrets,
        tokens: &TokenSet,
        needs_reconnect: bool,
    ) -> Result<bool, String> {
        let refreshed = RefreshedTokens {
            access_token: self.secrets.seal(&tokens.access_token),
            // Never overwrite a refresh token with nothing.
            refresh_token: tokens
                .refresh_token
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| self.secrets.seal(t)),
            expires_at: tokens.expires_at,
            needs_reconnect,
        };
        self.save_tokens(account_ref, owner, &refreshed)
            .await
            .map_err(|e| {
                tracing::error!(account = %account_ref, error = %e, "the refreshed tokens could not be saved; kept in this process until they are");
                self.unsaved.lock().unwrap_or_else(|e| e.into_inner()).insert(
                    account_ref.to_owned(),
                    Unsaved {
                        owner: owner.to_owned(),
                        replaces: stored.refresh_token.clone(),
                        tokens: refreshed,
                    },
                );
                format!("the new tokens were not saved: {e}")
            })
    }

    /// Writes the account's refreshed tokens that an earlier refresh could not save. `None`
    /// when there are none (or they no longer apply): refresh as usual.
    async fn save_unsaved(&self, account_ref: &str) -> Option<Refresh> {
        let (owner, tokens) = {
            let unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
            let u = unsaved.get(account_ref)?;
            (u.owner.clone(), u.tokens.clone())
        };
        let saved = self.save_tokens(account_ref, &owner, &tokens).await;
        if let Err(e) = saved {
            return Some(Refresh::Unavailable(format!(
                "the refreshed tokens are still not saved: {e}"
            )));
        }
        self.unsaved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account_ref);
        match saved {
            Ok(true) => {
                tracing::info!(account = %account_ref, "refreshed tokens saved after a database failure");
                Some(Refresh::Refreshed)
            }
            // Reconnected, or the lease ran out and another holder took it: they no longer
            // apply.
            _ => None,
        }
    }

    /// Refreshes the account's tokens now. `refused`: the platform has just refused its access
    /// token, so an account that cannot be refreshed needs reconnecting even before its
    /// recorded expiry.
    pub async fn refresh(&self, account_ref: &str, refused: bool) -> Refresh {
        if let Some(done) = self.save_unsaved(account_ref).await {
            return done;
        }
        let owner = soku_core::keys::random_id("r", 12);
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        match self
            .store
            .lease_account_refresh(account_ref, &owner, now, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Refresh::Busy,
            Err(e) => return Refresh::Unavailable(format!("the database failed: {e}")),
        }
        let outcome = self.refresh_leased(account_ref, &owner, refused).await;
        let kept = self
            .unsaved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(account_ref);
        // Unsaved tokens keep the lease: no other process refreshes with the spent token.
        if let (Refresh::Unavailable(_), false) = (&outcome, kept) {
            // Whatever failed, the lease must not outlive this attempt.
            let retry = self.clock.now() + RETRY_AFTER;
            let _ = self
                .store
                .end_account_refresh(
                    account_ref,
                    &owner,
                    RefreshEnd::RetryAt(retry),
                    self.clock.now(),
                )
                .await;
        }
        outcome
    }

    async fn refresh_leased(&self, account_ref: &str, owner: &str, refused: bool) -> Refresh {
        let found = match self.store.account_secrets(account_ref).await {
            Ok(Some(found)) => found,
            Ok(None) => return Refresh::NeedsReconnect("The account was disconnected.".into()),
            Err(e) => return Refresh::Unavailable(format!("the database failed: {e}")),
        };
        let (account, secrets) = found;
        let Some(connector) = self.connectors.for_target(KeyMode::Live, account.platform) else {
            return Refresh::Unavailable(format!(
                "this server has no {} connector",
                account.platform.display_name()
            ));
        };
        let credentials = self.credentials(&account, &secrets);
        let outcome = connector.refresh(&credentials).await;
        let result = self
            .settle(account_ref, owner, refused, (&account, &secrets), outcome)
            .await;
        self.metrics.refresh(
            account.platform,
            match &result {
                Refresh::Refreshed | Refresh::Busy => "refreshed",
                Refresh::NeedsReconnect(_) => "needs_reconnect",
                Refresh::Unavailable(_) => "unavailable",
            },
        );
        result
    }

    /// Records what the platform answered to a refresh of the leased account.
    async fn settle(
        &self,
        account_ref: &str,
        owner: &str,
        refused: bool,
        (account, stored): (&Account, &AccountSecrets),
        outcome: Result<TokenSet, ConnectError>,
    ) -> Refresh {
        let now = self.clock.now();
        let platform = account.platform;
        match outcome {
            Ok(tokens) => match self.keep(account_ref, owner, stored, &tokens, false).await {
                Ok(true) => {
                    tracing::info!(account = %account_ref, %platform, "tokens refreshed");
                    Refresh::Refreshed
                }
                // Reconnected meanwhile: the reconnection's tokens stand.
                Ok(false) => Refresh::Refreshed,
                Err(e) => Refresh::Unavailable(e),
            },
            // The platform issued tokens but their answer refuses the account (it no longer
            // grants posting): the refresh token they replace may be spent, so they are stored,
            // with the account needing reconnection.
            Err(ConnectError {
                issued: Some(tokens),
                message,
                ..
            }) => {
                tracing::warn!(account = %account_ref, %platform, reason = %message, "refresh answer refused; its tokens are kept and the account needs reconnecting");
                match self.keep(account_ref, owner, stored, &tokens, true).await {
                    Ok(true) => Refresh::NeedsReconnect(message),
                    Ok(false) => Refresh::Refreshed,
                    Err(e) => Refresh::Unavailable(e),
                }
            }
            Err(e) => {
                let expired = account.token_expires_at.is_none_or(|at| at <= now);
                let end = match e.kind {
                    ConnectErrorKind::NotRefreshable if !expired && !refused => {
                        // Usable until it expires; look again later.
                        let recheck = (now + NOT_REFRESHABLE_RECHECK)
                            .min(account.token_expires_at.unwrap_or(now));
                        let _ = self
                            .store
                            .end_account_refresh(
                                account_ref,
                                owner,
                                RefreshEnd::RetryAt(recheck),
                                now,
                            )
                            .await;
                        return Refresh::Unavailable(e.message);
                    }
                    ConnectErrorKind::Rejected
                    | ConnectErrorKind::Unsupported
                    | ConnectErrorKind::NotRefreshable => RefreshEnd::NeedsReconnect,
                    ConnectErrorKind::Unavailable
                    | ConnectErrorKind::NotConfigured
                    | ConnectErrorKind::Invalid => {
                        tracing::warn!(account = %account_ref, %platform, reason = %e.message, "refresh failed; tried again later");
                        return Refresh::Unavailable(e.message);
                    }
                };
                tracing::warn!(account = %account_ref, %platform, reason = %e.message, "refresh refused; the account needs reconnecting");
                match self
                    .store
                    .end_account_refresh(account_ref, owner, end, now)
                    .await
                {
                    Ok(true) => Refresh::NeedsReconnect(e.message),
                    // Reconnected meanwhile: the account is fine.
                    Ok(false) => Refresh::Refreshed,
                    Err(err) => Refresh::Unavailable(format!("the database failed: {err}")),
                }
            }
        }
    }

    /// Refreshes every active account whose tokens expire within its connector's
    /// `refresh_ahead`, several at once. Returns how many were refreshed.
    pub async fn refresh_due(&self) -> usize {
        use futures_util::StreamExt;
        // Tokens an earlier refresh could not save are written first, whatever their expiry.
        let unsaved: Vec<String> = self
            .unsaved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for account_ref in unsaved {
            self.save_unsaved(&account_ref).await;
        }
        let now = self.clock.now();
        let expiring = match self
            .store
            .accounts_expiring(now + LOOK_AHEAD, now, 500)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "listing accounts to refresh failed");
                return 0;
            }
        };
        let due: Vec<Account> = expiring
            .into_iter()
            .filter(|account| {
                self.connectors
                    .for_target(KeyMode::Live, account.platform)
                    .is_some_and(|connector| {
                        let ahead = chrono::Duration::from_std(connector.refresh_ahead())
                            .unwrap_or_default();
                        account
                            .token_expires_at
                            .is_some_and(|expires| expires - ahead <= now)
                    })
            })
            .collect();
        futures_util::stream::iter(due)
            .map(|account| async move { self.refresh(&account.id, false).await == Refresh::Refreshed })
            .buffer_unordered(CONCURRENT_REFRESHES)
            .filter(|refreshed| std::future::ready(*refreshed))
            .count()
            .await
    }

    /// The background refresher: runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, every: Duration) {
        while !*shutdown.borrow() {
            self.refresh_due().await;
            let now = self.clock.now();
            // Kept an hour past expiry, so that a late callback is told "expired", not "unknown".
            if let Err(e) = self
                .store
                .purge_oauth_states(now - chrono::Duration::hours(1))
                .await
            {
                tracing::warn!(error = %e, "purging expired OAuth states failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
