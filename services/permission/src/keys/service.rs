//! The key ring: which key signs now, rotation and retirement on the timeline, re-sealing after
//! a change of the key-encryption key, and the published key set.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::{PgConnection, PgPool};

use super::domain::{self, Kek, Signer};
use super::store::{self, PrivateRow, PublicRow};
use crate::error::Result;

struct Inner {
    pool: PgPool,
    kek: Kek,
    /// How long a key signs.
    rotation: chrono::Duration,
    /// How long a key stays published after it stopped signing: access-token lifetime + skew.
    verify_window: chrono::Duration,
    /// The decrypted current key, so signing costs no query until it is too old.
    current: RwLock<Option<Arc<Signer>>>,
    /// One refresh of `current` at a time in this process: when the key ages out under load,
    /// one request rotates and the others wait for it instead of each holding a connection
    /// while queueing for the advisory lock.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
pub struct KeyRing(Arc<Inner>);

impl KeyRing {
    /// `clock_skew`: how much longer than `access_ttl` a key stays published after it stopped
    /// signing (verifiers accept tokens up to their leeway past `exp`).
    pub fn new(
        pool: PgPool,
        kek: Kek,
        rotation: chrono::Duration,
        access_ttl: chrono::Duration,
        clock_skew: chrono::Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            pool,
            kek,
            rotation,
            verify_window: access_ttl + clock_skew,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The key to sign with now, rotating first when the current one is too old.
    pub async fn signer(&self) -> Result<Arc<Signer>> {
        if let Some(signer) = self.cached() {
            return Ok(signer);
        }
        let _refreshing = self.0.refreshing.lock().await;
        // Whoever held the lock before may have refreshed it already.
        match self.cached() {
            Some(signer) => Ok(signer),
            None => self.maintain().await,
        }
    }

    fn cached(&self) -> Option<Arc<Signer>> {
        let now = Utc::now();
        self.0
            .current
            .read()
            .expect("lock never poisoned")
            .clone()
            .filter(|s| s.not_after_signing > now)
    }

    /// Makes sure a current key exists (creating one when needed), retires keys past their
    /// verification window, and caches the current key. Safe to run on every replica at once.
    #[tracing::instrument(name = "signing keys maintain", skip_all)]
    pub async fn maintain(&self) -> Result<Arc<Signer>> {
        let now = Utc::now();
        let mut tx = self.0.pool.begin().await?;
        store::lock_rotation(&mut tx).await?;
        let row = match store::current(&mut tx, now).await? {
            Some(row) => row,
            None => {
                let row = self.create(&mut tx, now).await?;
                tracing::info!(kid = %row.kid, "created a new signing key");
                row
            }
        };
        let retired = store::retire(&mut tx, now, self.0.verify_window).await?;
        self.reseal(&mut tx).await?;
        tx.commit().await?;
        for kid in retired {
            tracing::info!(%kid, "retired a signing key");
        }
        let pkcs8 = self.0.kek.open(
            &row.kid,
            &row.private_key_nonce,
            &row.private_key_ciphertext,
        )?;
        let signer = Arc::new(Signer::from_pkcs8(
            row.kid,
            row.not_after_signing,
            pkcs8.expose_secret(),
        ));
        *self.0.current.write().expect("lock never poisoned") = Some(signer.clone());
        Ok(signer)
    }

    /// Seals again, under the current key-encryption key, every private key a previous one
    /// sealed: after one run on any replica the previous keys can be dropped from the settings.
    async fn reseal(&self, conn: &mut PgConnection) -> Result<()> {
        if !self.0.kek.has_previous() {
            return Ok(());
        }
        let rows = store::sealed(&mut *conn).await?;
        for (kid, nonce, ciphertext) in rows {
            let (plain, current) = self.0.kek.open_any(&kid, &nonce, &ciphertext)?;
            if current {
                continue;
            }
            let (nonce, ciphertext) = self.0.kek.seal(&kid, plain.expose_secret())?;
            store::reseal(&mut *conn, &kid, &nonce, &ciphertext).await?;
            tracing::info!(%kid, "signing key sealed again under the new key-encryption key");
        }
        Ok(())
    }

    async fn create(&self, conn: &mut PgConnection, now: DateTime<Utc>) -> Result<PrivateRow> {
        let key = domain::generate(&self.0.kek)?;
        let not_after_signing = now + self.0.rotation;
        store::insert(conn, &key, now, not_after_signing).await?;
        Ok(PrivateRow {
            kid: key.kid,
            private_key_nonce: key.private_key_nonce,
            private_key_ciphertext: key.private_key_ciphertext,
            not_after_signing,
        })
    }

    /// The RFC 7517 key set of every key whose tokens may still be valid, newest first.
    pub async fn jwks(&self) -> Result<String> {
        let mut rows = self.published().await?;
        if rows.is_empty() {
            // Fresh database, asked before maintenance ran: make the first key now.
            self.maintain().await?;
            rows = self.published().await?;
        }
        let keys: Vec<_> = rows
            .into_iter()
            .map(|r| domain::jwk(&r.kid, &r.public_key))
            .collect();
        Ok(serde_json::json!({ "keys": keys }).to_string())
    }

    async fn published(&self) -> Result<Vec<PublicRow>> {
        let mut conn = self.0.pool.acquire().await?;
        store::published(&mut conn, Utc::now(), self.0.verify_window).await
    }
}
