//! The gRPC edge of API clients: `crm.permission.v1.ApiClientService`. Converts wire types into
//! validated domain values and results back; a new or rotated secret is shown here once. Who may
//! call what is checked here ([`crate::actor`]): a user needs the `organisation` grant for the
//! action (READ, or UPDATE for the read before a change; CREATE; UPDATE), and the events name
//! them as the actor.

use crm_proto::permission as pb;
use secrecy::ExposeSecret;
use tonic::{Request, Response, Status};

use super::domain::{ApiClient, NewApiClient, WithSecret};
use super::service::ApiClients;
use crate::users::grpc::status;
use crate::validation::Violations;
use crate::wire::{GrpcResult, timestamp};

impl From<ApiClient> for pb::ApiClient {
    fn from(c: ApiClient) -> Self {
        pb::ApiClient {
            id: c.id.to_string(),
            client_id: c.client_id,
            name: c.name,
            scopes: c.scopes,
            requests_per_window: c.requests_per_window,
            status: pb::UserStatus::from(c.status) as i32,
            version: c.version,
            created_at: Some(timestamp(c.created_at)),
            updated_at: Some(timestamp(c.updated_at)),
        }
    }
}

impl From<WithSecret> for pb::CreatedApiClient {
    fn from(w: WithSecret) -> Self {
        pb::CreatedApiClient {
            client: Some(w.client.into()),
            client_secret: w.secret.expose_secret().to_string(),
        }
    }
}

pub struct ApiClientApi {
    clients: ApiClients,
}

impl ApiClientApi {
    pub fn new(clients: ApiClients) -> Self {
        Self { clients }
    }
}

fn client_key(raw: &str) -> Result<String, Status> {
    if raw.trim().is_empty() {
        let mut v = Violations::default();
        v.add("id", "must not be empty");
        v.into_result()?;
    }
    Ok(raw.trim().to_string())
}

#[tonic::async_trait]
impl pb::api_client_service_server::ApiClientService for ApiClientApi {
    async fn create_api_client(
        &self,
        request: Request<pb::CreateApiClientRequest>,
    ) -> GrpcResult<pb::CreatedApiClient> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Create, async move {
            let r = request.into_inner();
            let new = NewApiClient::parse(&r.client_id, &r.name, &r.scopes, r.requests_per_window)?;
            Ok(Response::new(self.clients.create(new).await?.into()))
        })
        .await
    }

    async fn get_api_client(
        &self,
        request: Request<pb::GetApiClientRequest>,
    ) -> GrpcResult<pb::ApiClient> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped_any(
            caller,
            &[crm_access::Action::Read, crm_access::Action::Update],
            async move {
                let key = client_key(&request.get_ref().id)?;
                Ok(Response::new(self.clients.get(&key).await?.into()))
            },
        )
        .await
    }

    async fn rotate_api_client_secret(
        &self,
        request: Request<pb::RotateApiClientSecretRequest>,
    ) -> GrpcResult<pb::CreatedApiClient> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let key = client_key(&request.get_ref().id)?;
            Ok(Response::new(
                self.clients.rotate_secret(&key).await?.into(),
            ))
        })
        .await
    }

    async fn set_api_client_status(
        &self,
        request: Request<pb::SetApiClientStatusRequest>,
    ) -> GrpcResult<pb::ApiClient> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let key = client_key(&r.id)?;
            let mut v = Violations::default();
            let status = status(&mut v, "status", r.status);
            v.into_result()?;
            Ok(Response::new(
                self.clients.set_status(&key, status).await?.into(),
            ))
        })
        .await
    }
}
