//! The flows the connectors will run, against the fake over HTTP.

use crate::http::{Resp, get, post, request};
use axum::Router;
use axum::routing::get as route_get;
use serde_json::Value;
use soku_fakes::graph::{
    AppUsage, GraphFake, IG_USER_ID, IG_USERNAME, LONG_LIVED_EXPIRES_IN, PAGE_ID, PAGE2_ID,
    PUBLISHING_PERMISSIONS, REDIRECT_URI, Revocation, Throttle, encode,
};
use soku_fakes::{Fake, Faults};
use std::time::Duration;

async fn setup() -> (GraphFake, String, String) {
    let g = GraphFake::start().await;
    let user = g.grant_token(PUBLISHING_PERMISSIONS);
    let page = g.page_token(&user, PAGE_ID);
    (g, user, page)
}

async fn status(g: &GraphFake, container: &str, token: &str) -> (String, Option<String>) {
    let r = get(g, &format!("{container}?fields=status_code,status"), token).await;
    assert_eq!(r.status, 200, "{r:?}");
    (
        r.body["status_code"].as_str().unwrap().to_owned(),
        r.body["status"].as_str().map(str::to_owned),
    )
}

async fn publish(g: &GraphFake, container: &str, token: &str) -> Resp {
    post(
        g,
        &format!("{IG_USER_ID}/media_publish"),
        token,
        &[("creation_id", container)],
    )
    .await
}

/// Every error has the documented envelope.
fn assert_envelope(r: &Resp) {
    let e = &r.body["error"];
    assert!(e["message"].is_string(), "{r:?}");
    assert!(e["type"].is_string());
    assert!(e["code"].is_i64());
    assert!(e["fbtrace_id"].is_string());
    assert!(e["is_transient"].is_boolean());
}

fn query_param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1.split('#').next()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            v.replace("%2C", ",")
                .replace("%3A", ":")
                .replace("%2F", "/")
        })
    })
}

#[tokio::test]
async fn login_exchanges_and_lists_pages_with_their_instagram_accounts() {
    let g = GraphFake::start().await;
    let url = g.authorize_url(REDIRECT_URI, "st4te", PUBLISHING_PERMISSIONS);
    let r = request("GET", &url, &[], None).await;
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with(REDIRECT_URI));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st4te"));
    let code = query_param(&location, "code").unwrap();

    let exchange = |q: String| {
        let g = &g;
        async move {
            request(
                "GET",
                &format!("{}/oauth/access_token?{q}", g.base()),
                &[],
                None,
            )
            .await
        }
    };
    let base = format!(
        "client_id=test-client-id&client_secret=test-client-secret&redirect_uri={}",
        encode(REDIRECT_URI)
    );
    let bad = exchange(format!("client_id=test-client-id&client_secret=test-client-secret&redirect_uri=https%3A%2F%2Fother.test%2F&code={code}")).await;
    assert_eq!(bad.code().0, 100);
    let short = exchange(format!("{base}&code={code}")).await;
    assert_eq!(short.status, 200, "{short:?}");
    assert_eq!(short.body["token_type"], "bearer");
    let short = short.body["access_token"].as_str().unwrap().to_owned();
    let again = exchange(format!("{base}&code={code}")).await;
    assert_eq!(again.code(), (100, Some(36009)));

    let long = exchange(format!(
        "grant_type=fb_exchange_token&client_id=test-client-id&client_secret=test-client-secret&fb_exchange_token={short}"
    ))
    .await;
    assert_eq!(long.body["expires_in"], LONG_LIVED_EXPIRES_IN);
    let long = long.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(g.exchange_calls(), 1);
    let wrong_secret = exchange(format!(
        "grant_type=fb_exchange_token&client_id=test-client-id&client_secret=nope&fb_exchange_token={short}"
    ))
    .await;
    assert_eq!(wrong_secret.code().0, 1);

    let accounts = get(
        &g,
        "me/accounts?fields=id,name,access_token,tasks,instagram_business_account{id,username}",
        &long,
    )
    .await;
    let data = accounts.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{accounts:?}");
    assert_eq!(data[0]["id"], PAGE_ID);
    assert_eq!(data[0]["instagram_business_account"]["id"], IG_USER_ID);
    assert_eq!(
        data[0]["instagram_business_account"]["username"],
        IG_USERNAME
    );
    assert!(
        data[0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "CREATE_CONTENT")
    );
    assert!(data[1].get("instagram_business_account").is_none());
    let page_token = data[0]["access_token"].as_str().unwrap().to_owned();
    // The Page token of a long-lived user token does not expire.
    let issued = g
        .tokens()
        .into_iter()
        .find(|t| t.token == page_token)
        .unwrap();
    assert!(issued.expires_at.is_none());
    // The same Page token on the next call.
    let again = get(&g, "me/accounts?fields=access_token", &long).await;
    assert_eq!(again.body["data"][0]["access_token"], page_token.as_str());

    let ig = get(
        &g,
        &format!("{IG_USER_ID}?fields=id,username,name,profile_picture_url"),
        &page_token,
    )
    .await;
    assert_eq!(ig.body["username"], IG_USERNAME);
    let linked = get(
        &g,
        &format!("{PAGE_ID}?fields=instagram_business_account"),
        &page_token,
    )
    .await;
    assert_eq!(linked.body["instagram_business_account"]["id"], IG_USER_ID);
    assert_eq!(linked.body["id"], PAGE_ID);
}

