//! The customer service's errors and how they reach clients.

use crm_errors::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already safe to show: invalid input, not found, version conflicts.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox error: {0}")]
    Outbox(#[from] crm_events::EventError),
    #[error(transparent)]
    Fields(#[from] crm_fields::Error),
    /// A stored row breaks an invariant the schema should have kept.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Api(api) => api,
            Error::Fields(fields) => fields.into(),
            // Postgres unreachable or saturated: the client may retry.
            Error::Db(ref db) if crm_db::is_unavailable(db) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable("the customer database")
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
