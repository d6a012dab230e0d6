//! API keys (spec 4 and 4.1): create, list, change, rotate and revoke the caller's keys, and
//! read their security events. Every change records its audit event in the same transaction.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{AuditEventView, AuditPage, CreatedKey, KeyList, KeyListing};
use chrono::{DateTime, Duration, Months, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use soku_core::ErrorCode;
use soku_core::audit::{AuditCursor, AuditDraft, AuditKind, Origin};
use soku_core::keys::KeyMode;
use soku_core::model::{KeyUpdate, Rotation, new_api_key, normalize_key_name};
use soku_core::scopes::ScopeSet;
use soku_core::time::{parse_rfc3339, rfc3339_millis};
use std::net::IpAddr;
use utoipa::ToSchema;

/// At most this many allowed addresses per key (spec 4.1).
pub const MAX_ALLOWED_IPS: usize = 20;
/// The longest rotation grace period, in hours.
pub const MAX_GRACE_HOURS: i64 = 168;
/// How far ahead a key may expire.
const MAX_EXPIRY_MONTHS: u32 = 24;

/// The body of `POST /v1/api-keys`. An unknown member is refused: a misspelt `allowedIPs` or
/// `scope` would otherwise make a key without the restriction its creator asked for.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// 1 to 100 characters after trimming.
    #[serde(default)]
    pub name: Option<String>,
    /// `live` (default) or `test`.
    #[serde(default)]
    pub mode: Option<ModeParam>,
    /// RFC 3339; in the future, at most 2 years ahead. Absent: the key does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// A non-empty subset of `posts:read`, `posts:write`, `media:read`, `media:write`,
    /// `accounts:read`, `accounts:write`, `templates:write`, `ai:transcribe`, `repurpose:read`,
    /// `repurpose:write`. Absent or null: full access.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Up to 20 IPv4/IPv6 addresses or CIDRs the key may be used from. Absent, null or empty:
    /// anywhere.
    #[serde(default)]
    pub allowed_ips: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum ModeParam {
    Live,
    Test,
}

/// The body of `PATCH /v1/api-keys/{id}`: the fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateKeyRequest {
    /// 1 to 100 characters after trimming; null removes the name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Replaces the allowed addresses; null or empty: anywhere.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_ips: Option<Option<Vec<String>>>,
}

/// The body of `POST /v1/api-keys/{id}/rotate`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the old key keeps working, 0 to 168 hours; default 24.
    #[serde(default)]
    pub grace_period_hours: Option<i64>,
}

/// `GET /v1/audit-events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAuditEvents {
    /// 1 to 100, default 20
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page
    pub cursor: Option<String>,
}

/// A field that is present (even as null) is `Some`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Creates a key for the caller. The full key is in the answer and nowhere else, ever.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    origin: Origin,
    request: CreateKeyRequest,
) -> ApiResult<CreatedKey> {
    let now = state.clock.now();
    let name = name(request.name.as_deref())?;
    let mode = match request.mode {
        Some(ModeParam::Test) => KeyMode::Test,
        Some(ModeParam::Live) | None => KeyMode::Live,
    };
    let expires_at = request
        .expires_at
        .as_deref()
        .map(|t| expiry(t, now))
        .transpose()?;
    let scopes = request.scopes.as_deref().map(scopes).transpose()?;
    let allowed_ips = allowed_ips(request.allowed_ips.as_deref().unwrap_or_default())?;
    let (mut record, generated) = new_api_key(&caller.user_id, name, mode, now);
    record.expires_at = expires_at;
    record.scopes = scopes;
    record.allowed_ips = allowed_ips;
    let event = record.created_event(
        origin,
        json!({
            "name": record.name,
            "mode": mode.as_str(),
            "expiresAt": expires_at.map(rfc3339_millis),
            "scopes": scopes.map(ScopeSet::names),
            "allowedIps": ip_texts(&record.allowed_ips),
        }),
    );
    state.store.insert_api_key(&record, &event).await?;
    tracing::info!(key_id = %record.id, mode = mode.as_str(), "API key created");
    Ok(CreatedKey::of(&record.stored(), generated.secret))
}

/// The caller's keys, newest first: never the full key or its hash.
pub async fn list(state: &AppState, caller: &Caller) -> ApiResult<KeyList> {
    let keys = state.store.list_api_keys(&caller.user_id).await?;
    let now = state.clock.now();
    Ok(KeyList {
        api_keys: keys.iter().map(|k| KeyListing::of(k, now)).collect(),
    })
}

