//! JSON responses: `Json<T>`, used by the handlers in place of axum's.
//!
//! It answers `application/json; charset=utf-8` (the spec's content type) directly, and builds
//! the response's header map at the size every `/v1` answer reaches: content-type, the
//! content-length that axum adds, `X-Request-ID` and the four `X-RateLimit-*` from the
//! middleware, and one more (`Location`, `Retry-After`, ...). A header map created empty holds
//! six entries before it grows, and growing reallocates and moves them: on every response,
//! once rate limits put their headers on (see docs/RATE-LIMITS-PERFORMANCE.md).

use crate::error::ApiError;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const JSON_UTF8: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Headers a response is made ready for (see the module documentation).
pub const RESPONSE_HEADERS: usize = 8;

/// A header map with room for `RESPONSE_HEADERS` entries.
pub fn response_headers() -> HeaderMap {
    HeaderMap::with_capacity(RESPONSE_HEADERS)
}

/// A value serialised as the JSON body of a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(128);
        if let Err(e) = serde_json::to_writer(&mut body, &self.0) {
            return ApiError::internal(format_args!("a response did not serialise: {e}"))
                .into_response();
        }
        let mut headers = response_headers();
        headers.insert(CONTENT_TYPE, JSON_UTF8);
        let mut response = Response::new(Body::from(body));
        *response.headers_mut() = headers;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, StatusCode};

    #[tokio::test]
    async fn answers_json_with_room_for_every_header() {
        let mut response = Json(serde_json::json!({ "ok": true, "n": 1 })).into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], JSON_UTF8);
        let room = response.headers().capacity();
        // What the middleware and axum add must fit without the map growing.
        for name in [
            "content-length",
            "x-request-id",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-tier",
            "location",
        ] {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), HeaderValue::from_static("1"));
        }
        assert_eq!(response.headers().len(), RESPONSE_HEADERS);
        assert_eq!(response.headers().capacity(), room, "the header map grew");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"n":1,"ok":true}"#);
    }
}
