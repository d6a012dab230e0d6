//! Instagram content publishing: containers, `media_publish`.

use super::*;

/// IG content publishing needs `instagram_basic`, `instagram_content_publish` and
/// `pages_read_engagement` (IG User Media, Media Publish references), and "`MANAGE` or
/// `CREATE_CONTENT` tasks on the Page".
#[allow(clippy::result_large_err)]
pub(super) fn ig_publisher(s: &Inner, tok: &IssuedToken, ig: &str) -> Result<(), Response> {
    if !can_see_ig(s, tok, ig) {
        return Err(no_object(&Method::POST, ig));
    }
    need(
        s,
        &[
            "instagram_basic",
            "instagram_content_publish",
            "pages_read_engagement",
        ],
        10,
    )?;
    let page = s.page(&s.ig(ig).unwrap().page_id).unwrap();
    if !can_create(page) {
        return Err(err(
            10,
            None,
            "OAuthException",
            "(#10) The user must have the MANAGE or CREATE_CONTENT task on the Page linked to this Instagram account",
        ));
    }
    Ok(())
}

/// Captions: "Maximum 2200 characters, 30 hashtags, and 20 @ tags" (IG User Media). Too long:
/// 36004/2207010; over 20 @ tags: 100/2207040 (Error Codes). The table has no row for more than
/// 30 hashtags: the fake answers code 100 without a subcode.
#[allow(clippy::result_large_err)]
pub(super) fn check_caption(caption: &str) -> Result<(), Response> {
    if caption.chars().count() > 2200 {
        return Err(ig_err(2_207_010, None));
    }
    let words = || caption.split(|c: char| c.is_whitespace());
    if words()
        .filter(|w| w.starts_with('#') && w.len() > 1)
        .count()
        > 30
    {
        return Err(bad_param(
            "(#100) The caption has more than 30 hashtags (the fake's message; the limit is documented)",
        ));
    }
    if words()
        .filter(|w| w.starts_with('@') && w.len() > 1)
        .count()
        > 20
    {
        return Err(ig_err(2_207_040, None));
    }
    Ok(())
}

