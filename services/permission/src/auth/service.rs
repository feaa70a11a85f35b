//! The use cases of sign-in ([`Auth`]): password sign-in with throttling, refresh with
//! rotation and reuse detection, logout, API clients' client credentials, and the periodic
//! purge; plus the revocation of a user's sessions that disabling and password changes use.
//!
//! Every write is one transaction together with its outbox event; after commit the relay is
//! woken. Whatever changes a user's credentials or status (disable, password change) revokes the
//! user's refresh tokens in the same transaction, and token issuing locks the user row
//! (`FOR SHARE`) and re-checks it, so a session cannot slip past a concurrent disable or
//! password change.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_events::outbox::Outbox;
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{
    ClientInfo, ClientToken, LoginFailure, MAX_LOGGED_USERNAME, RevokeReason, TokenPair,
};
use super::store;
use super::throttle::{Admission, Lockout, throttle_key};
use super::tokens::{self, AccessClaims};
use crate::clients::domain::{
    INVALID_CLIENT, MAX_CLIENT_ID, granted_scopes, secret_hash, service_username,
};
use crate::error::{Error, INVALID_CREDENTIALS, INVALID_REFRESH, Result};
use crate::keys::{KeyRing, Signer};
use crate::password::{Passwords, Verified};
use crate::settings::{AuthSettings, secs};
use crate::users::domain::{User, UserStatus};
use crate::validation::truncate_chars;
use crate::{clients, events, oidc, users};

/// Revokes every live refresh token of a user, with one `permission.session.revoked` event when
/// there were any.
pub(crate) async fn revoke_user_sessions(
    outbox: &Outbox,
    tx: &mut PgConnection,
    user_id: Uuid,
    reason: RevokeReason,
    at: DateTime<Utc>,
) -> Result<()> {
    let sessions = store::revoke_user(tx, user_id, reason.as_str(), at).await?;
    if !sessions.is_empty() {
        session_revoked(outbox, tx, user_id, &sessions, reason).await?;
    }
    Ok(())
}

async fn session_revoked(
    outbox: &Outbox,
    tx: &mut PgConnection,
    user_id: Uuid,
    sessions: &[Uuid],
    reason: RevokeReason,
) -> Result<()> {
    events::enqueue(
        outbox,
        tx,
        "permission.session.revoked",
        user_id.to_string(),
        serde_json::json!({
            "user_id": user_id,
            "session_ids": sessions,
            "reason": reason.as_str(),
        }),
    )
    .await
}

/// Token lifetimes and claims, from the settings.
#[derive(Debug, Clone)]
struct TokenPolicy {
    issuer: String,
    audience: String,
    access_ttl: chrono::Duration,
    refresh_ttl: chrono::Duration,
}

/// Sign-in (passwords, client credentials), refresh, logout, and the key set.
#[derive(Clone)]
pub struct Auth {
    pool: PgPool,
    outbox: Outbox,
    keys: KeyRing,
    passwords: Arc<Passwords>,
    lockout: Lockout,
    policy: Arc<TokenPolicy>,
    /// What lockouts measure time by (a test's manual clock, else the system's).
    clock: crm_clock::Clock,
}

