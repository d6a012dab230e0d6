//! The Facebook Page connector against the Graph API fake: connecting a login's Pages, feed,
//! link, photo and video posts, progress kept across attempts, failure classes, and
//! reconciliation.

mod support;

use chrono::Utc;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    Connector, Existing, FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{
    FacebookOptions, FacebookPostType, MediaType, PlatformOptions, PostContent,
};
use soku_fakes::Fault;
use soku_fakes::graph::{
    self as fake, GraphFake, PAGE_ID, PAGE2_ID, REDIRECT_URI, Revocation, Throttle, TokenKind,
};
use soku_platforms::PlatformSettings;
use soku_platforms::facebook::FacebookPages;
use soku_platforms::meta::PAGE_SCOPES;
use std::sync::Arc;
use std::time::Duration;
use support::Saves;

const IMG1: &str = "https://media.soku.test/a.jpg";
const IMG2: &str = "https://media.soku.test/b.png";
const IMG3: &str = "https://media.soku.test/c.jpg";
const VIDEO: &str = "https://media.soku.test/clip.mp4";

struct Setup {
    fake: GraphFake,
    connector: FacebookPages,
    /// The Page token of `PAGE_ID`.
    token: String,
}

fn settings(fake: &GraphFake) -> PlatformSettings {
    let mut settings = PlatformSettings::at(&fake.url);
    settings.timeout = Duration::from_secs(1);
    settings
}

async fn setup() -> Setup {
    let fake = GraphFake::start().await;
    let connector = FacebookPages::new(settings(&fake))
        .with_polling(Duration::from_millis(20), Duration::from_secs(3))
        .with_upload_url(&fake.url);
    let user = fake.grant_token(PAGE_SCOPES);
    let token = fake.page_token(&user, PAGE_ID);
    Setup {
        fake,
        connector,
        token,
    }
}

fn request(token: &str, text: Option<&str>, images: &[&str]) -> PublishRequest {
    PublishRequest {
        marker: "sk-marker-1".into(),
        user_id: "user-1".into(),
        submission_id: "sub-1".into(),
        target_id: "tgt-1".into(),
        platform: Platform::Facebook,
        account: AccountCredentials {
            account_id: PAGE_ID.into(),
            username: None,
            access_token: Some(token.into()),
            refresh_token: None,
            meta: json!({ "page_id": PAGE_ID }),
        },
        content: PostContent {
            text: text.map(str::to_owned),
            media_type: if images.is_empty() {
                MediaType::Text
            } else {
                MediaType::Image
            },
            image_urls: images.iter().map(|s| s.to_string()).collect(),
            video_url: None,
        },
        options: PlatformOptions::None,
        media: Vec::new(),
        progress: Default::default(),
        not_before: Utc::now() - chrono::Duration::seconds(5),
    }
}

fn video_request(
    token: &str,
    text: Option<&str>,
    saved: Value,
    sink: &Arc<Saves>,
) -> PublishRequest {
    let mut req = request(token, text, &[]);
    req.content.media_type = MediaType::Video;
    req.content.video_url = Some(VIDEO.into());
    req.progress = Progress::new(saved, sink.clone());
    req
}

fn with_progress(mut req: PublishRequest, saved: Value, sink: &Arc<Saves>) -> PublishRequest {
    req.progress = Progress::new(saved, sink.clone());
    req
}

fn exchange_of(code: &str) -> CodeExchange {
    CodeExchange {
        code: code.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: String::new(),
        pending: json!({}),
    }
}

fn query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn graph_error(code: i64, message: &str) -> Value {
    fake::graph_error(code, None, "OAuthException", message, false, None)
}

// ---------------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connecting_grants_every_page_the_user_may_post_to_with_its_page_token() {
    let s = setup().await;
    assert_eq!(s.connector.connect_method(), ConnectMethod::OAuth);
    assert!(s.connector.configured());

    let start = s
        .connector
        .authorize(&AuthorizationRequest {
            state: "st4te".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: "unused".into(),
            params: json!({}),
        })
        .await
        .unwrap();
    assert!(
        start
            .url
            .starts_with(&format!("{}/dialog/oauth?", s.fake.base())),
        "{}",
        start.url
    );
    assert_eq!(start.pending, json!({}));
    assert_eq!(
        query(&start.url, "scope").unwrap(),
        "pages_show_list,pages_read_engagement,pages_manage_posts"
    );
    assert_eq!(query(&start.url, "client_id").unwrap(), fake::CLIENT_ID);
    assert_eq!(query(&start.url, "state").unwrap(), "st4te");
    assert_eq!(query(&start.url, "redirect_uri").unwrap(), REDIRECT_URI);

    // The code as the callback may receive it, with Facebook's `#_=_` after it.
    let code = s.fake.mint_code(REDIRECT_URI, PAGE_SCOPES);
    let accounts = s
        .connector
        .exchange_all(&exchange_of(&format!("{code}#_=_")))
        .await
        .unwrap();
    let user = s
        .fake
        .tokens()
        .into_iter()
        .rev()
        .find(|t| t.kind == TokenKind::UserLong)
        .unwrap()
        .token;
    let ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, [PAGE_ID, PAGE2_ID]);
    for (account, page, name) in [
        (&accounts[0], PAGE_ID, fake::PAGE_NAME),
        (&accounts[1], PAGE2_ID, fake::PAGE2_NAME),
    ] {
        assert_eq!(account.tokens.access_token, s.fake.page_token(&user, page));
        assert_eq!(account.tokens.expires_at, None, "Page tokens do not expire");
        assert_eq!(account.tokens.refresh_token, None);
        assert_eq!(account.meta, json!({ "page_id": page }));
        assert_eq!(account.display_name.as_deref(), Some(name));
        assert!(!format!("{account:?}").contains(&account.tokens.access_token));
    }

    // A Page the user may not create content on is left out; `exchange` is the first Page.
    s.fake.set_page_tasks(PAGE2_ID, &["ANALYZE", "MODERATE"]);
    let code = s.fake.mint_code(REDIRECT_URI, PAGE_SCOPES);
    let accounts = s.connector.exchange_all(&exchange_of(&code)).await.unwrap();
    let ids: Vec<&str> = accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids, [PAGE_ID]);
    let code = s.fake.mint_code(REDIRECT_URI, PAGE_SCOPES);
    let one = s.connector.exchange(&exchange_of(&code)).await.unwrap();
    assert_eq!(one.account_id, PAGE_ID);

    // No Page left: an empty list (the server refuses it), and `exchange` is refused.
    s.fake.set_page_tasks(PAGE_ID, &["ANALYZE"]);
    let code = s.fake.mint_code(REDIRECT_URI, PAGE_SCOPES);
    assert!(
        s.connector
            .exchange_all(&exchange_of(&code))
            .await
            .unwrap()
            .is_empty()
    );
    let code = s.fake.mint_code(REDIRECT_URI, PAGE_SCOPES);
    assert_eq!(
        s.connector
            .exchange(&exchange_of(&code))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Rejected
    );
    // A used code is refused.
    assert_eq!(
        s.connector
            .exchange_all(&exchange_of(&code))
            .await
            .unwrap_err()
            .kind,
        ConnectErrorKind::Rejected
    );

    // Page tokens cannot be refreshed.
    let e = s
        .connector
        .refresh(&request(&s.token, None, &[]).account)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotRefreshable);
}

#[tokio::test]
async fn another_graph_version_is_used_for_login_and_publishing() {
    let fake = GraphFake::start_with_version("v26.0").await;
    let connector = FacebookPages::new(settings(&fake)).with_version("v26.0");
    let start = connector
        .authorize(&AuthorizationRequest {
            state: "s".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: String::new(),
            params: json!({}),
        })
        .await
        .unwrap();
    assert!(start.url.contains("/v26.0/dialog/oauth?"), "{}", start.url);
    let code = fake.mint_code(REDIRECT_URI, PAGE_SCOPES);
    let accounts = connector.exchange_all(&exchange_of(&code)).await.unwrap();
    let token = accounts[0].tokens.access_token.clone();
    let post = connector
        .publish(&request(&token, Some("On v26"), &[]))
        .await
        .unwrap();
    assert_eq!(fake.page_posts()[0].id, post.id);

    let unconfigured = FacebookPages::new(PlatformSettings {
        client_id: None,
        client_secret: None,
        ..settings(&fake)
    });
    assert!(!unconfigured.configured());
}