/// `POST /{ig-user-id}/media` → `{"id":"<IG_CONTAINER_ID>"}` (IG User Media reference; the
/// spec types the answer as `IGMedia`, the documentation shows only `id`).
pub(super) fn create_container(
    s: &mut Inner,
    tok: &IssuedToken,
    ig: &str,
    p: &Params,
    fetched: &HashMap<String, Result<u16, String>>,
) -> Response {
    if let Err(r) = ig_publisher(s, tok, ig) {
        return r;
    }
    if let Err(r) = check_params(p, "IGUser", "POST", "media") {
        return r;
    }
    let bools = (p.bool("is_carousel_item"), p.bool("share_to_feed"));
    let (is_carousel_item, share_to_feed) = match bools {
        (Ok(a), Ok(b)) => (a.unwrap_or(false), b),
        (Err(e), _) | (_, Err(e)) => return bad_param(&e),
    };
    let image_url = p.get("image_url").map(str::to_owned);
    let video_url = p.get("video_url").map(str::to_owned);
    let caption = p.get("caption").map(str::to_owned);
    let cover_url = p.get("cover_url").map(str::to_owned);
    for u in [&image_url, &video_url, &cover_url].into_iter().flatten() {
        if !http_url(u) {
            return bad_param(&format!("(#100) Param {u} is not a valid URL"));
        }
    }
    if let Some(c) = &caption
        && let Err(r) = check_caption(c)
    {
        return r;
    }
    let thumb_offset = match p.get("thumb_offset").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        // "Thumbnail offset must be greater than or equal to 0 …" (1/2207057).
        Some(Err(_)) => return ig_err(2_207_057, None),
    };
    let collaborators = match p.list("collaborators") {
        Ok(v) => v,
        Err(e) => return bad_param(&e),
    };
    // `collaborators`: "up to 3", not for Stories.
    if collaborators.len() > 3 {
        return bad_param("(#100) Param collaborators takes up to 3 usernames");
    }
    // `trial_params`: "The `media_type` must be `REELS` if this parameter is included ...
    // `graduation_strategy` - **Required** ... either `MANUAL` or `SS_PERFORMANCE`".
    let trial_graduation = match p.get("trial_params") {
        None => None,
        Some(t) => {
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(t) else {
                return bad_param("(#100) Param trial_params must be a JSON object");
            };
            match o.get("graduation_strategy").and_then(Value::as_str) {
                Some(g @ ("MANUAL" | "SS_PERFORMANCE")) => Some(g.to_owned()),
                _ => {
                    return bad_param(
                        "(#100) trial_params.graduation_strategy must be MANUAL or SS_PERFORMANCE",
                    );
                }
            }
        }
    };
    let media_type = p.get("media_type");
    let kind = match (media_type, is_carousel_item) {
        // "`image_url`: For images only and required for images".
        (None, _) => {
            if image_url.is_none() || video_url.is_some() {
                return bad_param(
                    "(#100) The parameter image_url is required (a video takes media_type REELS, STORIES, or VIDEO in a carousel)",
                );
            }
            ContainerKind::Image
        }
        // Carousel items: "If the container will be for a video, set to `VIDEO`, `REELS`, or
        // `STORIES`"; "Reels cannot appear in carousels".
        (Some("VIDEO"), true) => ContainerKind::CarouselVideo,
        (Some("REELS"), false) => ContainerKind::Reel,
        (Some("STORIES"), false) => match (&image_url, &video_url) {
            (Some(_), None) => ContainerKind::StoryImage,
            (None, Some(_)) => ContainerKind::StoryVideo,
            // "Support either video URL or Reels URL but not both".
            _ => return bad_param("(#100) A story takes image_url or video_url, not both"),
        },
        (Some("CAROUSEL"), false) => ContainerKind::Carousel,
        // `VIDEO` is no longer accepted for single posts (since 9 Nov 2023), `IMAGE` never was.
        _ => return ig_err(2_207_023, None),
    };
    if matches!(kind, ContainerKind::CarouselVideo | ContainerKind::Reel) && video_url.is_none() {
        return bad_param("(#100) The parameter video_url is required for videos and reels");
    }
    if matches!(kind, ContainerKind::CarouselVideo | ContainerKind::Reel) && image_url.is_some() {
        return bad_param("(#100) A video container takes video_url, not image_url");
    }
    if kind != ContainerKind::Carousel && p.has("children") {
        return bad_param("(#100) children are for media_type CAROUSEL only");
    }
    if kind == ContainerKind::Carousel && (image_url.is_some() || video_url.is_some()) {
        return bad_param("(#100) A carousel container takes children, not media URLs");
    }
    // caption: "Not supported on images or videos in carousels" (refused: the fake's choice).
    if is_carousel_item && caption.is_some() {
        return bad_param("(#100) Carousel items take no caption; caption the carousel");
    }
    if kind != ContainerKind::Reel
        && (share_to_feed.is_some() || trial_graduation.is_some() || p.has("audio_name"))
    {
        return bad_param("(#100) share_to_feed, trial_params and audio_name are for reels only");
    }
    if !matches!(kind, ContainerKind::Reel)
        && (cover_url.is_some() || thumb_offset.is_some())
        && kind != ContainerKind::CarouselVideo
    {
        return bad_param("(#100) cover_url and thumb_offset are for videos only");
    }
    if matches!(kind, ContainerKind::StoryImage | ContainerKind::StoryVideo)
        && !collaborators.is_empty()
    {
        return bad_param("(#100) Stories take no collaborators");
    }
    let alt_text = p.get("alt_text").map(str::to_owned);
    if alt_text
        .as_deref()
        .is_some_and(|a| a.chars().count() > 1000)
    {
        return bad_param("(#100) alt_text takes up to 1000 characters");
    }
    let mut children = Vec::new();
    let mut error_subcode = s.fail_next_container.pop_front();
    if kind == ContainerKind::Carousel {
        children = match p.list("children") {
            Ok(v) => v,
            Err(e) => return bad_param(&e),
        };
        // "Carousels need at least 2 photos/videos and no more than 10" (100/2207028).
        if children.len() < 2 || children.len() > 10 {
            return ig_err(2_207_028, None);
        }
        for c in &children {
            let ok = s
                .containers
                .get(c)
                .is_some_and(|k| k.ig_user_id == ig && k.is_carousel_item && k.media_id.is_none());
            if !ok {
                return bad_param(&format!(
                    "(#100) The child {c} is not an unpublished carousel item container of this account"
                ));
            }
        }
    } else {
        for u in [&image_url, &video_url].into_iter().flatten() {
            if let Some(sub) = s.failing_urls.get(u) {
                error_subcode = error_subcode.or(Some(*sub));
            }
            if let Some(res) = fetched.get(u) {
                s.fetched.push((u.clone(), res.clone()));
                if res.as_ref().ok() != Some(&200) {
                    // 9004/2207052 "The media could not be fetched from this uri: {uri}".
                    error_subcode = error_subcode.or(Some(2_207_052));
                }
            }
        }
    }
    let id = s.id(17_900_000_000_000_000);
    let polls_left = s.container_polls;
    let ready_at = s.container_time.map(|d| Instant::now() + d);
    s.containers.insert(
        id.clone(),
        Container {
            id: id.clone(),
            ig_user_id: ig.to_owned(),
            kind,
            image_url,
            video_url,
            caption,
            is_carousel_item,
            children,
            share_to_feed,
            cover_url,
            thumb_offset,
            trial_graduation,
            collaborators,
            alt_text,
            polls_left,
            ready_at,
            error_subcode,
            created_at: SystemTime::now(),
            expired: false,
            media_id: None,
        },
    );
    s.containers_created += 1;
    json(200, json!({ "id": id }))
}

