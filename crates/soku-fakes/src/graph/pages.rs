//! Facebook Page publishing: feed posts, photos and videos.

use super::*;

/// `unpublished_content_type` values (`enum_types.json`,
/// `pagefeed_unpublished_content_type_enum_param`).
pub(super) const UNPUBLISHED_CONTENT_TYPES: &[&str] = &[
    "ADS_POST",
    "DRAFT",
    "INLINE_CREATED",
    "PUBLISHED",
    "PUBLISH_PENDING",
    "REVIEWABLE_BRANDED_CONTENT",
    "SCHEDULED",
    "SCHEDULED_RECURRING",
];

/// `POST /{page-id}/feed` → `{"id": "page_post_id"}` (Pages API "Posts"). `published` "`true`
/// ... (default) or `false`"; `scheduled_publish_time` "between 10 minutes and 30 days" (the
/// fake takes Unix seconds); multi-photo: `attached_media[0]={"media_fbid":"1002088839996"}`,
/// each an unpublished photo of the Page ("returns the Page Post ID"). A second identical
/// message in a row is "506 | Duplicate Post" ("Handling Errors").
pub(super) fn create_feed_post(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &[]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "feed") {
        return r;
    }
    let published = match p.bool("published") {
        Ok(v) => v.unwrap_or(true),
        Err(e) => return bad_param(&e),
    };
    let message = p.get("message").map(str::to_owned);
    let link = p.get("link").map(str::to_owned);
    if link.as_deref().is_some_and(|l| !http_url(l)) {
        return bad_param("(#100) Param link must be a valid URL");
    }
    let attached = match p.list("attached_media") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    let mut photo_ids = Vec::new();
    for item in &attached {
        let id = serde_json::from_str::<Value>(item).ok().and_then(|v| {
            v.get("media_fbid").and_then(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        });
        let Some(id) = id else {
            return bad_param(&format!(
                "(#100) attached_media items are {{\"media_fbid\":\"<photo id>\"}}, not {item}"
            ));
        };
        let ok = s
            .photos
            .get(&id)
            .is_some_and(|ph| ph.page_id == page_id && !ph.published && ph.attached_to.is_none());
        if !ok {
            return bad_param(&format!(
                "(#100) attached_media {id} is not an unpublished photo of this Page"
            ));
        }
        photo_ids.push(id);
    }
    if message.is_none() && link.is_none() && photo_ids.is_empty() {
        return bad_param("(#100) Missing message or attachment");
    }
    let scheduled = match unix_param(p, "scheduled_publish_time") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    let now = unix(SystemTime::now());
    if let Some(t) = scheduled {
        if published {
            return bad_param(
                "(#100) Scheduled posts cannot be published: set published=false with scheduled_publish_time",
            );
        }
        if t < now + 600 || t > now + 30 * 86_400 {
            return bad_param(
                "(#100) The specified scheduled publish time is invalid (between 10 minutes and 30 days from now)",
            );
        }
    }
    if let Some(u) = p.get("unpublished_content_type")
        && !UNPUBLISHED_CONTENT_TYPES.contains(&u)
    {
        return bad_param("(#100) Param unpublished_content_type is not a valid value");
    }
    if published
        && link.is_none()
        && photo_ids.is_empty()
        && message.is_some()
        && s.visible_posts(page_id)
            .first()
            .and_then(|x| x.message.as_ref())
            == message.as_ref()
    {
        return err(506, None, "OAuthException", "Duplicate status message");
    }
    let id = format!("{page_id}_{}", s.id(122_000_000_000_000_000));
    for ph in &photo_ids {
        if let Some(x) = s.photos.get_mut(ph) {
            x.attached_to = Some(id.clone());
        }
    }
    s.posts.push(PagePost {
        id: id.clone(),
        page_id: page_id.to_owned(),
        message,
        link,
        created_time: now,
        published,
        scheduled_publish_time: scheduled,
        photo_ids,
        video_id: None,
    });
    s.page_posts_created += 1;
    json(200, json!({ "id": id }))
}