// ---------------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_text_post_is_a_feed_post() {
    let s = setup().await;
    let post = s
        .connector
        .publish(&request(&s.token, Some("Hello, Page!"), &[]))
        .await
        .unwrap();
    let posts = s.fake.page_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert!(post.id.starts_with(&format!("{PAGE_ID}_")), "{}", post.id);
    assert_eq!(posts[0].message.as_deref(), Some("Hello, Page!"));
    assert_eq!(posts[0].link, None);
    assert!(posts[0].published);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.facebook.com/{}", post.id).as_str())
    );
    assert_eq!(s.fake.photos_uploaded(), 0);
}

#[tokio::test]
async fn a_link_goes_with_the_feed_post() {
    let s = setup().await;
    let mut req = request(&s.token, Some("Read this"), &[]);
    req.options = PlatformOptions::Facebook(FacebookOptions {
        post_type: Some(FacebookPostType::Feed),
        link: Some("https://soku.test/blog/launch".into()),
    });
    let post = s.connector.publish(&req).await.unwrap();
    let posts = s.fake.page_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].message.as_deref(), Some("Read this"));
    assert_eq!(
        posts[0].link.as_deref(),
        Some("https://soku.test/blog/launch")
    );

    // A link alone is a post too.
    let mut bare = request(&s.token, None, &[]);
    bare.options = PlatformOptions::Facebook(FacebookOptions {
        post_type: None,
        link: Some("https://soku.test/other".into()),
    });
    s.connector.publish(&bare).await.unwrap();
    let posts = s.fake.page_posts();
    assert_eq!(posts[1].message, None);
    assert_eq!(posts[1].link.as_deref(), Some("https://soku.test/other"));
}

#[tokio::test]
async fn one_image_is_a_published_photo_with_its_caption() {
    let s = setup().await;
    let post = s
        .connector
        .publish(&request(&s.token, Some("A photo"), &[IMG1]))
        .await
        .unwrap();
    let photos = s.fake.photos();
    assert_eq!(photos.len(), 1);
    assert_eq!(photos[0].url, IMG1);
    assert!(photos[0].published);
    assert_eq!(photos[0].caption.as_deref(), Some("A photo"));
    assert_eq!(photos[0].post_id.as_deref(), Some(post.id.as_str()));
    let posts = s.fake.page_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.facebook.com/{}", post.id).as_str())
    );
}

#[tokio::test]
async fn a_link_on_a_photo_follows_the_caption() {
    let s = setup().await;
    let mut req = request(&s.token, Some("See the post"), &[IMG1]);
    req.options = PlatformOptions::Facebook(FacebookOptions {
        post_type: None,
        link: Some("https://soku.test/p".into()),
    });
    s.connector.publish(&req).await.unwrap();
    assert_eq!(
        s.fake.photos()[0].caption.as_deref(),
        Some("See the post\n\nhttps://soku.test/p")
    );
}

#[tokio::test]
async fn several_images_are_unpublished_photos_attached_to_one_feed_post() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let req = with_progress(
        request(&s.token, Some("Three photos"), &[IMG1, IMG2, IMG3]),
        Value::Null,
        &sink,
    );
    let post = s.connector.publish(&req).await.unwrap();

    let posts = s.fake.page_posts();
    assert_eq!(
        posts.len(),
        1,
        "one post, the photos are not posts of their own"
    );
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].message.as_deref(), Some("Three photos"));
    let photos = s.fake.photos();
    assert_eq!(photos.len(), 3);
    for ph in &photos {
        assert!(!ph.published, "uploaded unpublished");
        assert!(!ph.temporary);
        assert_eq!(ph.caption, None);
        assert_eq!(ph.attached_to.as_deref(), Some(post.id.as_str()));
    }
    // Attached in the post's order.
    let by_id = |id: &str| photos.iter().find(|p| p.id == id).unwrap().url.clone();
    let order: Vec<String> = posts[0].photo_ids.iter().map(|id| by_id(id)).collect();
    assert_eq!(order, [IMG1, IMG2, IMG3]);
    assert_eq!(s.fake.photos_uploaded(), 3);
    assert_eq!(s.fake.page_posts_created(), 1);
    // Each upload was saved as it was made, then the `sent` marker before the feed call.
    let saves = sink.all();
    assert_eq!(saves.len(), 4);
    assert_eq!(saves[0]["kind"], "photos");
    assert_eq!(saves[0]["photos"][0]["url"], IMG1);
    assert_eq!(saves[0]["photos"][1]["id"], Value::Null);
    assert_eq!(saves[2]["photos"][2]["id"], json!(posts[0].photo_ids[2]));
    assert_eq!(saves[2]["sent"], false);
    assert_eq!(saves[3]["photos"], saves[2]["photos"]);
    assert_eq!(saves[3]["sent"], true);
}

#[tokio::test]
async fn a_retry_attaches_the_photos_an_earlier_attempt_uploaded() {
    let s = setup().await;
    // The feed call is throttled: nothing was posted, the photos stay unpublished.
    s.fake.faults.reply(
        "POST",
        &format!("/{}/{PAGE_ID}/feed", fake::DEFAULT_VERSION),
        400,
        &[],
        graph_error(
            80001,
            "(#80001) There have been too many calls to this Page account.",
        ),
    );
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("Retried"), &[IMG1, IMG2]);
    let e = s
        .connector
        .publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(e.code, "rate_limited");
    assert!(matches!(e.class, FailureClass::Retryable { .. }));
    assert_eq!(s.fake.photos_uploaded(), 2);
    assert!(s.fake.page_posts().is_empty());

    // The next attempt starts from what was saved: no upload, one post with both photos.
    let sink2 = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&with_progress(req, sink.last(), &sink2))
        .await
        .unwrap();
    assert_eq!(s.fake.photos_uploaded(), 2, "the saved photos are reused");
    // The throttled call had no effect, so its marker was cleared; this attempt set it again.
    assert_eq!(sink.last()["sent"], false);
    let saves = sink2.all();
    assert_eq!(saves.len(), 1, "only the marker: {saves:?}");
    assert_eq!(saves[0]["sent"], true);
    assert_eq!(saves[0]["photos"], sink.last()["photos"]);
    let posts = s.fake.page_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    assert_eq!(posts[0].photo_ids.len(), 2);
}

#[tokio::test]
async fn saved_photos_facebook_refuses_are_uploaded_again() {
    let s = setup().await;
    // An earlier attempt saved photos Facebook no longer has (unpublished photos are kept about
    // a day), then the second one of this attempt is new.
    let saved = json!({ "kind": "photos", "photos": [
        { "url": IMG1, "id": "1000000000999991" },
        { "url": IMG2, "id": null },
    ]});
    let sink = Arc::new(Saves::default());
    let req = with_progress(
        request(&s.token, Some("Again"), &[IMG1, IMG2]),
        saved,
        &sink,
    );
    let post = s.connector.publish(&req).await.unwrap();
    assert_eq!(s.fake.photos_uploaded(), 2, "IMG2, then IMG1 again");
    let posts = s.fake.page_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].id, post.id);
    let last = sink.last();
    assert_eq!(last["photos"][0]["id"], json!(posts[0].photo_ids[0]));
    assert_ne!(last["photos"][0]["id"], "1000000000999991");
}

