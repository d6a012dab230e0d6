//! Facebook Login (`soku_platforms::meta`) against the Graph API fake: the dialog URL, the code
//! traded for a long-lived user token, the Pages with their Page tokens and linked Instagram
//! accounts, and refusals classified as the connect flow needs them.

use soku_core::connector::{AuthorizationRequest, ConnectErrorKind};
use soku_fakes::graph::{self, GraphFake};
use soku_platforms::PlatformSettings;
use soku_platforms::meta::{FacebookLogin, INSTAGRAM_SCOPES, PAGE_SCOPES};

fn login(fake: &GraphFake) -> FacebookLogin {
    FacebookLogin::new(PlatformSettings {
        client_id: Some(graph::CLIENT_ID.into()),
        client_secret: Some(graph::CLIENT_SECRET.into()),
        ..PlatformSettings::at(&fake.url)
    })
}

fn query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn the_dialog_url_names_the_app_the_callback_and_the_permissions() {
    let fake = GraphFake::start().await;
    let request = AuthorizationRequest {
        state: "st4te".into(),
        redirect_uri: graph::REDIRECT_URI.into(),
        code_challenge: String::new(),
        params: serde_json::Value::Null,
    };
    let url = login(&fake)
        .authorize_url(&request, INSTAGRAM_SCOPES)
        .unwrap();
    assert!(
        url.starts_with(&format!("{}/dialog/oauth?", fake.base())),
        "{url}"
    );
    assert_eq!(query(&url, "client_id").as_deref(), Some(graph::CLIENT_ID));
    assert_eq!(
        query(&url, "redirect_uri").as_deref(),
        Some(graph::REDIRECT_URI)
    );
    assert_eq!(query(&url, "state").as_deref(), Some("st4te"));
    assert_eq!(
        query(&url, "scope").unwrap(),
        "pages_show_list,pages_read_engagement,instagram_basic,instagram_content_publish"
    );
    // The fake's dialog approves and sends the browser back with a code and the state.
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(graph::REDIRECT_URI), "{location}");
    assert_eq!(query(&location, "state").as_deref(), Some("st4te"));
    assert!(query(&location, "code").is_some());
    // Without the app's credentials there is no dialog.
    let unconfigured = FacebookLogin::new(PlatformSettings {
        client_id: None,
        client_secret: None,
        ..PlatformSettings::at(&fake.url)
    });
    assert!(!unconfigured.configured());
    assert_eq!(
        unconfigured
            .authorize_url(&request, PAGE_SCOPES)
            .unwrap_err()
            .kind,
        ConnectErrorKind::NotConfigured
    );
}

#[tokio::test]
async fn a_login_grants_every_page_and_every_linked_instagram_account() {
    let fake = GraphFake::start().await;
    let (third_page, third_ig) = fake.add_page("Third", Some("third.ig"));
    let code = fake.mint_code(graph::REDIRECT_URI, INSTAGRAM_SCOPES);
    let grant = login(&fake)
        .exchange(&code, graph::REDIRECT_URI, true)
        .await
        .unwrap();
    // A long-lived user token (60 days).
    let expires = grant
        .user_token
        .expires_at
        .expect("a long-lived token expires");
    assert!(
        expires - chrono::Utc::now() > chrono::Duration::days(50),
        "{expires}"
    );
    assert_eq!(fake.exchange_calls(), 1, "one fb_exchange_token call");

    let pages = grant.page_accounts();
    let ids: Vec<&str> = pages.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, [graph::PAGE_ID, graph::PAGE2_ID, third_page.as_str()]);
    assert_eq!(pages[0].display_name.as_deref(), Some(graph::PAGE_NAME));
    // Each Page's own token, which does not expire.
    for (account, page) in pages
        .iter()
        .zip([graph::PAGE_ID, graph::PAGE2_ID, &third_page])
    {
        assert_eq!(
            account.tokens.access_token,
            fake.page_token(&grant.user_token.access_token, page)
        );
        assert_eq!(account.tokens.expires_at, None);
        assert_eq!(account.meta["page_id"], page);
    }

    let instagram = grant.instagram_accounts();
    let ig: Vec<(&str, Option<&str>)> = instagram
        .iter()
        .map(|a| (a.account_id.as_str(), a.username.as_deref()))
        .collect();
    assert_eq!(
        ig,
        [
            (graph::IG_USER_ID, Some(graph::IG_USERNAME)),
            (third_ig.as_deref().unwrap(), Some("third.ig")),
        ]
    );
    // An Instagram account publishes with the token of the Page it is linked to.
    assert_eq!(
        instagram[0].tokens.access_token,
        pages[0].tokens.access_token
    );
    assert_eq!(instagram[0].meta["page_id"], graph::PAGE_ID);
}

#[tokio::test]
async fn refusals_are_rejections_and_outages_are_worth_retrying() {
    let fake = GraphFake::start().await;
    let login = login(&fake);
    // A code used twice, or for another callback: the platform refuses.
    let code = fake.mint_code(graph::REDIRECT_URI, PAGE_SCOPES);
    login
        .exchange(&code, graph::REDIRECT_URI, false)
        .await
        .unwrap();
    let again = login
        .exchange(&code, graph::REDIRECT_URI, false)
        .await
        .unwrap_err();
    assert_eq!(again.kind, ConnectErrorKind::Rejected, "{again:?}");
    assert!(
        again.message.starts_with("Facebook refused"),
        "{}",
        again.message
    );
    let other = fake.mint_code(graph::REDIRECT_URI, PAGE_SCOPES);
    let wrong = login
        .exchange(&other, "https://elsewhere.example/callback", false)
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ConnectErrorKind::Rejected);
    // A transient Graph error: try again later.
    fake.transient_next(1);
    let code = fake.mint_code(graph::REDIRECT_URI, PAGE_SCOPES);
    let busy = login
        .exchange(&code, graph::REDIRECT_URI, false)
        .await
        .unwrap_err();
    assert_eq!(busy.kind, ConnectErrorKind::Unavailable, "{busy:?}");
    // No secret in what the connect flow shows or stores.
    for e in [&again, &wrong, &busy] {
        let shown = format!("{} {:?}", e.message, e.platform_error);
        assert!(!shown.contains(graph::CLIENT_SECRET), "{shown}");
    }
}

/// A Page the user may not create content on is not offered as an account.
#[tokio::test]
async fn pages_without_the_create_content_task_are_left_out() {
    let fake = GraphFake::start().await;
    fake.set_page_tasks(graph::PAGE2_ID, &["ANALYZE"]);
    let code = fake.mint_code(graph::REDIRECT_URI, PAGE_SCOPES);
    let grant = login(&fake)
        .exchange(&code, graph::REDIRECT_URI, false)
        .await
        .unwrap();
    assert_eq!(grant.pages.len(), 2);
    let ids: Vec<String> = grant
        .page_accounts()
        .into_iter()
        .map(|a| a.account_id)
        .collect();
    assert_eq!(ids, [graph::PAGE_ID]);
    assert!(grant.instagram_accounts().is_empty(), "not asked for");
}
