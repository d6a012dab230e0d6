//! Every request: the version prefix, injected faults, routing to the calls.

use super::*;

/// Every request: `/{version}/...`. Graph calls get the usage headers and the injected
/// throttles and outages; the login dialog and token calls do not.
pub(super) async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let (version, fetch_on) = {
        let s = state.lock().unwrap();
        (s.version.clone(), s.fetch_media)
    };
    if segs.first().map(String::as_str) == Some(UPLOAD_PATH) {
        return rupload(&state, &method, &segs, &headers, &body, &version, fetch_on).await;
    }
    if segs.first() != Some(&version) || !(2..=3).contains(&segs.len()) {
        return err(
            2500,
            None,
            "OAuthException",
            &format!("Unknown path components: {path}"),
        );
    }
    let rest: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
    let p = match read_params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match (&method, rest.as_slice()) {
        (&Method::GET, ["dialog", "oauth"]) => return dialog(&state, &p),
        (_, ["dialog", "oauth"]) => return no_object(&method, "dialog"),
        (&Method::GET, ["oauth", "access_token"]) => return oauth_access_token(&state, &p),
        (_, ["oauth", "access_token"]) => return no_object(&method, "oauth"),
        _ => {}
    }
    // Instagram and Facebook fetch media by URL: with the knob on, fetch before taking the lock.
    let mut fetched = HashMap::new();
    if fetch_on && method == Method::POST && matches!(rest.get(1), Some(&"media" | &"photos")) {
        for key in ["image_url", "video_url", "url"] {
            if let Some(u) = p.get(key) {
                fetched.insert(u.to_owned(), fetch_status(u).await);
            }
        }
    }
    let token =
        crate::common::bearer(&headers).or_else(|| p.get("access_token").map(str::to_owned));
    let mut s = state.lock().unwrap();
    s.graph_calls += 1;
    let object = business_object(&s, rest[0]);
    if let Some(injected) = s.injected.pop_front() {
        return match injected {
            Injected::Throttle(t) => throttled(t, object),
            // "2 | API Service" ("Handling Errors"); HTTP 500 is the fake's choice.
            Injected::Transient => json(
                500,
                graph_error(
                    2,
                    None,
                    "OAuthException",
                    "An unexpected error has occurred. Please retry your request later.",
                    true,
                    None,
                ),
            ),
        };
    }
    let mut r = graph_call(&mut s, &method, &rest, &p, token.as_deref(), &fetched);
    if method == Method::POST
        && matches!(rest.as_slice(), [_, "videos"])
        && r.status().is_success()
        && std::mem::take(&mut s.lose_next_video_answer)
    {
        // Taken, and the answer lost on the way back (`GraphFake::lose_next_video_answer`).
        r = json(
            500,
            graph_error(
                2,
                None,
                "OAuthException",
                "An unexpected error has occurred. Please retry your request later.",
                true,
                None,
            ),
        );
    }
    set_header(&mut r, "x-app-usage", &app_usage_header(s.app_usage));
    if let Some((id, kind)) = object {
        let u = s.app_usage;
        set_header(
            &mut r,
            "x-business-use-case-usage",
            &buc_header(&id, kind, u.call_count, 0),
        );
    }
    r
}

/// The business object a call is about, for `X-Business-Use-Case-Usage`: a Page (`pages`) or an
/// Instagram account (`instagram`).
pub(super) fn business_object(s: &Inner, node: &str) -> Option<(String, &'static str)> {
    if s.page(node).is_some() {
        return Some((node.to_owned(), "pages"));
    }
    if s.ig(node).is_some() {
        return Some((node.to_owned(), "instagram"));
    }
    if let Some(c) = s.containers.get(node) {
        return Some((c.ig_user_id.clone(), "instagram"));
    }
    if let Some(m) = s.media.iter().find(|m| m.id == node) {
        return Some((m.ig_user_id.clone(), "instagram"));
    }
    let page = s
        .posts
        .iter()
        .find(|x| x.id == node)
        .map(|x| x.page_id.clone())
        .or_else(|| s.photos.get(node).map(|x| x.page_id.clone()))
        .or_else(|| s.videos.get(node).map(|x| x.page_id.clone()))?;
    Some((page, "pages"))
}

pub(super) fn graph_call(
    s: &mut Inner,
    method: &Method,
    rest: &[&str],
    p: &Params,
    token: Option<&str>,
    fetched: &HashMap<String, Result<u16, String>>,
) -> Response {
    let tok = match authenticate(s, token) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let node = rest[0];
    let is_me = node == "me" || node == USER_ID;
    match (method.clone(), rest) {
        (Method::GET, [_]) if is_me && !matches!(tok.kind, TokenKind::Page(_)) => read_user(p),
        (Method::GET, [_]) if is_me => {
            let TokenKind::Page(page) = &tok.kind else {
                unreachable!()
            };
            let page = page.clone();
            read_page(s, &tok, &page, p)
        }
        (Method::GET, [_]) => read_node(s, &tok, node, p, method),
        (Method::GET, [_, "accounts"]) if is_me => accounts(s, &tok, p),
        (Method::GET, [_, edge @ ("posts" | "published_posts" | "feed")])
            if s.page(node).is_some() =>
        {
            list_page_posts(s, &tok, node, edge, p)
        }
        (Method::POST, [_, "feed"]) if s.page(node).is_some() => create_feed_post(s, &tok, node, p),
        (Method::POST, [_, "photos"]) if s.page(node).is_some() => {
            upload_photo(s, &tok, node, p, fetched)
        }
        (Method::POST, [_, "videos"]) if s.page(node).is_some() => upload_video(s, &tok, node, p),
        (Method::POST, [_, "media"]) if s.ig(node).is_some() => {
            create_container(s, &tok, node, p, fetched)
        }
        (Method::POST, [_, "media_publish"]) if s.ig(node).is_some() => {
            media_publish(s, &tok, node, p)
        }
        (Method::GET, [_, "content_publishing_limit"]) if s.ig(node).is_some() => {
            publishing_limit(s, &tok, node, p)
        }
        (Method::GET, [_, "media"]) if s.ig(node).is_some() => list_media(s, &tok, node, p, false),
        (Method::GET, [_, "stories"]) if s.ig(node).is_some() => list_media(s, &tok, node, p, true),
        (Method::GET, [_, "videos"]) if s.page(node).is_some() => list_videos(s, &tok, node, p),
        (Method::POST, [_, "video_reels"]) if s.page(node).is_some() => {
            video_session(s, &tok, node, p, VideoKind::Reel)
        }
        (Method::POST, [_, "video_stories"]) if s.page(node).is_some() => {
            video_session(s, &tok, node, p, VideoKind::Story)
        }
        (Method::GET, [_, "video_reels"]) if s.page(node).is_some() => list_reels(s, &tok, node, p),
        (Method::POST, [_, "photo_stories"]) if s.page(node).is_some() => {
            photo_story(s, &tok, node, p)
        }
        (Method::GET, [_, "stories"]) if s.page(node).is_some() => list_stories(s, &tok, node, p),
        _ => no_object(method, node),
    }
}
