//! The gRPC edge: `crm.permission.v1.AuthService` and `UserService`. Converts wire types into
//! validated domain values (all violations of a request reported at once) and domain results
//! back. Passwords and tokens go straight into `SecretString`s and are never logged.

use crm_proto::permission as pb;
use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::clients::{ApiClient, ApiClients, NewApiClient, WithSecret};
use crate::domain::{
    NewUser, OrgSettings, OrgSettingsPatch, ProfilePatch, User, UserStatus, Violations,
};
use crate::service::{Auth, ClientInfo, TokenPair, Users};

type GrpcResult<T> = Result<Response<T>, Status>;

pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

impl From<UserStatus> for pb::UserStatus {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Active => pb::UserStatus::Active,
            UserStatus::Disabled => pb::UserStatus::Disabled,
        }
    }
}

/// A user as answered: with the values that apply to them (their own, else `org`'s).
fn user_pb(u: User, org: &OrgSettings) -> pb::User {
    let effective = u.effective(org);
    pb::User {
        id: u.id.to_string(),
        username: u.username,
        display_name: u.display_name,
        email: u.email.unwrap_or_default(),
        status: pb::UserStatus::from(u.status) as i32,
        version: u.version,
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
        time_zone: u
            .time_zone
            .map(|tz| tz.name().to_string())
            .unwrap_or_default(),
        locale: u.locale.map(|l| l.as_str().to_string()).unwrap_or_default(),
        effective_time_zone: effective.time_zone.name().to_string(),
        effective_locale: effective.locale.as_str().to_string(),
    }
}

impl From<OrgSettings> for pb::OrgSettings {
    fn from(s: OrgSettings) -> Self {
        pb::OrgSettings {
            default_time_zone: s.default_time_zone.name().to_string(),
            default_locale: s.default_locale.as_str().to_string(),
            version: s.version,
            updated_at: Some(timestamp(s.updated_at)),
        }
    }
}

impl From<TokenPair> for pb::TokenPair {
    fn from(p: TokenPair) -> Self {
        pb::TokenPair {
            access_token: p.access_token,
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
            refresh_token: p.refresh_token.expose_secret().to_string(),
            refresh_expires_in: p.refresh_expires_in,
            user_id: p.user_id.to_string(),
        }
    }
}

impl Violations {
    /// A status to set: UNSPECIFIED and unknown numbers are violations.
    fn status(&mut self, field: &str, raw: i32) -> UserStatus {
        match pb::UserStatus::try_from(raw) {
            Ok(pb::UserStatus::Active) => UserStatus::Active,
            Ok(pb::UserStatus::Disabled) => UserStatus::Disabled,
            Ok(pb::UserStatus::Unspecified) | Err(_) => {
                self.add(field, "must be USER_STATUS_ACTIVE or USER_STATUS_DISABLED");
                UserStatus::Active
            }
        }
    }

    fn required_secret(&mut self, field: &str, value: String) -> SecretString {
        if value.is_empty() {
            self.add(field, "must not be empty");
        }
        SecretString::from(value)
    }
}

fn parse_id(raw: &str) -> Result<Uuid, Status> {
    let mut v = Violations::default();
    let id = v.uuid("id", raw).unwrap_or_default();
    v.into_result()?;
    Ok(id)
}

pub struct AuthApi {
    auth: Auth,
    oidc: crate::oidc::Oidc,
}