#[tokio::test]
async fn a_cancelled_login_redirects_with_the_documented_error() {
    let g = GraphFake::start().await;
    g.deny_next_login();
    let r = request(
        "GET",
        &g.authorize_url(REDIRECT_URI, "s", &["pages_show_list"]),
        &[],
        None,
    )
    .await;
    let location = r.header("location").unwrap();
    assert!(location.contains(
        "error_reason=user_denied&error=access_denied&error_description=Permissions+error."
    ));
    assert!(location.contains("state=s"));
    let unknown = request(
        "GET",
        &g.authorize_url("https://evil.test/cb", "s", &[]),
        &[],
        None,
    )
    .await;
    assert_eq!(unknown.code().0, 191);
}

#[tokio::test]
async fn an_image_goes_from_container_to_published_media() {
    let (g, _, page) = setup().await;
    g.set_container_polls(2);
    let c = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[
            ("image_url", "https://cdn.test/a.jpg"),
            ("caption", "Hello #soku [m:1]"),
            ("alt_text", "a cat"),
        ],
    )
    .await
    .id();
    assert!(c.parse::<u64>().is_ok(), "container ids are numeric");
    assert_eq!(status(&g, &c, &page).await.0, "IN_PROGRESS");
    // Too early: 9007 / 2207027.
    let early = publish(&g, &c, &page).await;
    assert_eq!(early.code(), (9007, Some(2207027)));
    assert_envelope(&early);
    assert!(early.body["error"]["error_user_title"].is_string());
    assert_eq!(status(&g, &c, &page).await.0, "IN_PROGRESS");
    assert_eq!(status(&g, &c, &page).await.0, "FINISHED");
    let m = publish(&g, &c, &page).await.id();
    assert_eq!(status(&g, &c, &page).await.0, "PUBLISHED");
    assert_eq!(publish(&g, &c, &page).await.code(), (24, Some(2207006)));
    assert_eq!(g.publishes(), 1);
    assert_eq!(g.containers_created(), 1);

    let older = g.insert_media(IG_USER_ID, Some("older"), Duration::from_secs(3600), false);
    let list = get(
        &g,
        &format!("{IG_USER_ID}/media?fields=id,caption,timestamp,permalink,media_type"),
        &page,
    )
    .await;
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], m.as_str(), "newest first");
    assert_eq!(data[0]["caption"], "Hello #soku [m:1]");
    assert_eq!(data[0]["media_type"], "IMAGE");
    assert_eq!(data[1]["id"], older.as_str());
    let one = get(
        &g,
        &format!("{m}?fields=permalink,media_product_type"),
        &page,
    )
    .await;
    assert!(
        one.body["permalink"]
            .as_str()
            .unwrap()
            .starts_with("https://www.instagram.com/p/")
    );
    assert_eq!(one.body["media_product_type"], "FEED");
    // Paging: one per page, the cursor leads to the older one.
    let first = get(&g, &format!("{IG_USER_ID}/media?limit=1"), &page).await;
    let after = first.body["paging"]["cursors"]["after"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = get(
        &g,
        &format!("{IG_USER_ID}/media?limit=1&after={after}"),
        &page,
    )
    .await;
    assert_eq!(second.body["data"][0]["id"], older.as_str());

    let limit = get(
        &g,
        &format!("{IG_USER_ID}/content_publishing_limit?fields=config,quota_usage"),
        &page,
    )
    .await;
    assert_eq!(limit.body["data"][0]["quota_usage"], 1);
    assert_eq!(limit.body["data"][0]["config"]["quota_total"], 50);
    assert_eq!(limit.body["data"][0]["config"]["quota_duration"], 86400);
}

