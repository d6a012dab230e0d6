//! The Graph API's error bodies, throttling answers and usage headers.

use super::*;

/// A Graph API error body. Graph API "Handling Errors" (https://developers.facebook.com/docs/
/// graph-api/guides/error-handling) documents the object as `{"error":{"message","type":
/// "OAuthException","code","error_subcode","error_user_title","error_user_msg","fbtrace_id"}}`,
/// and the Instagram "Error Codes" sample answer is `{"error": {"message": "The image size is
/// too large.", "type": "OAuthException", "code": 36000, "error_subcode": 2207004,
/// "is_transient": false, "error_user_title": "Image size too large", "error_user_msg": "The
/// image is too large to download. It should be less than 8 MiB.", "fbtrace_id": "…"}}`.
/// `is_transient` is always sent; `error_subcode`, `error_user_title` and `error_user_msg` only
/// when there is one.
pub fn graph_error(
    code: i64,
    subcode: Option<i64>,
    kind: &str,
    message: &str,
    is_transient: bool,
    user: Option<(&str, &str)>,
) -> Value {
    let mut e = json!({
        "message": message,
        "type": kind,
        "code": code,
        "is_transient": is_transient,
        "fbtrace_id": token("A")[..12].to_owned(),
    });
    if let Some(sub) = subcode {
        e["error_subcode"] = json!(sub);
    }
    if let Some((title, msg)) = user {
        e["error_user_title"] = json!(title);
        e["error_user_msg"] = json!(msg);
    }
    json!({ "error": e })
}

pub(super) fn err(code: i64, subcode: Option<i64>, kind: &str, message: &str) -> Response {
    json(400, graph_error(code, subcode, kind, message, false, None))
}

pub(super) fn bad_param(message: &str) -> Response {
    err(100, None, "OAuthException", message)
}

/// Graph's answer for a node the token cannot see: code 100, subcode 33.
pub(super) fn no_object(method: &Method, node: &str) -> Response {
    err(
        100,
        Some(33),
        "GraphMethodException",
        &format!(
            "Unsupported {} request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            method.as_str().to_ascii_lowercase()
        ),
    )
}

/// An Instagram content publishing error, from the "Error Codes" reference table
/// (https://developers.facebook.com/documentation/instagram-platform/instagram-graph-api/
/// reference/error-codes): HTTP 400 and the table's code for each subcode. The messages are the
/// table's "User Message" where it gives one verbatim (2207003, 2207020, 2207001, 2207032,
/// 2207053, 2207057, 2207051, 2207042, 2207052, 2207027, 2207050); the others paraphrase the
/// row. Unknown subcodes answer code -1 (server error).
pub fn ig_error(subcode: i64, uri: Option<&str>) -> Value {
    let (code, message): (i64, String) = match subcode {
        2_207_003 => (-2, "It takes too long to download the media.".into()),
        2_207_020 => (
            -2,
            "The media you are trying to access has expired. Please try to upload again.".into(),
        ),
        2_207_001 => (-1, "Instagram server error. Try again.".into()),
        2_207_032 => (-1, "Create media fail, please try to re-create media".into()),
        2_207_053 => (-1, "unknown upload error".into()),
        2_207_057 => (
            1,
            "Thumbnail offset must be greater than or equal to 0 and less than video duration"
                .into(),
        ),
        2_207_051 => (
            4,
            "We restrict certain activity to protect our community. Tell us if you think we made a mistake.".into(),
        ),
        2_207_042 => (
            9,
            "You reached maximum number of posts that is allowed to be published by Content Publishing API.".into(),
        ),
        2_207_006 => (
            24,
            "The media with the given id cannot be found.".into(),
        ),
        2_207_008 => (
            24,
            "The media builder with the given id does not exist or has been expired.".into(),
        ),
        2_207_050 => (25, "The Instagram account is restricted.".into()),
        2_207_023 => (
            100,
            "The media type entered is not one of the expected media types.".into(),
        ),
        2_207_028 => (
            100,
            "Carousels need at least 2 photos/videos and no more than 10 photos/videos.".into(),
        ),
        2_207_040 => (
            100,
            "Cannot use more than 20 tags per created media.".into(),
        ),
        2_207_026 => (
            352,
            "The video format is not supported. Please check spec for supported format.".into(),
        ),
        2_207_052 => (
            9004,
            format!(
                "The media could not be fetched from this uri: {}",
                uri.unwrap_or("")
            ),
        ),
        2_207_027 => (
            9007,
            "The media is not ready for publishing, please wait for a moment".into(),
        ),
        2_207_004 => (36000, "The image is too large to download. It should be less than 8 MiB.".into()),
        2_207_005 => (36001, "The image format is not supported.".into()),
        2_207_009 => (
            36003,
            "The submitted image with aspect ratio cannot be published. Please submit an image with a valid aspect ratio.".into(),
        ),
        2_207_010 => (36004, "The caption was too long.".into()),
        _ => (-1, "Instagram server error. Try again.".into()),
    };
    // The table's "Recommended Solution" says which are worth a retry: -1, -2 and 24/2207008.
    let transient = matches!(code, -1 | -2) || subcode == 2_207_008;
    graph_error(
        code,
        Some(subcode),
        "OAuthException",
        &message,
        transient,
        Some(("Media error", &message)),
    )
}

