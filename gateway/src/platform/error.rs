//! The gateway's one error type and its RFC 7807 rendering.
//!
//! Every failure a client can see becomes `application/problem+json`:
//! `{type, title, status, detail, code, request_id, errors?}`. The `code` is the stable,
//! machine-readable part (`crm_errors::Code::as_str` for the shared vocabulary, plus a few
//! HTTP-only codes such as `method_not_allowed`); `detail` is for people.
//!
//! Internal failures are logged here with their cause and rendered as a generic 500: nothing
//! about our internals (addresses, SQL, stack traces) reaches a client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_errors::{ApiError, Code, FieldViolation};
use serde::{Deserialize, Serialize};

use super::observability;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the gateway, at start-up or while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client-safe error with a shared code: invalid input, not found, version conflict, and
    /// whatever a service answered over gRPC (already sanitised by `ApiError::from_status`).
    #[error(transparent)]
    Api(#[from] ApiError),

    /// No usable bearer token. `detail` says why without echoing the token; `missing` follows
    /// RFC 6750 §3.1: a request without credentials gets a challenge with no error code.
    #[error("unauthenticated: {detail}")]
    Unauthenticated { detail: String, missing: bool },

    /// An idempotent request with the same key is still running.
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyInProgress,

    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,

    #[error("the request body is larger than this API accepts")]
    PayloadTooLarge,

    #[error("no such route")]
    RouteNotFound,

    #[error("method not allowed on this route")]
    MethodNotAllowed,

    /// The request did not finish within `http.request_timeout_secs`.
    #[error("the request took longer than {secs} s")]
    Timeout { secs: u64 },

    /// A bug or an infrastructure failure: logged with its cause, rendered as a generic 500.
    #[error("internal error: {0:#}")]
    Internal(#[source] anyhow::Error),

    // --- start-up ------------------------------------------------------------------------
    /// A setting has a value the gateway refuses to run with.
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error(transparent)]
    Settings(#[from] crm_settings::SettingsError),

    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },

    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl Error {
    /// Invalid input: one violation per bad field.
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        Error::Api(ApiError::invalid(violations))
    }

    /// Invalid input that is not about one field (malformed JSON, a bad header).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Error::Api(ApiError::new(Code::InvalidArgument, detail))
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::Internal(cause.into())
    }

    /// A gRPC failure, mapped through the shared vocabulary.
    ///
    /// A status without details did not come from a service's own error mapping but from the
    /// transport (connection refused, deadline passed): its message ("tcp connect error") is
    /// about our network, so it is logged and replaced.
    pub fn from_status(status: tonic::Status) -> Self {
        let err = ApiError::from_status(&status);
        if err.code == Code::Unavailable && status.details().is_empty() {
            tracing::warn!(grpc_code = ?status.code(), message = status.message(), "service call failed");
            let message = if status.code() == tonic::Code::DeadlineExceeded {
                "a service did not answer in time, try again later"
            } else {
                "a service is unavailable, try again later"
            };
            return Error::Api(ApiError::new(Code::Unavailable, message));
        }
        Error::Api(err)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Error::Unauthenticated {
            detail: detail.into(),
            missing: false,
        }
    }

    /// HTTP status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Api(err) => (err.code.http(), err.code.as_str()),
            Error::Unauthenticated { .. } => {
                (StatusCode::UNAUTHORIZED, Code::Unauthenticated.as_str())
            }
            Error::IdempotencyInProgress => (Code::Conflict.http(), Code::Conflict.as_str()),
            Error::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::RouteNotFound => (StatusCode::NOT_FOUND, Code::NotFound.as_str()),
            Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Error::Timeout { .. } => (Code::Unavailable.http(), Code::Unavailable.as_str()),
            Error::Internal(_)
            | Error::Config(_)
            | Error::Settings(_)
            | Error::Bind { .. }
            | Error::Serve(_) => (StatusCode::INTERNAL_SERVER_ERROR, Code::Internal.as_str()),
        }
    }

    fn problem(&self) -> Problem {
        let (status, code) = self.status_and_code();
        let (detail, errors) = match self {
            Error::Api(err) if err.code == Code::Internal => ("internal error".to_string(), vec![]),
            Error::Api(err) => (
                err.message.clone(),
                err.violations.iter().map(Into::into).collect(),
            ),
            Error::Unauthenticated { detail, .. } => (detail.clone(), vec![]),
            Error::Internal(_)
            | Error::Config(_)
            | Error::Settings(_)
            | Error::Bind { .. }
            | Error::Serve(_) => ("internal error".to_string(), vec![]),
            other => (other.to_string(), vec![]),
        };
        Problem::new(status, code, detail, errors)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(cause) = &self {
            // `{:#}` prints the whole context chain: the one place the cause is recorded.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let mut response = self.problem().into_response();
        match &self {
            Error::Unauthenticated { detail, missing } => {
                let challenge = if *missing {
                    r#"Bearer realm="crm""#.to_string()
                } else {
                    // The detail is ours (never token content); quotes would break the syntax.
                    format!(
                        r#"Bearer realm="crm", error="invalid_token", error_description="{}""#,
                        detail.replace(['"', '\\'], "'")
                    )
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Error::IdempotencyInProgress => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Error::Api(ApiError {
                retry_after: Some(after),
                ..
            }) => {
                // Whole seconds, rounded up: retrying early would only be refused again.
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            }
            _ => {}
        }
        response
    }
}

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "urn:crm:problem:invalid_argument",
    "title": "Bad Request",
    "status": 400,
    "detail": "email: not an email address",
    "code": "invalid_argument",
    "request_id": "3f0c6f0e-8f7b-4a43-9a39-2b8f9c5e1d11",
    "errors": [{"field": "email", "message": "not an email address"}]
}))]
pub struct Problem {
    /// `urn:crm:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP status text.
    pub title: String,
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// What went wrong, for a program: `invalid_argument`, `unauthenticated`, `not_found`,
    /// `version_conflict`, `precondition_required`, `idempotency_mismatch`, `conflict`, …
    pub code: String,
    /// The `x-request-id` of the request, to quote when reporting a problem.
    pub request_id: Option<String>,
    /// One entry per invalid field, for `invalid_argument`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProblemField {
    /// Path into the request: `name`, `tags[2]`, `page_size`, `id`, `Idempotency-Key`.
    pub field: String,
    pub message: String,
}