#[tokio::test]
async fn a_carousel_takes_two_to_ten_children() {
    let (g, _, page) = setup().await;
    g.set_container_polls(0);
    let media = format!("{IG_USER_ID}/media");
    let a = post(
        &g,
        &media,
        &page,
        &[
            ("image_url", "https://cdn.test/1.jpg"),
            ("is_carousel_item", "true"),
        ],
    )
    .await
    .id();
    let b = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "VIDEO"),
            ("video_url", "https://cdn.test/2.mp4"),
            ("is_carousel_item", "true"),
        ],
    )
    .await
    .id();
    let stray = post(
        &g,
        &media,
        &page,
        &[("image_url", "https://cdn.test/4.jpg"), ("children", &a)],
    )
    .await;
    assert_eq!(stray.code().0, 100);
    let captioned = post(
        &g,
        &media,
        &page,
        &[
            ("image_url", "https://cdn.test/3.jpg"),
            ("is_carousel_item", "true"),
            ("caption", "no"),
        ],
    )
    .await;
    assert_eq!(captioned.code().0, 100);
    let one = post(
        &g,
        &media,
        &page,
        &[("media_type", "CAROUSEL"), ("children", &a)],
    )
    .await;
    assert_eq!(one.code(), (100, Some(2207028)));
    let eleven = vec![a.clone(); 11].join(",");
    let too_many = post(
        &g,
        &media,
        &page,
        &[("media_type", "CAROUSEL"), ("children", &eleven)],
    )
    .await;
    assert_eq!(too_many.code(), (100, Some(2207028)));
    let children = format!("{a},{b}");
    let c = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "CAROUSEL"),
            ("children", &children),
            ("caption", "two"),
        ],
    )
    .await
    .id();
    // A carousel item is not published on its own.
    assert_eq!(publish(&g, &a, &page).await.code().0, 100);
    assert_eq!(status(&g, &c, &page).await.0, "FINISHED");
    let m = publish(&g, &c, &page).await.id();
    let read = get(&g, &format!("{m}?fields=media_type,caption"), &page).await;
    assert_eq!(read.body["media_type"], "CAROUSEL_ALBUM");
    assert_eq!(g.media().last().unwrap().children.len(), 2);
    // Used children cannot make another carousel.
    let reuse = post(
        &g,
        &media,
        &page,
        &[("media_type", "CAROUSEL"), ("children", &children)],
    )
    .await;
    assert_eq!(reuse.code().0, 100);
}

