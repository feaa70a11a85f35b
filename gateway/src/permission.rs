//! The gRPC clients of the permission service: sign-in and keys, users, the organisation,
//! sharing and the audit trail. Every call is signed by the gateway ([`SignCalls`], ADR 0012)
//! and carries the W3C trace context ([`TracePropagation`]), so a request's trace continues
//! into the permission service.

use std::sync::Arc;

use crm_grpc::TracePropagation;
use crm_grpc::balance::{BalanceOptions, BalancedChannel};
use crm_identity::{SignCalls, Signer};
use crm_proto::permission::audit_service_client::AuditServiceClient;
use crm_proto::permission::auth_service_client::AuthServiceClient;
use crm_proto::permission::org_service_client::OrgServiceClient;
use crm_proto::permission::sharing_service_client::SharingServiceClient;
use crm_proto::permission::user_service_client::UserServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;

use crate::error::Error;
use crate::observability;

/// The service's principal name: the audience of the gateway's call tokens.
pub const AUDIENCE: &str = "permission";

/// A channel whose calls the gateway signs.
pub type Channel = SignCalls<BalancedChannel>;
/// A signed channel whose calls carry the trace context.
pub type Traced = InterceptedService<Channel, TracePropagation>;
pub type AuthClient = AuthServiceClient<Traced>;

/// A cheap-to-clone handle on the permission service; connects on first use.
#[derive(Clone)]
pub struct PermissionService {
    auth: AuthClient,
    channel: Channel,
}

impl PermissionService {
    pub fn connect_lazy(
        endpoints: &str,
        options: &BalanceOptions,
        signer: Arc<Signer>,
    ) -> Result<Self, Error> {
        let channel = SignCalls::new(
            crate::customer::lazy_channel("services.permission", endpoints, options)?,
            signer,
            AUDIENCE,
        );
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

    pub fn users(&self) -> UserServiceClient<Traced> {
        UserServiceClient::with_interceptor(self.channel.clone(), TracePropagation)
    }

    pub fn org(&self) -> OrgServiceClient<Traced> {
        OrgServiceClient::with_interceptor(self.channel.clone(), TracePropagation)
    }

    pub fn sharing(&self) -> SharingServiceClient<Traced> {
        SharingServiceClient::with_interceptor(self.channel.clone(), TracePropagation)
    }

    pub fn audit(&self) -> AuditServiceClient<Traced> {
        AuditServiceClient::with_interceptor(self.channel.clone(), TracePropagation)
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
