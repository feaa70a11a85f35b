//! The idempotent consumer: each event is applied exactly once per consumer, though Kafka
//! delivers at least once and replicas crash (`docs/adr/0013-consumer-recovery.md`).
//!
//! **Offsets kept with the effect.** For every record, in one database transaction: insert
//! `(consumer, event id)` into `processed_events` (a conflict means the same event came again,
//! e.g. published twice by a relay, and its handler is skipped), run the handler, and move the
//! partition's `next_offset` in `consumer_partitions` past the record — only while this replica
//! holds the partition and the record is not behind it. The effect and the position commit
//! together, so a process killed at any point loses both or neither, and whoever reads the
//! partition next resumes right after the last record applied. Nothing is committed to the
//! broker.
//!
//! **Partitions leased in the same database.** The consumer joins no broker consumer group:
//! each replica assigns itself partitions (`assign`, never `subscribe`), so recovery does not
//! depend on the broker's group coordinator. Every lease round (a third of
//! `kafka.session_timeout_ms`, at most 3 s) a replica renews its row in `consumer_members`,
//! takes the partitions of its share (the partitions in order, dealt round-robin to the live
//! members in order) that are free or whose lease ran out, renews those it holds and frees those
//! no longer in its share. The rounds of one consumer's replicas take turns (a transaction-scoped
//! advisory lock). A replica that dies stops renewing: one session timeout later its partitions
//! are free for the others, or for its own restart (a replica waiting for a partition of its share
//! has its next round when that lease runs out); one that stops cleanly frees them at once.
//! A replica that lost a lease it still believed in cannot commit (the offset update names the
//! holder), so two replicas never both apply a record.
//!
//! A handler error rolls the transaction back and retries the same record with back-off, so a
//! partition never skips an event it could not apply. A record that is not a CloudEvent is
//! logged, counted and passed over (its offset moves on): it can never succeed.
//!
//! Metrics: `events_consumed_total{consumer, outcome}` counts `applied` and `duplicate` records
//! per process; `events_consumer_partitions{consumer}` is how many partitions this process reads,
//! `events_consumer_lag{consumer}` how many records they hold that it has not applied yet.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_settings::KafkaSettings;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
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

/// How often partitions are looked up again (new partitions of a topic are picked up).
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(30);
/// How often `events_consumer_lag` is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(15);

/// A topic and partition.
type Partition = (String, i32);

/// A partition this replica holds. `id` changes each time it is taken anew, and then reading
/// starts at `next_offset` from the database (`None`: the earliest record); while renewed, the
/// reader keeps its own position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Claim {
    id: u64,
    next_offset: Option<i64>,
}

type Claims = BTreeMap<Partition, Claim>;

/// librdkafka's own account (broker errors, fetch trouble) goes to the service's log.
struct Logging {
    name: String,
}

