//! The idempotent consumer: each event is applied at most once per consumer, even though Kafka
//! delivers at least once.
//!
//! For every record: parse the envelope; in one database transaction insert
//! `(consumer, event id)` into `processed_events` — a conflict means the event was already
//! applied, so it is skipped — and run the handler; commit; then commit the Kafka offset. A crash
//! between the two commits redelivers the record, and the stored id turns it into a no-op.
//!
//! A handler error rolls the transaction back and retries the same record with back-off, so a
//! partition never skips an event it could not apply. A record that is not a CloudEvent is logged,
//! counted and skipped: it can never succeed.

use std::future::Future;
use std::time::Duration;

use crm_settings::KafkaSettings;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Envelope, EventError, kafka};

/// What a consumer does with one event, inside the transaction that records it as processed.
pub trait Handler: Send + Sync {
    fn handle(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
    ) -> impl Future<Output = Result<(), EventError>> + Send;
}

pub struct IdempotentConsumer<H> {
    name: String,
    consumer: StreamConsumer,
    pool: PgPool,
    handler: H,
}

impl<H: Handler> IdempotentConsumer<H> {
    /// `name` is both the Kafka consumer group and the key under which processed ids are kept.
    pub fn new(
        name: &str,
        settings: &KafkaSettings,
        topics: &[&str],
        pool: PgPool,
        handler: H,
    ) -> Result<Self, EventError> {
        let consumer: StreamConsumer = kafka::client_config(settings)
            .set("group.id", name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        consumer.subscribe(topics)?;
        Ok(Self {
            name: name.to_string(),
            consumer,
            pool,
            handler,
        })
    }

    /// Consumes until `stop` is cancelled; the record being applied is finished first, its
    /// offset committed, and the group left cleanly.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => break,
                m = self.consumer.recv() => m,
            };
            match message {
                Ok(message) => self.process(&message, &stop).await,
                Err(err) => {
                    tracing::warn!(error = %err, consumer = %self.name, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        if let Err(err) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is the common case.
            tracing::debug!(error = %err, "final offset commit");
        }
        self.consumer.unsubscribe();
        tracing::info!(consumer = %self.name, "consumer stopped");
    }

    async fn process(&self, message: &BorrowedMessage<'_>, stop: &CancellationToken) {
        let envelope = match message.payload().map(Envelope::from_bytes) {
            Some(Ok(envelope)) => envelope,
            Some(Err(err)) => {
                tracing::error!(error = %err, topic = message.topic(), offset = message.offset(), "skipping malformed event");
                metrics::counter!("events_malformed_total", "consumer" => self.name.clone())
                    .increment(1);
                self.commit(message);
                return;
            }
            None => {
                self.commit(message);
                return;
            }
        };
        let span = tracing::info_span!("consume", consumer = %self.name, event_type = %envelope.event_type, event_id = %envelope.id, trace_id = tracing::field::Empty);
        crm_telemetry::propagation::set_parent(
            &span,
            crm_telemetry::propagation::extract_pairs(&headers_of(message)),
        );
        if let Some(id) = span.in_scope(crm_telemetry::current_trace_id) {
            span.record("trace_id", id);
        }
        let mut delay = Duration::from_millis(200);
        loop {
            match self.apply(&envelope).instrument(span.clone()).await {
                Ok(applied) => {
                    if !applied {
                        tracing::debug!(parent: &span, "duplicate event skipped");
                    }
                    self.commit(message);
                    return;
                }
                Err(err) => {
                    tracing::warn!(parent: &span, error = %err, "handler failed; retrying");
                    tokio::select! {
                        // Stop without committing: the event is redelivered to whoever takes over.
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Returns false when the event had been applied before.
    async fn apply(&self, envelope: &Envelope) -> Result<bool, EventError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(&self.name)
        .bind(envelope.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.handler.handle(&mut tx, envelope).await?;
        tx.commit().await?;
        Ok(true)
    }

    fn commit(&self, message: &BorrowedMessage<'_>) {
        if let Err(err) = self.consumer.commit_message(message, CommitMode::Async) {
            tracing::warn!(error = %err, "offset commit failed; the event may be redelivered (and skipped)");
        }
    }
}

/// A record's headers as key/value pairs (for trace context).
pub fn headers_of<M: Message>(message: &M) -> Vec<(String, String)> {
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .filter_map(|h| {
                    Some((
                        h.key.to_string(),
                        String::from_utf8(h.value?.to_vec()).ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}
