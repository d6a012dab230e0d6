//! Keeping connected accounts' tokens alive (spec 7, issue 6): refreshed in the background
//! ahead of expiry, refreshed on demand when a platform says a token stopped working, one
//! refresh at a time per account across every process (a lease in the database: platforms such
//! as X rotate refresh tokens, so two concurrent refreshes would lose one).
//!
//! A refresh the platform refuses (revoked grant, no refresh token) marks the account
//! `needs_reconnect` and keeps its old refresh token; posts to it then fail at once with
//! `account_needs_reconnect`. A refresh that could not reach the platform is tried again later.

use crate::engine::Connectors;
use crate::secrets::SecretBox;
use soku_core::connector::{AccountCredentials, ConnectErrorKind};
use soku_core::keys::KeyMode;
use soku_core::queue::{Account, AccountSecrets, AccountStatus, RefreshedTokens};
use soku_core::{Clock, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long one process holds the right to refresh an account.
const LEASE: Duration = Duration::from_secs(60);
/// How often the background refresher looks for tokens about to expire.
pub const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// How far ahead it looks: the longest `refresh_ahead` of any connector (Threads: days).
const LOOK_AHEAD: chrono::Duration = chrono::Duration::days(8);

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

pub struct AccountTokens {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    connectors: Connectors,
    secrets: SecretBox,
}

impl AccountTokens {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        connectors: Connectors,
        secrets: SecretBox,
    ) -> Self {
        Self {
            store,
            clock,
            connectors,
            secrets,
        }
    }

    /// The account's decrypted credentials, for one call to its platform.
    pub fn credentials(&self, account: &Account, secrets: &AccountSecrets) -> AccountCredentials {
        let open = |sealed: &Option<Vec<u8>>| sealed.as_deref().and_then(|s| self.secrets.open(s));
        AccountCredentials {
            account_id: account.account_id.clone(),
            username: account.username.clone(),
            access_token: open(&secrets.access_token),
            refresh_token: open(&secrets.refresh_token),
            meta: account.meta.clone(),
        }
    }

    /// Refreshes the account's tokens now.
    pub async fn refresh(&self, account_ref: &str) -> Refresh {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        match self
            .store
            .lease_account_refresh(account_ref, now, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Refresh::Busy,
            Err(e) => return Refresh::Unavailable(format!("the database failed: {e}")),
        }
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
        let now = self.clock.now();
        match outcome {
            Ok(tokens) => {
                let refreshed = RefreshedTokens {
                    access_token: self.secrets.seal(&tokens.access_token),
                    // Never overwrite a refresh token with nothing.
                    refresh_token: tokens
                        .refresh_token
                        .as_deref()
                        .filter(|t| !t.is_empty())
                        .map(|t| self.secrets.seal(t)),
                    expires_at: tokens.expires_at,
                };
                match self
                    .store
                    .save_refreshed_tokens(account_ref, &refreshed, now)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(account = %account_ref, platform = %account.platform, "tokens refreshed");
                        Refresh::Refreshed
                    }
                    Err(e) => Refresh::Unavailable(format!("the new tokens were not saved: {e}")),
                }
            }
            Err(e) => match e.kind {
                ConnectErrorKind::Rejected | ConnectErrorKind::Unsupported => {
                    tracing::warn!(account = %account_ref, platform = %account.platform, reason = %e.message, "refresh refused; the account needs reconnecting");
                    if let Err(err) = self
                        .store
                        .set_account_status(account_ref, AccountStatus::NeedsReconnect, now)
                        .await
                    {
                        return Refresh::Unavailable(format!("the database failed: {err}"));
                    }
                    Refresh::NeedsReconnect(e.message)
                }
                ConnectErrorKind::Unavailable
                | ConnectErrorKind::NotConfigured
                | ConnectErrorKind::Invalid => {
                    tracing::warn!(account = %account_ref, platform = %account.platform, reason = %e.message, "refresh failed; tried again later");
                    // The lease runs out by itself, which spaces the next try.
                    Refresh::Unavailable(e.message)
                }
            },
        }
    }

    /// Refreshes every active account whose tokens expire within its connector's
    /// `refresh_ahead`. Returns how many were refreshed.
    pub async fn refresh_due(&self) -> usize {
        let now = self.clock.now();
        let expiring = match self.store.accounts_expiring(now + LOOK_AHEAD, 500).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "listing accounts to refresh failed");
                return 0;
            }
        };
        let mut refreshed = 0;
        for account in expiring {
            let Some(connector) = self.connectors.for_target(KeyMode::Live, account.platform)
            else {
                continue;
            };
            let ahead = chrono::Duration::from_std(connector.refresh_ahead()).unwrap_or_default();
            let due = account
                .token_expires_at
                .is_some_and(|expires| expires - ahead <= now);
            if due && self.refresh(&account.id).await == Refresh::Refreshed {
                refreshed += 1;
            }
        }
        refreshed
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