#[tokio::test]
async fn a_reel_is_polled_until_finished() {
    let (g, _, page) = setup().await;
    g.set_container_polls(3);
    let media = format!("{IG_USER_ID}/media");
    // VIDEO is no longer a single-post media type.
    let video = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "VIDEO"),
            ("video_url", "https://cdn.test/r.mp4"),
        ],
    )
    .await;
    assert_eq!(video.code(), (100, Some(2207023)));
    let bad_trial = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "REELS"),
            ("video_url", "https://cdn.test/r.mp4"),
            ("trial_params", "{\"graduation_strategy\":\"SOMETIME\"}"),
        ],
    )
    .await;
    assert_eq!(bad_trial.code().0, 100);
    let c = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "REELS"),
            ("video_url", "https://cdn.test/r.mp4"),
            ("caption", "reel"),
            ("share_to_feed", "true"),
            ("cover_url", "https://cdn.test/cover.jpg"),
            ("thumb_offset", "1500"),
            ("trial_params", "{\"graduation_strategy\":\"MANUAL\"}"),
        ],
    )
    .await
    .id();
    for _ in 0..3 {
        assert_eq!(status(&g, &c, &page).await.0, "IN_PROGRESS");
    }
    assert_eq!(status(&g, &c, &page).await.0, "FINISHED");
    assert_eq!(g.status_reads(), 4);
    let m = publish(&g, &c, &page).await.id();
    let read = get(
        &g,
        &format!("{m}?fields=media_type,media_product_type,permalink"),
        &page,
    )
    .await;
    assert_eq!(read.body["media_type"], "VIDEO");
    assert_eq!(read.body["media_product_type"], "REELS");
    assert!(read.body["permalink"].as_str().unwrap().contains("/reel/"));
    let container = g.containers().into_iter().find(|x| x.id == c).unwrap();
    assert_eq!(container.trial_graduation.as_deref(), Some("MANUAL"));
    assert_eq!(container.thumb_offset, Some(1500));

    // Time-based processing.
    g.set_container_processing_time(Some(Duration::from_millis(200)));
    let t = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "REELS"),
            ("video_url", "https://cdn.test/t.mp4"),
        ],
    )
    .await
    .id();
    assert_eq!(status(&g, &t, &page).await.0, "IN_PROGRESS");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(status(&g, &t, &page).await.0, "FINISHED");
}

#[tokio::test]
async fn stories_publish_but_are_not_listed_in_media() {
    let (g, _, page) = setup().await;
    g.set_container_polls(0);
    let c = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[
            ("media_type", "STORIES"),
            ("image_url", "https://cdn.test/s.jpg"),
        ],
    )
    .await
    .id();
    let m = publish(&g, &c, &page).await.id();
    let read = get(&g, &format!("{m}?fields=media_product_type"), &page).await;
    assert_eq!(read.body["media_product_type"], "STORY");
    let list = get(&g, &format!("{IG_USER_ID}/media"), &page).await;
    assert!(list.body["data"].as_array().unwrap().is_empty());
    let stories = get(
        &g,
        &format!("{IG_USER_ID}/stories?fields=id,media_type"),
        &page,
    )
    .await;
    assert_eq!(stories.body["data"][0]["id"], m.as_str());
    assert_eq!(stories.body["data"][0]["media_type"], "IMAGE");
}

