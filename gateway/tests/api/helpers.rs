//! Spawns the customer service and the gateway in-process against real Postgres (a fresh
//! database per test), Redis and the Kafka-protocol broker, and talks to the gateway over HTTP
//! like any client would.

use std::time::Duration;

use crm_gateway::security::token::{TokenRequest, mint};
use crm_gateway::settings::{
    AuthSettings, AuthzSettings, HttpSettings, IdempotencySettings, PrincipalsSettings,
    RateLimitSettings, Settings, UpstreamSettings,
};
use crm_lifecycle::CancellationToken;
use reqwest::{Method, RequestBuilder, Response, header};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const ISSUER: &str = "crm-test";
pub const AUDIENCE: &str = "crm-api";
pub const USER: &str = "test-user";
pub const PRIVATE_KEY: &str = include_str!("../keys/test-only-rsa-private.pem");
/// Signs "forged" tokens: a valid RSA key the gateway does not trust.
pub const OTHER_PRIVATE_KEY: &str = include_str!("../keys/test-only-other-rsa-private.pem");
pub const PUBLIC_KEY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/keys/test-only-rsa-public.pem"
);
pub const PROBLEM_JSON: &str = "application/problem+json";

static TELEMETRY: std::sync::OnceLock<crm_telemetry::TelemetryGuard> = std::sync::OnceLock::new();

/// Resources that share the same five operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Accounts,
    Contacts,
}

impl Kind {
    pub fn path(self) -> &'static str {
        match self {
            Kind::Accounts => "/api/v1/accounts",
            Kind::Contacts => "/api/v1/contacts",
        }
    }
}

pub struct TestApp {
    /// The organisation in the permission service: users, roles, departments.
    pub org: Org,
    /// `http://127.0.0.1:<gateway port>`.
    pub address: String,
    pub http: reqwest::Client,
    /// A valid token for [`USER`], an admin (every action on every record).
    pub token: String,
    /// [`USER`]'s id in the permission service.
    pub user_id: uuid::Uuid,
    /// The customer service's event topic (unique to this test).
    pub topic: String,
    pub brokers: Vec<String>,
    pub settings: Settings,
    /// Set when started `with_permission`.
    pub permission: Option<PermissionEndpoints>,
    stop: CancellationToken,
    gateway: Option<JoinHandle<Result<(), crm_gateway::Error>>>,
    customer: Option<JoinHandle<Result<(), crm_host::HostError>>>,
}

/// How a test wants the gateway set up.
#[derive(Default)]
pub struct Options {
    /// Overrides the Redis URL (an unreachable one, for outage tests).
    pub redis_url: Option<String>,
    pub body_limit_bytes: Option<usize>,
    /// Verify tokens with the permission service's JWKS, as deployed, instead of the test key
    /// (the permission service runs either way: it makes every authorisation decision).
    pub with_permission: bool,
    /// Quotas; the default ones are far above what any test sends.
    pub rate_limit: Option<RateLimitSettings>,
    /// Single sign-on providers of the permission service.
    pub oidc: Vec<crm_permission::settings::OidcProvider>,
}

/// The user the permission service is started with, and their password.
pub const SIGN_IN_USER: &str = "alice";
pub const SIGN_IN_PASSWORD: &str = "correct horse battery staple";

/// The permission service of a test: where it listens and where it publishes.
pub struct PermissionEndpoints {
    pub grpc: String,
    pub jwks: String,
    pub topic: String,
    pub db: String,
}

