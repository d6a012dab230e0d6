//! One attempt at one target: the publish request with the account's tokens opened, the call
//! to the platform bounded well inside the lease, and the outcome it comes to.

use crate::account_tokens::{AccountTokens, Refresh};
use crate::dispatch::Engine;
use crate::lease::Lease;
use crate::reconcile::Reconciled;
use crate::retry::{error, from_publish};
use soku_core::connector::{
    AccountCredentials, DUPLICATE_CONTENT, FailureClass, Progress, ProgressSink, PublishError,
    PublishRequest, TOKEN_INVALID,
};
use soku_core::keys::KeyMode;
use soku_core::posts::{StoredContent, TargetText};
use soku_core::queue::{AccountStatus, ClaimedTarget, FinishTarget, TargetError, TargetOutcome};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest one attempt at a post with media may take (uploads and processing waits), its
/// lease renewed meanwhile.
pub const MEDIA_PUBLISH_MAX: Duration = Duration::from_secs(30 * 60);
use tracing::Instrument;

impl Engine {
    /// One attempt at one target, ending in a recorded outcome. `leased_at` is no later than
    /// when the lease was taken.
    pub(crate) async fn attempt(&self, owner: &str, claimed: ClaimedTarget, leased_at: Instant) {
        let span = tracing::info_span!(
            "publish",
            target = %claimed.target.id,
            platform = %claimed.target.platform,
            attempt = claimed.target.attempts
        );
        self.attempt_in_span(owner, &claimed, leased_at)
            .instrument(span)
            .await
    }

    async fn attempt_in_span(&self, owner: &str, claimed: &ClaimedTarget, leased_at: Instant) {
        let target = &claimed.target;
        // The lease is renewed from the claim to the outcome (`lease`), not only during the call.
        let lease = Lease::new(&target.id, owner, leased_at);
        let outcome = {
            let work = self.decide(owner, claimed, &lease);
            let keeper = self.keep_lease(&lease);
            tokio::pin!(work, keeper);
            tokio::select! {
                outcome = &mut work => outcome,
                // Lost: the call (if running) stops, the store refuses what the rest writes.
                () = &mut keeper => work.await,
            }
        };
        let Some(outcome) = outcome else { return };
        self.metrics
            .outcome(target.platform, claimed.mode, &outcome);
        match &outcome {
            TargetOutcome::Published { post_id, .. } => {
                tracing::info!(post_id = %post_id, "published")
            }
            TargetOutcome::Retry { due_at, error, .. } => {
                tracing::warn!(code = %error.code, retry_at = %due_at, "attempt failed; will retry")
            }
            TargetOutcome::Failed(e) => tracing::warn!(code = %e.code, "failed"),
            TargetOutcome::Unknown(e) => tracing::warn!(code = %e.code, "outcome unknown"),
        }
        let done = FinishTarget {
            target_id: target.id.clone(),
            owner: owner.to_owned(),
            outcome,
            now: self.clock.now(),
        };
        self.save_outcome(done, lease.renewed_at()).await;
    }

