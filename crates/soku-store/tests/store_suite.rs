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
    };
    (key, g.secret)
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
            s.insert_api_key(k).await.unwrap();
        }
        // The same hash twice is refused.
        let mut dup = k3.clone();
        dup.id = "key_dup".into();
        assert!(matches!(
            s.insert_api_key(&dup).await,
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
        assert_eq!(listed[1].status(), "active");

        // lastUsedAt: written, then not again within a minute.
        s.touch_api_key(&k1.id, t0() + Duration::seconds(5))
            .await
            .unwrap();
        s.touch_api_key(&k1.id, t0() + Duration::seconds(30))
            .await
            .unwrap();
        let used = s.get_api_key(&k1.id).await.unwrap().unwrap();
        assert_eq!(used.last_used_at, Some(t0() + Duration::seconds(5)));
        s.touch_api_key(&k1.id, t0() + Duration::seconds(70))
            .await
            .unwrap();
        let used = s.get_api_key(&k1.id).await.unwrap().unwrap();
        assert_eq!(used.last_used_at, Some(t0() + Duration::seconds(70)));

        // Another user cannot revoke it; its owner can; revoking again keeps the first time.
        assert!(
            s.revoke_api_key(Some("u2"), &k1.id, t0())
                .await
                .unwrap()
                .is_none()
        );
        let revoked = s
            .revoke_api_key(Some("u1"), &k1.id, t0() + Duration::minutes(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(revoked.revoked_at, Some(t0() + Duration::minutes(2)));
        assert_eq!(revoked.status(), "revoked");
        let again = s
            .revoke_api_key(None, &k1.id, t0() + Duration::minutes(3))
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
            s.revoke_api_key(None, "key_missing", t0())
                .await
                .unwrap()
                .is_none()
        );

        // Expired keys do not authenticate.
        let (mut k4, secret4) = new_key("u2", KeyMode::Live, t0());
        k4.expires_at = Some(t0() + Duration::hours(1));
        s.insert_api_key(&k4).await.unwrap();
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
        s.insert_api_key(&k1).await.unwrap();
        s.insert_api_key(&k2).await.unwrap();
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
                rate_limit: None
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
