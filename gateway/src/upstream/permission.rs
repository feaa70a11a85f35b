//! The permission service: sign-in and keys, users, API clients, the organisation, sharing,
//! decisions and the audit trail. The gateway cannot serve the API without it (every route's
//! grant is decided there).

use crm_proto::permission::api_client_service_client::ApiClientServiceClient;
use crm_proto::permission::audit_service_client::AuditServiceClient;
use crm_proto::permission::auth_service_client::AuthServiceClient;
use crm_proto::permission::org_service_client::OrgServiceClient;
use crm_proto::permission::registry_service_client::RegistryServiceClient;
use crm_proto::permission::sharing_service_client::SharingServiceClient;
use crm_proto::permission::user_service_client::UserServiceClient;

use super::{Traced, Upstreams, traced};
use crate::platform::error::Error;

pub use super::{Channel, anonymous as request};

/// The service's name: its key in `services` and the audience of the gateway's call tokens.
pub const SERVICE: &str = "permission";

/// A cheap-to-clone handle on the permission service's APIs; connects on first use.
#[derive(Clone)]
pub struct PermissionService {
    channel: Channel,
}

impl PermissionService {
    /// The permission service's clients; a configuration error when `services.permission` is
    /// unset.
    pub fn new(upstreams: &Upstreams) -> Result<Self, Error> {
        Ok(Self {
            channel: upstreams.channel(SERVICE)?,
        })
    }

    /// The signed channel, for the clients that add nothing to it (authorisation, principals).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn auth(&self) -> AuthServiceClient<Traced> {
        AuthServiceClient::new(traced(self.channel.clone()))
    }

    pub fn users(&self) -> UserServiceClient<Traced> {
        UserServiceClient::new(traced(self.channel.clone()))
    }

    pub fn org(&self) -> OrgServiceClient<Traced> {
        OrgServiceClient::new(traced(self.channel.clone()))
    }

    pub fn sharing(&self) -> SharingServiceClient<Traced> {
        SharingServiceClient::new(traced(self.channel.clone()))
    }

    pub fn api_clients(&self) -> ApiClientServiceClient<Traced> {
        ApiClientServiceClient::new(traced(self.channel.clone()))
    }

    pub fn registry(&self) -> RegistryServiceClient<Traced> {
        RegistryServiceClient::new(traced(self.channel.clone()))
    }

    pub fn audit(&self) -> AuditServiceClient<Traced> {
        AuditServiceClient::new(traced(self.channel.clone()))
    }
}