#[tokio::test]
async fn a_video_is_uploaded_by_url_and_published_once_processed() {
    let s = setup().await;
    s.fake.set_video_polls(2);
    let sink = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&video_request(
            &s.token,
            Some("Our clip"),
            Value::Null,
            &sink,
        ))
        .await
        .unwrap();
    let videos = s.fake.videos();
    assert_eq!(videos.len(), 1);
    let v = &videos[0];
    assert_eq!(post.id, v.id, "a video post's id is the video's");
    assert_eq!(v.file_url, VIDEO);
    assert_eq!(v.description.as_deref(), Some("Our clip"));
    assert!(v.published);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.facebook.com/{PAGE_ID}/videos/{}/", v.id).as_str())
    );
    assert_eq!(
        s.fake.video_status_reads(),
        3,
        "two reads processing, then ready"
    );
    assert_eq!(
        sink.all(),
        [
            json!({ "kind": "video_sent", "video_url": VIDEO }),
            json!({ "kind": "video", "video_url": VIDEO, "video_id": v.id })
        ],
        "the upload's marker before it, the video's id after"
    );
    assert_eq!(s.fake.videos_uploaded(), 1);
}

#[tokio::test]
async fn a_video_facebook_cannot_process_is_permanent_with_its_message() {
    let s = setup().await;
    s.fake
        .fail_next_video(1363030, "Resolution too low. Upload a larger video.");
    let sink = Arc::new(Saves::default());
    let e = s
        .connector
        .publish(&video_request(
            &s.token,
            Some("Low res"),
            Value::Null,
            &sink,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert_eq!(e.code, "media_processing_failed");
    assert!(e.message.contains("Resolution too low"), "{}", e.message);
    assert!(
        e.platform_error
            .as_deref()
            .unwrap()
            .contains("Resolution too low")
    );
    // The failed video is not a post; another attempt polls it and fails the same way.
    let sink2 = Arc::new(Saves::default());
    let again = video_request(&s.token, Some("Low res"), sink.last(), &sink2);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::NotFound
    );
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(e.code, "media_processing_failed");
    assert_eq!(s.fake.videos_uploaded(), 1);
}

/// A Page video Facebook is still processing when the engine's attempts would run out (a
/// 20-minute video processed for ten): uploaded with `published=true`, it is the post and
/// shows once processed. Published with its id and URL at the first attempt's deadline, never
/// retried into `failed`, never uploaded again.
#[tokio::test]
async fn a_video_still_processing_at_the_deadline_is_published_with_its_id_and_url() {
    let s = setup().await;
    s.fake.set_video_polls(100);
    let impatient = FacebookPages::new(settings(&s.fake))
        .with_polling(Duration::from_millis(10), Duration::ZERO);
    let sink = Arc::new(Saves::default());
    let req = video_request(&s.token, Some("Long clip"), Value::Null, &sink);
    let post = impatient.publish(&req).await.unwrap();
    let video_id = s.fake.videos()[0].id.clone();
    assert_eq!(post.id, video_id);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.facebook.com/{PAGE_ID}/videos/{video_id}/").as_str())
    );
    assert_eq!(sink.last()["video_id"], json!(video_id));

    // Reconciliation after a crash mid-wait says the same: Found, not "ask again later" until
    // the attempts run out.
    let sink2 = Arc::new(Saves::default());
    let again = video_request(&s.token, Some("Long clip"), sink.last(), &sink2);
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, video_id),
        other => panic!("expected Found, got {other:?}"),
    }
    // An attempt resuming the saved video (progress an earlier version left) publishes it too.
    let post = impatient.publish(&again).await.unwrap();
    assert_eq!(post.id, video_id);
    assert_eq!(s.fake.videos_uploaded(), 1, "never uploaded again");
    assert!(sink2.all().is_empty());
}

/// Once the upload was taken, a status read that fails (the Page token refused since, a 5xx,
/// a throttle) does not make the target fail: the video is live.
#[tokio::test]
async fn a_status_read_that_fails_after_the_upload_was_taken_is_still_published() {
    let s = setup().await;
    s.fake.set_video_polls(100);
    let video_reads = format!("/{}/1100", fake::DEFAULT_VERSION);
    let refused = graph_error(
        190,
        "Error validating access token: The session has been invalidated because the user changed their password.",
    );
    let transient = fake::graph_error(2, None, "OAuthException", "Please retry later.", true, None);
    for (status, body) in [(400, refused.clone()), (500, transient)] {
        s.fake.faults.reply("GET", &video_reads, status, &[], body);
        let sink = Arc::new(Saves::default());
        let req = video_request(&s.token, Some("Clip"), Value::Null, &sink);
        let post = s.connector.publish(&req).await.unwrap();
        assert_eq!(post.id, sink.last()["video_id"].as_str().unwrap());
    }
    assert_eq!(s.fake.videos_uploaded(), 2);

    // The token goes bad between attempts: the next attempt resuming the saved video does not
    // turn Facebook's 190 into `token_invalid` (which fails the target): the video is live.
    let video_id = s.fake.videos()[1].id.clone();
    let saved = json!({ "kind": "video", "video_url": VIDEO, "video_id": video_id });
    s.fake.revoke_token(&s.token, Revocation::AppRemoved);
    let sink = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&video_request(&s.token, Some("Clip"), saved, &sink))
        .await
        .unwrap();
    assert_eq!(post.id, video_id);
    assert_eq!(s.fake.videos_uploaded(), 2);
}

fn missing_object() -> Value {
    fake::graph_error(
        100,
        Some(33),
        "GraphMethodException",
        "Unsupported get request. Object with ID '1' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
        false,
        None,
    )
}

/// The next read of the video `id` answers `status`.
fn video_reads(fake: &GraphFake, id: &str, status: Value) {
    fake.faults.reply(
        "GET",
        &format!("/{}/{id}", fake::DEFAULT_VERSION),
        200,
        &[],
        json!({ "id": id, "status": status }),
    );
}

#[tokio::test]
async fn a_saved_video_facebook_cannot_read_back_is_ambiguous_and_never_uploaded_again() {
    let s = setup().await;
    // 100/33 also means read-after-write lag or a permission lost: the video may be live.
    let sink = Arc::new(Saves::default());
    let saved = json!({ "kind": "video", "video_url": VIDEO, "video_id": "1100000000999999" });
    let req = video_request(&s.token, Some("Clip"), saved, &sink);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "video_unconfirmed")
    );
    assert_eq!(s.fake.videos_uploaded(), 0, "not uploaded again");
    assert!(sink.all().is_empty());
    // Reconciliation does not find it in the Page's videos either, and does not say NotFound.
    let e = s.connector.find_existing(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });

    // Just uploaded, and unreadable at once: ambiguous, its id saved.
    s.fake.faults.reply(
        "GET",
        &format!("/{}/1100", fake::DEFAULT_VERSION),
        400,
        &[],
        missing_object(),
    );
    let sink = Arc::new(Saves::default());
    let req = video_request(&s.token, Some("Fresh clip"), Value::Null, &sink);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "video_unconfirmed")
    );
    assert_eq!(s.fake.videos_uploaded(), 1);
    assert_eq!(sink.last()["video_id"], json!(s.fake.videos()[0].id));
}

#[tokio::test]
async fn a_saved_video_whose_upload_expired_is_uploaded_again() {
    let s = setup().await;
    s.fake.set_video_polls(0);
    let sink = Arc::new(Saves::default());
    let req = video_request(&s.token, Some("Clip"), Value::Null, &sink);
    s.connector.publish(&req).await.unwrap();
    let first = s.fake.videos()[0].id.clone();
    video_reads(&s.fake, &first, json!({ "video_status": "expired" }));
    let sink2 = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&video_request(&s.token, Some("Clip"), sink.last(), &sink2))
        .await
        .unwrap();
    assert_eq!(s.fake.videos_uploaded(), 2);
    assert_ne!(post.id, first);
    assert_eq!(sink2.last()["video_id"], json!(post.id));
}