/// `POST /{ig-user-id}/media_publish` with `creation_id` → `{"id": "<IG_MEDIA_ID>"}`.
/// Refusals (Error Codes): not finished → 9007/2207027 "The media is not ready for publishing,
/// please wait for a moment"; expired → -2/2207020; failed → the container's own error; quota
/// used up → 9/2207042. An unknown or already published container is not in the table: the
/// fake answers 24/2207006 (media not found).
pub(super) fn media_publish(s: &mut Inner, tok: &IssuedToken, ig: &str, p: &Params) -> Response {
    if let Err(r) = ig_publisher(s, tok, ig) {
        return r;
    }
    if let Err(r) = check_params(p, "IGUser", "POST", "media_publish") {
        return r;
    }
    // The spec: `creation_id`, required, `unsigned int`.
    let Some(creation_id) = p.get("creation_id") else {
        return bad_param("(#100) The parameter creation_id is required");
    };
    if creation_id.parse::<u64>().is_err() {
        return bad_param("(#100) Param creation_id must be a valid ID");
    }
    let Some(c) = s
        .containers
        .get(creation_id)
        .filter(|c| c.ig_user_id == ig)
        .cloned()
    else {
        return ig_err(2_207_006, None);
    };
    if c.is_carousel_item {
        return bad_param("(#100) A carousel item is published through its carousel");
    }
    match s.container_status(&c) {
        ("FINISHED", _) => {}
        ("PUBLISHED", _) => return ig_err(2_207_006, None),
        ("EXPIRED", _) => return ig_err(2_207_020, None),
        ("ERROR", Some(sub)) => {
            let uri = c.image_url.as_deref().or(c.video_url.as_deref());
            return ig_err(sub, uri);
        }
        _ => return ig_err(2_207_027, None),
    }
    let now = unix(SystemTime::now());
    if s.api_publishes_since(ig, now - QUOTA_DURATION as i64) >= s.quota_total as usize {
        return ig_err(2_207_042, None);
    }
    let (media_type, product) = match c.kind {
        ContainerKind::Image => ("IMAGE", "FEED"),
        ContainerKind::CarouselVideo => ("VIDEO", "FEED"),
        // "A published reel reads back `media_type`=`VIDEO`".
        ContainerKind::Reel => ("VIDEO", "REELS"),
        ContainerKind::StoryImage => ("IMAGE", "STORY"),
        ContainerKind::StoryVideo => ("VIDEO", "STORY"),
        ContainerKind::Carousel => ("CAROUSEL_ALBUM", "FEED"),
    };
    let mut child_media = Vec::new();
    for child in &c.children {
        let mid = s.id(17_950_000_000_000_000);
        if let Some(k) = s.containers.get_mut(child) {
            k.media_id = Some(mid.clone());
        }
        child_media.push(mid);
    }
    let id = s.id(17_950_000_000_000_000);
    let username = s.ig(ig).map(|a| a.username.clone()).unwrap_or_default();
    let code = shortcode();
    s.media.push(IgMedia {
        id: id.clone(),
        ig_user_id: ig.to_owned(),
        container_id: Some(c.id.clone()),
        media_type: media_type.into(),
        media_product_type: product.into(),
        caption: c.caption.clone(),
        media_url: c.image_url.clone().or(c.video_url.clone()),
        children: child_media,
        permalink: permalink(product, &code, &username, &id),
        shortcode: code,
        timestamp: now,
        via_api: true,
    });
    s.containers.get_mut(&c.id).unwrap().media_id = Some(id.clone());
    s.publishes += 1;
    json(200, json!({ "id": id }))
}
