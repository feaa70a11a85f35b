//! The gRPC edge of the registry: `crm.permission.v1.RegistryService`.

use crm_proto::permission as pb;
use tonic::{Request, Response, Status};

use super::domain::{RegisteredField, RegisteredResource};
use super::service::Registry;

pub struct RegistryApi {
    registry: Registry,
}

impl RegistryApi {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

impl From<RegisteredField> for pb::RegisteredField {
    fn from(f: RegisteredField) -> Self {
        pb::RegisteredField {
            name: f.name,
            kind: f.kind,
            governed: f.governed,
            condition: f.condition,
            built_in: f.built_in,
            active: f.active,
        }
    }
}

impl From<RegisteredResource> for pb::RegisteredResource {
    fn from(r: RegisteredResource) -> Self {
        pb::RegisteredResource {
            name: r.name,
            owner: r.owner,
            declared_at: r.declared_at.map(crate::wire::timestamp),
            fields: r.fields.into_iter().map(Into::into).collect(),
        }
    }
}

#[tonic::async_trait]
impl pb::registry_service_server::RegistryService for RegistryApi {
    /// Needs organisation READ (what an administrator's field-rule editor reads).
    async fn list_resources(
        &self,
        request: Request<pb::ListResourcesRequest>,
    ) -> Result<Response<pb::ListResourcesResponse>, Status> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Read, async move {
            let resources = self.registry.list().await?;
            Ok(Response::new(pb::ListResourcesResponse {
                resources: resources.into_iter().map(Into::into).collect(),
            }))
        })
        .await
    }
}
