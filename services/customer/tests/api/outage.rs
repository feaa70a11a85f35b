//! Postgres late and lost: a service started before its database is reachable waits (not ready)
//! and becomes ready when it comes; losing it for a few seconds answers errors meanwhile (not a
//! hang, not a stuck process) and recovers fully after.

use std::time::{Duration, Instant};

use crm_customer::settings::{CacheSettings, EventsSettings};
use crm_proto::customer as pb;
use tonic::Code;

fn settings(
    database_url: String,
    redis: crm_settings::RedisSettings,
    brokers: Vec<String>,
    topic: &str,
) -> crm_customer::Settings {
    crm_customer::Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::trusting_tests(crm_customer::Settings::default_identity()),
        services: crm_testkit::identity::unreachable_permission(),
        upstream: Default::default(),
        database: crm_testkit::database_settings(database_url),
        redis,
        kafka: crm_testkit::kafka_settings(brokers),
        events: EventsSettings {
            topic: topic.to_string(),
        },
        cache: CacheSettings { ttl_secs: 60 },
    }
}

/// `/readyz`'s status, 0 when it does not answer.
async fn readyz(http_port: u16) -> u16 {
    reqwest::get(format!("http://127.0.0.1:{http_port}/readyz"))
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn late_and_lost_postgres_mean_not_ready_then_errors_then_full_recovery() {
    let db_url = crm_testkit::fresh_db_url().await;
    let proxy = crm_testkit::TcpProxy::start(crm_testkit::socket_addr_of(&db_url), false).await;
    let mut settings = settings(
        proxy.rewrite(&db_url),
        crm_testkit::redis_settings(),
        crm_testkit::kafka_brokers(),
        &crm_testkit::unique("customer-events"),
    );
    settings.database.acquire_timeout_secs = 2;
    let app = crm_customer::Application::build(settings).await.unwrap();
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let stop = crm_lifecycle::CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));

    // Postgres unreachable: alive (health) but not ready, for as long as it takes — shown by
    // several connection attempts refused while it stays up and unready.
    proxy.wait_for_attempts(3, Duration::from_secs(60)).await;
    if handle.is_finished() {
        panic!("exited: {:?}", handle.await);
    }
    assert_eq!(readyz(http).await, 503, "not ready without its database");
    assert!(!handle.is_finished(), "waiting, not exited");

    proxy.set_up(true);
    crm_testkit::wait_ready(http, grpc).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::customer_service_client::CustomerServiceClient::new(
        crm_testkit::identity::signed(channel, "customer"),
    );
    let list = |client: &mut pb::customer_service_client::CustomerServiceClient<_>| {
        let mut request = tonic::Request::new(pb::ListAccountsRequest::default());
        crm_access::Access::system(uuid::Uuid::now_v7()).to_metadata(request.metadata_mut());
        request.set_timeout(Duration::from_secs(10));
        let mut client = client.clone();
        async move { client.list_accounts(request).await }
    };
    list(&mut client).await.expect("serves with its database");

    // Lost: calls fail (UNAVAILABLE, promptly), they do not hang.
    proxy.set_up(false);
    let started = Instant::now();
    let failed = list(&mut client).await.unwrap_err();
    assert_eq!(failed.code(), Code::Unavailable, "{failed:?}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "answered, not hung"
    );

    // Back: full recovery without a restart.
    proxy.set_up(true);
    crm_testkit::eventually("recovery", Duration::from_secs(30), || {
        let call = list(&mut client);
        async move { call.await.is_ok() }
    })
    .await;
    stop.cancel();
    handle.await.unwrap().expect("a clean shutdown");
}

/// Started with Postgres, Kafka and Redis all unreachable. Postgres is what it cannot answer
/// without: not ready until it comes. Kafka and Redis are not (ADR 0003, 0004): writes wait in
/// the outbox, reads miss the cache, so the service turns ready without them — a pod restarted
/// during a broker or cache outage serves like its siblings instead of staying out — and when
/// they come the waiting events go out (nothing lost, nothing doubled) and reads are cached.
#[tokio::test]
async fn started_before_its_dependencies_it_waits_for_postgres_and_catches_up_with_the_rest() {
    let db_url = crm_testkit::fresh_db_url().await;
    let postgres = crm_testkit::TcpProxy::start(crm_testkit::socket_addr_of(&db_url), false).await;
    let redis = crm_testkit::TcpProxy::start(
        crm_testkit::socket_addr_of(&crm_testkit::redis_url()),
        false,
    )
    .await;
    let mut broker = crm_testkit::TansuBroker::start().await;
    broker.stop();
    let mut redis_settings = crm_testkit::redis_settings();
    redis_settings.url = redis.rewrite(&crm_testkit::redis_url()).into();
    let topic = crm_testkit::unique("customer-events");
    let settings = settings(
        postgres.rewrite(&db_url),
        redis_settings.clone(),
        broker.brokers(),
        &topic,
    );
    let app = crm_customer::Application::build(settings).await.unwrap();
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let stop = crm_lifecycle::CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    postgres.wait_for_attempts(2, Duration::from_secs(60)).await;
    assert_eq!(readyz(http).await, 503, "not ready without Postgres");
    assert!(!handle.is_finished(), "waiting, not exited");

    // Postgres comes; Kafka and Redis are still away.
    postgres.set_up(true);
    crm_testkit::wait_ready(http, grpc).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::customer_service_client::CustomerServiceClient::new(
        crm_testkit::identity::signed(channel, "customer"),
    );
    let system = crm_access::Access::system(uuid::Uuid::now_v7());
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut request = tonic::Request::new(pb::CreateAccountRequest {
            name: format!("while the broker is away {i}"),
            ..Default::default()
        });
        system.to_metadata(request.metadata_mut());
        ids.push(
            client
                .create_account(request)
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    let get = |id: String| {
        let mut request = tonic::Request::new(pb::GetAccountRequest { id });
        system.to_metadata(request.metadata_mut());
        let mut client = client.clone();
        async move { client.get_account(request).await }
    };
    get(ids[0].clone()).await.expect("reads without Redis");

    // Kafka comes: the waiting events go out, once each.
    broker.resume().await;
    let events = crm_testkit::collect_events(
        &broker.brokers(),
        &topic,
        ids.len(),
        Duration::from_secs(60),
    )
    .await;
    let mut subjects: Vec<String> = events.iter().map(|(e, _)| e.subject.clone()).collect();
    subjects.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(subjects, expected, "each write's event, once");

    // Redis comes: reads fill the cache again.
    redis.set_up(true);
    let conn = redis::Client::open(crm_testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pattern = format!("{}:customer:*", redis_settings.key_prefix);
    crm_testkit::eventually("the cache used again", Duration::from_secs(30), || {
        let (read, mut conn, pattern) = (get(ids[1].clone()), conn.clone(), pattern.clone());
        async move {
            read.await.expect("reads");
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .unwrap();
            !keys.is_empty()
        }
    })
    .await;
    stop.cancel();
    handle.await.unwrap().expect("a clean shutdown");
}
