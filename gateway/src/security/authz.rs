//! Authorisation: every API route declares the resource and actions it needs ([`Security::permit`](super::Security::permit)); before
//! the handler runs, the gateway gets the caller's scope for each from the permission service
//! (`AccessService.CompileScope`), refuses with 403 when the route's action is not granted at
//! all, and hands the handler an [`Access`] that travels to the owning service with the call
//! (which applies the scopes in SQL and the field rules to what it returns).
//!
//! Answers are cached in Redis, shared by every replica, under
//! `{prefix}:authz:v{permission version}:{user}:{resource}:{action}`. A decision computed at
//! version N stays right until the version moves past N (see `crm.permission.v1`), so a key never
//! needs invalidating: once a replica learns of a newer version it simply looks under new keys.
//! Replicas learn it from the permission events (each carries `permission_version`, followed by
//! the same consumer as user status, within about a second), from every `CompileScope` answer,
//! and — should events be lost or Kafka be absent — by asking `GetPermissionVersion` every
//! `authz.version_poll_secs`. Old keys expire after `authz.cache_ttl_secs`.
//!
//! Redis down: scopes are asked of the permission service directly (slower, still right).
//! Permission service down: cached scopes keep serving; without one the request fails with 503,
//! never silently in.
//!
//! The context also carries the caller's effective time zone and language (their own, else the
//! organisation's), which `principals` learnt together with the user's status — no call of its
//! own — so an owning service can tell what "today" is for the caller (`Access::today`).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use crm_access::{Access, Action, Resource, Scope};
use crm_grpc::TracePropagation;
use crm_proto::permission as pb;
use crm_proto::permission::access_service_client::AccessServiceClient;
use futures::future::try_join_all;
use prost::Message;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use super::Security;
use super::auth::AuthUser;
use crate::platform::error::{Error, Result};

type AccessClient =
    AccessServiceClient<InterceptedService<crate::upstream::permission::Channel, TracePropagation>>;

/// The newest permission version this replica knows of. Only ever moves forward.
#[derive(Clone, Default)]
pub struct PermissionVersion(Arc<AtomicI64>);

impl PermissionVersion {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// Records a version seen anywhere (an event, an answer); older ones change nothing.
    pub fn observe(&self, version: i64) {
        self.0.fetch_max(version, Ordering::AcqRel);
    }
}

/// Scopes from the permission service, cached in Redis. Cheap to clone.
#[derive(Clone)]
pub struct Authorizer {
    client: AccessClient,
    redis: ConnectionManager,
    redis_timeout: Duration,
    prefix: String,
    ttl: Duration,
    version: PermissionVersion,
}

impl Authorizer {
    pub fn new(
        channel: crate::upstream::permission::Channel,
        redis: &crate::upstream::Redis,
        ttl: Duration,
    ) -> Self {
        Self {
            client: AccessServiceClient::with_interceptor(channel, TracePropagation),
            redis: redis.conn.clone(),
            redis_timeout: redis.timeout,
            prefix: redis.key_prefix.clone(),
            ttl,
            version: PermissionVersion::default(),
        }
    }

    pub fn version(&self) -> PermissionVersion {
        self.version.clone()
    }

    fn key(&self, version: i64, user: Uuid, resource: Resource, action: Action) -> String {
        format!(
            "{}:authz:v{version}:{user}:{resource}:{action}",
            self.prefix
        )
    }

    /// The caller's scopes for `needs`: one Redis round trip, then the permission service for
    /// whatever was not cached (concurrently).
    pub async fn access(&self, user: Uuid, needs: &[(Resource, Action)]) -> Result<Access> {
        let version = self.version.get();
        let keys: Vec<String> = needs
            .iter()
            .map(|&(r, a)| self.key(version, user, r, a))
            .collect();
        let cached = self.cached(&keys).await;
        let scopes = try_join_all(needs.iter().zip(cached).map(|(&(r, a), hit)| async move {
            match hit {
                // Stored under the version it was computed at, which is `version` itself.
                Some(scope) => Ok::<_, Error>(scope),
                None => self.compile(user, r, a).await,
            }
        }))
        .await?;
        let mut access = Access::new(user);
        for (&(resource, action), scope) in needs.iter().zip(scopes) {
            access.insert(resource, action, scope);
        }
        Ok(access)
    }

