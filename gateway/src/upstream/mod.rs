//! What the gateway calls: the services over gRPC and Redis.
//!
//! [`Upstreams`] holds one [`BalancedChannel`] per service named in the `services` settings map.
//! Each spreads calls over every SERVING replica (the endpoint list, or every address a headless
//! Service's name resolves to) and connects lazily, so the gateway starts while services are
//! still down; calls made while no replica answers fail as `unavailable` (503). Every call
//! carries:
//! - the gateway's signature over the call and the caller's access context ([`SignCalls`],
//!   ADR 0012): services refuse calls that lack one;
//! - the W3C trace context of the request span (the [`TracePropagation`] interceptor);
//! - the caller's [`Access`] in `crm-access-bin`: who they are and their scopes (see
//!   `security::authz`), when made with [`request`];
//! - the request id in `x-request-id`, so service logs can be joined with the gateway's.
//!
//! A domain asks for the channel of the service it needs by name ([`Upstreams::channel`]); a
//! service the settings do not name stops the gateway at start-up.

pub mod customer;
pub mod fields;
pub mod permission;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crm_access::Access;
use crm_grpc::balance::BalanceOptions;
use crm_identity::Signer;
use crm_settings::RedisSettings;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tonic::metadata::MetadataValue;

use crate::platform::error::Error;
use crate::platform::observability;

pub use crm_grpc::upstream::{Channel, Traced, traced};

const REQUEST_ID_METADATA: &str = "x-request-id";

/// One signed, balanced channel per configured service (`crm_grpc::upstream`), with the
/// gateway's errors. Cheap to clone.
#[derive(Clone)]
pub struct Upstreams(crm_grpc::upstream::Upstreams);

impl Upstreams {
    /// A lazy channel for every entry of `services` (name → endpoints), each signing its calls
    /// for that name as the audience.
    pub fn new(
        services: &BTreeMap<String, String>,
        options: &BalanceOptions,
        signer: Arc<Signer>,
    ) -> Result<Self, Error> {
        crm_grpc::upstream::Upstreams::new(services, options, signer)
            .map(Self)
            .map_err(|e| Error::Config(e.to_string()))
    }

    /// The channel to `service`; a configuration error when `services.<service>` is not set.
    pub fn channel(&self, service: &str) -> Result<Channel, Error> {
        self.0
            .channel(service)
            .map_err(|e| Error::Config(e.to_string()))
    }

    /// The configured service names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.names()
    }
}

/// A gRPC request made on behalf of the caller holding `access` within the current request
/// (their access context and the request id in the metadata).
pub fn request<T>(message: T, access: &Access) -> tonic::Request<T> {
    let mut request = anonymous(message);
    access.to_metadata(request.metadata_mut());
    request
}

/// The answer of a unary call converted to the API's type: a gRPC error becomes its problem, an
/// answer the API cannot represent an internal error (a bug in the service).
pub async fn reply<R, T>(
    call: impl Future<Output = Result<tonic::Response<R>, tonic::Status>>,
) -> Result<T, Error>
where
    T: TryFrom<R>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let answer = call.await.map_err(Error::from_status)?;
    T::try_from(answer.into_inner()).map_err(Error::internal)
}

/// A gRPC request carrying only the request id: sign-in calls, made before there is a caller.
pub fn anonymous<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(id) = observability::current_request_id()
        && let Ok(value) = MetadataValue::try_from(id)
    {
        request.metadata_mut().insert(REQUEST_ID_METADATA, value);
    }
    request
}

/// A Redis connection that connects on first use (the gateway starts without Redis), the bound
/// on each command and the prefix of every key. Clones share one multiplexed connection.
#[derive(Clone)]
pub struct Redis {
    pub conn: ConnectionManager,
    pub timeout: Duration,
    pub key_prefix: String,
}

impl Redis {
    pub fn lazy(settings: &RedisSettings) -> Result<Self, Error> {
        let client =
            crm_cache::connect::client(settings).map_err(|e| Error::Config(e.to_string()))?;
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| Error::Config(format!("redis: {e}")))?;
        Ok(Self {
            conn,
            timeout,
            key_prefix: settings.key_prefix.clone(),
        })
    }
}