#[tokio::test]
async fn images_with_a_video_and_empty_posts_are_refused_before_any_call() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let mut mixed = video_request(&s.token, Some("x"), Value::Null, &sink);
    mixed.content.image_urls = vec![IMG1.into()];
    let e = s.connector.publish(&mixed).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "unsupported_media")
    );
    let eleven: Vec<&str> = std::iter::repeat_n(IMG1, 11).collect();
    let e = s
        .connector
        .publish(&request(&s.token, None, &eleven))
        .await
        .unwrap_err();
    assert_eq!(e.code, "too_many_images");
    let e = s
        .connector
        .publish(&request(&s.token, Some("  "), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, "empty_post");
    assert_eq!(s.fake.graph_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// Reels and stories
// ---------------------------------------------------------------------------------------------

fn typed(mut req: PublishRequest, post_type: FacebookPostType) -> PublishRequest {
    req.options = PlatformOptions::Facebook(FacebookOptions {
        post_type: Some(post_type),
        link: None,
    });
    req
}

fn reel_request(
    token: &str,
    text: Option<&str>,
    saved: Value,
    sink: &Arc<Saves>,
) -> PublishRequest {
    typed(
        video_request(token, text, saved, sink),
        FacebookPostType::Reel,
    )
}

fn video_story_request(token: &str, saved: Value, sink: &Arc<Saves>) -> PublishRequest {
    typed(
        video_request(token, Some("Not sent"), saved, sink),
        FacebookPostType::Story,
    )
}

fn photo_story_request(token: &str, saved: Value, sink: &Arc<Saves>) -> PublishRequest {
    typed(
        with_progress(request(token, Some("Not sent"), &[IMG1]), saved, sink),
        FacebookPostType::Story,
    )
}

fn video_record(duration_ms: u64) -> soku_core::media::MediaRecord {
    soku_core::media::MediaRecord {
        id: "med_clip".into(),
        user_id: "user-1".into(),
        mode: soku_core::keys::KeyMode::Live,
        facts: soku_core::media::MediaFacts {
            kind: soku_core::media::MediaKind::Video,
            mime: "video/mp4",
            size: 1_000_000,
            width: Some(1080),
            height: Some(1920),
            duration_ms: Some(duration_ms),
        },
        sha256: "0".repeat(64),
        storage_key: "med_clip".into(),
        file_name: "med_clip.mp4".into(),
        source_url: None,
        idempotency_key: None,
        request_hash: "0".repeat(64),
        created_at: Utc::now(),
    }
}

/// The upload URL the fake's start answers for a session.
fn upload_url(fake: &GraphFake, video_id: &str) -> String {
    format!(
        "{}/{}/{}/{video_id}",
        fake.url,
        fake::UPLOAD_PATH,
        fake::DEFAULT_VERSION
    )
}

/// A connector that gives up polling at once: its attempt starts and uploads a session, then
/// stops (retryable) with the session saved.
fn impatient(fake: &GraphFake) -> FacebookPages {
    FacebookPages::new(settings(fake))
        .with_polling(Duration::from_millis(10), Duration::ZERO)
        .with_upload_url(&fake.url)
}

#[tokio::test]
async fn a_reel_is_started_uploaded_by_url_polled_and_finished_with_its_text() {
    let s = setup().await;
    s.fake.set_video_polls(2);
    let sink = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&reel_request(
            &s.token,
            Some("Our reel"),
            Value::Null,
            &sink,
        ))
        .await
        .unwrap();
    let reels = s.fake.reels();
    assert_eq!(reels.len(), 1);
    let reel = &reels[0];
    assert_eq!(post.id, reel.id, "a reel's id is its video's");
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://www.facebook.com/reel/{}", reel.id).as_str())
    );
    assert_eq!(reel.file_url, VIDEO);
    assert_eq!(reel.finished.as_deref(), Some("PUBLISHED"));
    assert_eq!(reel.description.as_deref(), Some("Our reel"));
    assert!(reel.published);
    assert_eq!(
        (
            s.fake.reels_started(),
            s.fake.reels_uploaded(),
            s.fake.reels_published()
        ),
        (1, 1, 1)
    );
    assert_eq!(
        s.fake.video_status_reads(),
        3,
        "two reads processing, then ready"
    );
    let session = json!({
        "kind": "reel",
        "video_url": VIDEO,
        "video_id": reel.id,
        "upload_url": upload_url(&s.fake, &reel.id),
        "finish_sent": false,
    });
    let mut finishing = session.clone();
    finishing["finish_sent"] = json!(true);
    assert_eq!(
        sink.all(),
        [session, finishing],
        "the session is saved as soon as it is started, its finish marked before it is sent"
    );
    // Reconciliation with the saved session finds it published.
    let again = reel_request(&s.token, Some("Our reel"), sink.last(), &sink);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::Found(post)
    );
}

#[tokio::test]
async fn a_reel_still_processing_at_the_deadline_is_retryable_and_the_next_attempt_finishes_the_same_session()
 {
    let s = setup().await;
    s.fake.set_video_polls(4);
    let sink = Arc::new(Saves::default());
    let req = reel_request(&s.token, Some("Long reel"), Value::Null, &sink);
    let e = impatient(&s.fake).publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });
    assert_eq!(e.code, "media_processing");
    let video_id = s.fake.reels()[0].id.clone();
    assert_eq!(sink.last()["video_id"], json!(video_id));
    assert_eq!(s.fake.reels_published(), 0);
    // Not published yet: reconciliation says so.
    let sink2 = Arc::new(Saves::default());
    let again = reel_request(&s.token, Some("Long reel"), sink.last(), &sink2);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::NotFound
    );

    let post = s.connector.publish(&again).await.unwrap();
    assert_eq!(post.id, video_id);
    assert_eq!(
        (
            s.fake.reels_started(),
            s.fake.reels_uploaded(),
            s.fake.reels_published()
        ),
        (1, 1, 1),
        "the saved session is polled and finished, not started or uploaded again"
    );
    let saves = sink2.all();
    assert_eq!(saves.len(), 1, "only the finish marker: {saves:?}");
    assert_eq!(saves[0]["video_id"], json!(video_id));
    assert_eq!(saves[0]["finish_sent"], true);
}

#[tokio::test]
async fn a_saved_reel_session_never_uploaded_is_uploaded_and_one_facebook_no_longer_knows_is_started_again()
 {
    let s = setup().await;
    // An attempt that stopped after the start (its upload failed, say): the retry uploads.
    let first = impatient(&s.fake);
    s.fake.faults.reply(
        "POST",
        &format!("/{}/", fake::UPLOAD_PATH),
        503,
        &[],
        graph_error(2, "Service temporarily unavailable"),
    );
    let sink = Arc::new(Saves::default());
    let req = reel_request(&s.token, Some("Retried"), Value::Null, &sink);
    let e = first.publish(&req).await.unwrap_err();
    assert!(
        matches!(e.class, FailureClass::Retryable { .. }),
        "the upload is repeatable: {e:?}"
    );
    assert_eq!(s.fake.reels_uploaded(), 0);
    let sink2 = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&reel_request(
            &s.token,
            Some("Retried"),
            sink.last(),
            &sink2,
        ))
        .await
        .unwrap();
    assert_eq!(post.id, s.fake.reels()[0].id);
    assert_eq!((s.fake.reels_started(), s.fake.reels_uploaded()), (1, 1));

    // A saved session Facebook does not know: a new one.
    let sink3 = Arc::new(Saves::default());
    let saved = json!({ "kind": "reel", "video_url": VIDEO, "video_id": "1100000000999999" });
    let post = s
        .connector
        .publish(&reel_request(&s.token, Some("Another"), saved, &sink3))
        .await
        .unwrap();
    assert_eq!(s.fake.reels_started(), 2);
    assert_eq!(sink3.last()["video_id"], json!(post.id));
}

#[tokio::test]
async fn the_reels_quota_used_up_is_retryable_quota_exceeded_and_nothing_is_published() {
    let s = setup().await;
    s.fake.record_api_reels(PAGE_ID, 30);
    let sink = Arc::new(Saves::default());
    let req = reel_request(&s.token, Some("One too many"), Value::Null, &sink);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert_eq!(e.code, "quota_exceeded");
    assert!(e.message.contains("30 reels"), "{}", e.message);
    assert_eq!(s.fake.reels_published(), 0);
    let sink2 = Arc::new(Saves::default());
    let again = reel_request(&s.token, Some("One too many"), sink.last(), &sink2);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::NotFound
    );
    // Once the quota frees up, the retry finishes the session it saved.
    s.fake.set_reels_quota(31);
    let post = s.connector.publish(&again).await.unwrap();
    assert_eq!(post.id, s.fake.reels()[0].id);
    assert_eq!((s.fake.reels_started(), s.fake.reels_published()), (1, 1));
}