#[tokio::test]
async fn failed_expired_and_over_quota_containers_answer_the_documented_errors() {
    let (g, _, page) = setup().await;
    g.set_container_polls(0);
    let media = format!("{IG_USER_ID}/media");
    g.fail_next_container(2207026);
    let bad = post(
        &g,
        &media,
        &page,
        &[
            ("media_type", "REELS"),
            ("video_url", "https://cdn.test/bad.mov"),
        ],
    )
    .await
    .id();
    assert_eq!(
        status(&g, &bad, &page).await,
        ("ERROR".into(), Some("2207026".into()))
    );
    assert_eq!(publish(&g, &bad, &page).await.code(), (352, Some(2207026)));

    let old = post(
        &g,
        &media,
        &page,
        &[("image_url", "https://cdn.test/o.jpg")],
    )
    .await
    .id();
    g.expire_container(&old);
    assert_eq!(status(&g, &old, &page).await.0, "EXPIRED");
    let expired = publish(&g, &old, &page).await;
    assert_eq!(expired.code(), (-2, Some(2207020)));
    assert_eq!(expired.body["error"]["is_transient"], true);

    let long = "x".repeat(2201);
    assert_eq!(
        post(
            &g,
            &media,
            &page,
            &[("image_url", "https://cdn.test/c.jpg"), ("caption", &long)]
        )
        .await
        .code(),
        (36004, Some(2207010))
    );
    let tags = (0..31)
        .map(|i| format!("#t{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        post(
            &g,
            &media,
            &page,
            &[("image_url", "https://cdn.test/c.jpg"), ("caption", &tags)]
        )
        .await
        .code(),
        (100, None)
    );

    g.set_quota_total(2);
    g.record_api_publishes(IG_USER_ID, 2);
    let limit = get(
        &g,
        &format!("{IG_USER_ID}/content_publishing_limit?fields=quota_usage,config"),
        &page,
    )
    .await;
    assert_eq!(limit.body["data"][0]["quota_usage"], 2);
    assert_eq!(limit.body["data"][0]["config"]["quota_total"], 2);
    let c = post(
        &g,
        &media,
        &page,
        &[("image_url", "https://cdn.test/q.jpg")],
    )
    .await
    .id();
    let over = publish(&g, &c, &page).await;
    assert_eq!(over.code(), (9, Some(2207042)));
    assert_envelope(&over);
    g.set_quota_total(3);
    publish(&g, &c, &page).await.id();
    // `since` is no older than 24 hours.
    let old_since = get(
        &g,
        &format!("{IG_USER_ID}/content_publishing_limit?since=1000"),
        &page,
    )
    .await;
    assert_eq!(old_since.code().0, 100);
}

#[tokio::test]
async fn with_fetching_on_media_must_answer_200() {
    let (g, _, page) = setup().await;
    g.set_container_polls(0);
    g.fetch_media(true);
    let media_host = Fake::serve(
        Router::new().route("/ok.jpg", route_get(|| async { "jpeg" })),
        Faults::default(),
    )
    .await;
    let ok_url = format!("{}/ok.jpg", media_host.url);
    let missing_url = format!("{}/missing.jpg", media_host.url);
    let media = format!("{IG_USER_ID}/media");
    let ok = post(&g, &media, &page, &[("image_url", &ok_url)])
        .await
        .id();
    let missing = post(&g, &media, &page, &[("image_url", &missing_url)])
        .await
        .id();
    assert_eq!(status(&g, &ok, &page).await.0, "FINISHED");
    assert_eq!(
        status(&g, &missing, &page).await,
        ("ERROR".into(), Some("2207052".into()))
    );
    let r = publish(&g, &missing, &page).await;
    assert_eq!(r.code(), (9004, Some(2207052)));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&missing_url)
    );
    let photo = post(
        &g,
        &format!("{PAGE_ID}/photos"),
        &page,
        &[("url", &missing_url)],
    )
    .await;
    assert_eq!(photo.code().0, 324);
    let fetched = g.fetched();
    assert_eq!(fetched[0], (ok_url, Ok(200)));
    assert_eq!(fetched[1], (missing_url, Ok(404)));
}

