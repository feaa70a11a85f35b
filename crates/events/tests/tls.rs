//! The relay and the idempotent consumer with `kafka.security` set, against a broker reachable
//! only over TLS: a TLS front with a throwaway CA before a Tansu that advertises the front, so
//! librdkafka does the whole handshake (server verification, client certificate) for real.

use std::time::{Duration, Instant};

use crm_events::consumer::{Handler, IdempotentConsumer};
use crm_events::outbox::{NewEvent, Outbox};
use crm_events::relay::{Relay, RelayConfig};
use crm_events::{Envelope, EventError};
use crm_settings::{KafkaProtocol, KafkaSecurity, KafkaSettings, TlsFiles};
use crm_testkit::TansuBroker;
use crm_testkit::tls::{Pki, TlsFront};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 5;

async fn fresh_pool() -> PgPool {
    let pool = crm_testkit::fresh_events_pool().await;
    sqlx::query("CREATE TABLE seen (subject TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

/// Records each event's subject.
struct Seen;

impl Handler for Seen {
    async fn handle(&self, tx: &mut PgConnection, event: &Envelope) -> Result<(), EventError> {
        sqlx::query("INSERT INTO seen VALUES ($1)")
            .bind(&event.subject)
            .execute(tx)
            .await?;
        Ok(())
    }
}

/// A Tansu behind a TLS front made with `pki` (client certificates required when `mutual`).
struct TlsBroker {
    _broker: TansuBroker,
    _front: TlsFront,
    brokers: Vec<String>,
}

async fn tls_broker(pki: &Pki, mutual: bool) -> TlsBroker {
    let front_port = crm_testkit::free_port();
    let broker = TansuBroker::start_advertising(crm_testkit::free_port(), front_port).await;
    let front = TlsFront::start(pki, front_port, broker.addr(), mutual).await;
    TlsBroker {
        brokers: broker.brokers(),
        _broker: broker,
        _front: front,
    }
}

fn settings(brokers: &[String], tls: TlsFiles) -> KafkaSettings {
    let mut settings = crm_testkit::kafka_settings(brokers.to_vec());
    settings.security = KafkaSecurity {
        protocol: KafkaProtocol::Ssl,
        tls,
        sasl: None,
    };
    settings
}

/// Writes [`EVENTS`] events to the outbox and runs a relay with `settings` until `stop`.
async fn publish(
    pool: &PgPool,
    settings: &KafkaSettings,
    topic: &str,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let outbox = Outbox::new("crm/test", topic);
    for n in 0..EVENTS {
        let mut tx = pool.begin().await.unwrap();
        let event = NewEvent {
            event_type: "test.thing.changed".into(),
            subject: format!("s{n}"),
            data: serde_json::json!({ "n": n }),
        };
        outbox.enqueue(&mut tx, event).await.unwrap();
        tx.commit().await.unwrap();
    }
    let config = RelayConfig {
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let relay = Relay::new(pool.clone(), settings, outbox, config).unwrap();
    tokio::spawn(relay.run(stop.clone()))
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn events_go_out_and_come_back_over_mutual_tls() {
    let pki = Pki::new("kafka");
    let broker = tls_broker(&pki, true).await;
    let settings = settings(&broker.brokers, pki.tls_files(true));
    let pool = fresh_pool().await;
    let topic = crm_testkit::unique("tls");
    let stop = CancellationToken::new();
    crm_events::kafka::ensure_topics(&settings, &[&topic])
        .await
        .expect("topic created over TLS");
    let relay = publish(&pool, &settings, &topic, &stop).await;
    let consumer = IdempotentConsumer::new(
        &crm_testkit::unique("tls"),
        &settings,
        &[&topic],
        pool.clone(),
        Seen,
    )
    .unwrap();
    let consumer = tokio::spawn(consumer.run(stop.clone()));

    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&pool, "SELECT count(*) FROM seen").await < EVENTS as i64 {
        assert!(
            Instant::now() < deadline,
            "events did not come back over TLS"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stopped while the broker is still there: the consumer commits and leaves its group.
    stop.cancel();
    relay.await.unwrap();
    consumer.await.unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"
        )
        .await,
        0
    );
}

/// A broker whose certificate the configured CA did not sign, or that wants a client
/// certificate the settings do not give: nothing is published, and the events wait in the
/// outbox (they go out once the settings are right).
#[tokio::test]
async fn a_broker_that_fails_verification_gets_nothing_and_the_outbox_keeps_it() {
    let pki = Pki::new("kafka");
    let other = Pki::new("other");
    for (name, mutual, tls) in [
        ("unknown CA", false, other.tls_files(false)),
        ("no client certificate", true, pki.tls_files(false)),
    ] {
        let broker = tls_broker(&pki, mutual).await;
        let settings = settings(&broker.brokers, tls);
        let pool = fresh_pool().await;
        let stop = CancellationToken::new();
        let relay = publish(&pool, &settings, &crm_testkit::unique("tls"), &stop).await;
        // Long enough for a handshake and a few relay rounds on loopback.
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.cancel();
        relay.await.unwrap();
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"
            )
            .await,
            EVENTS as i64,
            "{name}: published anyway"
        );
    }
}

#[test]
fn an_unreadable_ca_file_stops_the_start() {
    let mut settings = settings(
        &["127.0.0.1:1".to_string()],
        TlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            client_cert: None,
        },
    );
    let err = crm_events::kafka::check_config(&settings)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ssl.ca.location"), "{err}");
    settings.security.tls = TlsFiles::default();
    crm_events::kafka::check_config(&settings).expect("the system's roots");
}
