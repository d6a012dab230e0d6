//! The Snapchat connector against the loopback fake of Snap's Public Profile API
//! (`soku_fakes::snapchat`), whose FINALIZE decrypts what the connector uploaded.

mod support;

use serde_json::{Value, json};
use sha2::Digest;
use soku_core::connector::{
    AccountCredentials, AuthorizationRequest, CodeExchange, ConnectErrorKind, Connector, Existing,
    FailureClass, Progress, PublishRequest, TOKEN_INVALID,
};
use soku_core::platform::Platform;
use soku_core::posts::{
    MediaType, PlatformOptions, PostContent, SnapchatOptions, SnapchatPostType,
};
use soku_fakes::Fault;
use soku_fakes::media_files;
use soku_fakes::snapchat::{
    CLIENT_ID, CLIENT_SECRET, DISPLAY_NAME, PROFILE_ID, REDIRECT_URI, RefreshMode, SNAP_USER_NAME,
    SnapchatFake,
};
use soku_platforms::PlatformSettings;
use soku_platforms::snapchat::{ASSUMED_TOKEN_LIFETIME, SCOPE, Snapchat};
use std::sync::Arc;
use std::time::Duration;
use support::{MemoryMedia, Saves, StreamedMedia, approve};

const MIB: usize = 1024 * 1024;
/// Three parts of 8 MiB and the rest; one part.
const FILM: &str = "https://media.test/media/med_film/film.mp4";
const CLIP: &str = "https://media.test/media/med_clip/clip.mp4";
const PICTURE: &str = "https://media.test/media/med_pic/pic.png";
/// An MP4 with three stray bytes after its last box: Snap's FINALIZE refuses what it decrypts.
const DAMAGED: &str = "https://media.test/media/med_bad/damaged.mp4";

fn film() -> Vec<u8> {
    media_files::mp4(1080, 1920, 30_000, 20 * MIB)
}

fn clip() -> Vec<u8> {
    media_files::mp4(1080, 1920, 10_000, 300_000)
}

fn damaged() -> Vec<u8> {
    let mut bytes = clip();
    bytes.extend_from_slice(&[0, 0, 0]);
    bytes
}

fn picture() -> Vec<u8> {
    media_files::png(1080, 1920)
}

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn media() -> Arc<StreamedMedia> {
    StreamedMedia::new(
        MemoryMedia::new([(PICTURE, picture())]),
        [(FILM, film()), (CLIP, clip()), (DAMAGED, damaged())],
        true,
    )
}

fn connector(fake: &SnapchatFake, media: &Arc<StreamedMedia>) -> Snapchat {
    Snapchat::new(connector_settings(fake), media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_secs(5))
}

/// A connector whose calls give up after 2 s: for answers the fake holds back longer. Only for
/// small files (a 20 MiB film's parts and `FINALIZE` take longer than that in a debug build
/// on a slow machine).
fn impatient(fake: &SnapchatFake, media: &Arc<StreamedMedia>) -> Snapchat {
    let settings = PlatformSettings {
        timeout: Duration::from_secs(2),
        ..connector_settings(fake)
    };
    Snapchat::new(settings, media.clone())
        .with_polling(Duration::from_millis(20), Duration::from_secs(5))
}

fn account(access: Option<String>, refresh: Option<String>) -> AccountCredentials {
    AccountCredentials {
        account_id: PROFILE_ID.into(),
        username: Some(SNAP_USER_NAME.into()),
        access_token: access,
        refresh_token: refresh,
        meta: json!({"profile_id": PROFILE_ID}),
    }
}

/// A post of `url` as `kind`, its progress kept in `saves` from `saved`.
fn request(
    fake: &SnapchatFake,
    url: &str,
    kind: SnapchatPostType,
    saves: &Arc<Saves>,
    saved: Value,
) -> PublishRequest {
    let video = url.ends_with(".mp4");
    PublishRequest {
        marker: "sub_1:snapchat:profile".into(),
        user_id: "user_1".into(),
        submission_id: "sub_1".into(),
        target_id: "snapchat:profile".into(),
        platform: Platform::Snapchat,
        account: account(Some(fake.mint_access_token()), None),
        content: PostContent {
            text: Some("Behind the scenes #soku".into()),
            media_type: if video {
                MediaType::Video
            } else {
                MediaType::Image
            },
            image_urls: if video { vec![] } else { vec![url.to_owned()] },
            video_url: video.then(|| url.to_owned()),
        },
        options: PlatformOptions::Snapchat(SnapchatOptions {
            post_type: Some(kind),
            title: Some("Launch week".into()),
            description: None,
        }),
        media: Vec::new(),
        progress: Progress::new(saved, saves.clone()),
        not_before: chrono::Utc::now() - chrono::Duration::seconds(5),
    }
}