impl ClientContext for Logging {
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

impl ConsumerContext for Logging {}

/// The lease rounds of one replica (see the module docs).
#[derive(Clone)]
struct Leases {
    consumer: String,
    member: String,
    topics: Vec<String>,
    pool: PgPool,
    /// How long a lease lasts without renewal: `kafka.session_timeout_ms`.
    lease: Duration,
}

/// A third of the lease, between 100 ms and 3 s: a renewal can fail twice before it runs out.
fn round_interval(lease: Duration) -> Duration {
    (lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(3))
}

impl Leases {
    /// Renews, takes and frees leases until `stop`, then returns (the caller frees what is left);
    /// publishes what this replica holds on `claims` whenever that changes.
    async fn run(
        self,
        kafka: Arc<StreamConsumer<Logging>>,
        claims: watch::Sender<Claims>,
        stop: CancellationToken,
    ) {
        let every = round_interval(self.lease);
        let mut known = BTreeSet::new();
        let mut discover_at = Instant::now();
        let mut next_id = 0;
        let lag = tokio::spawn(self.clone().measure_lag(kafka.clone(), stop.clone()));
        loop {
            if Instant::now() >= discover_at {
                known.extend(partitions_of(&kafka, &self.topics).await);
                // A topic not described yet (being created, broker away) is looked up each round.
                let complete = self
                    .topics
                    .iter()
                    .all(|topic| known.iter().any(|(t, _)| t == topic));
                discover_at = Instant::now() + if complete { DISCOVERY_INTERVAL } else { every };
            }
            let held = claims.borrow().clone();
            let mut pause = every;
            match self.round(&known, &held, &mut next_id).await {
                Ok((now, wake)) => {
                    if let Some(wake) = wake {
                        pause = pause.min(wake + Duration::from_millis(20));
                    }
                    if now != held {
                        let taken = now.keys().filter(|p| held.get(*p) != now.get(*p)).count();
                        let freed = held.keys().filter(|p| !now.contains_key(*p)).count();
                        tracing::info!(consumer = %self.consumer, member = %self.member, partitions = now.len(), taken, freed, "partitions leased");
                        claims.send_replace(now);
                    }
                }
                Err(err) => tracing::warn!(
                    consumer = %self.consumer,
                    error = %err,
                    "lease round failed; partitions held stay fenced by the database"
                ),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        let _ = lag.await;
    }

    /// One lease round in one transaction. Returns the partitions held after it, and how soon
    /// the first lease another replica holds on a partition of this one's share runs out (the
    /// next round comes then, so a dead replica's partitions are taken over as soon as they can).
    async fn round(
        &self,
        known: &BTreeSet<Partition>,
        held: &Claims,
        next_id: &mut u64,
    ) -> Result<(Claims, Option<Duration>), sqlx::Error> {
        let lease_ms = self.lease.as_secs_f64() * 1000.0;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('crm_events.consumer:' || $1, 0))",
        )
        .bind(&self.consumer)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO consumer_members (consumer, member, expires_at)
             VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
             ON CONFLICT (consumer, member) DO UPDATE SET expires_at = EXCLUDED.expires_at",
        )
        .bind(&self.consumer)
        .bind(&self.member)
        .bind(lease_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM consumer_members WHERE consumer = $1 AND expires_at <= clock_timestamp()",
        )
        .bind(&self.consumer)
        .execute(&mut *tx)
        .await?;
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT member FROM consumer_members WHERE consumer = $1 ORDER BY member",
        )
        .bind(&self.consumer)
        .fetch_all(&mut *tx)
        .await?;
        if !known.is_empty() {
            let (topics, partitions): (Vec<String>, Vec<i32>) = known.iter().cloned().unzip();
            sqlx::query(
                "INSERT INTO consumer_partitions (consumer, topic, partition)
                 SELECT $1, t, p FROM unnest($2::text[], $3::int4[]) AS k (t, p)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&self.consumer)
            .bind(&topics)
            .bind(&partitions)
            .execute(&mut *tx)
            .await?;
        }
        let rows: Vec<(String, i32, Option<String>, Option<f64>)> = sqlx::query_as(
            "SELECT topic, partition, owner,
                    extract(epoch FROM lease_until - clock_timestamp())::float8
             FROM consumer_partitions WHERE consumer = $1 AND topic = ANY($2)
             ORDER BY topic, partition",
        )
        .bind(&self.consumer)
        .bind(&self.topics)
        .fetch_all(&mut *tx)
        .await?;
        let mut take: (Vec<String>, Vec<i32>) = Default::default();
        let mut free: (Vec<String>, Vec<i32>) = Default::default();
        let mut renewed = BTreeSet::new();
        let mut wake: Option<Duration> = None;
        for (i, (topic, partition, owner, remaining)) in rows.into_iter().enumerate() {
            let share = members.get(i % members.len().max(1)) == Some(&self.member);
            let mine = owner.as_deref() == Some(self.member.as_str());
            let live = remaining.is_some_and(|secs| secs > 0.0);
            if share && owner.is_some() && !mine && live {
                // Another replica's, until it frees it or its lease runs out: look again then.
                let left = Duration::from_secs_f64(remaining.unwrap_or_default());
                wake = Some(wake.map_or(left, |w| w.min(left)));
            }
            if share && (mine || owner.is_none() || !live) {
                if mine {
                    renewed.insert((topic.clone(), partition));
                }
                take.0.push(topic);
                take.1.push(partition);
            } else if mine && !share {
                free.0.push(topic);
                free.1.push(partition);
            }
        }
        if !free.0.is_empty() {
            sqlx::query(
                "UPDATE consumer_partitions SET owner = NULL, lease_until = NULL
                 WHERE consumer = $1 AND owner = $2
                   AND (topic, partition) IN (SELECT * FROM unnest($3::text[], $4::int4[]))",
            )
            .bind(&self.consumer)
            .bind(&self.member)
            .bind(&free.0)
            .bind(&free.1)
            .execute(&mut *tx)
            .await?;
        }
        let taken: Vec<(String, i32, Option<i64>)> = sqlx::query_as(
            "UPDATE consumer_partitions
             SET owner = $2, lease_until = clock_timestamp() + $5 * interval '1 millisecond'
             WHERE consumer = $1
               AND (topic, partition) IN (SELECT * FROM unnest($3::text[], $4::int4[]))
               AND (owner IS NULL OR owner = $2 OR lease_until <= clock_timestamp())
             RETURNING topic, partition, next_offset",
        )
        .bind(&self.consumer)
        .bind(&self.member)
        .bind(&take.0)
        .bind(&take.1)
        .bind(lease_ms)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let claims = taken
            .into_iter()
            .map(|(topic, partition, next_offset)| {
                let key = (topic, partition);
                // Held since our last round: nobody else can have applied anything meanwhile
                // (the offset update names the holder), so the reader keeps its position.
                let claim = match held.get(&key) {
                    Some(claim) if renewed.contains(&key) => *claim,
                    _ => {
                        *next_id += 1;
                        Claim {
                            id: *next_id,
                            next_offset,
                        }
                    }
                };
                (key, claim)
            })
            .collect();
        Ok((claims, wake))
    }

    /// Sets `events_consumer_lag` every [`LAG_INTERVAL`] until `stop`: the records in the
    /// partitions this replica holds beyond their `next_offset`.
    async fn measure_lag(self, kafka: Arc<StreamConsumer<Logging>>, stop: CancellationToken) {
        let gauge = metrics::gauge!("events_consumer_lag", "consumer" => self.consumer.clone());
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(LAG_INTERVAL) => {}
            }
            let held: Result<Vec<(String, i32, Option<i64>)>, _> = sqlx::query_as(
                "SELECT topic, partition, next_offset FROM consumer_partitions
                 WHERE consumer = $1 AND owner = $2",
            )
            .bind(&self.consumer)
            .bind(&self.member)
            .fetch_all(&self.pool)
            .await;
            let Ok(held) = held else { continue };
            let kafka = kafka.clone();
            let lag = tokio::task::spawn_blocking(move || {
                let mut lag = 0;
                for (topic, partition, next) in held {
                    let (low, high) =
                        kafka.fetch_watermarks(&topic, partition, Duration::from_secs(2))?;
                    lag += (high - next.unwrap_or(low).max(low)).max(0);
                }
                Ok::<i64, rdkafka::error::KafkaError>(lag)
            })
            .await;
            match lag {
                Ok(Ok(lag)) => gauge.set(lag as f64),
                Ok(Err(err)) => {
                    tracing::debug!(consumer = %self.consumer, error = %err, "lag not measured")
                }
                Err(_) => {}
            }
        }
    }

    /// Frees this replica's partitions and its member row (a clean stop): the others take the
    /// partitions at their next round instead of after the lease.
    async fn leave(&self) {
        let result = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "UPDATE consumer_partitions SET owner = NULL, lease_until = NULL
                 WHERE consumer = $1 AND owner = $2",
            )
            .bind(&self.consumer)
            .bind(&self.member)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM consumer_members WHERE consumer = $1 AND member = $2")
                .bind(&self.consumer)
                .bind(&self.member)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(consumer = %self.consumer, member = %self.member, "partitions given back")
            }
            Err(err) => tracing::warn!(
                consumer = %self.consumer,
                error = %err,
                "partitions not given back; the other replicas take them when the lease runs out"
            ),
        }
    }
}

