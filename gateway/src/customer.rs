//! The gRPC client of the customer service.
//!
//! One lazily connected [`Channel`] is shared by all requests (tonic multiplexes calls over
//! HTTP/2 and reconnects on its own), so the gateway starts even while the service is still
//! down; calls made meanwhile fail as `unavailable` (503). Every call carries:
//! - the W3C trace context of the request span (the [`TracePropagation`] interceptor);
//! - the caller's [`Access`] in `crm-access-bin`: who they are and their scopes (see `authz`);
//! - the request id in `x-request-id`, so service logs can be joined with the gateway's.

use std::time::Duration;

use crm_grpc::TracePropagation;
use crm_proto::customer::customer_service_client::CustomerServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::error::Error;
use crate::observability;
use crm_access::Access;

const REQUEST_ID_METADATA: &str = "x-request-id";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

pub type Client = CustomerServiceClient<InterceptedService<Channel, TracePropagation>>;

/// A cheap-to-clone handle on the customer service.
#[derive(Clone)]
pub struct CustomerService {
    client: Client,
}

impl CustomerService {
    /// A client for `url` that connects on first use; `timeout` bounds each call.
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, Error> {
        let channel = lazy_channel("services.customer", url, timeout)?;
        Ok(Self {
            client: CustomerServiceClient::with_interceptor(channel, TracePropagation),
        })
    }

    /// The generated client (clones share the channel).
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

/// A channel to `url` (the value of setting `setting`) that connects on first use; `timeout`
/// bounds each call. Shared by every service client of the gateway.
pub fn lazy_channel(setting: &str, url: &str, timeout: Duration) -> Result<Channel, Error> {
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::Config(format!("{setting} {url:?}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .connect_lazy())
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
