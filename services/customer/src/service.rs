//! The customer service's use cases over validated domain input.
//!
//! Every write: one transaction that locks the row, checks the expected version, changes it and
//! enqueues its event in the outbox; after commit, the relay is woken and the cache is moved to
//! the new version. Reads go through the versioned cache.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use crm_cache::{Cached, VersionedCache};
use crm_errors::{ApiError, Code};
use crm_events::outbox::{NewEvent, Outbox};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{
    Account, AccountPatch, Changes, Contact, ContactPatch, NewAccount, NewContact,
};
use crate::error::Result;
use crate::list::ListQuery;
use crate::store;

/// What accounts and contacts have in common for writes and caching.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync {
    /// `account` / `contact`: cache namespace and event-type segment.
    const KIND: &'static str;
    const TABLE: &'static str;
    const NOT_FOUND: &'static str;
    fn id(&self) -> Uuid;
    fn version(&self) -> i64;
}

impl Record for Account {
    const KIND: &'static str = "account";
    const TABLE: &'static str = "accounts";
    const NOT_FOUND: &'static str = "account";
    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
}

impl Record for Contact {
    const KIND: &'static str = "contact";
    const TABLE: &'static str = "contacts";
    const NOT_FOUND: &'static str = "contact";
    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
}

/// A page of records and the token of the next one.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

#[derive(Clone)]
pub struct Customers {
    pool: PgPool,
    outbox: Outbox,
    cache: VersionedCache,
}