#[tokio::test]
async fn a_reel_facebook_cannot_process_is_permanent_with_its_message() {
    let s = setup().await;
    s.fake
        .fail_next_video(1363030, "Resolution too low. Upload a larger video.");
    let sink = Arc::new(Saves::default());
    let req = reel_request(&s.token, Some("Low res"), Value::Null, &sink);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert_eq!(e.code, "media_processing_failed");
    assert!(e.message.contains("Resolution too low"), "{}", e.message);
    assert_eq!(s.fake.reels_published(), 0);
    let again = reel_request(&s.token, Some("Low res"), sink.last(), &sink);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn a_reel_finish_whose_answer_is_lost_is_ambiguous_and_found_by_its_saved_session() {
    let s = setup().await;
    s.fake.set_video_polls(1);
    let sink = Arc::new(Saves::default());
    let req = reel_request(&s.token, Some("Lost answer"), Value::Null, &sink);
    // Without a saved session, nothing was finished.
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
    // The first attempt starts and uploads (the start and the finish share a path, so the
    // fault goes on the finish of the next attempt).
    impatient(&s.fake).publish(&req).await.unwrap_err();
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/video_reels", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink2 = Arc::new(Saves::default());
    let again = reel_request(&s.token, Some("Lost answer"), sink.last(), &sink2);
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "timeout")
    );
    assert_eq!(s.fake.reels_published(), 1);
    let video_id = s.fake.reels()[0].id.clone();
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => {
            assert_eq!(found.id, video_id);
            assert_eq!(
                found.url.as_deref(),
                Some(format!("https://www.facebook.com/reel/{video_id}").as_str())
            );
        }
        other => panic!("expected Found, got {other:?}"),
    }
    // Publishing again anyway does not finish it twice.
    let post = s.connector.publish(&again).await.unwrap();
    assert_eq!(post.id, video_id);
    assert_eq!(s.fake.reels_published(), 1);
}

#[tokio::test]
async fn a_photo_story_is_an_unpublished_photo_then_photo_stories_and_takes_no_text() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&photo_story_request(&s.token, Value::Null, &sink))
        .await
        .unwrap();
    let stories = s.fake.stories();
    assert_eq!(stories.len(), 1);
    let photo = &s.fake.photos()[0];
    assert!(!photo.published);
    assert_eq!(photo.caption, None, "the text is not sent");
    assert_eq!(stories[0].media_type, "photo");
    assert_eq!(stories[0].media_id, photo.id);
    assert_eq!(post.id, stories[0].post_id);
    assert_eq!(
        post.url.as_deref(),
        Some(format!("https://facebook.com/stories/{}", post.id).as_str())
    );
    assert_eq!(
        sink.all(),
        [
            json!({ "kind": "photo_story", "image_url": IMG1, "photo_id": photo.id, "sent": false }),
            json!({ "kind": "photo_story", "image_url": IMG1, "photo_id": photo.id, "sent": true }),
        ],
        "the photo is saved once uploaded, the marker before photo_stories"
    );
    assert_eq!(s.fake.page_posts_created(), 0);
}

#[tokio::test]
async fn a_video_story_is_a_session_finished_without_text() {
    let s = setup().await;
    s.fake.set_video_polls(1);
    let sink = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&video_story_request(&s.token, Value::Null, &sink))
        .await
        .unwrap();
    let stories = s.fake.stories();
    assert_eq!(stories.len(), 1);
    assert_eq!(stories[0].media_type, "video");
    assert_eq!(post.id, stories[0].post_id);
    let video_id = stories[0].media_id.clone();
    let session = json!({
        "kind": "video_story",
        "video_url": VIDEO,
        "video_id": video_id,
        "upload_url": upload_url(&s.fake, &video_id),
        "finish_sent": false,
    });
    let mut finishing = session.clone();
    finishing["finish_sent"] = json!(true);
    assert_eq!(sink.all(), [session, finishing]);
    let video = s
        .fake
        .videos()
        .into_iter()
        .find(|v| v.id == video_id)
        .unwrap();
    assert_eq!(video.file_url, VIDEO);
    assert_eq!(video.description, None, "the text is not sent");
    assert_eq!((s.fake.reels_started(), s.fake.stories_published()), (0, 1));
}

#[tokio::test]
async fn a_story_whose_answer_is_lost_is_found_by_its_media_id() {
    let s = setup().await;
    // Photo story.
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/photo_stories", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink = Arc::new(Saves::default());
    let req = photo_story_request(&s.token, Value::Null, &sink);
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::NotFound,
        "nothing saved: no story was asked for"
    );
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    let again = photo_story_request(&s.token, sink.last(), &sink);
    let photo_story = s.fake.stories()[0].post_id.clone();
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => {
            assert_eq!(found.id, photo_story);
            assert_eq!(
                found.url.as_deref(),
                Some(format!("https://facebook.com/stories/{photo_story}").as_str())
            );
        }
        other => panic!("expected Found, got {other:?}"),
    }

    // Video story: the first attempt starts and uploads, the second's finish answer is lost.
    s.fake.set_video_polls(1);
    let sink = Arc::new(Saves::default());
    let req = video_story_request(&s.token, Value::Null, &sink);
    impatient(&s.fake).publish(&req).await.unwrap_err();
    let again = video_story_request(&s.token, sink.last(), &sink);
    assert_eq!(
        s.connector.find_existing(&again).await.unwrap(),
        Existing::NotFound,
        "started, not finished"
    );
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/video_stories", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    let video_story = s.fake.stories()[1].clone();
    assert_eq!(video_story.media_type, "video");
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, video_story.post_id),
        other => panic!("expected Found, got {other:?}"),
    }
    assert_eq!(s.fake.stories_published(), 2);
}

