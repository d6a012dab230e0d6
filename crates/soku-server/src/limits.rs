//! Limits on a request's head, enforced by the application so that a refusal has the spec's
//! envelope and `X-Request-ID` (the layer sits inside `middleware::request_context`, which
//! renders both): the header section's size (431), and no NUL character in the URI (below).
//!
//! hyper answers oversized heads itself, with a bare 431 and no body, before any application
//! code runs; its ceilings (`server::MAX_HEAD_BYTES`, `server::MAX_HEAD_FIELDS`) are therefore
//! set well above these limits, so that only heads beyond anything a client could mean get
//! hyper's answer.
//!
//! The numbers follow common servers: nginx reads a header line into an 8 KiB buffer and a
//! request's head into at most four of them (32 KiB); Apache allows 8,190 bytes per field and
//! 100 fields; hyper's own default is 100 fields. Soku's clients send a handful of short
//! headers; the largest legitimate ones are a Firebase ID token (1-2 KiB) and the dashboard's
//! session cookie.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use serde_json::json;
use soku_core::ErrorCode;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The most header fields a request may have (a repeated name counts once per line).
pub const MAX_HEADER_FIELDS: usize = 100;

/// The longest header line, name, `: `, value and line end counted, in bytes.
pub const MAX_HEADER_LINE_BYTES: usize = 8 * 1024;

/// The largest header section, every line counted as in `MAX_HEADER_LINE_BYTES`, in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The message of every refusal; `details` says which limit was passed.
pub const MESSAGE: &str = "The request's headers are too large: at most 100 header fields, \
                           8 KiB per field and 32 KiB in all.";

/// Which limit a header section passes, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Excess {
    /// More than `MAX_HEADER_FIELDS` fields.
    TooMany(usize),
    /// This field's line is longer than `MAX_HEADER_LINE_BYTES`.
    LineTooLong(String),
    /// The section is larger than `MAX_HEADER_BYTES`.
    TooLarge(usize),
}

/// The size of a header line as HTTP/1 sends it: `name: value\r\n`.
fn line_bytes(name: &str, value: &[u8]) -> usize {
    name.len() + value.len() + 4
}

/// Checks `headers` against the limits.
pub fn check(headers: &HeaderMap) -> Result<(), Excess> {
    if headers.len() > MAX_HEADER_FIELDS {
        return Err(Excess::TooMany(headers.len()));
    }
    let mut total = 0;
    for (name, value) in headers {
        let line = line_bytes(name.as_str(), value.as_bytes());
        if line > MAX_HEADER_LINE_BYTES {
            return Err(Excess::LineTooLong(name.as_str().to_owned()));
        }
        total += line;
    }
    if total > MAX_HEADER_BYTES {
        return Err(Excess::TooLarge(total));
    }
    Ok(())
}

/// A NUL character (`%00`) in the request's URI, answered before any handler runs: no id, file
/// name or parameter of this server can hold one, and PostgreSQL refuses text holding one in a
/// query (an unknown id would be a 500 there and a 404 on SQLite). In the path: 404
/// `not_found`; in the query: 400 `validation_error` naming the parameter.
pub fn check_uri(uri: &Uri) -> Result<(), ApiError> {
    const NUL: &str = "%00";
    if uri.path().contains(NUL) {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "Nothing here has a NUL character (%00) in its path.",
        ));
    }
    let Some(query) = uri.query().filter(|q| q.contains(NUL)) else {
        return Ok(());
    };
    let pair = query
        .split('&')
        .find(|pair| pair.contains(NUL))
        .unwrap_or("");
    let name = pair.split('=').next().unwrap_or("");
    // Parameter names of this API are plain words; anything else is named as the query.
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let field = if plain { name } else { "query" };
    Err(ApiError::validation(
        field,
        "invalid_value",
        format!("'{field}' must not contain the NUL character (%00)."),
    ))
}

