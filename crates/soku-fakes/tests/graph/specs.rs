//! The drift check: the fake against Meta's machine-readable API specs.
//!
//! `specs/graph-api-extract.json` holds the names, types and line numbers of the parameters and
//! fields the fake uses, taken from `facebook/facebook-business-sdk-codegen`
//! (`api_specs/specs/*.json`) by `specs/extract_graph_specs.py`; the script refuses to write a
//! name the specs do not have. These tests check, first, that every parameter in
//! `graph::CALLS` and every field in `graph::OBJECT_FIELDS` is in the extract with a
//! compatible type; then that every key of every object the running fake actually answers is a
//! field of the object's spec type (recursively), so that the tables cannot drift from the
//! fake's behaviour either. What the specs do not describe (OAuth, errors, usage headers,
//! `tasks`, the `config` keys, create-call answers) is pinned to documentation quotes in
//! `src/graph/` instead.

use crate::http::{Resp, get, post};
use serde_json::Value;
use soku_fakes::graph::{
    self, CALLS, EDGE_EXTRA_FIELDS, GENERIC_PARAMS, GraphFake, IG_USER_ID, Kind, OBJECT_FIELDS,
    PAGE_ID, PUBLISHING_PERMISSIONS,
};

const EXTRACT: &str = include_str!("../../specs/graph-api-extract.json");
const COMMIT: &str = "ad2b0b6fdfbe4d73ed0754cb4562ef20b72b40d4";

fn extract() -> Value {
    serde_json::from_str(EXTRACT).expect("the extract is JSON")
}

fn spec_call<'a>(x: &'a Value, node: &str, method: &str, endpoint: &str) -> Option<&'a Value> {
    x["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["node"] == node && c["method"] == method && c["endpoint"] == endpoint)
}

fn spec_field<'a>(x: &'a Value, spec_type: &str, field: &str) -> Option<&'a Value> {
    x["types"][spec_type]["fields"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == field)
}

/// The fake's parsing of a parameter fits the spec's type.
fn compatible(kind: Kind, spec_type: &str) -> bool {
    match kind {
        Kind::Str => spec_type == "string",
        Kind::Bool => spec_type == "bool",
        Kind::UInt => spec_type == "unsigned int" || spec_type == "int",
        Kind::DateTime => spec_type == "datetime" || spec_type == "unsigned int",
        Kind::List => spec_type.starts_with("list"),
        Kind::Map => spec_type == "map" || spec_type == "Object",
        Kind::Enum => spec_type.ends_with("_enum_param"),
    }
}

#[test]
fn the_extract_names_its_source() {
    let x = extract();
    assert_eq!(x["source"]["commit"], COMMIT);
    assert_eq!(x["source"]["specs_version"], "v25.0");
    assert_eq!(
        graph::DEFAULT_VERSION,
        "v25.0",
        "the fake's default is the specs' version"
    );
    for c in x["calls"].as_array().unwrap() {
        assert!(c["file"].as_str().unwrap().starts_with("api_specs/specs/"));
        assert!(c["line"].as_u64().unwrap() > 0);
        for p in c["params"].as_array().unwrap() {
            assert!(p["line"].as_u64().unwrap() > 0, "{p}");
        }
    }
}

