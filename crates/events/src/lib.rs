//! Domain events between services: the envelope, the transactional outbox, the relay that
//! publishes it to Kafka, and the idempotent-consumer helper.
//!
//! - [`Envelope`]: CloudEvents 1.0 attributes (id, source, type, time, subject) around JSON data,
//!   published in structured mode (`application/cloudevents+json`) with the W3C trace context in
//!   the Kafka record headers (see `docs/adr/0002-event-encoding.md`);
//! - [`outbox`]: [`outbox::Outbox::enqueue`] writes an event row inside the caller's transaction,
//!   so an event exists exactly when its change committed;
//! - [`relay`]: publishes pending rows in order per record, with `FOR UPDATE SKIP LOCKED` so
//!   several replicas share the work, retries with back-off, and marks rows published;
//! - [`consumer`]: runs a handler for each record with its processed-event id stored in the same
//!   transaction as the handler's effect, so redelivery never applies an event twice;
//! - [`kafka`]: client configuration and topic creation.
//!
//! The tables live in this crate's migrations ([`MIGRATOR`]); every service applies them next to
//! its own.

pub mod consumer;
pub mod envelope;
pub mod kafka;
pub mod outbox;
pub mod relay;

pub use envelope::Envelope;

/// The platform tables (`event_outbox`, `processed_events`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("kafka error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("event data could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}
