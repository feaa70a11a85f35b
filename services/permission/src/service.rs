//! The use cases: sign-in, refresh, logout ([`Auth`]) and user administration ([`Users`]).
//!
//! Every write is one transaction together with its outbox event; after commit the relay is
//! woken. Whatever changes a user's credentials or status (disable, password change) revokes the
//! user's refresh tokens in the same transaction, and token issuing locks the user row
//! (`FOR SHARE`) and re-checks it, so a session cannot slip past a concurrent disable or
//! password change.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use crm_errors::{ApiError, Code, FieldViolation};
use crm_events::outbox::{NewEvent, Outbox};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::authz;
use crate::domain::{self, NewUser, OrgSettings, OrgSettingsPatch, ProfilePatch, User, UserStatus};
use crate::error::{Error, INVALID_CREDENTIALS, INVALID_REFRESH, Result};
use crate::keys::{KeyRing, Signer};
use crate::password::{Passwords, Verified};
use crate::settings::{AuthSettings, BootstrapUser, OrgDefaults};
use crate::store;
use crate::throttle::{Admission, Lockout, secs};
use crate::tokens::{self, AccessClaims};

/// Postgres keeps microseconds: what a write returns must equal what a later read returns.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Why a session (refresh-token family) ended, as carried by `permission.session.revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    /// A used or revoked refresh token was presented again: it was stolen, or the client is
    /// broken; either way nobody in that family can be trusted.
    Reuse,
    Disabled,
    PasswordChanged,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::Disabled => "disabled",
            Self::PasswordChanged => "password_changed",
        }
    }
}

/// Who is asking, as the gateway reports it; bounded before it is stored.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn new(ip: &str, user_agent: &str) -> Self {
        let bounded = |s: &str, max| {
            let s = domain::truncate_chars(s.trim(), max);
            (!s.is_empty()).then_some(s)
        };
        Self {
            ip: bounded(ip, 64),
            user_agent: bounded(user_agent, 512),
        }
    }
}

/// What a successful sign-in or refresh returns.
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: SecretString,
    pub refresh_expires_in: i64,
    pub user_id: Uuid,
}

pub(crate) async fn enqueue(
    outbox: &Outbox,
    tx: &mut PgConnection,
    event_type: &str,
    subject: String,
    data: serde_json::Value,
) -> Result<()> {
    let mut data = data;
    crate::actor::stamp(&mut data);
    outbox
        .enqueue(
            tx,
            NewEvent {
                event_type: event_type.into(),
                subject,
                data,
            },
        )
        .await?;
    Ok(())
}

/// Revokes every live refresh token of a user, with one `permission.session.revoked` event when
/// there were any.
async fn revoke_user_sessions(
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
    enqueue(
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

/// Sign-in, refresh, logout, and the key set.
#[derive(Clone)]
pub struct Auth {
    pool: PgPool,
    outbox: Outbox,
    keys: KeyRing,
    passwords: Arc<Passwords>,
    lockout: Lockout,
    policy: Arc<TokenPolicy>,
}

/// Why a sign-in failed, for the audit event only: the client always gets
/// [`INVALID_CREDENTIALS`].
#[derive(Debug, Clone, Copy)]
enum LoginFailure {
    UnknownUser,
    WrongPassword,
    NoPassword,
    Disabled,
}

impl LoginFailure {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::NoPassword => "no_password",
            Self::Disabled => "disabled",
        }
    }
}