impl AuthApi {
    pub fn new(auth: Auth, oidc: crate::oidc::Oidc) -> Self {
        Self { auth, oidc }
    }
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthApi {
    async fn login(&self, request: Request<pb::LoginRequest>) -> GrpcResult<pb::TokenPair> {
        let r = request.into_inner();
        let client = ClientInfo::new(&r.client_ip, &r.user_agent);
        // Empty fields are malformed requests, not sign-in attempts: refusing them says nothing
        // about any user.
        let mut v = Violations::default();
        if r.username.trim().is_empty() {
            v.add("username", "must not be empty");
        }
        let password = v.required_secret("password", r.password);
        v.into_result()?;
        let pair = self.auth.login(&r.username, password, &client).await?;
        Ok(Response::new(pair.into()))
    }

    async fn client_credentials(
        &self,
        request: Request<pb::ClientCredentialsRequest>,
    ) -> GrpcResult<pb::ClientToken> {
        let r = request.into_inner();
        let client = ClientInfo::new(&r.client_ip, &r.user_agent);
        let mut v = Violations::default();
        if r.client_id.trim().is_empty() {
            v.add("client_id", "must not be empty");
        }
        let secret = v.required_secret("client_secret", r.client_secret);
        v.into_result()?;
        let token = self
            .auth
            .client_credentials(&r.client_id, secret, &r.scope, &client)
            .await?;
        Ok(Response::new(pb::ClientToken {
            access_token: token.access_token,
            token_type: "Bearer".into(),
            expires_in: token.expires_in,
            scope: token.scope,
        }))
    }

    async fn oidc_start(
        &self,
        request: Request<pb::OidcStartRequest>,
    ) -> GrpcResult<pb::OidcStartResponse> {
        let (authorization_url, state) = self.oidc.start(&request.get_ref().provider).await?;
        Ok(Response::new(pb::OidcStartResponse {
            authorization_url,
            state,
        }))
    }

    async fn oidc_callback(
        &self,
        request: Request<pb::OidcCallbackRequest>,
    ) -> GrpcResult<pb::TokenPair> {
        let r = request.into_inner();
        let client = ClientInfo::new(&r.client_ip, &r.user_agent);
        let mut v = Violations::default();
        for (field, value) in [("code", &r.code), ("state", &r.state)] {
            if value.is_empty() {
                v.add(field, "must not be empty");
            }
        }
        v.into_result()?;
        let pair = self
            .oidc
            .callback(&r.provider, &r.code, &r.state, &client)
            .await?;
        Ok(Response::new(pair.into()))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> GrpcResult<pb::TokenPair> {
        let r = request.into_inner();
        let client = ClientInfo::new(&r.client_ip, &r.user_agent);
        let mut v = Violations::default();
        let token = v.required_secret("refresh_token", r.refresh_token);
        v.into_result()?;
        Ok(Response::new(
            self.auth.refresh(token, &client).await?.into(),
        ))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> GrpcResult<pb::LogoutResponse> {
        let r = request.into_inner();
        if !r.refresh_token.is_empty() {
            self.auth
                .logout(SecretString::from(r.refresh_token))
                .await?;
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_jwks(&self, _: Request<pb::GetJwksRequest>) -> GrpcResult<pb::Jwks> {
        let json = self.auth.keys().jwks().await?;
        Ok(Response::new(pb::Jwks { json }))
    }
}

pub struct UserApi {
    users: Users,
}

impl UserApi {
    pub fn new(users: Users) -> Self {
        Self { users }
    }

    /// The answer for `user`, with its effective time zone and language.
    async fn answer(&self, user: User) -> GrpcResult<pb::User> {
        let org = self.users.org_settings().await?;
        Ok(Response::new(user_pb(user, &org)))
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for UserApi {
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> GrpcResult<pb::User> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        crate::actor::scoped(caller, crm_access::Action::Create, async move {
            let r = request.into_inner();
            let new = NewUser::parse(&r.username, &r.display_name, &r.email, &r.password)?;
            self.answer(self.users.create_user(new).await?).await
        })
        .await
    }

    /// The gateway asks as itself (a token's user still active?); a user may read their own
    /// record; reading anyone else's needs an organisation grant (READ, or UPDATE for the read
    /// before a change).
    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> GrpcResult<pb::User> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        let id = parse_id(&request.get_ref().id)?;
        crate::actor::scoped_or_self(
            caller,
            id,
            &[crm_access::Action::Read, crm_access::Action::Update],
            async move { self.answer(self.users.get_user(id).await?).await },
        )
        .await
    }

    async fn set_user_status(
        &self,
        request: Request<pb::SetUserStatusRequest>,
    ) -> GrpcResult<pb::User> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.uuid("id", &r.id).unwrap_or_default();
            let status = v.status("status", r.status);
            let expected = v.version("expected_version", r.expected_version);
            v.into_result()?;
            self.answer(self.users.set_status(id, status, expected).await?)
                .await
        })
        .await
    }

    async fn update_user_profile(
        &self,
        request: Request<pb::UpdateUserProfileRequest>,
    ) -> GrpcResult<pb::User> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = v.uuid("id", &r.id);
        let expected = v.version("expected_version", r.expected_version);
        // Every bad field in one answer: the id and version first, then the profile's own.
        let patch = match ProfilePatch::parse(
            r.display_name.as_deref(),
            r.time_zone.as_deref(),
            r.locale.as_deref(),
        ) {
            Ok(patch) => Some(patch),
            Err(err) => {
                v.extend(err.violations);
                None
            }
        };
        // Without a valid id there is nobody to authorise against: report the input. With one,
        // who may change the profile is decided before the input is judged, so a caller who may
        // not learns nothing from the answer.
        let Some(id) = id else {
            v.into_result()?;
            return Err(Status::internal(
                "unreachable: an invalid id is a violation",
            ));
        };
        crate::actor::scoped_or_self(caller, id, &[crm_access::Action::Update], async move {
            v.into_result()?;
            let patch = patch.unwrap_or_default();
            self.answer(self.users.update_profile(id, patch, expected).await?)
                .await
        })
        .await
    }

    async fn get_org_settings(
        &self,
        request: Request<pb::GetOrgSettingsRequest>,
    ) -> GrpcResult<pb::OrgSettings> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        // READ, or UPDATE for the read before a change.
        crate::actor::scoped_any(
            caller,
            &[crm_access::Action::Read, crm_access::Action::Update],
            async move { Ok(Response::new(self.users.org_settings().await?.into())) },
        )
        .await
    }

