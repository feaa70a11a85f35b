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
//!
//! When partitions are taken away (a rebalance, or stop) the offsets of the records finished in
//! them are committed synchronously first — never the position: a record fetched but not applied
//! must be redelivered — so the next owner starts right after them, with nothing to skip. On stop
//! the group is left, so the other replicas take the partitions over at once. `events_consumed_total{consumer, outcome}`
//! counts `applied` and `duplicate` records per process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_settings::KafkaSettings;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
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

/// The last offset finished (applied, duplicate or skipped) per (topic, partition).
type Finished = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// Commits the finished offsets of partitions as they are revoked (see the module docs).
struct CommitOnRevoke {
    name: String,
    finished: Finished,
}

impl ClientContext for CommitOnRevoke {
    // librdkafka's own account (group coordination, broker errors) goes to the service's log.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(consumer = %self.name, facility = fac, "librdkafka: {log_message}")
            }
            L::Warning => {
                tracing::warn!(consumer = %self.name, facility = fac, "librdkafka: {log_message}")
            }
            _ => {
                tracing::debug!(consumer = %self.name, facility = fac, "librdkafka: {log_message}")
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(consumer = %self.name, error = %error, "kafka client error: {reason}");
    }
}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            commit_finished(&self.name, consumer, &self.finished, revoked, true);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assigned) => {
                tracing::info!(consumer = %self.name, partitions = assigned.count(), "partitions assigned")
            }
            Rebalance::Revoke(revoked) => {
                tracing::info!(consumer = %self.name, partitions = revoked.count(), "partitions revoked")
            }
            Rebalance::Error(err) => {
                tracing::warn!(consumer = %self.name, error = %err, "rebalance failed")
            }
        }
    }
}

/// Commits, and waits for, the offsets finished in `partitions`; with `forget`, drops them from
/// `finished` (the partitions are going to another owner).
fn commit_finished<C: Consumer<X>, X: ConsumerContext>(
    name: &str,
    consumer: &C,
    finished: &Finished,
    partitions: &TopicPartitionList,
    forget: bool,
) {
    let mut offsets = TopicPartitionList::new();
    {
        let mut finished = finished.lock().expect("not poisoned");
        for element in partitions.elements() {
            let key = (element.topic().to_string(), element.partition());
            let offset = if forget {
                finished.remove(&key)
            } else {
                finished.get(&key).copied()
            };
            if let Some(offset) = offset {
                let _ = offsets.add_partition_offset(&key.0, key.1, Offset::Offset(offset + 1));
            }
        }
    }
    if offsets.count() == 0 {
        return;
    }
    match consumer.commit(&offsets, CommitMode::Sync) {
        Ok(()) => {
            tracing::debug!(consumer = %name, partitions = offsets.count(), "finished offsets committed")
        }
        Err(err) => tracing::warn!(
            consumer = %name,
            error = %err,
            "offset commit failed; the last records may be redelivered (and skipped)"
        ),
    }
}

pub struct IdempotentConsumer<H> {
    name: String,
    consumer: StreamConsumer<CommitOnRevoke>,
    pool: PgPool,
    handler: H,
    finished: Finished,
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
        let finished = Finished::default();
        let context = CommitOnRevoke {
            name: name.to_string(),
            finished: finished.clone(),
        };
        let consumer: StreamConsumer<CommitOnRevoke> = kafka::client_config(settings)
            .set("group.id", name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                settings.session_timeout_ms.to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (settings.session_timeout_ms / 3)
                    .clamp(100, 3000)
                    .to_string(),
            )
            .create_with_context(context)?;
        consumer.subscribe(topics)?;
        Ok(Self {
            name: name.to_string(),
            consumer,
            pool,
            handler,
            finished,
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
        // Committed here while this replica still owns its partitions; unsubscribing then
        // revokes them (nothing left to commit) and dropping the consumer leaves the group.
        match self.consumer.assignment() {
            Ok(assigned) => {
                commit_finished(&self.name, &self.consumer, &self.finished, &assigned, false)
            }
            Err(err) => tracing::warn!(error = %err, "no assignment to commit"),
        }
        self.consumer.unsubscribe();
        tracing::info!(consumer = %self.name, "consumer stopped");
        // Dropping the consumer closes it: it leaves the group, so the partitions move now
        // rather than after the session timeout.
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
                    let outcome = if applied { "applied" } else { "duplicate" };
                    metrics::counter!("events_consumed_total", "consumer" => self.name.clone(), "outcome" => outcome)
                        .increment(1);
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
        self.finished.lock().expect("not poisoned").insert(
            (message.topic().to_string(), message.partition()),
            message.offset(),
        );
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