impl Auth {
    pub fn new(
        pool: PgPool,
        outbox: Outbox,
        keys: KeyRing,
        passwords: Arc<Passwords>,
        settings: &AuthSettings,
    ) -> Self {
        Self {
            pool,
            outbox,
            keys,
            passwords,
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
    pub(crate) fn token_policy(&self) -> (String, String, i64) {
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
        let key = domain::throttle_key(username);

        let mut tx = self.pool.begin().await?;
        let mut state = store::lock_throttle(&mut tx, &key).await?;
        let admission = self.lockout.admit(&mut state, now());
        store::save_throttle(&mut tx, &key, &state).await?;
        tx.commit().await?;
        if let Admission::Locked { retry_after } = admission {
            metrics::counter!("crm_permission_logins_total", "outcome" => "throttled").increment(1);
            return Err(Error::Throttled { retry_after });
        }

        let credentials = {
            let mut conn = self.pool.acquire().await?;
            store::find_credentials(&mut conn, &key).await?
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
        let now = now();
        let mut tx = self.pool.begin().await?;
        let mut state = store::lock_throttle(&mut tx, key).await?;
        let was_locked = state.locked_until.is_some_and(|u| u > now);
        self.lockout.failed(&mut state, now);
        store::save_throttle(&mut tx, key, &state).await?;
        // The failure that locks the username says so; attempts refused while it is locked make
        // no events (they are counted in metrics), so an attack cannot flood the outbox.
        let locked_until = state.locked_until.filter(|u| !was_locked && *u > now);
        enqueue(
            &self.outbox,
            &mut tx,
            "permission.login.failed",
            key.to_string(),
            serde_json::json!({
                "username": domain::truncate_chars(typed, domain::MAX_LOGGED_USERNAME),
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
            let updated = sqlx::query(
                "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
            )
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?
            .rows_affected();
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
        let now = now();
        let mut tx = self.pool.begin().await?;
        // Disabled or given a new password since the credentials were read: refuse, as the
        // session would otherwise outlive the change that revoked every other one.
        let current = store::lock_user_shared(&mut tx, user.id).await?;
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
        enqueue(
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
        let now = now();
        let mut tx = self.pool.begin().await?;
        let Some(peek) = store::find_refresh(&mut tx, &hash, false).await? else {
            return Err(Error::unauthenticated(INVALID_REFRESH));
        };
        // Lock order everywhere: the user row, then its tokens (as disabling and password changes
        // do), so concurrent changes wait for each other instead of deadlocking.
        let user = store::lock_user_shared(&mut tx, peek.user_id).await?;
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
        store::lock_user_shared(&mut tx, row.user_id).await?;
        let now = now();
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
        let now = now();
        let mut conn = self.pool.acquire().await?;
        let throttles = store::purge_throttle(&mut conn, now - self.lockout.forget_after()).await?;
        let tokens = store::purge_refresh(&mut conn, now - chrono::Duration::days(1)).await?;
        // Single sign-ins started and never finished.
        let sso = sqlx::query("DELETE FROM oidc_logins WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if throttles + tokens + sso > 0 {
            tracing::debug!(throttles, tokens, sso, "purged");
        }
        Ok(())
    }
}

/// User administration, users' own profiles, and the organisation's settings.
#[derive(Clone)]
pub struct Users {
    pool: PgPool,
    outbox: Outbox,
    passwords: Arc<Passwords>,
    /// The organisation settings' first values (`org.*`), written when the database has none.
    org_defaults: Arc<OrgDefaults>,
}

/// `{old, new}` of one changed field, as `changes` in update events (ADR 0002).
fn change(old: impl serde::Serialize, new: impl serde::Serialize) -> serde_json::Value {
    serde_json::json!({ "old": old, "new": new })
}

impl Users {
    pub fn new(pool: PgPool, outbox: Outbox, passwords: Arc<Passwords>) -> Self {
        Self {
            pool,
            outbox,
            passwords,
            org_defaults: Arc::new(OrgDefaults::default()),
        }
    }

    /// The first organisation settings, from the configuration.
    pub fn with_org_defaults(mut self, defaults: OrgDefaults) -> Self {
        self.org_defaults = Arc::new(defaults);
        self
    }

    /// The organisation's settings; written from the configuration first if the database has
    /// none yet (whichever replica gets there first; the others read its row).
    async fn org_settings_in(&self, conn: &mut PgConnection, lock: bool) -> Result<OrgSettings> {
        if let Some(settings) = store::get_org_settings(conn, lock).await? {
            return Ok(settings);
        }
        let initial = OrgSettings {
            default_time_zone: self.org_defaults.default_time_zone,
            default_locale: self.org_defaults.default_locale,
            version: 1,
            updated_at: now(),
        };
        store::insert_org_settings(conn, &initial).await?;
        store::get_org_settings(conn, lock)
            .await?
            .ok_or_else(|| Error::Corrupt("organisation settings missing after insert".into()))
    }

    pub async fn org_settings(&self) -> Result<OrgSettings> {
        let mut conn = self.pool.acquire().await?;
        self.org_settings_in(&mut conn, false).await
    }

    /// Changes the organisation's defaults. Every user without a value of their own follows
    /// them; gateways learn of it from `permission.organisation.settings_updated`.
    #[tracing::instrument(name = "update organisation settings", skip_all)]
    pub async fn update_org_settings(
        &self,
        patch: OrgSettingsPatch,
        expected_version: i64,
    ) -> Result<OrgSettings> {
        let mut tx = self.pool.begin().await?;
        let mut settings = self.org_settings_in(&mut tx, true).await?;
        ApiError::check_version(expected_version, settings.version)?;
        let mut changes = serde_json::Map::new();
        if let Some(tz) = patch
            .default_time_zone
            .filter(|&tz| tz != settings.default_time_zone)
        {
            changes.insert(
                "default_time_zone".into(),
                change(settings.default_time_zone, tz),
            );
            settings.default_time_zone = tz;
        }
        if let Some(locale) = patch
            .default_locale
            .filter(|&l| l != settings.default_locale)
        {
            changes.insert(
                "default_locale".into(),
                change(settings.default_locale, locale),
            );
            settings.default_locale = locale;
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(settings);
        }
        settings.version += 1;
        settings.updated_at = now();
        store::update_org_settings(&mut tx, &settings).await?;
        enqueue(
            &self.outbox,
            &mut tx,
            "permission.organisation.settings_updated",
            "settings".into(),
            serde_json::json!({ "changes": changes, "version": settings.version }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        Ok(settings)
    }

    /// Changes a user's display name, time zone or language (see [`ProfilePatch`]). A change
    /// that changes nothing makes no new version and no event.
    #[tracing::instrument(name = "update user profile", skip_all)]
    pub async fn update_profile(
        &self,
        id: Uuid,
        patch: ProfilePatch,
        expected_version: i64,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let mut user = store::get_user(&mut tx, id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        ApiError::check_version(expected_version, user.version)?;
        let mut changes = serde_json::Map::new();
        if let Some(name) = patch.display_name {
            let name = if name.is_empty() {
                user.username.clone()
            } else {
                name
            };
            if name != user.display_name {
                changes.insert("display_name".into(), change(&user.display_name, &name));
                user.display_name = name;
            }
        }
        if let Some(tz) = patch.time_zone.filter(|&tz| tz != user.time_zone) {
            changes.insert("time_zone".into(), change(user.time_zone, tz));
            user.time_zone = tz;
        }
        if let Some(locale) = patch.locale.filter(|&l| l != user.locale) {
            changes.insert("locale".into(), change(user.locale, locale));
            user.locale = locale;
        }
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(user);
        }
        user.version += 1;
        user.updated_at = now();
        store::update_profile(&mut tx, &user).await?;
        enqueue(
            &self.outbox,
            &mut tx,
            "permission.user.updated",
            user.id.to_string(),
            serde_json::json!({
                "user_id": user.id,
                "changes": changes,
                "version": user.version,
            }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        Ok(user)
    }

    pub(crate) fn parts(&self) -> (&PgPool, &Outbox) {
        (&self.pool, &self.outbox)
    }

    #[tracing::instrument(name = "create user", skip_all)]
    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        // Hashing is slow: done before the transaction, so no lock waits on it.
        let hash = match new.password.clone() {
            Some(password) => Some(self.passwords.hash_blocking(password).await?),
            None => None,
        };
        let mut tx = self.pool.begin().await?;
        let user = self.insert_in(&mut tx, new, hash).await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        Ok(user)
    }

    /// Inserts a user (with its event) in the caller's transaction; `hash`: of its password.
    pub(crate) async fn insert_in(
        &self,
        tx: &mut PgConnection,
        new: NewUser,
        hash: Option<String>,
    ) -> Result<User> {
        let has_password = hash.is_some();
        let now = now();
        let user = User {
            id: Uuid::now_v7(),
            username: new.username,
            display_name: new.display_name,
            email: new.email,
            status: UserStatus::Active,
            time_zone: None,
            locale: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        match store::insert_user(tx, &user, hash.as_deref()).await {
            Err(err) if store::is_unique_violation(&err, store::USERNAME_CONSTRAINT) => {
                let mut api = ApiError::new(Code::AlreadyExists, "the username is taken");
                api.violations
                    .push(FieldViolation::new("username", "is taken"));
                return Err(api.into());
            }
            other => other?,
        }
        enqueue(
            &self.outbox,
            tx,
            "permission.user.created",
            user.id.to_string(),
            serde_json::json!({ "user": user, "has_password": has_password }),
        )
        .await?;
        Ok(user)
    }

    pub async fn get_user(&self, id: Uuid) -> Result<User> {
        let mut conn = self.pool.acquire().await?;
        store::get_user(&mut conn, id, false)
            .await?
            .ok_or_else(|| ApiError::not_found("user").into())
    }

    /// Enables or disables a user. Disabling revokes every refresh token of the user at once;
    /// access tokens already out expire within their (short) lifetime.
    #[tracing::instrument(name = "set user status", skip_all)]
    pub async fn set_status(
        &self,
        id: Uuid,
        status: UserStatus,
        expected_version: i64,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        // A disabled user may do nothing, so a status change changes decisions: it moves the
        // permission version, whose row is locked first, as by every organisation write (one
        // lock order everywhere).
        let permission_version = authz::store::lock_permission_version(&mut tx).await? + 1;
        let mut user = store::get_user(&mut tx, id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        ApiError::check_version(expected_version, user.version)?;
        if user.status == status {
            // Nothing changes: no new version, no event.
            tx.rollback().await?;
            return Ok(user);
        }
        let old = user.status;
        user.status = status;
        user.version += 1;
        user.updated_at = now();
        store::update_status(&mut tx, &user).await?;
        authz::store::set_permission_version(&mut tx, permission_version).await?;
        if status == UserStatus::Disabled {
            revoke_user_sessions(
                &self.outbox,
                &mut tx,
                user.id,
                RevokeReason::Disabled,
                user.updated_at,
            )
            .await?;
        }
        enqueue(
            &self.outbox,
            &mut tx,
            "permission.user.status_changed",
            user.id.to_string(),
            serde_json::json!({
                "user_id": user.id,
                "old_status": old,
                "new_status": status,
                "version": user.version,
                "permission_version": permission_version,
            }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        Ok(user)
    }

    /// Sets a new password and revokes every refresh token of the user.
    #[tracing::instrument(name = "set password", skip_all)]
    pub async fn set_password(&self, id: Uuid, password: SecretString) -> Result<()> {
        let hash = self.passwords.hash_blocking(password).await?;
        let mut tx = self.pool.begin().await?;
        let mut user = store::get_user(&mut tx, id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        user.version += 1;
        user.updated_at = now();
        store::update_password(&mut tx, &user, &hash).await?;
        revoke_user_sessions(
            &self.outbox,
            &mut tx,
            user.id,
            RevokeReason::PasswordChanged,
            user.updated_at,
        )
        .await?;
        enqueue(
            &self.outbox,
            &mut tx,
            "permission.user.password_changed",
            user.id.to_string(),
            serde_json::json!({ "user_id": user.id, "version": user.version }),
        )
        .await?;
        tx.commit().await?;
        self.outbox.notify_committed();
        Ok(())
    }

    /// Creates the configured bootstrap users that do not exist yet. A bad entry is logged (by
    /// field, never by value) and skipped; it does not stop the service.
    pub async fn ensure_bootstrap(&self, users: &[BootstrapUser]) -> Result<()> {
        for entry in users {
            let new = match NewUser::parse(
                &entry.username,
                &entry.display_name,
                "",
                entry.password.expose_secret(),
            ) {
                Ok(new) => new,
                Err(err) => {
                    let fields: Vec<_> = err.violations.iter().map(|v| &v.field).collect();
                    tracing::error!(?fields, "bootstrap user is invalid; skipped");
                    continue;
                }
            };
            let exists = {
                let mut conn = self.pool.acquire().await?;
                store::find_credentials(&mut conn, &new.username)
                    .await?
                    .is_some()
            };
            if exists {
                continue;
            }
            let username = new.username.clone();
            match self.create_user(new).await {
                Ok(user) => tracing::info!(%username, user_id = %user.id, "bootstrap user created"),
                // Another replica created it first.
                Err(Error::Api(api)) if api.code == Code::AlreadyExists => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}
