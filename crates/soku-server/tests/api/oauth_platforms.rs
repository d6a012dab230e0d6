//! Connecting Threads, LinkedIn and Mastodon accounts end to end, against their fakes on
//! loopback, as `oauth.rs` does for X and Bluesky: `POST /v1/accounts/connect`, the platform's
//! authorization page (the fake's user approves), our callback, the account listed; then text
//! and single-image posts published through the engine, and a 429 that the engine retries.
//!
//! Images are served by a tiny HTTP server in the test and fetched by the connectors through
//! `SafeFetcher` (loopback allowed), as in production. Threads fetches images itself: the fake
//! only records the `image_url` it was given, and our server must not fetch it at all.

use crate::posts::{submit, text_post, wait_for_status};
use crate::util::*;
use serde_json::{Value, json};
use soku_core::connector::Connector;
use soku_core::platform::Platform;
use soku_fakes::linkedin::LinkedInFake;
use soku_fakes::mastodon::MastodonFake;
use soku_fakes::threads::ThreadsFake;
use soku_platforms::PlatformSettings;
use soku_platforms::fetch::SafeFetcher;
use soku_platforms::net::NetPolicy;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const CLIENT_DONE: &str = "https://client.example/connected";

/// A real 1×1 RGBA PNG (signature, IHDR, IDAT, IEND, CRCs correct).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn loopback() -> NetPolicy {
    NetPolicy {
        allow_loopback: true,
    }
}

pub(crate) fn media() -> Arc<dyn soku_platforms::media::MediaSource> {
    Arc::new(SafeFetcher::new(loopback(), Duration::from_secs(5)))
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Serves `PNG` at `/image.png` on loopback and counts the requests it gets.
struct ImageServer {
    url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ImageServer {
    async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let router = axum::Router::new().route(
            "/image.png",
            axum::routing::get(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    ([(axum::http::header::CONTENT_TYPE, "image/png")], PNG)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/image.png", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        Self { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn image_post(text: &str, url: &str, platform: &str) -> Value {
    json!({"post": {"content": {
        "text": text,
        "mediaType": "image",
        "imageUrls": [url],
        "platform": [platform],
    }}})
}

/// Connects the fake's user to `key`'s user through the whole OAuth round trip; the callback's
/// `(id, accountId)`.
pub(crate) async fn connect(
    app: &TestApp,
    key: &str,
    platform: &str,
    extra: Value,
) -> (String, String) {
    let mut body = json!({"platform": platform, "redirectUri": CLIENT_DONE});
    if let Value::Object(more) = extra {
        body.as_object_mut().unwrap().extend(more);
    }
    let r = app.post_json("/v1/accounts/connect", key, &body).await;
    assert_eq!(r.status(), 200, "{platform} connect");
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["platform"], platform);
    let url = started["authorizationUrl"].as_str().unwrap().to_owned();
    let callback = app.url(&format!("/v1/oauth/{platform}/callback"));
    assert_eq!(query(&url, "redirect_uri").unwrap(), callback, "{url}");
    let state = query(&url, "state").unwrap();
    assert!(state.len() >= 40, "a long random state");

    // The platform's page: its user approves and the browser is sent to our callback.
    let page = no_redirects().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 302, "the {platform} fake's user approves");
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&callback), "{location}");
    assert_eq!(query(&location, "state").as_deref(), Some(state.as_str()));
    assert!(query(&location, "code").is_some(), "{location}");

    let done = no_redirects().get(&location).send().await.unwrap();
    assert_eq!(done.status(), 303);
    let back = done.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(CLIENT_DONE), "{back}");
    assert_eq!(
        query(&back, "status").as_deref(),
        Some("connected"),
        "{back}"
    );
    assert_eq!(query(&back, "platform").as_deref(), Some(platform));

    // The state works once.
    let again = no_redirects().get(&location).send().await.unwrap();
    let body = expect_error(again, 400, "validation_error", None).await;
    assert_eq!(body["error"]["details"]["reason"], "state_used");

    (
        query(&back, "id").unwrap(),
        query(&back, "accountId").unwrap(),
    )
}

