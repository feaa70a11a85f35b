//! # crm-record
//!
//! What every owning service needs for its records, written once: accounts and contacts use
//! it today, leads, opportunities, tickets and the rest tomorrow. A record type implements
//! [`Record`] (its resource, table, fields and where it sits in the organisation); the rest is
//! generic:
//!
//! - [`field`]: built-in fields named by typed constants ([`Field`]), with their kind, so a
//!   rule, a mask, a sharing condition or a writable check can only name a field that exists;
//! - [`authz`]: the decisions of ADR 0009 over a record: 404 outside READ, 403 for what may be
//!   read but not written, CREATE and ASSIGN placement, field rules on what is shown, the
//!   caller's default department;
//! - [`page`]: keyset paging (cursors bound to their sort and filters), the table descriptor
//!   lists, counts and exports run over, with the caller's scope applied in SQL;
//! - [`registry`]: the declaration of a service's resources and fields to the permission
//!   service's registry, so rules can name any field and unknown ones are refused;
//! - [`store`]: the SQL every record table shares (soft delete);
//! - [`event`]: the event contract: `<service>.<kind>.<verb>` with the actor, the record and,
//!   for updates, the per-field changes;
//! - [`now`]: timestamps at the precision Postgres keeps, so what a write returns equals what a
//!   later read returns.
//!
//! Versions: every record has one; writes name the version they read
//! (`crm_errors::ApiError::check_version`), and each write adds one.

pub mod authz;
pub mod event;
pub mod field;
pub mod page;
pub mod registry;
pub mod store;

use chrono::{DateTime, SubsecRound, Utc};
use crm_access::{Resource, Scope};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use field::{Field, FieldKind};
pub use page::{Page, Table};

/// A record's owner and department: what data scopes go by.
pub type Place = (Option<Uuid>, Option<Uuid>);

/// A record type of an owning service.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync {
    /// `account`, `contact`: cache namespace, event-type segment, the key of the record in its
    /// events, and how messages name it.
    const KIND: &'static str;
    /// What the permission service calls it.
    const RESOURCE: Resource;
    /// Its table, the columns its lists search and sort by, and its built-in fields.
    const TABLE: &'static Table;

    fn id(&self) -> Uuid;
    fn version(&self) -> i64;
    /// Records a write: the new version and when it happened (`updated_at`).
    fn stamp(&mut self, version: i64, at: DateTime<Utc>);
    /// Owner and department.
    fn place(&self) -> Place;
    /// A field's value as text, for sharing rules' conditions (`None`: no such field, or empty).
    fn attribute(&self, field: &str) -> Option<String>;
    /// Applies field rules: hidden fields emptied, masked ones masked.
    fn redact(&mut self, scope: &Scope);
}

/// Now, at the precision Postgres keeps (microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
