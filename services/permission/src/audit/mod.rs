//! The audit trail (ADR 0010): an append-only table of who did what, made from the services'
//! events by an idempotent consumer, and `AuditService` to query it.
//!
//! Every event becomes one entry, keyed by the event id (so a redelivered event changes
//! nothing). The entry takes from the event what the trail needs — the actor, the client's
//! address and agent, the record, a per-field before/after — and keeps the rest as `details`;
//! the trace id comes from the trace context the event carried. The table refuses updates and
//! deletes (a trigger), whatever the code does.
//!
//! The table keeps everything; what a reader gets is cut to their own field rules (see
//! [`domain::FieldView`]): an entry about an account shows its fields as the reader's view of the account
//! would, hidden ones left out and masked ones masked.
//!
//! Layout: [`domain`] (entries, queries, page tokens, field views; no I/O), [`store`] (the
//! `audit_entries` SQL), [`service`] (the consumer that writes the trail and the reading of it,
//! [`Audit`]), [`grpc`] (the edge, `crm.permission.v1.AuditService`).

pub mod domain;
pub mod grpc;
pub mod service;
pub mod store;

pub use service::{Audit, AuditHandler};
