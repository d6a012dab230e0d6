//! Page reels and stories: upload sessions, the upload host, finishing, the listings.

use super::*;

pub(super) fn kind_name(kind: VideoKind) -> (&'static str, &'static str) {
    match kind {
        VideoKind::Reel => ("video_reels", "reel"),
        VideoKind::Story => ("video_stories", "video story"),
        VideoKind::Video => ("videos", "video"),
    }
}

/// An enum parameter, upper-cased and checked against the spec's values.
#[allow(clippy::result_large_err)]
pub(super) fn enum_param(
    p: &Params,
    key: &str,
    values: &[&str],
) -> Result<Option<String>, Response> {
    match p.get(key) {
        None => Ok(None),
        Some(v) => {
            let up = v.to_ascii_uppercase();
            if values.contains(&up.as_str()) {
                Ok(Some(up))
            } else {
                Err(bad_param(&format!(
                    "(#100) Param {key} must be one of {{{}}}",
                    values.join(", ")
                )))
            }
        }
    }
}

/// `POST /{page-id}/video_reels` and `POST /{page-id}/video_stories`.
///
/// - Start (Reels Publishing API, Stories API "Step 1: Initialize session"): "send a `POST`
///   request to the `/page_id/video_stories` endpoint ... with the `upload_phase` parameter set
///   to `start`" → `{"video_id": "video_id", "upload_url":
///   "https://rupload.facebook.com/video-upload/v25.0/video_id"}`. The fake's `upload_url` is
///   its own `{url}/video-upload/{version}/{video-id}`.
/// - Finish, stories ("Step 3. Publish a video story"): `video_id`, `upload_phase` `finish` →
///   "`success` set to `true`", "`post_id` set to the ID for your story post" (the example
///   writes `"post_id": 1234`, a number; the fake answers a string, as Graph ids are).
/// - Finish, reels: `upload_phase=finish`, `video_id`, `video_state=PUBLISHED`, `description`
///   → `{"success": true}`. The 30-in-24-hours limit is "enforced on the `POST
///   /{page_id}/video_reels` endpoint when attempting to publish a reel": its error is not
///   documented; the fake answers code 9 (the Instagram publishing limit's code) with the
///   guide's sentence.
///
/// The fake's choices where the guides say nothing: a reel's finish must name `video_state`
/// (`PUBLISHED` or `DRAFT`; `SCHEDULED` is not implemented); a story's takes none or
/// `PUBLISHED`; finishing before the file reached the upload host, finishing twice, an unknown
/// `video_id` and a failed video are refused with code 100 (the failed video with its
/// processing error's code). A published reel becomes a Page post (`{page-id}_{video-id}`,
/// message = `description`), listed with the Page's posts and videos and in `/video_reels`
/// once processed; a story is listed in `/{page-id}/stories` only.
pub(super) fn video_session(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
    kind: VideoKind,
) -> Response {
    let (edge, what) = kind_name(kind);
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", edge) {
        return r;
    }
    let phase = match enum_param(p, "upload_phase", UPLOAD_PHASES) {
        Ok(Some(v)) => v,
        Ok(None) => return bad_param("(#100) The parameter upload_phase is required"),
        Err(r) => return r,
    };
    let state = match enum_param(p, "video_state", VIDEO_STATES) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = unix(SystemTime::now());
    if phase == "START" {
        if p.has("video_id") || state.is_some() {
            return bad_param(
                "(#100) upload_phase=start takes no video_id or video_state (in the fake)",
            );
        }
        let id = s.id(1_100_000_000_000_000);
        s.videos.insert(
            id.clone(),
            Video {
                id: id.clone(),
                page_id: page_id.to_owned(),
                kind,
                file_url: String::new(),
                uploaded: false,
                finished: None,
                published_at: None,
                description: p.get("description").map(str::to_owned),
                title: p.get("title").map(str::to_owned),
                published: false,
                polls_left: 0,
                failure: None,
                post_id: None,
                created_time: now,
            },
        );
        if kind == VideoKind::Reel {
            s.reels_started += 1;
        }
        let upload_url = format!("{}/{UPLOAD_PATH}/{}/{id}", s.url, s.version);
        return json(200, json!({ "video_id": id, "upload_url": upload_url }));
    }
    let Some(video_id) = p.get("video_id") else {
        return bad_param("(#100) upload_phase=finish requires video_id");
    };
    let Some(v) = s
        .videos
        .get(video_id)
        .filter(|v| v.page_id == page_id && v.kind == kind)
        .cloned()
    else {
        return bad_param(&format!(
            "(#100) video_id {video_id} is not a {what} upload session of this Page (the fake's message)"
        ));
    };
    if v.finished.is_some() {
        return bad_param(&format!(
            "(#100) The {what} {video_id} is already finished (the fake's message)"
        ));
    }
    if !v.uploaded {
        return bad_param(&format!(
            "(#100) The {what} {video_id} has no file yet: upload it to its upload_url before upload_phase=finish (the fake's message)"
        ));
    }
    if let Some((code, message)) = &v.failure {
        return err(*code, None, "OAuthException", message);
    }
    let state = match (kind, state.as_deref()) {
        (VideoKind::Reel, Some(st @ ("PUBLISHED" | "DRAFT"))) => st.to_owned(),
        (VideoKind::Reel, None) => {
            return bad_param(
                "(#100) A reel's upload_phase=finish needs video_state (PUBLISHED or DRAFT in the fake)",
            );
        }
        (VideoKind::Story, None | Some("PUBLISHED")) => "PUBLISHED".to_owned(),
        _ => {
            return bad_param(
                "(#100) The fake implements video_state PUBLISHED (and DRAFT for reels) only",
            );
        }
    };
    if kind == VideoKind::Reel && state == "PUBLISHED" {
        let used = s.api_reels_since(page_id, now - REELS_QUOTA_DURATION as i64);
        if used >= s.reels_quota as usize {
            return err(
                9,
                None,
                "OAuthException",
                "(#9) Reels API is limited to 30 API-published posts within a 24-hour moving period.",
            );
        }
    }
    let description = p.get("description").map(str::to_owned).or(v.description);
    let title = p.get("title").map(str::to_owned).or(v.title);
    let published = state == "PUBLISHED";
    let post_id = match kind {
        VideoKind::Reel => published.then(|| format!("{page_id}_{video_id}")),
        _ => Some(s.id(122_000_000_000_000_000)),
    };
    if let Some(x) = s.videos.get_mut(video_id) {
        x.finished = Some(state.clone());
        x.description = description.clone();
        x.title = title;
        x.published = published;
        x.published_at = published.then_some(now);
        x.post_id = post_id.clone();
    }
    match kind {
        VideoKind::Reel => {
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
                    video_id: Some(video_id.to_owned()),
                });
                s.reels_published += 1;
            }
            json(200, json!({ "success": true }))
        }
        _ => {
            let post_id = post_id.unwrap_or_default();
            s.stories.push(PageStory {
                post_id: post_id.clone(),
                page_id: page_id.to_owned(),
                media_type: "video".into(),
                media_id: video_id.to_owned(),
                created_time: now,
            });
            s.stories_published += 1;
            json(200, json!({ "success": true, "post_id": post_id }))
        }
    }
}

