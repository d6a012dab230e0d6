//! The server's error type and the one place that renders the spec's envelope.
//!
//! Handlers and extractors return `ApiError`. Its `IntoResponse` only sets the status and
//! stashes the error in the response's extensions; the request middleware, which knows the
//! request id, turns it into the envelope (`render`) and logs internal causes. Responses the
//! framework makes itself (404, 405, 413, ...) are given the envelope there too.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use soku_core::ErrorCode;
use soku_core::error::messages;
use std::borrow::Cow;
use std::fmt;

#[derive(Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub details: Option<Value>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// What went wrong inside, for the log only; never sent to the client.
    pub cause: Option<String>,
    /// A status other than the code's own (416 on a hosted file, whose envelope says
    /// `validation_error`).
    pub status: Option<StatusCode>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.code)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            headers: Vec::new(),
            cause: None,
            status: None,
        }
    }

    /// Answers with `status` instead of the code's own.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The envelope's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `details` of the envelope, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 `validation_error` naming the field and the reason.
    pub fn validation(field: &str, reason: &str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
            .with_details(json!({ "field": field, "reason": reason }))
    }

    pub fn invalid_api_key() -> Self {
        Self::new(ErrorCode::Unauthorized, messages::INVALID_API_KEY)
    }

    pub fn invalid_id_token() -> Self {
        Self::new(ErrorCode::Unauthorized, messages::INVALID_ID_TOKEN)
    }

    pub fn subscription_required() -> Self {
        Self::new(ErrorCode::Forbidden, messages::SUBSCRIPTION_REQUIRED)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("No {what} with that id."))
    }

    /// 500 with a cause for the log.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut e = Self::new(ErrorCode::InternalError, messages::INTERNAL);
        e.cause = Some(cause.to_string());
        e
    }

    pub fn unavailable(message: &'static str, cause: impl fmt::Display) -> Self {
        let mut e = Self::new(ErrorCode::ServiceUnavailable, message);
        e.cause = Some(cause.to_string());
        e
    }

    /// The envelope for a response the framework produced with this status. The only 503 the
    /// framework makes is the request timeout's (`server::REQUEST_TIMEOUT`); a 408 (a client
    /// too slow to send its request) and a 431 (headers over `limits`) are named as such, with
    /// the code of a bad request.
    pub fn for_framework_status(status: StatusCode, method: &str) -> Self {
        if status == StatusCode::REQUEST_TIMEOUT {
            return Self::new(
                ErrorCode::ValidationError,
                "The request did not arrive in time.",
            );
        }
        if status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE {
            return Self::new(ErrorCode::ValidationError, crate::limits::MESSAGE);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return Self::new(
                ErrorCode::ServiceUnavailable,
                "The request took too long to complete; try again later.",
            );
        }
        let code = ErrorCode::for_status(status.as_u16());
        let message: Cow<'static, str> = match code {
            ErrorCode::NotFound => "No such endpoint.".into(),
            ErrorCode::MethodNotAllowed => {
                format!("Method {method} is not allowed on this endpoint.").into()
            }
            ErrorCode::PayloadTooLarge => "The request body is larger than 1 MiB.".into(),
            ErrorCode::UnsupportedMediaType => {
                "Requests with a body must send Content-Type: application/json.".into()
            }
            ErrorCode::InternalError => messages::INTERNAL.into(),
            _ => "The request could not be understood.".into(),
        };
        Self::new(code, message)
    }

    pub fn status(&self) -> StatusCode {
        if let Some(status) = self.status {
            return status;
        }
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The envelope body (spec section 2).
    pub fn envelope(&self, request_id: &str, timestamp: &str) -> crate::views::ErrorEnvelope {
        crate::views::ErrorEnvelope {
            error: crate::views::ErrorBody {
                kind: self.code.error_type(),
                code: self.code.as_str(),
                message: self.message.to_string(),
                timestamp: timestamp.to_owned(),
                request_id: request_id.to_owned(),
                details: self.details.clone(),
            },
        }
    }
}

impl From<soku_core::StoreError> for ApiError {
    fn from(e: soku_core::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}