pub(super) fn ig_err(subcode: i64, uri: Option<&str>) -> Response {
    json(400, ig_error(subcode, uri))
}

/// The throttled answer (Graph API "Rate Limiting"): the code, and the usage header at 100.
pub(super) fn throttled(t: Throttle, object: Option<(String, &'static str)>) -> Response {
    let (code, message) = match t {
        // The messages of 4, 17 and 32 are the live API's, not quoted from the documentation.
        Throttle::App => (4, "(#4) Application request limit reached".to_owned()),
        Throttle::User => (17, "(#17) User request limit reached".to_owned()),
        Throttle::PageUserToken => (
            32,
            "(#32) Page request limit reached".to_owned(),
        ),
        // "(#80001) There have been too many calls to this Page account. Wait a bit and try
        // again. …" (80002: "this Instagram account").
        Throttle::PageBuc => (
            80001,
            "(#80001) There have been too many calls to this Page account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".to_owned(),
        ),
        Throttle::InstagramBuc => (
            80002,
            "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.".to_owned(),
        ),
    };
    let mut r = json(
        400,
        graph_error(code, None, "OAuthException", &message, true, None),
    );
    match t {
        Throttle::App | Throttle::User => {
            let usage = AppUsage {
                call_count: 100,
                total_time: 100,
                total_cputime: 100,
            };
            set_header(&mut r, "x-app-usage", &app_usage_header(usage));
        }
        _ => {
            let (id, kind) = object.unwrap_or_else(|| {
                let kind = if t == Throttle::InstagramBuc {
                    "instagram"
                } else {
                    "pages"
                };
                (String::new(), kind)
            });
            set_header(
                &mut r,
                "x-business-use-case-usage",
                &buc_header(&id, kind, 100, 19),
            );
        }
    }
    r
}

/// `X-App-Usage: {"call_count": 28, "total_time": 25, "total_cputime": 25}` (percentages).
pub(super) fn app_usage_header(u: AppUsage) -> String {
    json!({
        "call_count": u.call_count,
        "total_time": u.total_time,
        "total_cputime": u.total_cputime,
    })
    .to_string()
}

/// `X-Business-Use-Case-Usage: {"{business-object-id}": [{"type": "{rate-limit-type}",
/// "call_count": 100, "total_cputime": 25, "total_time": 25, "estimated_time_to_regain_access":
/// 19}]}`; `type` one of "`ads_insights`, `ads_management`, `custom_audience`, `instagram`,
/// `leadgen`, `messenger`, or `pages`"; `estimated_time_to_regain_access` "Time, in minutes".
pub(super) fn buc_header(object_id: &str, kind: &str, pct: u32, regain_minutes: u32) -> String {
    json!({
        object_id: [{
            "type": kind,
            "call_count": pct,
            "total_cputime": pct,
            "total_time": pct,
            "estimated_time_to_regain_access": regain_minutes,
        }]
    })
    .to_string()
}

pub(super) fn set_header(r: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}