/// Starts the permission service.
/// `customer_topic`: the customer service's events, one source of the audit trail.
async fn spawn_permission(
    stop: &CancellationToken,
    customer_topic: &str,
    oidc: &[crm_permission::settings::OidcProvider],
) -> PermissionEndpoints {
    let topic = crm_testkit::unique("permission-events");
    let db = crm_testkit::fresh_db_url().await;
    use crm_permission::settings as ps;
    use secrecy::SecretString;
    let settings = crm_permission::Settings {
        server: crm_testkit::server_settings(),
        // The gateway's grants as shipped; the test gateway's key; the test client's too.
        identity: crm_testkit::identity::trusting_tests(
            crm_permission::Settings::default_identity(),
        ),
        database: crm_testkit::database_settings(db.clone()),
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
            lockout: ps::LockoutSettings {
                max_failures: 3,
                ..Default::default()
            },
            password_hashing: ps::PasswordHashingSettings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        },
        bootstrap: ps::BootstrapSettings {
            users: vec![ps::BootstrapUser {
                username: SIGN_IN_USER.into(),
                password: SecretString::from(SIGN_IN_PASSWORD),
                display_name: "Alice".into(),
                roles: vec!["admin".into()],
                department: None,
            }],
            // Its roles (admin, sales_rep, …) are what test users are given.
            demo_org: true,
            api_clients: vec![],
        },
        audit: ps::AuditSettings {
            topics: vec![customer_topic.to_string()],
            consumer_group: crm_testkit::unique("audit"),
        },
        oidc: ps::OidcSettings {
            providers: oidc.to_vec(),
        },
        org: ps::OrgDefaults::default(),
        clock: Default::default(),
    };
    let app = crm_permission::Application::build(settings)
        .await
        .expect("build the permission service");
    let (grpc, http) = (app.grpc_port(), app.http_port());
    tokio::spawn(app.run_until_stopped(stop.clone()));
    crm_testkit::wait_ready(http, grpc).await;
    PermissionEndpoints {
        grpc: format!("http://127.0.0.1:{grpc}"),
        jwks: format!("http://127.0.0.1:{http}/.well-known/jwks.json"),
        topic,
        db,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    // One subscriber per process: it makes the spans whose W3C context travels from the gateway
    // through gRPC into the service's events. The guard must live as long as the process:
    // dropping it shuts the tracer down, and spans would carry no context any more.
    TELEMETRY.get_or_init(|| crm_telemetry::init("crm-gateway-tests"));

    let brokers = crm_testkit::kafka_brokers();
    let topic = crm_testkit::unique("customer-events");
    let stop = CancellationToken::new();
    // The permission service first: the customer service fetches large scopes from it.
    let permission = spawn_permission(&stop, &topic, &options.oidc).await;
    let permission_db = permission.db.clone();
    let permission_grpc = permission.grpc.clone();
    let customer_settings = crm_customer::Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::trusting_tests(crm_customer::Settings::default_identity()),
        services: [("permission".to_string(), permission_grpc.clone())].into(),
        upstream: UpstreamSettings::default(),
        database: crm_testkit::database_settings(crm_testkit::fresh_db_url().await),
        redis: crm_testkit::redis_settings(),
        kafka: crm_testkit::kafka_settings(brokers.clone()),
        events: crm_customer::settings::EventsSettings {
            topic: topic.clone(),
        },
        cache: crm_customer::settings::CacheSettings { ttl_secs: 60 },
    };
    let customer = crm_customer::Application::build(customer_settings)
        .await
        .expect("build the customer service");
    let (grpc_port, customer_http_port) = (customer.grpc_port(), customer.http_port());
    let customer = tokio::spawn(customer.run_until_stopped(stop.clone()));
    crm_testkit::wait_ready(customer_http_port, grpc_port).await;

    let jwks = options.with_permission;
    let permission = Some(permission);
    let mut redis = crm_testkit::redis_settings();
    if let Some(url) = options.redis_url {
        redis.url = url.into();
    }
    let settings = Settings {
        server: crm_testkit::server_settings(),
        identity: crm_testkit::identity::gateway_identity(),
        redis,
        services: [
            ("customer", format!("http://127.0.0.1:{grpc_port}")),
            ("permission", permission_grpc.clone()),
        ]
        .map(|(name, endpoints)| (name.to_string(), endpoints))
        .into(),
        upstream: UpstreamSettings::default(),
        auth: AuthSettings {
            issuer: if jwks { "crm".into() } else { ISSUER.into() },
            audience: AUDIENCE.into(),
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            public_key_pem: None,
            public_key_file: (!jwks).then(|| PUBLIC_KEY_FILE.into()),
            jwks_url: permission.as_ref().filter(|_| jwks).map(|p| p.jwks.clone()),
            leeway_secs: 30,
        },
        idempotency: IdempotencySettings { ttl_secs: 600 },
        http: HttpSettings {
            body_limit_bytes: options.body_limit_bytes.unwrap_or(1024 * 1024),
            request_timeout_secs: 30,
        },
        rate_limit: options.rate_limit.unwrap_or_default(),
        kafka: Some(crm_testkit::kafka_settings(brokers.clone())),
        principals: PrincipalsSettings {
            permission_topic: permission
                .as_ref()
                .map(|p| p.topic.clone())
                .unwrap_or_default(),
            status_ttl_secs: 60,
        },
        authz: AuthzSettings::default(),
    };
    let gateway = crm_gateway::Application::build(settings.clone())
        .await
        .expect("build the gateway");
    let address = format!("http://127.0.0.1:{}", gateway.port());
    let gateway = tokio::spawn(gateway.run_until_stopped(stop.clone()));

    let org = Org::connect(&permission_grpc, &permission_db).await;
    wait_declared(&permission_db, &["account", "contact"]).await;
    let user_id = org.admin(USER).await;
    let app = TestApp {
        org,
        user_id,
        address,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client"),
        token: token_for(&user_id.to_string()),
        topic,
        brokers,
        settings,
        permission,
        stop,
        gateway: Some(gateway),
        customer: Some(customer),
    };
    app.wait_ready().await;
    app
}