/// `POST /{page-id}/photo_stories` with `photo_id` (Stories API "Step 2. Publish a photo
/// story"; step 1 is `POST /{page-id}/photos` with "the `published` parameter ... set to
/// `false`") → "`success` set to `true`", "`post_id` set to the ID for your story post".
/// "A photo or video uploaded for a story can not have been used in a previously published
/// post": the fake refuses a published photo, one attached to a post, or one already in a
/// story (code 100, the fake's message).
pub(super) fn photo_story(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if let Err(r) = page_publisher(s, tok, page_id, &["pages_show_list"]) {
        return r;
    }
    if let Err(r) = check_params(p, "Page", "POST", "photo_stories") {
        return r;
    }
    let Some(photo_id) = p.get("photo_id").map(str::to_owned) else {
        return bad_param("(#100) The parameter photo_id is required");
    };
    let ok = s
        .photos
        .get(&photo_id)
        .is_some_and(|ph| ph.page_id == page_id && !ph.published && ph.attached_to.is_none());
    if !ok {
        return bad_param(&format!(
            "(#100) photo_id {photo_id} is not an unpublished photo of this Page unused in any post or story (the fake's message)"
        ));
    }
    let post_id = s.id(122_000_000_000_000_000);
    if let Some(ph) = s.photos.get_mut(&photo_id) {
        ph.attached_to = Some(post_id.clone());
    }
    s.stories.push(PageStory {
        post_id: post_id.clone(),
        page_id: page_id.to_owned(),
        media_type: "photo".into(),
        media_id: photo_id,
        created_time: unix(SystemTime::now()),
    });
    s.stories_published += 1;
    json(200, json!({ "success": true, "post_id": post_id }))
}

