//! The profile, posting (Story, Spotlight, Saved Story) and reading posts back.

use super::*;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};

/// [3P: ≥6 connectors; getlate OpenAPI "Retrieves the current user's public profile given their
/// auth token"] `GET /v1/public_profiles/my_profile`. The entity's fields are [PROFILES]'s
/// ("The Public Profile Entity"): `id` ("UUID of the profile"), `organization_id` ("UUID of the
/// organization the profile belongs to"), `display_name` ("Profile display name"),
/// `snap_user_name` ("Snap-user-name this profile is hosted on"), `profile_type` (one of
/// `STORY_STUDIO_PUBLISHER, PUBLISHER_WITH_HOST_USER, PUBLIC_PROFILE,
/// PUBLIC_PROFILE_WITH_PUBLISHER_CONTENT`), `profile_tier` (`TIER_UNKNOWN, TIER_STANDARD,
/// TIER_PUBLIC, TIER_PUBLIC_OFFICIAL`), `logo_urls` (object; its key `original_logo_url` is
/// [3P: getlate]), `subscriber_count` ("Optional. The number of subscribers that the profile
/// has."; a string per [3P: getlate]). The wrapping is a contradiction among [3P] sources:
/// `public_profile: {…}` (getlate), or `public_profiles: [{sub_request_status,
/// public_profile}]` (`set_profile_wrapped`).
pub(super) async fn my_profile(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "my_profile");
    if let Err(r) = api_auth(&mut st, &headers) {
        return r;
    }
    let profile = json!({
        "id": PROFILE_ID,
        "organization_id": ORGANIZATION_ID,
        "display_name": DISPLAY_NAME,
        "snap_user_name": SNAP_USER_NAME,
        "profile_type": "PUBLIC_PROFILE",
        "profile_tier": "TIER_PUBLIC",
        "logo_urls": {"original_logo_url": "https://logos.snapchat.test/soku.snaps/original.png"},
        "subscriber_count": "1200",
    });
    if st.profile_wrapped {
        success(json!({"public_profiles": [
            {"sub_request_status": "SUCCESS", "public_profile": profile}
        ]}))
    } else {
        success(json!({ "public_profile": profile }))
    }
}

/// The media a post names, once it may be posted; its index. Undocumented: a media unknown to
/// the profile or not finalized (the fake chooses 400 `E1001`). [3P] logical errors:
/// `MEDIA_EXPIRED` (older than 24 h: [ASSET] "A media object stays active for 24 hours after
/// creation and can be used for story posting until then."), `MEDIA_POSTING_ALREADY_IN_PROGRESS`
/// (the fake: the media was posted before, or its post is in flight),
/// `MEDIA_PROCESSING` ([3P, one source] "Media stays in MEDIA_PROCESSING (server-side
/// transcoding) for a bit after FINALIZE"); `MEDIA_PROCESSING_FAILED` is the fake's choice.
fn ready_media(
    st: &mut Inner,
    profile_id: &str,
    media_id: &str,
    video_only: bool,
) -> Result<usize, Response> {
    let Some(i) = st
        .media
        .iter()
        .position(|m| m.info.id == media_id && m.info.profile_id == profile_id)
    else {
        return Err(invalid("media_id does not name a media of this profile"));
    };
    let m = &st.media[i];
    if !m.info.finalized {
        return Err(invalid("The media upload is not finalized."));
    }
    if video_only && m.info.kind != "VIDEO" {
        return Err(invalid("A Spotlight takes VIDEO media only."));
    }
    if m.expired() {
        return Err(logical(
            st,
            "MEDIA_EXPIRED",
            "The media is older than 24 hours; create a new one.",
        ));
    }
    if m.info.posted_as.is_some() {
        return Err(logical(
            st,
            "MEDIA_POSTING_ALREADY_IN_PROGRESS",
            "A post of this media is already in progress.",
        ));
    }
    if st.fail_processing {
        return Err(logical(
            st,
            "MEDIA_PROCESSING_FAILED",
            "The media could not be processed.",
        ));
    }
    if m.processing_left > 0 {
        st.media[i].processing_left -= 1;
        return Err(logical(
            st,
            "MEDIA_PROCESSING",
            "The media is still processing; try again later.",
        ));
    }
    Ok(i)
}

/// The checks a post shares: the token, the profile, a JSON body.
fn post_checks(
    st: &mut Inner,
    headers: &HeaderMap,
    profile_id: &str,
    body: &[u8],
) -> Result<Value, Response> {
    api_auth(st, headers)?;
    own_profile(profile_id)?;
    parse_json(headers, body)
}