#[tokio::test]
async fn reels_and_stories_of_the_wrong_media_or_length_are_refused_before_any_call() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let mut cases: Vec<(PublishRequest, &str)> = Vec::new();
    // A reel with images (with or without its video), a reel without a video.
    let mut with_images = reel_request(&s.token, Some("x"), Value::Null, &sink);
    with_images.content.image_urls = vec![IMG1.into()];
    cases.push((with_images, "unsupported_media"));
    cases.push((
        typed(
            request(&s.token, Some("x"), &[IMG1]),
            FacebookPostType::Reel,
        ),
        "unsupported_media",
    ));
    cases.push((
        typed(request(&s.token, Some("x"), &[]), FacebookPostType::Reel),
        "reel_needs_video",
    ));
    // A story of two images, of an image and a video, of nothing.
    cases.push((
        typed(
            request(&s.token, None, &[IMG1, IMG2]),
            FacebookPostType::Story,
        ),
        "story_needs_one_media",
    ));
    let mut both = video_story_request(&s.token, Value::Null, &sink);
    both.content.image_urls = vec![IMG1.into()];
    cases.push((both, "story_needs_one_media"));
    cases.push((
        typed(request(&s.token, Some("x"), &[]), FacebookPostType::Story),
        "story_needs_one_media",
    ));
    // Lengths the media records give: a reel under 3 s or over 90 s, a video story over 60 s.
    for ms in [2_999, 90_001] {
        let mut r = reel_request(&s.token, Some("x"), Value::Null, &sink);
        r.media = vec![video_record(ms)];
        cases.push((r, "video_duration"));
    }
    let mut long_story = video_story_request(&s.token, Value::Null, &sink);
    long_story.media = vec![video_record(60_001)];
    cases.push((long_story, "video_duration"));
    for (req, code) in &cases {
        let e = s.connector.publish(req).await.unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, *code),
            "{e:?}"
        );
        assert_eq!(
            s.connector.find_existing(req).await.unwrap(),
            Existing::NotFound
        );
    }
    let e = {
        let mut r = reel_request(&s.token, Some("x"), Value::Null, &sink);
        r.media = vec![video_record(95_000)];
        s.connector.publish(&r).await.unwrap_err()
    };
    assert!(e.message.contains("3 to 90 seconds"), "{}", e.message);
    assert_eq!(s.fake.graph_calls(), 0);
    assert_eq!(s.fake.reels_started(), 0);
    // Within the limits, they go ahead.
    let mut fine = reel_request(&s.token, Some("x"), Value::Null, &sink);
    fine.media = vec![video_record(90_000)];
    s.connector.publish(&fine).await.unwrap();
    let mut fine = video_story_request(&s.token, Value::Null, &sink);
    fine.media = vec![video_record(60_000)];
    s.connector.publish(&fine).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_or_revoked_page_token_is_token_invalid() {
    let s = setup().await;
    s.fake.expire_token(&s.token);
    let e = s
        .connector
        .publish(&request(&s.token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(!e.message.contains(&s.token));

    let s = setup().await;
    s.fake.revoke_token(&s.token, Revocation::PasswordChanged);
    let e = s
        .connector
        .publish(&request(&s.token, None, &[IMG1, IMG2]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(
        !format!("{e:?}").contains(&s.token),
        "no token in the error"
    );
}

#[tokio::test]
async fn a_page_the_user_no_longer_manages_is_a_clear_permanent_error() {
    let s = setup().await;
    s.fake.remove_page_role(PAGE_ID);
    let e = s
        .connector
        .publish(&request(&s.token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(e.message.contains("no longer has a role"), "{}", e.message);

    // A role without CREATE_CONTENT: Facebook answers code 200.
    let s = setup().await;
    s.fake.set_page_tasks(PAGE_ID, &["ANALYZE"]);
    let e = s
        .connector
        .publish(&request(&s.token, Some("x"), &[IMG1]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "permission_denied")
    );
    assert!(e.message.contains("reconnect the Page"), "{}", e.message);

    // A permission taken back in the app settings.
    let s = setup().await;
    s.fake.revoke_permission("pages_manage_posts");
    let e = s
        .connector
        .publish(&request(&s.token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "permission_denied")
    );
}

#[tokio::test]
async fn page_throttling_is_retryable_after_the_business_use_case_wait() {
    let s = setup().await;
    s.fake.rate_limit_next(1, Throttle::PageBuc);
    let e = s
        .connector
        .publish(&request(&s.token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, "rate_limited");
    // The fake's `estimated_time_to_regain_access` is 19 minutes.
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(19 * 60))
        }
    );
    assert!(s.fake.page_posts().is_empty());
}

#[tokio::test]
async fn a_duplicate_status_is_permanent() {
    let s = setup().await;
    s.connector
        .publish(&request(&s.token, Some("Same again"), &[]))
        .await
        .unwrap();
    let e = s
        .connector
        .publish(&request(&s.token, Some("Same again"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "duplicate_content")
    );
}

#[tokio::test]
async fn an_error_posting_link_is_permanent_with_facebooks_message() {
    let s = setup().await;
    s.fake.faults.reply(
        "POST",
        &format!("/{}/{PAGE_ID}/feed", fake::DEFAULT_VERSION),
        400,
        &[],
        graph_error(1609005, "Error Posting Link: the link could not be fetched"),
    );
    let mut req = request(&s.token, Some("x"), &[]);
    req.options = PlatformOptions::Facebook(FacebookOptions {
        post_type: None,
        link: Some("https://soku.test/broken".into()),
    });
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "link_rejected")
    );
    assert!(e.message.contains("could not be fetched"), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// Reconciliation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_transient_error_on_the_feed_call_is_ambiguous_and_nothing_is_found() {
    let s = setup().await;
    // Same text, but from before this target's attempts: not ours.
    s.fake
        .insert_page_post(PAGE_ID, "Launch day!", Duration::from_secs(3600));
    s.fake.transient_next(1);
    let req = request(&s.token, Some("Launch day!"), &[]);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn a_timeout_after_the_feed_call_is_ambiguous_and_reconciliation_finds_the_post() {
    let s = setup().await;
    s.fake
        .insert_page_post(PAGE_ID, "Launch day!", Duration::from_secs(3600));
    s.fake
        .insert_page_post(PAGE_ID, "Something else", Duration::from_secs(1));
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/feed", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let req = request(&s.token, Some("Launch day!"), &[]);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "timeout")
    );
    let mine = s.fake.page_posts().last().unwrap().clone();
    assert_eq!(mine.message.as_deref(), Some("Launch day!"));
    match s.connector.find_existing(&req).await.unwrap() {
        Existing::Found(found) => {
            assert_eq!(found.id, mine.id);
            assert_eq!(
                found.url.as_deref(),
                Some(format!("https://www.facebook.com/{}", mine.id).as_str())
            );
        }
        other => panic!("expected Found, got {other:?}"),
    }
    assert_eq!(
        s.fake.page_posts_created(),
        1,
        "reconciliation posts nothing"
    );
}

#[tokio::test]
async fn photos_without_text_cannot_be_told_apart() {
    let s = setup().await;
    let req = request(&s.token, None, &[IMG1, IMG2]);
    // Nothing in the window: not found.
    s.fake
        .insert_page_post(PAGE_ID, "An old post", Duration::from_secs(3600));
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::NotFound
    );
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/feed", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(
        s.connector.find_existing(&req).await.unwrap(),
        Existing::CannotTell
    );
}

#[tokio::test]
async fn a_single_photo_post_is_found_by_its_caption() {
    let s = setup().await;
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/photos", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let req = request(&s.token, Some("Captioned"), &[IMG1]);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    let post_id = s.fake.photos()[0].post_id.clone().unwrap();
    match s.connector.find_existing(&req).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, post_id),
        other => panic!("expected Found, got {other:?}"),
    }
}

#[tokio::test]
async fn a_video_is_found_by_its_saved_id_or_its_description() {
    let s = setup().await;
    // Processed at once (a saved video still processing is not Found yet).
    s.fake.set_video_polls(0);
    // The upload's answer is lost: nothing saved, the video is there.
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/videos", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink = Arc::new(Saves::default());
    let req = video_request(&s.token, Some("Clip of the day"), Value::Null, &sink);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(
        sink.all(),
        [json!({ "kind": "video_sent", "video_url": VIDEO })]
    );
    let video_id = s.fake.videos()[0].id.clone();
    match s.connector.find_existing(&req).await.unwrap() {
        Existing::Found(found) => {
            assert_eq!(found.id, video_id);
            assert_eq!(
                found.url.as_deref(),
                Some(format!("https://www.facebook.com/{PAGE_ID}/videos/{video_id}/").as_str())
            );
        }
        other => panic!("expected Found, got {other:?}"),
    }
    // Another text: not ours.
    let other = video_request(&s.token, Some("Another clip"), Value::Null, &sink);
    assert_eq!(
        s.connector.find_existing(&other).await.unwrap(),
        Existing::NotFound
    );
    // With the id saved, the video is read directly (whatever its description).
    let saved = json!({ "kind": "video", "video_url": VIDEO, "video_id": video_id });
    let by_id = video_request(&s.token, None, saved, &sink);
    match s.connector.find_existing(&by_id).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, video_id),
        other => panic!("expected Found, got {other:?}"),
    }
    assert_eq!(s.fake.videos_uploaded(), 1);
}

