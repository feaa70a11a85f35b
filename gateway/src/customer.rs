//! The gRPC client of the customer service.
//!
//! One [`BalancedChannel`] is shared by all requests: it spreads calls over every SERVING replica
//! (the endpoint list, or every address a headless Service's name resolves to), connects lazily so
//! the gateway starts even while the service is still down, and calls made while no replica
//! answers fail as `unavailable` (503). Every call carries:
//! - the gateway's signature over the call and the caller's access context ([`SignCalls`],
//!   ADR 0012): services refuse calls that lack one;
//! - the W3C trace context of the request span (the [`TracePropagation`] interceptor);
//! - the caller's [`Access`] in `crm-access-bin`: who they are and their scopes (see `authz`);
//! - the request id in `x-request-id`, so service logs can be joined with the gateway's.

use std::sync::Arc;

use crm_grpc::TracePropagation;
use crm_grpc::balance::{BalanceOptions, BalancedChannel};
use crm_identity::{SignCalls, Signer};
use crm_proto::customer::customer_service_client::CustomerServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;

use crate::error::Error;
use crate::observability;
use crm_access::Access;

const REQUEST_ID_METADATA: &str = "x-request-id";
/// The service's principal name: the audience of the gateway's call tokens.
pub const AUDIENCE: &str = "customer";

pub type Client =
    CustomerServiceClient<InterceptedService<SignCalls<BalancedChannel>, TracePropagation>>;

/// A cheap-to-clone handle on the customer service.
#[derive(Clone)]
pub struct CustomerService {
    client: Client,
}

impl CustomerService {
    /// A client for the replicas behind `endpoints` that connects on first use.
    pub fn connect_lazy(
        endpoints: &str,
        options: &BalanceOptions,
        signer: Arc<Signer>,
    ) -> Result<Self, Error> {
        let channel = SignCalls::new(
            lazy_channel("services.customer", endpoints, options)?,
            signer,
            AUDIENCE,
        );
        Ok(Self {
            client: CustomerServiceClient::with_interceptor(channel, TracePropagation),
        })
    }

    /// The generated client (clones share the channel).
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// A channel over the replicas behind `endpoints` (the value of setting `setting`) that connects
/// on first use. Shared by every service client of the gateway.
pub fn lazy_channel(
    setting: &str,
    endpoints: &str,
    options: &BalanceOptions,
) -> Result<BalancedChannel, Error> {
    BalancedChannel::new(endpoints, options.clone())
        .map_err(|e| Error::Config(format!("{setting}: {e}")))
}

/// A gRPC request to any service, made on behalf of the caller holding `access` within the
/// current request (their access context and the request id in the metadata).
pub fn request<T>(message: T, access: &Access) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    access.to_metadata(metadata);
    if let Some(id) = observability::current_request_id()
        && let Ok(value) = MetadataValue::try_from(id)
    {
        metadata.insert(REQUEST_ID_METADATA, value);
    }
    request
}
