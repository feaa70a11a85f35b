//! Sharing as values: a record shared with a user ([`RecordShare`]) and a rule sharing records
//! with a department's members or a role's holders ([`SharingRule`]). No I/O.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::org::domain::Resource;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordShare {
    pub resource: Resource,
    pub record_id: Uuid,
    pub user_id: Uuid,
    pub edit: bool,
    pub created_at: DateTime<Utc>,
}

/// Who a rule gives access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    Department(Uuid),
    Role(Uuid),
}

/// Which records a rule shares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Department(Uuid),
    Condition { field: String, equals: String },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SharingRule {
    pub id: Uuid,
    pub name: String,
    pub resource: Resource,
    pub edit: bool,
    pub grantee: Grantee,
    pub source: Source,
    pub created_at: DateTime<Utc>,
}

/// How an access is stored: `read` or `edit`.
pub fn access_str(edit: bool) -> &'static str {
    if edit { "edit" } else { "read" }
}