/// Waits until the customer service's declaration of `resources` (made at its start, through
/// its outbox and the broker) is in the permission service's registry: field rules and sharing
/// conditions may only name declared fields, and grants only declared resources.
async fn wait_declared(permission_db: &str, resources: &[&str]) {
    let db = sqlx::PgPool::connect(permission_db)
        .await
        .expect("the permission database");
    let names: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
    crm_testkit::eventually(
        &format!("the customer service's resources {resources:?} declared"),
        Duration::from_secs(60),
        || {
            let (db, names) = (db.clone(), names.clone());
            async move {
                let declared: i64 = sqlx::query_scalar(
                    "SELECT count(DISTINCT resource) FROM resource_fields \
                     WHERE resource = ANY($1)",
                )
                .bind(&names)
                .fetch_one(&db)
                .await
                .unwrap_or(0);
                declared == names.len() as i64
            }
        },
    )
    .await;
    db.close().await;
}

/// Administers the test's permission service (over gRPC, as the admin tools would).
#[derive(Clone)]
pub struct Org {
    pub users: crm_proto::permission::user_service_client::UserServiceClient<Signed>,
    pub org: crm_proto::permission::org_service_client::OrgServiceClient<Signed>,
    pub clients: crm_proto::permission::api_client_service_client::ApiClientServiceClient<Signed>,
    pub sharing: crm_proto::permission::sharing_service_client::SharingServiceClient<Signed>,
}

/// A channel whose calls the test client signs as itself (ADR 0012).
pub type Signed = crm_identity::SignCalls<tonic::transport::Channel>;

impl Org {
    async fn connect(grpc: &str, _db: &str) -> Self {
        let channel = tonic::transport::Channel::from_shared(grpc.to_string())
            .unwrap()
            .connect()
            .await
            .expect("connect to the permission service");
        let channel = crm_testkit::identity::signed(channel, "permission");
        use crm_proto::permission::*;
        Org {
            users: user_service_client::UserServiceClient::new(channel.clone()),
            org: org_service_client::OrgServiceClient::new(channel.clone()),
            clients: api_client_service_client::ApiClientServiceClient::new(channel.clone()),
            sharing: sharing_service_client::SharingServiceClient::new(channel),
        }
    }

    /// The id of the role named `name` (the demo organisation's roles exist).
    pub async fn role(&self, name: &str) -> String {
        let roles = self
            .org
            .clone()
            .list_roles(crm_proto::permission::ListRolesRequest {})
            .await
            .expect("list roles")
            .into_inner()
            .roles;
        roles
            .into_iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no role {name}"))
            .id
    }

    /// The id of the department named `name`.
    pub async fn department(&self, name: &str) -> String {
        self.org
            .clone()
            .list_departments(crm_proto::permission::ListDepartmentsRequest {})
            .await
            .expect("list departments")
            .into_inner()
            .departments
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no department {name}"))
            .id
    }