fn story(fake: &SnapchatFake, url: &str, saves: &Arc<Saves>) -> PublishRequest {
    request(fake, url, SnapchatPostType::Story, saves, Value::Null)
}

fn stories_path() -> String {
    format!("/v1/public_profiles/{PROFILE_ID}/stories")
}

/// Publishes `url` as a Story the way the engine does: attempt after attempt (at most `max`),
/// each from the progress saved in `saves` so far, while the failure is retryable. The last
/// outcome.
async fn attempts(
    snap: &Snapchat,
    fake: &SnapchatFake,
    url: &str,
    saves: &Arc<Saves>,
    max: usize,
) -> Result<soku_core::connector::PublishedPost, soku_core::connector::PublishError> {
    let mut outcome = None;
    for _ in 0..max {
        let req = request(fake, url, SnapchatPostType::Story, saves, saves.last());
        let this = snap.publish(&req).await;
        let again = matches!(&this, Err(e) if matches!(e.class, FailureClass::Retryable { .. }));
        outcome = Some(this);
        if !again {
            break;
        }
    }
    outcome.expect("at least one attempt")
}

/// The next FINALIZE is answered `status` with Snap's error envelope, and not handled.
fn refuse_next_finalize(fake: &SnapchatFake, status: u16, code: &str, debug: &str) {
    fake.push_finalize_fault(Fault::Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"request_id": "r", "request_status": "ERROR", "error_code": code,
                     "debug_message": debug, "display_message": "Something went wrong."})
        .to_string(),
    });
}

#[tokio::test]
async fn the_public_profile_is_connected_with_snaps_oauth() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    let start = snap
        .authorize(&AuthorizationRequest {
            state: "st1".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: "unused".into(),
            params: Value::Null,
        })
        .await
        .unwrap();
    assert!(start.url.starts_with(&fake.auth_url()), "{}", start.url);
    let (_, cb) = approve(&start.url).await;
    assert_eq!(cb["state"], "st1");
    let q = &fake.authorize_queries()[0];
    assert_eq!(
        (
            q["client_id"].as_str(),
            q["response_type"].as_str(),
            q["scope"].as_str()
        ),
        (CLIENT_ID, "code", SCOPE)
    );
    let exchange = |code: &str| CodeExchange {
        code: code.to_owned(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: String::new(),
        pending: Value::Null,
    };
    let connected = snap.exchange(&exchange(&cb["code"])).await.unwrap();
    assert_eq!(connected.account_id, PROFILE_ID);
    assert_eq!(connected.username.as_deref(), Some(SNAP_USER_NAME));
    assert_eq!(connected.display_name.as_deref(), Some(DISPLAY_NAME));
    let expires = connected.tokens.expires_at.unwrap() - chrono::Utc::now();
    assert!((1700..=1800).contains(&expires.num_seconds()), "{expires}");
    assert!(fake.access_token_valid(&connected.tokens.access_token));
    // A used code is refused: the account needs connecting again.
    let again = snap.exchange(&exchange(&cb["code"])).await.unwrap_err();
    assert_eq!(again.kind, ConnectErrorKind::Rejected);

    // `my_profile` in the list form some publishers read.
    fake.set_profile_wrapped(true);
    let (_, cb) = approve(&start.url).await;
    let connected = snap.exchange(&exchange(&cb["code"])).await.unwrap();
    assert_eq!(connected.account_id, PROFILE_ID);

    // A grant without the Public Profile scope cannot post.
    fake.set_granted_scope(Some("snapchat-marketing-api"));
    let (_, cb) = approve(&start.url).await;
    let e = snap.exchange(&exchange(&cb["code"])).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    assert!(e.message.contains(SCOPE), "{}", e.message);
    fake.set_granted_scope(None);

    // Refresh: a rotated refresh token is kept; an answer without one keeps the old one.
    fake.set_refresh_mode(RefreshMode::Rotate);
    let old = connected.tokens.refresh_token.clone().unwrap();
    let refreshed = snap
        .refresh(&account(None, Some(old.clone())))
        .await
        .unwrap();
    let new = refreshed.refresh_token.unwrap();
    assert_ne!(new, old);
    assert!(!fake.refresh_token_valid(&old));
    fake.set_refresh_mode(RefreshMode::Omit);
    let refreshed = snap
        .refresh(&account(None, Some(new.clone())))
        .await
        .unwrap();
    assert_eq!(
        refreshed.refresh_token, None,
        "the engine keeps the old one"
    );
    // Revoked: reconnecting is the fix. Wrong app credentials: the operator's.
    fake.revoke_access();
    let e = snap.refresh(&account(None, Some(new))).await.unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Rejected);
    let wrong = Snapchat::new(
        PlatformSettings {
            client_secret: Some("wrong".into()),
            ..connector_settings(&fake)
        },
        media(),
    );
    let e = wrong
        .refresh(&account(None, Some(fake.mint_refresh_token())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::NotConfigured);
    assert!(e.message.contains("SOKU_SNAPCHAT_CLIENT_ID"));
}

