//! Saving refreshed tokens through a database failure (SQLite only: a trigger refuses the
//! accounts' token writes while it exists). X rotates refresh tokens: once it has answered a
//! refresh, the old refresh token is spent, so the new one must not be lost.

use crate::oauth::{connect_x, x_app};
use crate::posts::{submit, text_post, wait_for_status};
use crate::util::TestApp;
use serde_json::json;
use soku_core::queue::AccountStatus;
use soku_engine::account_tokens::Refresh;
use soku_fakes::x::XFake;
use std::time::Duration;

/// Token writes fail while the trigger exists, as if the database had gone away for them.
const BLIP: &str = "CREATE TRIGGER token_blip BEFORE UPDATE OF access_token ON accounts \
                    BEGIN SELECT RAISE(ABORT, 'connection reset'); END";
const BLIP_OVER: &str = "DROP TRIGGER token_blip";

async fn pool(app: &TestApp) -> Option<sqlx::SqlitePool> {
    let path = app.sqlite_path()?;
    Some(
        sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap(),
    )
}

/// The account's stored access and refresh tokens, opened.
async fn stored(app: &TestApp, id: &str) -> (AccountStatus, String, String) {
    let (account, s) = app.store.account_secrets(id).await.unwrap().unwrap();
    let open = |b: Option<Vec<u8>>| b.and_then(|b| app.state.secrets.open(&b)).unwrap();
    (account.status, open(s.access_token), open(s.refresh_token))
}

#[tokio::test]
async fn a_short_database_blip_does_not_lose_a_rotated_refresh_token() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let Some(db) = pool(&app).await else {
        return;
    };
    let (_, key) = app.subscriber().await;
    let id = connect_x(&app, &key).await;
    let (_, _, old_refresh) = stored(&app, &id).await;

    sqlx::query(BLIP).execute(&db).await.unwrap();
    let over = {
        let db = db.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            sqlx::query(BLIP_OVER).execute(&db).await.unwrap();
        })
    };
    let refreshed = tokio::time::timeout(
        Duration::from_secs(20),
        app.state.account_tokens.refresh(&id, false),
    )
    .await
    .unwrap();
    over.await.unwrap();
    assert_eq!(
        refreshed,
        Refresh::Refreshed,
        "written again after the blip"
    );
    let (status, _, refresh) = stored(&app, &id).await;
    assert_eq!(status, AccountStatus::Active);
    assert_ne!(refresh, old_refresh);
    assert!(
        !fake.refresh_token_works(&old_refresh),
        "X spent the old one"
    );
    assert!(
        fake.refresh_token_works(&refresh),
        "the stored one is X's new one"
    );
}

#[tokio::test]
async fn refreshed_tokens_the_database_refuses_are_kept_and_saved_later() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let Some(db) = pool(&app).await else {
        return;
    };
    let (_, key) = app.subscriber().await;
    let id = connect_x(&app, &key).await;
    let (_, old_access, old_refresh) = stored(&app, &id).await;

    // The database refuses token writes for longer than a refresh retries them.
    fake.expire_access_tokens();
    sqlx::query(BLIP).execute(&db).await.unwrap();
    let refreshed = tokio::time::timeout(
        Duration::from_secs(20),
        app.state.account_tokens.refresh(&id, false),
    )
    .await
    .unwrap();
    assert!(
        matches!(refreshed, Refresh::Unavailable(_)),
        "{refreshed:?}"
    );
    let (_, access, refresh) = stored(&app, &id).await;
    assert_eq!(
        (&access, &refresh),
        (&old_access, &old_refresh),
        "not saved"
    );
    assert!(
        !fake.refresh_token_works(&old_refresh),
        "X spent the old one"
    );

    // The lease stays with this process: no other one refreshes with the spent token.
    let now = chrono::Utc::now();
    assert!(
        !app.store
            .lease_account_refresh(&id, "another", now, now + chrono::Duration::minutes(1))
            .await
            .unwrap()
    );

    // Meanwhile this process posts with the new access token (the stored one has expired at
    // X), without refreshing again.
    let issued = fake.tokens_issued();
    let sub = submit(&app, &key, &text_post("While unsaved", json!(["x"]))).await;
    let done = wait_for_status(&app, &key, &sub, &["published", "failed"]).await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(fake.tokens_issued(), issued);

    // The database takes writes again: the next refresh writes the kept tokens first, and the
    // account stays usable (refreshing with the spent token would have needed a reconnection).
    sqlx::query(BLIP_OVER).execute(&db).await.unwrap();
    assert_eq!(app.state.account_tokens.refresh_due().await, 0);
    let (status, _, refresh) = stored(&app, &id).await;
    assert_eq!(status, AccountStatus::Active);
    assert!(
        fake.refresh_token_works(&refresh),
        "the new refresh token was saved"
    );
    assert_eq!(fake.tokens_issued(), issued, "saved, not refreshed again");
    assert_eq!(
        app.state.account_tokens.refresh(&id, false).await,
        Refresh::Refreshed
    );
    let (status, _, newer) = stored(&app, &id).await;
    assert_eq!(status, AccountStatus::Active);
    assert!(fake.refresh_token_works(&newer));
}

/// A refresh answer that no longer grants posting makes the account need reconnecting, and its
/// rotated tokens are stored all the same (the old refresh token is spent).
#[tokio::test]
async fn a_refused_refresh_answer_still_stores_the_rotated_tokens() {
    let fake = XFake::start().await;
    let app = x_app(&fake).await;
    let (_, key) = app.subscriber().await;
    let id = connect_x(&app, &key).await;
    let (_, _, old_refresh) = stored(&app, &id).await;
    fake.alter_next_token_answer("scope", json!("tweet.read users.read offline.access"));
    let refreshed = app.state.account_tokens.refresh(&id, false).await;
    assert!(
        matches!(&refreshed, Refresh::NeedsReconnect(why) if why.contains("tweet.write")),
        "{refreshed:?}"
    );
    let (status, _, refresh) = stored(&app, &id).await;
    assert_eq!(status, AccountStatus::NeedsReconnect);
    assert!(!fake.refresh_token_works(&old_refresh));
    assert!(
        fake.refresh_token_works(&refresh),
        "the rotated one is stored"
    );
}
