//! Two replicas of the customer service, as real `crm-customer` processes, behind the gateway
//! (which balances over both endpoints). Each is restarted in turn with SIGTERM while REST
//! traffic runs through the gateway: no request fails, and the database holds exactly the
//! accounts whose creation was answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crm_lifecycle::CancellationToken;

use crate::helpers::process;
use secrecy::SecretString;
use serde_json::{Value, json};

const AUDIENCE: &str = "crm-api";
const ADMIN: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

/// The permission service in-process: the gateway asks it for every authorisation decision.
/// Returns its gRPC endpoint, JWKS URL and event topic.
async fn spawn_permission(stop: &CancellationToken) -> (String, String, String) {
    use crm_permission::settings as ps;
    let topic = crm_testkit::unique("permission-events");
    let settings = crm_permission::Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::trusting_tests(
            crm_permission::Settings::default_identity(),
        ),
        database: crm_testkit::database_settings(crm_testkit::fresh_db_url().await),
        kafka: crm_testkit::kafka_settings(crm_testkit::kafka_brokers()),
        events: ps::EventsSettings {
            topic: topic.clone(),
        },
        auth: ps::AuthSettings {
            issuer: "crm".into(),
            audience: AUDIENCE.into(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 3600,
            key_rotation_secs: 30 * 24 * 3600,
            clock_skew_secs: 60,
            // Test-only: base64 of 32 bytes 0x07.
            key_encryption_key: SecretString::from("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="),
            previous_key_encryption_keys: vec![],
            lockout: ps::LockoutSettings::default(),
            password_hashing: ps::PasswordHashingSettings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        },
        bootstrap: ps::BootstrapSettings {
            users: vec![ps::BootstrapUser {
                username: ADMIN.into(),
                password: SecretString::from(PASSWORD),
                display_name: "Alice".into(),
                roles: vec!["admin".into()],
                department: None,
            }],
            demo_org: true,
            api_clients: vec![],
        },
        audit: ps::AuditSettings {
            topics: vec![],
            consumer_group: crm_testkit::unique("audit"),
        },
        oidc: ps::OidcSettings { providers: vec![] },
        org: ps::OrgDefaults::default(),
        clock: Default::default(),
    };
    let app = crm_permission::Application::build(settings)
        .await
        .expect("build the permission service");
    let (grpc, http) = (app.grpc_port(), app.http_port());
    tokio::spawn(app.run_until_stopped(stop.clone()));
    crm_testkit::wait_ready(http, grpc).await;
    (
        format!("http://127.0.0.1:{grpc}"),
        format!("http://127.0.0.1:{http}/.well-known/jwks.json"),
        topic,
    )
}

/// The gateway in-process over both replicas; returns its base URL once ready.
async fn spawn_gateway(
    stop: &CancellationToken,
    customers: &str,
    permission: (String, String, String),
) -> String {
    use crm_gateway::settings::*;
    let (grpc, jwks, topic) = permission;
    let settings = Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::gateway_identity(),
        redis: crm_testkit::redis_settings(),
        services: [("customer", customers.to_string()), ("permission", grpc)]
            .map(|(name, endpoints)| (name.to_string(), endpoints))
            .into(),
        upstream: UpstreamSettings {
            resolve_interval_secs: 1,
            ..Default::default()
        },
        auth: AuthSettings {
            issuer: "crm".into(),
            audience: AUDIENCE.into(),
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            public_key_pem: None,
            public_key_file: None,
            jwks_url: Some(jwks),
            leeway_secs: 30,
        },
        idempotency: IdempotencySettings { ttl_secs: 600 },
        http: HttpSettings {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
        },
        // The load here is one user's: far more than a person sends.
        rate_limit: RateLimitSettings {
            enabled: false,
            ..Default::default()
        },
        kafka: Some(crm_testkit::kafka_settings(crm_testkit::kafka_brokers())),
        principals: PrincipalsSettings {
            permission_topic: topic,
            status_ttl_secs: 60,
        },
        authz: AuthzSettings::default(),
    };
    let gateway = crm_gateway::Application::build(settings)
        .await
        .expect("build the gateway");
    let (port, readiness) = (gateway.port(), gateway.readiness());
    tokio::spawn(gateway.run_until_stopped(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !readiness.is_ready() {
        assert!(Instant::now() < deadline, "gateway not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn restarting_each_replica_under_load_fails_no_request() {
    let db_url = crm_testkit::fresh_db_url().await;
    let topic = crm_testkit::unique("customer-events");
    let stop = CancellationToken::new();
    // As deployed: callers get a moment to see NOT_SERVING before the listener closes.
    let mut replicas = [
        process(&db_url, &topic, 1000),
        process(&db_url, &topic, 1000),
    ];
    for replica in &mut replicas {
        replica.start().await;
    }
    let permission = spawn_permission(&stop).await;
    let endpoints = format!("{},{}", replicas[0].endpoint(), replicas[1].endpoint());
    // The balancer's gauge for these endpoints is labelled with them.
    let replicas_label = replicas[0].endpoint().to_string();
    let base = spawn_gateway(&stop, &endpoints, permission).await;

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();

    // Load: each worker creates an account and reads it back, over and over. Every answer that
    // is not a success counts as a failure.
    let done = Arc::new(AtomicBool::new(false));
    let (created, read) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for i in 0..6 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let (done, created, read, failures) = (
            done.clone(),
            created.clone(),
            read.clone(),
            failures.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                n += 1;
                let response = http
                    .post(format!("{base}/api/v1/accounts"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("replica load {i}/{n}")}))
                    .send()
                    .await;
                let id = match response {
                    Ok(r) if r.status().is_success() => {
                        created.fetch_add(1, Ordering::Relaxed);
                        r.json::<Value>().await.unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_string()
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("create: {status} {body}"));
                        continue;
                    }
                    Err(err) => {
                        failures.lock().unwrap().push(format!("create: {err}"));
                        continue;
                    }
                };
                match http
                    .get(format!("{base}/api/v1/accounts/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        read.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("read: {}", r.status())),
                    Err(err) => failures.lock().unwrap().push(format!("read: {err}")),
                }
            }
        }));
    }

    crm_testkit::eventually("load is running", Duration::from_secs(30), || async {
        created.load(Ordering::Relaxed) > 0
    })
    .await;
    // Restart each replica in turn; while one is away the other answers everything.
    for (i, replica) in replicas.iter_mut().enumerate() {
        let before = created.load(Ordering::Relaxed);
        replica.signal("TERM");
        let status = replica.wait().await;
        assert!(status.success(), "replica {i} exit status {status}");
        crm_testkit::eventually(
            &format!("the other replica served while replica {i} was away"),
            Duration::from_secs(10),
            || async { created.load(Ordering::Relaxed) > before },
        )
        .await;
        replica.start().await;
        // Back in rotation (the gateway's balancer sees it SERVING) before the next one goes.
        crm_testkit::eventually(
            &format!("replica {i} back in the gateway's rotation"),
            Duration::from_secs(30),
            || async {
                crm_testkit::metric_labelled(crm_grpc::balance::SERVING_REPLICAS, &replicas_label)
                    >= 2.0
            },
        )
        .await;
    }
    done.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let failures = failures.lock().unwrap().clone();
    let (created, read) = (
        created.load(Ordering::Relaxed),
        read.load(Ordering::Relaxed),
    );
    println!("two replicas restarted: {created} created, {read} read, {failures:?} failed");
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored as u64, created, "exactly the answered creates wrote");
    stop.cancel();
}
