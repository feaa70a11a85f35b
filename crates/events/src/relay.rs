//! The outbox relay: publishes committed outbox rows to Kafka.
//!
//! Each round, in one transaction:
//! 1. lock the *head* row (oldest unpublished) of up to `batch` records with
//!    `FOR UPDATE SKIP LOCKED` — rows whose record has an older unpublished row are not heads, so
//!    two replicas never publish the same record's events concurrently or out of order;
//! 2. read every unpublished row of those records, oldest first;
//! 3. publish each record's rows one after another (records in parallel), stopping a record at its
//!    first failure;
//! 4. mark what was acknowledged as published; give a failed row an attempt count, its error, and
//!    a back-off before its next attempt (exponential, capped).
//!
//! Published rows are deleted after `retention`. A row can be published twice only if the broker
//! acknowledged it but the mark did not commit: consumers dedup by event id (see `consumer`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_settings::KafkaSettings;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::envelope::{CONTENT_TYPE, Envelope};
use crate::outbox::Outbox;
use crate::{EventError, kafka};

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Records (not rows) locked per round.
    pub batch: i64,
    /// Poll interval when nothing rings the doorbell (other replicas' writes).
    pub poll_interval: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
    /// Upper bound of the retry back-off.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            poll_interval: Duration::from_millis(500),
            retention: Duration::from_secs(72 * 3600),
            max_backoff: Duration::from_secs(10),
        }
    }
}

pub struct Relay {
    pool: PgPool,
    /// Replaced after repeated failures: an idempotent producer whose cluster changed under it
    /// (a wiped or replaced cluster, a fenced producer id) never recovers by itself.
    producer: std::sync::Mutex<FutureProducer>,
    /// Rounds in a row in which some publish failed.
    failed_rounds: std::sync::atomic::AtomicU32,
    outbox: Outbox,
    config: RelayConfig,
    kafka: KafkaSettings,
    /// Set after a failed publish: the topic may be missing (a new or wiped cluster), so the next
    /// round makes sure it exists first (only when `kafka.create_topics` is on).
    check_topic: std::sync::atomic::AtomicBool,
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: Uuid,
    topic: String,
    subject: String,
    event_type: String,
    source: String,
    occurred_at: DateTime<Utc>,
    data: serde_json::Value,
    trace_headers: serde_json::Value,
    attempts: i32,
}

enum Outcome {
    Published(i64),
    Failed {
        seq: i64,
        attempts: i32,
        error: String,
    },
}

