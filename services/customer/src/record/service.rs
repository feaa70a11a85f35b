//! What every use case over a customer record shares: [`Records`] holds the pool, the outbox and
//! the versioned cache, and does the parts that are the same for every record — a read through
//! the cache, the event of a write (in the write's transaction), an update (lock, decisions,
//! version check, no-op detection, stamp, store, event), a list page with its total, the soft
//! delete and its event, and what happens after a commit (the relay woken, the cache moved to
//! the new version). [`page`] cuts a list's page and applies field rules.
//!
//! What differs, each aggregate's `service.rs` says ([`crate::accounts::Accounts`],
//! [`crate::contacts::Contacts`], [`crate::follow_ups::FollowUps`]): how a new record is made,
//! what a patch checks and changes, and its SQL.

use std::time::Duration;

use crm_access::{Access, Action, Scope};
use crm_cache::{Cached, VersionedCache};
use crm_errors::ApiError;
use crm_events::outbox::{NewEvent, Outbox};
use crm_fields::{CustomFields, Input, Schema, Values, Written};
use crm_record::Record;
use crm_record::authz::readable;
use crm_record::authz::{authorize, authorize_move, shown};
use crm_record::event::RecordEvent;
use crm_record::page::{Page, SortKey};

use super::store::Lock;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::domain::{Changes, Custom};
use super::list::ListQuery;
use crate::error::Result;

/// The `source` segment of this service's event types (`customer.account.created`).
const SERVICE: &str = "customer";

/// The pool, outbox, cache and custom fields every record use case works with; cheap to clone.
#[derive(Clone)]
pub struct Records {
    pool: PgPool,
    outbox: Outbox,
    cache: VersionedCache,
    fields: CustomFields,
}

