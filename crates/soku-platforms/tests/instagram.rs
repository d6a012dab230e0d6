//! The Instagram connector against the Graph API fake: connecting through Facebook Login,
//! publishing images, carousels, reels and stories through containers, the quota, container
//! waits resumed from saved progress, failures, and reconciliation.

mod support;

use chrono::Utc;
use serde_json::{Value, json};
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, ConnectMethod,
    Connector, Existing, FailureClass, Progress, ProgressSink, PublishError, PublishRequest,
    TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{
    InstagramOptions, InstagramPostType, MediaType, PlatformOptions, PostContent,
};
use soku_fakes::Fault;
use soku_fakes::graph::{
    self as fake, ContainerKind, GraphFake, IG_USER_ID, PAGE_ID, REDIRECT_URI, Revocation, Throttle,
};
use soku_platforms::PlatformSettings;
use soku_platforms::instagram::{Instagram, QUOTA_RETRY_AFTER};
use soku_platforms::meta::INSTAGRAM_SCOPES;
use std::sync::Arc;
use std::time::Duration;
use support::Saves;

const IMG1: &str = "https://soku.example/media/med_1/one.jpg";
const IMG2: &str = "https://soku.example/media/med_2/two.jpg";
const IMG3: &str = "https://soku.example/media/med_3/three.jpg";
const VIDEO: &str = "https://soku.example/media/med_v/clip.mp4";
const COVER: &str = "https://soku.example/media/med_c/cover.jpg";

struct Setup {
    fake: GraphFake,
    ig: Instagram,
    /// The Page token the Instagram account publishes with.
    token: String,
}

fn settings(fake: &GraphFake) -> PlatformSettings {
    let mut settings = PlatformSettings::at(&fake.url);
    settings.timeout = Duration::from_secs(1);
    settings
}

fn connector(fake: &GraphFake, deadline: Duration) -> Instagram {
    Instagram::new(settings(fake)).with_polling(Duration::from_millis(10), deadline)
}

async fn setup() -> Setup {
    let fake = GraphFake::start().await;
    let ig = connector(&fake, Duration::from_secs(3));
    let user = fake.grant_token(fake::PUBLISHING_PERMISSIONS);
    let token = fake.page_token(&user, PAGE_ID);
    Setup { fake, ig, token }
}

fn request(
    token: &str,
    text: Option<&str>,
    images: &[&str],
    video: Option<&str>,
    options: Option<InstagramOptions>,
) -> PublishRequest {
    PublishRequest {
        marker: "sk-marker-1".into(),
        user_id: "user-1".into(),
        submission_id: "sub-1".into(),
        target_id: "tgt-1".into(),
        platform: Platform::Instagram,
        account: AccountCredentials {
            account_id: IG_USER_ID.into(),
            username: Some(fake::IG_USERNAME.into()),
            access_token: Some(token.into()),
            refresh_token: None,
            meta: json!({ "ig_user_id": IG_USER_ID, "page_id": PAGE_ID }),
        },
        content: PostContent {
            text: text.map(str::to_owned),
            media_type: if video.is_some() && images.is_empty() {
                MediaType::Video
            } else {
                MediaType::Image
            },
            image_urls: images.iter().map(|s| s.to_string()).collect(),
            video_url: video.map(str::to_owned),
        },
        options: options.map_or(PlatformOptions::None, PlatformOptions::Instagram),
        media: Vec::new(),
        progress: Default::default(),
        not_before: Utc::now() - chrono::Duration::seconds(5),
    }
}

/// `req` starting from `saved`, recording what it saves in `sink`.
fn with_progress(mut req: PublishRequest, saved: Value, sink: &Arc<Saves>) -> PublishRequest {
    req.progress = Progress::new(saved, sink.clone());
    req
}

/// The last progress saved before `media_publish` answered (with `publish_sent`, without the
/// post's id): what a later attempt starts from when the answer was lost.
fn before_the_answer(sink: &Saves) -> Value {
    sink.all()
        .into_iter()
        .rfind(|v| v.get("media_id").is_none())
        .unwrap_or(Value::Null)
}

fn reel_options() -> InstagramOptions {
    InstagramOptions {
        post_type: Some(InstagramPostType::Reel),
        share_to_feed: Some(false),
        cover_url: Some(COVER.into()),
        trial_reel: Some(true),
    }
}

fn story() -> Option<InstagramOptions> {
    Some(InstagramOptions {
        post_type: Some(InstagramPostType::Story),
        ..Default::default()
    })
}

fn media_publish_path() -> String {
    format!("/{}/{IG_USER_ID}/media_publish", fake::DEFAULT_VERSION)
}

// ---- connecting -----------------------------------------------------------------------------

