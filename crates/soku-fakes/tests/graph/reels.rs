//! Page reels and stories: the upload sessions, the upload host, status, finish, listings.

use crate::http::{Resp, get, post, request};
use soku_fakes::graph::{GraphFake, PAGE_ID, PAGE2_ID, UPLOAD_PATH, VideoKind};

async fn setup() -> (GraphFake, String, String) {
    let g = GraphFake::start().await;
    let user = g.grant_token(&[
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_posts",
    ]);
    let page = g.page_token(&user, PAGE_ID);
    (g, user, page)
}

async fn start(g: &GraphFake, edge: &str, token: &str) -> (String, String) {
    let r = post(
        g,
        &format!("{PAGE_ID}/{edge}"),
        token,
        &[("upload_phase", "start")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    (
        r.body["video_id"].as_str().unwrap().to_owned(),
        r.body["upload_url"].as_str().unwrap().to_owned(),
    )
}

async fn upload(url: &str, token: &str, file_url: &str) -> Resp {
    let auth = format!("OAuth {token}");
    request(
        "POST",
        url,
        &[("Authorization", &auth), ("file_url", file_url)],
        None,
    )
    .await
}

async fn finish(g: &GraphFake, edge: &str, token: &str, extra: &[(&str, &str)]) -> Resp {
    let mut pairs = vec![("upload_phase", "finish")];
    pairs.extend_from_slice(extra);
    post(g, &format!("{PAGE_ID}/{edge}"), token, &pairs).await
}

async fn phases(g: &GraphFake, video: &str, token: &str) -> serde_json::Value {
    let r = get(g, &format!("{video}?fields=status"), token).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["status"].clone()
}

#[tokio::test]
async fn a_reel_goes_from_session_to_listed_reel_post_and_video() {
    let (g, _, page) = setup().await;
    g.set_video_polls(1);
    let (video, upload_url) = start(&g, "video_reels", &page).await;
    assert_eq!(
        upload_url,
        format!("{}/{UPLOAD_PATH}/{}/{video}", g.url, g.version)
    );
    assert_eq!(g.reels_started(), 1);
    let st = phases(&g, &video, &page).await;
    assert_eq!(st["video_status"], "uploading");
    assert_eq!(st["uploading_phase"]["status"], "not_started");

    let up = upload(&upload_url, &page, "https://cdn.test/reel.mp4").await;
    assert_eq!(up.status, 200, "{up:?}");
    assert_eq!(up.body, serde_json::json!({ "success": true }));
    assert_eq!(g.reels_uploaded(), 1);

    let st = phases(&g, &video, &page).await;
    assert_eq!(st["video_status"], "processing");
    assert_eq!(st["uploading_phase"]["status"], "complete");
    assert_eq!(st["processing_phase"]["status"], "in_progress");

    let done = finish(
        &g,
        "video_reels",
        &page,
        &[
            ("video_id", &video),
            ("video_state", "PUBLISHED"),
            ("description", "A reel [m:7]"),
        ],
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body, serde_json::json!({ "success": true }));
    assert_eq!(g.reels_published(), 1);

    let st = phases(&g, &video, &page).await;
    assert_eq!(st["video_status"], "ready");
    assert_eq!(st["publishing_phase"]["status"], "complete");
    assert_eq!(st["publishing_phase"]["publish_status"], "published");

    let reels = get(
        &g,
        &format!("{PAGE_ID}/video_reels?fields=id,description,created_time"),
        &page,
    )
    .await;
    assert_eq!(reels.body["data"][0]["id"], video.as_str(), "{reels:?}");
    assert_eq!(reels.body["data"][0]["description"], "A reel [m:7]");
    let posts = get(&g, &format!("{PAGE_ID}/posts?fields=id,message"), &page).await;
    assert_eq!(
        posts.body["data"][0]["id"],
        format!("{PAGE_ID}_{video}").as_str()
    );
    let videos = get(&g, &format!("{PAGE_ID}/videos?fields=id"), &page).await;
    assert_eq!(videos.body["data"][0]["id"], video.as_str());

    let reel = &g.reels()[0];
    assert_eq!(reel.kind, VideoKind::Reel);
    assert_eq!(reel.file_url, "https://cdn.test/reel.mp4");
    assert_eq!(reel.finished.as_deref(), Some("PUBLISHED"));
    // The lower-case form of the guides and the spec's upper case are both taken.
    let r = post(
        &g,
        &format!("{PAGE_ID}/video_reels"),
        &page,
        &[("upload_phase", "START")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test]
async fn a_video_story_and_a_photo_story_are_listed_in_stories() {
    let (g, _, page) = setup().await;
    g.set_video_polls(0);
    let (video, upload_url) = start(&g, "video_stories", &page).await;
    assert_eq!(
        upload(&upload_url, &page, "https://cdn.test/story.mp4")
            .await
            .status,
        200
    );
    let done = finish(&g, "video_stories", &page, &[("video_id", &video)]).await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.body["success"], true);
    let video_post = done.body["post_id"].as_str().unwrap().to_owned();

    let photo = post(
        &g,
        &format!("{PAGE_ID}/photos"),
        &page,
        &[("url", "https://cdn.test/s.jpg"), ("published", "false")],
    )
    .await
    .id();
    let ps = post(
        &g,
        &format!("{PAGE_ID}/photo_stories"),
        &page,
        &[("photo_id", &photo)],
    )
    .await;
    assert_eq!(ps.status, 200, "{ps:?}");
    assert_eq!(ps.body["success"], true);
    let photo_post = ps.body["post_id"].as_str().unwrap().to_owned();
    // The same photo cannot make a second story, nor go into a feed post.
    let again = post(
        &g,
        &format!("{PAGE_ID}/photo_stories"),
        &page,
        &[("photo_id", &photo)],
    )
    .await;
    assert_eq!(again.code(), (100, None));
    // A published photo cannot make a story.
    let published = post(
        &g,
        &format!("{PAGE_ID}/photos"),
        &page,
        &[("url", "https://cdn.test/p.jpg")],
    )
    .await
    .id();
    let r = post(
        &g,
        &format!("{PAGE_ID}/photo_stories"),
        &page,
        &[("photo_id", &published)],
    )
    .await;
    assert_eq!(r.code(), (100, None));

    let list = get(&g, &format!("{PAGE_ID}/stories"), &page).await;
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{list:?}");
    assert_eq!(data[0]["post_id"], photo_post.as_str());
    assert_eq!(data[0]["media_type"], "photo");
    assert_eq!(data[0]["media_id"], photo.as_str());
    assert_eq!(data[1]["post_id"], video_post.as_str());
    assert_eq!(data[1]["media_type"], "video");
    assert_eq!(data[1]["status"], "PUBLISHED");
    assert!(data[1]["creation_time"].is_string());
    assert_eq!(g.stories_published(), 2);
    assert_eq!(g.stories().len(), 2);
    // Stories are not reels, videos or posts.
    assert_eq!(g.reels_published(), 0);
    let videos = get(&g, &format!("{PAGE_ID}/videos"), &page).await;
    assert!(videos.body["data"].as_array().unwrap().is_empty());
    // A story is not a reel session and the other way round.
    let (reel, _) = start(&g, "video_reels", &page).await;
    let r = finish(&g, "video_stories", &page, &[("video_id", &reel)]).await;
    assert_eq!(r.code(), (100, None));
}

#[tokio::test]
async fn finishing_early_or_unknown_and_uploading_wrongly_are_refused() {
    let (g, user, page) = setup().await;
    let (video, upload_url) = start(&g, "video_reels", &page).await;
    // Before the upload.
    let r = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &video), ("video_state", "PUBLISHED")],
    )
    .await;
    assert_eq!(r.code(), (100, None));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upload_url")
    );
    // Unknown video id.
    let r = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", "999"), ("video_state", "PUBLISHED")],
    )
    .await;
    assert_eq!(r.code(), (100, None));
    // No upload_phase; a bad one.
    let r = post(&g, &format!("{PAGE_ID}/video_reels"), &page, &[]).await;
    assert_eq!(r.code(), (100, None));
    let r = post(
        &g,
        &format!("{PAGE_ID}/video_reels"),
        &page,
        &[("upload_phase", "transfer")],
    )
    .await;
    assert_eq!(r.code(), (100, None));
    // The local-file variant, no token, a user token, a Bearer token on the upload host.
    let auth = format!("OAuth {page}");
    let local = request(
        "POST",
        &upload_url,
        &[
            ("Authorization", &auth),
            ("offset", "0"),
            ("file_size", "4"),
        ],
        Some("abcd"),
    )
    .await;
    assert_eq!(local.code(), (100, None));
    assert!(
        local.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hosted files only")
    );
    let anon = request(
        "POST",
        &upload_url,
        &[("file_url", "https://cdn.test/a.mp4")],
        None,
    )
    .await;
    assert_eq!(anon.code().0, 104);
    let as_user = upload(&upload_url, &user, "https://cdn.test/a.mp4").await;
    assert_eq!(as_user.code(), (200, None));
    let bearer = format!("Bearer {page}");
    let r = request(
        "POST",
        &upload_url,
        &[
            ("Authorization", &bearer),
            ("file_url", "https://cdn.test/a.mp4"),
        ],
        None,
    )
    .await;
    assert_eq!(r.code().0, 104);
    // Another version, another video.
    let r = upload(
        &format!("{}/{UPLOAD_PATH}/v1.0/{video}", g.url),
        &page,
        "https://cdn.test/a.mp4",
    )
    .await;
    assert_eq!(r.code().0, 2500);
    let r = upload(
        &format!("{}/{UPLOAD_PATH}/{}/12345", g.url, g.version),
        &page,
        "https://cdn.test/a.mp4",
    )
    .await;
    assert_eq!(r.code(), (100, Some(33)));
    assert_eq!(g.reels_uploaded(), 0);
    // Finish needs a video_state for reels; SCHEDULED is not implemented.
    assert_eq!(
        upload(&upload_url, &page, "https://cdn.test/a.mp4")
            .await
            .status,
        200
    );
    let r = finish(&g, "video_reels", &page, &[("video_id", &video)]).await;
    assert_eq!(r.code(), (100, None));
    let r = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &video), ("video_state", "SCHEDULED")],
    )
    .await;
    assert_eq!(r.code(), (100, None));
    // A draft is finished but not published, listed nowhere, and uses no quota.
    let r = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &video), ("video_state", "DRAFT")],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(g.reels_published(), 0);
    let r = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &video), ("video_state", "PUBLISHED")],
    )
    .await;
    assert_eq!(r.code(), (100, None), "finished twice");
    let reels = get(&g, &format!("{PAGE_ID}/video_reels"), &page).await;
    assert!(reels.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn tokens_and_permissions_are_checked_as_for_page_publishing() {
    let (g, user, page) = setup().await;
    // A user token, another Page's token.
    let r = post(
        &g,
        &format!("{PAGE_ID}/video_reels"),
        &user,
        &[("upload_phase", "start")],
    )
    .await;
    assert_eq!(r.code(), (200, None));
    let other = g.page_token(&user, PAGE2_ID);
    let r = post(
        &g,
        &format!("{PAGE_ID}/video_stories"),
        &other,
        &[("upload_phase", "start")],
    )
    .await;
    assert_eq!(r.code(), (200, None));
    // A reel session of PAGE_ID cannot be uploaded with PAGE2's token.
    let (_, upload_url) = start(&g, "video_reels", &page).await;
    let r = upload(&upload_url, &other, "https://cdn.test/a.mp4").await;
    assert_eq!(r.code(), (200, None));
    // pages_show_list is needed too (the guides list all three permissions).
    g.revoke_permission("pages_show_list");
    let r = post(
        &g,
        &format!("{PAGE_ID}/video_reels"),
        &page,
        &[("upload_phase", "start")],
    )
    .await;
    assert_eq!(r.code(), (200, None));
    let r = upload(&upload_url, &page, "https://cdn.test/a.mp4").await;
    assert_eq!(r.code(), (200, None));
    let r = post(
        &g,
        &format!("{PAGE_ID}/photo_stories"),
        &page,
        &[("photo_id", "1")],
    )
    .await;
    assert_eq!(r.code(), (200, None));
    assert_eq!(g.reels_started(), 1);
}

#[tokio::test]
async fn the_reels_quota_counts_the_last_24_hours() {
    let (g, _, page) = setup().await;
    g.set_video_polls(0);
    g.set_reels_quota(3);
    g.record_api_reels(PAGE_ID, 2);
    g.record_api_reels(PAGE2_ID, 5);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (video, url) = start(&g, "video_reels", &page).await;
        assert_eq!(
            upload(&url, &page, "https://cdn.test/q.mp4").await.status,
            200
        );
        ids.push(video);
    }
    let ok = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &ids[0]), ("video_state", "PUBLISHED")],
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let over = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &ids[1]), ("video_state", "PUBLISHED")],
    )
    .await;
    assert_eq!(over.code(), (9, None));
    assert!(
        over.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("30 API-published posts within a 24-hour moving period")
    );
    // Starting and uploading are not limited; a draft still finishes.
    let draft = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &ids[1]), ("video_state", "DRAFT")],
    )
    .await;
    assert_eq!(draft.status, 200);
    assert_eq!(g.reels_published(), 1);
    assert_eq!(soku_fakes::graph::DEFAULT_REELS_QUOTA, 30);
}