fn media_id_of(v: &Value) -> Result<String, Response> {
    v["media_id"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| invalid("media_id is required"))
}

/// [3P: ≥8 connectors] `POST /v1/public_profiles/{profile_id}/stories`, `{"media_id"}`
/// (`customized_ttl` optional, its shape disputed: the fake takes and ignores it). Answer
/// `{request_id, request_status}`, with **no story id** [3P]. Images and videos both.
pub(super) async fn post_story(
    State(s): State<Shared>,
    Path(profile_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "stories");
    let result = post_checks(&mut st, &headers, &profile_id, &body).and_then(|body| {
        let media_id = media_id_of(&body)?;
        let i = ready_media(&mut st, &profile_id, &media_id, false)?;
        Ok((body, media_id, i))
    });
    let (body, media_id, i) = match result {
        Ok(v) => v,
        Err(r) => return r,
    };
    st.media[i].info.posted_as = Some("story".into());
    st.stories.push(FakeStory {
        id: uuid(),
        profile_id,
        media_id,
        created_at: SystemTime::now(),
        body,
    });
    success(json!({}))
}

fn locale_ok(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() == 5
        && b[..2].iter().all(u8::is_ascii_lowercase)
        && b[2] == b'_'
        && b[3..].iter().all(u8::is_ascii_uppercase)
}

/// [3P: ≥8 connectors] `POST /v1/public_profiles/{profile_id}/spotlights`, flat
/// `{media_id, description, locale, skip_save_to_profile}`: VIDEO media only (every source);
/// `description` ≤ 160 characters "including hashtags" (getlate, relayapi, dashsocial);
/// `locale` `en_US`-form, "Required for SPOTLIGHT" (dashsocial). Answer [3P, ≥4]
/// `{request_id, spotlight_id, request_status}`, the id "a base64url-like opaque string, not a
/// UUID". Review [3P]: `SUBMITTED` → `LIVE` | `REJECTED`.
pub(super) async fn post_spotlight(
    State(s): State<Shared>,
    Path(profile_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "spotlights");
    let result = post_checks(&mut st, &headers, &profile_id, &body).and_then(|body| {
        let media_id = media_id_of(&body)?;
        let description = match body.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION_CHARS => Some(d.clone()),
            _ => return Err(invalid("description must be at most 160 characters")),
        };
        let locale = body["locale"].as_str().unwrap_or("").to_owned();
        if !locale_ok(&locale) {
            return Err(invalid("locale is required, in the form en_US"));
        }
        let skip = match body.get("skip_save_to_profile") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            _ => return Err(invalid("skip_save_to_profile must be a boolean")),
        };
        let i = ready_media(&mut st, &profile_id, &media_id, true)?;
        Ok((body, media_id, description, locale, skip, i))
    });
    let (body, media_id, description, locale, skip, i) = match result {
        Ok(v) => v,
        Err(r) => return r,
    };
    st.media[i].info.posted_as = Some("spotlight".into());
    let id = {
        use base64::Engine;
        let b = digest(&[b"spotlight", &fresh_seed()]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&b[..30])
    };
    st.spotlights.push(FakeSpotlight {
        id: id.clone(),
        profile_id,
        media_id,
        status: "SUBMITTED".into(),
        description,
        locale,
        skip_save_to_profile: skip,
        created_at: SystemTime::now(),
        body,
    });
    success(json!({ "spotlight_id": id }))
}