fn exchange_of(code: &str) -> CodeExchange {
    CodeExchange {
        code: code.into(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: String::new(),
        pending: json!({}),
    }
}

#[tokio::test]
async fn connecting_grants_the_linked_instagram_account_with_its_pages_token() {
    let s = setup().await;
    assert_eq!(s.ig.connect_method(), ConnectMethod::OAuth);
    assert!(s.ig.configured());

    let start =
        s.ig.authorize(&AuthorizationRequest {
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
    let url = reqwest::Url::parse(&start.url).unwrap();
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], fake::CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["state"], "st4te");
    assert_eq!(
        q["scope"],
        "pages_show_list,pages_read_engagement,instagram_basic,instagram_content_publish"
    );
    assert_eq!(start.pending, json!({}));

    // Facebook appends `#_=_` to the redirect: a code that kept it still works.
    let code = s.fake.mint_code(REDIRECT_URI, INSTAGRAM_SCOPES);
    let accounts =
        s.ig.exchange_all(&exchange_of(&format!("{code}#_=_")))
            .await
            .unwrap();
    assert_eq!(
        accounts.len(),
        1,
        "the second Page has no Instagram account"
    );
    let a = &accounts[0];
    assert_eq!(a.account_id, IG_USER_ID);
    assert_eq!(a.username.as_deref(), Some(fake::IG_USERNAME));
    assert_eq!(
        a.meta,
        json!({ "ig_user_id": IG_USER_ID, "page_id": PAGE_ID })
    );
    let user = s
        .fake
        .tokens()
        .into_iter()
        .rfind(|t| t.kind == fake::TokenKind::UserLong)
        .unwrap();
    assert_eq!(
        a.tokens.access_token,
        s.fake.page_token(&user.token, PAGE_ID)
    );
    assert_eq!(a.tokens.expires_at, None, "a Page token does not expire");
    assert_eq!(a.tokens.refresh_token, None);

    // `exchange` answers the first account.
    let code = s.fake.mint_code(REDIRECT_URI, INSTAGRAM_SCOPES);
    let one = s.ig.exchange(&exchange_of(&code)).await.unwrap();
    assert_eq!(one.account_id, IG_USER_ID);

    // Page tokens cannot be refreshed.
    let e =
        s.ig.refresh(&request(&a.tokens.access_token, None, &[IMG1], None, None).account)
            .await
            .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotRefreshable);

    // A used code is refused, and no secret shows.
    let e = s.ig.exchange_all(&exchange_of(&code)).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(!format!("{} {:?}", e.message, e.platform_error).contains(fake::CLIENT_SECRET));
}

#[tokio::test]
async fn a_login_whose_pages_have_no_instagram_account_grants_none() {
    let s = setup().await;
    // The user no longer manages the Page with the Instagram account: only the second is left.
    s.fake.remove_page_role(PAGE_ID);
    let code = s.fake.mint_code(REDIRECT_URI, INSTAGRAM_SCOPES);
    let accounts = s.ig.exchange_all(&exchange_of(&code)).await.unwrap();
    assert!(accounts.is_empty());
    let code = s.fake.mint_code(REDIRECT_URI, INSTAGRAM_SCOPES);
    let e = s.ig.exchange(&exchange_of(&code)).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(
        e.message.contains("No Instagram professional account"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn unconfigured_there_is_no_dialog_and_another_graph_version_is_called() {
    let fake = GraphFake::start_with_version("v26.0").await;
    let mut unconfigured = settings(&fake);
    unconfigured.client_id = None;
    let ig = Instagram::new(unconfigured);
    assert!(!ig.configured());
    let e = ig
        .authorize(&AuthorizationRequest {
            state: "s".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: String::new(),
            params: json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured);

    let ig = Instagram::new(settings(&fake))
        .with_version("v26.0")
        .with_polling(Duration::from_millis(10), Duration::from_secs(3));
    let code = fake.mint_code(REDIRECT_URI, INSTAGRAM_SCOPES);
    let accounts = ig.exchange_all(&exchange_of(&code)).await.unwrap();
    let token = &accounts[0].tokens.access_token;
    ig.publish(&request(token, Some("v26"), &[IMG1], None, None))
        .await
        .unwrap();
    assert_eq!(fake.publishes(), 1);
}

// ---- publishing -----------------------------------------------------------------------------

#[tokio::test]
async fn one_image_is_an_image_container_published_with_its_caption() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let req = with_progress(
        request(&s.token, Some("Hello from Soku"), &[IMG1], None, None),
        Value::Null,
        &sink,
    );
    let post = s.ig.publish(&req).await.unwrap();

    let containers = s.fake.containers();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c.kind, ContainerKind::Image);
    assert_eq!(c.image_url.as_deref(), Some(IMG1));
    assert_eq!(c.caption.as_deref(), Some("Hello from Soku"));
    let media = s.fake.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].id, post.id);
    assert_eq!(
        (
            media[0].media_type.as_str(),
            media[0].media_product_type.as_str()
        ),
        ("IMAGE", "FEED")
    );
    assert_eq!(media[0].container_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(post.url.as_deref(), Some(media[0].permalink.as_str()));
    // The container is saved once created, keyed by the post; then that `media_publish` is
    // about to be sent; then the post.
    let saved = sink.all();
    assert_eq!(saved.len(), 3);
    assert_eq!(saved[0]["kind"], "image");
    assert_eq!(saved[0]["container_id"], c.id.as_str());
    assert_eq!(saved[0]["publish_sent"], false);
    assert!(saved[0]["key"].as_str().is_some_and(|k| k.len() == 32));
    assert_eq!(saved[1]["container_id"], c.id.as_str());
    assert_eq!(saved[1]["publish_sent"], true);
    assert_eq!(saved[2]["media_id"], post.id.as_str());
    assert_eq!(saved[2]["permalink"], media[0].permalink.as_str());
    // Default polls: one IN_PROGRESS read, then FINISHED.
    assert_eq!(s.fake.status_reads(), 2);

    // Reconciliation with the progress of before the answer finds it in the media list...
    let again = with_progress(req.clone(), saved[1].clone(), &sink);
    assert_eq!(
        s.ig.find_existing(&again).await.unwrap(),
        Existing::Found(post.clone())
    );
    // ... and with the last progress, without a call.
    let calls = s.fake.graph_calls();
    let again = with_progress(req.clone(), saved[2].clone(), &sink);
    assert_eq!(
        s.ig.find_existing(&again).await.unwrap(),
        Existing::Found(post.clone())
    );
    // A publish with it answers the post.
    assert_eq!(s.ig.publish(&again).await.unwrap(), post);
    assert_eq!(s.fake.graph_calls(), calls);
    assert_eq!(s.fake.publishes(), 1);
}

#[tokio::test]
async fn images_with_a_video_make_a_carousel_in_their_order() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let req = with_progress(
        request(
            &s.token,
            Some("A carousel"),
            &[IMG1, IMG2, IMG3],
            Some(VIDEO),
            None,
        ),
        Value::Null,
        &sink,
    );
    let post = s.ig.publish(&req).await.unwrap();

    let containers = s.fake.containers();
    assert_eq!(containers.len(), 5);
    let carousel = containers
        .iter()
        .find(|c| c.kind == ContainerKind::Carousel)
        .unwrap();
    assert_eq!(carousel.caption.as_deref(), Some("A carousel"));
    assert_eq!(carousel.children.len(), 4);
    let children: Vec<_> = carousel
        .children
        .iter()
        .map(|id| containers.iter().find(|c| &c.id == id).unwrap())
        .collect();
    let urls: Vec<(ContainerKind, Option<&str>)> = children
        .iter()
        .map(|c| (c.kind, c.image_url.as_deref().or(c.video_url.as_deref())))
        .collect();
    assert_eq!(
        urls,
        [
            (ContainerKind::Image, Some(IMG1)),
            (ContainerKind::Image, Some(IMG2)),
            (ContainerKind::Image, Some(IMG3)),
            (ContainerKind::CarouselVideo, Some(VIDEO)),
        ]
    );
    assert!(
        children
            .iter()
            .all(|c| c.is_carousel_item && c.caption.is_none())
    );

    let media = s.fake.media();
    assert_eq!(media.len(), 1);
    assert_eq!(media[0].id, post.id);
    assert_eq!(media[0].media_type, "CAROUSEL_ALBUM");
    assert_eq!(media[0].children.len(), 4);

    // Each item was saved as it was created, then the carousel, that it is sent to be
    // published, and the post.
    let saved = sink.all();
    assert_eq!(saved.len(), 7);
    assert_eq!(
        saved[0]["children"],
        json!([children[0].id, null, null, null])
    );
    assert_eq!(saved[4]["kind"], "carousel");
    assert_eq!(saved[4]["children"], json!(carousel.children.clone()));
    assert_eq!(saved[4]["container_id"], carousel.id.as_str());
    assert_eq!(saved[5]["publish_sent"], true);
    assert_eq!(saved[6]["media_id"], post.id.as_str());
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), saved[5].clone(), &sink))
            .await
            .unwrap(),
        Existing::Found(post)
    );
}