    /// A new active user (a unique username made from `name`) holding `roles`, with `department`
    /// as their primary one and `manager` as their manager.
    pub async fn user(
        &self,
        name: &str,
        roles: &[&str],
        department: Option<&str>,
        manager: Option<uuid::Uuid>,
    ) -> uuid::Uuid {
        use crm_proto::permission as pb;
        let short: String = name.chars().take(24).collect();
        let username = format!("{short}.{}", uuid::Uuid::new_v4().simple()).to_lowercase();
        let user = self
            .users
            .clone()
            .create_user(pb::CreateUserRequest {
                username,
                display_name: name.into(),
                ..Default::default()
            })
            .await
            .expect("create user")
            .into_inner();
        let mut version = self
            .org
            .clone()
            .get_user_org(pb::GetUserOrgRequest {
                user_id: user.id.clone(),
            })
            .await
            .expect("user org")
            .into_inner()
            .version;
        if let Some(department) = department {
            let department = self.department(department).await;
            version = self
                .org
                .clone()
                .set_user_departments(pb::SetUserDepartmentsRequest {
                    user_id: user.id.clone(),
                    expected_version: version,
                    primary_department_id: department,
                    other_department_ids: vec![],
                })
                .await
                .expect("set departments")
                .into_inner()
                .user_org
                .unwrap()
                .version;
        }
        if let Some(manager) = manager {
            version = self
                .org
                .clone()
                .set_user_manager(pb::SetUserManagerRequest {
                    user_id: user.id.clone(),
                    expected_version: version,
                    manager_id: manager.to_string(),
                })
                .await
                .expect("set manager")
                .into_inner()
                .user_org
                .unwrap()
                .version;
        }
        for role in roles {
            let role_id = self.role(role).await;
            version = self
                .org
                .clone()
                .assign_role(pb::AssignRoleRequest {
                    user_id: user.id.clone(),
                    expected_version: version,
                    role_id,
                })
                .await
                .expect("assign role")
                .into_inner()
                .user_org
                .unwrap()
                .version;
        }
        user.id.parse().unwrap()
    }

    /// Gives an existing user (an API client's service user) a role.
    pub async fn assign(&self, user_id: &str, role: &str) {
        use crm_proto::permission as pb;
        let version = self
            .org
            .clone()
            .get_user_org(pb::GetUserOrgRequest {
                user_id: user_id.into(),
            })
            .await
            .expect("user org")
            .into_inner()
            .version;
        let role_id = self.role(role).await;
        self.org
            .clone()
            .assign_role(pb::AssignRoleRequest {
                user_id: user_id.into(),
                expected_version: version,
                role_id,
            })
            .await
            .expect("assign role");
    }

    /// A new admin (every action on every record).
    pub async fn admin(&self, name: &str) -> uuid::Uuid {
        self.user(name, &["admin"], None, None).await
    }

    /// Grants the role named `role` each of `actions` on `resource` with `scope`. The seeded
    /// roles hold grants on the well-known resources only: a resource a service declared
    /// (`follow_up`) gets its grants here, once declared ([`TestApp::wait_declared`]; the
    /// permission service refuses grants on resources it does not know).
    pub async fn grant(
        &self,
        role: &str,
        resource: &str,
        actions: &[crm_proto::permission::Action],
        scope: crm_proto::permission::DataScope,
    ) {
        use crm_proto::permission as pb;
        let found = self
            .org
            .clone()
            .list_roles(pb::ListRolesRequest {})
            .await
            .expect("list roles")
            .into_inner()
            .roles
            .into_iter()
            .find(|r| r.name == role)
            .unwrap_or_else(|| panic!("no role {role}"));
        let (raw, name) = crm_access::Resource::parse(resource)
            .unwrap_or_else(|| panic!("{resource:?} is not a resource name"))
            .to_wire();
        let mut version = found.version;
        for &action in actions {
            version = self
                .org
                .clone()
                .set_grant(pb::SetGrantRequest {
                    role_id: found.id.clone(),
                    expected_version: version,
                    grant: Some(pb::Grant {
                        resource: raw,
                        resource_name: name.clone(),
                        action: action as i32,
                        scope: scope as i32,
                    }),
                })
                .await
                .unwrap_or_else(|e| panic!("grant {role} {resource}:{action:?}: {e}"))
                .into_inner()
                .role
                .expect("the role")
                .version;
        }
    }
}