fn connector_settings(fake: &SnapchatFake) -> PlatformSettings {
    PlatformSettings {
        api_url: fake.url.clone(),
        auth_url: fake.url.clone(),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        timeout: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn a_video_story_is_encrypted_once_sent_in_parts_and_posted() {
    let fake = SnapchatFake::start().await;
    let media = media();
    let snap = connector(&fake, &media);
    let saves = Arc::new(Saves::default());
    let req = story(&fake, FILM, &saves);
    let posted = snap.publish(&req).await.unwrap();

    let uploaded = fake.media();
    assert_eq!(uploaded.len(), 1);
    let m = &uploaded[0];
    assert_eq!((m.kind.as_str(), m.finalized), ("VIDEO", true));
    // The fake decrypted the parts with the key and IV the container was made with.
    assert_eq!(m.sha256.as_deref(), Some(sha(&film()).as_str()));
    assert_eq!(m.parts.len(), 3, "20 MiB in parts of 8 MiB");
    assert!(m.parts.iter().all(|(_, size)| *size <= 31 * MIB));
    let stories = fake.stories();
    assert_eq!(stories.len(), 1);
    assert_eq!(stories[0].media_id, m.id);
    // A Story's answer names nothing: the media id names it.
    assert_eq!((posted.id.as_str(), posted.url), (m.id.as_str(), None));
    assert!(fake.bearer_tokens_seen().iter().all(|t| !t.is_empty()));
    assert!(
        fake.authorization_headers()
            .iter()
            .all(|h| h.starts_with("Bearer "))
    );

    // The text is not sent with a Story.
    assert_eq!(stories[0].body, json!({"media_id": m.id}));
    // Done is done: asked again (a retry after a crash that lost the outcome), nothing is sent.
    let saved = saves.last();
    assert_eq!(saved["post_id"], json!(m.id));
    let again = request(&fake, FILM, SnapchatPostType::Story, &saves, saved.clone());
    assert_eq!(snap.publish(&again).await.unwrap().id, m.id);
    assert!(matches!(
        snap.find_existing(&again).await.unwrap(),
        Existing::Found(p) if p.id == m.id
    ));
    assert_eq!((fake.stories().len(), fake.media().len()), (1, 1));
}

#[tokio::test]
async fn spotlights_saved_stories_and_image_stories() {
    let fake = SnapchatFake::start().await;
    let media = media();
    let snap = connector(&fake, &media);
    let saves = Arc::new(Saves::default());

    let req = request(
        &fake,
        CLIP,
        SnapchatPostType::Spotlight,
        &saves,
        Value::Null,
    );
    let posted = snap.publish(&req).await.unwrap();
    let spot = &fake.spotlights()[0];
    assert_eq!(posted.id, spot.id);
    // The description is the text when the options give none.
    assert_eq!(spot.description.as_deref(), Some("Behind the scenes #soku"));
    assert_eq!(spot.locale, "en_US");
    assert_eq!(spot.skip_save_to_profile, Some(false));

    let saves = Arc::new(Saves::default());
    let req = request(
        &fake,
        CLIP,
        SnapchatPostType::SavedStory,
        &saves,
        Value::Null,
    );
    let posted = snap.publish(&req).await.unwrap();
    let saved_story = &fake.saved_stories()[0];
    assert_eq!(posted.id, saved_story.id);
    assert_eq!(saved_story.title.as_deref(), Some("Launch week"));
    assert_eq!(saved_story.media_ids.len(), 1);

    let saves = Arc::new(Saves::default());
    let posted = snap.publish(&story(&fake, PICTURE, &saves)).await.unwrap();
    let image = fake
        .media()
        .into_iter()
        .find(|m| m.kind == "IMAGE")
        .unwrap();
    assert_eq!(image.sha256.as_deref(), Some(sha(&picture()).as_str()));
    assert_eq!(posted.id, image.id);

    // A Spotlight of a picture is refused before anything is sent.
    let calls = fake.calls("media");
    let saves = Arc::new(Saves::default());
    let req = request(
        &fake,
        PICTURE,
        SnapchatPostType::Spotlight,
        &saves,
        Value::Null,
    );
    let e = snap.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "unsupported_media")
    );
    assert_eq!(fake.calls("media"), calls);
}

