//! The caller's account: who an API key belongs to (`me`), the connected accounts (list,
//! disconnect) and which platforms can be connected. Connecting is in `service::connect`.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{
    AccountList, AccountView, Connectable, ConnectableList, MeKey, MeResponse, MeSubscription,
    Overview, OverviewSubscription, OverviewUser,
};
use serde::Deserialize;
use soku_core::connector::ConnectMethod;
use soku_core::keys::KeyMode;
use soku_core::model::{RateLimitTier, Subscription};
use soku_core::platform::Platform;
use soku_core::time::rfc3339_millis;
use utoipa::ToSchema;

/// The caller's connected accounts (live mode) or the simulated ones (test mode).
pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<AccountList> {
    let accounts = match caller.mode {
        KeyMode::Test => {
            let user = match caller.user() {
                Some(user) => user.clone(),
                None => state
                    .store
                    .get_user(&caller.user_id)
                    .await?
                    .ok_or_else(|| ApiError::internal("an authenticated user has no record"))?,
            };
            Platform::ALL
                .iter()
                .map(|p| AccountView::simulated(*p, &user))
                .collect()
        }
        KeyMode::Live => state
            .store
            .list_accounts(&caller.user_id)
            .await?
            .iter()
            .map(AccountView::of)
            .collect(),
    };
    Ok(AccountList { accounts })
}

/// Disconnects one of the caller's accounts (its tokens are deleted with it); test mode has
/// nothing to disconnect.
pub async fn disconnect(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    if caller.mode == KeyMode::Live && state.store.delete_account(&caller.user_id, id).await? {
        tracing::info!(account = %id, "account disconnected");
        Ok(())
    } else {
        Err(ApiError::not_found("account"))
    }
}

/// The body of `PATCH /v1/accounts/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateAccountRequest {
    /// `true`: this account becomes its platform's default, the one a plain platform target
    /// (`"bluesky"`, no `accountId`) publishes to; the user's other accounts of that platform
    /// stop being default. `false` is refused: make another account the default instead.
    #[serde(default)]
    pub is_default: Option<bool>,
}

/// Makes one of the caller's accounts the default of its platform (live mode; test mode's
/// simulated accounts are each their platform's only account, so there is nothing to change).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &str,
    request: UpdateAccountRequest,
) -> ApiResult<AccountView> {
    match request.is_default {
        Some(true) => {}
        Some(false) => {
            return Err(ApiError::validation(
                "isDefault",
                "invalid_value",
                "'isDefault' can only be set to true: make another account of the platform the default instead.",
            ));
        }
        None => {
            return Err(ApiError::validation(
                "isDefault",
                "required",
                "The 'isDefault' field is required (true makes this account its platform's default).",
            ));
        }
    }
    if caller.mode != KeyMode::Live || !state.store.set_default_account(&caller.user_id, id).await?
    {
        return Err(ApiError::not_found("account"));
    }
    tracing::info!(account = %id, "account made default");
    let account = state
        .store
        .list_accounts(&caller.user_id)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(AccountView::of(&account))
}

/// The platforms this server can connect, and how, by name.
pub fn connectable(state: &AppState) -> ConnectableList {
    let mut platforms: Vec<Connectable> = Platform::ALL
        .iter()
        .filter_map(|p| {
            let connector = state.connectors.live.get(p)?;
            if !connector.configured() {
                return None;
            }
            let method = match connector.connect_method() {
                ConnectMethod::OAuth => "oauth",
                ConnectMethod::Credentials => "credentials",
                ConnectMethod::None => return None,
            };
            Some(Connectable {
                platform: p.as_str(),
                name: p.display_name(),
                method,
            })
        })
        .collect();
    platforms.sort_by(|a, b| a.name.cmp(b.name));
    ConnectableList { platforms }
}

/// Who an API key belongs to, its mode, the subscription and the rate-limit tier. The caller
/// is an API key's (`GET /v1/me` takes nothing else) and has passed the subscription gate.
pub fn me(state: &AppState, caller: &Caller) -> MeResponse {
    let grant = caller.grant().expect("an API-key caller has a grant");
    let now = state.clock.now();
    // The gate has passed, so there is a subscription.
    let (status, end) = grant
        .subscription
        .as_ref()
        .map(|s| {
            (
                s.status.as_str().to_owned(),
                rfc3339_millis(s.current_period_end),
            )
        })
        .unwrap_or_default();
    MeResponse {
        user_id: grant.user.id.clone(),
        key: MeKey {
            id: grant.key.id.clone(),
            name: grant.key.name.clone(),
            mode: grant.key.mode.as_str(),
        },
        subscription: MeSubscription {
            status,
            current_period_end: end,
        },
        rate_limit_tier: RateLimitTier::for_user(grant.user.role, grant.subscription.as_ref(), now)
            .as_str(),
    }
}

/// A signed-in user, their subscription and whether it gives access (the dashboard's header).
pub async fn overview(state: &AppState, caller: &Caller) -> ApiResult<Overview> {
    let user = caller
        .user()
        .ok_or_else(|| ApiError::internal("the overview is asked for without a session"))?;
    let sub = state.store.get_subscription(&user.id).await?;
    Ok(Overview {
        has_access: Subscription::grants_access(sub.as_ref(), state.clock.now()),
        user: OverviewUser {
            id: user.id.clone(),
            email: user.email.clone(),
        },
        subscription: sub.map(|s| OverviewSubscription {
            status: s.status.as_str(),
            current_period_end: rfc3339_millis(s.current_period_end),
        }),
    })
}
