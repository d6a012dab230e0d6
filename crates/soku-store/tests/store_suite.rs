//! One story, told to every backend: SQLite always, PostgreSQL when `SOKU_TEST_POSTGRES_URL`
//! names a database (each run gets its own schema there).

use chrono::{Duration, TimeZone, Utc};
use soku_core::keys::{self, KeyMode};
use soku_core::model::{
    NewApiKey, RateProfile, Role, SigningKey, Subscription, SubscriptionStatus,
};
use soku_core::ratelimit::Quota;
use soku_core::{Store, StoreError};
use soku_store::postgres::PgStore;
use soku_store::sqlite::SqliteStore;

async fn each_backend<F, Fut>(label: &str, story: F)
where
    F: Fn(Box<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    story(Box::new(SqliteStore::connect(&url).await.unwrap())).await;
    match std::env::var("SOKU_TEST_POSTGRES_URL") {
        Ok(pg) if !pg.is_empty() => {
            let store = PgStore::connect_fresh_schema(&pg, label).await.unwrap();
            story(Box::new(store)).await;
        }
        _ => eprintln!("SOKU_TEST_POSTGRES_URL not set: {label} ran on SQLite only"),
    }
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn new_key(user: &str, mode: KeyMode, at: chrono::DateTime<Utc>) -> (NewApiKey, String) {
    let g = keys::generate(mode);
    let key = NewApiKey {
        id: keys::random_id("key_", 20),
        user_id: user.into(),
        name: Some("ci".into()),
        mode,
        hash: g.hash,
        preview: g.preview.clone(),
        created_at: at,
        expires_at: None,
        scopes: None,
        allowed_ips: Vec::new(),
    };
    (key, g.secret)
}

/// The `api_key.created` event of a key stored by a test.
fn created(key: &soku_core::model::NewApiKey) -> soku_core::audit::AuditEvent {
    key.created_event(Default::default(), serde_json::json!({}))
}

/// The event of a revocation made by a test.
fn revoked_event() -> soku_core::audit::AuditDraft {
    soku_core::audit::AuditDraft::new(
        soku_core::audit::AuditKind::KeyRevoked,
        Default::default(),
        serde_json::json!({}),
    )
}

#[tokio::test]
async fn users_and_roles() {
    each_backend("users", |s| async move {
        s.ping().await.unwrap();
        let u = s
            .create_user("u1", Some("a@example.com"), t0())
            .await
            .unwrap();
        assert_eq!(u.id, "u1");
        assert_eq!(u.role, Role::User);
        assert_eq!(u.created_at, t0());
        assert!(matches!(
            s.create_user("u1", None, t0()).await,
            Err(StoreError::Conflict)
        ));
        // ensure_user keeps the existing record.
        let again = s
            .ensure_user("u1", Some("other@example.com"), t0() + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(again, u);
        let fresh = s.ensure_user("u2", None, t0()).await.unwrap();
        assert_eq!(fresh.email, None);
        assert!(s.set_role("u1", Role::Admin).await.unwrap());
        assert_eq!(s.get_user("u1").await.unwrap().unwrap().role, Role::Admin);
        assert!(!s.set_role("nobody", Role::Admin).await.unwrap());
        assert_eq!(s.get_user("nobody").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn password_hashes_are_found_by_email_without_case() {
    each_backend("passwords", |s| async move {
        s.create_user("p1", Some("Ada@Example.com"), t0())
            .await
            .unwrap();
        s.create_user("p2", Some("ada@example.com"), t0() + Duration::seconds(1))
            .await
            .unwrap();
        s.create_user("p3", Some("bob@example.com"), t0())
            .await
            .unwrap();
        assert!(
            s.password_users("ada@example.com")
                .await
                .unwrap()
                .is_empty(),
            "no password yet"
        );
        assert!(s.set_password_hash("p1", "$argon2id$one").await.unwrap());
        assert!(s.set_password_hash("p2", "$argon2id$two").await.unwrap());
        assert!(!s.set_password_hash("nobody", "$argon2id$x").await.unwrap());
        let found = s.password_users("ADA@example.COM").await.unwrap();
        let ids: Vec<(&str, &str)> = found
            .iter()
            .map(|(u, h)| (u.id.as_str(), h.as_str()))
            .collect();
        assert_eq!(
            ids,
            vec![("p1", "$argon2id$one"), ("p2", "$argon2id$two")],
            "oldest first"
        );
        assert!(
            s.password_users("bob@example.com")
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn subscriptions() {
    each_backend("subs", |s| async move {
        s.create_user("u1", None, t0()).await.unwrap();
        assert_eq!(s.get_subscription("u1").await.unwrap(), None);
        let sub = Subscription {
            status: SubscriptionStatus::Trialing,
            current_period_end: t0() + Duration::days(14),
        };
        assert!(s.set_subscription("u1", &sub, t0()).await.unwrap());
        assert_eq!(s.get_subscription("u1").await.unwrap(), Some(sub.clone()));
        let replaced = Subscription {
            status: SubscriptionStatus::PastDue,
            current_period_end: t0() + Duration::days(30),
        };
        assert!(s.set_subscription("u1", &replaced, t0()).await.unwrap());
        assert_eq!(s.get_subscription("u1").await.unwrap(), Some(replaced));
        assert!(!s.set_subscription("nobody", &sub, t0()).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn api_keys_lifecycle() {
    each_backend("keys", |s| async move {
        s.create_user("u1", None, t0()).await.unwrap();
        s.create_user("u2", None, t0()).await.unwrap();
        let sub = Subscription {
            status: SubscriptionStatus::Active,
            current_period_end: t0() + Duration::days(30),
        };
        s.set_subscription("u1", &sub, t0()).await.unwrap();

        let (k1, secret1) = new_key("u1", KeyMode::Live, t0());
        let (k2, _) = new_key("u1", KeyMode::Test, t0() + Duration::seconds(1));
        let (k3, secret3) = new_key("u2", KeyMode::Live, t0());
        for k in [&k1, &k2, &k3] {
            s.insert_api_key(k, &created(k)).await.unwrap();
        }
        // The same hash twice is refused.
        let mut dup = k3.clone();
        dup.id = "key_dup".into();
        assert!(matches!(
            s.insert_api_key(&dup, &created(&dup)).await,
            Err(StoreError::Conflict)
        ));

        let grant = s
            .find_key_grant(&keys::hash(&secret1), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(grant.key.id, k1.id);
        assert_eq!(grant.key.mode, KeyMode::Live);
        assert_eq!(grant.key.name.as_deref(), Some("ci"));
        assert_eq!(grant.user.id, "u1");
        assert_eq!(grant.subscription, Some(sub.clone()));
        let other = s
            .find_key_grant(&keys::hash(&secret3), t0())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.user.id, "u2");
        assert_eq!(other.subscription, None);
        assert!(
            s.find_key_grant(&keys::generate(KeyMode::Live).hash, t0())
                .await
                .unwrap()
                .is_none()
        );

        // Newest first; only the owner's.
        let listed = s.list_api_keys("u1").await.unwrap();
        assert_eq!(
            listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            vec![k2.id.as_str(), k1.id.as_str()]
        );
        assert_eq!(listed[1].preview, k1.preview);
        assert_eq!(listed[1].status(t0()), "active");

        // lastUsedAt: written, then not again within a minute.
        s.touch_api_key(&k1.id, t0() + Duration::seconds(5), None)
            .await
            .unwrap();
        s.touch_api_key(&k1.id, t0() + Duration::seconds(30), None)
            .await
            .unwrap();
        let used = s.get_api_key(&k1.id).await.unwrap().unwrap();
        assert_eq!(used.last_used_at, Some(t0() + Duration::seconds(5)));
        s.touch_api_key(&k1.id, t0() + Duration::seconds(70), None)
            .await
            .unwrap();
        let used = s.get_api_key(&k1.id).await.unwrap().unwrap();
        assert_eq!(used.last_used_at, Some(t0() + Duration::seconds(70)));

        // Another user cannot revoke it; its owner can; revoking again keeps the first time.
        assert!(
            s.revoke_api_key(Some("u2"), &k1.id, t0(), &revoked_event())
                .await
                .unwrap()
                .is_none()
        );
        let revoked = s
            .revoke_api_key(
                Some("u1"),
                &k1.id,
                t0() + Duration::minutes(2),
                &revoked_event(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.revoked_at, Some(t0() + Duration::minutes(2)));
        assert_eq!(revoked.status(t0()), "revoked");
        let again = s
            .revoke_api_key(None, &k1.id, t0() + Duration::minutes(3), &revoked_event())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.revoked_at, Some(t0() + Duration::minutes(2)));
        assert!(
            s.find_key_grant(&keys::hash(&secret1), t0())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.revoke_api_key(None, "key_missing", t0(), &revoked_event())
                .await
                .unwrap()
                .is_none()
        );

        // Expired keys do not authenticate.
        let (mut k4, secret4) = new_key("u2", KeyMode::Live, t0());
        k4.expires_at = Some(t0() + Duration::hours(1));
        s.insert_api_key(&k4, &created(&k4)).await.unwrap();
        assert!(
            s.find_key_grant(&keys::hash(&secret4), t0())
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.find_key_grant(&keys::hash(&secret4), t0() + Duration::hours(1))
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn rate_limit_overrides() {
    each_backend("ratelimits", |s| async move {
        s.create_user("u1", None, t0()).await.unwrap();
        s.create_user("u2", None, t0()).await.unwrap();
        let (k1, secret1) = new_key("u1", KeyMode::Live, t0());
        let (k2, secret2) = new_key("u1", KeyMode::Test, t0());
        s.insert_api_key(&k1, &created(&k1)).await.unwrap();
        s.insert_api_key(&k2, &created(&k2)).await.unwrap();
        let grant = |secret: String| {
            let s = &s;
            async move {
                s.find_key_grant(&keys::hash(&secret), t0())
                    .await
                    .unwrap()
                    .unwrap()
            }
        };

        // None until set; then on every key of the user, with the profile agreeing.
        assert_eq!(grant(secret1.clone()).await.rate_limit, None);
        assert_eq!(
            s.rate_profile("u1").await.unwrap(),
            Some(RateProfile {
                role: Role::User,
                subscription: None,
                rate_limit: None,
                tokens_valid_after: None,
            })
        );
        assert!(
            s.set_rate_limit_override("u1", Quota::new(7, 3), t0())
                .await
                .unwrap()
        );
        assert_eq!(
            grant(secret1.clone()).await.rate_limit,
            Some(Quota::new(7, 3))
        );
        assert_eq!(
            grant(secret2.clone()).await.rate_limit,
            Some(Quota::new(7, 3))
        );
        // Replaced, not added; a large burst round-trips.
        assert!(
            s.set_rate_limit_override("u1", Quota::new(1_000_000, 10_000_000), t0())
                .await
                .unwrap()
        );
        assert_eq!(
            grant(secret1.clone()).await.rate_limit,
            Some(Quota::new(1_000_000, 10_000_000))
        );
        // The profile: role, subscription and override in one answer.
        s.set_role("u1", Role::Admin).await.unwrap();
        let sub = Subscription {
            status: SubscriptionStatus::Canceled,
            current_period_end: t0() + Duration::days(3),
        };
        s.set_subscription("u1", &sub, t0()).await.unwrap();
        assert_eq!(
            s.rate_profile("u1").await.unwrap(),
            Some(RateProfile {
                role: Role::Admin,
                subscription: Some(sub),
                rate_limit: Some(Quota::new(1_000_000, 10_000_000)),
                tokens_valid_after: None,
            })
        );
        // Another user is untouched; an unknown user has no profile and gets no override.
        assert_eq!(
            s.rate_profile("u2").await.unwrap().unwrap().rate_limit,
            None
        );
        assert_eq!(s.rate_profile("nobody").await.unwrap(), None);
        assert!(
            !s.set_rate_limit_override("nobody", Quota::new(1, 0), t0())
                .await
                .unwrap()
        );
        // Cleared: back to none; clearing again says there was nothing.
        assert!(s.clear_rate_limit_override("u1").await.unwrap());
        assert_eq!(grant(secret1).await.rate_limit, None);
        assert_eq!(
            s.rate_profile("u1").await.unwrap().unwrap().rate_limit,
            None
        );
        assert!(!s.clear_rate_limit_override("u1").await.unwrap());
        assert!(!s.clear_rate_limit_override("nobody").await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn signing_keys_and_settings() {
    each_backend("signing", |s| async move {
        assert!(s.signing_keys().await.unwrap().is_empty());
        let first = SigningKey {
            kid: "k1".into(),
            private_pem: "pem-1".into(),
            created_at: t0(),
        };
        let second = SigningKey {
            kid: "k2".into(),
            private_pem: "pem-2".into(),
            created_at: t0(),
        };
        s.insert_signing_key_if_none(&first).await.unwrap();
        s.insert_signing_key_if_none(&second).await.unwrap();
        let all = s.signing_keys().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kid, "k1");
        assert_eq!(all[0].private_pem, "pem-1");

        assert_eq!(s.get_setting("issuer").await.unwrap(), None);
        s.put_setting("issuer", "http://a").await.unwrap();
        s.put_setting("issuer", "http://b").await.unwrap();
        assert_eq!(
            s.get_setting("issuer").await.unwrap().as_deref(),
            Some("http://b")
        );
        assert!(s.insert_setting_if_absent("secret", "first").await.unwrap());
        assert!(
            !s.insert_setting_if_absent("secret", "second")
                .await
                .unwrap()
        );
        assert_eq!(
            s.get_setting("secret").await.unwrap().as_deref(),
            Some("first")
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_first_sight_creates_one_user() {
    each_backend("ensure", |s| async move {
        let s: std::sync::Arc<dyn Store> = s.into();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.ensure_user("same", None, t0()).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().id, "same");
        }
    })
    .await;
}

#[tokio::test]
async fn key_rotation_changes_and_their_events() {
    use soku_core::audit::{AuditDraft, AuditKind, Origin};
    use soku_core::model::{KeyUpdate, Rotation};
    use soku_core::scopes::{Scope, ScopeSet};
    each_backend("key_lifecycle", |s| async move {
        s.create_user("u1", None, t0()).await.unwrap();
        s.create_user("u2", None, t0()).await.unwrap();
        let (mut old, old_secret) = new_key("u1", KeyMode::Live, t0());
        old.scopes = ScopeSet::of([Scope::PostsRead, Scope::MediaWrite]);
        old.allowed_ips = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        s.insert_api_key(&old, &created(&old)).await.unwrap();
        let stored = s.get_api_key(&old.id).await.unwrap().unwrap();
        assert_eq!(stored.scopes, old.scopes);
        assert_eq!(stored.allowed_ips, old.allowed_ips);
        assert!(stored.allows("10.9.8.7".parse().unwrap()));
        assert!(stored.allows("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!stored.allows("11.0.0.1".parse().unwrap()));
        assert_eq!(
            s.find_api_key_by_hash(&keys::hash(&old_secret))
                .await
                .unwrap()
                .map(|k| k.id),
            Some(old.id.clone())
        );

        let rotated = AuditDraft::new(
            AuditKind::KeyRotated,
            Origin::new(Some("192.0.2.1".into()), Some("ci")),
            serde_json::json!({"replacedBy": "x"}),
        );
        let at = t0() + Duration::minutes(1);
        let grace = at + Duration::hours(24);
        let (mut new, new_secret) = new_key("u1", KeyMode::Live, at);
        new.scopes = old.scopes;
        // Another user's key is not found; the owner's is rotated once.
        assert_eq!(
            s.rotate_api_key("u2", &old.id, &new, grace, at, &rotated)
                .await
                .unwrap(),
            Rotation::NotFound
        );
        let Rotation::Rotated {
            old: was,
            new: stored_new,
        } = s
            .rotate_api_key("u1", &old.id, &new, grace, at, &rotated)
            .await
            .unwrap()
        else {
            panic!("not rotated")
        };
        // The new key has the old one's settings as the transaction found them.
        assert_eq!(stored_new.id, new.id);
        assert_eq!(stored_new.name.as_deref(), Some("ci"));
        assert_eq!(stored_new.scopes, old.scopes);
        assert_eq!(stored_new.allowed_ips, old.allowed_ips);
        assert_eq!(stored_new.expires_at, None);
        assert_eq!(was.replaced_by.as_deref(), Some(new.id.as_str()));
        assert_eq!(was.expires_at, Some(grace));
        assert_eq!(was.status(at), "active");
        assert_eq!(was.status(grace), "expired");
        let (again, _) = new_key("u1", KeyMode::Live, at);
        assert_eq!(
            s.rotate_api_key("u1", &old.id, &again, grace, at, &rotated)
                .await
                .unwrap(),
            Rotation::NotActive
        );
        assert!(
            s.get_api_key(&again.id).await.unwrap().is_none(),
            "nothing stored"
        );
        // The old key works until the grace ends; the new one at once.
        assert!(
            s.find_key_grant(&keys::hash(&old_secret), at)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.find_key_grant(&keys::hash(&old_secret), grace)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.find_key_grant(&keys::hash(&new_secret), grace)
                .await
                .unwrap()
                .is_some()
        );

        // A change of name and addresses; another user's key is not found.
        let updated = AuditDraft::new(
            AuditKind::KeyUpdated,
            Origin::default(),
            serde_json::json!({}),
        );
        let change = KeyUpdate {
            name: Some(None),
            allowed_ips: Some(vec!["203.0.113.0/24".parse().unwrap()]),
        };
        assert!(
            s.update_api_key("u2", &new.id, &change, at, &updated)
                .await
                .unwrap()
                .is_none()
        );
        let changed = s
            .update_api_key("u1", &new.id, &change, at + Duration::seconds(1), &updated)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.name, None);
        assert_eq!(changed.allowed_ips, change.allowed_ips.clone().unwrap());
        assert_eq!(changed.scopes, old.scopes, "left as it was");
        let only_name = KeyUpdate {
            name: Some(Some("renamed".into())),
            allowed_ips: None,
        };
        let changed = s
            .update_api_key(
                "u1",
                &new.id,
                &only_name,
                at + Duration::seconds(2),
                &updated,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(changed.name.as_deref(), Some("renamed"));
        assert_eq!(changed.allowed_ips, change.allowed_ips.clone().unwrap());

        // Revoking records one event; revoking again none.
        s.revoke_api_key(
            Some("u1"),
            &new.id,
            at + Duration::seconds(3),
            &revoked_event(),
        )
        .await
        .unwrap();
        s.revoke_api_key(
            Some("u1"),
            &new.id,
            at + Duration::seconds(3),
            &revoked_event(),
        )
        .await
        .unwrap();

        // Addresses: the first use from each is an event; the list is bounded per key.
        let new_ip = AuditDraft::new(
            AuditKind::KeyUsedFromNewIp,
            Origin::default(),
            serde_json::json!({}),
        );
        for (n, ip) in [
            "192.0.2.1",
            "192.0.2.2",
            "192.0.2.1",
            "192.0.2.3",
            "192.0.2.1",
        ]
        .iter()
        .enumerate()
        {
            let first = s
                .note_key_address(
                    "u1",
                    &old.id,
                    ip,
                    2,
                    at + Duration::seconds(10 + n as i64),
                    &new_ip,
                )
                .await
                .unwrap();
            // 192.0.2.2 gives way to .3 (least recently seen), .1 stays known.
            assert_eq!(first, [true, true, false, true, false][n], "{ip} at {n}");
        }
        assert!(
            s.note_key_address(
                "u1",
                &old.id,
                "192.0.2.2",
                2,
                at + Duration::seconds(19),
                &new_ip
            )
            .await
            .unwrap()
        );

        s.touch_api_key(&old.id, at, Some("192.0.2.9"))
            .await
            .unwrap();
        let used = s.get_api_key(&old.id).await.unwrap().unwrap();
        assert_eq!(used.last_used_ip.as_deref(), Some("192.0.2.9"));

        // The events, newest first, paged; each change has exactly one.
        let all = s.list_audit_events("u1", 100, None).await.unwrap();
        let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "api_key.used_from_new_ip",
                "api_key.used_from_new_ip",
                "api_key.used_from_new_ip",
                "api_key.used_from_new_ip",
                "api_key.revoked",
                "api_key.updated",
                "api_key.updated",
                "api_key.rotated",
                "api_key.created",
            ]
        );
        let rotation = &all[7];
        assert_eq!(rotation.key_id.as_deref(), Some(old.id.as_str()));
        assert_eq!(rotation.origin.ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(rotation.origin.user_agent.as_deref(), Some("ci"));
        assert_eq!(rotation.details["replacedBy"], "x");
        let first = s.list_audit_events("u1", 4, None).await.unwrap();
        let cursor = soku_core::audit::AuditCursor {
            at: first[3].at,
            id: first[3].id.clone(),
        };
        let rest = s.list_audit_events("u1", 100, Some(&cursor)).await.unwrap();
        assert_eq!(first.len() + rest.len(), all.len());
        assert_eq!(rest[0].id, all[4].id);
        assert!(
            s.list_audit_events("u2", 100, None)
                .await
                .unwrap()
                .is_empty()
        );

        // Housekeeping: events before the cut are deleted.
        assert_eq!(
            s.purge_audit_events(at).await.unwrap(),
            1,
            "the creation at t0"
        );
        assert_eq!(
            s.list_audit_events("u1", 100, None).await.unwrap().len(),
            all.len() - 1
        );
    })
    .await;
}

#[tokio::test]
async fn dashboard_sessions_end_for_every_copy() {
    use soku_core::audit::{AuditDraft, AuditEvent, AuditKind, Origin};
    use soku_core::model::SessionRecord;
    each_backend("sessions", |s| async move {
        s.create_user("u1", Some("a@example.com"), t0())
            .await
            .unwrap();
        let session = |id: &str, at| SessionRecord {
            id: id.into(),
            user_id: "u1".into(),
            created_at: at,
            expires_at: at + Duration::hours(12),
            last_seen_at: at,
            ip: Some("192.0.2.1".into()),
            user_agent: Some("Firefox".into()),
            revoked_at: None,
        };
        for (id, at) in [
            ("ses_a", t0()),
            ("ses_b", t0() + Duration::seconds(1)),
            ("ses_c", t0() + Duration::seconds(2)),
        ] {
            let event = AuditEvent::new(
                "u1",
                AuditKind::SignedIn,
                at,
                None,
                Origin::default(),
                serde_json::json!({}),
            );
            s.insert_session(&session(id, at), &event).await.unwrap();
        }
        let (found, user) = s.find_session("ses_a", t0()).await.unwrap().unwrap();
        assert_eq!(found, session("ses_a", t0()));
        assert_eq!(user.email.as_deref(), Some("a@example.com"));
        assert!(
            s.find_session("ses_a", t0() + Duration::hours(12))
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        s.touch_session("ses_a", t0() + Duration::minutes(5), Some("192.0.2.7"))
            .await
            .unwrap();
        let (seen, _) = s.find_session("ses_a", t0()).await.unwrap().unwrap();
        assert_eq!(seen.last_seen_at, t0() + Duration::minutes(5));
        assert_eq!(seen.ip.as_deref(), Some("192.0.2.7"));
        let listed: Vec<String> = s
            .list_sessions("u1", t0())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(listed, ["ses_c", "ses_b", "ses_a"]);

        let out = AuditDraft::new(
            AuditKind::SignedOut,
            Origin::default(),
            serde_json::json!({}),
        );
        let at = t0() + Duration::minutes(10);
        assert_eq!(
            s.revoke_sessions("u2", Some("ses_a"), at, &out)
                .await
                .unwrap(),
            0,
            "not u2's"
        );
        assert_eq!(
            s.revoke_sessions("u1", Some("ses_a"), at, &out)
                .await
                .unwrap(),
            1
        );
        let valid_after = |user: &'static str| {
            let s = &s;
            async move {
                s.rate_profile(user)
                    .await
                    .unwrap()
                    .unwrap()
                    .tokens_valid_after
            }
        };
        assert_eq!(valid_after("u1").await, None, "one session: tokens stay");
        assert_eq!(
            s.revoke_sessions("u1", Some("ses_a"), at, &out)
                .await
                .unwrap(),
            0
        );
        assert!(s.find_session("ses_a", at).await.unwrap().is_none());
        let everywhere = at + Duration::seconds(1) + Duration::milliseconds(250);
        assert_eq!(
            s.revoke_sessions("u1", None, everywhere, &out)
                .await
                .unwrap(),
            2
        );
        // Everywhere: the user's ID tokens end too, to the millisecond; never moved back, and
        // moved on even when no session was left to end.
        assert_eq!(valid_after("u1").await, Some(everywhere));
        assert_eq!(s.revoke_sessions("u1", None, at, &out).await.unwrap(), 0);
        assert_eq!(valid_after("u1").await, Some(everywhere));
        let later = everywhere + Duration::minutes(1);
        s.revoke_sessions("u1", None, later, &out).await.unwrap();
        assert_eq!(valid_after("u1").await, Some(later));
        assert!(s.list_sessions("u1", at).await.unwrap().is_empty());
        let events = s.list_audit_events("u1", 100, None).await.unwrap();
        let outs: Vec<i64> = events
            .iter()
            .filter(|e| e.kind == AuditKind::SignedOut)
            .map(|e| e.details["sessions"].as_i64().unwrap())
            .collect();
        assert_eq!(outs, [2, 1]);
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == AuditKind::SignedIn)
                .count(),
            3
        );
        assert_eq!(
            s.purge_sessions(at + Duration::seconds(2)).await.unwrap(),
            3
        );
    })
    .await;
}

mod posts {
    use super::*;
    use soku_core::platform::Platform;
    use soku_core::posts::{SubmissionStatus, TargetStatus};
    use soku_core::queue::*;

    fn submission(
        user: &str,
        id: &str,
        at: chrono::DateTime<Utc>,
        due: chrono::DateTime<Utc>,
        platforms: &[Platform],
    ) -> NewSubmission {
        NewSubmission {
            id: id.into(),
            user_id: user.into(),
            mode: KeyMode::Test,
            status: SubmissionStatus::Queued,
            post_json: r#"{"content":{"text":"hi"}}"#.into(),
            content_json: r#"{"text":"hi","mediaType":"text","imageUrls":[],"videoUrl":null}"#
                .into(),
            scheduled_at: None,
            created_at: at,
            targets: platforms
                .iter()
                .enumerate()
                .map(|(i, p)| NewTarget {
                    id: format!("{id}-t{i}"),
                    position: i as i64,
                    platform: *p,
                    account_ref: None,
                    account_id: format!("test_{p}"),
                    status: TargetStatus::Queued,
                    due_at: due,
                    text: None,
                })
                .collect(),
            idempotency: None,
            media_ids: Vec::new(),
        }
    }

    #[tokio::test]
    async fn accounts() {
        each_backend("accounts", |s| async move {
            s.create_user("u1", None, t0()).await.unwrap();
            let mk = |id: &str, account: &str, default: bool| NewAccount {
                account: Account {
                    id: id.into(),
                    user_id: "u1".into(),
                    platform: Platform::X,
                    account_id: account.into(),
                    display_name: Some("Name".into()),
                    username: Some("handle".into()),
                    status: AccountStatus::Active,
                    is_default: default,
                    token_expires_at: Some(t0()),
                    created_at: t0(),
                    meta: serde_json::json!({}),
                },
                access_token: Some(vec![1, 2, 3]),
                refresh_token: None,
            };
            s.insert_account(&mk("a1", "x1", true)).await.unwrap();
            s.insert_account(&mk("a2", "x2", true)).await.unwrap();
            assert!(matches!(
                s.insert_account(&mk("a3", "x2", false)).await,
                Err(StoreError::Conflict)
            ));
            let all = s.list_accounts("u1").await.unwrap();
            assert_eq!(all.len(), 2);
            assert!(
                !all.iter().find(|a| a.id == "a1").unwrap().is_default,
                "one default per platform"
            );
            assert!(all.iter().find(|a| a.id == "a2").unwrap().is_default);
            // Making a1 the default clears a2; another user's account is not found.
            assert!(!s.set_default_account("someone-else", "a1").await.unwrap());
            assert!(!s.set_default_account("u1", "nope").await.unwrap());
            assert!(s.set_default_account("u1", "a1").await.unwrap());
            let all = s.list_accounts("u1").await.unwrap();
            let default_of = |id: &str| all.iter().find(|a| a.id == id).unwrap().is_default;
            assert!(default_of("a1") && !default_of("a2"));
            // Idempotent.
            assert!(s.set_default_account("u1", "a1").await.unwrap());
            s.set_default_account("u1", "a2").await.unwrap();
            let all = s.list_accounts("u1").await.unwrap();
            let default_of = |id: &str| all.iter().find(|a| a.id == id).unwrap().is_default;
            assert!(!default_of("a1") && default_of("a2"));
            let (a, secrets) = s.account_secrets("a1").await.unwrap().unwrap();
            assert_eq!(a.username.as_deref(), Some("handle"));
            assert_eq!(secrets.access_token, Some(vec![1, 2, 3]));
            assert_eq!(secrets.refresh_token, None);
            // Disconnecting the default makes the platform's oldest remaining account default.
            assert!(!s.delete_account("someone-else", "a2").await.unwrap());
            assert!(s.delete_account("u1", "a2").await.unwrap());
            assert!(!s.delete_account("u1", "a2").await.unwrap());
            let all = s.list_accounts("u1").await.unwrap();
            assert_eq!(
                (all.len(), all[0].id.as_str(), all[0].is_default),
                (1, "a1", true)
            );
        })
        .await;
    }

    #[tokio::test]
    async fn connecting_and_refreshing_accounts() {
        each_backend("connecting_and_refreshing_accounts", |s| async move {
            use soku_core::queue::{OAuthState, RefreshEnd, RefreshedTokens, StateUse};
            s.create_user("u1", None, t0()).await.unwrap();
            let at = |mins: i64| t0() + chrono::Duration::minutes(mins);
            let mk = |id: &str, access: u8, refresh: Option<u8>, expires: i64| NewAccount {
                account: Account {
                    id: id.into(),
                    user_id: "u1".into(),
                    platform: Platform::Bluesky,
                    account_id: "did:plc:abc".into(),
                    display_name: Some("Name".into()),
                    username: Some("name.bsky.social".into()),
                    status: AccountStatus::Active,
                    is_default: false,
                    token_expires_at: Some(at(expires)),
                    created_at: t0(),
                    meta: serde_json::json!({"pds": "https://pds.example"}),
                },
                access_token: Some(vec![access]),
                refresh_token: refresh.map(|r| vec![r]),
            };
            // First connection: stored, and the default of its platform.
            let first = s.upsert_account(&mk("a1", 1, Some(2), 60)).await.unwrap();
            assert_eq!(first.id, "a1");
            assert!(first.is_default);
            assert_eq!(first.meta["pds"], "https://pds.example");
            // Reconnecting the same platform account keeps its id and, given no refresh
            // token, the old one.
            assert!(
                s.lease_account_refresh("a1", "w1", at(0), at(1))
                    .await
                    .unwrap()
            );
            assert!(
                s.end_account_refresh("a1", "w1", RefreshEnd::NeedsReconnect, at(1))
                    .await
                    .unwrap()
            );
            let again = s.upsert_account(&mk("a9", 3, None, 120)).await.unwrap();
            assert_eq!(again.id, "a1");
            assert_eq!(again.status, AccountStatus::Active);
            let (_, secrets) = s.account_secrets("a1").await.unwrap().unwrap();
            assert_eq!(
                (secrets.access_token, secrets.refresh_token),
                (Some(vec![3]), Some(vec![2]))
            );
            assert_eq!(s.list_accounts("u1").await.unwrap().len(), 1);

            // Expiring soon: listed; one lease at a time.
            assert_eq!(
                s.accounts_expiring(at(60), at(0), 10).await.unwrap().len(),
                0
            );
            assert_eq!(
                s.accounts_expiring(at(121), at(0), 10).await.unwrap().len(),
                1
            );
            assert!(
                s.lease_account_refresh("a1", "w1", at(0), at(1))
                    .await
                    .unwrap()
            );
            assert!(
                !s.lease_account_refresh("a1", "w2", at(0), at(1))
                    .await
                    .unwrap()
            );
            assert!(
                s.lease_account_refresh("a1", "w2", at(2), at(3))
                    .await
                    .unwrap(),
                "an expired lease is taken over"
            );
            let fresh = |access: u8, expires: i64| RefreshedTokens {
                access_token: vec![access],
                refresh_token: None,
                expires_at: Some(at(expires)),
                needs_reconnect: false,
            };
            assert!(
                !s.save_refreshed_tokens("a1", "w1", &fresh(5, 240), at(2))
                    .await
                    .unwrap(),
                "a lost lease saves nothing"
            );
            assert!(
                s.save_refreshed_tokens("a1", "w2", &fresh(4, 240), at(2))
                    .await
                    .unwrap()
            );
            let (a, secrets) = s.account_secrets("a1").await.unwrap().unwrap();
            assert_eq!(a.token_expires_at, Some(at(240)));
            assert_eq!(
                (secrets.access_token, secrets.refresh_token),
                (Some(vec![4]), Some(vec![2])),
                "a refresh without a new refresh token keeps the old one"
            );
            // A failed refresh: tried again later, not before.
            assert!(
                s.lease_account_refresh("a1", "w3", at(2), at(3))
                    .await
                    .unwrap(),
                "saving ends the lease"
            );
            assert!(
                s.end_account_refresh("a1", "w3", RefreshEnd::RetryAt(at(10)), at(2))
                    .await
                    .unwrap()
            );
            assert!(
                s.accounts_expiring(at(1000), at(5), 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                s.accounts_expiring(at(1000), at(10), 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            // A reconnection during a refresh wins over the refresh.
            assert!(
                s.lease_account_refresh("a1", "w4", at(11), at(12))
                    .await
                    .unwrap()
            );
            s.upsert_account(&mk("a9", 6, Some(7), 300)).await.unwrap();
            assert!(
                !s.save_refreshed_tokens("a1", "w4", &fresh(8, 400), at(11))
                    .await
                    .unwrap()
            );
            let (_, secrets) = s.account_secrets("a1").await.unwrap().unwrap();
            assert_eq!(secrets.access_token, Some(vec![6]));
            assert!(
                s.lease_account_refresh("a1", "w5", at(12), at(13))
                    .await
                    .unwrap()
            );
            s.end_account_refresh("a1", "w5", RefreshEnd::NeedsReconnect, at(12))
                .await
                .unwrap();
            assert!(
                s.accounts_expiring(at(1000), at(1000), 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "only active accounts are refreshed"
            );
            // Tokens stored with the account needing reconnection (a refresh answer that does
            // not grant posting): kept, and the account stays `needs_reconnect`.
            assert!(
                s.lease_account_refresh("a1", "w6", at(13), at(14))
                    .await
                    .unwrap()
            );
            let granted_less = RefreshedTokens {
                refresh_token: Some(vec![11]),
                needs_reconnect: true,
                ..fresh(10, 500)
            };
            assert!(
                s.save_refreshed_tokens("a1", "w6", &granted_less, at(13))
                    .await
                    .unwrap()
            );
            let (a, secrets) = s.account_secrets("a1").await.unwrap().unwrap();
            assert_eq!(a.status, AccountStatus::NeedsReconnect);
            assert_eq!(
                (secrets.access_token, secrets.refresh_token),
                (Some(vec![10]), Some(vec![11]))
            );

            // OAuth states: used once.
            let st = OAuthState {
                state_hash: vec![9; 32],
                user_id: "u1".into(),
                platform: Platform::X,
                redirect_uri: "http://127.0.0.1/v1/oauth/x/callback".into(),
                return_to: Some("https://app.example/done".into()),
                from_dashboard: true,
                sealed: vec![1, 2, 3],
                created_at: at(0),
                expires_at: at(10),
            };
            s.insert_oauth_state(&st).await.unwrap();
            let (a, b) = tokio::join!(
                s.use_oauth_state(&[9; 32], at(1)),
                s.use_oauth_state(&[9; 32], at(1))
            );
            let used = [a.unwrap(), b.unwrap()];
            assert_eq!(
                used.iter()
                    .filter(|u| matches!(u, StateUse::Used(_)))
                    .count(),
                1,
                "one of two concurrent uses wins"
            );
            assert!(used.iter().any(|u| matches!(u, StateUse::AlreadyUsed)));
            let got = used
                .iter()
                .find_map(|u| match u {
                    StateUse::Used(got) => Some(got),
                    _ => None,
                })
                .unwrap();
            assert_eq!(
                (got.user_id.as_str(), got.platform, got.sealed.clone()),
                ("u1", Platform::X, vec![1, 2, 3])
            );
            assert_eq!(got.return_to.as_deref(), Some("https://app.example/done"));
            assert!(got.from_dashboard);
            assert_eq!(got.expires_at, at(10));
            assert!(matches!(
                s.use_oauth_state(&[7; 32], at(1)).await.unwrap(),
                StateUse::Unknown
            ));
            assert_eq!(s.purge_oauth_states(at(5)).await.unwrap(), 0);
            assert_eq!(s.purge_oauth_states(at(11)).await.unwrap(), 1);
            assert!(matches!(
                s.use_oauth_state(&[9; 32], at(12)).await.unwrap(),
                StateUse::Unknown
            ));
        })
        .await;
    }

    fn media(user: &str, id: &str) -> soku_core::media::MediaRecord {
        use soku_core::media::{MediaFacts, MediaKind, MediaRecord};
        MediaRecord {
            id: id.into(),
            user_id: user.into(),
            mode: KeyMode::Test,
            facts: MediaFacts {
                kind: MediaKind::Image,
                mime: "image/png",
                size: 100,
                width: Some(1),
                height: Some(1),
                duration_ms: None,
            },
            sha256: "00".repeat(32),
            storage_key: format!("{id}.png"),
            file_name: "image.png".into(),
            source_url: None,
            idempotency_key: Some(format!("k-{id}")),
            request_hash: id.into(),
            created_at: t0(),
        }
    }

    /// A post naming hosted files is stored only while they exist, and a file a stored post
    /// names is not deleted: at the same moment too (PostgreSQL's row locks, SQLite's serial
    /// writers), so a post is never accepted with a file that is then deleted.
    #[tokio::test]
    async fn a_file_and_a_post_naming_it_are_never_both_deleted_and_stored() {
        use soku_core::media::MediaDeletion;
        each_backend("media_in_posts", |s| async move {
            let prefix = |id: &str| format!("https://soku.example/media/{id}/");
            let naming = |sub_id: &str, media_id: &str| {
                let mut sub = submission("u1", sub_id, t0(), t0() + Duration::hours(1), &[Platform::X]);
                sub.status = SubmissionStatus::Scheduled;
                sub.post_json = serde_json::json!({"content": {"imageUrls": [format!("{}image.png", prefix(media_id))]}}).to_string();
                sub.media_ids = vec![media_id.to_owned()];
                sub
            };
            for user in ["u1", "u2"] {
                s.create_user(user, None, t0()).await.unwrap();
            }
            // Stored with its file; the file then stays.
            s.insert_media(&media("u1", "med_a_1")).await.unwrap();
            assert!(s.create_submission(&naming("p1", "med_a_1")).await.unwrap());
            let gone = s.delete_media("u1", KeyMode::Test, "med_a_1", &prefix("med_a_1")).await.unwrap();
            assert!(matches!(gone, MediaDeletion::InUse), "{gone:?}");
            // The same path at another host is not this file's URL.
            let elsewhere = s
                .delete_media("u1", KeyMode::Test, "med_a_1", "https://cdn.example/media/med_a_1/")
                .await
                .unwrap();
            assert!(matches!(elsewhere, MediaDeletion::Deleted(_)), "{elsewhere:?}");
            // A post naming a file that is gone (or another user's) is not stored.
            assert!(!s.create_submission(&naming("p2", "med_a_1")).await.unwrap());
            assert!(s.get_submission("u1", KeyMode::Test, "p2").await.unwrap().is_none());
            s.insert_media(&media("u2", "med_b_1")).await.unwrap();
            assert!(!s.create_submission(&naming("p3", "med_b_1")).await.unwrap());
            // In one batch, only the post whose file is missing is left out.
            s.insert_media(&media("u1", "med_c_1")).await.unwrap();
            let stored = s
                .create_submissions(&[naming("p4", "med_c_1"), naming("p5", "med_gone"), naming("p6", "med_c_1")])
                .await
                .unwrap();
            assert_eq!(stored, vec![true, false, true]);
            let missing = s.delete_media("u1", KeyMode::Test, "med_gone", &prefix("med_gone")).await.unwrap();
            assert!(matches!(missing, MediaDeletion::NotFound), "{missing:?}");
            // At the same moment: one of the two wins, never both.
            for i in 0..20 {
                let id = format!("med_r_{i}");
                s.insert_media(&media("u1", &id)).await.unwrap();
                let (post, url) = (naming(&format!("r{i}"), &id), prefix(&id));
                let (stored, deleted) = tokio::join!(
                    s.create_submission(&post),
                    s.delete_media("u1", KeyMode::Test, &id, &url)
                );
                match (stored.unwrap(), deleted.unwrap()) {
                    (true, MediaDeletion::InUse) | (false, MediaDeletion::Deleted(_)) => {}
                    other => panic!("round {i}: {other:?}"),
                }
            }
        })
        .await;
    }

    #[tokio::test]
    async fn submissions_list_and_cancel() {
        each_backend("subs_list", |s| async move {
            for i in 0..5 {
                let platforms: &[Platform] = if i % 2 == 0 {
                    &[Platform::X, Platform::Threads]
                } else {
                    &[Platform::Bluesky]
                };
                let mut sub = submission(
                    "u1",
                    &format!("s{i}"),
                    t0() + Duration::seconds(i),
                    t0() + Duration::hours(1),
                    platforms,
                );
                if i == 4 {
                    sub.status = SubmissionStatus::Scheduled;
                    for t in &mut sub.targets {
                        t.status = TargetStatus::Scheduled;
                    }
                }
                s.create_submission(&sub).await.unwrap();
            }
            let got = s
                .get_submission("u1", KeyMode::Test, "s0")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.targets.len(), 2);
            assert_eq!(got.targets[1].platform, Platform::Threads);
            assert!(
                s.get_submission("u1", KeyMode::Live, "s0")
                    .await
                    .unwrap()
                    .is_none(),
                "test and live never mix"
            );
            assert!(
                s.get_submission("u2", KeyMode::Test, "s0")
                    .await
                    .unwrap()
                    .is_none()
            );

            let page = |before, status, platform| SubmissionFilter {
                status,
                platform,
                before,
                limit: 2,
            };
            let first = s
                .list_submissions("u1", KeyMode::Test, &page(None, None, None))
                .await
                .unwrap();
            assert_eq!(
                first.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
                ["s4", "s3"]
            );
            let cursor = Some((first[1].created_at, first[1].id.clone()));
            let second = s
                .list_submissions("u1", KeyMode::Test, &page(cursor, None, None))
                .await
                .unwrap();
            assert_eq!(
                second.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
                ["s2", "s1"]
            );
            let bluesky = s
                .list_submissions(
                    "u1",
                    KeyMode::Test,
                    &page(None, None, Some(Platform::Bluesky)),
                )
                .await
                .unwrap();
            assert_eq!(
                bluesky.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
                ["s3", "s1"]
            );
            let scheduled = s
                .list_submissions(
                    "u1",
                    KeyMode::Test,
                    &page(None, Some(SubmissionStatus::Scheduled), None),
                )
                .await
                .unwrap();
            assert_eq!(scheduled.len(), 1);

            assert!(matches!(
                s.cancel_submission("u2", KeyMode::Test, "s4", t0())
                    .await
                    .unwrap(),
                CancelOutcome::NotFound
            ));
            match s
                .cancel_submission("u1", KeyMode::Test, "s4", t0())
                .await
                .unwrap()
            {
                CancelOutcome::Canceled(r) => {
                    assert_eq!(r.status, SubmissionStatus::Canceled);
                    assert!(r.targets.iter().all(|t| t.status == TargetStatus::Canceled));
                }
                other => panic!("{other:?}"),
            }
            // A started submission cannot be canceled.
            let claimed = s
                .claim_targets(
                    "w1",
                    t0() + Duration::hours(2),
                    t0() + Duration::hours(3),
                    1,
                )
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1);
            let started = claimed[0].target.submission_id.clone();
            assert!(matches!(
                s.cancel_submission("u1", KeyMode::Test, &started, t0())
                    .await
                    .unwrap(),
                CancelOutcome::TooLate(_)
            ));
        })
        .await;
    }

    #[tokio::test]
    async fn a_targets_own_text_is_kept_read_and_claimed() {
        each_backend("target_text", |s| async move {
            let mut sub = submission("u1", "tt", t0(), t0(), &[Platform::X, Platform::Bluesky]);
            sub.targets[0].text = Some("short for x".into());
            s.create_submission(&sub).await.unwrap();
            let got = s
                .get_submission("u1", KeyMode::Test, "tt")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.targets[0].text.as_deref(), Some("short for x"));
            assert_eq!(got.targets[1].text, None);
            let mut claimed = s
                .claim_targets(
                    "w1",
                    t0() + Duration::seconds(1),
                    t0() + Duration::seconds(60),
                    10,
                )
                .await
                .unwrap();
            claimed.sort_by_key(|c| c.target.position);
            assert_eq!(claimed.len(), 2);
            assert_eq!(claimed[0].target.text.as_deref(), Some("short for x"));
            assert_eq!(claimed[1].target.text, None);
            // The columns after the target's still read right.
            assert_eq!(claimed[0].user_id, "u1");
            assert_eq!(claimed[0].mode, KeyMode::Test);
            assert!(claimed[0].content_json.contains("\"mediaType\""));
            assert_eq!(claimed[0].submitted_at, t0());
        })
        .await;
    }

    #[tokio::test]
    async fn a_connectors_progress_and_a_long_attempts_lease_are_kept_by_the_lease_owner() {
        each_backend("progress", |s| async move {
            let at = |secs: i64| t0() + Duration::seconds(secs);
            s.create_submission(&submission("u1", "p", t0(), t0(), &[Platform::X]))
                .await
                .unwrap();
            let claimed = s.claim_targets("w1", at(1), at(60), 10).await.unwrap();
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0].progress_json, None);
            let id = claimed[0].target.id.clone();
            assert!(
                s.save_target_progress(&id, "w1", r#"{"mediaId":"m1"}"#, at(2))
                    .await
                    .unwrap()
            );
            // Not the lease owner: nothing is written.
            assert!(
                !s.save_target_progress(&id, "w2", r#"{"mediaId":"m2"}"#, at(3))
                    .await
                    .unwrap()
            );
            // w1 dies; w2 takes the target over when the lease runs out and finds the progress.
            let again = s.claim_targets("w2", at(61), at(120), 10).await.unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(
                again[0].progress_json.as_deref(),
                Some(r#"{"mediaId":"m1"}"#)
            );
            assert!(
                !s.save_target_progress(&id, "w1", r#"{"mediaId":"late"}"#, at(62))
                    .await
                    .unwrap()
            );
            // The owner keeps a long attempt's lease; nobody else can move it.
            assert!(s.extend_lease(&id, "w2", at(300)).await.unwrap());
            assert!(!s.extend_lease(&id, "w1", at(400)).await.unwrap());
            assert!(
                s.claim_targets("w3", at(250), at(310), 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                s.claim_targets("w3", at(301), at(400), 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        })
        .await;
    }

    #[tokio::test]
    async fn queue_stats_count_open_targets_and_what_waits() {
        each_backend("queue_stats", |s| async move {
            let at = |secs: i64| t0() + Duration::seconds(secs);
            assert_eq!(s.queue_stats(at(0)).await.unwrap(), QueueStats::default());
            s.create_submission(&submission(
                "u1",
                "a",
                t0(),
                t0(),
                &[Platform::X, Platform::Threads],
            ))
            .await
            .unwrap();
            let mut later = submission("u1", "b", t0(), at(300), &[Platform::X]);
            later.status = SubmissionStatus::Scheduled;
            later.scheduled_at = Some(at(300));
            later.targets[0].status = TargetStatus::Scheduled;
            s.create_submission(&later).await.unwrap();
            let count = |platform, status, count, due, oldest_due| QueueCount {
                platform,
                mode: KeyMode::Test,
                status,
                count,
                due,
                oldest_due,
            };

            // Two due and waiting since t0, one scheduled for later.
            let stats = s.queue_stats(at(30)).await.unwrap();
            assert_eq!(
                stats.targets,
                vec![
                    count(Platform::Threads, TargetStatus::Queued, 1, 1, Some(t0())),
                    count(Platform::X, TargetStatus::Queued, 1, 1, Some(t0())),
                    count(Platform::X, TargetStatus::Scheduled, 1, 0, None),
                ]
            );

            // Claimed: publishing, nothing waits; when the lease runs out, they wait again.
            let claimed = s.claim_targets("w1", at(30), at(90), 10).await.unwrap();
            assert_eq!(claimed.len(), 2);
            let stats = s.queue_stats(at(60)).await.unwrap();
            assert_eq!(
                stats.targets,
                vec![
                    count(Platform::Threads, TargetStatus::Publishing, 1, 0, None),
                    count(Platform::X, TargetStatus::Publishing, 1, 0, None),
                    count(Platform::X, TargetStatus::Scheduled, 1, 0, None),
                ]
            );
            let stats = s.queue_stats(at(120)).await.unwrap();
            assert_eq!(
                stats.targets[0],
                count(
                    Platform::Threads,
                    TargetStatus::Publishing,
                    1,
                    1,
                    Some(at(90))
                )
            );

            // Settled targets leave the gauges.
            for c in &claimed {
                let published = TargetOutcome::Published {
                    post_id: "p".into(),
                    url: None,
                };
                assert!(
                    s.finish_target(&c.target.id, "w1", &published, at(61))
                        .await
                        .unwrap()
                );
            }
            let stats = s.queue_stats(at(400)).await.unwrap();
            assert_eq!(
                stats.targets,
                vec![count(
                    Platform::X,
                    TargetStatus::Scheduled,
                    1,
                    1,
                    Some(at(300))
                )]
            );

            // Accounts needing reconnection, by platform.
            s.create_user("u1", None, t0()).await.unwrap();
            let account = NewAccount {
                account: Account {
                    id: "acc1".into(),
                    user_id: "u1".into(),
                    platform: Platform::Linkedin,
                    account_id: "li1".into(),
                    display_name: None,
                    username: None,
                    status: AccountStatus::Active,
                    is_default: true,
                    token_expires_at: Some(t0()),
                    created_at: t0(),
                    meta: serde_json::json!({}),
                },
                access_token: Some(vec![1]),
                refresh_token: None,
            };
            s.insert_account(&account).await.unwrap();
            assert!(
                s.queue_stats(at(0))
                    .await
                    .unwrap()
                    .accounts_needing_reconnect
                    .is_empty()
            );
            assert!(
                s.lease_account_refresh("acc1", "r1", at(0), at(60))
                    .await
                    .unwrap()
            );
            assert!(
                s.end_account_refresh("acc1", "r1", RefreshEnd::NeedsReconnect, at(1))
                    .await
                    .unwrap()
            );
            assert_eq!(
                s.queue_stats(at(2))
                    .await
                    .unwrap()
                    .accounts_needing_reconnect,
                vec![(Platform::Linkedin, 1)]
            );
        })
        .await;
    }

    #[tokio::test]
    async fn the_queue() {
        each_backend("queue", |s| async move {
            let due = t0();
            s.create_submission(&submission(
                "u1",
                "a",
                t0(),
                due,
                &[Platform::X, Platform::Threads],
            ))
            .await
            .unwrap();
            s.create_submission(&submission(
                "u1",
                "b",
                t0(),
                due + Duration::minutes(5),
                &[Platform::X],
            ))
            .await
            .unwrap();
            assert_eq!(s.next_due().await.unwrap(), Some(due));
            assert!(
                s.claim_targets(
                    "w0",
                    due - Duration::seconds(1),
                    due + Duration::minutes(1),
                    10
                )
                .await
                .unwrap()
                .is_empty()
            );

            let claimed = s
                .claim_targets("w1", due, due + Duration::minutes(1), 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 2, "only what is due");
            assert!(
                claimed
                    .iter()
                    .all(|c| c.target.status == TargetStatus::Publishing
                        && c.target.attempts == 1
                        && !c.in_flight)
            );
            assert_eq!(claimed[0].user_id, "u1");
            assert!(claimed[0].content_json.contains("\"hi\""));
            assert_eq!(
                s.get_submission("u1", KeyMode::Test, "a")
                    .await
                    .unwrap()
                    .unwrap()
                    .status,
                SubmissionStatus::Publishing
            );
            // Nothing else is due; the lease is next.
            assert_eq!(
                s.next_due().await.unwrap(),
                Some(due + Duration::minutes(1))
            );

            let t0_id = claimed[0].target.id.clone();
            let t1_id = claimed[1].target.id.clone();
            let lease = due + Duration::minutes(1);
            assert!(s.mark_in_flight(&t0_id, "w1", due, lease).await.unwrap());
            assert!(
                !s.mark_in_flight(&t0_id, "intruder", due, lease)
                    .await
                    .unwrap()
            );
            let published = TargetOutcome::Published {
                post_id: "p1".into(),
                url: Some("https://x.example/p1".into()),
            };
            assert!(
                !s.finish_target(&t0_id, "intruder", &published, due)
                    .await
                    .unwrap()
            );
            assert!(
                s.finish_target(&t0_id, "w1", &published, due)
                    .await
                    .unwrap()
            );
            assert!(
                !s.finish_target(&t0_id, "w1", &published, due)
                    .await
                    .unwrap(),
                "once"
            );

            // The worker of t1 dies: after the lease, another worker takes it, told it may be in flight.
            // A lease that ran out, though no other worker took the target over yet, sends
            // nothing: the mark is refused, and does not renew it.
            assert!(
                !s.mark_in_flight(
                    &t1_id,
                    "w1",
                    due + Duration::seconds(61),
                    due + Duration::minutes(3)
                )
                .await
                .unwrap(),
                "a lease that ran out"
            );
            // A mark renews the lease: it then runs from the mark, not the claim.
            let renewed = due + Duration::seconds(90);
            assert!(
                s.mark_in_flight(&t1_id, "w1", due + Duration::seconds(30), renewed)
                    .await
                    .unwrap()
            );
            assert_eq!(s.next_due().await.unwrap(), Some(renewed));
            assert!(
                s.claim_targets(
                    "w2",
                    due + Duration::seconds(89),
                    due + Duration::minutes(2),
                    10
                )
                .await
                .unwrap()
                .is_empty()
            );
            let again = s
                .claim_targets(
                    "w2",
                    due + Duration::seconds(91),
                    due + Duration::minutes(2),
                    10,
                )
                .await
                .unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].target.id, t1_id);
            assert!(again[0].in_flight);
            assert_eq!(again[0].target.attempts, 2);
            assert!(
                !s.finish_target(&t1_id, "w1", &published, due)
                    .await
                    .unwrap(),
                "the dead worker lost its lease"
            );
            let error = TargetError {
                code: "rate_limited".into(),
                message: "slow down".into(),
                platform_error: Some("{\"status\":429}".into()),
            };
            let retry = TargetOutcome::Retry {
                due_at: due + Duration::minutes(3),
                error: error.clone(),
                in_flight: false,
            };
            assert!(s.finish_target(&t1_id, "w2", &retry, due).await.unwrap());
            let sub = s
                .get_submission("u1", KeyMode::Test, "a")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(sub.status, SubmissionStatus::Publishing);
            assert_eq!(sub.targets[0].status, TargetStatus::Published);
            assert_eq!(sub.targets[0].platform_post_id.as_deref(), Some("p1"));
            assert!(sub.targets[0].published_at.is_some());
            assert_eq!(sub.targets[1].status, TargetStatus::Queued);
            assert_eq!(sub.targets[1].error.as_ref(), Some(&error));

            let last = s
                .claim_targets(
                    "w3",
                    due + Duration::minutes(5),
                    due + Duration::minutes(6),
                    10,
                )
                .await
                .unwrap();
            assert_eq!(last.len(), 2, "the retry and submission b");
            for c in &last {
                assert!(
                    !c.in_flight,
                    "a retry after a clean failure is not in flight"
                );
                s.finish_target(
                    &c.target.id,
                    "w3",
                    &TargetOutcome::Failed(error.clone()),
                    due,
                )
                .await
                .unwrap();
            }
            assert_eq!(
                s.get_submission("u1", KeyMode::Test, "a")
                    .await
                    .unwrap()
                    .unwrap()
                    .status,
                SubmissionStatus::PartiallyPublished
            );
            assert_eq!(
                s.get_submission("u1", KeyMode::Test, "b")
                    .await
                    .unwrap()
                    .unwrap()
                    .status,
                SubmissionStatus::Failed
            );
            assert_eq!(s.next_due().await.unwrap(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_claims_take_each_target_once() {
        each_backend("claims", |s| async move {
            let s: std::sync::Arc<dyn Store> = s.into();
            for i in 0..20 {
                let sub = submission(
                    "u1",
                    &format!("c{i}"),
                    t0(),
                    t0(),
                    &[Platform::X, Platform::Threads, Platform::Bluesky],
                );
                s.create_submission(&sub).await.unwrap();
            }
            let mut tasks = Vec::new();
            for w in 0..6 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let got = s
                            .claim_targets(
                                &format!("w{w}-{}", mine.len()),
                                t0(),
                                t0() + Duration::minutes(1),
                                4,
                            )
                            .await
                            .unwrap();
                        if got.is_empty() {
                            break mine;
                        }
                        mine.extend(got.into_iter().map(|c| c.target.id));
                    }
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let unique: std::collections::HashSet<_> = all.iter().collect();
            assert_eq!(all.len(), 60);
            assert_eq!(unique.len(), 60, "no target claimed twice");
        })
        .await;
    }

    #[tokio::test]
    async fn targets_finishing_together_leave_the_submission_final() {
        each_backend("finish_race", |s| async move {
            let s: std::sync::Arc<dyn Store> = s.into();
            let platforms = [Platform::X, Platform::Threads, Platform::Bluesky];
            for i in 0..25 {
                let sub = submission("u1", &format!("f{i}"), t0(), t0(), &platforms);
                s.create_submission(&sub).await.unwrap();
            }
            let claimed = s
                .claim_targets("w1", t0(), t0() + Duration::minutes(1), 100)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 75);
            // Every target of every submission finishes at the same moment, each in its own task.
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(claimed.len()));
            let mut tasks = Vec::new();
            for c in claimed {
                let (s, barrier) = (s.clone(), barrier.clone());
                tasks.push(tokio::spawn(async move {
                    let outcome =
                        if c.target.platform == Platform::X && c.target.id.starts_with("f1") {
                            TargetOutcome::Failed(TargetError {
                                code: "rejected".into(),
                                message: "refused".into(),
                                platform_error: None,
                            })
                        } else {
                            TargetOutcome::Published {
                                post_id: format!("p-{}", c.target.id),
                                url: None,
                            }
                        };
                    barrier.wait().await;
                    assert!(
                        s.finish_target(&c.target.id, "w1", &outcome, t0())
                            .await
                            .unwrap()
                    );
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            for i in 0..25 {
                let id = format!("f{i}");
                let sub = s
                    .get_submission("u1", KeyMode::Test, &id)
                    .await
                    .unwrap()
                    .unwrap();
                let expected = if id.starts_with("f1") {
                    SubmissionStatus::PartiallyPublished
                } else {
                    SubmissionStatus::Published
                };
                assert_eq!(sub.status, expected, "submission {id}");
            }
        })
        .await;
    }

    #[tokio::test]
    async fn batched_writes_answer_each_item() {
        each_backend("batches", |s| async move {
            let subs: Vec<_> = (0..3)
                .map(|i| submission("u1", &format!("b{i}"), t0(), t0(), &[Platform::X]))
                .collect();
            s.create_submissions(&subs).await.unwrap();
            let claimed = s
                .claim_targets("w1", t0(), t0() + Duration::minutes(1), 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 3);
            let ids: Vec<String> = claimed.iter().map(|c| c.target.id.clone()).collect();
            let marks: Vec<InFlight> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| InFlight {
                    now: t0(),
                    lease_until: t0() + Duration::minutes(1),
                    target_id: id.clone(),
                    owner: if i == 1 {
                        "intruder".into()
                    } else {
                        "w1".into()
                    },
                })
                .collect();
            assert_eq!(
                s.mark_in_flight_batch(&marks).await.unwrap(),
                vec![true, false, true]
            );
            let done: Vec<FinishTarget> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| FinishTarget {
                    target_id: id.clone(),
                    owner: if i == 2 {
                        "intruder".into()
                    } else {
                        "w1".into()
                    },
                    outcome: TargetOutcome::Published {
                        post_id: format!("p{i}"),
                        url: None,
                    },
                    now: t0(),
                })
                .collect();
            assert_eq!(
                s.finish_targets(&done).await.unwrap(),
                vec![true, true, false]
            );
            let status = |id: String| {
                let s = &s;
                async move {
                    s.get_submission("u1", KeyMode::Test, &id)
                        .await
                        .unwrap()
                        .unwrap()
                        .status
                }
            };
            let owner_of_third = &claimed[2].target.submission_id;
            for c in &claimed {
                let expected = if &c.target.submission_id == owner_of_third {
                    SubmissionStatus::Publishing
                } else {
                    SubmissionStatus::Published
                };
                assert_eq!(status(c.target.submission_id.clone()).await, expected);
            }
            let post = |marker: &str| SandboxPost {
                id: format!("sim_{marker}"),
                user_id: "u1".into(),
                platform: Platform::X,
                marker: marker.into(),
                submission_id: "b0".into(),
                target_id: "x:test_x".into(),
                text: Some("hi".into()),
                media_json: "[]".into(),
                options_json: "{}".into(),
                received_at: t0(),
                create_count: 1,
            };
            let stored = s
                .sandbox_create_batch(&[post("m1"), post("m2"), post("m1")])
                .await
                .unwrap();
            let counts: Vec<i64> = stored.iter().map(|p| p.create_count).collect();
            assert_eq!(
                counts,
                vec![1, 1, 2],
                "the same marker twice in one batch counts twice"
            );
        })
        .await;
    }

    #[tokio::test]
    async fn idempotency_keys() {
        each_backend("idem", |s| async move {
            let acquire = |key: &'static str, hash: &'static str, now: chrono::DateTime<Utc>| {
                let s = &s;
                async move {
                    s.idempotency_acquire(
                        "u1",
                        KeyMode::Live,
                        key,
                        hash,
                        now,
                        now - Duration::minutes(1),
                        now - Duration::hours(24),
                    )
                    .await
                    .unwrap()
                }
            };
            assert!(matches!(
                acquire("k1", "h1", t0()).await,
                IdempotencyState::Acquired
            ));
            match acquire("k1", "h1", t0()).await {
                IdempotencyState::Existing {
                    request_hash,
                    response,
                } => {
                    assert_eq!(request_hash, "h1");
                    assert!(response.is_none(), "still in flight");
                }
                other => panic!("{other:?}"),
            }
            // Another mode or user is another scope.
            assert!(matches!(
                s.idempotency_acquire("u1", KeyMode::Test, "k1", "h1", t0(), t0(), t0())
                    .await
                    .unwrap(),
                IdempotencyState::Acquired
            ));
            // Completing it stores the response with the submission.
            let mut sub = submission("u1", "i1", t0(), t0(), &[Platform::X]);
            sub.mode = KeyMode::Live;
            sub.idempotency = Some(IdempotentResponse {
                key: "k1".into(),
                status: 200,
                body: b"{\"id\":1}".to_vec(),
            });
            s.create_submission(&sub).await.unwrap();
            match acquire("k1", "h2", t0()).await {
                IdempotencyState::Existing {
                    request_hash,
                    response,
                } => {
                    assert_eq!(request_hash, "h1");
                    assert_eq!(response, Some((200, b"{\"id\":1}".to_vec())));
                }
                other => panic!("{other:?}"),
            }
            // Released keys and abandoned ones can be taken again; expired ones too.
            assert!(matches!(
                acquire("k2", "h", t0()).await,
                IdempotencyState::Acquired
            ));
            s.idempotency_release("u1", KeyMode::Live, "k2")
                .await
                .unwrap();
            assert!(matches!(
                acquire("k2", "h", t0()).await,
                IdempotencyState::Acquired
            ));
            assert!(matches!(
                acquire("k2", "h", t0() + Duration::minutes(2)).await,
                IdempotencyState::Acquired
            ));
            assert!(matches!(
                acquire("k1", "h3", t0() + Duration::hours(25)).await,
                IdempotencyState::Acquired
            ));
            // Housekeeping removes what is older than the window: k1 of test mode, and k2.
            assert_eq!(
                s.idempotency_purge(t0() + Duration::hours(1))
                    .await
                    .unwrap(),
                2
            );
        })
        .await;
    }

    #[tokio::test]
    async fn sandbox_record() {
        each_backend("sandbox", |s| async move {
            let post = SandboxPost {
                id: "sim_1".into(),
                user_id: "u1".into(),
                platform: Platform::X,
                marker: "m1".into(),
                submission_id: "s1".into(),
                target_id: "x:test_x".into(),
                text: Some("hi".into()),
                media_json: "[]".into(),
                options_json: r#"{"visibility":"PUBLIC"}"#.into(),
                received_at: t0(),
                create_count: 1,
            };
            let first = s.sandbox_create(&post).await.unwrap();
            assert_eq!(first.create_count, 1);
            assert_eq!(first.options_json, r#"{"visibility":"PUBLIC"}"#);
            let mut again = post.clone();
            again.id = "sim_2".into();
            let second = s.sandbox_create(&again).await.unwrap();
            assert_eq!(
                (second.id.as_str(), second.create_count),
                ("sim_1", 2),
                "a second create of one marker is counted"
            );
            assert_eq!(
                s.sandbox_find("u1", Platform::X, "m1")
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
                "sim_1"
            );
            assert!(
                s.sandbox_find("u2", Platform::X, "m1")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(
                s.sandbox_find("u1", Platform::Threads, "m1")
                    .await
                    .unwrap()
                    .is_none()
            );
            assert_eq!(
                s.sandbox_list("u1", Platform::X, 10).await.unwrap().len(),
                1
            );
        })
        .await;
    }

    #[tokio::test]
    async fn sandbox_pages_follow_the_cursor() {
        each_backend("sandbox-pages", |s| async move {
            // Seven posts, three of them received in the same millisecond (ties by id).
            let at = [0, 1, 2, 2, 2, 3, 4];
            let posts: Vec<SandboxPost> = at
                .iter()
                .enumerate()
                .map(|(i, secs)| SandboxPost {
                    id: format!("sim_{i}"),
                    user_id: "u1".into(),
                    platform: Platform::X,
                    marker: format!("m{i}"),
                    submission_id: format!("s{i}"),
                    target_id: "x:test_x".into(),
                    text: None,
                    media_json: "[]".into(),
                    options_json: "{}".into(),
                    received_at: t0() + Duration::seconds(*secs),
                    create_count: 1,
                })
                .collect();
            s.sandbox_create_batch(&posts).await.unwrap();
            // Another user's and another platform's posts stay out.
            let mut other = posts[0].clone();
            (other.id, other.marker, other.user_id) = ("sim_o".into(), "mo".into(), "u2".into());
            let mut threads = posts[0].clone();
            (threads.id, threads.marker, threads.platform) =
                ("sim_t".into(), "mt".into(), Platform::Threads);
            s.sandbox_create_batch(&[other, threads]).await.unwrap();

            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let page = s
                    .sandbox_page("u1", Platform::X, before.clone(), 3)
                    .await
                    .unwrap();
                seen.extend(page.iter().map(|p| p.id.clone()));
                if page.len() < 3 {
                    break;
                }
                let last = page.last().unwrap();
                before = Some((last.received_at, last.id.clone()));
            }
            assert_eq!(
                seen,
                [
                    "sim_6", "sim_5", "sim_4", "sim_3", "sim_2", "sim_1", "sim_0"
                ],
                "newest first, ties by id, each once"
            );
            assert_eq!(
                s.sandbox_list("u1", Platform::X, 100).await.unwrap().len(),
                7
            );
        })
        .await;
    }
}

/// The refusals that leave a transaction early (revoking a revoked key, rotating a key that is
/// not active, a missing key) hand their connection back clean: none is closed as "returned
/// inside a transaction" (on SQLite that used to happen to most of them, with a warning each
/// and a new connection opened in its place).
#[tokio::test]
async fn refusals_inside_a_transaction_hand_back_a_clean_connection() {
    async fn story(s: &dyn Store) {
        s.create_user("u1", None, t0()).await.unwrap();
        let (k, _) = new_key("u1", KeyMode::Live, t0());
        s.insert_api_key(&k, &created(&k)).await.unwrap();
        s.revoke_api_key(None, &k.id, t0(), &revoked_event())
            .await
            .unwrap();
        let rotated = || {
            soku_core::audit::AuditDraft::new(
                soku_core::audit::AuditKind::KeyRotated,
                Default::default(),
                serde_json::json!({}),
            )
        };
        for _ in 0..20 {
            let again = s.revoke_api_key(None, &k.id, t0(), &revoked_event()).await;
            assert!(again.unwrap().unwrap().revoked_at.is_some());
            let (new, _) = new_key("u1", KeyMode::Live, t0());
            let r = s
                .rotate_api_key("u1", &k.id, &new, t0(), t0(), &rotated())
                .await;
            assert!(matches!(r.unwrap(), soku_core::model::Rotation::NotActive));
            let r = s
                .rotate_api_key("u1", "key_missing", &new, t0(), t0(), &rotated())
                .await;
            assert!(matches!(r.unwrap(), soku_core::model::Rotation::NotFound));
        }
        // Let the last connection come back to the pool.
        s.get_user("u1").await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let sqlite = SqliteStore::connect(&url).await.unwrap();
    story(&sqlite).await;
    assert_eq!(sqlite.connections_closed_in_transaction(), 0, "SQLite");
    if let Ok(pg) = std::env::var("SOKU_TEST_POSTGRES_URL")
        && !pg.is_empty()
    {
        let store = PgStore::connect_fresh_schema(&pg, "clean_connections")
            .await
            .unwrap();
        story(&store).await;
        assert_eq!(store.connections_closed_in_transaction(), 0, "PostgreSQL");
    }
}
