//! # crm-fields
//!
//! Custom fields without migrations (issue 11, section 1), built once for every owning service:
//! accounts and contacts now, leads, opportunities and tickets later. An administrator defines a
//! field at run time; records store its values in their table's `custom` JSONB column; no DDL
//! ever runs for it.
//!
//! - [`definition`]: a field's definition (type, labels in Chinese and English, help, required,
//!   unique, indexed, default, length/range/pattern rules, ordered options that can be
//!   deactivated, a lookup's target, a currency) and what a change may do: never anything that
//!   rewrites or breaks a stored value;
//! - [`values`]: a record's values ([`Values`]), checked and normalised on every write against
//!   the entity's definitions ([`Schema`]), one violation per field at `custom.<key>`; field
//!   rules (hide, mask) applied exactly as to built-in fields; changes for events and the audit;
//! - [`store`]: the `custom_fields` and `validation_rules` tables ([`MIGRATOR`], versions
//!   201–299) and the checks a
//!   write needs against the record table (unique values under a lock, who holds a value);
//! - [`service`]: the use cases ([`CustomFields`]): define, change, (de)activate, delete or
//!   purge, each with its event in the outbox and a new declaration to the permission
//!   service's registry (custom fields are named `custom.<key>` there, in conditions and in
//!   error paths);
//! - [`filter`]: the fields a condition (`crm-condition`) may name on an entity's records for a
//!   caller — built-in and active custom ones, never one the caller's rules hide or mask — and
//!   `filter=` compiled against them;
//! - [`index`]: the indexes of fields marked `indexed`, built and dropped online
//!   (`CREATE INDEX CONCURRENTLY`) by the service itself, one replica at a time;
//! - [`rules`]: validation rules across fields, in the condition language, with messages in
//!   Chinese and English, enforced on every write ([`rules::ValidationRules`]);
//! - [`grpc`]: `crm.fields.v1.FieldService`, which every owning service serves for its own
//!   entities, and the gateway routes to by entity.
//!
//! Why JSONB and not a column per field: a column means DDL on a live table for every field an
//! administrator adds; an entity-attribute-value table makes every list a join per field. One
//! JSONB column keeps a record one row, and a field marked indexed gets an expression index
//! ([`index`]).

pub mod definition;
pub mod filter;
pub mod grpc;
pub mod index;
pub mod rules;
pub mod service;
pub mod store;
pub mod values;

use crm_errors::ApiError;

pub use definition::{Definition, DefinitionPatch, FieldType, NewDefinition};
pub use service::{CUSTOMIZATION, CustomFields, Entity, Purge, check_unique};
pub use values::{Input, Schema, Values, Written};

/// The `custom_fields` table.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Already safe to show: invalid input, not found, version conflicts.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox error: {0}")]
    Outbox(#[from] crm_events::EventError),
    /// A stored definition that does not decode.
    #[error("corrupt definition: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Api(api) => api,
            Error::Db(ref db) if crm_db::is_unavailable(db) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable("the database")
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