impl TestApp {
    /// The audit entries `token` reads for `query` (newest first), once `until` holds for them
    /// (the trail is written by a consumer, a moment after the change).
    pub async fn audit_entries(
        &self,
        token: &str,
        query: &str,
        until: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = &until;
        crm_testkit::wait_for(Duration::from_secs(30), || async move {
            let page = ok_json(
                self.http
                    .get(self.url(&format!("/api/v1/audit?{query}")))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap(),
                200,
            )
            .await;
            let items = page["items"].as_array().unwrap().clone();
            match until(&items) {
                true => Ok(items),
                false => Err(format!("audit entries for {query:?}: {items:?}")),
            }
        })
        .await
    }

    /// Waits until the customer service has declared `resource` to the permission service's
    /// registry (its declaration rides the outbox, so it lands a moment after the start).
    pub async fn wait_declared(&self, resource: &str) {
        let permission = self.permission.as_ref().expect("the permission service");
        wait_declared(&permission.db, &[resource]).await;
    }

    /// Waits until the registry knows `field` of `resource` as active (a custom field is
    /// declared by its owner's outbox, a moment after it is defined).
    pub async fn wait_declared_field(&self, resource: &str, field: &str) {
        let permission = self.permission.as_ref().expect("the permission service");
        let db = sqlx::PgPool::connect(&permission.db)
            .await
            .expect("permission db");
        crm_testkit::eventually(
            &format!("{resource}.{field} declared"),
            Duration::from_secs(30),
            || {
                let db = db.clone();
                async move {
                    sqlx::query_scalar::<_, bool>(
                        "SELECT EXISTS (SELECT 1 FROM resource_fields
                          WHERE resource = $1 AND name = $2 AND active)",
                    )
                    .bind(resource)
                    .bind(field)
                    .fetch_one(&db)
                    .await
                    .unwrap_or(false)
                }
            },
        )
        .await;
        db.close().await;
    }

    /// A token for a new admin user made from `name`, and the user's id.
    pub async fn admin_token(&self, name: &str) -> (String, uuid::Uuid) {
        let id = self.org.admin(name).await;
        (token_for(&id.to_string()), id)
    }

    /// Starts another gateway replica with the same settings (same Redis, same services) and
    /// returns its address; it stops with this app.
    pub async fn second_replica(&self) -> String {
        let mut settings = self.settings.clone();
        settings.server.http_port = 0;
        let gateway = crm_gateway::Application::build(settings)
            .await
            .expect("build replica");
        let address = format!("http://127.0.0.1:{}", gateway.port());
        let readiness = gateway.readiness();
        tokio::spawn(gateway.run_until_stopped(self.stop.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !readiness.is_ready() {
            assert!(std::time::Instant::now() < deadline, "replica not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        address
    }
}

/// A valid token for `user`, signed with the key the test gateway trusts.
pub fn token_for(user: &str) -> String {
    mint(
        PRIVATE_KEY.as_bytes(),
        &TokenRequest {
            user,
            issuer: ISSUER,
            audience: AUDIENCE,
            ttl_secs: 600,
            kid: Some("test"),
        },
    )
    .expect("mint a token")
}

/// A token for [`USER`] that expired an hour ago.
pub fn expired_token() -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "sub": crm_gateway::security::token::user_id_for(USER).to_string(),
        "iss": ISSUER, "aud": AUDIENCE,
        "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600,
    });
    sign(PRIVATE_KEY, &claims)
}

/// A well-formed token for [`USER`] signed by a key the gateway does not trust.
pub fn forged_token() -> String {
    let claims = crm_gateway::security::token::TokenRequest {
        user: USER,
        issuer: ISSUER,
        audience: AUDIENCE,
        ttl_secs: 600,
        kid: Some("test"),
    }
    .claims(jsonwebtoken::get_current_timestamp());
    sign(OTHER_PRIVATE_KEY, &serde_json::to_value(claims).unwrap())
}

