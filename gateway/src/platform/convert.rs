//! Helpers for converting the services' generated proto types into the API's JSON types.
//!
//! Responses go proto → API fallibly: a service answering with a malformed id or an unspecified
//! enum is a bug on its side, reported as [`ConversionError`] and rendered as an internal error.
//! Empty strings are the proto's "not set".

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A service answered with something the API cannot represent.
#[derive(Debug, thiserror::Error)]
#[error("malformed {field} in a service response: {reason}")]
pub struct ConversionError {
    field: &'static str,
    reason: String,
}

impl ConversionError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ConversionError>;

pub fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

pub fn uuid(field: &'static str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value).map_err(|e| ConversionError::new(field, e.to_string()))
}

pub fn optional_uuid(field: &'static str, value: &str) -> Result<Option<Uuid>> {
    if value.is_empty() {
        Ok(None)
    } else {
        uuid(field, value).map(Some)
    }
}

pub fn timestamp(
    field: &'static str,
    value: Option<prost_types::Timestamp>,
) -> Result<DateTime<Utc>> {
    let ts = value.ok_or_else(|| ConversionError::new(field, "missing"))?;
    let nanos =
        u32::try_from(ts.nanos).map_err(|_| ConversionError::new(field, "negative nanos"))?;
    DateTime::from_timestamp(ts.seconds, nanos)
        .ok_or_else(|| ConversionError::new(field, "out of range"))
}

pub fn to_timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A message field the service must always set (`None`: a bug on its side).
pub fn required<T>(field: &'static str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| ConversionError::new(field, "missing"))
}