/// The partitions of `topics` the broker knows (none of a topic it cannot describe yet).
async fn partitions_of(kafka: &Arc<StreamConsumer<Logging>>, topics: &[String]) -> Vec<Partition> {
    let kafka = kafka.clone();
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        for topic in &topics {
            match kafka.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                Ok(metadata) => {
                    for t in metadata.topics().iter().filter(|t| t.error().is_none()) {
                        found.extend(
                            t.partitions()
                                .iter()
                                .map(|p| (t.name().to_string(), p.id())),
                        );
                    }
                }
                Err(err) => tracing::warn!(%topic, error = %err, "cannot look up the partitions"),
            }
        }
        found
    })
    .await
    .unwrap_or_default()
}

/// Where this replica reads a partition it holds.
#[derive(Debug)]
struct Position {
    /// The [`Claim`] it was read under.
    claim: u64,
    /// The next offset to apply (`None`: the earliest).
    next: Option<i64>,
}

/// What became of one record.
enum Outcome {
    /// Committed with the offset; `fresh` is false when its event id had been applied before.
    Done { fresh: bool },
    /// The partition is no longer this replica's: nothing was committed.
    NotOwner,
}

pub struct IdempotentConsumer<H> {
    name: String,
    consumer: Arc<StreamConsumer<Logging>>,
    pool: PgPool,
    handler: H,
    leases: Leases,
}

