//! Reconciliation: a target that may already have reached the platform (its worker died, or
//! the answer was ambiguous) is looked up with `find_existing` before anything is sent again.

use crate::account_tokens::Refresh;
use crate::dispatch::Engine;
use crate::retry::{error, from_publish};
use soku_core::connector::{Connector, Existing, PublishError, PublishRequest, TOKEN_INVALID};
use soku_core::queue::{ClaimedTarget, TargetError, TargetOutcome};

pub(crate) enum Reconciled {
    Done(TargetOutcome),
    NotThere,
}

impl Engine {
    /// Asks the platform whether the post exists. `cause` is the ambiguous failure that led
    /// here, if it happened in this attempt.
    pub(crate) async fn reconcile(
        &self,
        connector: &dyn Connector,
        request: &PublishRequest,
        claimed: &ClaimedTarget,
        cause: Option<&PublishError>,
    ) -> Reconciled {
        let cause_error = cause.map(from_publish).unwrap_or_else(|| {
            error(
                "interrupted",
                "An earlier attempt was interrupted after it may have reached the platform.",
            )
        });
        match connector.find_existing(request).await {
            Ok(Existing::Found(post)) => Reconciled::Done(TargetOutcome::Published {
                post_id: post.id,
                url: post.url,
            }),
            Ok(Existing::NotFound) => Reconciled::NotThere,
            Ok(Existing::CannotTell) => Reconciled::Done(TargetOutcome::Unknown(TargetError {
                code: "outcome_unknown".into(),
                message: format!(
                    "{} It may have been published; the platform cannot say, so it is not retried.",
                    cause_error.message
                ),
                platform_error: cause_error.platform_error,
            })),
            // The lookup's token was refused: refresh it for the next lookup, or, when the account
            // needs reconnecting, the outcome cannot be learned.
            Err(e) if e.code == TOKEN_INVALID => {
                let Some(account_ref) = claimed.target.account_ref.as_deref() else {
                    return Reconciled::Done(self.retry_or_fail(
                        claimed,
                        from_publish(&e),
                        None,
                        true,
                    ));
                };
                match self.tokens.refresh(account_ref, true).await {
                    Refresh::NeedsReconnect(why) => {
                        Reconciled::Done(TargetOutcome::Unknown(TargetError {
                            code: "outcome_unknown".into(),
                            message: format!(
                                "{} Whether it was published cannot be checked: the {} account needs to be reconnected ({why}).",
                                cause_error.message,
                                claimed.target.platform.display_name()
                            ),
                            platform_error: cause_error.platform_error,
                        }))
                    }
                    _ => {
                        Reconciled::Done(self.retry_or_fail(claimed, from_publish(&e), None, true))
                    }
                }
            }
            // Still unknown: try the reconciliation again later, never a blind publish.
            Err(e) => Reconciled::Done(self.retry_or_fail(claimed, from_publish(&e), None, true)),
        }
    }
}
