//! Postgres late and lost: a service started before its database is reachable waits (not ready)
//! and becomes ready when it comes; losing it for a few seconds answers errors meanwhile (not a
//! hang, not a stuck process) and recovers fully after.

use std::time::{Duration, Instant};

use crm_customer::settings::{CacheSettings, EventsSettings};
use crm_proto::customer as pb;
use tonic::Code;

#[tokio::test]
async fn late_and_lost_postgres_mean_not_ready_then_errors_then_full_recovery() {
    let db_url = crm_testkit::fresh_db_url().await;
    let proxy = crm_testkit::TcpProxy::start(crm_testkit::socket_addr_of(&db_url), false).await;
    let mut database = crm_testkit::database_settings(proxy.rewrite(&db_url));
    database.acquire_timeout_secs = 2;
    let settings = crm_customer::Settings {
        server: crm_testkit::server_settings(),
        database,
        redis: crm_testkit::redis_settings(),
        kafka: crm_testkit::kafka_settings(crm_testkit::kafka_brokers()),
        events: EventsSettings {
            topic: crm_testkit::unique("customer-events"),
        },
        cache: CacheSettings { ttl_secs: 60 },
    };
    let app = crm_customer::Application::build(settings).await.unwrap();
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let stop = crm_lifecycle::CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    let readyz = || async move {
        reqwest::get(format!("http://127.0.0.1:{http}/readyz"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };

    // Postgres unreachable: alive (health) but not ready, for as long as it takes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if handle.is_finished() {
        panic!("exited: {:?}", handle.await);
    }
    assert_eq!(readyz().await, 503, "not ready without its database");
    assert!(!handle.is_finished(), "waiting, not exited");

    proxy.set_up(true);
    crm_testkit::wait_ready(http, grpc).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::customer_service_client::CustomerServiceClient::new(channel);
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
    let started = Instant::now();
    loop {
        if list(&mut client).await.is_ok() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.cancel();
    handle.await.unwrap().expect("a clean shutdown");
}
