//! Writing events into the transactional outbox.

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::EventError;

/// An event a service is about to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Past tense, `<service>.<aggregate>.<verb>`: `customer.account.created`.
    pub event_type: String,
    /// The record's id.
    pub subject: String,
    pub data: serde_json::Value,
}

/// The outbox of one service: its source name, its topic, and a doorbell for the relay.
#[derive(Clone)]
pub struct Outbox {
    source: Arc<str>,
    topic: Arc<str>,
    doorbell: Arc<Notify>,
}

impl Outbox {
    /// `source` is the CloudEvents source (`crm/customer`); `topic` where the relay publishes.
    pub fn new(source: &str, topic: &str) -> Self {
        Self {
            source: source.into(),
            topic: topic.into(),
            doorbell: Arc::new(Notify::new()),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes the event inside `tx`: it becomes visible to the relay exactly when `tx` commits,
    /// and is lost exactly when `tx` rolls back. Captures the current trace context, so the
    /// published record continues the request's trace. Returns the event id.
    pub async fn enqueue(
        &self,
        tx: &mut PgConnection,
        event: NewEvent,
    ) -> Result<Uuid, EventError> {
        let id = Uuid::now_v7();
        let trace = serde_json::to_value(crm_telemetry::propagation::current_pairs())?;
        sqlx::query(
            "INSERT INTO event_outbox (id, topic, subject, event_type, source, occurred_at, data, trace_headers)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(&*self.topic)
        .bind(&event.subject)
        .bind(&event.event_type)
        .bind(&*self.source)
        .bind(Utc::now())
        .bind(&event.data)
        .bind(trace)
        .execute(tx)
        .await?;
        Ok(id)
    }

    /// Tells the relay in this process that rows were committed, so it publishes now instead of
    /// at its next poll. Call after commit; other replicas still find the rows by polling.
    pub fn notify_committed(&self) {
        self.doorbell.notify_one();
    }

    pub(crate) fn doorbell(&self) -> Arc<Notify> {
        self.doorbell.clone()
    }
}