#[tokio::test]
async fn page_posts_links_photos_and_videos() {
    let (g, _, page) = setup().await;
    let feed = format!("{PAGE_ID}/feed");
    let link_post = post(
        &g,
        &feed,
        &page,
        &[
            ("message", "Read this [m:2]"),
            ("link", "https://soku.test/blog"),
        ],
    )
    .await
    .id();
    assert!(link_post.starts_with(&format!("{PAGE_ID}_")));
    // The same text twice in a row: 506.
    post(&g, &feed, &page, &[("message", "plain")]).await.id();
    let dup = post(&g, &feed, &page, &[("message", "plain")]).await;
    assert_eq!(dup.code(), (506, None));

    // Unpublished photos, then one post carrying them.
    let photos = format!("{PAGE_ID}/photos");
    let p1 = post(
        &g,
        &photos,
        &page,
        &[("url", "https://cdn.test/1.jpg"), ("published", "false")],
    )
    .await;
    assert!(p1.body.get("post_id").is_none(), "{p1:?}");
    let p2 = post(
        &g,
        &photos,
        &page,
        &[
            ("url", "https://cdn.test/2.jpg"),
            ("published", "false"),
            ("temporary", "true"),
        ],
    )
    .await;
    let (p1, p2) = (p1.id(), p2.id());
    let a0 = format!("{{\"media_fbid\":\"{p1}\"}}");
    let a1 = format!("{{\"media_fbid\":\"{p2}\"}}");
    let multi = post(
        &g,
        &feed,
        &page,
        &[
            ("message", "two photos"),
            ("attached_media[0]", &a0),
            ("attached_media[1]", &a1),
        ],
    )
    .await
    .id();
    let again = post(
        &g,
        &feed,
        &page,
        &[("message", "again"), ("attached_media[0]", &a0)],
    )
    .await;
    assert_eq!(again.code().0, 100, "a photo is attached once");
    let bad_shape = post(
        &g,
        &feed,
        &page,
        &[("message", "x"), ("attached_media[0]", &p1)],
    )
    .await;
    assert_eq!(bad_shape.code().0, 100);
    assert_eq!(
        g.page_posts()
            .iter()
            .find(|x| x.id == multi)
            .unwrap()
            .photo_ids,
        vec![p1, p2]
    );

    // A published photo makes its own post.
    let single = post(
        &g,
        &photos,
        &page,
        &[("url", "https://cdn.test/3.jpg"), ("caption", "one photo")],
    )
    .await;
    let single_post = single.body["post_id"].as_str().unwrap().to_owned();

    // Scheduled and unpublished posts are not listed.
    let soon = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600)
        .to_string();
    post(
        &g,
        &feed,
        &page,
        &[
            ("message", "later"),
            ("published", "false"),
            ("scheduled_publish_time", &soon),
            ("unpublished_content_type", "SCHEDULED"),
        ],
    )
    .await
    .id();
    let too_soon = post(
        &g,
        &feed,
        &page,
        &[
            ("message", "now-ish"),
            ("published", "false"),
            ("scheduled_publish_time", "1"),
        ],
    )
    .await;
    assert_eq!(too_soon.code().0, 100);

    let list = get(
        &g,
        &format!("{PAGE_ID}/published_posts?fields=id,message,created_time,permalink_url"),
        &page,
    )
    .await;
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{list:?}");
    assert_eq!(ids[0], single_post, "newest first");
    assert_eq!(*ids.last().unwrap(), link_post);
    let first = &list.body["data"][0];
    assert_eq!(
        first["permalink_url"],
        format!("https://www.facebook.com/{single_post}")
    );
    assert!(first["created_time"].as_str().unwrap().ends_with("+0000"));
    assert_eq!(g.page_posts_created(), 5);
    assert_eq!(g.photos_uploaded(), 3);
}

