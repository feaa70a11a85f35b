//! The use cases of single sign-on ([`Oidc`]): starting a sign-in at a provider, and completing
//! it — the provider's endpoints and keys (HTTP, cached), the ID token verified, the user found
//! or created, the claim rules applied, a session started through [`crate::auth`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use super::domain::{LOGIN_TTL, SSO_FAILED, apply_rules, challenge, random, username_base};
use super::store;
use crate::auth::domain::{ClientInfo, TokenPair};
use crate::auth::service::Auth;
use crate::auth::throttle::throttle_key;
use crate::error::{Error, Result};
use crate::events;
use crate::org::Org;
use crate::settings::{BootstrapUser, OidcProvider};
use crate::users::domain::{NewUser, User, UserStatus};
use crate::users::service::Users;
use crate::validation::truncate_chars;

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A provider's discovered endpoints and keys.
#[derive(Clone)]
struct Discovered {
    doc: Discovery,
    keys: JwkSet,
}

#[derive(Clone)]
pub struct Oidc {
    auth: Auth,
    users: Users,
    org: Org,
    providers: Arc<HashMap<String, OidcProvider>>,
    http: reqwest::Client,
    discovered: Arc<Mutex<HashMap<String, Discovered>>>,
}

fn failed(reason: &str) -> Error {
    tracing::warn!(reason, "single sign-on refused");
    Error::unauthenticated(SSO_FAILED)
}

