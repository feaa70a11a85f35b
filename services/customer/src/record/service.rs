//! What every use case over a customer record shares: [`Records`] holds the pool, the outbox and
//! the versioned cache, and does the parts that are the same for accounts and contacts — a read
//! through the cache, the event of a write (in the write's transaction), the soft delete and
//! its event, and what happens after a commit (the relay woken, the cache moved to the new
//! version). [`page`] cuts a list's page and applies field rules.
//!
//! The use cases themselves, with their transactions and rules, are each aggregate's
//! `service.rs` ([`crate::accounts::Accounts`], [`crate::contacts::Contacts`]).

use std::time::Duration;

use crm_access::{Access, Action, Scope};
use crm_cache::{Cached, VersionedCache};
use crm_errors::ApiError;
use crm_events::outbox::{NewEvent, Outbox};
use crm_record::Record;
use crm_record::authz::{authorize, shown};
use crm_record::event::RecordEvent;
use crm_record::page::{Page, SortKey};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::Changes;
use super::list::ListQuery;
use crate::error::Result;

/// The `source` segment of this service's event types (`customer.account.created`).
const SERVICE: &str = "customer";

/// The pool, outbox and cache every record use case works with; cheap to clone.
#[derive(Clone)]
pub struct Records {
    pool: PgPool,
    outbox: Outbox,
    cache: VersionedCache,
}

impl Records {
    pub fn new(pool: PgPool, outbox: Outbox, cache: VersionedCache) -> Self {
        Self {
            pool,
            outbox,
            cache,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn enqueue(&self, tx: &mut PgConnection, event: RecordEvent) -> Result<()> {
        self.outbox
            .enqueue(
                tx,
                NewEvent {
                    event_type: event.event_type,
                    subject: event.subject,
                    data: event.data,
                },
            )
            .await?;
        Ok(())
    }

    /// After a commit: wake the relay, move the cache to the new version.
    pub async fn committed<R: Record>(&self, id: Uuid, version: i64, record: Option<&R>) {
        self.outbox.notify_committed();
        self.cache
            .put(R::KIND, &id.to_string(), version, record)
            .await;
    }

    /// A record as the caller may read it: from the cache, else loaded (and cached).
    pub async fn get<R: Record>(
        &self,
        access: &Access,
        id: Uuid,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
    ) -> Result<R> {
        let record = match self.cache.get::<R>(R::KIND, &id.to_string()).await {
            Cached::Present(record) => record,
            Cached::Deleted => return Err(crm_record::authz::not_found::<R>().into()),
            Cached::Miss => {
                let mut conn = self.pool.acquire().await?;
                let record = load(&mut conn)
                    .await?
                    .ok_or_else(crm_record::authz::not_found::<R>)?;
                self.cache
                    .put(R::KIND, &id.to_string(), record.version(), Some(&record))
                    .await;
                record
            }
        };
        authorize(access, Action::Read, &record)?;
        Ok(shown(access, Action::Read, record))
    }

    /// The event of a create (`changes: None`) or an update (see `crm_record::event`).
    pub async fn write<R: Record>(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        record: &R,
        changes: Option<Changes>,
    ) -> Result<()> {
        let event = match changes {
            None => RecordEvent::created(SERVICE, access, record),
            Some(changes) => RecordEvent::updated(SERVICE, access, record, changes),
        }
        .map_err(crm_events::EventError::Encode)?;
        self.enqueue(tx, event).await
    }

    /// Soft-deletes the record `load` finds (locked), once the caller may, the version matches
    /// and `guard` lets it go; returns the deleted version.
    pub async fn delete<R: Record>(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: Option<i64>,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
        guard: impl AsyncFnOnce(&mut PgConnection) -> Result<()>,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let current = load(&mut tx)
            .await?
            .ok_or_else(crm_record::authz::not_found::<R>)?;
        authorize(access, Action::Delete, &current)?;
        if let Some(expected) = expected_version {
            ApiError::check_version(expected, current.version())?;
        }
        guard(&mut tx).await?;
        let version = current.version() + 1;
        crm_record::store::soft_delete(&mut tx, R::TABLE, id, version).await?;
        let event = RecordEvent::deleted(SERVICE, access, &current, version)
            .map_err(crm_events::EventError::Encode)?;
        self.enqueue(&mut tx, event).await?;
        tx.commit().await?;
        self.committed::<R>(id, version, None).await;
        Ok(version)
    }
}

/// Cuts the extra row that tells whether a next page exists, makes its token (from the real
/// values: the cursor is made before field rules apply) and applies the field rules.
pub fn page<T: Record>(
    q: &ListQuery,
    rows: Vec<T>,
    scope: &Scope,
    total: Option<i64>,
    key: impl Fn(&T) -> SortKey,
) -> Page<T> {
    q.keyset.page(rows, key, total).map(|mut row| {
        row.redact(scope);
        row
    })
}

/// How long cache entries live at most (entries are replaced on every write anyway).
pub fn cache_ttl(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}