impl Relay {
    pub fn new(
        pool: PgPool,
        settings: &KafkaSettings,
        outbox: Outbox,
        config: RelayConfig,
    ) -> Result<Self, EventError> {
        let producer: FutureProducer = kafka::producer_config(settings).create()?;
        Ok(Self {
            pool,
            producer: std::sync::Mutex::new(producer),
            failed_rounds: std::sync::atomic::AtomicU32::new(0),
            outbox,
            config,
            kafka: settings.clone(),
            check_topic: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Publishes until `stop` is cancelled, then flushes what the producer still holds.
    pub async fn run(self, stop: CancellationToken) {
        let doorbell = self.outbox.doorbell();
        let mut last_cleanup = tokio::time::Instant::now();
        loop {
            // A round normally takes milliseconds; one stuck on an unreachable broker is abandoned
            // shortly after shutdown starts (its rows stay unpublished and go out later).
            let abandon = async {
                stop.cancelled().await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            };
            let result = tokio::select! {
                r = self.round() => r,
                _ = abandon => break,
            };
            match result {
                // A full round means more may be waiting: go again at once.
                Ok(n) if n as i64 >= self.config.batch => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "outbox relay round failed"),
            }
            if last_cleanup.elapsed() > Duration::from_secs(300) {
                last_cleanup = tokio::time::Instant::now();
                if let Err(err) = self.cleanup().await {
                    tracing::warn!(error = %err, "outbox cleanup failed");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = doorbell.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        // Whatever was handed to librdkafka but not acknowledged stays unpublished in the table
        // and is sent again by the next relay; flushing just shortens that path.
        let _ = rdkafka::producer::Producer::flush(&self.producer(), Duration::from_secs(5));
        tracing::info!("outbox relay stopped");
    }

    /// One round; returns how many records it locked.
    pub async fn round(&self) -> Result<usize, EventError> {
        use std::sync::atomic::Ordering;
        if self.check_topic.load(Ordering::Relaxed) {
            match kafka::ensure_topics(&self.kafka, &[self.outbox.topic()]).await {
                Ok(()) => self.check_topic.store(false, Ordering::Relaxed),
                Err(err) => tracing::warn!(error = %err, "cannot make sure the topic exists"),
            }
        }
        let mut tx = self.pool.begin().await?;
        let heads: Vec<(String, String)> = sqlx::query_as(
            "SELECT o.topic, o.subject FROM event_outbox o
             WHERE o.published_at IS NULL AND o.next_attempt_at <= now()
               AND NOT EXISTS (
                   SELECT 1 FROM event_outbox p
                   WHERE p.published_at IS NULL AND p.topic = o.topic
                     AND p.subject = o.subject AND p.seq < o.seq)
             ORDER BY o.seq
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(self.config.batch)
        .fetch_all(&mut *tx)
        .await?;
        if heads.is_empty() {
            tx.rollback().await?;
            self.record_backlog().await;
            return Ok(0);
        }
        let (topics, subjects): (Vec<String>, Vec<String>) = heads.iter().cloned().unzip();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.seq, o.id, o.topic, o.subject, o.event_type, o.source, o.occurred_at, o.data,
                    o.trace_headers, o.attempts
             FROM event_outbox o
             JOIN unnest($1::text[], $2::text[]) AS h(topic, subject)
               ON o.topic = h.topic AND o.subject = h.subject
             WHERE o.published_at IS NULL
             ORDER BY o.seq",
        )
        .bind(&topics)
        .bind(&subjects)
        .fetch_all(&mut *tx)
        .await?;

        let mut per_record: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
        for row in rows {
            per_record
                .entry((row.topic.clone(), row.subject.clone()))
                .or_default()
                .push(row);
        }
        let outcomes: Vec<Outcome> = futures::future::join_all(
            per_record
                .into_values()
                .map(|rows| self.publish_record(rows)),
        )
        .await
        .into_iter()
        .flatten()
        .collect();

        let mut published = Vec::new();
        let mut failed = false;
        for outcome in outcomes {
            match outcome {
                Outcome::Published(seq) => published.push(seq),
                Outcome::Failed {
                    seq,
                    attempts,
                    error,
                } => {
                    failed = true;
                    let backoff = self.backoff(attempts);
                    sqlx::query(
                        "UPDATE event_outbox SET attempts = attempts + 1, last_error = $2,
                                next_attempt_at = now() + make_interval(secs => $3)
                         WHERE seq = $1",
                    )
                    .bind(seq)
                    .bind(&error)
                    .bind(backoff.as_secs_f64())
                    .execute(&mut *tx)
                    .await?;
                    metrics::counter!("outbox_publish_failures_total").increment(1);
                    self.check_topic
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        if !published.is_empty() {
            sqlx::query("UPDATE event_outbox SET published_at = now(), last_error = NULL WHERE seq = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await?;
            metrics::counter!("outbox_published_total").increment(published.len() as u64);
        }
        tx.commit().await?;
        self.after_round(failed);
        Ok(heads.len())
    }

    fn producer(&self) -> FutureProducer {
        self.producer.lock().expect("producer lock").clone()
    }

    /// Recreates the producer when it reports a fatal error or has failed three rounds in a row.
    fn after_round(&self, failed: bool) {
        use std::sync::atomic::Ordering;
        if !failed {
            self.failed_rounds.store(0, Ordering::Relaxed);
            return;
        }
        let rounds = self.failed_rounds.fetch_add(1, Ordering::Relaxed) + 1;
        let fatal = rdkafka::producer::Producer::client(&self.producer()).fatal_error();
        if fatal.is_some() || rounds >= 3 {
            match kafka::producer_config(&self.kafka).create::<FutureProducer>() {
                Ok(fresh) => {
                    tracing::warn!(?fatal, rounds, "recreating the Kafka producer");
                    *self.producer.lock().expect("producer lock") = fresh;
                    self.failed_rounds.store(0, Ordering::Relaxed);
                }
                Err(err) => tracing::error!(error = %err, "cannot recreate the Kafka producer"),
            }
        }
    }

    /// Publishes one record's rows in order; stops at the first failure so nothing overtakes it.
    async fn publish_record(&self, rows: Vec<Row>) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(rows.len());
        for row in rows {
            let seq = row.seq;
            let attempts = row.attempts;
            match self.publish(row).await {
                Ok(()) => outcomes.push(Outcome::Published(seq)),
                Err(error) => {
                    tracing::warn!(seq, %error, "publish failed; will retry");
                    outcomes.push(Outcome::Failed {
                        seq,
                        attempts,
                        error,
                    });
                    break;
                }
            }
        }
        outcomes
    }

    async fn publish(&self, row: Row) -> Result<(), String> {
        let envelope = Envelope::new(
            row.id,
            row.source,
            row.event_type,
            row.subject,
            row.occurred_at,
            row.data,
        );
        let payload = envelope.to_bytes().map_err(|e| e.to_string())?;
        let trace: Vec<(String, String)> =
            serde_json::from_value(row.trace_headers).unwrap_or_default();
        let id = envelope.id.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "content-type",
                value: Some(CONTENT_TYPE),
            })
            .insert(Header {
                key: "ce_id",
                value: Some(&id),
            })
            .insert(Header {
                key: "ce_type",
                value: Some(&envelope.event_type),
            });
        for (key, value) in &trace {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let record = FutureRecord::to(&row.topic)
            .key(&envelope.subject)
            .payload(&payload)
            .headers(headers);
        // The producer's message.timeout.ms bounds this; no extra queue timeout.
        self.producer()
            .send(record, Duration::from_secs(0))
            .await
            .map(|_| ())
            .map_err(|(err, _)| err.to_string())
    }

    fn backoff(&self, attempts: i32) -> Duration {
        let exp = 2u32.saturating_pow(attempts.clamp(0, 16) as u32);
        (Duration::from_millis(250) * exp).min(self.config.max_backoff)
    }

    async fn record_backlog(&self) {
        if let Ok(n) = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM event_outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        {
            metrics::gauge!("outbox_backlog").set(n as f64);
        }
    }

    async fn cleanup(&self) -> Result<(), EventError> {
        sqlx::query(
            "DELETE FROM event_outbox WHERE published_at < now() - make_interval(secs => $1)",
        )
        .bind(self.config.retention.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
