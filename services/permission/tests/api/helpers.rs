use std::sync::Arc;
use std::time::Duration;

use crm_lifecycle::CancellationToken;
use crm_permission::password::Passwords;
use crm_permission::settings::{
    AuthSettings, BootstrapSettings, EventsSettings, LockoutSettings, PasswordHashingSettings,
};
use crm_permission::{Application, Settings};
use crm_proto::permission as pb;
use crm_proto::permission::auth_service_client::AuthServiceClient;
use crm_proto::permission::user_service_client::UserServiceClient;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, TokenData, Validation};
use secrecy::SecretString;
use tonic::transport::Channel;

/// The key-encryption key of every test app: base64 of 32 bytes 0x07.
pub const TEST_KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub auth: AuthServiceClient<Channel>,
    pub users: UserServiceClient<Channel>,
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
            lockout: LockoutSettings::default(),
            password_hashing: PasswordHashingSettings {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
        },
        bootstrap: BootstrapSettings::default(),
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
    TestApp {
        auth: AuthServiceClient::new(channel.clone()),
        users: UserServiceClient::new(channel),
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
