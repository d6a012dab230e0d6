//! The request middleware: request ids, who is asking and rate limits, the error envelope,
//! panics, metrics and access logs.
//!
//! Every response gets a fresh `X-Request-ID: req_<12>` (an incoming one is not trusted). Every
//! log line written while the request runs carries the id through the `request` span. Any
//! non-2xx response leaves here with the spec's envelope, whether a handler returned an
//! `ApiError`, the framework rejected the request itself, or the handler panicked.

use crate::auth::{self, Accepts, Identified};
use crate::error::ApiError;
use crate::json::{JSON_UTF8, RESPONSE_HEADERS};
use crate::ratelimit::{self, Admission};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = soku_core::keys::random_id("req_", 12);
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = route.as_deref().unwrap_or("unmatched"),
    );

    // Rate limits (when on) for `/v1` and the dashboard's composer: `auth` says who is
    // asking, once, and the limiter counts them here, so that a refusal gets the envelope and
    // every answer, a panic's included, gets the X-RateLimit headers. Who is asking is left in
    // the request's extensions for the route's extractor. The count and the handler run in
    // one future inside the request's span (each future instrumented on its own enters and
    // leaves the span at every poll).
    let (admission, response) = async {
        let mut admission = None;
        let path = req.uri().path();
        if let Some(rl) = state.rate_limits.as_ref()
            && let Some(counted_as) = ratelimit::counted_as(&method, path, route.as_deref())
        {
            let accepts = Accepts::of_route(&method, route.as_deref().unwrap_or(path));
            let identity = auth::identify(&state, accepts, req.headers(), req.extensions()).await;
            admission = Some(rl.admit(&state, &identity, &method, counted_as).await);
            req.extensions_mut()
                .insert(Identified { accepts, identity });
        }
        let response = match admission.as_mut().and_then(Admission::take_refusal) {
            Some(refused) => refused,
            None => match AssertUnwindSafe(next.run(req)).catch_unwind().await {
                Ok(response) => response,
                Err(_) => ApiError::internal("the request handler panicked").into_response(),
            },
        };
        (admission, response)
    }
    .instrument(span.clone())
    .await;

    let _entered = span.enter();
    let mut response = finish(&state, response, &request_id, &method);
    if let Some(admission) = admission {
        admission.put_headers(response.headers_mut());
    }
    response.headers_mut().insert(
        REQUEST_ID.clone(),
        HeaderValue::from_str(&request_id).expect("request ids are ascii"),
    );
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.record_request(
        route.as_deref().unwrap_or("unmatched"),
        method_label(&method),
        status,
        elapsed,
    );
    tracing::info!(
        status,
        elapsed_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Renders the envelope for any error response and normalises the JSON content type.
fn finish(state: &AppState, mut response: Response, request_id: &str, method: &Method) -> Response {
    let status = response.status();
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(e) => e,
        None if status.is_client_error() || status.is_server_error() => {
            ApiError::for_framework_status(status, method.as_str())
        }
        None => {
            if response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v == "application/json")
            {
                response.headers_mut().insert(CONTENT_TYPE, JSON_UTF8);
            }
            return response;
        }
    };
    if let Some(cause) = &error.cause {
        if status.is_server_error() {
            tracing::error!(code = error.code.as_str(), cause = %cause, "request failed");
        } else {
            tracing::warn!(code = error.code.as_str(), cause = %cause, "request refused");
        }
    }
    let timestamp = soku_core::time::rfc3339_millis(state.clock.now());
    let body = serde_json::to_vec(&error.envelope(request_id, &timestamp))
        .expect("an envelope serialises");
    let (mut parts, _old_body) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    // Room for what comes after, as `Json` makes (an error's response starts empty).
    parts.headers.reserve(RESPONSE_HEADERS);
    parts.headers.insert(CONTENT_TYPE, JSON_UTF8);
    for (name, value) in error.headers {
        parts.headers.insert(name, value);
    }
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