impl From<&FieldViolation> for ProblemField {
    fn from(v: &FieldViolation) -> Self {
        Self {
            field: v.field.clone(),
            message: v.message.clone(),
        }
    }
}

impl Problem {
    /// A problem for the current request (its id comes from the request context).
    pub fn new(
        status: StatusCode,
        code: &str,
        detail: impl Into<String>,
        errors: Vec<ProblemField>,
    ) -> Self {
        Self {
            problem_type: format!("urn:crm:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            request_id: observability::current_request_id(),
            errors,
        }
    }

    /// A problem for an error response that a layer produced without a body.
    pub fn for_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => Code::InvalidArgument.as_str(),
            StatusCode::UNAUTHORIZED => Code::Unauthenticated.as_str(),
            StatusCode::FORBIDDEN => Code::PermissionDenied.as_str(),
            StatusCode::NOT_FOUND => Code::NotFound.as_str(),
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::TOO_MANY_REQUESTS => Code::RateLimited.as_str(),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
                Code::Unavailable.as_str()
            }
            s if s.is_server_error() => Code::Internal.as_str(),
            _ => "error",
        };
        let detail = status.canonical_reason().unwrap_or("error").to_lowercase();
        Self::new(status, code, detail, vec![])
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match serde_json::to_vec(&self) {
            Ok(body) => (
                status,
                [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
                body,
            )
                .into_response(),
            // Cannot happen for this struct; never answer an error with a panic.
            Err(_) => status.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response =
            Error::internal(anyhow::anyhow!("connection refused to 10.0.0.7:5432")).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_json(response).await;
        assert_eq!(body["detail"], "internal error");
        assert_eq!(body["code"], "internal");
        assert!(!body.to_string().contains("10.0.0.7"));
    }

    #[tokio::test]
    async fn field_violations_render_as_errors() {
        let response =
            Error::invalid(vec![FieldViolation::new("tags[1]", "too long")]).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        assert_eq!(body["type"], "urn:crm:problem:invalid_argument");
        assert_eq!(body["title"], "Bad Request");
        assert_eq!(body["errors"][0]["field"], "tags[1]");
    }

    #[tokio::test]
    async fn unauthenticated_carries_a_bearer_challenge() {
        let response = Error::unauthenticated("token has expired").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );

        let missing = Error::Unauthenticated {
            detail: "missing".into(),
            missing: true,
        };
        let response = missing.into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="crm""#
        );
    }

    #[tokio::test]
    async fn transport_failures_do_not_describe_our_network() {
        let err = Error::from_status(tonic::Status::unavailable(
            "tcp connect error: 10.0.0.7:50051",
        ));
        let body = body_json(err.into_response()).await;
        assert_eq!(body["status"], 503);
        assert!(
            !body["detail"].as_str().unwrap().contains("10.0.0.7"),
            "{body}"
        );

        // A service's own answer keeps its message.
        let status = tonic::Status::from(ApiError::new(Code::NotFound, "account not found"));
        let body = body_json(Error::from_status(status).into_response()).await;
        assert_eq!(body["detail"], "account not found");
    }

    #[tokio::test]
    async fn in_progress_asks_to_retry() {
        let response = Error::IdempotencyInProgress.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(body_json(response).await["code"], "conflict");
    }
}