#[tokio::test]
async fn a_post_refused_while_the_media_processes_is_sent_again() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    // Snap answers some logical errors with HTTP 200.
    fake.set_logical_errors_as_200(true);
    fake.set_processing_posts(2);
    let saves = Arc::new(Saves::default());
    snap.publish(&story(&fake, CLIP, &saves)).await.unwrap();
    assert_eq!(fake.calls("stories"), 3);
    assert_eq!(fake.stories().len(), 1);

    // Still processing at the end of the attempt's wait: retried later, from the post.
    let snap = Snapchat::new(connector_settings(&fake), media())
        .with_polling(Duration::from_millis(10), Duration::from_millis(50));
    fake.set_processing_posts(1000);
    let saves = Arc::new(Saves::default());
    let e = snap.publish(&story(&fake, CLIP, &saves)).await.unwrap_err();
    assert_eq!(e.code, "media_processing");
    assert!(matches!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(_)
        }
    ));
    let saved = saves.last();
    assert_eq!(
        (saved["finalized"].as_bool(), saved["post_sent"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        snap.find_existing(&request(
            &fake,
            CLIP,
            SnapchatPostType::Story,
            &saves,
            saved
        ))
        .await
        .unwrap(),
        Existing::NotFound
    );
}

#[tokio::test]
async fn a_broken_upload_goes_on_from_the_last_part_into_the_same_container() {
    let fake = SnapchatFake::start().await;
    let media = media();
    let snap = connector(&fake, &media);
    // The read breaks after the first part went out.
    *media.break_after.lock().unwrap() = Some(9 * MIB);
    let saves = Arc::new(Saves::default());
    let e = snap.publish(&story(&fake, FILM, &saves)).await.unwrap_err();
    assert!(matches!(e.class, FailureClass::Retryable { .. }), "{e:?}");
    let saved = saves.last();
    assert_eq!(saved["parts_done"], json!(1));
    assert_eq!(fake.parts_received(), 1);

    let req = request(&fake, FILM, SnapchatPostType::Story, &saves, saved);
    snap.publish(&req).await.unwrap();
    let uploaded = fake.media();
    assert_eq!(uploaded.len(), 1, "the same container");
    assert_eq!(fake.parts_received(), 3, "no part twice");
    assert_eq!(uploaded[0].sha256.as_deref(), Some(sha(&film()).as_str()));
    assert_eq!(fake.stories().len(), 1);
}

#[tokio::test]
async fn a_lost_post_answer_is_never_posted_again() {
    let fake = SnapchatFake::start().await;
    let media = media();
    let snap = connector(&fake, &media);
    fake.faults.push(
        "POST",
        &stories_path(),
        Fault::DelayAfterEffect(Duration::from_secs(4)),
    );
    let saves = Arc::new(Saves::default());
    let e = impatient(&fake, &media)
        .publish(&story(&fake, CLIP, &saves))
        .await
        .unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(fake.stories().len(), 1, "Snap made it");
    let req = request(&fake, CLIP, SnapchatPostType::Story, &saves, saves.last());
    assert_eq!(
        snap.find_existing(&req).await.unwrap(),
        Existing::CannotTell
    );
    let e = snap.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Ambiguous, "outcome_unknown")
    );
    // Another post's progress that may have posted is not posted over either.
    let other = request(&fake, FILM, SnapchatPostType::Story, &saves, saves.last());
    assert_eq!(
        snap.find_existing(&other).await.unwrap(),
        Existing::CannotTell
    );
    assert_eq!(fake.stories().len(), 1);
    assert_eq!(fake.calls("stories"), 1);

    // A 5xx to the post is as unclear; Snap saying a post of the media is in progress too.
    fake.faults.reply(
        "POST",
        &stories_path(),
        502,
        &[],
        json!({"request_status": "ERROR"}),
    );
    let saves = Arc::new(Saves::default());
    let e = snap.publish(&story(&fake, FILM, &saves)).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    assert_eq!(saves.last()["post_sent"], json!(true));
}