#[tokio::test]
async fn a_reel_carries_share_to_feed_cover_and_trial() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let req = with_progress(
        request(
            &s.token,
            Some("Reel time"),
            &[],
            Some(VIDEO),
            Some(reel_options()),
        ),
        Value::Null,
        &sink,
    );
    let post = s.ig.publish(&req).await.unwrap();
    let c = &s.fake.containers()[0];
    assert_eq!(c.kind, ContainerKind::Reel);
    assert_eq!(c.video_url.as_deref(), Some(VIDEO));
    assert_eq!(c.caption.as_deref(), Some("Reel time"));
    assert_eq!(c.share_to_feed, Some(false));
    assert_eq!(c.cover_url.as_deref(), Some(COVER));
    assert_eq!(c.trial_graduation.as_deref(), Some("MANUAL"));
    let m = &s.fake.media()[0];
    assert_eq!(
        (m.media_type.as_str(), m.media_product_type.as_str()),
        ("VIDEO", "REELS")
    );
    assert_eq!(m.id, post.id);
    assert!(post.url.as_deref().unwrap().contains("/reel/"));
    assert_eq!(sink.last()["kind"], "reel");
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), before_the_answer(&sink), &sink))
            .await
            .unwrap(),
        Existing::Found(post)
    );

    // A video with no options is a reel too, without the reel options.
    let plain = request(&s.token, Some("plain"), &[], Some(VIDEO), None);
    s.ig.publish(&plain).await.unwrap();
    let c = s.fake.containers().pop().unwrap();
    assert_eq!(c.kind, ContainerKind::Reel);
    assert_eq!((c.share_to_feed, c.trial_graduation), (None, None));
}