#[tokio::test]
async fn reconciliation_with_a_token_facebook_refuses_is_an_error() {
    let s = setup().await;
    s.fake.revoke_token(&s.token, Revocation::AppRemoved);
    let e = s
        .connector
        .find_existing(&request(&s.token, Some("x"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
}

// ---------------------------------------------------------------------------------------------
// Never twice: saves around creating calls, markers, restarts
// ---------------------------------------------------------------------------------------------

/// A progress store that fails the saves `fails` picks (the store unreachable) and keeps the
/// others.
struct FlakySaves {
    kept: Saves,
    fails: fn(&Value) -> bool,
}

#[async_trait::async_trait]
impl soku_core::connector::ProgressSink for FlakySaves {
    async fn save(&self, value: &Value) -> Result<(), soku_core::connector::PublishError> {
        if (self.fails)(value) {
            return Err(soku_core::connector::PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "store_unavailable",
                "the store is unreachable",
            ));
        }
        soku_core::connector::ProgressSink::save(&self.kept, value).await
    }
}

fn flaky(fails: fn(&Value) -> bool) -> Arc<FlakySaves> {
    Arc::new(FlakySaves {
        kept: Saves::default(),
        fails,
    })
}

#[tokio::test]
async fn a_failed_save_after_the_video_upload_is_logged_and_never_makes_a_retry_upload_again() {
    let s = setup().await;
    // The store takes the upload's marker, then is unreachable for the video's id.
    let sink = flaky(|v| v["kind"] == "video");
    let mut req = video_request(
        &s.token,
        Some("Unsaved"),
        Value::Null,
        &Arc::new(Saves::default()),
    );
    req.progress = Progress::new(Value::Null, sink.clone());
    // The video is the post: the failed save does not fail the attempt.
    let post = s.connector.publish(&req).await.unwrap();
    assert_eq!(post.id, s.fake.videos()[0].id);
    assert_eq!(s.fake.videos_uploaded(), 1);
    assert_eq!(sink.kept.last()["kind"], "video_sent");

    // A later attempt from that progress (the marker, no id) never uploads again: it is
    // ambiguous, and reconciliation finds the video by its description.
    let again = video_request(
        &s.token,
        Some("Unsaved"),
        sink.kept.last(),
        &Arc::new(Saves::default()),
    );
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "earlier_attempt_unconfirmed")
    );
    assert_eq!(s.fake.videos_uploaded(), 1);
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, post.id),
        other => panic!("expected Found, got {other:?}"),
    }

    // The marker cannot be saved: nothing is uploaded.
    let refusing = flaky(|_| true);
    let mut req = video_request(
        &s.token,
        Some("Unsaved 2"),
        Value::Null,
        &Arc::new(Saves::default()),
    );
    req.progress = Progress::new(Value::Null, refusing);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });
    assert_eq!(s.fake.videos_uploaded(), 1);
}

/// The upload `POST /{page}/videos` taken and its answer lost (a 500, or a timeout), the video
/// still being processed and not listed yet: its marker, saved before the call, keeps every
/// later attempt from uploading it again; reconciliation keeps looking (an error, asked again
/// later, never `NotFound`) until the listing shows it.
#[tokio::test]
async fn a_video_upload_whose_answer_is_lost_is_never_uploaded_again_while_not_listed() {
    let s = setup().await;
    s.fake.set_video_listing_lag(true);
    s.fake.set_video_polls(3);
    for (text, lose) in [(Some("Lost clip"), "500"), (None, "timeout")] {
        match lose {
            "500" => s.fake.lose_next_video_answer(),
            _ => s.fake.faults.push(
                "POST",
                &format!("/{}/{PAGE_ID}/videos", fake::DEFAULT_VERSION),
                Fault::DelayAfterEffect(Duration::from_secs(2)),
            ),
        }
        let before = s.fake.videos_uploaded();
        let sink = Arc::new(Saves::default());
        let req = video_request(&s.token, text, Value::Null, &sink);
        let e = s.connector.publish(&req).await.unwrap_err();
        assert_eq!(e.class, FailureClass::Ambiguous, "{lose}");
        assert_eq!(s.fake.videos_uploaded(), before + 1);
        let marker = json!({ "kind": "video_sent", "video_url": VIDEO });
        assert_eq!(sink.all(), std::slice::from_ref(&marker));

        // What the engine does next: reconcile with the marker. Not listed yet: asked again
        // later (the target ends `unknown` if it never shows), not NotFound.
        let sink2 = Arc::new(Saves::default());
        let again = video_request(&s.token, text, marker, &sink2);
        let e = s.connector.find_existing(&again).await.unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (
                FailureClass::Retryable { retry_after: None },
                "not_listed_yet"
            ),
            "{lose}"
        );
        // A publish from the marker never uploads again.
        let e = s.connector.publish(&again).await.unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Ambiguous, "earlier_attempt_unconfirmed")
        );
        assert_eq!(s.fake.videos_uploaded(), before + 1, "uploaded once");
        assert!(sink2.all().is_empty());
    }

    // Once listed, the video with the text is found.
    s.fake.set_video_listing_lag(false);
    let marker = json!({ "kind": "video_sent", "video_url": VIDEO });
    let sink = Arc::new(Saves::default());
    let again = video_request(&s.token, Some("Lost clip"), marker.clone(), &sink);
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, s.fake.videos()[0].id),
        other => panic!("expected Found, got {other:?}"),
    }
    // Without text, anything in the window could be it: Facebook cannot tell.
    let blind = video_request(&s.token, None, marker, &sink);
    assert_eq!(
        s.connector.find_existing(&blind).await.unwrap(),
        Existing::CannotTell
    );
}

/// Facebook refusing the upload (a 4xx: throttled, a token refused) took nothing: the marker is
/// cleared and the next attempt uploads.
#[tokio::test]
async fn a_refused_video_upload_clears_its_marker() {
    let s = setup().await;
    s.fake.rate_limit_next(1, Throttle::PageBuc);
    let sink = Arc::new(Saves::default());
    let req = video_request(&s.token, Some("Clip"), Value::Null, &sink);
    let e = s.connector.publish(&req).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(s.fake.videos_uploaded(), 0);
    assert_eq!(
        sink.all(),
        [
            json!({ "kind": "video_sent", "video_url": VIDEO }),
            Value::Null
        ]
    );
    let sink2 = Arc::new(Saves::default());
    let post = s
        .connector
        .publish(&video_request(&s.token, Some("Clip"), sink.last(), &sink2))
        .await
        .unwrap();
    assert_eq!(post.id, s.fake.videos()[0].id);
    assert_eq!(s.fake.videos_uploaded(), 1);
}

#[tokio::test]
async fn a_feed_call_with_saved_photos_is_never_sent_twice() {
    let s = setup().await;
    let feed = format!("/{}/{PAGE_ID}/feed", fake::DEFAULT_VERSION);
    // The marker cannot be saved: the feed call is not made.
    let sink = flaky(|v| v["sent"] == json!(true));
    let req = request(&s.token, Some("Two photos"), &[IMG1, IMG2]);
    let e = s
        .connector
        .publish(&PublishRequest {
            progress: Progress::new(Value::Null, sink.clone()),
            ..req.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, "store_unavailable");
    assert_eq!(s.fake.page_posts_created(), 0);

    // The feed call's answer is lost: the post exists, the marker was saved before the call.
    s.fake.faults.push(
        "POST",
        &feed,
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink = Arc::new(Saves::default());
    let e = s
        .connector
        .publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(sink.last()["sent"], true);
    assert_eq!(s.fake.page_posts_created(), 1);

    // A later attempt (after reconciliation said NotFound, or after a restart) does not send
    // the feed call again, nor upload the photos again: it is ambiguous.
    let again = with_progress(req, sink.last(), &sink);
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "earlier_attempt_unconfirmed")
    );
    assert_eq!(s.fake.page_posts_created(), 1, "never a second post");
    assert_eq!(s.fake.photos_uploaded(), 4, "two per attempt that uploaded");
    // Reconciliation finds the post by its text...
    let mine = s.fake.page_posts().last().unwrap().id.clone();
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, mine),
        other => panic!("expected Found, got {other:?}"),
    }
    // ...and while the listing does not show it yet, asks again later instead of NotFound.
    s.fake.faults.reply(
        "GET",
        &format!("/{}/{PAGE_ID}/published_posts", fake::DEFAULT_VERSION),
        200,
        &[],
        json!({ "data": [] }),
    );
    let e = s.connector.find_existing(&again).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });
    assert_eq!(s.fake.page_posts_created(), 1);
}