#[tokio::test]
async fn an_expired_container_is_uploaded_again_and_refusals_are_classified() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    // Uploaded, then the post is rate limited: nothing posted, the container kept.
    fake.faults.reply(
        "POST",
        &stories_path(),
        429,
        &[("retry-after", "3")],
        json!({"request_status": "ERROR"}),
    );
    let saves = Arc::new(Saves::default());
    let e = snap.publish(&story(&fake, CLIP, &saves)).await.unwrap_err();
    assert_eq!(
        e.class,
        FailureClass::Retryable {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    let saved = saves.last();
    assert_eq!(saved["post_sent"], json!(false));
    let first = saved["media_id"].as_str().unwrap().to_owned();

    // A day later Snap has dropped the container: the next attempt says so, the one after
    // uploads the file again.
    fake.expire_media(&first);
    let req = request(&fake, CLIP, SnapchatPostType::Story, &saves, saved);
    let e = snap.publish(&req).await.unwrap_err();
    assert_eq!(e.code, "media_expired");
    assert!(matches!(e.class, FailureClass::Retryable { .. }));
    let req = request(&fake, CLIP, SnapchatPostType::Story, &saves, saves.last());
    let posted = snap.publish(&req).await.unwrap();
    assert_ne!(posted.id, first);
    assert_eq!((fake.media().len(), fake.stories().len()), (2, 1));

    // A revoked token is `token_invalid`; a refusal is permanent with Snap's message.
    let saves = Arc::new(Saves::default());
    let mut req = story(&fake, CLIP, &saves);
    req.account.access_token = Some("not-a-token".into());
    let e = snap.publish(&req).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, TOKEN_INVALID)
    );
    fake.fail_media_processing(true);
    let e = snap.publish(&story(&fake, CLIP, &saves)).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Permanent);
    assert!(
        e.message.contains("MEDIA_PROCESSING_FAILED"),
        "{}",
        e.message
    );
    assert_eq!(saves.last()["post_sent"], json!(false));
}

#[tokio::test]
async fn an_upload_path_that_is_not_snaps_is_never_followed() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    for path in [
        "https://elsewhere.test/upload",
        "//elsewhere.test/x",
        "/us/../x?y=1",
    ] {
        fake.faults.reply(
            "POST",
            &format!("/v1/public_profiles/{PROFILE_ID}/media"),
            200,
            &[],
            json!({"request_id": "r", "request_status": "SUCCESS", "media_id": "m1",
                   "add_path": path, "finalize_path": path}),
        );
        let saves = Arc::new(Saves::default());
        let e = snap.publish(&story(&fake, CLIP, &saves)).await.unwrap_err();
        assert_eq!(
            (e.class, e.code.as_str()),
            (FailureClass::Permanent, "unexpected_response")
        );
        assert!(saves.all().is_empty(), "{path} was saved");
    }
    assert_eq!(fake.parts_received(), 0);
}

#[tokio::test]
async fn a_file_snap_refuses_to_finalize_fails_the_target_after_one_upload() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    // Snap's FINALIZE decrypts the parts and refuses a file that is not a whole MP4. The engine
    // would make five attempts: the first one's refusal is final, the file went up once.
    let saves = Arc::new(Saves::default());
    let e = attempts(&snap, &fake, DAMAGED, &saves, 5)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "upload_failed")
    );
    assert!(e.message.contains("E2005"), "{}", e.message);
    assert!(
        e.platform_error
            .as_deref()
            .is_some_and(|p| p.contains("could not decrypt the media")),
        "{:?}",
        e.platform_error
    );
    assert_eq!((fake.calls("add"), fake.calls("finalize")), (1, 1));
    assert_eq!((fake.media().len(), fake.calls("stories")), (1, 0));
    assert_eq!(
        saves.last()["media_id"],
        Value::Null,
        "nothing to go on from"
    );

    // A refusal Snap keeps giving for a good file (its size, say): one upload all the same.
    for _ in 0..5 {
        refuse_next_finalize(&fake, 400, "E1001", "Media size is too large");
    }
    let saves = Arc::new(Saves::default());
    let e = attempts(&snap, &fake, CLIP, &saves, 5).await.unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "upload_failed")
    );
    assert!(
        e.platform_error
            .as_deref()
            .is_some_and(|p| p.contains("Media size is too large")),
        "{:?}",
        e.platform_error
    );
    assert_eq!((fake.calls("add"), fake.calls("finalize")), (2, 2));
    assert_eq!(fake.calls("stories"), 0);
}

