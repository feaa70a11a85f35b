//! The use cases of users ([`Users`]): administration (create, status, password), a user's own
//! profile (display name, time zone, language), the organisation's settings (the defaults for
//! users who chose none) and the configured bootstrap users.
//!
//! Every write is one transaction together with its outbox event; after commit the relay is
//! woken. Disabling a user or setting a password revokes the user's sessions in the same
//! transaction (`auth::service::revoke_user_sessions`); a status change also moves the
//! permission version (decisions depend on it).

use std::sync::Arc;

use crm_errors::{ApiError, Code, FieldViolation};
use crm_events::outbox::Outbox;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{NewUser, OrgSettings, OrgSettingsPatch, ProfilePatch, User, UserStatus};
use super::store;
use crate::auth::domain::RevokeReason;
use crate::auth::service::revoke_user_sessions;
use crate::error::{Error, Result};
use crate::password::Passwords;
use crate::settings::{BootstrapUser, OrgDefaults};
use crate::{events, org};

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
            updated_at: events::now(),
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
        settings.updated_at = events::now();
        store::update_org_settings(&mut tx, &settings).await?;
        events::enqueue(
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
        user.updated_at = events::now();
        store::update_profile(&mut tx, &user).await?;
        events::enqueue(
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
        let now = events::now();
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
            Err(err) if err.is_unique_violation(store::USERNAME_CONSTRAINT) => {
                let mut api = ApiError::new(Code::AlreadyExists, "the username is taken");
                api.violations
                    .push(FieldViolation::new("username", "is taken"));
                return Err(api.into());
            }
            other => other?,
        }
        events::enqueue(
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
        let permission_version = org::store::lock_permission_version(&mut tx).await? + 1;
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
        user.updated_at = events::now();
        store::update_status(&mut tx, &user).await?;
        org::store::set_permission_version(&mut tx, permission_version).await?;
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
        events::enqueue(
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
        user.updated_at = events::now();
        store::update_password(&mut tx, &user, &hash).await?;
        revoke_user_sessions(
            &self.outbox,
            &mut tx,
            user.id,
            RevokeReason::PasswordChanged,
            user.updated_at,
        )
        .await?;
        events::enqueue(
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
