//! A broker restart loses nothing: Tansu with the durable storage `./dev up` runs it with
//! (Postgres, `deploy/tansu/postgres-schema.sql`), stopped and started again while events wait
//! unconsumed. The consumer then applies every one of them, and nothing it had applied before.

use std::time::Duration;

use crm_events::consumer::{Handler, IdempotentConsumer};
use crm_events::{Envelope, EventError};
use crm_testkit::TansuBroker;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Counts each event it applies, by id.
struct Counter;

impl Handler for Counter {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), EventError> {
        sqlx::query(
            "INSERT INTO applied (id, times) VALUES ($1, 1)
             ON CONFLICT (id) DO UPDATE SET times = applied.times + 1",
        )
        .bind(event.id)
        .execute(tx)
        .await?;
        Ok(())
    }
}

async fn publish(producer: &FutureProducer, topic: &str, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = Uuid::now_v7();
        let subject = format!("record-{i}");
        let event = Envelope::new(
            id,
            "/test/broker-restart",
            "test.thing.changed",
            subject.clone(),
            chrono::Utc::now(),
            serde_json::json!({ "n": i }),
        );
        producer
            .send(
                FutureRecord::to(topic)
                    .key(&subject)
                    .payload(&event.to_bytes().unwrap()),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("acknowledged by the broker");
        ids.push(id);
    }
    ids
}

/// Runs the consumer until every event of `ids` is applied (at most 60 s), then stops it.
async fn consume_until_applied(
    pool: &PgPool,
    settings: &crm_settings::KafkaSettings,
    topic: &str,
    ids: &[Uuid],
) {
    let stop = CancellationToken::new();
    let consumer =
        IdempotentConsumer::new("restart-test", settings, &[topic], pool.clone(), Counter).unwrap();
    let running = tokio::spawn(consumer.run(stop.clone()));
    crm_testkit::eventually(
        &format!("all {} events applied", ids.len()),
        Duration::from_secs(60),
        || async {
            let applied: i64 =
                sqlx::query_scalar("SELECT count(*) FROM applied WHERE id = ANY($1)")
                    .bind(ids)
                    .fetch_one(pool)
                    .await
                    .unwrap();
            applied == ids.len() as i64
        },
    )
    .await;
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn unconsumed_events_survive_a_broker_restart() {
    let mut broker = TansuBroker::start_durable().await;
    let mut settings = crm_testkit::kafka_settings(broker.brokers());
    settings.partitions = 2;
    settings.session_timeout_ms = 6_000;
    let topic = crm_testkit::unique("restart");
    crm_events::kafka::ensure_topics(&settings, &[&topic])
        .await
        .expect("topic");
    let pool = crm_testkit::fresh_events_pool().await;
    sqlx::query("CREATE TABLE applied (id UUID PRIMARY KEY, times INT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let producer: FutureProducer = crm_events::kafka::producer_config(&settings)
        .create()
        .expect("producer");

    // Some events consumed before the restart, some waiting.
    let consumed = publish(&producer, &topic, 10).await;
    consume_until_applied(&pool, &settings, &topic, &consumed).await;
    let waiting = publish(&producer, &topic, 10).await;
    drop(producer);

    broker.stop();
    broker.resume().await;

    // The waiting ones are still there after the restart, and the offsets the consumer keeps
    // with its effects take it exactly past the ones it had applied.
    consume_until_applied(&pool, &settings, &topic, &waiting).await;
    let (events, times): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(sum(times), 0)::int8 FROM applied")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((events, times), (20, 20), "every event applied once");

    // And the broker kept the records themselves, not only the consumer's position: a reader
    // from the start sees all twenty.
    let all =
        crm_testkit::collect_events(&broker.brokers(), &topic, 20, Duration::from_secs(30)).await;
    assert_eq!(all.len(), 20, "records kept by the restarted broker");
}