#[tokio::test]
async fn a_finalize_whose_answer_was_lost_is_sent_again_and_never_uploads_twice() {
    let fake = SnapchatFake::start().await;
    let media = media();
    // Snap finalizes, but its answer comes after the connector gave up.
    fake.push_finalize_fault(Fault::DelayAfterEffect(Duration::from_secs(4)));
    let saves = Arc::new(Saves::default());
    let e = impatient(&fake, &media)
        .publish(&story(&fake, CLIP, &saves))
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Retryable { retry_after: None }, "timeout")
    );
    let saved = saves.last();
    assert_eq!(
        (
            saved["finalize_sent"].as_bool(),
            saved["finalized"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert!(fake.media()[0].finalized, "Snap did finalize it");
    // The next attempt sends FINALIZE again; Snap refuses it (already finalized), which after a
    // lost answer is no verdict on the file: the container is posted from.
    let posted = attempts(&connector(&fake, &media), &fake, CLIP, &saves, 4)
        .await
        .unwrap();
    assert_eq!(posted.id, fake.media()[0].id);
    assert_eq!((fake.calls("add"), fake.calls("finalize")), (1, 2));
    assert_eq!((fake.media().len(), fake.stories().len()), (1, 1));

    // A 5xx to FINALIZE says nothing either; when the FINALIZE sent again is refused and the
    // post then shows that the container was never finalized, the file goes up again: once.
    let saves = Arc::new(Saves::default());
    let snap = connector(&fake, &media);
    refuse_next_finalize(&fake, 502, "E5000", "Bad gateway");
    let e = snap
        .publish(&story(&fake, DAMAGED, &saves))
        .await
        .unwrap_err();
    assert_eq!(e.code, "platform_error");
    assert_eq!(saves.last()["finalize_sent"], json!(true));
    let e = attempts(&snap, &fake, DAMAGED, &saves, 4)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class, e.code.as_str()),
        (FailureClass::Permanent, "upload_failed")
    );
    let damaged: Vec<_> = fake
        .media()
        .into_iter()
        .filter(|m| m.id != posted.id)
        .collect();
    assert_eq!(damaged.len(), 2, "one upload again, no more");
    assert!(damaged.iter().all(|m| !m.finalized));
    assert_eq!(fake.calls("add"), 3);
    assert_eq!(fake.stories().len(), 1);
}

#[tokio::test]
async fn a_container_snap_has_dropped_is_replaced() {
    let fake = SnapchatFake::start().await;
    let media = media();
    let snap = connector(&fake, &media);
    // A container Snap dropped while parts were still going up: a new one next time.
    *media.break_after.lock().unwrap() = Some(9 * MIB);
    let saves = Arc::new(Saves::default());
    snap.publish(&story(&fake, FILM, &saves)).await.unwrap_err();
    let saved = saves.last();
    fake.expire_media(saved["media_id"].as_str().unwrap());
    let req = request(&fake, FILM, SnapchatPostType::Story, &saves, saved);
    let e = snap.publish(&req).await.unwrap_err();
    assert_eq!(e.code, "media_expired");
    assert_eq!(saves.last()["media_id"], Value::Null);
    let req = request(&fake, FILM, SnapchatPostType::Story, &saves, saves.last());
    snap.publish(&req).await.unwrap();
    let film = fake
        .media()
        .into_iter()
        .filter(|m| m.finalized && m.plaintext_len == Some(film().len()))
        .count();
    assert_eq!(film, 1);
    assert_eq!(fake.stories().len(), 1);
}