#[test]
fn every_parameter_the_fake_accepts_is_in_the_spec_of_its_call() {
    let x = extract();
    let mut problems = Vec::new();
    for call in CALLS {
        let Some(spec) = spec_call(&x, call.spec_node, call.method, call.endpoint) else {
            problems.push(format!(
                "{} {} {}: not in the extract (add it to CALLS in specs/extract_graph_specs.py)",
                call.spec_node, call.method, call.endpoint
            ));
            continue;
        };
        for (name, kind) in call.params {
            assert!(!GENERIC_PARAMS.contains(name) || *name == "limit");
            let found = spec["params"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == *name);
            match found {
                None => problems.push(format!(
                    "{} {} {}: parameter {name} is not in the spec extract",
                    call.spec_node, call.method, call.endpoint
                )),
                Some(p) if !compatible(*kind, p["type"].as_str().unwrap()) => {
                    problems.push(format!(
                        "{} {} {}: parameter {name} is {kind:?} in the fake, {} in the spec",
                        call.spec_node, call.method, call.endpoint, p["type"]
                    ))
                }
                Some(_) => {}
            }
        }
        // The spec's required parameters are all accepted by the fake.
        for p in spec["params"].as_array().unwrap() {
            if p["required"] == true {
                assert!(
                    call.params.iter().any(|(n, _)| p["name"] == *n),
                    "{} {} {} requires {}",
                    call.spec_node,
                    call.method,
                    call.endpoint,
                    p["name"]
                );
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_field_the_fake_returns_is_in_the_spec_of_its_object() {
    let x = extract();
    let mut problems = Vec::new();
    for (spec_type, fields) in OBJECT_FIELDS {
        for f in *fields {
            if spec_field(&x, spec_type, f).is_none() {
                problems.push(format!("{spec_type}.{f} is not in the spec extract"));
            }
        }
    }
    // The edge extras are exactly the fields the specs lack (and are pinned to docs instead).
    for (node, edge, extra) in EDGE_EXTRA_FIELDS {
        let spec = spec_call(&x, node, "GET", edge).expect("edge in the extract");
        let row_type = spec["return"].as_str().unwrap();
        for f in *extra {
            assert!(
                spec_field(&x, row_type, f).is_none(),
                "{row_type}.{f} is in the specs now: move it to OBJECT_FIELDS"
            );
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_reel_and_story_phases_and_states_are_spec_enum_values() {
    let x = extract();
    for e in [
        "pagevideo_reels_upload_phase_enum_param",
        "pagevideo_stories_upload_phase_enum_param",
    ] {
        let values = x["enums"][e]["values"].as_array().unwrap();
        for v in graph::UPLOAD_PHASES {
            assert!(values.iter().any(|x| x == v), "{e} lacks {v}");
        }
    }
    let reels = x["enums"]["pagevideo_reels_video_state_enum_param"]["values"]
        .as_array()
        .unwrap();
    for v in ["PUBLISHED", "DRAFT"] {
        assert!(reels.iter().any(|x| x == v) && graph::VIDEO_STATES.contains(&v));
    }
    let stories = x["enums"]["pagevideo_stories_video_state_enum_param"]["values"]
        .as_array()
        .unwrap();
    assert!(stories.iter().any(|x| x == "PUBLISHED"));
}

#[test]
fn the_scheduled_content_type_is_a_spec_enum_value() {
    let x = extract();
    let values = &x["enums"]["pagefeed_unpublished_content_type_enum_param"]["values"];
    assert!(values.as_array().unwrap().iter().any(|v| v == "SCHEDULED"));
}

/// Checks every key of `v` against `spec_type`, recursing into spec types the extract has.
fn check_object(
    x: &Value,
    spec_type: &str,
    v: &Value,
    extra: &[&str],
    at: &str,
    out: &mut Vec<String>,
) {
    let Value::Object(o) = v else {
        out.push(format!("{at}: not an object: {v}"));
        return;
    };
    for (k, val) in o {
        if extra.contains(&k.as_str()) {
            continue;
        }
        let Some(f) = spec_field(x, spec_type, k) else {
            out.push(format!("{at}.{k}: not a field of {spec_type} in the specs"));
            continue;
        };
        let t = f["type"].as_str().unwrap();
        let path = format!("{at}.{k}");
        let ok = match t {
            "string" => val.is_string(),
            "bool" => val.is_boolean(),
            "int" | "unsigned int" => val.is_i64() || val.is_u64(),
            "datetime" => val
                .as_str()
                .is_some_and(|s| s.len() == 24 && s.ends_with("+0000") && s.as_bytes()[10] == b'T'),
            "Object" => val.is_object(),
            _ => {
                if let Some(inner) = t.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
                    for (i, item) in val.as_array().into_iter().flatten().enumerate() {
                        check_object(x, inner, item, &[], &format!("{path}[{i}]"), out);
                    }
                    val.is_array()
                } else if x["types"].get(t).is_some() {
                    check_object(x, t, val, &[], &path, out);
                    true
                } else {
                    out.push(format!("{path}: spec type {t} is not in the extract"));
                    true
                }
            }
        };
        if !ok {
            out.push(format!("{path}: {val} does not fit the spec type {t}"));
        }
    }
}

fn rows(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{r:?}");
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_object_the_running_fake_answers_fits_its_spec() {
    let x = extract();
    let g = GraphFake::start().await;
    g.set_container_polls(0);
    g.set_video_polls(0);
    let user = g.grant_token(PUBLISHING_PERMISSIONS);
    let page = g.page_token(&user, PAGE_ID);
    let mut seen: Vec<(&str, Vec<&str>, Value)> = Vec::new();

    seen.push((
        "User",
        vec![],
        get(&g, "me?fields=id,name", &user).await.body,
    ));
    for row in rows(
        &get(
            &g,
            "me/accounts?fields=id,name,category,access_token,tasks,instagram_business_account{id,username,name,profile_picture_url}",
            &user,
        )
        .await,
    ) {
        seen.push(("Page", vec!["tasks"], row));
    }
    let page_read = get(
        &g,
        &format!("{PAGE_ID}?fields=id,name,category,instagram_business_account"),
        &page,
    )
    .await;
    seen.push(("Page", vec![], page_read.body));
    let ig = get(
        &g,
        &format!("{IG_USER_ID}?fields=id,username,name,profile_picture_url"),
        &page,
    )
    .await;
    seen.push(("IGUser", vec![], ig.body));

    let container = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[
            ("image_url", "https://cdn.test/a.jpg"),
            ("caption", "hi #soku"),
        ],
    )
    .await
    .id();
    let status = get(
        &g,
        &format!("{container}?fields=id,status_code,status"),
        &page,
    )
    .await;
    seen.push(("ShadowIGMediaBuilder", vec![], status.body));
    let media = post(
        &g,
        &format!("{IG_USER_ID}/media_publish"),
        &page,
        &[("creation_id", &container)],
    )
    .await
    .id();
    let all_media = "id,caption,timestamp,permalink,media_type,media_product_type,shortcode,username,media_url,owner{id,username}";
    seen.push((
        "IGMedia",
        vec![],
        get(&g, &format!("{media}?fields={all_media}"), &page)
            .await
            .body,
    ));
    for row in rows(&get(&g, &format!("{IG_USER_ID}/media?fields={all_media}"), &page).await) {
        seen.push(("IGMedia", vec![], row));
    }
    for row in rows(
        &get(
            &g,
            &format!("{IG_USER_ID}/content_publishing_limit?fields=config,quota_usage"),
            &page,
        )
        .await,
    ) {
        seen.push(("ContentPublishingLimitResponse", vec![], row));
    }

    let photo = post(
        &g,
        &format!("{PAGE_ID}/photos"),
        &page,
        &[("url", "https://cdn.test/p.jpg"), ("caption", "a photo")],
    )
    .await;
    let photo_id = photo.id();
    seen.push((
        "Photo",
        vec![],
        get(&g, &format!("{photo_id}?fields=id,created_time"), &page)
            .await
            .body,
    ));
    let video = post(
        &g,
        &format!("{PAGE_ID}/videos"),
        &page,
        &[
            ("file_url", "https://cdn.test/v.mp4"),
            ("description", "a video"),
            ("title", "T"),
        ],
    )
    .await
    .id();
    let all_video = "id,status,description,title,created_time,permalink_url,published";
    let all_video_row = "id,description,title,created_time,permalink_url,published";
    seen.push((
        "AdVideo",
        vec![],
        get(&g, &format!("{video}?fields={all_video}"), &page)
            .await
            .body,
    ));
    g.fail_next_video(1363008, "Resolution too low");
    let bad_video = post(
        &g,
        &format!("{PAGE_ID}/videos"),
        &page,
        &[("file_url", "https://cdn.test/w.mp4")],
    )
    .await
    .id();
    seen.push((
        "AdVideo",
        vec![],
        get(&g, &format!("{bad_video}?fields=status"), &page)
            .await
            .body,
    ));
    post(
        &g,
        &format!("{PAGE_ID}/feed"),
        &page,
        &[("message", "hello"), ("link", "https://soku.test/")],
    )
    .await
    .id();
    for edge in ["posts", "published_posts", "feed"] {
        for row in rows(
            &get(
                &g,
                &format!("{PAGE_ID}/{edge}?fields=id,message,created_time,permalink_url"),
                &page,
            )
            .await,
        ) {
            seen.push(("PagePost", vec![], row));
        }
    }
    for row in rows(
        &get(
            &g,
            &format!(
                "{PAGE_ID}/videos?fields=id,description,title,created_time,permalink_url,published"
            ),
            &page,
        )
        .await,
    ) {
        seen.push(("AdVideo", vec![], row));
    }
    let story = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[
            ("media_type", "STORIES"),
            ("video_url", "https://cdn.test/s.mp4"),
        ],
    )
    .await
    .id();
    post(
        &g,
        &format!("{IG_USER_ID}/media_publish"),
        &page,
        &[("creation_id", &story)],
    )
    .await
    .id();
    for row in rows(
        &get(
            &g,
            &format!("{IG_USER_ID}/stories?fields={all_media}"),
            &page,
        )
        .await,
    ) {
        seen.push(("IGMedia", vec![], row));
    }
    // Page reels and stories: the status of a reel before and after its upload, the reels
    // and stories listings.
    let start = post(
        &g,
        &format!("{PAGE_ID}/video_reels"),
        &page,
        &[("upload_phase", "start")],
    )
    .await;
    let reel = start.body["video_id"].as_str().unwrap().to_owned();
    seen.push((
        "AdVideo",
        vec![],
        get(&g, &format!("{reel}?fields=status"), &page).await.body,
    ));
    let auth = format!("OAuth {page}");
    let up = crate::http::request(
        "POST",
        start.body["upload_url"].as_str().unwrap(),
        &[
            ("Authorization", &auth),
            ("file_url", "https://cdn.test/r.mp4"),
        ],
        None,
    )
    .await;
    assert_eq!(up.status, 200, "{up:?}");
    post(
        &g,
        &format!("{PAGE_ID}/video_reels"),
        &page,
        &[
            ("upload_phase", "finish"),
            ("video_id", &reel),
            ("video_state", "PUBLISHED"),
            ("description", "a reel"),
            ("title", "R"),
        ],
    )
    .await;
    seen.push((
        "AdVideo",
        vec![],
        get(&g, &format!("{reel}?fields={all_video}"), &page)
            .await
            .body,
    ));
    for row in rows(
        &get(
            &g,
            &format!("{PAGE_ID}/video_reels?fields={all_video_row}"),
            &page,
        )
        .await,
    ) {
        seen.push(("AdVideo", vec![], row));
    }
    let unpublished = post(
        &g,
        &format!("{PAGE_ID}/photos"),
        &page,
        &[("url", "https://cdn.test/s.jpg"), ("published", "false")],
    )
    .await
    .id();
    post(
        &g,
        &format!("{PAGE_ID}/photo_stories"),
        &page,
        &[("photo_id", &unpublished)],
    )
    .await;
    let story_rows = rows(&get(&g, &format!("{PAGE_ID}/stories"), &page).await);
    assert!(!story_rows.is_empty());
    for row in story_rows {
        seen.push(("Stories", vec![], row));
    }

    let post_id = photo.body["post_id"].as_str().unwrap().to_owned();
    seen.push((
        "PagePost",
        vec![],
        get(
            &g,
            &format!("{post_id}?fields=id,message,created_time,permalink_url"),
            &page,
        )
        .await
        .body,
    ));

    let mut problems = Vec::new();
    for (i, (t, extra, v)) in seen.iter().enumerate() {
        assert!(v.get("error").is_none(), "{t}: {v}");
        check_object(&x, t, v, extra, &format!("#{i} {t}"), &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The nested objects were seen (so the recursion above was exercised).
    let text = serde_json::to_string(&seen.iter().map(|s| &s.2).collect::<Vec<_>>()).unwrap();
    for needle in [
        "instagram_business_account",
        "owner",
        "processing_phase",
        "errors",
        "quota_total",
        "publish_status",
        "media_type",
    ] {
        assert!(text.contains(needle), "{needle} was not answered");
    }
}

#[tokio::test]
async fn parameters_outside_the_table_are_refused() {
    let g = GraphFake::start().await;
    let user = g.grant_token(PUBLISHING_PERMISSIONS);
    let page = g.page_token(&user, PAGE_ID);
    // `message` on photos is "Deprecated. Please use the caption param".
    let r = post(
        &g,
        &format!("{PAGE_ID}/photos"),
        &page,
        &[("url", "https://cdn.test/p.jpg"), ("message", "x")],
    )
    .await;
    assert_eq!(r.code(), (100, None));
    let r = post(
        &g,
        &format!("{IG_USER_ID}/media"),
        &page,
        &[("image_url", "https://cdn.test/a.jpg"), ("text", "x")],
    )
    .await;
    assert_eq!(r.code(), (100, None));
    let r = get(
        &g,
        &format!("{IG_USER_ID}?fields=id,biography_of_nobody"),
        &page,
    )
    .await;
    assert_eq!(r.code(), (100, None));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nonexisting field")
    );
}
