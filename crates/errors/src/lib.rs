//! The error vocabulary shared by every service and the gateway.
//!
//! A service maps its own `thiserror` enum onto an [`ApiError`]: a [`Code`] (which fixes both the
//! gRPC status and the HTTP status, so the two can never disagree), a message that is safe to show
//! a client, and, for invalid input, one [`FieldViolation`] per bad field. Over gRPC the violations
//! travel as a standard `google.rpc.BadRequest` detail; the gateway turns them back into the
//! `errors` array of its problem+json body.
//!
//! Internal failures go through [`ApiError::internal`], which logs the cause and gives the client
//! only a generic message.

pub mod validation;

use serde::Serialize;
use tonic_types::{ErrorDetails, StatusExt};

/// What went wrong, as a client can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The request is malformed or a field is invalid.
    InvalidArgument,
    /// Authentication is missing or invalid.
    Unauthenticated,
    /// Authenticated, but not allowed.
    PermissionDenied,
    NotFound,
    AlreadyExists,
    /// The record changed since the caller read it (stale version / `If-Match`).
    VersionConflict,
    /// The operation cannot run in the record's current state (e.g. deleting an account that
    /// still has contacts).
    FailedPrecondition,
    /// A precondition header such as `If-Match` is required but missing.
    PreconditionRequired,
    /// The same idempotency key was reused with a different request.
    IdempotencyMismatch,
    /// A request with the same idempotency key is still being processed.
    Conflict,
    RateLimited,
    Unavailable,
    Internal,
}

impl Code {
    pub fn grpc(self) -> tonic::Code {
        use tonic::Code as G;
        match self {
            Code::InvalidArgument | Code::IdempotencyMismatch => G::InvalidArgument,
            Code::Unauthenticated => G::Unauthenticated,
            Code::PermissionDenied => G::PermissionDenied,
            Code::NotFound => G::NotFound,
            Code::AlreadyExists => G::AlreadyExists,
            Code::VersionConflict | Code::FailedPrecondition | Code::PreconditionRequired => {
                G::FailedPrecondition
            }
            Code::Conflict => G::Aborted,
            Code::RateLimited => G::ResourceExhausted,
            Code::Unavailable => G::Unavailable,
            Code::Internal => G::Internal,
        }
    }

