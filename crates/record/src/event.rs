//! The event contract of record writes (ADR 0002): `<service>.<kind>.<verb>`, past tense, the
//! record id as subject, and a payload every consumer (the audit trail first) reads the same
//! way:
//!
//! ```json
//! { "actor": {…}, "<kind>": { the record after the write (before it, for a delete) },
//!   "changes": { "field": { "old": …, "new": … } },   // updates only
//!   "id": "…", "version": 4 }                          // deletes only
//! ```
//!
//! Created and updated events carry the whole record, so consumers need no call back.

use crm_access::Access;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::Record;

/// Field changes of an update, `{field: {old, new}}`.
pub type Changes = Map<String, Value>;

/// Records `field: {old, new}` in `changes` when the value changed.
pub fn record_change<T: serde::Serialize + PartialEq>(
    changes: &mut Changes,
    field: &str,
    old: &T,
    new: &T,
) {
    if old != new {
        changes.insert(
            field.to_string(),
            serde_json::json!({ "old": old, "new": new }),
        );
    }
}

/// What a record write publishes: its type and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEvent {
    pub event_type: String,
    pub subject: String,
    pub data: Value,
}

fn record_value<R: Record>(record: &R) -> Result<Value, serde_json::Error> {
    serde_json::to_value(record)
}

impl RecordEvent {
    /// `<service>.<kind>.created`.
    pub fn created<R: Record>(
        service: &str,
        access: &Access,
        record: &R,
    ) -> Result<Self, serde_json::Error> {
        Self::written(service, "created", access, record, None)
    }

    /// `<service>.<kind>.updated`, with what changed.
    pub fn updated<R: Record>(
        service: &str,
        access: &Access,
        record: &R,
        changes: Changes,
    ) -> Result<Self, serde_json::Error> {
        Self::written(service, "updated", access, record, Some(changes))
    }

    /// `<service>.<kind>.<verb>` for another write that keeps the record (`assigned`, …).
    pub fn written<R: Record>(
        service: &str,
        verb: &str,
        access: &Access,
        record: &R,
        changes: Option<Changes>,
    ) -> Result<Self, serde_json::Error> {
        let mut data = Map::new();
        data.insert("actor".into(), access.actor());
        data.insert(R::KIND.into(), record_value(record)?);
        if let Some(changes) = changes {
            data.insert("changes".into(), Value::Object(changes));
        }
        Ok(RecordEvent {
            event_type: format!("{service}.{}.{verb}", R::KIND),
            subject: record.id().to_string(),
            data: Value::Object(data),
        })
    }

    /// `<service>.<kind>.deleted`: the record as it was (so the trail can show what went) and
    /// the version the delete made.
    pub fn deleted<R: Record>(
        service: &str,
        access: &Access,
        before: &R,
        version: i64,
    ) -> Result<Self, serde_json::Error> {
        let id: Uuid = before.id();
        Ok(RecordEvent {
            event_type: format!("{service}.{}.deleted", R::KIND),
            subject: id.to_string(),
            data: serde_json::json!({
                "id": id,
                "version": version,
                R::KIND: record_value(before)?,
                "actor": access.actor(),
            }),
        })
    }
}
