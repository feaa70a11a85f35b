use std::time::Duration;

use crm_customer::settings::{CacheSettings, EventsSettings};
use crm_customer::{Application, Settings};
use crm_lifecycle::CancellationToken;
use crm_proto::customer as pb;
use crm_proto::customer::customer_service_client::CustomerServiceClient;
use crm_proto::fields::field_service_client::FieldServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds an access context to every call.
pub type WithAccess = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
/// A channel whose calls the test client signs (ADR 0012).
pub type Signed = crm_identity::SignCalls<Channel>;
pub type Client = CustomerServiceClient<InterceptedService<Signed, WithAccess>>;

/// Acts as [`OWNER`] with every action on every record of every resource this service
/// declares (the system).
fn system_access(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    system().to_metadata(request.metadata_mut());
    Ok(request)
}

/// [`OWNER`] with every action on every record of the service's resources.
pub fn system() -> crm_access::Access {
    let resources = crm_customer::declaration()
        .resources
        .into_iter()
        .map(|r| crm_access::Resource::parse(&r.name).expect("declared names are valid"));
    crm_access::Access::system_over(OWNER.parse().unwrap(), resources)
}

pub struct TestApp {
    /// Calls as the system ([`OWNER`], everything allowed).
    pub client: Client,
    /// The same service, signed, without an access context: callers set their own.
    pub raw: CustomerServiceClient<Signed>,
    /// The same service with neither a call token nor an access context.
    pub unsigned: CustomerServiceClient<Channel>,
    /// Its custom fields (`crm.fields.v1.FieldService`), signed; callers set their access.
    pub fields: FieldServiceClient<Signed>,
    pub db: sqlx::PgPool,
    pub topic: String,
    pub brokers: Vec<String>,
    pub settings: Settings,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<(), crm_host::HostError>>>,
}

pub struct Options {
    pub brokers: Vec<String>,
    pub redis_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            brokers: crm_testkit::kafka_brokers(),
            redis_url: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    // Kept for the whole process: dropping the guard shuts the tracer down.
    static TELEMETRY: std::sync::OnceLock<crm_telemetry::TelemetryGuard> =
        std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| crm_telemetry::init("customer-tests"));
    let db_url = crm_testkit::fresh_db_url().await;
    let topic = crm_testkit::unique("customer-events");
    let mut redis = crm_testkit::redis_settings();
    if let Some(url) = options.redis_url {
        redis.url = url.into();
    }
    let settings = Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::trusting_tests(Settings::default_identity()),
        services: crm_testkit::identity::unreachable_permission(),
        upstream: Default::default(),
        database: crm_testkit::database_settings(db_url.clone()),
        redis,
        kafka: crm_testkit::kafka_settings(options.brokers.clone()),
        events: EventsSettings {
            topic: topic.clone(),
        },
        cache: CacheSettings { ttl_secs: 60 },
    };
    let app = Application::build(settings.clone())
        .await
        .expect("build the customer service");
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let stop = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    crm_testkit::wait_ready(http, grpc).await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the customer service");
    let signed = crm_testkit::identity::signed(channel.clone(), "customer");
    let client =
        CustomerServiceClient::with_interceptor(signed.clone(), system_access as WithAccess);
    let fields = FieldServiceClient::new(signed.clone());
    let raw = CustomerServiceClient::new(signed);
    let unsigned = CustomerServiceClient::new(channel);
    let db = sqlx::PgPool::connect(&db_url).await.expect("test pool");
    TestApp {
        client,
        raw,
        unsigned,
        fields,
        db,
        topic,
        brokers: options.brokers,
        settings,
        stop,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the service the way SIGTERM does and checks that it drained cleanly.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.expect("join").expect("clean shutdown");
        }
    }

    pub async fn create_account(&self, name: &str) -> pb::Account {
        self.client
            .clone()
            .create_account(account_request(name))
            .await
            .expect("create account")
            .into_inner()
    }

    pub async fn create_contact(&self, account_id: &str, first_name: &str) -> pb::Contact {
        self.client
            .clone()
            .create_contact(pb::CreateContactRequest {
                account_id: account_id.into(),
                first_name: first_name.into(),
                owner_id: OWNER.into(),
                ..Default::default()
            })
            .await
            .expect("create contact")
            .into_inner()
    }

    /// Rows of `table`; for `event_outbox`, the events of writes (not the declaration of the
    /// service's resources, enqueued at every start).
    pub async fn count(&self, table: &str) -> i64 {
        let only_writes = if table == "event_outbox" {
            " WHERE event_type NOT LIKE '%.resources.declared'"
        } else {
            ""
        };
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table}{only_writes}"
        )))
        .fetch_one(&self.db)
        .await
        .expect("count")
    }

    /// Records of `table` holding a value of custom field `key`.
    pub async fn count_holding(&self, table: &str, key: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE custom ? $1"
        )))
        .bind(key)
        .fetch_one(&self.db)
        .await
        .expect("count")
    }

    /// Waits until the relay has published everything in the outbox.
    pub async fn wait_published(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let pending: i64 =
                sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
                    .fetch_one(&self.db)
                    .await
                    .expect("pending");
            if pending == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{pending} events still unpublished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub const OWNER: &str = "0191d3a0-0000-7000-8000-000000000001";

pub fn account_request(name: &str) -> pb::CreateAccountRequest {
    pb::CreateAccountRequest {
        name: name.into(),
        owner_id: OWNER.into(),
        email: "sales@acme.example".into(),
        phone: "+86 138 0013 8000".into(),
        tags: vec!["vip".into()],
        ..Default::default()
    }
}

/// The field paths of an INVALID_ARGUMENT status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    crm_errors::ApiError::from_status(status)
        .violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// A request carrying `access`.
pub fn as_caller<T>(access: &crm_access::Access, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    access.to_metadata(request.metadata_mut());
    request
}

/// A real `crm-customer` process (not started yet) on `db_url`, publishing to `topic`.
pub fn process(db_url: &str, topic: &str, drain_delay_ms: u64) -> crm_testkit::ServiceProcess {
    crm_testkit::ServiceProcess::new(
        env!("CARGO_BIN_EXE_crm-customer"),
        &[
            ("CRM__SERVER__DRAIN_DELAY_MS", drain_delay_ms.to_string()),
            ("CRM__DATABASE__URL", db_url.to_string()),
            ("CRM__REDIS__URL", crm_testkit::redis_url()),
            (
                "CRM__KAFKA__BROKERS",
                crm_testkit::kafka_brokers().join(","),
            ),
            ("CRM__KAFKA__CREATE_TOPICS", "true".into()),
            ("CRM__EVENTS__TOPIC", topic.to_string()),
        ]
        .into_iter()
        .chain(crm_testkit::identity::service_identity_env("customer"))
        .collect::<Vec<_>>(),
    )
}