/// The user's one listed account, `id`, with its stored access token (sealed at rest, never
/// listed).
async fn listed_account(app: &TestApp, key: &str, id: &str) -> (Value, String) {
    let listed: Value = app
        .get_with_key("/v1/accounts", key)
        .await
        .json()
        .await
        .unwrap();
    let accounts = listed["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{listed}");
    assert_eq!(accounts[0]["id"], id, "{listed}");
    let (_, sealed) = app.store.account_secrets(id).await.unwrap().unwrap();
    let sealed = sealed.access_token.unwrap();
    let access = app.state.secrets.open(&sealed).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&access));
    assert!(!listed.to_string().contains(&access), "no tokens listed");
    (accounts[0].clone(), access)
}

/// Publishes `body` and waits for the end: the submission.
pub(crate) async fn publish(app: &TestApp, key: &str, body: &Value) -> Value {
    let sub = submit(app, key, body).await;
    wait_for_status(
        app,
        key,
        &sub,
        &["published", "failed", "partially_published"],
    )
    .await
}

pub(crate) fn published_target(done: &Value) -> &Value {
    assert_eq!(done["status"], "published", "{done}");
    let targets = done["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{done}");
    assert_eq!(targets[0]["status"], "published", "{done}");
    &targets[0]
}

/// Disconnecting removes the account.
async fn disconnect(app: &TestApp, key: &str, id: &str) {
    let r = app
        .http
        .delete(app.url(&format!("/v1/accounts/{id}")))
        .header("soku-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let listed: Value = app
        .get_with_key("/v1/accounts", key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["accounts"], json!([]), "{listed}");
}

// ---- Threads ---------------------------------------------------------------------------------

async fn threads_app(fake: &ThreadsFake) -> TestApp {
    let connector: Arc<dyn Connector> = Arc::new(
        soku_platforms::threads::ThreadsConnector::new(
            PlatformSettings {
                timeout: Duration::from_secs(2),
                ..PlatformSettings::at(&fake.url)
            },
            media(),
        )
        .with_polling(Duration::from_millis(50), Duration::from_secs(10)),
    );
    let app = Builder::default()
        .connector(Platform::Threads, connector)
        .start()
        .await;
    fake.register_redirect_uri(&app.url("/v1/oauth/threads/callback"));
    app
}

#[tokio::test]
async fn threads_oauth_round_trip_then_text_and_image_posts() {
    use soku_fakes::threads::{NAME, TokenKind, USER_ID, USERNAME};
    let fake = ThreadsFake::start().await;
    let images = ImageServer::start().await;
    let app = threads_app(&fake).await;
    let (_, key) = app.subscriber().await;

    let (id, account_id) = connect(&app, &key, "threads", json!({})).await;
    assert_eq!(account_id, USER_ID);
    let (account, stored) = listed_account(&app, &key, &id).await;
    assert_eq!(account["platform"], "threads");
    assert_eq!(account["accountId"], USER_ID);
    assert_eq!(account["username"], USERNAME);
    assert_eq!(account["displayName"], NAME);
    assert_eq!(account["status"], "active");
    assert!(account["tokenExpiresAt"].is_string(), "{account}");
    // The short-lived token was traded for a long-lived one, which is what is stored.
    let tokens = fake.tokens();
    assert_eq!(
        tokens.iter().map(|t| t.kind).collect::<Vec<_>>(),
        vec![TokenKind::Short, TokenKind::Long]
    );
    assert_eq!(stored, tokens[1].token);

    let done = publish(
        &app,
        &key,
        &text_post("Hello Threads from Soku", json!(["threads"])),
    )
    .await;
    let target = published_target(&done).clone();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].media_type, "TEXT_POST");
    assert_eq!(posts[0].text.as_deref(), Some("Hello Threads from Soku"));
    assert_eq!(target["platformPostId"], posts[0].id.as_str());
    assert_eq!(target["platformPostUrl"], posts[0].permalink.as_str());

    let done = publish(
        &app,
        &key,
        &image_post("A picture for Threads", &images.url, "threads"),
    )
    .await;
    let target = published_target(&done).clone();
    let posts = fake.posts();
    assert_eq!(posts.len(), 2, "exactly the posts made");
    assert_eq!(posts[1].media_type, "IMAGE");
    assert_eq!(posts[1].text.as_deref(), Some("A picture for Threads"));
    // Threads is handed the server's hosted copy (spec 8.1), imported once.
    assert_eq!(posts[1].image_urls.len(), 1);
    assert!(
        posts[1].image_urls[0].starts_with(&app.url("/media/med_")),
        "{:?}",
        posts[1].image_urls
    );
    assert_eq!(target["platformPostId"], posts[1].id.as_str());
    assert_eq!(images.hits(), 1, "the server imported the image once");
    assert_eq!(fake.publish_calls(), 2);

    // A video from the server's media: Threads is handed its hosted URL and fetches it.
    let video = soku_fakes::media_files::mp4(720, 1280, 15_000, 20_000);
    let hosted: Value = app
        .http
        .post(app.url("/v1/media/uploads"))
        .header("soku-api-key", &key)
        .header("content-type", "video/mp4")
        .body(video.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = hosted["url"].as_str().unwrap();
    fake.serve_video(url, video);
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A clip for Threads", "mediaType": "video",
            "videoUrl": url, "platform": ["threads"]}}}),
    )
    .await;
    let target = published_target(&done).clone();
    assert_eq!(fake.video_containers(), 1, "one container");
    let posts = fake.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[2].media_type, "VIDEO");
    assert_eq!(target["platformPostId"], posts[2].id.as_str());
    assert_eq!(fake.publish_calls(), 3);

    disconnect(&app, &key, &id).await;
}

