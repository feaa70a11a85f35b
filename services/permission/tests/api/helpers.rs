use std::sync::Arc;
use std::time::Duration;

use crm_lifecycle::CancellationToken;
use crm_permission::password::Passwords;
use crm_permission::settings::{
    AuthSettings, BootstrapSettings, EventsSettings, LockoutSettings, PasswordHashingSettings,
};
use crm_permission::{Application, Settings};
use crm_proto::permission as pb;
use crm_proto::permission::access_service_client::AccessServiceClient;
use crm_proto::permission::audit_service_client::AuditServiceClient;
use crm_proto::permission::auth_service_client::AuthServiceClient;
use crm_proto::permission::org_service_client::OrgServiceClient;
use crm_proto::permission::user_service_client::UserServiceClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, TokenData, Validation};
use secrecy::SecretString;
use tonic::transport::Channel;

/// The key-encryption key of every test app: base64 of 32 bytes 0x07.
pub const TEST_KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
pub const PASSWORD: &str = "correct horse battery staple";

/// A channel whose calls the test client signs (ADR 0012): as itself, or for the user whose
/// access context a request carries.
pub type Signed = crm_identity::SignCalls<Channel>;

pub struct TestApp {
    pub auth: AuthServiceClient<Signed>,
    pub users: UserServiceClient<Signed>,
    pub org: OrgServiceClient<Signed>,
    pub access: AccessServiceClient<Signed>,
    pub audit: AuditServiceClient<Signed>,
    /// The service's port with no signing: for calls that must be refused.
    pub unsigned: Channel,
    pub db: sqlx::PgPool,
    pub topic: String,
    pub brokers: Vec<String>,
    pub settings: Settings,
    pub http_port: u16,
    pub passwords: Arc<Passwords>,
    stop: CancellationToken,
    handle: Option<tokio::task::JoinHandle<Result<(), crm_host::HostError>>>,
}