    /// Runs the attempt; `None` when the lease was lost and another worker owns the target.
    async fn decide(
        &self,
        owner: &str,
        claimed: &ClaimedTarget,
        lease: &Lease,
    ) -> Option<TargetOutcome> {
        let target = &claimed.target;
        let Some(connector) = self.connectors.for_target(claimed.mode, target.platform) else {
            return Some(TargetOutcome::Failed(error(
                "no_connector",
                format!(
                    "This server cannot publish to {} yet.",
                    target.platform.display_name()
                ),
            )));
        };
        let request = match self.request(owner, claimed).await {
            Ok(r) => r,
            // An earlier attempt may have published: what cannot be checked now is unknown,
            // never failed (a failed target invites a repost).
            Err(TargetOutcome::Failed(e)) if claimed.in_flight => {
                return Some(TargetOutcome::Unknown(TargetError {
                    message: format!(
                        "{} An earlier attempt may have published it; it is not retried.",
                        e.message
                    ),
                    ..e
                }));
            }
            Err(outcome) => return Some(outcome),
        };

        if claimed.in_flight {
            // An earlier attempt may have reached the platform.
            match self
                .reconcile(connector.as_ref(), &request, claimed, None)
                .await
            {
                Reconciled::Done(outcome) => return Some(outcome),
                Reconciled::NotThere => {}
            }
        }
        match self.save_in_flight(lease).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                return Some(self.retry_or_fail(
                    claimed,
                    error("store_unavailable", e.to_string()),
                    None,
                    claimed.in_flight,
                ));
            }
        }
        self.record_lag(claimed);
        let result = self
            .publish_holding_lease(connector.as_ref(), &request, lease)
            .await?;
        Some(match result {
            Ok(post) => TargetOutcome::Published {
                post_id: post.id,
                url: post.url,
            },
            Err(e) if e.code == TOKEN_INVALID => self.after_token_refused(claimed, &e).await,
            // An attempt that began in flight keeps its mark when it retries: the earlier attempt
            // may still show up later (a timeline that lists a new post late).
            Err(e) => match e.class {
                FailureClass::Retryable { retry_after } => {
                    self.retry_or_fail(claimed, from_publish(&e), retry_after, claimed.in_flight)
                }
                // Refused as a duplicate after an earlier attempt may have reached the platform:
                // most likely that attempt's post, which the lookup did not list yet.
                FailureClass::Permanent if !(claimed.in_flight && e.code == DUPLICATE_CONTENT) => {
                    TargetOutcome::Failed(from_publish(&e))
                }
                // The lookup sees what the failed call saved (a request marked sent), not only
                // what the attempt started from. Not found: the next attempt looks again first
                // (after the retry's wait the platform's listing has usually caught up), then
                // publishes again if it is still not there; the attempt budget ends it, `unknown`.
                FailureClass::Permanent | FailureClass::Ambiguous => match self
                    .reconcile(
                        connector.as_ref(),
                        &PublishRequest {
                            progress: request.progress.current(),
                            ..request.clone()
                        },
                        claimed,
                        Some(&e),
                    )
                    .await
                {
                    Reconciled::Done(outcome) => outcome,
                    Reconciled::NotThere => {
                        self.retry_or_fail(claimed, from_publish(&e), None, true)
                    }
                },
            },
        })
    }

    /// The platform refused the account's access token (nothing was published): refresh the
    /// tokens and try again, or fail the target when the account needs reconnecting.
    async fn after_token_refused(
        &self,
        claimed: &ClaimedTarget,
        refused: &PublishError,
    ) -> TargetOutcome {
        let Some(account_ref) = claimed.target.account_ref.as_deref() else {
            return TargetOutcome::Failed(from_publish(refused));
        };
        match self.tokens.refresh(account_ref, true).await {
            Refresh::Refreshed => self.retry_or_fail(
                claimed,
                from_publish(refused),
                Some(Duration::from_secs(1)),
                claimed.in_flight,
            ),
            // Another worker is refreshing it (a refresh takes about a second).
            Refresh::Busy => self.retry_or_fail(
                claimed,
                from_publish(refused),
                Some(Duration::from_secs(5)),
                claimed.in_flight,
            ),
            Refresh::NeedsReconnect(why) => TargetOutcome::Failed(TargetError {
                code: "account_needs_reconnect".into(),
                message: format!(
                    "The {} account needs to be reconnected: its token was refused and could not be refreshed ({why}).",
                    claimed.target.platform.display_name()
                ),
                platform_error: refused.platform_error.clone(),
            }),
            Refresh::Unavailable(why) => self.retry_or_fail(
                claimed,
                error(
                    "token_refresh_failed",
                    format!("The account's token was refused and refreshing it failed: {why}"),
                ),
                None,
                claimed.in_flight,
            ),
        }
    }

    /// The publish request of a claimed target, with the account's tokens decrypted.
    async fn request(
        &self,
        owner: &str,
        claimed: &ClaimedTarget,
    ) -> Result<PublishRequest, TargetOutcome> {
        let target = &claimed.target;
        // Submissions stored before options existed hold a bare `PostContent`: they read with
        // no options.
        let stored: StoredContent = serde_json::from_str(&claimed.content_json).map_err(|e| {
            TargetOutcome::Failed(error(
                "corrupt_post",
                format!("The stored post cannot be read: {e}"),
            ))
        })?;
        // The target's own text replaces the post's (spec 8.2), so every connector, its
        // markers and its reconciliation see the text this target publishes.
        let own_text = target.text.as_deref().map(TargetText::from_stored);
        let content = stored.content.for_target(own_text.as_ref());
        let options = stored.options.for_platform(target.platform);
        let account = match (&target.account_ref, claimed.mode) {
            (None, _) | (_, KeyMode::Test) => AccountCredentials {
                account_id: target.account_id.clone(),
                username: None,
                access_token: None,
                refresh_token: None,
                meta: serde_json::Value::Null,
            },
            (Some(account_ref), KeyMode::Live) => {
                let mut found = self.load_account(claimed, account_ref).await?;
                let expired = found
                    .0
                    .token_expires_at
                    .is_some_and(|at| at <= self.clock.now() + chrono::Duration::seconds(30));
                if expired {
                    // Expired (the background refresher was late or failed): refresh first.
                    match self.tokens.refresh(account_ref, false).await {
                        Refresh::Refreshed => {
                            found = self.load_account(claimed, account_ref).await?
                        }
                        Refresh::Busy => {
                            return Err(self.retry_or_fail(
                                claimed,
                                error(
                                    "token_refreshing",
                                    "The account's tokens are being refreshed.",
                                ),
                                Some(Duration::from_secs(5)),
                                claimed.in_flight,
                            ));
                        }
                        Refresh::NeedsReconnect(why) => {
                            return Err(TargetOutcome::Failed(error(
                                "account_needs_reconnect",
                                format!(
                                    "The {} account needs to be reconnected: its token expired and could not be refreshed ({why}).",
                                    target.platform.display_name()
                                ),
                            )));
                        }
                        Refresh::Unavailable(why) => {
                            return Err(self.retry_or_fail(
                                claimed,
                                error(
                                    "token_refresh_failed",
                                    format!("The account's token expired and refreshing it failed: {why}"),
                                ),
                                None,
                                claimed.in_flight,
                            ));
                        }
                    }
                }
                let (account, secrets) = found;
                self.tokens.credentials(&account, &secrets)
            }
        };
        let (content, media) = self
            .prepare_media(claimed, content, &stored.options)
            .await?;
        // Progress is sealed at rest. Progress that no longer opens (the secret key changed),
        // or opens to something that is not JSON (corrupted), may record a post already made:
        // the target ends `unknown`, never sent blind.
        let saved = match claimed.progress_json.as_deref() {
            None => serde_json::Value::Null,
            Some(stored) => {
                let json = self.tokens.secrets().open_progress(stored).ok_or_else(|| {
                    TargetOutcome::Unknown(error(
                        "progress_unreadable",
                        "An earlier attempt's saved progress cannot be opened with this \
                         server's secret key (SOKU_SECRET_KEY changed?): whether it was \
                         published cannot be told, so it is not sent again.",
                    ))
                })?;
                serde_json::from_str(&json).map_err(|e| {
                    TargetOutcome::Unknown(error(
                        "progress_unreadable",
                        format!(
                            "An earlier attempt's saved progress is damaged ({e}): whether it \
                             was published cannot be told, so it is not sent again."
                        ),
                    ))
                })?
            }
        };
        let progress = Progress::new(
            saved,
            Arc::new(TargetProgress {
                tokens: self.tokens.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                target_id: target.id.clone(),
                owner: owner.to_owned(),
            }),
        );
        Ok(PublishRequest {
            marker: target.id.clone(),
            user_id: claimed.user_id.clone(),
            submission_id: target.submission_id.clone(),
            target_id: format!("{}:{}", target.platform, target.account_id),
            platform: target.platform,
            account,
            content,
            options,
            media,
            progress,
            not_before: claimed.submitted_at,
        })
    }

    /// The connector's call, bounded: a post without media within half the lease (a hung call
    /// is given up well before a lease renewed meanwhile would matter); a post with media
    /// (uploads, processing waits) within `MEDIA_PUBLISH_MAX`. The lease is renewed meanwhile
    /// (`lease`), as through the whole attempt. `None` when the lease was lost (another worker
    /// owns the target): the call is stopped and this attempt's outcome is not recorded.
    async fn publish_holding_lease(
        &self,
        connector: &dyn soku_core::connector::Connector,
        request: &PublishRequest,
        lease: &Lease,
    ) -> Option<Result<soku_core::connector::PublishedPost, PublishError>> {
        let bound = if request.media.is_empty() {
            self.config.lease / 2
        } else {
            MEDIA_PUBLISH_MAX
        };
        tokio::select! {
            result = tokio::time::timeout(bound, connector.publish(request)) => {
                Some(result.unwrap_or_else(|_| {
                    Err(PublishError::new(
                        FailureClass::Ambiguous,
                        "timeout",
                        "The platform did not answer in time.",
                    ))
                }))
            }
            () = lease.lost() => {
                tracing::warn!("the lease was lost during the publish; stopping it");
                None
            }
        }
    }

    /// The target's account and its sealed tokens, if it is still connected and usable.
    async fn load_account(
        &self,
        claimed: &ClaimedTarget,
        account_ref: &str,
    ) -> Result<(soku_core::queue::Account, soku_core::queue::AccountSecrets), TargetOutcome> {
        let found = self.store.account_secrets(account_ref).await.map_err(|e| {
            self.retry_or_fail(
                claimed,
                error("store_unavailable", e.to_string()),
                None,
                claimed.in_flight,
            )
        })?;
        let Some((account, secrets)) = found else {
            return Err(TargetOutcome::Failed(error(
                "account_disconnected",
                "The account was disconnected before the post was published.",
            )));
        };
        if account.status == AccountStatus::NeedsReconnect {
            return Err(TargetOutcome::Failed(error(
                "account_needs_reconnect",
                format!(
                    "The {} account needs to be reconnected.",
                    claimed.target.platform.display_name()
                ),
            )));
        }
        Ok((account, secrets))
    }
}

/// Saves a connector's progress on the target's row, while this attempt holds the lease.
struct TargetProgress {
    /// Seals what is saved.
    tokens: Arc<AccountTokens>,
    store: Arc<dyn soku_core::Store>,
    clock: Arc<dyn soku_core::Clock>,
    target_id: String,
    owner: String,
}

#[async_trait::async_trait]
impl ProgressSink for TargetProgress {
    async fn save(&self, value: &serde_json::Value) -> Result<(), PublishError> {
        let unsaved = |why: String| {
            PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "progress_unsaved",
                format!("The upload's progress could not be saved: {why}"),
            )
        };
        match self
            .store
            .save_target_progress(
                &self.target_id,
                &self.owner,
                &self.tokens.secrets().seal_progress(&value.to_string()),
                self.clock.now(),
            )
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(unsaved("another worker holds the target now".into())),
            Err(e) => Err(unsaved(e.to_string())),
        }
    }
}