/// Postgres keeps microseconds: what a write returns must equal what a later read returns.
fn now() -> chrono::DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Customers {
    pub fn new(pool: PgPool, outbox: Outbox, cache: VersionedCache) -> Self {
        Self {
            pool,
            outbox,
            cache,
        }
    }

    async fn enqueue<R: Record>(
        &self,
        tx: &mut PgConnection,
        verb: &str,
        id: Uuid,
        data: serde_json::Value,
    ) -> Result<()> {
        self.outbox
            .enqueue(
                tx,
                NewEvent {
                    event_type: format!("customer.{}.{verb}", R::KIND),
                    subject: id.to_string(),
                    data,
                },
            )
            .await?;
        Ok(())
    }

    /// After a commit: wake the relay, move the cache to the new version.
    async fn committed<R: Record>(&self, id: Uuid, version: i64, record: Option<&R>) {
        self.outbox.notify_committed();
        self.cache
            .put(R::KIND, &id.to_string(), version, record)
            .await;
    }

    async fn get<R: Record>(
        &self,
        id: Uuid,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
    ) -> Result<R> {
        match self.cache.get::<R>(R::KIND, &id.to_string()).await {
            Cached::Present(record) => return Ok(record),
            Cached::Deleted => return Err(ApiError::not_found(R::NOT_FOUND).into()),
            Cached::Miss => {}
        }
        let mut conn = self.pool.acquire().await?;
        let record = load(&mut conn)
            .await?
            .ok_or_else(|| ApiError::not_found(R::NOT_FOUND))?;
        self.cache
            .put(R::KIND, &id.to_string(), record.version(), Some(&record))
            .await;
        Ok(record)
    }

    /// Created and updated events carry the whole record, so consumers need no call back.
    async fn write<R: Record>(
        &self,
        tx: &mut PgConnection,
        verb: &str,
        record: &R,
        changes: Option<Changes>,
    ) -> Result<()> {
        let mut data = serde_json::Map::new();
        let value = serde_json::to_value(record).map_err(crm_events::EventError::Encode)?;
        data.insert(R::KIND.to_string(), value);
        if let Some(changes) = changes {
            data.insert("changes".to_string(), serde_json::Value::Object(changes));
        }
        self.enqueue::<R>(tx, verb, record.id(), serde_json::Value::Object(data))
            .await
    }

    async fn delete<R: Record>(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
        guard: impl AsyncFnOnce(&mut PgConnection) -> Result<()>,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let current = load(&mut tx)
            .await?
            .ok_or_else(|| ApiError::not_found(R::NOT_FOUND))?;
        if let Some(expected) = expected_version {
            ApiError::check_version(expected, current.version())?;
        }
        guard(&mut tx).await?;
        let version = current.version() + 1;
        store::soft_delete(&mut tx, R::TABLE, id, version).await?;
        self.enqueue::<R>(
            &mut tx,
            "deleted",
            id,
            serde_json::json!({ "id": id, "version": version }),
        )
        .await?;
        tx.commit().await?;
        self.committed::<R>(id, version, None).await;
        Ok(version)
    }

    // --- accounts ---------------------------------------------------------------------------

    pub async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let now = now();
        let account = Account {
            id: Uuid::now_v7(),
            name: new.name,
            website: new.website,
            industry: new.industry,
            phone: new.phone,
            email: new.email,
            owner_id: new.owner_id,
            tags: new.tags,
            lifecycle_status: new.lifecycle_status,
            grade: new.grade,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool.begin().await?;
        store::insert_account(&mut tx, &account).await?;
        self.write(&mut tx, "created", &account, None).await?;
        tx.commit().await?;
        self.committed(account.id, account.version, Some(&account))
            .await;
        Ok(account)
    }

    pub async fn get_account(&self, id: Uuid) -> Result<Account> {
        self.get(id, async |c| store::get_account(c, id, false).await)
            .await
    }

    pub async fn update_account(
        &self,
        id: Uuid,
        expected_version: i64,
        patch: AccountPatch,
    ) -> Result<Account> {
        let mut tx = self.pool.begin().await?;
        let mut account = store::get_account(&mut tx, id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        ApiError::check_version(expected_version, account.version)?;
        let changes = account.apply(patch);
        if changes.is_empty() {
            // Nothing changed: no new version, no event.
            tx.rollback().await?;
            return Ok(account);
        }
        account.version += 1;
        account.updated_at = now();
        store::update_account(&mut tx, &account).await?;
        self.write(&mut tx, "updated", &account, Some(changes))
            .await?;
        tx.commit().await?;
        self.committed(account.id, account.version, Some(&account))
            .await;
        Ok(account)
    }

    /// Refuses while the account still has contacts: deleting it would orphan them.
    pub async fn delete_account(&self, id: Uuid, expected_version: Option<i64>) -> Result<i64> {
        self.delete::<Account>(
            id,
            expected_version,
            async |c| store::get_account(c, id, true).await,
            async |c| {
                let n = store::live_contacts_of(c, id).await?;
                if n > 0 {
                    return Err(ApiError::new(
                        Code::FailedPrecondition,
                        format!("the account still has {n} contact(s): delete or move them first"),
                    )
                    .into());
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn list_accounts(&self, q: &ListQuery) -> Result<Page<Account>> {
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_accounts(&mut conn, q).await?;
        Ok(page(q, rows, |a| {
            (a.id, a.created_at, a.updated_at, a.name.as_str())
        }))
    }

    // --- contacts ---------------------------------------------------------------------------

    async fn require_account(&self, tx: &mut PgConnection, account_id: Uuid) -> Result<()> {
        if !store::lock_live_account(tx, account_id).await? {
            return Err(ApiError::invalid(vec![crm_errors::FieldViolation::new(
                "account_id",
                "no such account",
            )])
            .into());
        }
        Ok(())
    }

    pub async fn create_contact(&self, new: NewContact) -> Result<Contact> {
        let now = now();
        let contact = Contact {
            id: Uuid::now_v7(),
            account_id: new.account_id,
            first_name: new.first_name,
            last_name: new.last_name,
            email: new.email,
            phone: new.phone,
            title: new.title,
            owner_id: new.owner_id,
            tags: new.tags,
            lifecycle_status: new.lifecycle_status,
            grade: new.grade,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool.begin().await?;
        self.require_account(&mut tx, contact.account_id).await?;
        store::insert_contact(&mut tx, &contact).await?;
        self.write(&mut tx, "created", &contact, None).await?;
        tx.commit().await?;
        self.committed(contact.id, contact.version, Some(&contact))
            .await;
        Ok(contact)
    }

    pub async fn get_contact(&self, id: Uuid) -> Result<Contact> {
        self.get(id, async |c| store::get_contact(c, id, false).await)
            .await
    }

    pub async fn update_contact(
        &self,
        id: Uuid,
        expected_version: i64,
        patch: ContactPatch,
    ) -> Result<Contact> {
        let mut tx = self.pool.begin().await?;
        let mut contact = store::get_contact(&mut tx, id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("contact"))?;
        ApiError::check_version(expected_version, contact.version)?;
        if let Some(account_id) = patch.account_id.filter(|a| *a != contact.account_id) {
            self.require_account(&mut tx, account_id).await?;
        }
        let changes = contact.apply(patch);
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(contact);
        }
        contact.version += 1;
        contact.updated_at = now();
        store::update_contact(&mut tx, &contact).await?;
        self.write(&mut tx, "updated", &contact, Some(changes))
            .await?;
        tx.commit().await?;
        self.committed(contact.id, contact.version, Some(&contact))
            .await;
        Ok(contact)
    }

    pub async fn delete_contact(&self, id: Uuid, expected_version: Option<i64>) -> Result<i64> {
        self.delete::<Contact>(
            id,
            expected_version,
            async |c| store::get_contact(c, id, true).await,
            async |_| Ok(()),
        )
        .await
    }

    pub async fn list_contacts(&self, q: &ListQuery) -> Result<Page<Contact>> {
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_contacts(&mut conn, q).await?;
        Ok(page(q, rows, |c| {
            (c.id, c.created_at, c.updated_at, c.first_name.as_str())
        }))
    }
}

/// Cuts the extra row that tells whether a next page exists and makes its token.
fn page<T>(
    q: &ListQuery,
    mut rows: Vec<T>,
    key: impl Fn(&T) -> (Uuid, chrono::DateTime<Utc>, chrono::DateTime<Utc>, &str),
) -> Page<T> {
    let more = rows.len() as i64 > q.page_size;
    rows.truncate(q.page_size as usize);
    let next_page_token = more.then(|| {
        let (id, created, updated, name) = key(rows.last().expect("a full page has a last row"));
        q.cursor_after(id, created, updated, name)
    });
    Page {
        items: rows,
        next_page_token,
    }
}

/// How long cache entries live at most (entries are replaced on every write anyway).
pub fn cache_ttl(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}
