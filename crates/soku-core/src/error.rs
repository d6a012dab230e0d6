//! The error codes of the contract (spec section 2). Clients branch on `code`; the status and
//! the `type` follow from it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationError,
    MissingAccount,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    IdempotencyConflict,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    InternalError,
    ServiceUnavailable,
    UploadFailed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        Self::ValidationError,
        Self::MissingAccount,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::IdempotencyConflict,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimitExceeded,
        Self::InternalError,
        Self::ServiceUnavailable,
        Self::UploadFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationError => "validation_error",
            Self::MissingAccount => "missing_account",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::IdempotencyConflict => "idempotency_conflict",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::InternalError => "internal_error",
            Self::ServiceUnavailable => "service_unavailable",
            Self::UploadFailed => "upload_failed",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::ValidationError | Self::MissingAccount | Self::UploadFailed => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::IdempotencyConflict | Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimitExceeded => 429,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
        }
    }

    /// The envelope's `type`, derived from the status as section 2 says.
    pub fn error_type(self) -> &'static str {
        type_for_status(self.status())
    }

    /// The code used when the framework itself rejects a request with this status.
    pub fn for_status(status: u16) -> ErrorCode {
        match status {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::IdempotencyConflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::RateLimitExceeded,
            503 => Self::ServiceUnavailable,
            400..=499 => Self::ValidationError,
            _ => Self::InternalError,
        }
    }
}

pub fn type_for_status(status: u16) -> &'static str {
    match status {
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The messages the contract quotes exactly.
pub mod messages {
    pub const INVALID_API_KEY: &str = "Invalid or missing API key.";
    pub const INVALID_ID_TOKEN: &str = "Invalid or missing ID token.";
    pub const SUBSCRIPTION_REQUIRED: &str = "An active subscription is required to access the API.";
    pub const INTERNAL: &str =
        "An internal error occurred. Quote the request id when reporting it.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_status() {
        assert_eq!(ErrorCode::Unauthorized.error_type(), "authentication_error");
        assert_eq!(ErrorCode::Forbidden.error_type(), "authentication_error");
        assert_eq!(
            ErrorCode::RateLimitExceeded.error_type(),
            "rate_limit_error"
        );
        assert_eq!(ErrorCode::InternalError.error_type(), "api_error");
        assert_eq!(ErrorCode::ServiceUnavailable.error_type(), "api_error");
        assert_eq!(ErrorCode::NotFound.error_type(), "invalid_request_error");
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
        }
    }
}