#[tokio::test]
async fn stories_take_one_image_or_video_and_no_caption() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let image = with_progress(
        request(
            &s.token,
            Some("not shown on a story"),
            &[IMG1],
            None,
            story(),
        ),
        Value::Null,
        &sink,
    );
    let post = s.ig.publish(&image).await.unwrap();
    let (image_post, image_last) = (post.clone(), sink.last());
    let c = s.fake.containers().pop().unwrap();
    assert_eq!(c.kind, ContainerKind::StoryImage);
    assert_eq!(c.image_url.as_deref(), Some(IMG1));
    assert_eq!(c.caption, None, "a story takes no caption");
    let m = s.fake.media().pop().unwrap();
    assert_eq!(m.media_product_type, "STORY");
    assert_eq!(m.id, post.id);
    // The one image story since the attempt began is the one (with the progress of before
    // `media_publish` answered: the last one holds the post).
    let saved = before_the_answer(&sink);
    match s
        .ig
        .find_existing(&with_progress(image.clone(), saved.clone(), &sink))
        .await
        .unwrap()
    {
        Existing::Found(found) => assert_eq!(found.id, post.id),
        other => panic!("{other:?}"),
    }

    let video = with_progress(
        request(&s.token, None, &[], Some(VIDEO), story()),
        Value::Null,
        &sink,
    );
    let post = s.ig.publish(&video).await.unwrap();
    let c = s.fake.containers().pop().unwrap();
    assert_eq!(c.kind, ContainerKind::StoryVideo);
    assert_eq!(c.video_url.as_deref(), Some(VIDEO));
    let m = s.fake.media().pop().unwrap();
    assert_eq!(
        (m.media_type.as_str(), m.id.as_str()),
        ("VIDEO", post.id.as_str())
    );

    // A second image story: two candidates without a caption cannot be told apart...
    let again = with_progress(
        request(&s.token, None, &[IMG2], None, story()),
        Value::Null,
        &sink,
    );
    s.ig.publish(&again).await.unwrap();
    assert_eq!(
        s.ig.find_existing(&with_progress(image.clone(), saved, &sink))
            .await
            .unwrap(),
        Existing::CannotTell
    );
    // ... unless the attempt saved the post it made.
    match s
        .ig
        .find_existing(&with_progress(image, image_last, &sink))
        .await
        .unwrap()
    {
        Existing::Found(found) => assert_eq!(found, image_post),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn what_submission_refuses_is_refused_before_any_call() {
    let s = setup().await;
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("https://soku.example/{i}.jpg"))
        .collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let hashtags: String = (0..31).map(|i| format!("#t{i} ")).collect();
    let cases = [
        (
            request(&s.token, Some("text only"), &[], None, None),
            "empty_post",
        ),
        (
            request(&s.token, None, &eleven, None, None),
            "too_many_images",
        ),
        (
            request(&s.token, Some(&"a".repeat(2201)), &[IMG1], None, None),
            "text_too_long",
        ),
        (
            request(&s.token, Some(&hashtags), &[IMG1], None, None),
            "too_many_hashtags",
        ),
        (
            request(&s.token, None, &[IMG1, IMG2], None, story()),
            "story_single_media",
        ),
        (
            request(&s.token, None, &[IMG1], None, Some(reel_options())),
            "reel_needs_video",
        ),
        (
            request(
                &s.token,
                None,
                &[IMG1],
                None,
                Some(InstagramOptions {
                    share_to_feed: Some(true),
                    ..Default::default()
                }),
            ),
            "reel_only_option",
        ),
    ];
    for (req, code) in cases {
        let e = s.ig.publish(&req).await.unwrap_err();
        assert_eq!((e.class, e.code.as_str()), (FailureClass::Permanent, code));
        assert_eq!(s.ig.find_existing(&req).await.unwrap(), Existing::NotFound);
    }
    assert_eq!(s.fake.graph_calls(), 0);
}

// ---- containers and waits -------------------------------------------------------------------

#[tokio::test]
async fn a_container_in_progress_is_polled_until_finished() {
    let s = setup().await;
    s.fake.set_container_polls(3);
    s.ig.publish(&request(&s.token, None, &[IMG1], None, None))
        .await
        .unwrap();
    assert_eq!(s.fake.status_reads(), 4, "three IN_PROGRESS, then FINISHED");
    assert_eq!(s.fake.publishes(), 1);
}

#[tokio::test]
async fn a_container_that_fails_is_permanent_with_the_reason() {
    let s = setup().await;
    s.fake.fail_next_container(2_207_009);
    let e =
        s.ig.publish(&request(&s.token, Some("wide"), &[IMG1], None, None))
            .await
            .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "media_rejected")
    );
    assert!(e.message.contains("aspect ratio"), "{}", e.message);
    assert_eq!(e.platform_error.as_deref(), Some("2207009"));

    // A video Instagram cannot process.
    s.fake.fail_media_url(VIDEO, 2_207_026);
    let e =
        s.ig.publish(&request(&s.token, None, &[], Some(VIDEO), None))
            .await
            .unwrap_err();
    assert_eq!(e.code, "media_processing_failed");
    assert!(e.message.contains("video format"), "{}", e.message);

    // A carousel item that fails fails the carousel before the carousel is made.
    s.fake.fail_media_url(IMG2, 2_207_052);
    let e =
        s.ig.publish(&request(&s.token, None, &[IMG1, IMG2], None, None))
            .await
            .unwrap_err();
    assert_eq!(e.code, "media_rejected");
    assert!(e.message.contains("could not fetch"), "{}", e.message);
    assert!(
        !s.fake
            .containers()
            .iter()
            .any(|c| c.kind == ContainerKind::Carousel)
    );
    assert_eq!(s.fake.publishes(), 0);
}

#[tokio::test]
async fn a_wait_that_runs_out_is_retryable_and_the_next_attempt_resumes_the_same_container() {
    let s = setup().await;
    s.fake
        .set_container_processing_time(Some(Duration::from_millis(400)));
    let hurried = connector(&s.fake, Duration::from_millis(50));
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("slow"), &[], Some(VIDEO), None);
    let e = hurried
        .publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    assert_eq!(e.code, "media_processing");
    assert_eq!(s.fake.containers_created(), 1);
    let saved = sink.all();
    assert_eq!(saved.len(), 1);
    // Nothing was published: reconciliation says so.
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), saved[0].clone(), &sink))
            .await
            .unwrap(),
        Existing::NotFound
    );

    let sink2 = Arc::new(Saves::default());
    let post =
        s.ig.publish(&with_progress(req, saved[0].clone(), &sink2))
            .await
            .unwrap();
    assert_eq!(s.fake.containers_created(), 1, "no second container");
    let m = s.fake.media().pop().unwrap();
    assert_eq!(m.id, post.id);
    assert_eq!(m.container_id.as_deref(), saved[0]["container_id"].as_str());
    // Saved since: that it is sent to be published, then the post; no other container.
    let saved2 = sink2.all();
    assert_eq!(saved2.len(), 2);
    assert!(
        saved2
            .iter()
            .all(|v| v["container_id"] == saved[0]["container_id"])
    );
    assert_eq!(saved2[0]["publish_sent"], true);
    assert_eq!(saved2[1]["media_id"], post.id.as_str());
}