fn sign(private_pem: &str, claims: &Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test".into());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with the test user's token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .http
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gateway not ready after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // --- the five operations, for either resource -------------------------------------------

    pub async fn create(&self, kind: Kind, body: &Value) -> Response {
        self.request(Method::POST, kind.path())
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn get(&self, kind: Kind, id: &str) -> Response {
        self.request(Method::GET, &format!("{}/{id}", kind.path()))
            .send()
            .await
            .expect("GET")
    }

    /// `query` without the `?`, e.g. `tag=vip&page_size=2`.
    pub async fn list(&self, kind: Kind, query: &str) -> Response {
        self.request(Method::GET, &format!("{}?{query}", kind.path()))
            .send()
            .await
            .expect("list")
    }

    pub async fn patch(
        &self,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Response {
        let mut request = self
            .request(Method::PATCH, &format!("{}/{id}", kind.path()))
            .json(body);
        if let Some(tag) = if_match {
            request = request.header(header::IF_MATCH, tag);
        }
        request.send().await.expect("PATCH")
    }

    pub async fn delete(&self, kind: Kind, id: &str, if_match: Option<&str>) -> Response {
        let mut request = self.request(Method::DELETE, &format!("{}/{id}", kind.path()));
        if let Some(tag) = if_match {
            request = request.header(header::IF_MATCH, tag);
        }
        request.send().await.expect("DELETE")
    }

    /// Ids of everything a list returns (first page of up to 200).
    pub async fn ids(&self, kind: Kind, query: &str) -> Vec<String> {
        let query = if query.is_empty() {
            "page_size=200".to_string()
        } else {
            format!("page_size=200&{query}")
        };
        let page = ok_json(self.list(kind, &query).await, 200).await;
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Asserts that no record of `kind` exists: the bad request before this wrote nothing.
    pub async fn assert_nothing_written(&self, kind: Kind) {
        assert_eq!(
            self.ids(kind, "").await,
            Vec::<String>::new(),
            "a refused request wrote a {kind:?} record"
        );
    }

    /// Creates an account named `name` and returns its JSON.
    pub async fn create_account(&self, name: &str) -> Value {
        ok_json(
            self.create(Kind::Accounts, &json!({ "name": name })).await,
            201,
        )
        .await
    }

    pub async fn create_contact(&self, account_id: &str, first_name: &str) -> Value {
        let body = json!({ "account_id": account_id, "first_name": first_name });
        ok_json(self.create(Kind::Contacts, &body).await, 201).await
    }

    /// Stops both processes the way SIGTERM does and checks that they drained cleanly.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(gateway) = self.gateway.take() {
            gateway
                .await
                .expect("join the gateway")
                .expect("gateway stopped cleanly");
        }
        if let Some(customer) = self.customer.take() {
            customer
                .await
                .expect("join the service")
                .expect("service stopped cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Asserts the status and returns the JSON body.
pub async fn ok_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an RFC 7807 problem with `status` and returns it.
pub async fn problem(response: Response, status: u16) -> Value {
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = ok_json(response, status).await;
    assert_eq!(
        content_type, PROBLEM_JSON,
        "problem content type; body: {body}"
    );
    assert_eq!(body["status"], status, "{body}");
    let code = body["code"].as_str().expect("code");
    assert_eq!(body["type"], format!("urn:crm:problem:{code}"), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert!(
        body["request_id"].is_string(),
        "problem without request_id: {body}"
    );
    body
}

/// The field of the first violation in a 400 problem.
pub async fn first_bad_field(response: Response) -> String {
    let body = problem(response, 400).await;
    assert_eq!(body["code"], "invalid_argument", "{body}");
    body["errors"][0]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[]: {body}"))
        .to_string()
}

/// The `ETag` header of a response.
pub fn etag(response: &Response) -> String {
    response
        .headers()
        .get(header::ETAG)
        .expect("ETag")
        .to_str()
        .unwrap()
        .to_string()
}
