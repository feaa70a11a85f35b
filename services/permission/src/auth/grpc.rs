//! The gRPC edge of sign-in: `crm.permission.v1.AuthService` — passwords, refresh, logout,
//! API clients' credentials, single sign-on ([`crate::oidc`], whose two RPCs belong to this
//! service) and the key set ([`crate::keys`]). Converts wire types into validated values and
//! results back. Passwords and tokens go straight into `SecretString`s and are never logged.

use crm_proto::permission as pb;
use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response};

use super::domain::{ClientInfo, TokenPair};
use super::service::Auth;
use crate::oidc::service::Oidc;
use crate::validation::Violations;
use crate::wire::GrpcResult;

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

fn required_secret(v: &mut Violations, field: &str, value: String) -> SecretString {
    if value.is_empty() {
        v.add(field, "must not be empty");
    }
    SecretString::from(value)
}

pub struct AuthApi {
    auth: Auth,
    oidc: Oidc,
}

impl AuthApi {
    pub fn new(auth: Auth, oidc: Oidc) -> Self {
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
        let password = required_secret(&mut v, "password", r.password);
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
        let secret = required_secret(&mut v, "client_secret", r.client_secret);
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
        let token = required_secret(&mut v, "refresh_token", r.refresh_token);
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
