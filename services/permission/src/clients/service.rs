//! The use cases of API clients: creating one together with its service user, reading,
//! rotating its secret, setting its status (its service user's), and the configured ones at
//! start-up. Authenticating a client (the token endpoint) is a sign-in:
//! [`crate::auth::service::Auth::client_credentials`].

use crm_errors::{ApiError, Code};
use secrecy::SecretString;

use super::domain::{ApiClient, NewApiClient, WithSecret, new_secret, secret_hash, taken};
use super::store;
use crate::error::{Error, Result};
use crate::events;
use crate::org::Org;
use crate::settings::{BootstrapApiClient, BootstrapUser};
use crate::users::domain::{NewUser, User, UserStatus};
use crate::users::service::Users;

/// Administration of API clients.
#[derive(Clone)]
pub struct ApiClients {
    users: Users,
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
        // Scopes name resources: only registered ones mean anything.
        for scope in &new.scopes {
            let resource = scope
                .split_once(':')
                .and_then(|(r, _)| crm_access::Resource::parse(r))
                .ok_or_else(|| Error::Corrupt(format!("scope {scope:?} was not canonical")))?;
            crate::registry::service::require_resource(&mut tx, resource, "scopes").await?;
        }
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
        let inserted = store::insert(&mut tx, &client, &secret_hash(&secret)).await;
        match inserted {
            Err(err) if err.is_unique_violation(store::CLIENT_ID_CONSTRAINT) => {
                return Err(taken().into());
            }
            other => other?,
        };
        events::enqueue(
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
        store::find(&mut conn, key)
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
        let (mut client, _) = store::find(&mut tx, key)
            .await?
            .ok_or_else(|| ApiError::not_found("API client"))?;
        client.version += 1;
        client.updated_at = events::now();
        store::update_secret(&mut tx, &client, &secret_hash(&secret)).await?;
        events::enqueue(
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
    org: &Org,
    entries: &[BootstrapApiClient],
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
        service_users.push(BootstrapUser {
            username,
            password: SecretString::from(String::new()),
            display_name: name,
            roles: entry.roles.clone(),
            department: None,
        });
    }
    crate::seed::ensure_bootstrap_org(org, &service_users).await?;
    Ok(())
}