#[tokio::test]
async fn threads_429_is_retried_and_published_once() {
    use soku_fakes::threads::{USER_ID, graph_error};
    let fake = ThreadsFake::start().await;
    let app = threads_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "threads", json!({})).await;

    fake.faults.reply(
        "POST",
        &format!("/v1.0/{USER_ID}/threads_publish"),
        429,
        &[("retry-after", "1")],
        graph_error(
            4,
            None,
            "OAuthException",
            "Application request limit reached",
        ),
    );
    let done = publish(
        &app,
        &key,
        &text_post("Threads after a rate limit", json!(["threads"])),
    )
    .await;
    let target = published_target(&done);
    assert_eq!(target["attempts"], 2, "{done}");
    assert_eq!(fake.faults.pending(), 0, "the 429 was served");
    let posts = fake.posts();
    assert_eq!(posts.len(), 1, "published once");
    assert_eq!(posts[0].text.as_deref(), Some("Threads after a rate limit"));
    assert_eq!(target["platformPostId"], posts[0].id.as_str());
}

// ---- LinkedIn --------------------------------------------------------------------------------

async fn linkedin_app(fake: &LinkedInFake) -> TestApp {
    let connector: Arc<dyn Connector> = Arc::new(soku_platforms::linkedin::LinkedIn::new(
        PlatformSettings {
            auth_url: fake.auth_url(),
            timeout: Duration::from_secs(2),
            ..PlatformSettings::at(&fake.url)
        },
        media(),
    ));
    let app = Builder::default()
        .connector(Platform::Linkedin, connector)
        .start()
        .await;
    fake.register_redirect_uri(&app.url("/v1/oauth/linkedin/callback"));
    app
}