    /// `MGET` of `keys`; every miss (or Redis failing) is `None`.
    async fn cached(&self, keys: &[String]) -> Vec<Option<Scope>> {
        let mut conn = self.redis.clone();
        let fetched: Option<Vec<Option<Vec<u8>>>> = match tokio::time::timeout(
            self.redis_timeout,
            redis::cmd("MGET").arg(keys).query_async(&mut conn),
        )
        .await
        {
            Ok(Ok(values)) => Some(values),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "authorisation cache unavailable; asking the permission service");
                None
            }
            Err(_) => {
                tracing::warn!("authorisation cache timed out; asking the permission service");
                None
            }
        };
        let Some(values) = fetched else {
            return vec![None; keys.len()];
        };
        values
            .into_iter()
            .map(|v| {
                v.and_then(|bytes| pb::CompiledScope::decode(bytes.as_slice()).ok())
                    .and_then(|s| Scope::try_from(s).ok())
            })
            .collect()
    }

    async fn compile(&self, user: Uuid, resource: Resource, action: Action) -> Result<Scope> {
        let answer = self
            .client
            .clone()
            .compile_scope(crate::upstream::permission::request(
                pb::CompileScopeRequest {
                    user_id: user.to_string(),
                    resource: resource.to_pb() as i32,
                    resource_name: resource.as_str().to_string(),
                    action: action.to_pb() as i32,
                },
            ))
            .await
            .map_err(Error::from_status)?
            .into_inner();
        let bytes = answer.encode_to_vec();
        let scope = Scope::try_from(answer).map_err(Error::Api)?;
        self.version.observe(scope.permission_version);
        let key = self.key(scope.permission_version, user, resource, action);
        let mut conn = self.redis.clone();
        let stored = tokio::time::timeout(
            self.redis_timeout,
            redis::cmd("SET")
                .arg(&key)
                .arg(bytes)
                .arg("EX")
                .arg(self.ttl.as_secs().max(1))
                .query_async::<()>(&mut conn),
        )
        .await;
        if !matches!(stored, Ok(Ok(()))) {
            tracing::debug!(%key, "authorisation cache not written");
        }
        Ok(scope)
    }

    /// Asks for the current permission version every `every` until `stop`: the safety net for
    /// missed events (and the only source without Kafka).
    pub async fn poll_version(self, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let answer = self
                .client
                .clone()
                .get_permission_version(pb::GetPermissionVersionRequest {})
                .await;
            match answer {
                Ok(v) => self.version.observe(v.into_inner().permission_version),
                Err(status) => {
                    tracing::debug!(grpc_code = ?status.code(), "permission version poll failed")
                }
            }
        }
    }
}

/// What a route needs: its own action on its resource, which must be granted (else 403 before
/// the handler runs), plus scopes the handler passes on (READ for the record a write returns,
/// ASSIGN for a move, the account READ scope of a contact write). Those may be empty.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub resource: Resource,
    pub action: Action,
    pub also: &'static [(Resource, Action)],
}

pub type PermitFuture = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;

/// Authenticates the caller and, with `needs`, gets their scopes and refuses a route they hold
/// no grant for; then hands the handler their [`Access`].
pub(crate) async fn authorize(
    State(state): State<Security>,
    needs: Option<Needs>,
    request: Request,
    next: Next,
) -> Response {
    use axum::extract::FromRequestParts;
    use axum::response::IntoResponse;
    let (mut parts, body) = request.into_parts();
    let user = match AuthUser::from_request_parts(&mut parts, &state).await {
        Ok(user) => user,
        Err(err) => return err.into_response(),
    };
    let access = match needs {
        Some(needs) => match scoped_access(&state, &user, needs).await {
            Ok(access) => access,
            Err(err) => return err.into_response(),
        },
        None => Access::new(user.user_id),
    };
    // For the audit trail: where the call comes from.
    let client = crate::platform::ClientInfo::from_request_parts(&mut parts, &state).await;
    let access = access.with_origin(crm_access::Origin {
        client_ip: client
            .as_ref()
            .ok()
            .map(|c| c.ip.clone())
            .filter(|ip| !ip.is_empty()),
        user_agent: client
            .ok()
            .map(|c| c.user_agent)
            .filter(|ua| !ua.is_empty()),
        api_client_id: user.client.as_ref().map(|c| c.client_id.clone()),
    });
    // The caller's time zone and language, learnt with their status (see `AuthUser`).
    let access = match parts.extensions.get::<crm_access::Preferences>() {
        Some(&preferences) => access.with_preferences(preferences),
        None => access,
    };
    parts.extensions.insert(access);
    next.run(Request::from_parts(parts, body)).await
}

/// The caller's scopes for a route's [`Needs`]; 403 when its own action is not granted (or the
/// API client's token is not scoped for it).
async fn scoped_access(state: &Security, user: &AuthUser, needs: Needs) -> Result<Access> {
    // An API client's token only works for what the client is scoped to, whatever its roles.
    if let Some(client) = &user.client
        && !client.allows(needs.resource, needs.action)
    {
        return Err(Error::Api(crm_errors::ApiError::new(
            crm_errors::Code::PermissionDenied,
            format!(
                "the token of API client {:?} is not scoped for {}:{}",
                client.client_id, needs.resource, needs.action
            ),
        )));
    }
    let mut wanted = vec![(needs.resource, needs.action)];
    wanted.extend(needs.also.iter().copied());
    let access = state.authz.access(user.user_id, &wanted).await?;
    access
        .scope(needs.resource, needs.action)
        .map_err(Error::Api)?;
    Ok(access)
}
