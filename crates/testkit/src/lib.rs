//! Helpers for integration tests, which run against real infrastructure (never mocks):
//!
//! - where Postgres, Redis and the Kafka-protocol broker are: `CRM_TEST_PG_URL`,
//!   `CRM_TEST_REDIS_URL`, `KAFKA_BROKERS` (set by `./dev test`), with loopback defaults;
//! - [`fresh_db_url`]: a new empty database per test, so tests never share rows, dropped when
//!   the test process exits ([`database`]);
//! - [`unique`]: names (topics, consumer groups, key prefixes) no other test uses;
//! - [`collect_events`]: reads what a service published, with record headers;
//! - [`TansuBroker`]: a throwaway broker the test can stop and restart (outage tests), in
//!   memory or keeping its data in Postgres as `./dev up` runs it;
//! - [`tls`]: a throwaway CA, a TLS-only Redis and a TLS front for a broker;
//! - [`identity`]: test keys, services that trust them, and client channels that sign calls.
//!
//! Only ever a dev-dependency.

pub mod database;
pub mod identity;
pub mod tls;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crm_events::Envelope;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use secrecy::SecretString;

/// The Postgres server for tests (no database in the URL).
pub fn pg_url() -> String {
    std::env::var("CRM_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("CRM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The shared broker. `./dev test` always sets it; without it tests fail with this message
/// rather than silently skipping.
pub fn kafka_brokers() -> Vec<String> {
    let brokers = std::env::var("KAFKA_BROKERS").expect(
        "KAFKA_BROKERS is not set: run the tests with `./dev test`, which starts a Kafka-protocol broker",
    );
    brokers.split(',').map(str::to_string).collect()
}

/// Waits until `check` holds, polling every 50 ms; panics naming `what` after `timeout`. Tests
/// wait for the condition they assert, never for a guessed time.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(timeout, || {
        let done = check();
        async move {
            if done.await {
                Ok(())
            } else {
                Err(what.to_string())
            }
        }
    })
    .await
}

/// Polls `probe` every 50 ms until it answers `Ok`, and returns that value. `Err` says what is
/// still missing; after `timeout` the last one is the panic's message.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(missing) => assert!(
                Instant::now() < deadline,
                "not within {timeout:?}: {missing}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of the counter or gauge `name` (summed over its labels) in this process's