impl Excess {
    /// The 431 `validation_error` (the spec's codes have none for 431; like a 408, it is a
    /// request the client must change), naming the offending header when there is one.
    pub fn into_response(self) -> Response {
        let details = match self {
            Excess::TooMany(count) => json!({
                "field": "headers",
                "reason": "too_many",
                "count": count,
                "limit": MAX_HEADER_FIELDS,
            }),
            Excess::LineTooLong(name) => json!({
                "field": name,
                "reason": "too_long",
                "limit": MAX_HEADER_LINE_BYTES,
            }),
            Excess::TooLarge(bytes) => json!({
                "field": "headers",
                "reason": "too_long",
                "bytes": bytes,
                "limit": MAX_HEADER_BYTES,
            }),
        };
        let error = ApiError::new(ErrorCode::ValidationError, MESSAGE).with_details(details);
        let mut response = error.into_response();
        *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        response
    }
}

/// The layer refusing requests whose headers pass a limit (see the module's docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderLimitLayer;

impl<S> Layer<S> for HeaderLimitLayer {
    type Service = HeaderLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HeaderLimit { inner }
    }
}

/// The service of `HeaderLimitLayer`: a synchronous check, then the inner service's own future
/// (no allocation on the way through).
#[derive(Debug, Clone)]
pub struct HeaderLimit<S> {
    inner: S,
}

impl<S> Service<Request> for HeaderLimit<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Err(excess) = check(req.headers()) {
            return Either::Left(ready(Ok(excess.into_response())));
        }
        match check_uri(req.uri()) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err(error) => Either::Left(ready(Ok(error.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(fields: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_and_one_byte_more_does_not() {
        let name = "authorization";
        let fits = "a".repeat(MAX_HEADER_LINE_BYTES - name.len() - 4);
        assert_eq!(check(&headers(&[(name, fits.clone())])), Ok(()));
        let over = format!("{fits}a");
        assert_eq!(
            check(&headers(&[(name, over)])),
            Err(Excess::LineTooLong(name.into()))
        );
    }

    #[test]
    fn a_nul_in_the_uri_is_refused_and_an_encoded_percent_is_not() {
        let refused = |uri: &str| check_uri(&uri.parse().unwrap()).unwrap_err();
        let path = refused("/v1/posts/%00");
        assert_eq!(path.status(), StatusCode::NOT_FOUND);
        let query = refused("/v1/posts?limit=5&cursor=MTc%00&status=queued");
        assert_eq!(query.status(), StatusCode::BAD_REQUEST);
        assert_eq!(query.details.as_ref().unwrap()["field"], "cursor");
        let odd_name = refused("/v1/posts?a%20b=%00");
        assert_eq!(odd_name.details.as_ref().unwrap()["field"], "query");
        for fine in [
            "/v1/posts/%2500",
            "/v1/posts?cursor=%2500",
            "/healthz",
            "/v1/me?",
        ] {
            assert!(check_uri(&fine.parse().unwrap()).is_ok(), "{fine}");
        }
    }

    #[test]
    fn the_message_states_the_limits() {
        assert!(MESSAGE.contains(&format!("at most {MAX_HEADER_FIELDS} header fields")));
        assert!(MESSAGE.contains(&format!("{} KiB per field", MAX_HEADER_LINE_BYTES / 1024)));
        assert!(MESSAGE.contains(&format!("{} KiB in all", MAX_HEADER_BYTES / 1024)));
    }

    #[test]
    fn repeated_names_count_once_per_line() {
        let mut map = HeaderMap::new();
        for _ in 0..=MAX_HEADER_FIELDS {
            map.append("x-a", HeaderValue::from_static("1"));
        }
        assert_eq!(check(&map), Err(Excess::TooMany(MAX_HEADER_FIELDS + 1)));
    }

    #[test]
    fn the_section_counts_every_line() {
        let value = "v".repeat(7 * 1024);
        let names = ["x-1", "x-2", "x-3", "x-4", "x-5"];
        let four: Vec<_> = names[..4].iter().map(|n| (*n, value.clone())).collect();
        assert_eq!(check(&headers(&four)), Ok(()));
        let five: Vec<_> = names.iter().map(|n| (*n, value.clone())).collect();
        assert_eq!(
            check(&headers(&five)),
            Err(Excess::TooLarge(5 * (7 * 1024 + 3 + 4)))
        );
    }
}
