//! The gRPC client of the permission service (sign-in and keys, for now).

use std::time::Duration;

use crm_grpc::TracePropagation;
use crm_proto::permission::auth_service_client::AuthServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::error::Error;
use crate::observability;

pub type AuthClient = AuthServiceClient<InterceptedService<Channel, TracePropagation>>;

/// A cheap-to-clone handle on the permission service; connects on first use.
#[derive(Clone)]
pub struct PermissionService {
    auth: AuthClient,
    channel: Channel,
}

impl PermissionService {
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<Self, Error> {
        let channel = crate::customer::lazy_channel("services.permission", url, timeout)?;
        Ok(Self {
            auth: AuthServiceClient::with_interceptor(channel.clone(), TracePropagation),
            channel,
        })
    }

    /// The shared channel, for the other clients of this service.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn auth(&self) -> AuthClient {
        self.auth.clone()
    }
}

/// A gRPC request carrying the request id (there is no caller yet: these calls sign one in).
pub fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(id) = observability::current_request_id()
        && let Ok(value) = MetadataValue::try_from(id)
    {
        request.metadata_mut().insert("x-request-id", value);
    }
    request
}