#[tokio::test]
async fn an_expired_saved_container_is_created_again() {
    let s = setup().await;
    s.fake.set_container_polls(1000);
    let hurried = connector(&s.fake, Duration::from_millis(1));
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("late"), &[IMG1], None, None);
    hurried
        .publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap_err();
    let saved = sink.last();
    let old = saved["container_id"].as_str().unwrap().to_owned();
    s.fake.expire_container(&old);
    s.fake.set_container_polls(1);
    // An expired container was never published.
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), saved.clone(), &sink))
            .await
            .unwrap(),
        Existing::NotFound
    );
    // One Instagram no longer knows, never sent to be published, was not published either:
    // no call is needed to say so.
    assert_eq!(saved["publish_sent"], false);
    s.fake.faults.reply(
        "GET",
        &format!("/{}/{old}", fake::DEFAULT_VERSION),
        400,
        &[],
        fake::graph_error(
            100,
            Some(33),
            "GraphMethodException",
            "Unsupported get request. Object with ID does not exist",
            false,
            None,
        ),
    );
    let calls = s.fake.graph_calls();
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), saved.clone(), &sink))
            .await
            .unwrap(),
        Existing::NotFound
    );
    assert_eq!(s.fake.graph_calls(), calls);
    assert_eq!(s.fake.faults.pending(), 1, "the container was not read");

    // The publish reads it gone (the fault above) and makes another.
    let sink2 = Arc::new(Saves::default());
    s.ig.publish(&with_progress(req, saved, &sink2))
        .await
        .unwrap();
    assert_eq!(s.fake.faults.pending(), 0);
    assert_eq!(s.fake.containers_created(), 2);
    let m = s.fake.media().pop().unwrap();
    let new = m.container_id.unwrap();
    assert_ne!(new, old);
    assert_eq!(sink2.last()["container_id"], new.as_str());
}

#[tokio::test]
async fn a_carousel_resumes_with_its_saved_items_and_replaces_an_expired_one() {
    let s = setup().await;
    s.fake
        .set_container_processing_time(Some(Duration::from_millis(300)));
    let hurried = connector(&s.fake, Duration::from_millis(1));
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("resume"), &[IMG1, IMG2], None, None);
    let e = hurried
        .publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap_err();
    assert_eq!(e.code, "media_processing");
    let saved = sink.last();
    let items: Vec<String> = saved["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(items.len(), 2);
    assert!(saved.get("container_id").is_none());
    s.fake.expire_container(&items[1]);
    s.fake.set_container_processing_time(None);
    s.fake.set_container_polls(0);

    let sink2 = Arc::new(Saves::default());
    s.ig.publish(&with_progress(req, saved, &sink2))
        .await
        .unwrap();
    // Two items, one more for the expired one, and the carousel.
    assert_eq!(s.fake.containers_created(), 4);
    let last = sink2.last();
    assert_eq!(last["children"][0], items[0].as_str());
    assert_ne!(last["children"][1], items[1].as_str());
    assert_eq!(s.fake.media().len(), 1);
}

// ---- quota, tokens, throttling --------------------------------------------------------------

#[tokio::test]
async fn a_used_up_quota_is_retryable_and_nothing_is_created() {
    let s = setup().await;
    s.fake.set_quota_total(3);
    s.fake.record_api_publishes(IG_USER_ID, 3);
    let e =
        s.ig.publish(&request(
            &s.token,
            Some("one too many"),
            &[IMG1, IMG2],
            None,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable {
                retry_after: Some(QUOTA_RETRY_AFTER)
            },
            "quota_exceeded"
        )
    );
    assert!(
        e.message
            .contains("Instagram allows 3 API-published posts per 24 hours"),
        "{}",
        e.message
    );
    assert_eq!(s.fake.containers_created(), 0);

    // `media_publish` refusing for the quota means the same.
    s.fake.set_quota_total(50);
    s.fake.faults.reply(
        "POST",
        &media_publish_path(),
        400,
        &[],
        fake::ig_error(2_207_042, None),
    );
    let e =
        s.ig.publish(&request(&s.token, None, &[IMG1], None, None))
            .await
            .unwrap_err();
    assert_eq!(e.code, "quota_exceeded");
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(QUOTA_RETRY_AFTER)
        }
    );
}

