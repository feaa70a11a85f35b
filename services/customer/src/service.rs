//! The customer service's use cases over validated domain input.
//!
//! Every write: one transaction that locks the row, checks the expected version, changes it and
//! enqueues its event in the outbox; after commit, the relay is woken and the cache is moved to
//! the new version. Reads go through the versioned cache.

use std::time::Duration;

use crm_access::{Access, Action, Resource, Scope};
use crm_cache::{Cached, VersionedCache};
use crm_errors::{ApiError, Code};
use crm_events::outbox::{NewEvent, Outbox};
use crm_record::authz::{authorize, authorize_create, authorize_move, default_department, shown};
use crm_record::event::RecordEvent;
use crm_record::page::{Page, SortKey};
use crm_record::{Place, Record, Table, now};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{
    Account, AccountPatch, Changes, Contact, ContactPatch, NewAccount, NewContact,
};
use crate::error::Result;
use crate::list::ListQuery;
use crate::store::{self, Lock};

/// The `source` segment of this service's event types (`customer.account.created`).
const SERVICE: &str = "customer";

impl Record for Account {
    const KIND: &'static str = "account";
    const RESOURCE: Resource = Resource::Account;
    const TABLE: &'static Table = &store::ACCOUNT_TABLE;
    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn place(&self) -> Place {
        (Some(self.owner_id), self.department_id)
    }
    fn attribute(&self, field: &str) -> Option<String> {
        use crate::domain::account_fields as f;
        match Self::TABLE.field(field)? {
            f::INDUSTRY => self.industry.clone(),
            f::LIFECYCLE_STATUS => Some(self.lifecycle_status.as_str().to_string()),
            f::GRADE => self.grade.map(|g| g.as_str().to_string()),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        Account::redact(self, scope)
    }
}

impl Record for Contact {
    const KIND: &'static str = "contact";
    const RESOURCE: Resource = Resource::Contact;
    const TABLE: &'static Table = &store::CONTACT_TABLE;
    fn id(&self) -> Uuid {
        self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn place(&self) -> Place {
        (Some(self.owner_id), self.department_id)
    }
    fn attribute(&self, field: &str) -> Option<String> {
        use crate::domain::contact_fields as f;
        match Self::TABLE.field(field)? {
            f::TITLE => self.title.clone(),
            f::LIFECYCLE_STATUS => Some(self.lifecycle_status.as_str().to_string()),
            f::GRADE => self.grade.map(|g| g.as_str().to_string()),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        Contact::redact(self, scope)
    }
}

#[derive(Clone)]
pub struct Customers {
    pool: PgPool,
    outbox: Outbox,
    cache: VersionedCache,
}

impl Customers {
    pub fn new(pool: PgPool, outbox: Outbox, cache: VersionedCache) -> Self {
        Self {
            pool,
            outbox,
            cache,
        }
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
    async fn committed<R: Record>(&self, id: Uuid, version: i64, record: Option<&R>) {
        self.outbox.notify_committed();
        self.cache
            .put(R::KIND, &id.to_string(), version, record)
            .await;
    }

    async fn get<R: Record>(
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
    async fn write<R: Record>(
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

    async fn delete<R: Record>(
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

    // --- accounts ---------------------------------------------------------------------------

    pub async fn create_account(&self, access: &Access, new: NewAccount) -> Result<Account> {
        let department_id = default_department::<Account>(access, new.department_id);
        authorize_create::<Account>(
            access,
            (Some(new.owner_id), department_id),
            new.fields_set(),
        )?;
        let now = now();
        let account = Account {
            id: Uuid::now_v7(),
            name: new.name,
            website: new.website,
            industry: new.industry,
            phone: new.phone,
            email: new.email,
            owner_id: new.owner_id,
            department_id,
            tags: new.tags,
            lifecycle_status: new.lifecycle_status,
            grade: new.grade,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool.begin().await?;
        store::insert_account(&mut tx, &account).await?;
        self.write(&mut tx, access, &account, None).await?;
        tx.commit().await?;
        self.committed(account.id, account.version, Some(&account))
            .await;
        Ok(shown(access, Action::Create, account))
    }

    pub async fn get_account(&self, access: &Access, id: Uuid) -> Result<Account> {
        self.get(access, id, async |c| {
            store::get_account(c, id, Lock::None).await
        })
        .await
    }

    pub async fn update_account(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: i64,
        patch: AccountPatch,
    ) -> Result<Account> {
        let mut tx = self.pool.begin().await?;
        let mut account = store::get_account(&mut tx, id, Lock::Update)
            .await?
            .ok_or_else(crm_record::authz::not_found::<Account>)?;
        authorize(access, Action::Update, &account)?;
        access
            .scope(Resource::Account, Action::Update)?
            .check_writable(patch.fields_set())?;
        ApiError::check_version(expected_version, account.version)?;
        let before = account.place();
        let changes = account.apply(patch);
        authorize_move::<Account>(access, before, account.place())?;
        if changes.is_empty() {
            // Nothing changed: no new version, no event.
            tx.rollback().await?;
            return Ok(shown(access, Action::Update, account));
        }
        account.version += 1;
        account.updated_at = now();
        store::update_account(&mut tx, &account).await?;
        self.write(&mut tx, access, &account, Some(changes)).await?;
        tx.commit().await?;
        self.committed(account.id, account.version, Some(&account))
            .await;
        Ok(shown(access, Action::Update, account))
    }

    /// Refuses while the account still has contacts: deleting it would orphan them.
    pub async fn delete_account(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<i64> {
        self.delete::<Account>(
            access,
            id,
            expected_version,
            async |c| store::get_account(c, id, Lock::Update).await,
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

    /// A page of the accounts in the caller's READ scope (EXPORT for exports).
    pub async fn list_accounts(
        &self,
        access: &Access,
        action: Action,
        q: &ListQuery,
        with_total: bool,
    ) -> Result<Page<Account>> {
        let scope = access.scope(Resource::Account, action)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_accounts(&mut conn, q, scope).await?;
        let total = match with_total {
            true => Some(store::count(&mut conn, Account::TABLE, q, scope).await?),
            false => None,
        };
        Ok(page(q, rows, scope, total, |a| SortKey {
            id: a.id,
            created_at: a.created_at,
            updated_at: a.updated_at,
            name: a.name.clone(),
        }))
    }

    // --- contacts ---------------------------------------------------------------------------

    /// A contact's account must exist and be one the caller may read; one they may not is
    /// "no such account" too, so contacts reveal no account.
    async fn require_account(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        account_id: Uuid,
    ) -> Result<()> {
        let account = store::get_account(tx, account_id, Lock::Share).await?;
        let visible = account.is_some_and(|a| {
            let (owner, department) = a.place();
            access
                .get(Resource::Account, Action::Read)
                .is_some_and(|s| s.covers_record(a.id, owner, department, |f| a.attribute(f)))
        });
        if !visible {
            return Err(ApiError::invalid(vec![crm_errors::FieldViolation::new(
                "account_id",
                "no such account",
            )])
            .into());
        }
        Ok(())
    }

    pub async fn create_contact(&self, access: &Access, new: NewContact) -> Result<Contact> {
        let department_id = default_department::<Contact>(access, new.department_id);
        authorize_create::<Contact>(
            access,
            (Some(new.owner_id), department_id),
            new.fields_set(),
        )?;
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
            department_id,
            tags: new.tags,
            lifecycle_status: new.lifecycle_status,
            grade: new.grade,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.pool.begin().await?;
        self.require_account(&mut tx, access, contact.account_id)
            .await?;
        store::insert_contact(&mut tx, &contact).await?;
        self.write(&mut tx, access, &contact, None).await?;
        tx.commit().await?;
        self.committed(contact.id, contact.version, Some(&contact))
            .await;
        Ok(shown(access, Action::Create, contact))
    }

    pub async fn get_contact(&self, access: &Access, id: Uuid) -> Result<Contact> {
        self.get(access, id, async |c| {
            store::get_contact(c, id, Lock::None).await
        })
        .await
    }

    pub async fn update_contact(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: i64,
        patch: ContactPatch,
    ) -> Result<Contact> {
        let mut tx = self.pool.begin().await?;
        let mut contact = store::get_contact(&mut tx, id, Lock::Update)
            .await?
            .ok_or_else(crm_record::authz::not_found::<Contact>)?;
        authorize(access, Action::Update, &contact)?;
        access
            .scope(Resource::Contact, Action::Update)?
            .check_writable(patch.fields_set())?;
        ApiError::check_version(expected_version, contact.version)?;
        if let Some(account_id) = patch.account_id.filter(|a| *a != contact.account_id) {
            self.require_account(&mut tx, access, account_id).await?;
        }
        let before = contact.place();
        let changes = contact.apply(patch);
        authorize_move::<Contact>(access, before, contact.place())?;
        if changes.is_empty() {
            tx.rollback().await?;
            return Ok(shown(access, Action::Update, contact));
        }
        contact.version += 1;
        contact.updated_at = now();
        store::update_contact(&mut tx, &contact).await?;
        self.write(&mut tx, access, &contact, Some(changes)).await?;
        tx.commit().await?;
        self.committed(contact.id, contact.version, Some(&contact))
            .await;
        Ok(shown(access, Action::Update, contact))
    }

    pub async fn delete_contact(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<i64> {
        self.delete::<Contact>(
            access,
            id,
            expected_version,
            async |c| store::get_contact(c, id, Lock::Update).await,
            async |_| Ok(()),
        )
        .await
    }

    pub async fn list_contacts(
        &self,
        access: &Access,
        action: Action,
        q: &ListQuery,
        with_total: bool,
    ) -> Result<Page<Contact>> {
        let scope = access.scope(Resource::Contact, action)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_contacts(&mut conn, q, scope).await?;
        let total = match with_total {
            true => Some(store::count(&mut conn, Contact::TABLE, q, scope).await?),
            false => None,
        };
        Ok(page(q, rows, scope, total, |c| SortKey {
            id: c.id,
            created_at: c.created_at,
            updated_at: c.updated_at,
            name: c.first_name.clone(),
        }))
    }
}

/// Cuts the extra row that tells whether a next page exists, makes its token (from the real
/// values: the cursor is made before field rules apply) and applies the field rules.
fn page<T: Record>(
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