    async fn update_org_settings(
        &self,
        request: Request<pb::UpdateOrgSettingsRequest>,
    ) -> GrpcResult<pb::OrgSettings> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let expected = v.version("expected_version", r.expected_version);
            let patch = match OrgSettingsPatch::parse(
                r.default_time_zone.as_deref(),
                r.default_locale.as_deref(),
            ) {
                Ok(patch) => Some(patch),
                Err(err) => {
                    v.extend(err.violations);
                    None
                }
            };
            v.into_result()?;
            let settings = self
                .users
                .update_org_settings(patch.unwrap_or_default(), expected)
                .await?;
            Ok(Response::new(settings.into()))
        })
        .await
    }

    async fn set_password(
        &self,
        request: Request<pb::SetPasswordRequest>,
    ) -> GrpcResult<pb::SetPasswordResponse> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let id = v.uuid("id", &r.id).unwrap_or_default();
        let password = v.password("password", &r.password);
        v.into_result()?;
        self.users.set_password(id, password).await?;
        Ok(Response::new(pb::SetPasswordResponse {}))
    }
}

// --- API clients ------------------------------------------------------------------------------

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
        let r = request.into_inner();
        let new = NewApiClient::parse(&r.client_id, &r.name, &r.scopes, r.requests_per_window)?;
        Ok(Response::new(self.clients.create(new).await?.into()))
    }

    async fn get_api_client(
        &self,
        request: Request<pb::GetApiClientRequest>,
    ) -> GrpcResult<pb::ApiClient> {
        let key = client_key(&request.get_ref().id)?;
        Ok(Response::new(self.clients.get(&key).await?.into()))
    }

    async fn rotate_api_client_secret(
        &self,
        request: Request<pb::RotateApiClientSecretRequest>,
    ) -> GrpcResult<pb::CreatedApiClient> {
        let key = client_key(&request.get_ref().id)?;
        Ok(Response::new(
            self.clients.rotate_secret(&key).await?.into(),
        ))
    }

    async fn set_api_client_status(
        &self,
        request: Request<pb::SetApiClientStatusRequest>,
    ) -> GrpcResult<pb::ApiClient> {
        let r = request.into_inner();
        let key = client_key(&r.id)?;
        let mut v = Violations::default();
        let status = v.status("status", r.status);
        v.into_result()?;
        Ok(Response::new(
            self.clients.set_status(&key, status).await?.into(),
        ))
    }
}