#[tokio::test]
async fn linkedin_oauth_round_trip_then_text_and_image_posts() {
    use soku_fakes::linkedin::{MEMBER_NAME, MEMBER_SUB};
    let fake = LinkedInFake::start().await;
    let images = ImageServer::start().await;
    let app = linkedin_app(&fake).await;
    let (_, key) = app.subscriber().await;

    // The fake refuses a callback the app did not register (another server's).
    let stranger = Builder::default()
        .connector(
            Platform::Linkedin,
            Arc::new(soku_platforms::linkedin::LinkedIn::new(
                PlatformSettings {
                    auth_url: fake.auth_url(),
                    ..PlatformSettings::at(&fake.url)
                },
                media(),
            )),
        )
        .start()
        .await;
    let (_, stranger_key) = stranger.subscriber().await;
    let r = stranger
        .post_json(
            "/v1/accounts/connect",
            &stranger_key,
            &json!({"platform": "linkedin"}),
        )
        .await;
    let started: Value = r.json().await.unwrap();
    let page = no_redirects()
        .get(started["authorizationUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400, "an unregistered redirect_uri");

    let (id, account_id) = connect(&app, &key, "linkedin", json!({})).await;
    assert_eq!(account_id, MEMBER_SUB);
    let (account, stored) = listed_account(&app, &key, &id).await;
    assert_eq!(account["platform"], "linkedin");
    assert_eq!(account["accountId"], MEMBER_SUB);
    // LinkedIn gives members no public handle through this API: the name only.
    assert_eq!(account["username"], Value::Null);
    assert_eq!(account["displayName"], MEMBER_NAME);
    assert_eq!(account["status"], "active");
    assert!(account["tokenExpiresAt"].is_string(), "{account}");
    assert!(fake.access_token_valid(&stored));

    // Reserved characters of LinkedIn's little text format are escaped; the hashtag stays one.
    let done = publish(
        &app,
        &key,
        &text_post("Hello LinkedIn (from Soku) #soku", json!(["linkedin"])),
    )
    .await;
    let target = published_target(&done).clone();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].author, fake.author_urn());
    assert_eq!(posts[0].commentary, "Hello LinkedIn \\(from Soku\\) #soku");
    assert!(posts[0].images.is_empty());
    assert_eq!(target["platformPostId"], posts[0].urn.as_str());
    assert_eq!(
        target["platformPostUrl"],
        format!("https://www.linkedin.com/feed/update/{}/", posts[0].urn)
    );

    let done = publish(
        &app,
        &key,
        &image_post("A picture for LinkedIn", &images.url, "linkedin"),
    )
    .await;
    let target = published_target(&done).clone();
    assert_eq!(images.hits(), 1, "the server fetched the image once");
    let uploaded = fake.images();
    assert_eq!(uploaded.len(), 1);
    assert_eq!(uploaded[0].owner, fake.author_urn());
    assert_eq!(uploaded[0].bytes.as_deref(), Some(PNG), "the image's bytes");
    let posts = fake.posts();
    assert_eq!(posts.len(), 2, "exactly the posts made");
    assert_eq!(posts[1].commentary, "A picture for LinkedIn");
    assert_eq!(posts[1].images, vec![uploaded[0].urn.clone()]);
    assert_eq!(target["platformPostId"], posts[1].urn.as_str());

    disconnect(&app, &key, &id).await;
}

#[tokio::test]
async fn linkedin_429_is_retried_and_published_once() {
    let fake = LinkedInFake::start().await;
    let app = linkedin_app(&fake).await;
    let (_, key) = app.subscriber().await;
    connect(&app, &key, "linkedin", json!({})).await;

    fake.push_rate_limit("POST", "/rest/posts", Some(1));
    let done = publish(
        &app,
        &key,
        &text_post("LinkedIn after a rate limit", json!(["linkedin"])),
    )
    .await;
    let target = published_target(&done);
    assert_eq!(target["attempts"], 2, "{done}");
    assert_eq!(fake.faults.pending(), 0, "the 429 was served");
    let posts = fake.posts();
    assert_eq!(posts.len(), 1, "published once");
    assert_eq!(posts[0].commentary, "LinkedIn after a rate limit");
    assert_eq!(target["platformPostId"], posts[0].urn.as_str());
}

// ---- Mastodon --------------------------------------------------------------------------------

async fn mastodon_app() -> TestApp {
    // The instance is named in each connect request; `api_url` (the default instance) is unused.
    let connector: Arc<dyn Connector> = Arc::new(soku_platforms::mastodon::Mastodon::new(
        PlatformSettings {
            timeout: Duration::from_secs(2),
            ..PlatformSettings::at("https://mastodon.invalid")
        },
        media(),
        loopback(),
    ));
    Builder::default()
        .connector(Platform::Mastodon, connector)
        .start()
        .await
}