impl<H: Handler> IdempotentConsumer<H> {
    /// `name` is the key under which processed ids, members and offsets are kept (the replicas of
    /// one deployment share it and split the partitions); `kafka.session_timeout_ms` is how long
    /// a replica that died keeps its partitions.
    pub fn new(
        name: &str,
        settings: &KafkaSettings,
        topics: &[&str],
        pool: PgPool,
        handler: H,
    ) -> Result<Self, EventError> {
        let consumer: StreamConsumer<Logging> = kafka::client_config(settings)
            // librdkafka wants a group for `assign`; it never joins it (no `subscribe`) and never
            // commits to it.
            .set("group.id", name)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Where to start when the database's offset is gone from the log (retention).
            .set("auto.offset.reset", "earliest")
            .create_with_context(Logging {
                name: name.to_string(),
            })?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
        Ok(Self {
            name: name.to_string(),
            consumer: Arc::new(consumer),
            leases: Leases {
                consumer: name.to_string(),
                member: format!("{host}-{}", uuid::Uuid::new_v4().simple()),
                topics: topics.iter().map(|t| t.to_string()).collect(),
                pool: pool.clone(),
                lease: Duration::from_millis(settings.session_timeout_ms),
            },
            pool,
            handler,
        })
    }

    /// Consumes until `stop` is cancelled; the record being applied is finished first, then the
    /// partitions are given back for the other replicas.
    pub async fn run(self, stop: CancellationToken) {
        let (claims_tx, mut claims) = watch::channel(Claims::new());
        let leases_stop = CancellationToken::new();
        let leases = tokio::spawn(self.leases.clone().run(
            self.consumer.clone(),
            claims_tx,
            leases_stop.clone(),
        ));
        let mut owned = BTreeMap::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = claims.changed() => {
                    if changed.is_err() {
                        tracing::error!(consumer = %self.name, "lease rounds ended; consumer stops");
                        break;
                    }
                    let now = claims.borrow_and_update().clone();
                    self.follow(&now, &mut owned);
                }
                message = self.consumer.recv() => match message {
                    Ok(message) => self.process(&message, &mut owned, &stop).await,
                    Err(err) => {
                        tracing::warn!(error = %err, consumer = %self.name, "kafka receive failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                },
            }
        }
        leases_stop.cancel();
        let _ = leases.await;
        self.leases.leave().await;
        if let Err(err) = self.consumer.unassign() {
            tracing::debug!(consumer = %self.name, error = %err, "unassign failed");
        }
        tracing::info!(consumer = %self.name, "consumer stopped");
    }

    /// Reads what `claims` holds: partitions taken anew from their offset in the database,
    /// renewed ones from where this replica is.
    fn follow(&self, claims: &Claims, owned: &mut BTreeMap<Partition, Position>) {
        let before: Vec<(Partition, u64)> =
            owned.iter().map(|(p, o)| (p.clone(), o.claim)).collect();
        owned.retain(|p, position| claims.get(p).is_some_and(|c| c.id == position.claim));
        for (partition, claim) in claims {
            owned.entry(partition.clone()).or_insert(Position {
                claim: claim.id,
                next: claim.next_offset,
            });
        }
        let after: Vec<(Partition, u64)> =
            owned.iter().map(|(p, o)| (p.clone(), o.claim)).collect();
        if before != after {
            self.assign(owned);
        }
    }

    fn assign(&self, owned: &BTreeMap<Partition, Position>) {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), position) in owned {
            let offset = position.next.map_or(Offset::Beginning, Offset::Offset);
            if let Err(err) = list.add_partition_offset(topic, *partition, offset) {
                tracing::error!(consumer = %self.name, %topic, partition, error = %err, "bad offset");
            }
        }
        if let Err(err) = self.consumer.assign(&list) {
            tracing::error!(consumer = %self.name, error = %err, "cannot read the partitions held");
        }
        metrics::gauge!("events_consumer_partitions", "consumer" => self.name.clone())
            .set(owned.len() as f64);
        tracing::debug!(consumer = %self.name, partitions = owned.len(), "reading");
    }

    async fn process(
        &self,
        message: &BorrowedMessage<'_>,
        owned: &mut BTreeMap<Partition, Position>,
        stop: &CancellationToken,
    ) {
        let partition = (message.topic().to_string(), message.partition());
        let offset = message.offset();
        match owned.get(&partition) {
            // Left over from a partition given up, or read again after a new assignment.
            None => return,
            Some(position) if position.next.is_some_and(|next| offset < next) => return,
            Some(_) => {}
        }
        let envelope = match message.payload().map(Envelope::from_bytes) {
            Some(Ok(envelope)) => Some(envelope),
            Some(Err(err)) => {
                tracing::error!(error = %err, topic = message.topic(), offset, "skipping malformed event");
                metrics::counter!("events_malformed_total", "consumer" => self.name.clone())
                    .increment(1);
                None
            }
            None => None,
        };
        let span = match &envelope {
            Some(envelope) => {
                let span = tracing::info_span!("consume", consumer = %self.name, event_type = %envelope.event_type, event_id = %envelope.id, trace_id = tracing::field::Empty);
                crm_telemetry::propagation::set_parent(
                    &span,
                    crm_telemetry::propagation::extract_pairs(&headers_of(message)),
                );
                if let Some(id) = span.in_scope(crm_telemetry::current_trace_id) {
                    span.record("trace_id", id);
                }
                span
            }
            None => tracing::info_span!("consume", consumer = %self.name, offset),
        };
        let mut delay = Duration::from_millis(200);
        loop {
            match self
                .apply(&partition, offset, envelope.as_ref())
                .instrument(span.clone())
                .await
            {
                Ok(Outcome::Done { fresh }) => {
                    if envelope.is_some() {
                        if !fresh {
                            tracing::debug!(parent: &span, "duplicate event skipped");
                        }
                        let outcome = if fresh { "applied" } else { "duplicate" };
                        metrics::counter!("events_consumed_total", "consumer" => self.name.clone(), "outcome" => outcome)
                            .increment(1);
                    }
                    if let Some(position) = owned.get_mut(&partition) {
                        position.next = Some(offset + 1);
                    }
                    return;
                }
                Ok(Outcome::NotOwner) => {
                    tracing::info!(parent: &span, topic = %partition.0, partition = partition.1, "partition held by another replica now; left to it");
                    owned.remove(&partition);
                    self.assign(owned);
                    return;
                }
                Err(err) => {
                    tracing::warn!(parent: &span, error = %err, "handler failed; retrying");
                    tokio::select! {
                        // Stop without committing: the record is read again by whoever takes over.
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Applies the record at `offset` (its handler only when `envelope` is a new event) and moves
    /// the partition's offset past it, in one transaction.
    async fn apply(
        &self,
        (topic, partition): &Partition,
        offset: i64,
        envelope: Option<&Envelope>,
    ) -> Result<Outcome, EventError> {
        let mut tx = self.pool.begin().await?;
        let mut fresh = false;
        if let Some(envelope) = envelope {
            fresh = sqlx::query(
                "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&self.name)
            .bind(envelope.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if fresh {
                self.handler.handle(&mut tx, envelope).await?;
            }
        }
        let moved = sqlx::query(
            "UPDATE consumer_partitions SET next_offset = $5 + 1
             WHERE consumer = $1 AND topic = $2 AND partition = $3 AND owner = $4
               AND (next_offset IS NULL OR next_offset <= $5)",
        )
        .bind(&self.name)
        .bind(topic)
        .bind(partition)
        .bind(&self.leases.member)
        .bind(offset)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 1 {
            tx.commit().await?;
            return Ok(Outcome::Done { fresh });
        }
        tx.rollback().await?;
        // Past it already under this replica's own lease (a commit whose answer was lost, then
        // retried): done. Anything else: someone else's partition now.
        let row: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT owner, next_offset FROM consumer_partitions
             WHERE consumer = $1 AND topic = $2 AND partition = $3",
        )
        .bind(&self.name)
        .bind(topic)
        .bind(partition)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some((Some(owner), Some(next))) if owner == self.leases.member && next > offset => {
                Outcome::Done { fresh: false }
            }
            _ => Outcome::NotOwner,
        })
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