/// [3P: 4 sources] `POST /v1/public_profiles/{profile_id}/saved_stories`,
/// `{"saved_stories": [{"title", "snap_sources": [{"media_id"}]}]}`; `title` ≤ 45 characters
/// (getlate, relayapi), whether required unknown (the fake: optional). Answer [3P, 2 sources]
/// `saved_stories: [{sub_request_status, saved_story: {id, …}}]`. Undocumented: how many
/// Saved Stories or Snaps a request may hold (the fake: any, each media once).
pub(super) async fn post_saved_stories(
    State(s): State<Shared>,
    Path(profile_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "saved_stories");
    let body = match post_checks(&mut st, &headers, &profile_id, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(list) = body["saved_stories"].as_array().filter(|l| !l.is_empty()) else {
        return invalid("saved_stories must be a non-empty array");
    };
    let mut wanted = Vec::new();
    for item in list {
        let title = match item.get("title") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t.chars().count() <= MAX_TITLE_CHARS => Some(t.clone()),
            _ => return invalid("title must be at most 45 characters"),
        };
        let Some(sources) = item["snap_sources"].as_array().filter(|l| !l.is_empty()) else {
            return invalid("snap_sources must be a non-empty array");
        };
        let mut ids = Vec::new();
        for src in sources {
            match media_id_of(src) {
                Ok(id)
                    if !wanted
                        .iter()
                        .any(|(_, w): &(_, Vec<String>)| w.contains(&id)) =>
                {
                    ids.push(id)
                }
                Ok(_) => return invalid("a media appears twice"),
                Err(r) => return r,
            }
        }
        wanted.push((title, ids));
    }
    let mut indices = Vec::new();
    for id in wanted.iter().flat_map(|(_, ids)| ids) {
        match ready_media(&mut st, &profile_id, id, false) {
            Ok(i) => indices.push(i),
            Err(r) => return r,
        }
    }
    for i in indices {
        st.media[i].info.posted_as = Some("saved_story".into());
    }
    let mut answers = Vec::new();
    for (title, media_ids) in wanted {
        let id = uuid();
        answers.push(json!({
            "sub_request_status": "SUCCESS",
            "saved_story": {"id": id, "title": title.clone().unwrap_or_default()},
        }));
        st.saved_stories.push(FakeSavedStory {
            id,
            profile_id: profile_id.clone(),
            title,
            media_ids,
            created_at: SystemTime::now(),
            body: body.clone(),
        });
    }
    success(json!({ "saved_stories": answers }))
}

fn spotlight_json(s: &FakeSpotlight) -> Value {
    json!({"sub_request_status": "SUCCESS", "spotlight": {
        "id": s.id,
        "profile_id": s.profile_id,
        "media_id": s.media_id,
        "status": s.status,
        "description": s.description.clone().unwrap_or_default(),
        "locale": s.locale,
        "created_at": iso(s.created_at),
    }})
}

/// Undocumented: `limit`'s default and bounds; the fake takes 1..=100, all when absent.
fn limit(q: &HashMap<String, String>) -> Result<usize, Response> {
    match q.get("limit") {
        None => Ok(usize::MAX),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| invalid("limit must be from 1 to 100")),
    }
}

/// [3P: 2 sources] `GET /v1/public_profiles/{profile_id}/spotlights/{spotlight_id}` →
/// `{spotlights: [{sub_request_status, spotlight: {id, profile_id, status, created_at, …}}]}`.
/// Unknown: 404 (undocumented: the fake chooses `E1004`).
pub(super) async fn get_spotlight(
    State(s): State<Shared>,
    Path((profile_id, spotlight_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "spotlight_get");
    if let Err(r) = api_auth(&mut st, &headers).and_then(|()| own_profile(&profile_id)) {
        return r;
    }
    match st.spotlights.iter().find(|x| x.id == spotlight_id) {
        Some(x) => success(json!({ "spotlights": [spotlight_json(x)] })),
        None => api_error(404, "E1004", "No such spotlight."),
    }
}

/// [3P: 1 source] `GET …/spotlights?limit=N`, the same wrapper. Undocumented: the order; the
/// fake answers newest first.
pub(super) async fn list_spotlights(
    State(s): State<Shared>,
    Path(profile_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "spotlights_list");
    let n = match api_auth(&mut st, &headers)
        .and_then(|()| own_profile(&profile_id))
        .and_then(|()| limit(&q))
    {
        Ok(n) => n,
        Err(r) => return r,
    };
    let list: Vec<Value> = st
        .spotlights
        .iter()
        .rev()
        .take(n)
        .map(spotlight_json)
        .collect();
    success(json!({ "spotlights": list }))
}

/// [3P: 1 source] `GET /v1/public_profiles/{profile_id}/stories?limit=100` →
/// `{stories: [{sub_request_status, story: {id, created_at}}]}` (the fake adds `media_id`).
/// Undocumented: the order and paging; the fake answers newest first, no paging.
pub(super) async fn list_stories(
    State(s): State<Shared>,
    Path(profile_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut st = s.lock().unwrap();
    count(&mut st, "stories_list");
    let n = match api_auth(&mut st, &headers)
        .and_then(|()| own_profile(&profile_id))
        .and_then(|()| limit(&q))
    {
        Ok(n) => n,
        Err(r) => return r,
    };
    let list: Vec<Value> = st
        .stories
        .iter()
        .rev()
        .take(n)
        .map(|x| {
            json!({"sub_request_status": "SUCCESS", "story": {
                "id": x.id,
                "media_id": x.media_id,
                "created_at": iso(x.created_at),
            }})
        })
        .collect();
    success(json!({ "stories": list }))
}
