//! API clients: external systems (ERP, OA, e-commerce) that call the API on their own behalf with
//! OAuth 2.0 client credentials.
//!
//! A client is backed by a service user with the same id (username `api.<client_id>`, no
//! password): it holds roles like anyone, so data scopes and field rules apply unchanged, and its
//! status is the user's (disabling the client disables the user, which refuses its tokens at the
//! gateway at once). On top of that, the client's `scopes` (`<resource>:<action>`) name the only
//! resources and actions its tokens may be used for, and `requests_per_window` is its own quota.
//! Both travel in the signed access token (`client_id`, `scope`, `rl`), so the gateway needs no
//! lookup per request; a change takes effect with the next token (tokens live minutes).
//!
//! Secrets are 256 random bits shown once; only their SHA-256 is stored, compared in constant
//! time. An unknown client, a wrong secret and a disabled client fail alike.

use chrono::{DateTime, Utc};
use crm_errors::{ApiError, Code, FieldViolation};
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::authz::model::{Action, Resource};
use crate::domain::{NewUser, User, UserStatus, Violations};
use crate::error::{Error, Result};
use crate::service::{Auth, ClientInfo, Users};
use crate::store;
use crate::tokens::{self, AccessClaims};

/// What clients are told for every failed authentication.
pub const INVALID_CLIENT: &str = "invalid client credentials";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiClient {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    /// `<resource>:<action>`, sorted.
    pub scopes: Vec<String>,
    pub requests_per_window: u32,
    /// The service user's.
    pub status: UserStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A validated new client.
#[derive(Debug, Clone)]
pub struct NewApiClient {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub requests_per_window: u32,
}

pub const MAX_CLIENT_ID: usize = 64;
pub const MAX_NAME: usize = 100;
pub const MAX_REQUESTS_PER_WINDOW: u32 = 1_000_000;

impl Violations {
    /// 3 to 64 of a-z 0-9 . _ -, starting with a letter.
    pub fn client_id(&mut self, field: &str, value: &str) -> String {
        let v = value.trim().to_string();
        let ok = (3..=MAX_CLIENT_ID).contains(&v.chars().count())
            && v.starts_with(|c: char| c.is_ascii_lowercase())
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !ok {
            self.add(
                field,
                format!("must be 3 to {MAX_CLIENT_ID} of a-z 0-9 . _ -, starting with a letter"),
            );
        }
        v
    }

    /// `<resource>:<action>` entries, at least one; sorted and without duplicates.
    pub fn scopes(&mut self, field: &str, values: &[String]) -> Vec<String> {
        if values.is_empty() {
            self.add(field, "at least one scope (resource:action) is required");
        }
        let mut out = Vec::with_capacity(values.len());
        for (i, raw) in values.iter().enumerate() {
            match parse_scope(raw) {
                Some(scope) => out.push(scope),
                None => self.add(
                    &format!("{field}[{i}]"),
                    "must be <resource>:<action>, e.g. account:read",
                ),
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// `account:read` (any case, surrounding spaces ignored) in its canonical form.
pub fn parse_scope(raw: &str) -> Option<String> {
    let (resource, action) = raw
        .trim()
        .to_ascii_lowercase()
        .split_once(':')
        .map(|(r, a)| (r.to_string(), a.to_string()))?;
    let resource = Resource::parse(&resource)?;
    let action = Action::parse(&action)?;
    Some(format!("{resource}:{action}"))
}

impl NewApiClient {
    pub fn parse(
        client_id: &str,
        name: &str,
        scopes: &[String],
        requests_per_window: u32,
    ) -> std::result::Result<Self, ApiError> {
        let mut v = Violations::default();
        let client_id = v.client_id("client_id", client_id);
        let name = v.required("name", name, MAX_NAME);
        let scopes = v.scopes("scopes", scopes);
        if requests_per_window > MAX_REQUESTS_PER_WINDOW {
            v.add(
                "requests_per_window",
                format!("must be at most {MAX_REQUESTS_PER_WINDOW} (0: the gateway default)"),
            );
        }
        v.into_result()?;
        Ok(NewApiClient {
            client_id,
            name,
            scopes,
            requests_per_window,
        })
    }

    /// The service user's username.
    pub fn username(&self) -> String {
        service_username(&self.client_id)
    }
}

pub fn service_username(client_id: &str) -> String {
    format!("api.{client_id}")
}

/// A new secret: 32 random bytes, base64url.
fn new_secret() -> Result<SecretString> {
    tokens::new_refresh_token()
}

fn secret_hash(secret: &SecretString) -> Vec<u8> {
    tokens::refresh_token_hash(secret)
}

// --- store ----------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    client_id: String,
    name: String,
    secret_hash: Vec<u8>,
    scopes: Vec<String>,
    requests_per_window: i32,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    status: String,
}

const SELECT: &str = "SELECT c.id, c.client_id, c.name, c.secret_hash, c.scopes,
        c.requests_per_window, c.version, c.created_at, c.updated_at, u.status
   FROM api_clients c JOIN users u ON u.id = c.id";

impl TryFrom<Row> for (ApiClient, Vec<u8>) {
    type Error = Error;
    fn try_from(r: Row) -> Result<Self> {
        let status = UserStatus::parse(&r.status)
            .ok_or_else(|| Error::Corrupt(format!("user status {:?}", r.status)))?;
        Ok((
            ApiClient {
                id: r.id,
                client_id: r.client_id,
                name: r.name,
                scopes: r.scopes,
                requests_per_window: r.requests_per_window.max(0) as u32,
                status,
                version: r.version,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
            r.secret_hash,
        ))
    }
}

/// By `client_id` (what clients authenticate as; never a UUID, so never a record id).
async fn find_by_client_id(
    conn: &mut PgConnection,
    client_id: &str,
) -> Result<Option<(ApiClient, Vec<u8>)>> {
    let sql = format!("{SELECT} WHERE c.client_id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(client_id)
        .fetch_optional(conn)
        .await?;
    row.map(<(ApiClient, Vec<u8>)>::try_from).transpose()
}

/// By record id or by `client_id` (administration accepts either).
async fn find(conn: &mut PgConnection, key: &str) -> Result<Option<(ApiClient, Vec<u8>)>> {
    let Ok(id) = Uuid::parse_str(key) else {
        return find_by_client_id(conn, key.trim()).await;
    };
    let sql = format!("{SELECT} WHERE c.id = $1");
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(<(ApiClient, Vec<u8>)>::try_from).transpose()
}

const CLIENT_ID_CONSTRAINT: &str = "api_clients_client_id_key";

// --- use cases ------------------------------------------------------------------------------

/// Administration of API clients.
#[derive(Clone)]
pub struct ApiClients {
    users: Users,
}

/// A client with its secret, right after it was made or rotated.
pub struct WithSecret {
    pub client: ApiClient,
    pub secret: SecretString,
}

impl ApiClients {
    pub fn new(users: Users) -> Self {
        Self { users }
    }

    /// Creates the client and its service user in one transaction.
    #[tracing::instrument(name = "create api client", skip_all)]
    pub async fn create(&self, new: NewApiClient) -> Result<WithSecret> {
        let secret = new_secret()?;
        self.create_with_secret(new, secret).await
    }

    /// As [`Self::create`] with a given secret (bootstrap from configuration).
    pub async fn create_with_secret(
        &self,
        new: NewApiClient,
        secret: SecretString,
    ) -> Result<WithSecret> {
        let user = NewUser {
            username: new.username(),
            display_name: new.name.clone(),
            email: None,
            password: None,
        };
        let (pool, outbox) = self.users.parts();
        let mut tx = pool.begin().await?;
        let user: User = match self.users.insert_in(&mut tx, user, None).await {
            Err(Error::Api(api)) if api.code == Code::AlreadyExists => {
                return Err(taken().into());
            }
            other => other?,
        };
        let client = ApiClient {
            id: user.id,
            client_id: new.client_id,
            name: new.name,
            scopes: new.scopes,
            requests_per_window: new.requests_per_window,
            status: user.status,
            version: 1,
            created_at: user.created_at,
            updated_at: user.created_at,
        };
        let inserted = sqlx::query(
            "INSERT INTO api_clients (id, client_id, name, secret_hash, scopes,
                                      requests_per_window, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(client.id)
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(secret_hash(&secret))
        .bind(&client.scopes)
        .bind(client.requests_per_window as i32)
        .bind(client.version)
        .bind(client.created_at)
        .bind(client.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(Error::from);
        match inserted {
            Err(err) if store::is_unique_violation(&err, CLIENT_ID_CONSTRAINT) => {
                return Err(taken().into());
            }
            other => other?,
        };
        crate::service::enqueue(
            outbox,
            &mut tx,
            "permission.api_client.created",
            client.id.to_string(),
            serde_json::json!({ "api_client": client }),
        )
        .await?;
        tx.commit().await?;
        outbox.notify_committed();
        Ok(WithSecret { client, secret })
    }

    pub async fn get(&self, key: &str) -> Result<ApiClient> {
        let (pool, _) = self.users.parts();
        let mut conn = pool.acquire().await?;
        find(&mut conn, key)
            .await?
            .map(|(c, _)| c)
            .ok_or_else(|| ApiError::not_found("API client").into())
    }

    /// A new secret; the old one stops working at once.
    #[tracing::instrument(name = "rotate api client secret", skip_all)]
    pub async fn rotate_secret(&self, key: &str) -> Result<WithSecret> {
        let secret = new_secret()?;
        let (pool, outbox) = self.users.parts();
        let mut tx = pool.begin().await?;
        let (mut client, _) = find(&mut tx, key)
            .await?
            .ok_or_else(|| ApiError::not_found("API client"))?;
        client.version += 1;
        client.updated_at = crate::service::now();
        sqlx::query(
            "UPDATE api_clients SET secret_hash = $2, version = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(client.id)
        .bind(secret_hash(&secret))
        .bind(client.version)
        .bind(client.updated_at)
        .execute(&mut *tx)
        .await?;
        crate::service::enqueue(
            outbox,
            &mut tx,
            "permission.api_client.secret_rotated",
            client.id.to_string(),
            serde_json::json!({ "id": client.id, "client_id": client.client_id,
                                "version": client.version }),
        )
        .await?;
        tx.commit().await?;
        outbox.notify_committed();
        Ok(WithSecret { client, secret })
    }

    /// The client's status is its service user's: this sets that (revoking sessions, moving the
    /// permission version and telling every gateway, as for any user).
    pub async fn set_status(&self, key: &str, status: UserStatus) -> Result<ApiClient> {
        let client = self.get(key).await?;
        let user = self.users.get_user(client.id).await?;
        self.users
            .set_status(client.id, status, user.version)
            .await?;
        self.get(&client.id.to_string()).await
    }
}

/// Creates the configured API clients that do not exist yet and gives their service users the
/// configured roles. A bad entry is logged (by field) and skipped.
pub async fn ensure_bootstrap(
    users: &Users,
    org: &crate::authz::service::Org,
    entries: &[crate::settings::BootstrapApiClient],
) -> Result<()> {
    let clients = ApiClients::new(users.clone());
    let mut service_users = Vec::new();
    for entry in entries {
        let name = if entry.name.is_empty() {
            entry.client_id.clone()
        } else {
            entry.name.clone()
        };
        let new = match NewApiClient::parse(
            &entry.client_id,
            &name,
            &entry.scopes,
            entry.requests_per_window,
        ) {
            Ok(new) => new,
            Err(err) => {
                let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
                tracing::error!(?fields, "skipping an invalid bootstrap API client");
                continue;
            }
        };
        let username = new.username();
        match clients.get(&new.client_id).await {
            Ok(_) => {}
            Err(Error::Api(api)) if api.code == Code::NotFound => {
                clients
                    .create_with_secret(new, entry.secret.clone())
                    .await?;
                tracing::info!(client_id = %entry.client_id, "bootstrap API client created");
            }
            Err(other) => return Err(other),
        }
        service_users.push(crate::settings::BootstrapUser {
            username,
            password: SecretString::from(String::new()),
            display_name: name,
            roles: entry.roles.clone(),
            department: None,
        });
    }
    crate::authz::seed::ensure_bootstrap_org(org, &service_users).await?;
    Ok(())
}

fn taken() -> ApiError {
    let mut api = ApiError::new(Code::AlreadyExists, "the client_id is taken");
    api.violations
        .push(FieldViolation::new("client_id", "is taken"));
    api
}

/// An access token issued to a client.
pub struct ClientToken {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

impl Auth {
    /// OAuth 2.0 client credentials. `requested`: space-separated scopes, empty for all.
    #[tracing::instrument(name = "client credentials", skip_all)]
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: SecretString,
        requested: &str,
        info: &ClientInfo,
    ) -> Result<ClientToken> {
        let (pool, outbox) = self.parts();
        let found = {
            let mut conn = pool.acquire().await?;
            find_by_client_id(&mut conn, client_id.trim()).await?
        };
        let presented = secret_hash(&secret);
        // Compared even without a client (against a hash nothing matches), so an unknown client
        // costs the same as a wrong secret.
        let stored = found
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| vec![0; presented.len()]);
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(&stored, &presented)
            .is_ok()
            && found.is_some();
        let client = match found {
            Some((client, _)) if matches && client.status == UserStatus::Active => client,
            other => {
                let reason = match &other {
                    None => "unknown_client",
                    Some(_) if !matches => "wrong_secret",
                    Some(_) => "disabled",
                };
                let mut tx = pool.begin().await?;
                crate::service::enqueue(
                    outbox,
                    &mut tx,
                    "permission.api_client.authentication_failed",
                    crate::domain::truncate_chars(client_id, MAX_CLIENT_ID),
                    serde_json::json!({
                        "client_id": crate::domain::truncate_chars(client_id, MAX_CLIENT_ID),
                        "api_client_id": other.as_ref().map(|(c, _)| c.id),
                        "reason": reason,
                        "client_ip": info.ip,
                        "user_agent": info.user_agent,
                    }),
                )
                .await?;
                tx.commit().await?;
                outbox.notify_committed();
                metrics::counter!("crm_permission_client_tokens_total", "outcome" => "failure")
                    .increment(1);
                return Err(Error::unauthenticated(INVALID_CLIENT));
            }
        };
        let scopes = granted_scopes(&client.scopes, requested)?;
        let now = crate::service::now();
        let iat = now.timestamp();
        let (issuer, audience, ttl) = self.token_policy();
        let claims = AccessClaims {
            iss: issuer,
            aud: audience,
            sub: client.id.to_string(),
            name: service_username(&client.client_id),
            iat,
            nbf: iat,
            exp: iat + ttl,
            jti: Uuid::now_v7().to_string(),
            sid: client.id.to_string(),
            client_id: Some(client.client_id.clone()),
            scope: Some(scopes.clone()),
            rl: (client.requests_per_window > 0).then_some(client.requests_per_window),
        };
        let signer = self.keys().signer().await?;
        let access_token = signer.sign(&claims)?;
        let mut tx = pool.begin().await?;
        crate::service::enqueue(
            outbox,
            &mut tx,
            "permission.api_client.token_issued",
            client.id.to_string(),
            serde_json::json!({
                "user_id": client.id,
                "client_id": client.client_id,
                "scope": scopes,
                "token_id": claims.jti,
                "client_ip": info.ip,
                "user_agent": info.user_agent,
            }),
        )
        .await?;
        tx.commit().await?;
        outbox.notify_committed();
        metrics::counter!("crm_permission_client_tokens_total", "outcome" => "success")
            .increment(1);
        Ok(ClientToken {
            access_token,
            expires_in: ttl,
            scope: scopes,
        })
    }
}

/// The requested subset of the client's scopes (all of them when nothing is asked for).
fn granted_scopes(held: &[String], requested: &str) -> Result<String> {
    if requested.trim().is_empty() {
        return Ok(held.join(" "));
    }
    let mut granted = Vec::new();
    for raw in requested.split_whitespace() {
        match parse_scope(raw) {
            Some(scope) if held.contains(&scope) => granted.push(scope),
            _ => {
                return Err(ApiError::invalid(vec![FieldViolation::new(
                    "scope",
                    format!("{raw:?} is not one of the client's scopes"),
                )])
                .into());
            }
        }
    }
    granted.sort();
    granted.dedup();
    Ok(granted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_and_canonical() {
        assert_eq!(
            parse_scope(" Account:READ ").as_deref(),
            Some("account:read")
        );
        assert_eq!(parse_scope("account"), None);
        assert_eq!(parse_scope("account:fly"), None);
        assert_eq!(parse_scope("planet:read"), None);
        let mut v = Violations::default();
        let scopes = v.scopes(
            "scopes",
            &[
                "contact:read".into(),
                "account:read".into(),
                "account:read".into(),
                "x".into(),
            ],
        );
        assert_eq!(scopes, ["account:read", "contact:read"]);
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["scopes[3]"]);
    }

    #[test]
    fn bad_clients_name_every_field() {
        let err = NewApiClient::parse("9x", "", &[], 2_000_000).unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            ["client_id", "name", "scopes", "requests_per_window"]
        );
    }

    #[test]
    fn a_token_gets_the_requested_subset_or_everything() {
        let held = ["account:read".to_string(), "contact:read".to_string()];
        assert_eq!(
            granted_scopes(&held, "").unwrap(),
            "account:read contact:read"
        );
        assert_eq!(
            granted_scopes(&held, "contact:read").unwrap(),
            "contact:read"
        );
        assert!(granted_scopes(&held, "account:delete").is_err());
    }
}