/// Revokes one of the caller's keys, at once; another user's key is 404.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    origin: Origin,
    id: &str,
) -> ApiResult<KeyListing> {
    let audit = AuditDraft::new(AuditKind::KeyRevoked, origin, json!({}));
    let revoked = state
        .store
        .revoke_api_key(Some(&caller.user_id), id, state.clock.now(), &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    state.keys.evict(&revoked.id);
    tracing::info!(key_id = %revoked.id, "API key revoked");
    Ok(KeyListing::of(&revoked, state.clock.now()))
}

/// Replaces an active key by a new one with the same name, mode, scopes and allowed
/// addresses; the old one works until the grace period ends.
pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    origin: Origin,
    id: &str,
    request: RotateKeyRequest,
) -> ApiResult<CreatedKey> {
    let hours = request.grace_period_hours.unwrap_or(24);
    if !(0..=MAX_GRACE_HOURS).contains(&hours) {
        return Err(ApiError::validation(
            "gracePeriodHours",
            "out_of_range",
            "'gracePeriodHours' must be a whole number from 0 to 168.",
        ));
    }
    let now = state.clock.now();
    let Some(old) = state
        .store
        .get_api_key(id)
        .await?
        .filter(|k| k.user_id == caller.user_id)
    else {
        return Err(ApiError::not_found("API key"));
    };
    // Name, scopes, addresses and lifetime are taken from the key as the store's transaction
    // finds it.
    let (record, generated) = new_api_key(&caller.user_id, None, old.mode, now);
    let grace_ends = now + Duration::hours(hours);
    let audit = AuditDraft::new(
        AuditKind::KeyRotated,
        origin,
        json!({ "replacedBy": record.id, "graceEndsAt": rfc3339_millis(grace_ends) }),
    );
    match state
        .store
        .rotate_api_key(&caller.user_id, id, &record, grace_ends, now, &audit)
        .await?
    {
        Rotation::Rotated { old, new } => {
            state.keys.evict(&old.id);
            tracing::info!(key_id = %old.id, new_key_id = %new.id, hours, "API key rotated");
            Ok(CreatedKey::of(&new, generated.secret))
        }
        Rotation::NotFound => Err(ApiError::not_found("API key")),
        Rotation::NotActive => Err(ApiError::new(
            ErrorCode::Conflict,
            "Only an active key that has not been rotated can be rotated.",
        )
        .with_details(json!({ "status": old.status(now), "replacedBy": old.replaced_by }))),
    }
}

/// Changes a key's name or allowed addresses.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    origin: Origin,
    id: &str,
    request: UpdateKeyRequest,
) -> ApiResult<KeyListing> {
    if request.name.is_none() && request.allowed_ips.is_none() {
        return Err(ApiError::validation(
            "body",
            "required",
            "Send 'name' or 'allowedIps' (or both) to change.",
        ));
    }
    let update = KeyUpdate {
        name: request.name.map(|n| name(n.as_deref())).transpose()?,
        allowed_ips: request
            .allowed_ips
            .map(|ips| allowed_ips(ips.as_deref().unwrap_or_default()))
            .transpose()?,
    };
    let mut changed = Vec::new();
    if let Some(name) = &update.name {
        changed.push(("name", json!(name)));
    }
    if let Some(ips) = &update.allowed_ips {
        changed.push(("allowedIps", json!(ip_texts(ips))));
    }
    let details = json!({
        "fields": changed.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        "to": changed.into_iter().map(|(f, v)| (f.to_owned(), v)).collect::<serde_json::Map<_, _>>(),
    });
    let audit = AuditDraft::new(AuditKind::KeyUpdated, origin, details);
    let now = state.clock.now();
    let updated = state
        .store
        .update_api_key(&caller.user_id, id, &update, now, &audit)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    state.keys.evict(&updated.id);
    Ok(KeyListing::of(&updated, now))
}

/// The caller's security events, newest first.
pub async fn audit_events(
    state: &AppState,
    caller: &Caller,
    query: &ListAuditEvents,
) -> ApiResult<AuditPage> {
    let limit = super::posts::page_limit(query.limit.as_deref())?;
    let cursor =
        super::posts::page_cursor(super::posts::Listing::AuditEvents, query.cursor.as_deref())?
            .map(|(at, id)| AuditCursor { at, id });
    let events = state
        .store
        .list_audit_events(&caller.user_id, limit as usize, cursor.as_ref())
        .await?;
    let next_cursor = (events.len() as i64 == limit)
        .then(|| events.last())
        .flatten()
        .map(|e| super::posts::encode_cursor(e.at.timestamp_millis(), &e.id));
    Ok(AuditPage {
        events: events.iter().map(AuditEventView::of).collect(),
        next_cursor,
    })
}

fn name(raw: Option<&str>) -> ApiResult<Option<String>> {
    normalize_key_name(raw).map_err(|reason| {
        ApiError::validation(
            "name",
            reason,
            "The 'name' field must be 1 to 100 characters after trimming, without control characters.",
        )
    })
}

/// `expiresAt`: RFC 3339 (not a leap second: `parse_rfc3339`), after `now`, at most two years
/// ahead.
fn expiry(text: &str, now: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    let at = parse_rfc3339(text.trim()).ok_or_else(|| {
        ApiError::validation(
            "expiresAt",
            "invalid_value",
            "'expiresAt' must be an RFC 3339 time such as 2027-01-31T00:00:00Z.",
        )
    })?;
    if at <= now {
        return Err(ApiError::validation(
            "expiresAt",
            "in_past",
            "'expiresAt' must be in the future.",
        ));
    }
    let latest = now
        .checked_add_months(Months::new(MAX_EXPIRY_MONTHS))
        .unwrap_or(now);
    if at > latest {
        return Err(ApiError::validation(
            "expiresAt",
            "too_far",
            "'expiresAt' must be at most 2 years ahead.",
        ));
    }
    Ok(at)
}