/// Settings for a test app on free ports, a fresh database and its own topic. Argon2 is made
/// cheap: unoptimised test builds would otherwise take seconds per hash.
pub async fn test_settings() -> Settings {
    let db_url = crm_testkit::fresh_db_url().await;
    Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::trusting_tests(Settings::default_identity()),
        database: crm_testkit::database_settings(db_url),
        kafka: crm_testkit::kafka_settings(crm_testkit::kafka_brokers()),
        events: EventsSettings {
            topic: crm_testkit::unique("permission-events"),
        },
        auth: AuthSettings {
            issuer: "crm".into(),
            audience: "crm-api".into(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 3600,
            key_rotation_secs: 30 * 24 * 3600,
            clock_skew_secs: 60,
            key_encryption_key: SecretString::from(TEST_KEK),
            previous_key_encryption_keys: vec![],
            lockout: LockoutSettings::default(),
            password_hashing: PasswordHashingSettings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        },
        bootstrap: BootstrapSettings::default(),
        audit: crm_permission::settings::AuditSettings {
            topics: vec![],
            consumer_group: crm_testkit::unique("audit"),
        },
        oidc: Default::default(),
        org: Default::default(),
        clock: Default::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    // Kept for the whole process: dropping the guard shuts the tracer down.
    static TELEMETRY: std::sync::OnceLock<crm_telemetry::TelemetryGuard> =
        std::sync::OnceLock::new();
    TELEMETRY.get_or_init(|| crm_telemetry::init("permission-tests"));
    let mut settings = test_settings().await;
    customise(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("build the permission service");
    let (grpc, http) = (app.grpc_port(), app.http_port());
    let passwords = app.passwords();
    let stop = CancellationToken::new();
    let handle = tokio::spawn(app.run_until_stopped(stop.clone()));
    crm_testkit::wait_ready(http, grpc).await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the permission service");
    let db = sqlx::PgPool::connect(settings.database.url())
        .await
        .expect("test pool");
    declare_resources(&db).await;
    let signed = crm_testkit::identity::signed(channel.clone(), "permission");
    TestApp {
        auth: AuthServiceClient::new(signed.clone()),
        users: UserServiceClient::new(signed.clone()),
        org: OrgServiceClient::new(signed.clone()),
        access: AccessServiceClient::new(signed.clone()),
        audit: AuditServiceClient::new(signed),
        unsigned: channel,
        db,
        topic: settings.events.topic.clone(),
        brokers: settings.kafka.brokers.clone(),
        settings,
        http_port: http,
        passwords,
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

    pub async fn create_user(&self, username: &str, password: &str) -> pb::User {
        self.users
            .clone()
            .create_user(pb::CreateUserRequest {
                username: username.into(),
                display_name: format!("{username} (test)"),
                email: format!("{username}@example.com"),
                password: password.into(),
            })
            .await
            .expect("create user")
            .into_inner()
    }

    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<pb::TokenPair, tonic::Status> {
        self.auth
            .clone()
            .login(pb::LoginRequest {
                username: username.into(),
                password: password.into(),
                client_ip: "203.0.113.7".into(),
                user_agent: "api-tests".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::TokenPair, tonic::Status> {
        self.auth
            .clone()
            .refresh(pb::RefreshRequest {
                refresh_token: refresh_token.into(),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn logout(&self, refresh_token: &str) {
        self.auth
            .clone()
            .logout(pb::LogoutRequest {
                refresh_token: refresh_token.into(),
            })
            .await
            .expect("logout is idempotent");
    }

    pub fn jwks_url(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/jwks.json", self.http_port)
    }

    pub async fn jwks(&self) -> JwkSet {
        reqwest::get(self.jwks_url())
            .await
            .expect("GET jwks")
            .error_for_status()
            .expect("jwks status")
            .json()
            .await
            .expect("a JWK set")
    }

    /// Verifies an access token the way a resource server does: key by `kid` from the JWKS
    /// served over HTTP; issuer, audience, expiry and not-before all checked.
    pub async fn verify(&self, token: &str) -> TokenData<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).expect("a JWT header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        let kid = header.kid.expect("a kid");
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).expect("the token's key is in the JWKS");
        let key = DecodingKey::from_jwk(jwk).expect("a usable JWK");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["crm"]);
        validation.set_audience(&["crm-api"]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode(token, &key, &validation).expect("the access token verifies")
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.db)
            .await
            .expect("count")
    }

    /// Revocation reasons of the refresh tokens of `user_id`, one per token.
    pub async fn revoked_reasons(&self, user_id: &str) -> Vec<Option<String>> {
        sqlx::query_scalar(
            "SELECT revoked_reason FROM refresh_tokens
              WHERE user_id = $1::uuid ORDER BY issued_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.db)
        .await
        .expect("reasons")
    }
}

/// The field paths of an INVALID_ARGUMENT (or other) status with violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    crm_errors::ApiError::from_status(status)
        .violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Polls `check` every 100 ms until it holds, failing after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Organisation and decision helpers. Writes read the current version first (tests that are
/// about versions call the client directly).
impl TestApp {
    pub async fn create_department(
        &self,
        name: &str,
        parent: Option<&pb::Department>,
    ) -> pb::Department {
        self.org
            .clone()
            .create_department(pb::CreateDepartmentRequest {
                name: name.into(),
                parent_id: parent.map(|p| p.id.clone()).unwrap_or_default(),
            })
            .await
            .expect("create department")
            .into_inner()
            .department
            .unwrap()
    }

    pub async fn create_role(&self, name: &str, parent: Option<&pb::Role>) -> pb::Role {
        self.org
            .clone()
            .create_role(pb::CreateRoleRequest {
                name: name.into(),
                description: String::new(),
                parent_role_id: parent.map(|p| p.id.clone()).unwrap_or_default(),
            })
            .await
            .expect("create role")
            .into_inner()
            .role
            .unwrap()
    }

    pub async fn role(&self, id: &str) -> pb::Role {
        self.org
            .clone()
            .get_role(pb::GetRoleRequest { id: id.into() })
            .await
            .expect("get role")
            .into_inner()
    }

    pub async fn grant(
        &self,
        role: &pb::Role,
        resource: pb::Resource,
        action: pb::Action,
        scope: pb::DataScope,
    ) -> pb::RoleResponse {
        let current = self.role(&role.id).await;
        self.org
            .clone()
            .set_grant(pb::SetGrantRequest {
                role_id: role.id.clone(),
                expected_version: current.version,
                grant: Some(pb::Grant {
                    resource: resource as i32,
                    resource_name: String::new(),
                    action: action as i32,
                    scope: scope as i32,
                }),
            })
            .await
            .expect("set grant")
            .into_inner()
    }

    pub async fn field_rule(
        &self,
        role: &pb::Role,
        resource: pb::Resource,
        field: &str,
        visibility: pb::FieldVisibility,
        mask: pb::MaskKind,
    ) -> pb::RoleResponse {
        let current = self.role(&role.id).await;
        self.org
            .clone()
            .set_field_rule(pb::SetFieldRuleRequest {
                role_id: role.id.clone(),
                expected_version: current.version,
                rule: Some(pb::FieldRule {
                    resource: resource as i32,
                    resource_name: String::new(),
                    field: field.into(),
                    visibility: visibility as i32,
                    mask: mask as i32,
                }),
            })
            .await
            .expect("set field rule")
            .into_inner()
    }

    pub async fn user_org(&self, user_id: &str) -> pb::UserOrg {
        self.org
            .clone()
            .get_user_org(pb::GetUserOrgRequest {
                user_id: user_id.into(),
            })
            .await
            .expect("get user org")
            .into_inner()
    }

    /// A user with no password (these tests never sign in).
    pub async fn member(&self, username: &str) -> pb::User {
        self.users
            .clone()
            .create_user(pb::CreateUserRequest {
                username: username.into(),
                ..Default::default()
            })
            .await
            .expect("create user")
            .into_inner()
    }

    pub async fn place(
        &self,
        user: &pb::User,
        primary: &pb::Department,
        others: &[&pb::Department],
    ) {
        let current = self.user_org(&user.id).await;
        self.org
            .clone()
            .set_user_departments(pb::SetUserDepartmentsRequest {
                user_id: user.id.clone(),
                expected_version: current.version,
                primary_department_id: primary.id.clone(),
                other_department_ids: others.iter().map(|d| d.id.clone()).collect(),
            })
            .await
            .expect("set user departments");
    }

    pub async fn set_manager(&self, user: &pb::User, manager: &pb::User) {
        let current = self.user_org(&user.id).await;
        self.org
            .clone()
            .set_user_manager(pb::SetUserManagerRequest {
                user_id: user.id.clone(),
                expected_version: current.version,
                manager_id: manager.id.clone(),
            })
            .await
            .expect("set manager");
    }

    pub async fn assign(&self, user: &pb::User, role: &pb::Role) -> pb::UserOrgResponse {
        let current = self.user_org(&user.id).await;
        self.org
            .clone()
            .assign_role(pb::AssignRoleRequest {
                user_id: user.id.clone(),
                expected_version: current.version,
                role_id: role.id.clone(),
            })
            .await
            .expect("assign role")
            .into_inner()
    }

    pub async fn permission_version(&self) -> i64 {
        self.access
            .clone()
            .get_permission_version(pb::GetPermissionVersionRequest {})
            .await
            .expect("permission version")
            .into_inner()
            .permission_version
    }

    pub async fn compile(
        &self,
        user: &pb::User,
        resource: pb::Resource,
        action: pb::Action,
    ) -> pb::CompiledScope {
        self.access
            .clone()
            .compile_scope(pb::CompileScopeRequest {
                user_id: user.id.clone(),
                resource: resource as i32,
                resource_name: String::new(),
                action: action as i32,
            })
            .await
            .expect("compile scope")
            .into_inner()
    }

    pub async fn check(
        &self,
        user: &pb::User,
        resource: pb::Resource,
        action: pb::Action,
        record: Option<(&pb::User, &pb::Department)>,
    ) -> pb::CheckResponse {
        self.access
            .clone()
            .check(pb::CheckRequest {
                user_id: user.id.clone(),
                resource: resource as i32,
                resource_name: String::new(),
                action: action as i32,
                record: record.map(|(owner, department)| pb::RecordRef {
                    owner_id: owner.id.clone(),
                    department_id: department.id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .expect("check")
            .into_inner()
    }

    /// Everything an organisation write could have touched, to prove a refused one wrote nothing.
    pub async fn org_fingerprint(&self) -> (i64, i64, String) {
        let version = self.permission_version().await;
        let events = self.count("event_outbox").await;
        let state: String = sqlx::query_scalar(
            "SELECT concat_ws('|',
                (SELECT string_agg(concat_ws(',', id, name, parent_id, version), ';' ORDER BY id) FROM departments),
                (SELECT string_agg(concat_ws(',', id, name, description, parent_role_id, version), ';' ORDER BY id) FROM roles),
                (SELECT string_agg(concat_ws(',', role_id, resource, action, scope), ';' ORDER BY role_id, resource, action) FROM role_grants),
                (SELECT string_agg(concat_ws(',', role_id, resource, field, visibility, mask), ';' ORDER BY role_id, resource, field) FROM role_field_rules),
                (SELECT string_agg(concat_ws(',', user_id, department_id, is_primary), ';' ORDER BY user_id, department_id) FROM user_departments),
                (SELECT string_agg(concat_ws(',', user_id, role_id), ';' ORDER BY user_id, role_id) FROM user_roles),
                (SELECT string_agg(concat_ws(',', id, manager_id, org_version, version, status), ';' ORDER BY id) FROM users))",
        )
        .fetch_one(&self.db)
        .await
        .expect("fingerprint");
        (version, events, state)
    }
}

/// The error code a refused call carries, as a client of the gateway would see it.
pub fn api_code(status: &tonic::Status) -> crm_errors::Code {
    crm_errors::ApiError::from_status(status).code
}

/// What the owning services would declare when they start (`crm_record::registry`): the
/// resources these tests grant on, with the fields their rules and conditions name.
pub async fn declare_resources(db: &sqlx::PgPool) {
    use crm_record::registry::{Declaration, DeclaredField, DeclaredResource};
    let field = |name: &str, kind: &str, condition: bool| DeclaredField {
        name: name.into(),
        kind: kind.into(),
        governed: name != "id",
        condition,
        custom: name.starts_with("custom."),
    };
    let resource = |name: &str| DeclaredResource {
        name: name.into(),
        fields: vec![
            field("id", "reference", false),
            field("name", "text", false),
            field("phone", "phone", false),
            field("email", "email", false),
            field("website", "url", false),
            field("notes", "text", false),
            field("ssn", "text", false),
            field("industry", "text", true),
            field("grade", "choice", true),
        ],
    };
    for (owner, names) in [
        ("customer", &["account", "contact"][..]),
        ("sales", &["lead", "opportunity", "contract"][..]),
        ("ticket", &["ticket"][..]),
    ] {
        let declaration = Declaration {
            owner: owner.into(),
            resources: names.iter().map(|n| resource(n)).collect(),
        };
        crm_permission::registry::declare(db, &declaration)
            .await
            .expect("declare resources");
    }
}

/// A CloudEvent as an owning service would publish it.
pub fn event(
    source: &str,
    event_type: &str,
    subject: &str,
    data: serde_json::Value,
) -> crm_events::Envelope {
    crm_events::Envelope::new(
        uuid::Uuid::now_v7(),
        source,
        event_type,
        subject,
        chrono::Utc::now(),
        data,
    )
}

/// Publishes `events` on `topic`, keyed by subject, as an owning service's relay would.
pub async fn publish(topic: &str, events: &[crm_events::Envelope]) {
    let settings = crm_testkit::kafka_settings(crm_testkit::kafka_brokers());
    let producer: rdkafka::producer::FutureProducer = crm_events::kafka::producer_config(&settings)
        .create()
        .expect("producer");
    for e in events {
        let payload = e.to_bytes().unwrap();
        producer
            .send(
                rdkafka::producer::FutureRecord::to(topic)
                    .key(&e.subject)
                    .payload(&payload),
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("published");
    }
}