/// `GET /{page-id}/video_reels` (spec: `since`, `until`; returns `AdVideo`): the Page's
/// published reels once processed, newest first (drafts and unprocessed reels are not listed:
/// the fake's choice).
pub(super) fn list_reels(s: &mut Inner, tok: &IssuedToken, page_id: &str, p: &Params) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "video_reels") {
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
    let (since, until) = match (unix_param(p, "since"), unix_param(p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let mut reels: Vec<Video> = s
        .videos
        .values()
        .filter(|v| v.page_id == page_id && v.kind == VideoKind::Reel)
        .filter(|v| v.published && s.video_ready(&v.id))
        .filter(|v| since.is_none_or(|a| v.created_time >= a))
        .filter(|v| until.is_none_or(|b| v.created_time <= b))
        .cloned()
        .collect();
    reels.sort_by(|a, b| (b.published_at, &b.id).cmp(&(a.published_at, &a.id)));
    let ids: Vec<String> = reels.iter().map(|v| v.id.clone()).collect();
    let rows = reels.iter().map(|v| video_json(v, &f)).collect();
    match paginate(
        p,
        &ids,
        rows,
        &format!("/{}/{page_id}/video_reels", s.version),
    ) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// `GET /{page-id}/stories` (Stories API "Get stories"; spec returns `Stories`): rows of
/// `post_id`, `status` ("`PUBLISHED`, `ARCHIVED`"), `creation_time` ("UNIX timestamp"; the
/// example writes it as a string, `"123456"`, and the spec types it `string`), `media_type`
/// ("`video` or `photo`"), `media_id`, `url` ("such as
/// `https://facebook.com/stories/8283482737484972`"). The fake answers every field by default
/// (the guide's request names none), newest first; a story older than 24 hours is `ARCHIVED`
/// (the fake's choice: the guide says archived stories are listed when the Page's story
/// archive is on, which the fake takes as always).
pub(super) fn list_stories(
    s: &mut Inner,
    tok: &IssuedToken,
    page_id: &str,
    p: &Params,
) -> Response {
    if !can_see_page(s, tok, page_id) {
        return no_object(&Method::GET, page_id);
    }
    if let Err(r) = check_params(p, "Page", "GET", "stories") {
        return r;
    }
    let all = object_fields("Stories");
    let f = match fields(p, "Stories", &[], all) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = need(s, &["pages_read_engagement"], 10) {
        return r;
    }
    let (since, until) = match (unix_param(p, "since"), unix_param(p, "until")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let now = unix(SystemTime::now());
    let stories: Vec<PageStory> = s
        .stories
        .iter()
        .rev()
        .filter(|x| x.page_id == page_id)
        .filter(|x| since.is_none_or(|a| x.created_time >= a))
        .filter(|x| until.is_none_or(|b| x.created_time <= b))
        .cloned()
        .collect();
    let ids: Vec<String> = stories.iter().map(|x| x.post_id.clone()).collect();
    let rows = stories
        .iter()
        .map(|x| {
            let mut o = serde_json::Map::new();
            for field in &f {
                let v = match field.name.as_str() {
                    "post_id" => json!(x.post_id),
                    "status" => json!(if now - x.created_time < 86_400 {
                        "PUBLISHED"
                    } else {
                        "ARCHIVED"
                    }),
                    "creation_time" => json!(x.created_time.to_string()),
                    "media_type" => json!(x.media_type),
                    "media_id" => json!(x.media_id),
                    "url" => json!(format!("https://facebook.com/stories/{}", x.post_id)),
                    _ => continue,
                };
                o.insert(field.name.clone(), v);
            }
            Value::Object(o)
        })
        .collect();
    match paginate(p, &ids, rows, &format!("/{}/{page_id}/stories", s.version)) {
        Ok(v) => json(200, v),
        Err(r) => r,
    }
}

/// The token of an upload-host call: `Authorization: OAuth {page-access-token}` (the Reels
/// guide's and the video-ads upload guide's header; the Stories guide's examples omit it).
pub(super) fn oauth_header(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("oauth")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// `POST /video-upload/{version}/{video-id}`: the upload host (`rupload.facebook.com`) of reels
/// and video stories, served by the fake. Stories API "Upload a hosted file": "send a `POST`
/// request to the `upload_url` endpoint ... with ... `file_url` set to the URL for your video
/// file" (a header: `-H "file_url: https://some.cdn.url/video.mp4"`); "On upload success, your
/// app receives a JSON response with `success` set to `true`" (`{"success": true}`). The token
/// is `Authorization: OAuth {token}`, checked as `page_publisher` checks Page publishing.
///
/// The local-file variant ("`offset` set to `0`", "`file_size` set to the total size in bytes",
/// the bytes as the body) is refused (code 100): the fake takes no uploads. With
/// [`GraphFake::fetch_media`] on, the fake GETs the `file_url` (as Facebook, with the
/// `facebookexternalhit/1.1` user agent the guide names); an answer other than 200 fails the
/// upload with code 6000 (the fake's choice of code; the guide documents no error). Errors are
/// Graph's error object (the fake's choice: the upload host's own error shape is not
/// documented). Upload-host calls are not Graph calls: they take no injected throttle and are
/// not counted in [`GraphFake::graph_calls`].
pub(super) async fn rupload(
    state: &Shared,
    method: &Method,
    segs: &[String],
    headers: &HeaderMap,
    body: &Bytes,
    version: &str,
    fetch_on: bool,
) -> Response {
    if segs.len() != 3 || segs[1] != version {
        return err(
            2500,
            None,
            "OAuthException",
            &format!("Unknown path components: /{}", segs.join("/")),
        );
    }
    let video_id = segs[2].as_str();
    if method != Method::POST {
        return no_object(method, video_id);
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let file_url = header("file_url");
    let Some(file_url) = file_url else {
        if header("offset").is_some() || header("file_size").is_some() || !body.is_empty() {
            return bad_param(
                "(#100) The fake takes hosted files only (the file_url header); uploading the bytes with offset and file_size is not implemented",
            );
        }
        return bad_param("(#100) The upload needs the file_url header (a hosted file)");
    };
    if !http_url(&file_url) {
        return bad_param("(#100) The file_url header must be an http(s) URL");
    }
    {
        let s = state.lock().unwrap();
        let tok = match authenticate(&s, oauth_header(headers).as_deref()) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let Some(v) = s
            .videos
            .get(video_id)
            .filter(|v| v.kind != VideoKind::Video)
        else {
            return no_object(method, video_id);
        };
        if let Err(r) = page_publisher(&s, &tok, &v.page_id, &["pages_show_list"]) {
            return r;
        }
        if v.finished.is_some() {
            return bad_param("(#100) This video is already finished (the fake's message)");
        }
    }
    let fetched = if fetch_on {
        Some(fetch_status(&file_url).await)
    } else {
        None
    };
    let mut s = state.lock().unwrap();
    if let Some(res) = fetched {
        s.fetched.push((file_url.clone(), res.clone()));
        if res.as_ref().ok() != Some(&200) {
            return err(
                6000,
                None,
                "OAuthException",
                &format!(
                    "There was a problem uploading your video file: it could not be fetched from {file_url}"
                ),
            );
        }
    }
    let polls = s.video_polls;
    let failure = s.fail_next_video.pop_front();
    let Some(v) = s.videos.get_mut(video_id) else {
        return no_object(method, video_id);
    };
    // Sending the file again restarts the upload ("To restart the upload, resend the `POST`
    // request").
    v.file_url = file_url;
    v.uploaded = true;
    v.polls_left = polls;
    v.failure = failure;
    if v.kind == VideoKind::Reel {
        s.reels_uploaded += 1;
    }
    json(200, json!({ "success": true }))
}