async fn listed(g: &GraphFake, page: &str) -> usize {
    get(g, &format!("{PAGE_ID}/posts"), page).await.body["data"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_page_video_processes_then_shows_in_the_posts() {
    let (g, _, page) = setup().await;
    g.set_video_polls(2);
    let v = post(
        &g,
        &format!("{PAGE_ID}/videos"),
        &page,
        &[
            ("file_url", "https://cdn.test/v.mp4"),
            ("description", "a video [m:3]"),
            ("title", "V"),
        ],
    )
    .await
    .id();
    assert_eq!(listed(&g, &page).await, 0);
    for _ in 0..2 {
        let r = get(&g, &format!("{v}?fields=status"), &page).await;
        assert_eq!(r.body["status"]["video_status"], "processing");
        assert_eq!(
            r.body["status"]["processing_phase"]["status"],
            "in_progress"
        );
    }
    let r = get(&g, &format!("{v}?fields=status"), &page).await;
    assert_eq!(r.body["status"]["video_status"], "ready");
    assert_eq!(r.body["status"]["publishing_phase"]["status"], "complete");
    assert_eq!(listed(&g, &page).await, 1);
    assert_eq!(g.video_status_reads(), 3);
    let videos = get(
        &g,
        &format!("{PAGE_ID}/videos?fields=id,description,permalink_url"),
        &page,
    )
    .await;
    assert_eq!(videos.body["data"][0]["id"], v.as_str());
    assert_eq!(videos.body["data"][0]["description"], "a video [m:3]");

    g.fail_next_video(1363008, "Resolution too low");
    let bad = post(
        &g,
        &format!("{PAGE_ID}/videos"),
        &page,
        &[("file_url", "https://cdn.test/w.mp4")],
    )
    .await
    .id();
    let r = get(&g, &format!("{bad}?fields=status"), &page).await;
    assert_eq!(r.body["status"]["video_status"], "error");
    assert_eq!(
        r.body["status"]["processing_phase"]["errors"][0]["message"],
        "Resolution too low"
    );
    // Resumable upload is not implemented: refused rather than ignored.
    let resumable = post(
        &g,
        &format!("{PAGE_ID}/videos"),
        &page,
        &[("upload_phase", "start"), ("file_size", "10")],
    )
    .await;
    assert_eq!(resumable.code().0, 100);
}

#[tokio::test]
async fn tokens_must_be_valid_and_for_the_right_page() {
    let (g, user, page) = setup().await;
    let page2 = g.page_token(&user, PAGE2_ID);
    let feed = format!("{PAGE_ID}/feed");
    // A user token, or another Page's token, cannot publish to the Page.
    assert_eq!(
        post(&g, &feed, &user, &[("message", "x")]).await.code(),
        (200, None)
    );
    assert_eq!(
        post(&g, &feed, &page2, &[("message", "x")]).await.code(),
        (200, None)
    );
    // The Instagram account is reached through its own Page only.
    let other = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page2,
        &[("image_url", "https://cdn.test/a.jpg")],
    )
    .await;
    assert_eq!(other.code(), (100, Some(33)));
    // Bearer works as well as access_token.
    let bearer = request(
        "GET",
        &format!("{}/{IG_USER_ID}?fields=username", g.base()),
        &[("Authorization", &format!("Bearer {page}"))],
        None,
    )
    .await;
    assert_eq!(bearer.body["username"], IG_USERNAME);
    let none = request("GET", &format!("{}/{IG_USER_ID}", g.base()), &[], None).await;
    assert_eq!(none.code().0, 104);
    assert_eq!(get(&g, "me", "EAAnonsense").await.code(), (190, None));

    // A missing permission.
    g.revoke_permission("instagram_content_publish");
    let denied = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[("image_url", "https://cdn.test/a.jpg")],
    )
    .await;
    assert_eq!(denied.code(), (10, None));
    g.revoke_permission("pages_manage_posts");
    assert_eq!(
        post(&g, &feed, &page, &[("message", "x")]).await.code(),
        (200, None)
    );

    // Expired, revoked, lost role.
    g.expire_token(&user);
    let expired = get(&g, "me/accounts", &user).await;
    assert_eq!(expired.code(), (190, Some(463)));
    assert_envelope(&expired);
    g.revoke_token(&page2, Revocation::PasswordChanged);
    assert_eq!(get(&g, PAGE2_ID, &page2).await.code(), (190, Some(460)));
    g.remove_page_role(PAGE_ID);
    assert_eq!(get(&g, PAGE_ID, &page).await.code(), (190, Some(492)));
    g.remove_app();
    assert_eq!(get(&g, PAGE_ID, &page).await.code(), (190, Some(458)));
    // An expired token cannot be exchanged for a long-lived one.
    let ex = request("GET", &format!("{}/oauth/access_token?grant_type=fb_exchange_token&client_id=test-client-id&client_secret=test-client-secret&fb_exchange_token={user}", g.base()), &[], None).await;
    assert_eq!(ex.code().0, 190);
}