    pub fn http(self) -> http::StatusCode {
        use http::StatusCode as H;
        match self {
            Code::InvalidArgument => H::BAD_REQUEST,
            Code::Unauthenticated => H::UNAUTHORIZED,
            Code::PermissionDenied => H::FORBIDDEN,
            Code::NotFound => H::NOT_FOUND,
            Code::AlreadyExists | Code::FailedPrecondition | Code::Conflict => H::CONFLICT,
            Code::VersionConflict => H::PRECONDITION_FAILED,
            Code::PreconditionRequired => H::PRECONDITION_REQUIRED,
            Code::IdempotencyMismatch => H::UNPROCESSABLE_ENTITY,
            Code::RateLimited => H::TOO_MANY_REQUESTS,
            Code::Unavailable => H::SERVICE_UNAVAILABLE,
            Code::Internal => H::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable name (the `code` member of problem+json, the
    /// `ErrorInfo.reason` over gRPC).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission_denied",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::VersionConflict => "version_conflict",
            Code::FailedPrecondition => "failed_precondition",
            Code::PreconditionRequired => "precondition_required",
            Code::IdempotencyMismatch => "idempotency_mismatch",
            Code::Conflict => "conflict",
            Code::RateLimited => "rate_limited",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }

    fn from_str(s: &str) -> Option<Code> {
        ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

const ALL: [Code; 13] = [
    Code::InvalidArgument,
    Code::Unauthenticated,
    Code::PermissionDenied,
    Code::NotFound,
    Code::AlreadyExists,
    Code::VersionConflict,
    Code::FailedPrecondition,
    Code::PreconditionRequired,
    Code::IdempotencyMismatch,
    Code::Conflict,
    Code::RateLimited,
    Code::Unavailable,
    Code::Internal,
];

/// Reasons travel in `google.rpc.ErrorInfo` under this domain.
const ERROR_DOMAIN: &str = "crm";

/// One invalid field: `field` is a path into the request (`email`, `tags[2]`, `address.city`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    pub field: String,
    pub message: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error that is safe to send to a client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub violations: Vec<FieldViolation>,
    /// When the client may try again (throttling); `google.rpc.RetryInfo` over gRPC,
    /// `Retry-After` over HTTP.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            violations: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Invalid input, one violation per bad field.
    pub fn invalid(violations: Vec<FieldViolation>) -> Self {
        let message = match violations.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", violations.len()),
        };
        Self {
            code: Code::InvalidArgument,
            message,
            violations,
            retry_after: None,
        }
    }

    /// Optimistic locking: `Ok` when the caller changes the version it read, else
    /// `VersionConflict` (HTTP 412, gRPC FAILED_PRECONDITION) naming both versions.
    pub fn check_version(expected: i64, actual: i64) -> Result<(), ApiError> {
        if expected == actual {
            return Ok(());
        }
        Err(Self::new(
            Code::VersionConflict,
            format!("the record is at version {actual}, not {expected}: reload it and retry"),
        ))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    /// Logs `cause` with its full chain and returns an error that reveals nothing about it.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %cause, source = ?cause.source(), "internal error");
        Self::new(Code::Internal, "internal error")
    }

    pub fn unavailable(what: &str) -> Self {
        Self::new(
            Code::Unavailable,
            format!("{what} is unavailable, try again later"),
        )
    }

    /// Rebuilds the error a peer sent over gRPC. Unknown statuses become `Internal` (and are
    /// logged), so a downstream's internals never reach an outside client.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let code = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .and_then(|info| Code::from_str(&info.reason))
            .unwrap_or_else(|| fallback_code(status.code()));
        if code == Code::Internal {
            tracing::error!(grpc_code = ?status.code(), message = status.message(), "downstream failure");
            return Self::new(Code::Internal, "internal error");
        }
        let violations = details
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let retry_after = details.retry_info().and_then(|info| info.retry_delay);
        Self {
            code,
            message: status.message().to_string(),
            violations,
            retry_after,
        }
    }
}

fn fallback_code(code: tonic::Code) -> Code {
    use tonic::Code as G;
    match code {
        G::InvalidArgument | G::OutOfRange => Code::InvalidArgument,
        G::Unauthenticated => Code::Unauthenticated,
        G::PermissionDenied => Code::PermissionDenied,
        G::NotFound => Code::NotFound,
        G::AlreadyExists => Code::AlreadyExists,
        G::FailedPrecondition => Code::FailedPrecondition,
        G::Aborted => Code::Conflict,
        G::ResourceExhausted => Code::RateLimited,
        G::Unavailable | G::DeadlineExceeded | G::Cancelled => Code::Unavailable,
        _ => Code::Internal,
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let mut details = ErrorDetails::with_error_info(
            err.code.as_str(),
            ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        if !err.violations.is_empty() {
            details.set_bad_request(
                err.violations
                    .iter()
                    .map(|v| tonic_types::FieldViolation::new(v.field.clone(), v.message.clone()))
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(after) = err.retry_after {
            details.set_retry_info(Some(after));
        }
        tonic::Status::with_error_details(err.code.grpc(), err.message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_grpc_round_trip() {
        for code in ALL {
            let err = ApiError::new(code, "boom");
            let back = ApiError::from_status(&tonic::Status::from(err));
            assert_eq!(back.code, code);
            if code != Code::Internal {
                assert_eq!(back.message, "boom");
            }
        }
    }

    #[test]
    fn violations_survive_a_grpc_round_trip() {
        let err = ApiError::invalid(vec![
            FieldViolation::new("email", "not an email address"),
            FieldViolation::new("tags[1]", "too long"),
        ]);
        let back = ApiError::from_status(&tonic::Status::from(err.clone()));
        assert_eq!(back.code, Code::InvalidArgument);
        assert_eq!(back.violations, err.violations);
    }

    #[test]
    fn retry_after_survives_a_grpc_round_trip() {
        let err = ApiError::new(Code::RateLimited, "slow down")
            .with_retry_after(std::time::Duration::from_secs(7));
        let back = ApiError::from_status(&tonic::Status::from(err));
        assert_eq!(back.code, Code::RateLimited);
        assert_eq!(back.retry_after, Some(std::time::Duration::from_secs(7)));
    }

    #[test]
    fn internal_details_are_not_forwarded() {
        let status = tonic::Status::internal("password authentication failed for user crm");
        let err = ApiError::from_status(&status);
        assert_eq!(err.code, Code::Internal);
        assert_eq!(err.message, "internal error");
    }

    #[test]
    fn http_and_grpc_agree_on_client_errors() {
        for code in ALL {
            let client_error = code.http().is_client_error();
            let grpc_server_side = matches!(
                code.grpc(),
                tonic::Code::Internal | tonic::Code::Unavailable
            );
            assert_ne!(client_error, grpc_server_side, "{code:?}");
        }
    }
}