#[tokio::test]
async fn a_quota_read_that_fails_does_not_block_publishing() {
    let s = setup().await;
    s.fake.faults.reply(
        "GET",
        &format!(
            "/{}/{IG_USER_ID}/content_publishing_limit",
            fake::DEFAULT_VERSION
        ),
        500,
        &[],
        json!({"error": {"message": "An unknown error occurred", "type": "OAuthException",
            "code": 1, "is_transient": false}}),
    );
    s.ig.publish(&request(&s.token, None, &[IMG1], None, None))
        .await
        .unwrap();
    assert_eq!(s.fake.publishes(), 1);
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_token_invalid() {
    let s = setup().await;
    s.fake.expire_token(&s.token);
    let e =
        s.ig.publish(&request(&s.token, None, &[IMG1], None, None))
            .await
            .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    assert!(!e.message.contains(&s.token));

    let user = s.fake.grant_token(fake::PUBLISHING_PERMISSIONS);
    let other = s.fake.page_token(&user, PAGE_ID);
    s.fake.revoke_token(&other, Revocation::PasswordChanged);
    let e =
        s.ig.publish(&request(&other, None, &[IMG1], None, None))
            .await
            .unwrap_err();
    assert_eq!(e.code, TOKEN_INVALID);
    assert_eq!(s.fake.containers_created(), 0);
}

#[tokio::test]
async fn throttling_is_retryable_after_the_usage_headers_wait() {
    let s = setup().await;
    s.fake.rate_limit_next(1, Throttle::InstagramBuc);
    let e =
        s.ig.publish(&request(&s.token, None, &[IMG1], None, None))
            .await
            .unwrap_err();
    assert_eq!(e.code, "rate_limited");
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(19 * 60))
        }
    );
    assert_eq!(s.fake.containers_created(), 0);
}

#[tokio::test]
async fn a_spam_restriction_is_permanent_not_a_throttle() {
    let s = setup().await;
    s.fake.faults.reply(
        "POST",
        &media_publish_path(),
        400,
        &[],
        fake::ig_error(2_207_051, None),
    );
    let e =
        s.ig.publish(&request(&s.token, Some("buy now"), &[IMG1], None, None))
            .await
            .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "spam_restricted")
    );
    assert!(
        e.message.contains("We restrict certain activity"),
        "{}",
        e.message
    );
}

// ---- ambiguity and reconciliation -----------------------------------------------------------

#[tokio::test]
async fn a_publish_cut_off_after_it_took_effect_is_found_by_reconciliation() {
    let s = setup().await;
    // An older post with the same caption and a recent one with another: neither is ours.
    s.fake.insert_media(
        IG_USER_ID,
        Some("Launch day!"),
        Duration::from_secs(3600),
        true,
    );
    s.fake.insert_media(
        IG_USER_ID,
        Some("Something else"),
        Duration::from_secs(1),
        true,
    );
    s.fake.faults.push(
        "POST",
        &media_publish_path(),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("Launch day!"), &[IMG1], None, None);
    let e =
        s.ig.publish(&with_progress(req.clone(), Value::Null, &sink))
            .await
            .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert!(!e.message.contains(&s.token));
    assert_eq!(s.fake.publishes(), 1, "the post was made");
    let mine = s
        .fake
        .media()
        .into_iter()
        .find(|m| m.container_id.is_some())
        .unwrap();

    let saved = sink.last();
    match s
        .ig
        .find_existing(&with_progress(req.clone(), saved.clone(), &sink))
        .await
        .unwrap()
    {
        Existing::Found(found) => {
            assert_eq!(found.id, mine.id);
            assert_eq!(found.url.as_deref(), Some(mine.permalink.as_str()));
        }
        other => panic!("expected Found, got {other:?}"),
    }
    // A later publish with that progress finds the post instead of publishing again.
    let post =
        s.ig.publish(&with_progress(req, saved, &sink))
            .await
            .unwrap();
    assert_eq!(post.id, mine.id);
    assert_eq!(s.fake.publishes(), 1);
    assert_eq!(s.fake.containers_created(), 1);
}

#[tokio::test]
async fn a_publish_that_failed_before_taking_effect_is_not_found() {
    let s = setup().await;
    s.fake.faults.reply(
        "POST",
        &media_publish_path(),
        500,
        &[],
        fake::graph_error(
            2,
            None,
            "OAuthException",
            "An unexpected error has occurred. Please retry your request later.",
            true,
            None,
        ),
    );
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("maybe"), &[IMG1], None, None);
    let e =
        s.ig.publish(&with_progress(req.clone(), Value::Null, &sink))
            .await
            .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(s.fake.publishes(), 0);
    // The container is FINISHED, never published.
    let saved = sink.last();
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), saved.clone(), &sink))
            .await
            .unwrap(),
        Existing::NotFound
    );
    // No saved container: no publish was ever sent.
    assert_eq!(s.ig.find_existing(&req).await.unwrap(), Existing::NotFound);
    // The retry publishes the same container.
    s.ig.publish(&with_progress(req, saved, &sink))
        .await
        .unwrap();
    assert_eq!((s.fake.containers_created(), s.fake.publishes()), (1, 1));
}

#[tokio::test]
async fn a_published_container_whose_post_cannot_be_found_cannot_be_told() {
    let s = setup().await;
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("caption"), &[IMG1], None, None);
    s.ig.publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap();
    // The container reads PUBLISHED, but no post of that kind and caption is listed since
    // the attempts began (here: they are said to have begun after it).
    let mut later = req.clone();
    later.not_before = Utc::now() + chrono::Duration::seconds(120);
    assert_eq!(
        s.ig.find_existing(&with_progress(later, before_the_answer(&sink), &sink))
            .await
            .unwrap(),
        Existing::CannotTell
    );
}

// ---- a container sent to be published -------------------------------------------------------

