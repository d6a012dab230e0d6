//! OpenAPI pieces shared by every route: the error envelope, the responses each kind of
//! authentication can give, and the security schemes.

use crate::views::{ErrorBody, ErrorEnvelope};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Soku server",
        description = "A self-hostable server for the Soku social-media publishing API."
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorEnvelope, ErrorBody))
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("soku-api-key"))),
        );
        components.add_security_scheme(
            "idToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Errors any route can answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// Unknown path (`not_found`), or no such resource.
    #[response(status = 404)]
    NotFound(ErrorEnvelope),
    /// Known path, wrong method (`method_not_allowed`), with an `Allow` header.
    #[response(status = 405)]
    MethodNotAllowed(ErrorEnvelope),
    /// `internal_error`; the cause is logged with the request id.
    #[response(status = 500)]
    Internal(ErrorEnvelope),
}

/// Errors of routes authenticated with an API key (`soku-api-key`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ApiKeyErrors {
    /// `unauthorized`: "Invalid or missing API key."
    #[response(status = 401)]
    Unauthorized(ErrorEnvelope),
    /// `forbidden`: "An active subscription is required to access the API."
    #[response(status = 403)]
    Forbidden(ErrorEnvelope),
    /// `service_unavailable`: the database did not answer.
    #[response(status = 503)]
    Unavailable(ErrorEnvelope),
}

/// Errors of routes authenticated with an ID token (`Authorization: Bearer`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum IdTokenErrors {
    /// `unauthorized`: "Invalid or missing ID token."
    #[response(status = 401)]
    Unauthorized(ErrorEnvelope),
    /// `service_unavailable`: the identity provider's keys could not be fetched.
    #[response(status = 503)]
    Unavailable(ErrorEnvelope),
}

/// Errors of routes that take a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    /// `validation_error` with `details.field` and `details.reason`.
    #[response(status = 400)]
    Invalid(ErrorEnvelope),
    /// `payload_too_large`: above 1 MiB.
    #[response(status = 413)]
    TooLarge(ErrorEnvelope),
    /// `unsupported_media_type`: a body without `Content-Type: application/json`.
    #[response(status = 415)]
    WrongType(ErrorEnvelope),
}