#[tokio::test]
async fn a_photo_story_whose_call_may_have_been_made_is_never_sent_twice() {
    let s = setup().await;
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/photo_stories", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink = Arc::new(Saves::default());
    let e = s
        .connector
        .publish(&photo_story_request(&s.token, Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(sink.last()["sent"], true);
    let again = photo_story_request(&s.token, sink.last(), &sink);
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "earlier_attempt_unconfirmed")
    );
    assert_eq!(s.fake.stories_published(), 1);
    assert_eq!(s.fake.photos_uploaded(), 1);
    // Not listed yet: asked again later, never NotFound.
    s.fake.faults.reply(
        "GET",
        &format!("/{}/{PAGE_ID}/stories", fake::DEFAULT_VERSION),
        200,
        &[],
        json!({ "data": [] }),
    );
    let e = s.connector.find_existing(&again).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });
    match s.connector.find_existing(&again).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, s.fake.stories()[0].post_id),
        other => panic!("expected Found, got {other:?}"),
    }
}

/// A session's status, uploaded and processed, not published.
fn finishable() -> Value {
    json!({
        "video_status": "ready",
        "uploading_phase": { "status": "complete" },
        "processing_phase": { "status": "complete" },
        "publishing_phase": { "status": "not_started", "publish_status": "not_published" },
    })
}

#[tokio::test]
async fn a_reel_whose_finish_may_have_been_sent_is_only_polled_and_reconciled_again_later() {
    let s = setup().await;
    s.fake.set_video_polls(1);
    let sink = Arc::new(Saves::default());
    let req = reel_request(&s.token, Some("Finish once"), Value::Null, &sink);
    impatient(&s.fake).publish(&req).await.unwrap_err();
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/video_reels", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink2 = Arc::new(Saves::default());
    let again = reel_request(&s.token, Some("Finish once"), sink.last(), &sink2);
    let e = s.connector.publish(&again).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(sink2.last()["finish_sent"], true);
    let video_id = s.fake.reels()[0].id.clone();
    let resumed = reel_request(&s.token, Some("Finish once"), sink2.last(), &sink2);

    // Facebook does not show it published yet: reconciliation asks again later.
    video_reads(&s.fake, &video_id, finishable());
    let e = s.connector.find_existing(&resumed).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Retryable { retry_after: None });

    // Publishing again polls and never finishes again (Facebook would refuse a second finish,
    // a permanent failure, while the reel is live).
    video_reads(&s.fake, &video_id, finishable());
    let post = s.connector.publish(&resumed).await.unwrap();
    assert_eq!(post.id, video_id);
    assert_eq!(s.fake.reels_published(), 1);
    // Never shown within the attempt: ambiguous, not a retry that could finish.
    for _ in 0..3 {
        video_reads(&s.fake, &video_id, finishable());
    }
    let e = impatient(&s.fake).publish(&resumed).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(s.fake.reels_published(), 1);
}

#[tokio::test]
async fn a_video_story_published_but_not_listed_yet_is_ambiguous_not_retried_until_failed() {
    let s = setup().await;
    s.fake.set_video_polls(1);
    let sink = Arc::new(Saves::default());
    let req = video_story_request(&s.token, Value::Null, &sink);
    impatient(&s.fake).publish(&req).await.unwrap_err();
    s.fake.faults.push(
        "POST",
        &format!("/{}/{PAGE_ID}/video_stories", fake::DEFAULT_VERSION),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink2 = Arc::new(Saves::default());
    let again = video_story_request(&s.token, sink.last(), &sink2);
    assert_eq!(
        s.connector.publish(&again).await.unwrap_err().class,
        FailureClass::Ambiguous
    );
    let resumed = video_story_request(&s.token, sink2.last(), &sink2);
    let stories = format!("/{}/{PAGE_ID}/stories", fake::DEFAULT_VERSION);
    for _ in 0..2 {
        s.fake
            .faults
            .reply("GET", &stories, 200, &[], json!({ "data": [] }));
    }
    let e = s.connector.publish(&resumed).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "story_not_listed")
    );
    // Reconciliation reads the session first: published, not listed, so it asks again later.
    let e = s.connector.find_existing(&resumed).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable { retry_after: None },
            "story_not_listed"
        )
    );
    match s.connector.find_existing(&resumed).await.unwrap() {
        Existing::Found(found) => assert_eq!(found.id, s.fake.stories()[0].post_id),
        other => panic!("expected Found, got {other:?}"),
    }
    assert_eq!(s.fake.stories_published(), 1);
}

#[tokio::test]
async fn progress_saved_for_other_media_is_never_taken_for_this_post() {
    let s = setup().await;
    s.fake.set_video_polls(0);
    // A reel of the same URL, published.
    let sink = Arc::new(Saves::default());
    s.connector
        .publish(&reel_request(&s.token, Some("Reel"), Value::Null, &sink))
        .await
        .unwrap();
    assert_eq!(sink.last()["kind"], "reel");
    let video = video_request(&s.token, Some("Reel"), sink.last(), &sink);
    assert_eq!(
        s.connector.find_existing(&video).await.unwrap(),
        Existing::CannotTell
    );
    let e = s.connector.publish(&video).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "progress_mismatch")
    );
    assert_eq!(s.fake.videos_uploaded(), 0);
    // A video saved for another URL: something may have been published.
    let saved = json!({ "kind": "video", "video_url": "https://media.soku.test/other.mp4",
                        "video_id": s.fake.reels()[0].id });
    let video = video_request(&s.token, Some("Not this"), saved, &sink);
    assert_eq!(
        s.connector.find_existing(&video).await.unwrap(),
        Existing::CannotTell
    );
}

#[tokio::test]
async fn the_reels_quota_refused_at_the_start_is_retryable_quota_exceeded() {
    let s = setup().await;
    s.fake.faults.reply(
        "POST",
        &format!("/{}/{PAGE_ID}/video_reels", fake::DEFAULT_VERSION),
        400,
        &[],
        graph_error(
            9,
            "(#9) Reels API is limited to 30 API-published posts within a 24-hour moving period.",
        ),
    );
    let sink = Arc::new(Saves::default());
    let e = s
        .connector
        .publish(&reel_request(&s.token, Some("Quota"), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable {
                retry_after: Some(Duration::from_secs(3600))
            },
            "quota_exceeded"
        )
    );
    assert_eq!(s.fake.reels_started(), 0);
    assert!(sink.all().is_empty());
}

#[tokio::test]
async fn the_start_s_upload_url_is_used_when_it_is_on_the_configured_upload_host() {
    let s = setup().await;
    s.fake.set_video_polls(0);
    // The configured host with a base path where nothing answers: only the start's
    // `upload_url` (same host) reaches the upload endpoint.
    let connector = FacebookPages::new(settings(&s.fake))
        .with_polling(Duration::from_millis(20), Duration::from_secs(3))
        .with_upload_url(&format!("{}/elsewhere", s.fake.url));
    let sink = Arc::new(Saves::default());
    let post = connector
        .publish(&reel_request(&s.token, Some("By URL"), Value::Null, &sink))
        .await
        .unwrap();
    assert_eq!(post.id, s.fake.reels()[0].id);
    assert_eq!(s.fake.reels_uploaded(), 1);

    // A start answering an upload URL on another host: the Page token is not sent there; the
    // configured host is used.
    let other = GraphFake::start().await;
    let connector = FacebookPages::new(settings(&s.fake))
        .with_polling(Duration::from_millis(20), Duration::from_secs(3))
        .with_upload_url(&other.url);
    let sink = Arc::new(Saves::default());
    connector
        .publish(&reel_request(
            &s.token,
            Some("Elsewhere"),
            Value::Null,
            &sink,
        ))
        .await
        .unwrap_err();
    assert_eq!(s.fake.reels_started(), 2);
    assert_eq!(
        s.fake.reels_uploaded(),
        1,
        "nothing sent to the host the start named"
    );
    assert!(sink.last().get("upload_url").is_none());
}