/// The answers of a container read for one Instagram no longer knows.
fn gone_answers() -> [(&'static str, Value); 3] {
    [
        (
            "100/33",
            fake::graph_error(
                100,
                Some(33),
                "GraphMethodException",
                "Unsupported get request. Object with ID does not exist",
                false,
                None,
            ),
        ),
        ("24/2207006", fake::ig_error(2_207_006, None)),
        ("24/2207008", fake::ig_error(2_207_008, None)),
    ]
}

fn container_path(id: &str) -> String {
    format!("/{}/{id}", fake::DEFAULT_VERSION)
}

/// A publish whose `media_publish` took effect but whose answer was lost: the progress it
/// left (`publish_sent`), and the post it made.
async fn published_without_an_answer(s: &Setup, req: &PublishRequest) -> (Value, String) {
    s.fake.faults.push(
        "POST",
        &media_publish_path(),
        Fault::DelayAfterEffect(Duration::from_secs(2)),
    );
    let sink = Arc::new(Saves::default());
    let e =
        s.ig.publish(&with_progress(req.clone(), Value::Null, &sink))
            .await
            .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    let saved = sink.last();
    assert_eq!(saved["publish_sent"], true);
    let container = saved["container_id"].as_str().unwrap().to_owned();
    let media = s
        .fake
        .media()
        .into_iter()
        .find(|m| m.container_id.as_deref() == Some(container.as_str()))
        .unwrap();
    (saved, media.id)
}

#[tokio::test]
async fn a_container_gone_after_it_was_sent_to_be_published_is_looked_up_never_made_again() {
    let s = setup().await;
    for (i, (what, gone)) in gone_answers().into_iter().enumerate() {
        let req = request(&s.token, Some(&format!("Once {i}")), &[IMG1], None, None);
        let (saved, mine) = published_without_an_answer(&s, &req).await;
        let container = saved["container_id"].as_str().unwrap();
        let (created, published) = (s.fake.containers_created(), s.fake.publishes());

        // Reconciliation read the container FINISHED while Instagram was still finishing the
        // publish: not published (yet), so the engine publishes again...
        s.fake.faults.reply(
            "GET",
            &container_path(container),
            200,
            &[],
            json!({"id": container, "status_code": "FINISHED", "status": "Finished"}),
        );
        let sink = Arc::new(Saves::default());
        assert_eq!(
            s.ig.find_existing(&with_progress(req.clone(), saved.clone(), &sink))
                .await
                .unwrap(),
            Existing::NotFound,
            "{what}"
        );
        // ... and that attempt finds the container gone: it looks for the post.
        s.fake
            .faults
            .reply("GET", &container_path(container), 400, &[], gone);
        let post =
            s.ig.publish(&with_progress(req.clone(), saved, &sink))
                .await
                .unwrap();
        assert_eq!(post.id, mine, "{what}");
        assert_eq!(s.fake.faults.pending(), 0, "{what}");
        assert_eq!(
            (s.fake.containers_created(), s.fake.publishes()),
            (created, published),
            "{what}: no new container, no second post"
        );
        assert_eq!(sink.last()["media_id"], mine.as_str());
    }
}

#[tokio::test]
async fn a_gone_container_sent_to_be_published_whose_post_is_not_listed_is_ambiguous() {
    let s = setup().await;
    let req = request(&s.token, Some("Not listed"), &[IMG1], None, None);
    let (saved, _) = published_without_an_answer(&s, &req).await;
    let container = saved["container_id"].as_str().unwrap();
    // The post is not listed since the attempts began (they are said to begin after it).
    let mut later = req.clone();
    later.not_before = Utc::now() + chrono::Duration::seconds(120);
    let sink = Arc::new(Saves::default());
    for (what, gone) in gone_answers() {
        s.fake
            .faults
            .reply("GET", &container_path(container), 400, &[], gone.clone());
        assert_eq!(
            s.ig.find_existing(&with_progress(later.clone(), saved.clone(), &sink))
                .await
                .unwrap(),
            Existing::CannotTell,
            "{what}"
        );
        s.fake
            .faults
            .reply("GET", &container_path(container), 400, &[], gone);
        let e =
            s.ig.publish(&with_progress(later.clone(), saved.clone(), &sink))
                .await
                .unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Ambiguous, "already_published"),
            "{what}"
        );
        assert!(e.message.contains("no longer knows"), "{}", e.message);
    }
    assert_eq!((s.fake.containers_created(), s.fake.publishes()), (1, 1));
    assert!(sink.all().is_empty(), "nothing to save");
}

/// A progress store that refuses the saves `refuse` picks (as the engine's does when the
/// target's row cannot be written) and keeps the others.
struct Refusing {
    refuse: fn(&Value) -> bool,
    kept: Saves,
}

#[async_trait::async_trait]
impl ProgressSink for Refusing {
    async fn save(&self, value: &Value) -> Result<(), PublishError> {
        if (self.refuse)(value) {
            return Err(PublishError::new(
                FailureClass::Retryable { retry_after: None },
                "progress_unsaved",
                "The upload's progress could not be saved: the store is down",
            ));
        }
        self.kept.save(value).await
    }
}

fn refusing(refuse: fn(&Value) -> bool) -> Arc<Refusing> {
    Arc::new(Refusing {
        refuse,
        kept: Saves::default(),
    })
}

