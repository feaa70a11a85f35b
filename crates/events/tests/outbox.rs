//! The outbox, relay and idempotent consumer against real Postgres and a Kafka-protocol broker.

use std::collections::HashMap;
use std::time::Duration;

use crm_events::consumer::{Handler, IdempotentConsumer};
use crm_events::outbox::{NewEvent, Outbox};
use crm_events::relay::{Relay, RelayConfig};
use crm_events::{Envelope, EventError};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

async fn fresh_pool() -> PgPool {
    crm_testkit::fresh_events_pool().await
}

fn event(subject: &str, n: usize) -> NewEvent {
    NewEvent {
        event_type: "test.thing.changed".into(),
        subject: subject.into(),
        data: serde_json::json!({ "n": n }),
    }
}

#[tokio::test]
async fn rolled_back_writes_leave_no_event() {
    let pool = fresh_pool().await;
    let outbox = Outbox::new("crm/test", "unused");
    let mut tx = pool.begin().await.unwrap();
    outbox.enqueue(&mut tx, event("a", 0)).await.unwrap();
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// Two relays over one outbox publish every event exactly once and keep each record's order.
#[tokio::test]
async fn two_relays_share_the_outbox_without_reordering_a_record() {
    let pool = fresh_pool().await;
    let brokers = crm_testkit::kafka_brokers();
    let topic = crm_testkit::unique("relay");
    let settings = crm_testkit::kafka_settings(brokers.clone());
    let outbox = Outbox::new("crm/test", &topic);
    let subjects = ["a", "b", "c", "d"];
    for n in 0..40 {
        let mut tx = pool.begin().await.unwrap();
        outbox
            .enqueue(&mut tx, event(subjects[n % 4], n))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let stop = CancellationToken::new();
    let config = RelayConfig {
        batch: 3,
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let relay =
                Relay::new(pool.clone(), &settings, outbox.clone(), config.clone()).unwrap();
            tokio::spawn(relay.run(stop.clone()))
        })
        .collect();

    let events = crm_testkit::collect_events(&brokers, &topic, 40, Duration::from_secs(60)).await;
    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
    assert_eq!(events.len(), 40, "each event exactly once");
    let mut per_subject: HashMap<String, Vec<u64>> = HashMap::new();
    for (e, _) in &events {
        per_subject
            .entry(e.subject.clone())
            .or_default()
            .push(e.data["n"].as_u64().unwrap());
    }
    for (subject, ns) in per_subject {
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "events of {subject} out of order");
        assert_eq!(ns.len(), 10);
    }
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(pending, 0);
}

/// Adds each event's `n` to a running total in the consumer's database.
struct Summer;

impl Handler for Summer {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), EventError> {
        sqlx::query("UPDATE totals SET total = total + $1, applied = applied + 1")
            .bind(event.data["n"].as_i64().unwrap_or(0))
            .execute(tx)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn consumer_applies_a_redelivered_event_once() {
    let pool = fresh_pool().await;
    sqlx::query("CREATE TABLE totals (total BIGINT NOT NULL, applied BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO totals VALUES (0, 0)")
        .execute(&pool)
        .await
        .unwrap();

    let brokers = crm_testkit::kafka_brokers();
    let topic = crm_testkit::unique("consumer");
    let settings = crm_testkit::kafka_settings(brokers.clone());
    crm_events::kafka::ensure_topics(&settings, &[&topic])
        .await
        .unwrap();
    let producer: FutureProducer = crm_events::kafka::producer_config(&settings)
        .create()
        .unwrap();
    let once = Envelope::new(
        uuid::Uuid::now_v7(),
        "crm/test",
        "test.thing.changed",
        "a",
        chrono::Utc::now(),
        serde_json::json!({"n": 5}),
    );
    let other = Envelope::new(
        uuid::Uuid::now_v7(),
        "crm/test",
        "test.thing.changed",
        "a",
        chrono::Utc::now(),
        serde_json::json!({"n": 7}),
    );
    // `once` is delivered twice (a producer retry or a relay crash after publishing), and a
    // record that is not a CloudEvent sits between them: it is skipped, not retried forever.
    let payloads = [
        once.to_bytes().unwrap(),
        b"not json".to_vec(),
        once.to_bytes().unwrap(),
        other.to_bytes().unwrap(),
    ];
    for payload in &payloads {
        producer
            .send(
                FutureRecord::to(&topic).key("a").payload(payload).headers(
                    OwnedHeaders::new().insert(Header {
                        key: "content-type",
                        value: Some("application/cloudevents+json"),
                    }),
                ),
                Duration::from_secs(0),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let stop = CancellationToken::new();
    let group = crm_testkit::unique("summer");
    let consumer =
        IdempotentConsumer::new(&group, &settings, &[&topic], pool.clone(), Summer).unwrap();
    let handle = tokio::spawn(consumer.run(stop.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (total, applied): (i64, i64) = sqlx::query_as("SELECT total, applied FROM totals")
            .fetch_one(&pool)
            .await
            .unwrap();
        if applied >= 2 {
            // Give a wrongly-applied duplicate time to show up.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let (total, applied): (i64, i64) = sqlx::query_as("SELECT total, applied FROM totals")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!((total, applied), (12, 2));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "consumer applied {applied} events (total {total})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    handle.await.unwrap();
    let processed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE consumer = $1")
            .bind(&group)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(processed, 2);
}