#[tokio::test]
async fn tasks_are_required_to_publish() {
    let (g, _, page) = setup().await;
    g.set_page_tasks(PAGE_ID, &["ANALYZE"]);
    assert_eq!(
        post(&g, &format!("{PAGE_ID}/feed"), &page, &[("message", "x")])
            .await
            .code(),
        (200, None)
    );
    assert_eq!(
        post(
            &g,
            &format!("{IG_USER_ID}/media"),
            &page,
            &[("image_url", "https://cdn.test/a.jpg")]
        )
        .await
        .code(),
        (10, None)
    );
}

fn header_json(r: &Resp, name: &str) -> Value {
    serde_json::from_str(r.header(name).unwrap_or_else(|| panic!("no {name}: {r:?}"))).unwrap()
}

#[tokio::test]
async fn throttling_and_outages_answer_with_the_usage_headers() {
    let (g, _, page) = setup().await;
    g.set_app_usage(AppUsage {
        call_count: 28,
        total_time: 25,
        total_cputime: 25,
    });
    let ok = get(&g, &format!("{IG_USER_ID}?fields=username"), &page).await;
    assert_eq!(header_json(&ok, "x-app-usage")["call_count"], 28);
    let buc = header_json(&ok, "x-business-use-case-usage");
    assert_eq!(buc[IG_USER_ID][0]["type"], "instagram");

    g.rate_limit_next(1, Throttle::App);
    let r = get(&g, &format!("{IG_USER_ID}?fields=username"), &page).await;
    assert_eq!(r.code(), (4, None));
    assert_eq!(header_json(&r, "x-app-usage")["call_count"], 100);
    assert_envelope(&r);

    g.rate_limit_next(1, Throttle::InstagramBuc);
    let r = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[("image_url", "https://cdn.test/a.jpg")],
    )
    .await;
    assert_eq!(r.code(), (80002, None));
    let buc = header_json(&r, "x-business-use-case-usage");
    assert_eq!(buc[IG_USER_ID][0]["call_count"], 100);
    assert!(
        buc[IG_USER_ID][0]["estimated_time_to_regain_access"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(g.containers_created(), 0, "a throttled call has no effect");

    g.rate_limit_next(1, Throttle::PageBuc);
    let r = post(&g, &format!("{PAGE_ID}/feed"), &page, &[("message", "x")]).await;
    assert_eq!(r.code(), (80001, None));
    assert_eq!(
        header_json(&r, "x-business-use-case-usage")[PAGE_ID][0]["type"],
        "pages"
    );

    g.rate_limit_next(1, Throttle::User);
    assert_eq!(get(&g, PAGE_ID, &page).await.code(), (17, None));
    g.rate_limit_next(1, Throttle::PageUserToken);
    let r = get(&g, PAGE_ID, &page).await;
    assert_eq!(r.code(), (32, None));
    assert_eq!(
        header_json(&r, "x-business-use-case-usage")[PAGE_ID][0]["type"],
        "pages"
    );

    g.transient_next(1);
    let r = get(&g, PAGE_ID, &page).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.code(), (2, None));
    assert_eq!(r.body["error"]["is_transient"], true);
    // Then it works again.
    assert_eq!(get(&g, PAGE_ID, &page).await.status, 200);
}

#[tokio::test]
async fn the_version_is_part_of_the_path() {
    let g = GraphFake::start_with_version("v27.0").await;
    let user = g.grant_token(PUBLISHING_PERMISSIONS);
    assert!(g.base().ends_with("/v27.0"));
    assert_eq!(
        get(&g, "me", &user).await.body["id"],
        soku_fakes::graph::USER_ID
    );
    let old = request(
        "GET",
        &format!("{}/v25.0/me?access_token={user}", g.url),
        &[],
        None,
    )
    .await;
    assert_eq!(old.code().0, 2500);
}