#[tokio::test]
async fn media_publish_is_not_sent_unless_publish_sent_was_saved() {
    let s = setup().await;
    let req = request(&s.token, Some("saved first"), &[IMG1], None, None);
    let store = refusing(|v| v["publish_sent"] == true);
    let mut attempt = req.clone();
    attempt.progress = Progress::new(Value::Null, store.clone());
    let e = s.ig.publish(&attempt).await.unwrap_err();
    assert_eq!(e.code, "progress_unsaved");
    assert_eq!(s.fake.publishes(), 0, "nothing published unsaved");
    // Nothing was sent: reconciliation says so without a call, and the retry publishes the
    // same container.
    let saved = store.kept.last();
    assert_eq!(saved["publish_sent"], false);
    let calls = s.fake.graph_calls();
    let sink = Arc::new(Saves::default());
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), saved.clone(), &sink))
            .await
            .unwrap(),
        Existing::NotFound
    );
    assert_eq!(s.fake.graph_calls(), calls);
    s.ig.publish(&with_progress(req, saved, &sink))
        .await
        .unwrap();
    assert_eq!((s.fake.containers_created(), s.fake.publishes()), (1, 1));
}

#[tokio::test]
async fn a_failure_to_save_the_post_after_publishing_does_not_fail_the_publish() {
    let s = setup().await;
    let store = refusing(|v| v.get("media_id").is_some());
    let mut req = request(&s.token, Some("published"), &[IMG1], None, None);
    req.progress = Progress::new(Value::Null, store.clone());
    let post = s.ig.publish(&req).await.unwrap();
    assert_eq!(s.fake.publishes(), 1);
    assert_eq!(s.fake.media().pop().unwrap().id, post.id);
    // What was saved still leads reconciliation to the post.
    let sink = Arc::new(Saves::default());
    assert_eq!(
        s.ig.find_existing(&with_progress(req.clone(), store.kept.last(), &sink))
            .await
            .unwrap(),
        Existing::Found(post)
    );
}

// ---- container statuses this server does not know ------------------------------------------

#[tokio::test]
async fn an_unknown_or_missing_container_status_cannot_be_told() {
    let s = setup().await;
    // A `media_publish` that did not take effect: the container stays FINISHED.
    s.fake.faults.reply(
        "POST",
        &media_publish_path(),
        500,
        &[],
        fake::graph_error(2, None, "OAuthException", "Please retry", true, None),
    );
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("status"), &[IMG1], None, None);
    s.ig.publish(&with_progress(req.clone(), Value::Null, &sink))
        .await
        .unwrap_err();
    let saved = sink.last();
    assert_eq!(saved["publish_sent"], true);
    let container = saved["container_id"].as_str().unwrap();
    let again = with_progress(req.clone(), saved.clone(), &sink);
    for answer in [
        json!({"id": container, "status_code": "SCHEDULED", "status": "Scheduled"}),
        json!({"id": container, "status": "Finished"}),
        json!({"id": container, "status_code": null}),
    ] {
        s.fake
            .faults
            .reply("GET", &container_path(container), 200, &[], answer.clone());
        assert_eq!(
            s.ig.find_existing(&again).await.unwrap(),
            Existing::CannotTell,
            "{answer}"
        );
    }
    // Read as documented, FINISHED is not published.
    assert_eq!(
        s.ig.find_existing(&again).await.unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn an_unknown_container_status_while_publishing_is_retryable_not_polled() {
    let s = setup().await;
    // The first read of the new container (container ids start 17900...).
    s.fake.faults.reply(
        "GET",
        &format!("/{}/17900", fake::DEFAULT_VERSION),
        200,
        &[],
        json!({"id": "x", "status_code": "QUEUED_FOR_REVIEW"}),
    );
    let sink = Arc::new(Saves::default());
    let req = request(&s.token, Some("unknown"), &[IMG1], None, None);
    let e =
        s.ig.publish(&with_progress(req.clone(), Value::Null, &sink))
            .await
            .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (
            FailureClass::Retryable { retry_after: None },
            "container_status_unknown"
        )
    );
    assert!(e.message.contains("QUEUED_FOR_REVIEW"), "{}", e.message);
    assert_eq!(s.fake.faults.pending(), 0);
    assert_eq!(s.fake.status_reads(), 0, "no read after the unknown one");
    assert_eq!(s.fake.publishes(), 0);
    // The next attempt goes on with the same container.
    s.ig.publish(&with_progress(req, sink.last(), &sink))
        .await
        .unwrap();
    assert_eq!((s.fake.containers_created(), s.fake.publishes()), (1, 1));
}

// ---- progress saved for another post --------------------------------------------------------

#[tokio::test]
async fn progress_for_another_post_that_may_have_been_published_cannot_be_told() {
    let s = setup().await;
    let first = request(&s.token, Some("First caption"), &[IMG1], None, None);
    let (sent, _) = published_without_an_answer(&s, &first).await;
    // The post was edited since: its progress is another post's.
    let edited = request(&s.token, Some("Edited caption"), &[IMG1], None, None);
    let sink = Arc::new(Saves::default());
    let calls = s.fake.graph_calls();
    assert_eq!(
        s.ig.find_existing(&with_progress(edited.clone(), sent.clone(), &sink))
            .await
            .unwrap(),
        Existing::CannotTell
    );
    // A post that saved its post, too.
    let mut posted = sent.clone();
    posted["media_id"] = json!("17950000000000999");
    assert_eq!(
        s.ig.find_existing(&with_progress(edited.clone(), posted, &sink))
            .await
            .unwrap(),
        Existing::CannotTell
    );
    // A container never sent to be published is ignored.
    let mut unsent = sent.clone();
    unsent["publish_sent"] = json!(false);
    assert_eq!(
        s.ig.find_existing(&with_progress(edited, unsent, &sink))
            .await
            .unwrap(),
        Existing::NotFound
    );
    assert_eq!(s.fake.graph_calls(), calls);
}