impl Oidc {
    pub fn new(auth: Auth, users: Users, org: Org, providers: &[OidcProvider]) -> Self {
        Self {
            auth,
            users,
            org,
            providers: Arc::new(
                providers
                    .iter()
                    .map(|p| (p.name.clone(), p.clone()))
                    .collect(),
            ),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            discovered: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn provider(&self, name: &str) -> Result<&OidcProvider> {
        self.providers.get(name).ok_or_else(|| {
            crm_errors::ApiError::not_found(&format!("SSO provider {name:?}")).into()
        })
    }

    /// Discovery and keys, fetched once per provider (again with `refresh`, for a new key).
    async fn discover(&self, provider: &OidcProvider, refresh: bool) -> Result<Discovered> {
        if !refresh && let Some(d) = self.discovered.lock().await.get(&provider.name) {
            return Ok(d.clone());
        }
        let unavailable = |e: reqwest::Error| {
            tracing::warn!(error = %e, provider = %provider.name, "SSO provider unreachable");
            Error::Api(crm_errors::ApiError::unavailable("the SSO provider"))
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            provider.issuer.trim_end_matches('/')
        );
        let doc: Discovery = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        if doc.issuer.trim_end_matches('/') != provider.issuer.trim_end_matches('/') {
            return Err(failed("discovery names another issuer"));
        }
        let keys: JwkSet = self
            .http
            .get(&doc.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        let d = Discovered { doc, keys };
        self.discovered
            .lock()
            .await
            .insert(provider.name.clone(), d.clone());
        Ok(d)
    }

    /// Begins a sign-in: the URL to send the browser to.
    pub async fn start(&self, provider_name: &str) -> Result<(String, String)> {
        let provider = self.provider(provider_name)?;
        let d = self.discover(provider, false).await?;
        let (state, nonce, verifier) = (random()?, random()?, random()?);
        let now = Utc::now();
        let (pool, _) = self.auth.parts();
        {
            let mut conn = pool.acquire().await?;
            store::insert_login(
                &mut conn,
                &state,
                &provider.name,
                &nonce,
                &verifier,
                now,
                now + LOGIN_TTL,
            )
            .await?;
        }
        let mut url = reqwest::Url::parse(&d.doc.authorization_endpoint)
            .map_err(|_| failed("the authorization endpoint is not a URL"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &provider.redirect_uri)
            .append_pair("scope", &provider.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.to_string(), state))
    }

    /// Completes a sign-in started by [`Self::start`]. A refusal is on record as a
    /// `permission.login.failed` event (the reason itself is in the logs).
    #[tracing::instrument(name = "oidc callback", skip_all, fields(provider = provider_name))]
    pub async fn callback(
        &self,
        provider_name: &str,
        code: &str,
        state: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let outcome = self.complete(provider_name, code, state, client).await;
        if let Err(Error::Api(api)) = &outcome
            && api.code == crm_errors::Code::Unauthenticated
        {
            let (pool, outbox) = self.auth.parts();
            let mut tx = pool.begin().await?;
            events::enqueue(
                outbox,
                &mut tx,
                "permission.login.failed",
                format!("oidc:{}", truncate_chars(provider_name, 64)),
                serde_json::json!({
                    "username": null,
                    "user_id": null,
                    "reason": "sso_refused",
                    "method": format!("oidc:{}", truncate_chars(provider_name, 64)),
                    "client_ip": client.ip,
                    "user_agent": client.user_agent,
                }),
            )
            .await?;
            tx.commit().await?;
            outbox.notify_committed();
        }
        outcome
    }

    async fn complete(
        &self,
        provider_name: &str,
        code: &str,
        state: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let provider = self.provider(provider_name)?;
        let (pool, _) = self.auth.parts();
        // Single use: taken whether or not the rest succeeds.
        let started = {
            let mut conn = pool.acquire().await?;
            store::take_login(&mut conn, state, &provider.name).await?
        };
        let Some((nonce, verifier, expires_at)) = started else {
            return Err(failed("unknown, used or foreign state"));
        };
        if expires_at < Utc::now() {
            return Err(failed("the sign-in took too long"));
        }
        let d = self.discover(provider, false).await?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: String,
        }
        let answer = self
            .http
            .post(&d.doc.token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", provider.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
                ("client_id", provider.client_id.as_str()),
                ("client_secret", provider.client_secret.expose_secret()),
            ])
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "SSO token endpoint unreachable");
                Error::Api(crm_errors::ApiError::unavailable("the SSO provider"))
            })?;
        if !answer.status().is_success() {
            return Err(failed("the code was refused"));
        }
        let answer: TokenAnswer = answer.json().await.map_err(|_| failed("no id_token"))?;
        let claims = self.verify(provider, &answer.id_token, &nonce).await?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| failed("no sub"))?
            .to_string();
        let user = self.user_for(provider, &subject, &claims).await?;
        if user.status != UserStatus::Active {
            return Err(failed("the user is disabled"));
        }
        let (roles, department) = apply_rules(provider, &claims);
        crate::seed::ensure_bootstrap_org(
            &self.org,
            &[BootstrapUser {
                username: user.username.clone(),
                password: secrecy::SecretString::from(String::new()),
                display_name: user.display_name.clone(),
                roles,
                department,
            }],
        )
        .await?;
        let key = throttle_key(&user.username);
        self.auth
            .login_succeeded(&key, user, client, &format!("oidc:{}", provider.name))
            .await
    }

    /// Verifies the ID token; a key the provider has rotated in is fetched once more.
    async fn verify(&self, provider: &OidcProvider, token: &str, nonce: &str) -> Result<Value> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| failed("malformed id_token"))?;
        let mut refreshed = false;
        loop {
            let d = self.discover(provider, refreshed).await?;
            let jwk = match &header.kid {
                Some(kid) => d.keys.find(kid),
                None => d.keys.keys.first(),
            };
            let Some(jwk) = jwk else {
                if refreshed {
                    return Err(failed("unknown key"));
                }
                refreshed = true;
                continue;
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|_| failed("unusable key"))?;
            if matches!(
                header.alg,
                jsonwebtoken::Algorithm::HS256
                    | jsonwebtoken::Algorithm::HS384
                    | jsonwebtoken::Algorithm::HS512
            ) {
                return Err(failed("symmetric id_token"));
            }
            let mut validation = Validation::new(header.alg);
            validation.set_issuer(&[d.doc.issuer.as_str()]);
            validation.set_audience(&[provider.client_id.as_str()]);
            validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            validation.leeway = 60;
            let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
                .map_err(|e| failed(&format!("id_token: {e}")))?;
            if data.claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
                return Err(failed("nonce mismatch"));
            }
            return Ok(data.claims);
        }
    }

    /// The user linked to `(provider, sub)`, created just in time on first sign-in.
    async fn user_for(
        &self,
        provider: &OidcProvider,
        subject: &str,
        claims: &Value,
    ) -> Result<User> {
        let (pool, _) = self.auth.parts();
        let linked = {
            let mut conn = pool.acquire().await?;
            store::find_identity(&mut conn, &provider.name, subject).await?
        };
        if let Some(id) = linked {
            return self.users.get_user(id).await;
        }
        if !provider.create_users {
            return Err(failed("no user for this identity and creation is off"));
        }
        let base = username_base(claims, &provider.username_claim, subject);
        let display_name = claims
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&base)
            .chars()
            .take(100)
            .collect::<String>();
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| crm_errors::validation::is_email(e))
            .map(String::from);
        for attempt in 0..5 {
            let username = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}.{}", &random()?[..6].to_lowercase())
            };
            let mut tx = pool.begin().await?;
            let new = NewUser {
                username,
                display_name: display_name.clone(),
                email: email.clone(),
                password: None,
            };
            let user = match self.users.insert_in(&mut tx, new, None).await {
                Err(Error::Api(api)) if api.code == crm_errors::Code::AlreadyExists => continue,
                other => other?,
            };
            let linked = store::link_identity(&mut tx, &provider.name, subject, user.id).await?;
            if linked == 0 {
                // A concurrent first sign-in of the same identity won: use its user.
                tx.rollback().await?;
                return Box::pin(self.user_for(provider, subject, claims)).await;
            }
            tx.commit().await?;
            tracing::info!(user_id = %user.id, provider = %provider.name, "SSO user created");
            return Ok(user);
        }
        Err(failed("no free username"))
    }
}