#[tokio::test]
async fn failed_processing_and_unfetchable_files_are_reported() {
    let (g, _, page) = setup().await;
    g.set_video_polls(0);
    g.fail_next_video(1363008, "Resolution too low");
    let (video, url) = start(&g, "video_reels", &page).await;
    assert_eq!(
        upload(&url, &page, "https://cdn.test/low.mp4").await.status,
        200
    );
    let st = phases(&g, &video, &page).await;
    assert_eq!(st["video_status"], "error");
    assert_eq!(st["processing_phase"]["errors"][0]["code"], 1363008);
    let r = finish(
        &g,
        "video_reels",
        &page,
        &[("video_id", &video), ("video_state", "PUBLISHED")],
    )
    .await;
    assert_eq!(r.code(), (1363008, None));

    // With fetching on, the file must answer 200.
    let media = soku_fakes::Fake::serve(
        axum::Router::new().route("/ok.mp4", axum::routing::get(|| async { "video" })),
        soku_fakes::Faults::default(),
    )
    .await;
    g.fetch_media(true);
    let (video, url) = start(&g, "video_stories", &page).await;
    let missing = format!("{}/missing.mp4", media.url);
    let r = upload(&url, &page, &missing).await;
    assert_eq!(r.code(), (6000, None));
    let present = format!("{}/ok.mp4", media.url);
    assert_eq!(upload(&url, &page, &present).await.status, 200);
    let fetched = g.fetched();
    assert_eq!(fetched[0], (missing, Ok(404)));
    assert_eq!(fetched[1], (present, Ok(200)));
    let done = finish(&g, "video_stories", &page, &[("video_id", &video)]).await;
    assert_eq!(done.status, 200, "{done:?}");
}