/// `POST /{page-id}/photos` with `url`, `caption` (`message` is "Deprecated. Please use the
/// caption param", so the fake refuses it), `published`, `temporary` ("If the photo is used in
/// a scheduled post, `temporary=true` must be used") → `{"id":"photo_id","post_id":
/// "page_post_id"}`; unpublished, `{"id"}` only (no post is made). Needs `pages_show_list`
/// too (Page Photos reference).
pub(super) fn upload_photo(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
    fetched: &HashMap<String, Result<u16, String>>,
) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "photos") {
        return r;
    }
    let (published, temporary) = match (p.bool("published"), p.bool("temporary")) {
        (Ok(a), Ok(b)) => (a.unwrap_or(true), b.unwrap_or(false)),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let Some(url) = p.get("url").map(str::to_owned) else {
        return bad_param("(#100) The parameter url is required (the fake takes no file upload)");
    };
    if !http_url(&url) {
        return bad_param("(#100) Param url must be a valid URL");
    }
    if temporary && published {
        return bad_param("(#100) temporary photos must be unpublished");
    }
    if let Some(res) = fetched.get(&url) {
        s.fetched.push((url.clone(), res.clone()));
        if res.as_ref().ok() != Some(&200) {
            // Not in the documentation the notes quote; the fake's choice of code.
            return err(
                324,
                None,
                "OAuthException",
                "(#324) Missing or invalid image file",
            );
        }
    }
    let caption = p.get("caption").map(str::to_owned);
    let id = s.id(1_000_000_000_000_000);
    let now = unix(SystemTime::now());
    let post_id = published.then(|| format!("{page_id}_{}", s.id(122_000_000_000_000_000)));
    s.photos.insert(
        id.clone(),
        Photo {
            id: id.clone(),
            page_id: page_id.to_owned(),
            url,
            caption: caption.clone(),
            published,
            temporary,
            post_id: post_id.clone(),
            attached_to: None,
            created_time: now,
        },
    );
    s.photos_uploaded += 1;
    match post_id {
        Some(post_id) => {
            s.posts.push(PagePost {
                id: post_id.clone(),
                page_id: page_id.to_owned(),
                message: caption,
                link: None,
                created_time: now,
                published: true,
                scheduled_publish_time: None,
                photo_ids: vec![id.clone()],
                video_id: None,
            });
            s.page_posts_created += 1;
            json(200, json!({ "id": id, "post_id": post_id }))
        }
        None => json(200, json!({ "id": id })),
    }
}

/// `POST /{page-id}/videos` with `file_url` ("Accessible URL of a video file. Cannot be used
/// with `upload_phase`."), `description`, `title`, `published` → `{"id"}`. Requirements:
/// "`pages_manage_posts`, `pages_read_engagement`, and `pages_show_list`". A published video
/// shows in the Page's posts once processed. (Resumable upload is not implemented: its
/// parameters are refused.)
pub(super) fn upload_video(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "videos") {
        return r;
    }
    let published = match p.bool("published") {
        Ok(v) => v.unwrap_or(true),
        Err(e) => return bad_param(&e),
    };
    let Some(file_url) = p.get("file_url").map(str::to_owned) else {
        return bad_param("(#100) The parameter file_url is required (in the fake)");
    };
    if !http_url(&file_url) {
        return bad_param("(#100) Param file_url must be a valid URL");
    }
    let description = p.get("description").map(str::to_owned);
    let id = s.id(1_100_000_000_000_000);
    let now = unix(SystemTime::now());
    let post_id = published.then(|| format!("{page_id}_{}", s.id(122_000_000_000_000_000)));
    let failure = s.fail_next_video.pop_front();
    let polls_left = s.video_polls;
    s.videos.insert(
        id.clone(),
        Video {
            id: id.clone(),
            page_id: page_id.to_owned(),
            kind: VideoKind::Video,
            file_url,
            uploaded: true,
            finished: None,
            published_at: None,
            description: description.clone(),
            title: p.get("title").map(str::to_owned),
            published,
            polls_left,
            failure,
            post_id: post_id.clone(),
            created_time: now,
        },
    );
    s.videos_uploaded += 1;
    if let Some(post_id) = post_id {
        s.posts.push(PagePost {
            id: post_id,
            page_id: page_id.to_owned(),
            message: description,
            link: None,
            created_time: now,
            published: true,
            scheduled_publish_time: None,
            photo_ids: Vec::new(),
            video_id: Some(id.clone()),
        });
        s.page_posts_created += 1;
    }
    json(200, json!({ "id": id }))
}