#[tokio::test]
async fn mastodon_oauth_round_trip_then_text_and_image_posts() {
    let fake = MastodonFake::start().await;
    let images = ImageServer::start().await;
    let app = mastodon_app().await;
    let (_, key) = app.subscriber().await;

    let (id, account_id) = connect(
        &app,
        &key,
        "mastodon",
        json!({"instance": fake.url.as_str()}),
    )
    .await;
    let alice = fake.account_id("alice").unwrap();
    assert_eq!(account_id, format!("{alice}@{}", fake.host()));
    // The app was registered on the instance for our callback.
    let apps = fake.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(
        apps[0].redirect_uris,
        vec![app.url("/v1/oauth/mastodon/callback")]
    );
    let (account, stored) = listed_account(&app, &key, &id).await;
    assert!(
        fake.tokens_issued()
            .iter()
            .any(|t| t.token == stored && !t.revoked)
    );
    assert_eq!(account["platform"], "mastodon");
    assert_eq!(account["accountId"], account_id.as_str());
    assert_eq!(account["username"], "alice");
    assert_eq!(account["displayName"], "Alice");
    assert_eq!(account["status"], "active");
    assert_eq!(
        account["tokenExpiresAt"],
        Value::Null,
        "Mastodon tokens do not expire"
    );

    let done = publish(
        &app,
        &key,
        &text_post("Hello Mastodon from Soku", json!(["mastodon"])),
    )
    .await;
    let target = published_target(&done).clone();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].account_id, alice);
    assert_eq!(posts[0].text, "Hello Mastodon from Soku");
    assert!(posts[0].media_ids.is_empty());
    assert!(posts[0].idempotency_key.is_some(), "sent with a key");
    assert_eq!(posts[0].application.as_deref(), Some("Soku server"));
    assert_eq!(target["platformPostId"], posts[0].id.as_str());

    // The first upload is processed in the background (202, then polled).
    let done = publish(
        &app,
        &key,
        &image_post("A picture for Mastodon", &images.url, "mastodon"),
    )
    .await;
    let target = published_target(&done).clone();
    assert_eq!(images.hits(), 1, "the server fetched the image once");
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].bytes, PNG, "the image's bytes");
    assert_eq!(uploads[0].content_type, "image/png");
    assert!(uploads[0].processed);
    assert!(fake.poll_calls() >= 1, "a 202 upload is polled");
    let posts = fake.posts();
    assert_eq!(posts.len(), 2, "exactly the posts made");
    assert_eq!(posts[1].text, "A picture for Mastodon");
    assert_eq!(posts[1].media_ids, vec![uploads[0].id.clone()]);
    assert_eq!(uploads[0].status_id.as_deref(), Some(posts[1].id.as_str()));
    assert_eq!(target["platformPostId"], posts[1].id.as_str());

    // A video uploaded to the server's media, then posted: Mastodon gets its bytes, processed.
    let video = soku_fakes::media_files::mp4(640, 360, 8_000, 50_000);
    let hosted: Value = app
        .http
        .post(app.url("/v1/media/uploads"))
        .header("soku-api-key", &key)
        .header("content-type", "video/mp4")
        .body(video.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let done = publish(
        &app,
        &key,
        &json!({"post": {"content": {"text": "A clip for Mastodon", "mediaType": "video",
            "videoUrl": hosted["url"], "platform": ["mastodon"]}}}),
    )
    .await;
    let target = published_target(&done).clone();
    assert_eq!(fake.video_uploads(), 1, "uploaded once");
    let uploads = fake.uploads();
    let clip = uploads.iter().find(|u| u.is_video()).unwrap();
    assert_eq!(clip.bytes, video, "the video's bytes");
    assert!(clip.processed);
    let posts = fake.posts();
    assert_eq!(posts[2].media_ids, vec![clip.id.clone()]);
    assert_eq!(target["platformPostId"], posts[2].id.as_str());

    disconnect(&app, &key, &id).await;
}

#[tokio::test]
async fn mastodon_429_is_retried_and_published_once() {
    let fake = MastodonFake::start().await;
    let app = mastodon_app().await;
    let (_, key) = app.subscriber().await;
    connect(
        &app,
        &key,
        "mastodon",
        json!({"instance": fake.url.as_str()}),
    )
    .await;

    fake.rate_limit_next("POST", "/api/v1/statuses", Duration::from_secs(1));
    let done = publish(
        &app,
        &key,
        &text_post("Mastodon after a rate limit", json!(["mastodon"])),
    )
    .await;
    let target = published_target(&done);
    assert_eq!(target["attempts"], 2, "{done}");
    assert_eq!(fake.faults.pending(), 0, "the 429 was served");
    let posts = fake.posts();
    assert_eq!(posts.len(), 1, "published once");
    assert_eq!(posts[0].text, "Mastodon after a rate limit");
    assert_eq!(target["platformPostId"], posts[0].id.as_str());
}