/// Prometheus registry: what an in-process service under test has counted.
pub fn metric(name: &str) -> f64 {
    crm_lifecycle::metrics_handle()
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Like [`metric`], over the series whose labels contain `needle` (`endpoints="http://…"`).
pub fn metric_labelled(name: &str, needle: &str) -> f64 {
    crm_lifecycle::metrics_handle()
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter(|l| {
            l.rsplit_once(' ')
                .is_some_and(|(series, _)| series.contains(needle))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub async fn fresh_db_url() -> String {
    database::create(&pg_url())
        .await
        .expect("create a fresh test database")
}

/// A pool on a fresh database with the platform tables (outbox, processed events) migrated.
pub async fn fresh_events_pool() -> sqlx::PgPool {
    let pool = sqlx::PgPool::connect(&fresh_db_url().await)
        .await
        .expect("connect to the fresh database");
    crm_db::migrate(&pool, &[&crm_events::MIGRATOR])
        .await
        .expect("platform migrations");
    pool
}

pub fn database_settings(url: String) -> crm_settings::DatabaseSettings {
    crm_settings::DatabaseSettings {
        url: SecretString::from(url),
        max_connections: 5,
        acquire_timeout_secs: 5,
        create_if_missing: false,
    }
}

pub fn redis_settings() -> crm_settings::RedisSettings {
    crm_settings::RedisSettings {
        url: SecretString::from(redis_url()),
        timeout_ms: 500,
        key_prefix: unique("test"),
        tls: Default::default(),
    }
}

pub fn kafka_settings(brokers: Vec<String>) -> crm_settings::KafkaSettings {
    crm_settings::KafkaSettings {
        brokers,
        create_topics: true,
        partitions: 3,
        replication_factor: 1,
        message_timeout_ms: 5_000,
        session_timeout_ms: 10_000,
        security: Default::default(),
        properties: Default::default(),
    }
}

pub fn server_settings() -> crm_settings::ServerSettings {
    crm_settings::ServerSettings {
        host: "127.0.0.1".into(),
        grpc_port: 0,
        http_port: 0,
        shutdown_grace_secs: 10,
        drain_delay_ms: 0,
        migrate_only: false,
    }
}

/// Reads `topic` from the beginning until `n` records arrived or `timeout` passed, then keeps
/// reading for `settle` more to catch duplicates. Returns envelopes with their record headers.
pub async fn collect_events(
    brokers: &[String],
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Vec<(Envelope, Vec<(String, String)>)> {
    collect_events_settled(brokers, topic, n, timeout, Duration::from_secs(2)).await
}

pub async fn collect_events_settled(
    brokers: &[String],
    topic: &str,
    n: usize,
    timeout: Duration,
    settle: Duration,
) -> Vec<(Envelope, Vec<(String, String)>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers.join(","))
        .set("group.id", unique("probe"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("probe consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut settle_until: Option<Instant> = None;
    loop {
        let until = settle_until.unwrap_or(deadline);
        let now = Instant::now();
        if now >= until {
            break;
        }
        match tokio::time::timeout(until - now, consumer.recv()).await {
            Ok(Ok(message)) => {
                if let Some(payload) = message.payload() {
                    let envelope = Envelope::from_bytes(payload).expect("a CloudEvent");
                    // A service declares its resources when it starts (crm_record::registry):
                    // not the event of any write the tests make.
                    if !envelope.event_type.ends_with(".resources.declared") {
                        out.push((envelope, crm_events::consumer::headers_of(&message)));
                    }
                }
                if out.len() >= n && settle_until.is_none() {
                    settle_until = Some(Instant::now() + settle);
                }
            }
            Ok(Err(err)) => {
                // Topic not created yet, broker restarting: keep trying until the deadline.
                eprintln!("probe: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => break,
        }
    }
    out
}

/// Tansu 0.6.0's Postgres storage schema (its `postgres://` engine does not create it).
pub const TANSU_POSTGRES_SCHEMA: &str = include_str!("../../../deploy/tansu/postgres-schema.sql");

/// A Tansu broker owned by one test, on its own port, that the test can stop and start.
pub struct TansuBroker {
    port: u16,
    /// The port clients are told to connect to (another one when a [`tls::TlsFront`] is in front).
    advertised: u16,
    /// `--storage-engine`: in memory (lost when stopped) or a Postgres database of its own.
    storage: String,
    child: Option<Child>,
}

impl TansuBroker {
    /// Starts a broker on a free port. Needs `TANSU_BIN` or `tansu` on PATH (`./dev test` sets it).
    pub async fn start() -> Self {
        let port = free_port();
        Self::start_advertising(port, port).await
    }

    /// Starts a broker on `port` that tells clients to connect to `advertised` instead.
    pub async fn start_advertising(port: u16, advertised: u16) -> Self {
        let mut broker = Self {
            port,
            advertised,
            storage: "memory://tansu/".into(),
            child: None,
        };
        broker.resume().await;
        broker
    }

    /// Starts a broker on a free port that keeps topics, records and group offsets in a fresh
    /// Postgres database (made with [`TANSU_POSTGRES_SCHEMA`]), as `./dev up` runs it: they
    /// survive [`TansuBroker::stop`] and [`TansuBroker::resume`].
    pub async fn start_durable() -> Self {
        let url = fresh_db_url().await;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect to the broker's database");
        sqlx::raw_sql(TANSU_POSTGRES_SCHEMA)
            .execute(&mut conn)
            .await
            .expect("Tansu's Postgres schema");
        let _ = sqlx::Connection::close(conn).await;
        let port = free_port();
        let mut broker = Self {
            port,
            advertised: port,
            storage: tansu_postgres_url(&url),
            child: None,
        };
        broker.resume().await;
        broker
    }

    pub fn brokers(&self) -> Vec<String> {
        vec![format!("127.0.0.1:{}", self.advertised)]
    }

    /// The address it listens on itself.
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// (Re)starts the broker process on the same port.
    pub async fn resume(&mut self) {
        let bin = std::env::var("TANSU_BIN").unwrap_or_else(|_| "tansu".into());
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", &self.storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (set TANSU_BIN): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the broker (an outage): connections drop, the port refuses.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `url` as Tansu's storage engine takes it: on a loopback server without TLS (Tansu verifies a
/// server certificate against the host name, and a loopback server's is usually issued for
/// `localhost` or self-signed), unless the URL says otherwise.
fn tansu_postgres_url(url: &str) -> String {
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h))
        .unwrap_or_default();
    let loopback = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host.starts_with(h));
    if !loopback || url.contains("sslmode=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (up to 30 s) until `/readyz` answers 200 and gRPC health says SERVING.
pub async fn wait_ready(http_port: u16, grpc_port: u16) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{http_port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let channel =
            tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
                .expect("valid URI")
                .connect()
                .await;
        let serving = match channel {
            Ok(channel) => HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32),
            Err(_) => false,
        };
        if ready && serving {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "service not ready after 30 s (readyz {ready}, gRPC serving {serving})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts the platform tables (outbox, processed events) exist in the database at `url`.
pub async fn assert_platform_tables(url: &str) {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("connect to the test database");
    for table in ["event_outbox", "processed_events"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .expect("query");
        assert!(exists, "table {table} missing after migrations");
    }
    pool.close().await;
}

/// Boots a [`crm_host::basic`] service against a fresh database and checks that it migrates,
/// turns ready and SERVING, and drains cleanly on stop.
pub async fn check_basic_service<F, Fut>(build: F)
where
    F: FnOnce(crm_host::basic::Settings) -> Fut,
    Fut: std::future::Future<Output = Result<crm_host::basic::Application, crm_host::HostError>>,
{
    let db_url = fresh_db_url().await;
    let settings = crm_host::basic::Settings {
        server: server_settings(),
        identity: identity::service_identity("basic"),
        database: database_settings(db_url.clone()),
    };
    let app = build(settings).await.expect("build");
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let stop = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    wait_ready(http, grpc).await;
    assert_platform_tables(&db_url).await;
    stop.cancel();
    handle.await.expect("join").expect("clean shutdown");
}

/// A TCP proxy on a free loopback port in front of `target`, that tests switch off and on to
/// play a dependency being unreachable (not started yet, or lost for a while). While down it
/// refuses new connections (accepted, then closed at once) and cuts the open ones. It counts the
/// connections tried ([`TcpProxy::attempts`]), so a test can wait until a client has really
/// retried instead of guessing how long that takes.
pub struct TcpProxy {
    pub port: u16,
    up: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    attempts: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr, up: bool) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = std::sync::Arc::new(tokio::sync::watch::channel(up).0);
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let shared = state.clone();
        let tried = attempts.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if !*shared.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut down = shared.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Switched off: cut the connection, as a lost network would.
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        TcpProxy {
            port,
            up: state,
            attempts,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Connections tried through the proxy so far, refused ones included.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `more` further connections have been tried from now (the client behind it
    /// has retried that often); panics after `timeout`.
    pub async fn wait_for_attempts(&self, more: u64, timeout: Duration) {
        let target = self.attempts() + more;
        eventually(
            &format!("{more} more connection attempts through the proxy"),
            timeout,
            || async move { self.attempts() >= target },
        )
        .await;
    }

    /// `url` (`scheme://user@host:port/…`) with host and port replaced by this proxy's.
    pub fn rewrite(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (auth, after_auth) = match rest.rsplit_once('@') {
            Some((auth, after)) => (format!("{auth}@"), after),
            None => (String::new(), rest),
        };
        let path = after_auth
            .find(['/', '?'])
            .map(|i| &after_auth[i..])
            .unwrap_or("");
        format!("{scheme}://{auth}127.0.0.1:{}{path}", self.port)
    }
}

/// The address `url` points at (`127.0.0.1:5432` for the test Postgres).
pub fn socket_addr_of(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once("://").expect("a URL").1;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split(['/', '?']).next().unwrap();
    use std::net::ToSocketAddrs;
    host_port
        .to_socket_addrs()
        .expect("resolvable")
        .next()
        .expect("an address")
}

/// A loopback port free right now (for a child process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A service binary run as its own process on fixed loopback ports, as Kubernetes runs a pod:
/// tests send it real signals. A restart ([`ServiceProcess::start`] again) comes back on the same
/// ports, as a pod behind a headless Service comes back under the same name. Its output goes to a
/// file in the temp directory, kept for a failing run (`CRM_TEST_CHILD_LOG` sets its `RUST_LOG`,
/// default `warn`). Killed on drop.
pub struct ServiceProcess {
    pub grpc: u16,
    pub http: u16,
    bin: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl ServiceProcess {
    /// `bin` (`env!("CARGO_BIN_EXE_…")`) with the local defaults, its ports, and `env` on top.
    pub fn new(bin: &str, env: &[(&str, String)]) -> Self {
        Self {
            grpc: free_port(),
            http: free_port(),
            bin: bin.to_string(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            child: None,
        }
    }

    /// Starts the process and waits until it is ready.
    pub async fn start(&mut self) {
        let name = std::path::Path::new(&self.bin)
            .file_name()
            .map_or("service".into(), |n| n.to_string_lossy().into_owned());
        let log =
            std::fs::File::create(std::env::temp_dir().join(unique(&name))).expect("a log file");
        let child = Command::new(&self.bin)
            .env("CRM_ENVIRONMENT", "local")
            .env("CRM__SERVER__HOST", "127.0.0.1")
            .env("CRM__SERVER__GRPC_PORT", self.grpc.to_string())
            .env("CRM__SERVER__HTTP_PORT", self.http.to_string())
            .env("CRM__SERVER__SHUTDOWN_GRACE_SECS", "10")
            .env(
                "RUST_LOG",
                std::env::var("CRM_TEST_CHILD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin));
        self.child = Some(child);
        wait_ready(self.http, self.grpc).await;
    }

    /// Sends `signal` (`TERM`, `KILL`); [`ServiceProcess::wait`] then reaps the process.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait")
    }

    /// Its gRPC endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
