//! Reads: users, Pages, Instagram accounts, containers, media, posts, photos, videos and the listings.

use super::*;

pub(super) fn read_user(p: &Params) -> Response {
    if let Err(r) = check_params(p, "User", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "User", &[], &["name", "id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(USER_ID));
    if wants(&f, "name") {
        o.insert("name".into(), json!(USER_NAME));
    }
    json(200, Value::Object(o))
}

pub(super) fn ig_json(a: &IgAccount, f: &[Field]) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(a.id));
    for x in f {
        let v = match x.name.as_str() {
            "username" => json!(a.username),
            "name" => json!(a.name),
            "profile_picture_url" => json!(format!(
                "https://scontent.cdninstagram.com/fake/{}/profile.jpg",
                a.id
            )),
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    Value::Object(o)
}

/// A Page row. `instagram_business_account` answers `{"id": "…"}` (or the requested subfields)
/// and is absent when no Instagram account is linked (Instagram Platform, Page reference:
/// `{"instagram_business_account": {"id": "…"}, "id": "…"}`).
pub(super) fn page_json(s: &mut Inner, tok: &IssuedToken, page_id: &str, f: &[Field]) -> Value {
    let page = s.page(page_id).unwrap().clone();
    let mut o = serde_json::Map::new();
    for x in f {
        let v = match x.name.as_str() {
            "id" => json!(page.id),
            "name" => json!(page.name),
            "category" => json!(page.category),
            "tasks" => json!(page.tasks),
            "access_token" => match &tok.kind {
                TokenKind::Page(_) => json!(tok.token),
                _ => json!(s.page_token_for(tok, page_id)),
            },
            "instagram_business_account" => {
                let Some(a) = page.ig_user_id.as_deref().and_then(|id| s.ig(id)) else {
                    continue;
                };
                let default = [Field {
                    name: "id".into(),
                    sub: None,
                }];
                ig_json(a, x.sub.as_deref().unwrap_or(&default))
            }
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    o.entry("id").or_insert_with(|| json!(page.id));
    Value::Object(o)
}

pub(super) fn read_page(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "Page", &[], &["name", "id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Page reference (Instagram Platform): `instagram_basic`, `pages_show_list`.
    let mut perms = vec!["pages_show_list"];
    if wants(&f, "instagram_business_account") {
        perms.push("instagram_basic");
    }
    if let Err(r) = need(s, &perms, 10) {
        return r;
    }
    json(200, page_json(s, tok, page_id, &f))
}

/// `GET /me/accounts`: "Pages the User has a role on". Without `pages_show_list` the list is
/// empty (the fake's choice: Graph lists what the grant lets it see).
pub(super) fn accounts(s: &mut Inner, tok: &IssuedToken, p: &Params) -> Response {
    if matches!(tok.kind, TokenKind::Page(_)) {
        return err(
            100,
            None,
            "OAuthException",
            "(#100) Tried accessing nonexisting field (accounts) on node type (Page)",
        );
    }
    if let Err(r) = check_params(p, "User", "GET", "accounts") {
        return r;
    }
    let f = match fields(
        p,
        "Page",
        &["tasks"],
        &["access_token", "category", "name", "id", "tasks"],
    ) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if wants(&f, "instagram_business_account")
        && let Err(r) = need(s, &["instagram_basic"], 10)
    {
        return r;
    }
    let ids: Vec<String> = if s.has("pages_show_list") {
        s.pages
            .iter()
            .filter(|x| x.role)
            .map(|x| x.id.clone())
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = ids.iter().map(|id| page_json(s, tok, id, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/me/accounts", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

pub(super) fn read_node(
    s: &mut Inner,
    tok: &IssuedToken,
    node: &str,
    p: &Params,
    method: &Method,
) -> Response {
    if s.page(node).is_some() {
        return read_page(s, tok, node, p);
    }
    if let Some(a) = s.ig(node).cloned() {
        if !can_see_ig(s, tok, node) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "IGUser", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "IGUser", &[], &["id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = need(s, &["instagram_basic"], 10) {
            return r;
        }
        return json(200, ig_json(&a, &f));
    }
    if let Some(c) = s.containers.get(node).cloned() {
        if !can_see_ig(s, tok, &c.ig_user_id) {
            return no_object(method, node);
        }
        return read_container(s, c, p);
    }
    if let Some(m) = s.media.iter().find(|m| m.id == node).cloned() {
        if !can_see_ig(s, tok, &m.ig_user_id) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "IGMedia", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "IGMedia", &[], &["id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = need_media_read(s) {
            return r;
        }
        return json(200, media_json(s, &m, &f));
    }
    if let Some(post) = s.posts.iter().find(|x| x.id == node).cloned() {
        if !can_see_page(s, tok, &post.page_id) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "PagePost", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "PagePost", &[], &["created_time", "message", "id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Err(r) = need(s, &["pages_read_engagement"], 10) {
            return r;
        }
        return json(200, post_json(&post, &f));
    }
    if let Some(ph) = s.photos.get(node).cloned() {
        if !can_see_page(s, tok, &ph.page_id) {
            return no_object(method, node);
        }
        if let Err(r) = check_params(p, "Photo", "GET", "#get") {
            return r;
        }
        let f = match fields(p, "Photo", &[], &["created_time", "id"]) {
            Ok(f) => f,
            Err(r) => return r,
        };
        let mut o = serde_json::Map::new();
        o.insert("id".into(), json!(ph.id));
        if wants(&f, "created_time") {
            o.insert("created_time".into(), json!(iso(ph.created_time)));
        }
        return json(200, Value::Object(o));
    }
    if let Some(v) = s.videos.get(node).cloned() {
        if !can_see_page(s, tok, &v.page_id) {
            return no_object(method, node);
        }
        return read_video(s, v, p);
    }
    no_object(method, node)
}

/// IG media reads: `instagram_basic` and `pages_read_engagement` ("or `pages_show_list`").
#[allow(clippy::result_large_err)]
pub(super) fn need_media_read(s: &Inner) -> Result<(), Response> {
    need(s, &["instagram_basic"], 10)?;
    if !s.has("pages_read_engagement") && !s.has("pages_show_list") {
        return need(s, &["pages_read_engagement"], 10);
    }
    Ok(())
}

/// `GET /{container-id}?fields=status_code,status`. IG Container reference: `status_code`
/// "`EXPIRED` — The container was not published within 24 hours and has expired. `ERROR` — The
/// container failed to complete the publishing process. `FINISHED` — The container and its
/// media object are ready to be published. `IN_PROGRESS` — The container is still in the
/// publishing process. `PUBLISHED` — The container's media object has been published."
/// `status`: "Publishing status. If `status_code` is `ERROR`, this value will be an error
/// subcode." (so the fake answers the subcode alone, e.g. `"2207052"`; for the other states
/// it answers the state in words, which the documentation does not fix).
pub(super) fn read_container(s: &mut Inner, c: Container, p: &Params) -> Response {
    if let Err(r) = check_params(p, "ShadowIGMediaBuilder", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "ShadowIGMediaBuilder", &[], &["id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["instagram_basic", "pages_read_engagement"], 10) {
        return r;
    }
    let (code, sub) = s.container_status(&c);
    s.status_reads += 1;
    if let Some(x) = s.containers.get_mut(&c.id)
        && x.polls_left > 0
    {
        x.polls_left -= 1;
    }
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(c.id));
    if wants(&f, "status_code") {
        o.insert("status_code".into(), json!(code));
    }
    if wants(&f, "status") {
        let status = match (code, sub) {
            ("ERROR", Some(sub)) => sub.to_string(),
            ("FINISHED", _) => "Finished".into(),
            ("IN_PROGRESS", _) => "In Progress".into(),
            ("PUBLISHED", _) => "Published".into(),
            _ => "Expired".into(),
        };
        o.insert("status".into(), json!(status));
    }
    json(200, Value::Object(o))
}

/// `GET /{video-id}?fields=status`: `{"status":{"video_status","uploading_phase":{"status"},
/// "processing_phase":{"status"},"publishing_phase":{"status"}}}`; `video_status` one of
/// `error`, `expired`, `processing`, `ready`, `uploading`, `upload_failed`, `upload_complete`;
/// phase `status` `completed`, `error`, `not_started`, `in_progress`, though the examples write
/// `complete`, which the fake answers (a client should take both). Errors are the spec's
/// `processing_phase.errors[] {code, message}` (`VideoStatusProcessingPhase`).
/// A video's fields other than `status`.
pub(super) fn video_json(v: &Video, f: &[Field]) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(v.id));
    for x in f {
        let val = match x.name.as_str() {
            "description" => match &v.description {
                Some(d) => json!(d),
                None => continue,
            },
            "title" => match &v.title {
                Some(t) => json!(t),
                None => continue,
            },
            "created_time" => json!(iso(v.created_time)),
            "permalink_url" => json!(format!("/{}/videos/{}/", v.page_id, v.id)),
            "published" => json!(v.published),
            _ => continue,
        };
        o.insert(x.name.clone(), val);
    }
    Value::Object(o)
}

/// A video's `status` object. Before a reel or story's file arrives: `video_status`
/// `uploading`, every phase `not_started` (the fake's choice; the Stories guide lists
/// `video_status` "`ready`, `processing`, `expired`, or `error`" and phase statuses
/// "`in_progress`, `not_started`, `complete`, or `error`"). `publishing_phase.publish_status`:
/// "`published` or `not_published`" (Stories guide; a spec field). The guide's
/// `uploading_phase.bytes_transfered` and `publishing_phase.publish_time` ("a UNIX timestamp",
/// a `datetime` in the spec) are not answered.
pub(super) fn video_status(s: &Inner, v: &Video) -> Value {
    let publish_status = if v.published && s.video_ready(&v.id) {
        "published"
    } else {
        "not_published"
    };
    if !v.uploaded {
        return json!({
            "video_status": "uploading",
            "uploading_phase": { "status": "not_started" },
            "processing_phase": { "status": "not_started" },
            "publishing_phase": { "status": "not_started", "publish_status": publish_status },
        });
    }
    if let Some((code, message)) = &v.failure {
        return json!({
            "video_status": "error",
            "uploading_phase": { "status": "complete" },
            "processing_phase": {
                "status": "error",
                "errors": [{ "code": code, "message": message }],
            },
            "publishing_phase": { "status": "not_started", "publish_status": publish_status },
        });
    }
    if v.polls_left > 0 {
        return json!({
            "video_status": "processing",
            "uploading_phase": { "status": "complete" },
            "processing_phase": { "status": "in_progress" },
            "publishing_phase": { "status": "not_started", "publish_status": publish_status },
        });
    }
    json!({
        "video_status": "ready",
        "uploading_phase": { "status": "complete" },
        "processing_phase": { "status": "complete" },
        "publishing_phase": {
            "status": if v.published { "complete" } else { "not_started" },
            "publish_status": publish_status,
        },
    })
}

pub(super) fn read_video(s: &mut Inner, v: Video, p: &Params) -> Response {
    if let Err(r) = check_params(p, "AdVideo", "GET", "#get") {
        return r;
    }
    let f = match fields(p, "AdVideo", &[], &["id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let mut o = match video_json(&v, &f) {
        Value::Object(o) => o,
        _ => unreachable!(),
    };
    for x in &f {
        let val = match x.name.as_str() {
            "status" => {
                s.video_status_reads += 1;
                let st = video_status(s, &v);
                // Processing is counted in reads once the file has arrived.
                if let Some(x) = s.videos.get_mut(&v.id)
                    && x.uploaded
                    && x.polls_left > 0
                {
                    x.polls_left -= 1;
                }
                st
            }
            _ => continue,
        };
        o.insert(x.name.clone(), val);
    }
    json(200, Value::Object(o))
}

pub(super) fn permalink(m_product: &str, shortcode: &str, username: &str, id: &str) -> String {
    match m_product {
        "REELS" => format!("https://www.instagram.com/reel/{shortcode}/"),
        "STORY" => format!("https://www.instagram.com/stories/{username}/{id}/"),
        _ => format!("https://www.instagram.com/p/{shortcode}/"),
    }
}

pub(super) fn media_json(s: &Inner, m: &IgMedia, f: &[Field]) -> Value {
    let account = s.ig(&m.ig_user_id);
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(m.id));
    for x in f {
        let v = match x.name.as_str() {
            "caption" => match &m.caption {
                Some(c) => json!(c),
                None => continue,
            },
            "timestamp" => json!(iso(m.timestamp)),
            "permalink" => json!(m.permalink),
            "media_type" => json!(m.media_type),
            "media_product_type" => json!(m.media_product_type),
            "shortcode" => json!(m.shortcode),
            "username" => json!(account.map(|a| a.username.clone())),
            "media_url" => match &m.media_url {
                Some(u) => json!(u),
                None => continue,
            },
            "owner" => {
                let Some(a) = account else { continue };
                let default = [Field {
                    name: "id".into(),
                    sub: None,
                }];
                ig_json(a, x.sub.as_deref().unwrap_or(&default))
            }
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    Value::Object(o)
}

pub(super) fn post_json(post: &PagePost, f: &[Field]) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("id".into(), json!(post.id));
    for x in f {
        let v = match x.name.as_str() {
            "message" => match &post.message {
                Some(m) => json!(m),
                None => continue,
            },
            "created_time" => json!(iso(post.created_time)),
            // "Page post URL https://www.facebook.com/{page_post_id}".
            "permalink_url" => json!(format!("https://www.facebook.com/{}", post.id)),
            _ => continue,
        };
        o.insert(x.name.clone(), v);
    }
    Value::Object(o)
}

/// `GET /{page-id}/posts|published_posts|feed?fields=id,message,created_time,permalink_url`,
/// newest first. Documented response: `{"data":[{"created_time":"2019-01-02T18:31:28+0000",
/// "message":…,"id":…}]}` (Pages API "Posts"), with `paging.cursors`.
pub(super) fn list_page_posts(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    edge: &str,
    p: &Params,
) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", edge) {
        return r;
    }
    let f = match fields(p, "PagePost", &[], &["created_time", "message", "id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let posts: Vec<PagePost> = s.visible_posts(page_id).into_iter().cloned().collect();
    let ids: Vec<String> = posts.iter().map(|x| x.id.clone()).collect();
    let rows = posts.iter().map(|x| post_json(x, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/{page_id}/{edge}", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{ig-user-id}/media`: "Returns a maximum of 10K of the most recently created media";
/// `since`/`until`; "Story IG Media not supported, use ... `/stories`". `GET /{ig-user-id}/
/// stories`: the stories, while live (24 hours; the notes' inference), newest first.
pub(super) fn list_media(
    s: &mut Inner,
    tok: &IssuedToken,
    ig: &str,
    p: &Params,
    stories: bool,
) -> Response {
    if !can_see_ig(s, tok, ig) {
        return no_object(&Method::GET, ig);
    }
    let edge = if stories { "stories" } else { "media" };
    if let Err(r) = check_params(p, "IGUser", "GET", edge) {
        return r;
    }
    let f = match fields(p, "IGMedia", &[], &["id"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need_media_read(s) {
        return r;
    }
    let (since, until) = match (unix_param(p, "since"), unix_param(p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let media: Vec<IgMedia> = s
        .media
        .iter()
        .rev()
        .filter(|m| m.ig_user_id == ig && (m.media_product_type == "STORY") == stories)
        .filter(|m| !stories || m.timestamp > unix(SystemTime::now()) - 86_400)
        .filter(|m| since.is_none_or(|a| m.timestamp >= a))
        .filter(|m| until.is_none_or(|b| m.timestamp <= b))
        .cloned()
        .collect();
    let ids: Vec<String> = media.iter().map(|m| m.id.clone()).collect();
    let rows = media.iter().map(|m| media_json(s, m, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/{ig}/{edge}", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{page-id}/videos?fields=id,description,created_time,permalink_url`: the Page's videos,
/// newest first (the reconciliation for videos in `docs/research/meta-graph-api.md`).
pub(super) fn list_videos(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "videos") {
        return r;
    }
    let f = match fields(p, "AdVideo", &[], &["id", "created_time", "description"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if wants(&f, "status") {
        return bad_param("(#100) Read a video's status from the video node (in the fake)");
    }
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    // Reels once published (and processed) are videos of the Page too; story videos and reel
    // sessions are not listed (the fake's choice: the guides do not say).
    let mut videos: Vec<Video> = s
        .videos
        .values()
        .filter(|v| v.page_id == page_id)
        .filter(|v| match v.kind {
            VideoKind::Video => !s.video_listing_lag || s.video_ready(&v.id),
            VideoKind::Reel => v.published && s.video_ready(&v.id),
            VideoKind::Story => false,
        })
        .cloned()
        .collect();
    videos.sort_by(|a, b| (b.created_time, &b.id).cmp(&(a.created_time, &a.id)));
    let ids: Vec<String> = videos.iter().map(|v| v.id.clone()).collect();
    let rows = videos.iter().map(|v| video_json(v, &f)).collect();
    match paginate(p, &ids, rows, &format!("/{}/{page_id}/videos", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{ig-user-id}/content_publishing_limit?fields=config,quota_usage[&since=…]` →
/// `{"data":[{"quota_usage": 2, "config": {"quota_total": 50, "quota_duration": 86400}}]}`;
/// `quota_usage` is returned by default; `since` no older than 24 hours (IG User Content
/// Publishing Limit reference). The envelope and `config` keys are not in the specs (`config`
/// is typed `Object`).
pub(super) fn publishing_limit(s: &mut Inner, tok: &IssuedToken, ig: &str, p: &Params) -> Response {
    if !can_see_ig(s, tok, ig) {
        return no_object(&Method::GET, ig);
    }
    if let Err(r) = check_params(p, "IGUser", "GET", "content_publishing_limit") {
        return r;
    }
    let f = match fields(p, "ContentPublishingLimitResponse", &[], &["quota_usage"]) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["instagram_basic", "instagram_content_publish"], 10) {
        return r;
    }
    let now = unix(SystemTime::now());
    let window_start = now - QUOTA_DURATION as i64;
    let since = match unix_param(p, "since") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    if since.is_some_and(|x| x < window_start || x > now) {
        return bad_param("(#100) Param since must be a Unix timestamp within the last 24 hours");
    }
    let usage = s.api_publishes_since(ig, since.unwrap_or(window_start).max(window_start));
    let mut row = serde_json::Map::new();
    if wants(&f, "quota_usage") {
        row.insert("quota_usage".into(), json!(usage));
    }
    if wants(&f, "config") {
        row.insert(
            "config".into(),
            json!({ "quota_total": s.quota_total, "quota_duration": QUOTA_DURATION }),
        );
    }
    json(200, json!({ "data": [Value::Object(row)] }))
}