/// `scopes`: a non-empty list of known scope names.
fn scopes(names: &[String]) -> ApiResult<ScopeSet> {
    match ScopeSet::parse(names.iter().map(String::as_str)) {
        Ok(Some(set)) => Ok(set),
        Ok(None) => Err(ApiError::validation(
            "scopes",
            "empty",
            "'scopes' must name at least one scope (leave it out for full access).",
        )),
        Err(unknown) => Err(ApiError::validation(
            "scopes",
            "unknown_scope",
            format!(
                "Unknown scope '{}'; the scopes are {}.",
                unknown.chars().take(64).collect::<String>(),
                soku_core::scopes::Scope::ALL.map(|s| s.as_str()).join(", ")
            ),
        )),
    }
}

/// `allowedIps`: up to 20 addresses or CIDRs; an address is its own /32 or /128, a CIDR is
/// kept as its network (`10.1.2.3/24` is `10.1.2.0/24`).
pub fn allowed_ips(texts: &[String]) -> ApiResult<Vec<IpNet>> {
    if texts.len() > MAX_ALLOWED_IPS {
        return Err(ApiError::validation(
            "allowedIps",
            "too_many",
            "'allowedIps' holds at most 20 addresses or CIDRs.",
        ));
    }
    let mut nets: Vec<IpNet> = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let text = text.trim();
        let net = text
            .parse::<IpNet>()
            .map(|n| n.trunc())
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(unmapped)
            .map_err(|_| {
                ApiError::validation(
                    &format!("allowedIps[{i}]"),
                    "invalid_value",
                    format!(
                        "'allowedIps[{i}]' is not an IPv4/IPv6 address or CIDR (such as 203.0.113.0/24)."
                    ),
                )
            })?;
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    Ok(nets)
}

/// An IPv4-mapped IPv6 range (`::ffff:203.0.113.0/120`) as the IPv4 range it is: clients
/// reached over IPv6 sockets are compared as IPv4 (`ApiKey::allows`), so the mapped form
/// would never match.
fn unmapped(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// The allowed addresses as listed: `None` for anywhere.
pub fn ip_texts(nets: &[IpNet]) -> Option<Vec<String>> {
    (!nets.is_empty()).then(|| nets.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_addresses_parse_normalise_and_name_the_bad_one() {
        let ok = allowed_ips(&[
            "203.0.113.7".into(),
            "10.1.2.3/24".into(),
            "2001:db8::/32".into(),
            " ::1 ".into(),
            "203.0.113.7/32".into(),
            "::ffff:198.51.100.0/120".into(),
            "::ffff:198.51.100.9".into(),
        ])
        .unwrap();
        assert_eq!(
            ip_texts(&ok).unwrap(),
            [
                "203.0.113.7/32",
                "10.1.2.0/24",
                "2001:db8::/32",
                "::1/128",
                "198.51.100.0/24",
                "198.51.100.9/32"
            ]
        );
        for bad in ["10.0.0.0/33", "nope", "", "1.2.3", "10.0.0.1/", "::1/129"] {
            let e = allowed_ips(&["1.2.3.4".into(), bad.into()]).unwrap_err();
            assert_eq!(e.details().unwrap()["field"], "allowedIps[1]", "{bad:?}");
        }
        let many: Vec<String> = (0..21).map(|i| format!("10.0.0.{i}")).collect();
        assert!(allowed_ips(&many).is_err());
        assert!(allowed_ips(&many[..20]).is_ok());
    }

    #[test]
    fn expiry_is_in_the_future_and_within_two_years() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(expiry("2026-12-06T12:00:01Z", now).is_ok());
        assert!(expiry("2028-12-06T12:00:00Z", now).is_ok());
        let reason = |t: &str| expiry(t, now).unwrap_err().details().unwrap()["reason"].clone();
        assert_eq!(reason("2026-12-06T12:00:00Z"), "in_past");
        assert_eq!(reason("2028-12-06T12:00:00.001Z"), "too_far");
        assert_eq!(reason("tomorrow"), "invalid_value");
        assert_eq!(reason("2027-06-30T23:59:60Z"), "invalid_value");
        assert!(expiry("2027-06-30T23:59:59Z", now).is_ok());
    }

    #[test]
    fn scopes_are_known_and_not_empty() {
        assert!(scopes(&["posts:read".into()]).is_ok());
        let reason = |s: &[&str]| {
            let names: Vec<String> = s.iter().map(|s| s.to_string()).collect();
            scopes(&names).unwrap_err().details().unwrap()["reason"].clone()
        };
        assert_eq!(reason(&[]), "empty");
        assert_eq!(reason(&["posts:read", "posts:delete"]), "unknown_scope");
    }
}