impl Auth {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        keys: KeyRing,
        passwords: Arc<Passwords>,
        settings: &AuthSettings,
        clock: crm_clock::Clock,
    ) -> Self {
        Self {
            pool,
            outbox,
            keys,
            passwords,
            clock,
            lockout: Lockout::new(&settings.lockout),
            policy: Arc::new(TokenPolicy {
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                access_ttl: secs(settings.access_ttl_secs.max(1)),
                refresh_ttl: secs(settings.refresh_ttl_secs.max(1)),
            }),
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub(crate) fn parts(&self) -> (&PgPool, &Outbox) {
        (&self.pool, &self.outbox)
    }

    /// Issuer, audience and access-token lifetime in seconds.
    fn token_policy(&self) -> (String, String, i64) {
        (
            self.policy.issuer.clone(),
            self.policy.audience.clone(),
            self.policy.access_ttl.num_seconds(),
        )
    }

    /// Signs a user in with username and password. Unknown user, wrong password, disabled user
    /// and user without a password all fail the same way, after the same work; a locked
    /// username is refused before its password is looked at.
    #[tracing::instrument(name = "login", skip_all)]
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        client: &ClientInfo,
    ) -> Result<TokenPair> {
        let key = throttle_key(username);

        let mut tx = self.pool.begin().await?;
        let mut state = store::lock_throttle(&mut tx, &key).await?;
        let admission = self.lockout.admit(&mut state, self.clock.now());
        store::save_throttle(&mut tx, &key, &state).await?;
        tx.commit().await?;
        if let Admission::Locked { retry_after } = admission {
            metrics::counter!("crm_permission_logins_total", "outcome" => "throttled").increment(1);
            return Err(Error::Throttled { retry_after });
        }

        let credentials = {
            let mut conn = self.pool.acquire().await?;
            users::store::find_credentials(&mut conn, &key).await?
        };
        let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
        let rehash = stored
            .as_deref()
            .is_some_and(|s| self.passwords.needs_rehash(s))
            .then(|| (stored.clone().unwrap_or_default(), password.clone()));
        // Exactly one argon2 verification on every path (the dummy hash without a stored one).
        let verified = self.passwords.verify_blocking(stored, password).await?;
        let outcome = match (credentials, verified) {
            (None, _) => Err((LoginFailure::UnknownUser, None)),
            (Some(c), Verified::Dummy) => Err((LoginFailure::NoPassword, Some(c.user.id))),
            (Some(c), Verified::Mismatch) => Err((LoginFailure::WrongPassword, Some(c.user.id))),
            (Some(c), Verified::Match) if c.user.status != UserStatus::Active => {
                Err((LoginFailure::Disabled, Some(c.user.id)))
            }
            (Some(c), Verified::Match) => Ok(c.user),
        };
        match outcome {
            Ok(user) => {
                let user_id = user.id;
                let pair = self.login_succeeded(&key, user, client, "password").await?;
                if let Some((old, password)) = rehash {
                    self.rehash(user_id, &old, password).await;
                }
                metrics::counter!("crm_permission_logins_total", "outcome" => "success")
                    .increment(1);
                Ok(pair)
            }
            Err((failure, user_id)) => {
                self.login_failed(&key, username, user_id, failure, client)
                    .await?;
                metrics::counter!("crm_permission_logins_total", "outcome" => "failure")
                    .increment(1);
                Err(Error::unauthenticated(INVALID_CREDENTIALS))
            }
        }
    }

    async fn login_failed(
        &self,
        key: &str,
        typed: &str,
        user_id: Option<Uuid>,
        failure: LoginFailure,
        client: &ClientInfo,
    ) -> Result<()> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let mut state = store::lock_throttle(&mut tx, key).await?;
        let was_locked = state.locked_until.is_some_and(|u| u > now);
        self.lockout.failed(&mut state, now);
        store::save_throttle(&mut tx, key, &state).await?;
        // The failure that locks the username says so; attempts refused while it is locked make
        // no events (they are counted in metrics), so an attack cannot flood the outbox.
        let locked_until = state.locked_until.filter(|u| !was_locked && *u > now);
        events::enqueue(
            &self.outbox,
            &mut tx,
            "permission.login.failed",
            key.to_string(),
            serde_json::json!({
                "username": truncate_chars(typed, MAX_LOGGED_USERNAME),
                "user_id": user_id,
                "reason": failure.as_str(),
                "locked_until": locked_until,
                "client_ip": client.ip,
                "user_agent": client.user_agent,
            }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        tracing::info!(reason = failure.as_str(), "sign-in failed");
        Ok(())
    }

    /// Redoes a password hash made with older parameters, now that the password is known.
    /// Compare-and-set on the old hash: a password changed meanwhile is left alone. Best effort:
    /// a failure is logged and the next sign-in tries again.
    async fn rehash(&self, user_id: Uuid, old: &str, password: SecretString) {
        let outcome = async {
            let new = self.passwords.hash_blocking(password).await?;
            let mut conn = self.pool.acquire().await?;
            let updated =
                users::store::replace_password_hash(&mut conn, user_id, old, &new).await?;
            Ok::<_, Error>(updated)
        }
        .await;
        match outcome {
            Ok(1) => tracing::info!(%user_id, "password hash redone with the current parameters"),
            Ok(_) => {}
            Err(err) => tracing::warn!(%user_id, error = %err, "password rehash failed"),
        }
    }

    /// Starts a session for `user`, signed in by `method` (`password`, `oidc:<provider>`).
    pub(crate) async fn login_succeeded(
        &self,
        key: &str,
        user: User,
        client: &ClientInfo,
        method: &str,
    ) -> Result<TokenPair> {
        let signer = self.keys.signer().await?;
        let now = events::now();
        let mut tx = self.pool.begin().await?;
        // Disabled or given a new password since the credentials were read: refuse, as the
        // session would otherwise outlive the change that revoked every other one.
        let current = users::store::lock_user_shared(&mut tx, user.id).await?;
        if current.as_ref().map(|u| (u.version, u.status))
            != Some((user.version, UserStatus::Active))
        {
            return Err(Error::unauthenticated(INVALID_CREDENTIALS));
        }
        store::clear_throttle(&mut tx, key).await?;
        let family_id = Uuid::now_v7();
        let pair = self
            .issue(&mut tx, &signer, &user, family_id, client, now)
            .await?;
        events::enqueue(
            &self.outbox,
            &mut tx,
            "permission.login.succeeded",
            key.to_string(),
            serde_json::json!({
                "user_id": user.id,
                "username": user.username,
                "session_id": family_id,
                "method": method,
                "client_ip": client.ip,
                "user_agent": client.user_agent,
            }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        tracing::info!(user_id = %user.id, session_id = %family_id, "signed in");
        Ok(pair)
    }

    /// Stores a new refresh token in `family_id` and signs an access token for it.
    async fn issue(
        &self,
        tx: &mut PgConnection,
        signer: &Signer,
        user: &User,
        family_id: Uuid,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<TokenPair> {
        let refresh_token = tokens::new_refresh_token()?;
        let hash = tokens::refresh_token_hash(&refresh_token);
        store::insert_refresh(
            tx,
            &store::NewRefresh {
                id: Uuid::now_v7(),
                family_id,
                user_id: user.id,
                token_hash: &hash,
                issued_at: now,
                expires_at: now + self.policy.refresh_ttl,
                client_ip: client.ip.as_deref(),
                user_agent: client.user_agent.as_deref(),
            },
        )
        .await?;
        let iat = now.timestamp();
        let claims = AccessClaims {
            iss: self.policy.issuer.clone(),
            aud: self.policy.audience.clone(),
            sub: user.id.to_string(),
            name: user.username.clone(),
            iat,
            nbf: iat,
            exp: iat + self.policy.access_ttl.num_seconds(),
            jti: Uuid::now_v7().to_string(),
            sid: family_id.to_string(),
            client_id: None,
            scope: None,
            rl: None,
        };
        Ok(TokenPair {
            access_token: signer.sign(&claims)?,
            expires_in: self.policy.access_ttl.num_seconds(),
            refresh_token,
            refresh_expires_in: self.policy.refresh_ttl.num_seconds(),
            user_id: user.id,
        })
    }

    /// Trades a refresh token for a new pair in the same family. A token presented a second time
    /// revokes its whole family.
    #[tracing::instrument(name = "refresh", skip_all)]
    pub async fn refresh(&self, token: SecretString, client: &ClientInfo) -> Result<TokenPair> {
        let hash = tokens::refresh_token_hash(&token);
        let signer = self.keys.signer().await?;
        let now = events::now();
        let mut tx = self.pool.begin().await?;
        let Some(peek) = store::find_refresh(&mut tx, &hash, false).await? else {
            return Err(Error::unauthenticated(INVALID_REFRESH));
        };
        // Lock order everywhere: the user row, then its tokens (as disabling and password changes
        // do), so concurrent changes wait for each other instead of deadlocking.
        let user = users::store::lock_user_shared(&mut tx, peek.user_id).await?;
        // Locked now: a second refresh with the same token waits here and then sees it used.
        let Some(row) = store::find_refresh(&mut tx, &hash, true).await? else {
            return Err(Error::unauthenticated(INVALID_REFRESH));
        };
        if row.used_at.is_some() || row.revoked_at.is_some() {
            let revoked =
                store::revoke_family(&mut tx, row.family_id, RevokeReason::Reuse.as_str(), now)
                    .await?;
            if revoked > 0 {
                session_revoked(
                    &self.outbox,
                    &mut tx,
                    row.user_id,
                    &[row.family_id],
                    RevokeReason::Reuse,
                )
                .await?;
                tracing::warn!(
                    user_id = %row.user_id,
                    session_id = %row.family_id,
                    "refresh token reused: session revoked"
                );
            }
            tx.commit().await?;
            self.outbox.notify_committed();
            return Err(Error::unauthenticated(INVALID_REFRESH));
        }
        if row.expires_at <= now {
            return Err(Error::unauthenticated(INVALID_REFRESH));
        }
        let user = match user {
            Some(user) if user.status == UserStatus::Active => user,
            _ => return Err(Error::unauthenticated(INVALID_REFRESH)),
        };
        store::mark_used(&mut tx, row.id, now).await?;
        let pair = self
            .issue(&mut tx, &signer, &user, row.family_id, client, now)
            .await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Ends the token's session (its whole family). Unknown or already revoked tokens are fine.
    #[tracing::instrument(name = "logout", skip_all)]
    pub async fn logout(&self, token: SecretString) -> Result<()> {
        let hash = tokens::refresh_token_hash(&token);
        let mut tx = self.pool.begin().await?;
        let Some(row) = store::find_refresh(&mut tx, &hash, false).await? else {
            return Ok(());
        };
        // User row first, as everywhere (see `refresh`).
        users::store::lock_user_shared(&mut tx, row.user_id).await?;
        let now = events::now();
        if store::revoke_family(&mut tx, row.family_id, RevokeReason::Logout.as_str(), now).await?
            > 0
        {
            session_revoked(
                &self.outbox,
                &mut tx,
                row.user_id,
                &[row.family_id],
                RevokeReason::Logout,
            )
            .await?;
        }
        tx.commit().await?;
        self.outbox.notify_committed();
        Ok(())
    }

    /// Deletes what can no longer matter: counters of long-quiet usernames and refresh tokens
    /// expired for a day.
    pub async fn purge(&self) -> Result<()> {
        let now = self.clock.now();
        let mut conn = self.pool.acquire().await?;
        let throttles = store::purge_throttle(&mut conn, now - self.lockout.forget_after()).await?;
        let tokens = store::purge_refresh(&mut conn, now - chrono::Duration::days(1)).await?;
        // Single sign-ins started and never finished.
        let sso = oidc::store::purge_logins(&mut conn, now).await?;
        if throttles + tokens + sso > 0 {
            tracing::debug!(throttles, tokens, sso, "purged");
        }
        Ok(())
    }

    /// OAuth 2.0 client credentials. `requested`: space-separated scopes, empty for all.
    #[tracing::instrument(name = "client credentials", skip_all)]
    pub async fn client_credentials(
        &self,
        client_id: &str,
        secret: SecretString,
        requested: &str,
        info: &ClientInfo,
    ) -> Result<ClientToken> {
        let (pool, outbox) = self.parts();
        let found = {
            let mut conn = pool.acquire().await?;
            clients::store::find_by_client_id(&mut conn, client_id.trim()).await?
        };
        let presented = secret_hash(&secret);
        // Compared even without a client (against a hash nothing matches), so an unknown client
        // costs the same as a wrong secret.
        let stored = found
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| vec![0; presented.len()]);
        let matches = aws_lc_rs::constant_time::verify_slices_are_equal(&stored, &presented)
            .is_ok()
            && found.is_some();
        let client = match found {
            Some((client, _)) if matches && client.status == UserStatus::Active => client,
            other => {
                let reason = match &other {
                    None => "unknown_client",
                    Some(_) if !matches => "wrong_secret",
                    Some(_) => "disabled",
                };
                let mut tx = pool.begin().await?;
                events::enqueue(
                    outbox,
                    &mut tx,
                    "permission.api_client.authentication_failed",
                    truncate_chars(client_id, MAX_CLIENT_ID),
                    serde_json::json!({
                        "client_id": truncate_chars(client_id, MAX_CLIENT_ID),
                        "api_client_id": other.as_ref().map(|(c, _)| c.id),
                        "reason": reason,
                        "client_ip": info.ip,
                        "user_agent": info.user_agent,
                    }),
                )
                .await?;
                tx.commit().await?;
                outbox.notify_committed();
                metrics::counter!("crm_permission_client_tokens_total", "outcome" => "failure")
                    .increment(1);
                return Err(Error::unauthenticated(INVALID_CLIENT));
            }
        };
        let scopes = granted_scopes(&client.scopes, requested)?;
        let now = events::now();
        let iat = now.timestamp();
        let (issuer, audience, ttl) = self.token_policy();
        let claims = AccessClaims {
            iss: issuer,
            aud: audience,
            sub: client.id.to_string(),
            name: service_username(&client.client_id),
            iat,
            nbf: iat,
            exp: iat + ttl,
            jti: Uuid::now_v7().to_string(),
            sid: client.id.to_string(),
            client_id: Some(client.client_id.clone()),
            scope: Some(scopes.clone()),
            rl: (client.requests_per_window > 0).then_some(client.requests_per_window),
        };
        let signer = self.keys().signer().await?;
        let access_token = signer.sign(&claims)?;
        let mut tx = pool.begin().await?;
        events::enqueue(
            outbox,
            &mut tx,
            "permission.api_client.token_issued",
            client.id.to_string(),
            serde_json::json!({
                "user_id": client.id,
                "client_id": client.client_id,
                "scope": scopes,
                "token_id": claims.jti,
                "client_ip": info.ip,
                "user_agent": info.user_agent,
            }),
        )
        .await?;
        tx.commit().await?;
        outbox.notify_committed();
        metrics::counter!("crm_permission_client_tokens_total", "outcome" => "success")
            .increment(1);
        Ok(ClientToken {
            access_token,
            expires_in: ttl,
            scope: scopes,
        })
    }
}
