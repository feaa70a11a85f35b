//! The permission service's errors and how they reach clients.

use std::time::Duration;

use crm_errors::{ApiError, Code};

/// The one answer to every failed sign-in, whatever the cause, so a client cannot learn whether a
/// username exists, is disabled, or has no password.
pub const INVALID_CREDENTIALS: &str = "invalid username or password";
/// The answer while a username is locked, for existing and unknown usernames alike.
pub const THROTTLED: &str = "too many failed sign-in attempts; try again later";
pub const INVALID_REFRESH: &str = "invalid or expired refresh token";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already safe to show: invalid input, not found, version conflicts, bad credentials.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The username is locked for `retry_after`.
    #[error("sign-in throttled for {retry_after:?}")]
    Throttled { retry_after: Duration },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox error: {0}")]
    Outbox(#[from] crm_events::EventError),
    /// A stored row breaks an invariant the schema should have kept.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Key generation, encryption, decryption or token signing failed. The message never holds
    /// key material.
    #[error("crypto failure: {0}")]
    Crypto(String),
    #[error("password hashing failed: {0}")]
    PasswordHash(argon2::password_hash::Error),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn unauthenticated(message: &str) -> Self {
        ApiError::new(Code::Unauthenticated, message).into()
    }

    /// Is a unique-violation on `constraint`?
    pub fn is_unique_violation(&self, constraint: &str) -> bool {
        matches!(self, Error::Db(sqlx::Error::Database(e))
            if e.code().as_deref() == Some("23505") && e.constraint() == Some(constraint))
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Api(api) => api,
            // Over gRPC the delay travels as a `google.rpc.RetryInfo` detail.
            Error::Throttled { retry_after } => {
                ApiError::new(Code::RateLimited, THROTTLED).with_retry_after(retry_after)
            }
            // Postgres unreachable or saturated: the client may retry.
            Error::Db(ref db) if crm_db::is_unavailable(db) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable("the permission database")
            }
            other => ApiError::internal(&other),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        ApiError::from(err).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[test]
    fn throttled_carries_retry_info_and_a_readable_code() {
        let status = tonic::Status::from(Error::Throttled {
            retry_after: Duration::from_secs(30),
        });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), THROTTLED);
        assert_eq!(
            status.get_error_details().retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(30))
        );
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("rate_limited", "crm")
        );
        let back = ApiError::from_status(&status);
        assert_eq!(back.code, Code::RateLimited);
        assert_eq!(back.retry_after, Some(Duration::from_secs(30)));
    }
}