#[tokio::test]
async fn the_lookup_after_a_lost_answer_sees_the_post_marked_sent_by_the_same_attempt() {
    let fake = SnapchatFake::start().await;
    let snap = impatient(&fake, &media());
    fake.faults.push(
        "POST",
        &stories_path(),
        Fault::DelayAfterEffect(Duration::from_secs(4)),
    );
    let saves = Arc::new(Saves::default());
    let req = story(&fake, CLIP, &saves);
    let e = snap.publish(&req).await.unwrap_err();
    assert_eq!(e.class, FailureClass::Ambiguous);
    // What the engine asks: the same request, its progress as it stands now.
    let now = PublishRequest {
        progress: req.progress.current(),
        ..req.clone()
    };
    assert_eq!(
        snap.find_existing(&now).await.unwrap(),
        Existing::CannotTell
    );
}

#[tokio::test]
async fn a_token_answer_of_the_wrong_shape_names_the_field_and_never_the_tokens() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    let token_path = "/login/oauth2/access_token";
    let code = |c: &str| CodeExchange {
        code: c.to_owned(),
        redirect_uri: REDIRECT_URI.into(),
        code_verifier: String::new(),
        pending: Value::Null,
    };
    for (answer, field) in [
        (
            json!({"access_token": ["SNAPSECRET-access"], "expires_in": "in an hour",
                   "refresh_token": "SNAPSECRET-refresh"}),
            "`access_token`: expected a string, found a sequence",
        ),
        (
            json!({"access_token": 123456, "refresh_token": "SNAPSECRET-refresh"}),
            "`access_token`: expected a string, found an integer",
        ),
        (
            json!({"access_token": {"v": "SNAPSECRET-access"}, "refresh_token": "SNAPSECRET-refresh"}),
            "`access_token`: expected a string, found a map",
        ),
    ] {
        // The code exchange and the refresh read the answer alike.
        fake.faults
            .reply("POST", token_path, 200, &[], answer.clone());
        let connecting = snap.exchange(&code("c1")).await.unwrap_err();
        fake.faults.reply("POST", token_path, 200, &[], answer);
        let refreshing = snap
            .refresh(&account(None, Some(fake.mint_refresh_token())))
            .await
            .unwrap_err();
        for e in [connecting, refreshing] {
            assert_eq!(e.kind, ConnectErrorKind::Unavailable, "{e:?}");
            assert!(e.message.contains(field), "{}", e.message);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("SNAPSECRET"), "{shown}");
        }
    }
    // A refusal that echoes the request (a proxy's debugging page) keeps its words, not the
    // refresh token or the client secret.
    fake.faults.push(
        "POST",
        token_path,
        Fault::Reply {
            status: 502,
            headers: vec![],
            body: "<pre>grant_type=refresh_token&refresh_token=SNAPSECRET-refresh&client_secret=SNAPSECRET-app</pre>".into(),
        },
    );
    let e = snap
        .refresh(&account(None, Some(fake.mint_refresh_token())))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ConnectErrorKind::Unavailable);
    let kept = e.platform_error.clone().unwrap();
    assert!(kept.contains("grant_type=refresh_token"), "{kept}");
    assert!(!format!("{e} {e:?}").contains("SNAPSECRET"), "{e:?}");
}

#[tokio::test]
async fn a_token_answer_without_a_lifetime_is_taken_to_live_snaps_thirty_minutes() {
    let fake = SnapchatFake::start().await;
    let snap = connector(&fake, &media());
    fake.omit_expires_in(true);
    let start = snap
        .authorize(&AuthorizationRequest {
            state: "st1".into(),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: "unused".into(),
            params: Value::Null,
        })
        .await
        .unwrap();
    let (_, cb) = approve(&start.url).await;
    let connected = snap
        .exchange(&CodeExchange {
            code: cb["code"].clone(),
            redirect_uri: REDIRECT_URI.into(),
            code_verifier: String::new(),
            pending: Value::Null,
        })
        .await
        .unwrap();
    let refreshed = snap
        .refresh(&account(None, connected.tokens.refresh_token.clone()))
        .await
        .unwrap();
    for tokens in [connected.tokens, refreshed] {
        // Recorded with an expiry, so that the refresher renews it ahead (10 minutes) like any
        // other; without one it would only be renewed once Snap refused it.
        let left = tokens.expires_at.expect("an expiry") - chrono::Utc::now();
        assert!((1790..=1800).contains(&left.num_seconds()), "{left}");
        assert_eq!(ASSUMED_TOKEN_LIFETIME, Duration::from_secs(1800));
        assert!(left.to_std().unwrap() > snap.refresh_ahead() + Duration::from_secs(600));
    }
}