impl Records {
    pub fn new(pool: PgPool, outbox: Outbox, cache: VersionedCache, fields: CustomFields) -> Self {
        Self {
            pool,
            outbox,
            cache,
            fields,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn fields(&self) -> &CustomFields {
        &self.fields
    }

    /// Refuses a write of `record` that an active validation rule of `R` forbids (records
    /// without custom fields have no rules), in the write's transaction.
    pub async fn enforce_rules<R: Record>(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        record: &R,
    ) -> Result<()> {
        let Ok(entity) = self.fields.entity(R::RESOURCE.as_str()) else {
            return Ok(());
        };
        let custom = self.schema::<R>(tx).await?;
        let json = serde_json::to_value(record).map_err(crm_events::EventError::Encode)?;
        crm_fields::rules::ValidationRules::new(self.fields.clone())
            .enforce(tx, access, entity, &custom, &json)
            .await?;
        Ok(())
    }

    /// The custom fields of `R`, as the write in `tx` is checked against.
    pub async fn schema<R: Record>(&self, tx: &mut PgConnection) -> Result<Schema> {
        Ok(self.fields.schema(tx, R::RESOURCE).await?)
    }

    /// The custom values of a new `R` with id `id`: `input` checked against the schema in
    /// `tx` (defaults filled in, required fields demanded), lookups and unique values checked.
    pub async fn new_custom<R: Record>(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        id: Uuid,
        input: &Input,
    ) -> Result<Values> {
        let written = self
            .schema::<R>(tx)
            .await?
            .create(input)
            .map_err(|v| ApiError::invalid(v.0))?;
        check_written::<R>(tx, access, id, &written).await?;
        Ok(written.values)
    }

    /// The custom values of record `id` after a merge patch with `input`; their changes are added
    /// to `changes`.
    pub async fn patch_custom<R: Record>(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        id: Uuid,
        current: &mut Values,
        input: &Input,
        changes: &mut Changes,
    ) -> Result<()> {
        if input.is_empty() {
            return Ok(());
        }
        let written = self
            .schema::<R>(tx)
            .await?
            .update(current, input)
            .map_err(|v| ApiError::invalid(v.0))?;
        check_written::<R>(tx, access, id, &written).await?;
        Values::changes(current, &written.values, changes);
        *current = written.values;
        Ok(())
    }

    /// Records as clients see them: values of deactivated custom fields out of sight (they stay
    /// stored). The schema is read only when a record holds custom values.
    async fn view<R: Record + Custom>(
        &self,
        conn: &mut PgConnection,
        records: &mut [R],
    ) -> Result<()> {
        if !records
            .iter_mut()
            .any(|r| r.custom_mut().is_some_and(|c| !c.is_empty()))
        {
            return Ok(());
        }
        let schema = self.schema::<R>(conn).await?;
        for r in records {
            if let Some(values) = r.custom_mut() {
                schema.visible(values);
            }
        }
        Ok(())
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
    pub async fn get<R: Record + Custom>(
        &self,
        access: &Access,
        id: Uuid,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
    ) -> Result<R> {
        let mut record = match self.cache.get::<R>(R::KIND, &id.to_string()).await {
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
        if record.custom_mut().is_some_and(|c| !c.is_empty()) {
            let mut conn = self.pool.acquire().await?;
            self.view(&mut conn, std::slice::from_mut(&mut record))
                .await?;
        }
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

    /// Updates the record `load` finds (locked): once the caller may update it and every field
    /// in `fields_set` is writable for them, at `expected_version`. `change` applies the patch
    /// in the write's transaction (checking, and locking, what the record points at) and returns
    /// what really changed; a move needs ASSIGN before and after; nothing changed means no new
    /// version and no event. Otherwise the record is stamped (version + 1, `updated_at`), `store`
    /// writes it with its event, and the cache follows the commit.
    pub async fn update<R: Record + Custom>(
        &self,
        access: &Access,
        expected_version: i64,
        fields_set: Vec<String>,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
        change: impl AsyncFnOnce(&mut PgConnection, &mut R) -> Result<Changes>,
        store: impl AsyncFnOnce(&mut PgConnection, &R) -> Result<()>,
    ) -> Result<R> {
        let mut tx = self.pool.begin().await?;
        let mut record = load(&mut tx)
            .await?
            .ok_or_else(crm_record::authz::not_found::<R>)?;
        authorize(access, Action::Update, &record)?;
        access
            .scope(R::RESOURCE, Action::Update)?
            .check_writable(fields_set.iter().map(String::as_str))?;
        ApiError::check_version(expected_version, record.version())?;
        let before = record.place();
        let changes = change(&mut tx, &mut record).await?;
        authorize_move::<R>(access, before, record.place())?;
        if !changes.is_empty() {
            self.enforce_rules(&mut tx, access, &record).await?;
        }
        if changes.is_empty() {
            self.view(&mut tx, std::slice::from_mut(&mut record))
                .await?;
            tx.rollback().await?;
            return Ok(shown(access, Action::Update, record));
        }
        record.stamp(record.version() + 1, crm_record::now());
        store(&mut tx, &record).await?;
        // The event and the answer show what clients may see; the cache keeps the whole record.
        let mut visible = record.clone();
        self.view(&mut tx, std::slice::from_mut(&mut visible))
            .await?;
        self.write(&mut tx, access, &visible, Some(changes)).await?;
        tx.commit().await?;
        self.committed(record.id(), record.version(), Some(&record))
            .await;
        Ok(shown(access, Action::Update, visible))
    }

    /// A page of the records in the caller's scope for `action` (READ, or EXPORT for exports):
    /// `rows` selects them (with the filters and paging of the query it is given: `q` with its
    /// `filter` compiled), `key` is a row's sort key; the total is counted when asked for.
    pub async fn list<R: Record + Custom>(
        &self,
        access: &Access,
        action: Action,
        q: &ListQuery,
        with_total: bool,
        rows: impl AsyncFnOnce(&mut PgConnection, &ListQuery, &Scope) -> Result<Vec<R>>,
        key: impl Fn(&R) -> SortKey,
    ) -> Result<Page<R>> {
        let scope = access.scope(R::RESOURCE, action)?;
        let mut conn = self.pool.acquire().await?;
        let compiled;
        let q = match &q.filter {
            None => q,
            Some(text) => {
                // Typed against the fields as this caller may use them, at the caller's today.
                let custom = self.schema::<R>(&mut conn).await?;
                let fields = crm_fields::filter::RecordFields {
                    table: R::TABLE,
                    custom: &custom,
                    scope,
                };
                let condition = crm_fields::filter::compile(
                    text,
                    &fields,
                    access.time_zone(),
                    crm_record::now(),
                )?;
                compiled = ListQuery {
                    condition: Some(condition),
                    ..q.clone()
                };
                &compiled
            }
        };
        let mut rows = rows(&mut conn, q, scope).await?;
        self.view(&mut conn, &mut rows).await?;
        let total = match with_total {
            true => Some(super::store::count(&mut conn, R::TABLE, q, scope).await?),
            false => None,
        };
        Ok(page(q, rows, scope, total, key))
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

/// Checks what a write of custom values points at and claims: each lookup must be a record the
/// caller may read (else "no such …" at its path, as for built-in references), and no other
/// live record may hold a unique value.
async fn check_written<R: Record>(
    tx: &mut PgConnection,
    access: &Access,
    id: Uuid,
    written: &Written,
) -> Result<()> {
    let mut violations = Vec::new();
    for (path, target, target_id) in &written.lookups {
        let visible = match target.as_str() {
            "account" => crate::accounts::store::get_account(tx, *target_id, Lock::Share)
                .await?
                .is_some_and(|a| readable(access, &a)),
            "contact" => crate::contacts::store::get_contact(tx, *target_id, Lock::Share)
                .await?
                .is_some_and(|c| readable(access, &c)),
            _ => false,
        };
        if !visible {
            violations.push(crm_errors::FieldViolation::new(
                path.as_str(),
                format!("no such {target}"),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::invalid(violations).into());
    }
    crm_fields::check_unique(tx, R::TABLE, id, &written.unique).await?;
    Ok(())
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
