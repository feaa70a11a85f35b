//! The customer service's use cases over validated domain input.
//!
//! Every write: one transaction that locks the row, checks the expected version, changes it and
//! enqueues its event in the outbox; after commit, the relay is woken and the cache is moved to
//! the new version. Reads go through the versioned cache.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use crm_access::{Access, Action, Resource, Scope};
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
use crate::store::{self, Lock};

/// What accounts and contacts have in common for writes and caching.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync {
    /// `account` / `contact`: cache namespace and event-type segment.
    const KIND: &'static str;
    /// What the permission service calls it.
    const RESOURCE: Resource;
    const TABLE: &'static str;
    const NOT_FOUND: &'static str;
    fn id(&self) -> Uuid;
    fn version(&self) -> i64;
    /// Owner and department: what data scopes go by.
    fn place(&self) -> Place;
    /// A field's value as text, for sharing rules' conditions (`None`: no such field, or empty).
    fn attribute(&self, field: &str) -> Option<String>;
    /// Applies field rules (hidden fields emptied, masked ones masked).
    fn redact(&mut self, scope: &Scope);
}

/// A record's owner and department.
pub type Place = (Option<Uuid>, Option<Uuid>);

/// Reads go by the READ scope: a record outside it does not exist for the caller (404, never
/// 403, so walking ids reveals nothing). Other actions then need their own scope to cover it.
fn authorize<R: Record>(access: &Access, action: Action, record: &R) -> Result<()> {
    let (owner, department) = record.place();
    let covers =
        |s: &Scope| s.covers_record(record.id(), owner, department, |f| record.attribute(f));
    let readable = access.get(R::RESOURCE, Action::Read).is_some_and(covers);
    if !readable {
        return Err(ApiError::not_found(R::NOT_FOUND).into());
    }
    if action != Action::Read && !covers(access.scope(R::RESOURCE, action)?) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!("you may not {action} this {}", R::KIND),
        )
        .into());
    }
    Ok(())
}

/// Moving a record to another owner or department is an assignment: ASSIGN must cover it
/// where it is and where it goes.
fn authorize_move<R: Record>(access: &Access, before: Place, after: Place) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let scope = access.scope(R::RESOURCE, Action::Assign)?;
    if !scope.covers(before.0, before.1) || !scope.covers(after.0, after.1) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!(
                "you may not move this {} to that owner or department",
                R::KIND
            ),
        )
        .into());
    }
    Ok(())
}

/// A new record must land inside the CREATE scope, with editable fields only.
fn authorize_create<R: Record>(
    access: &Access,
    place: Place,
    fields: Vec<&'static str>,
) -> Result<()> {
    let scope = access.scope(R::RESOURCE, Action::Create)?;
    scope.check_writable(fields)?;
    if !scope.covers(place.0, place.1) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!(
                "you may not create a {} for that owner or department",
                R::KIND
            ),
        )
        .into());
    }
    Ok(())
}

/// A record as the caller sees it: the READ field rules (or, for a caller who may write but
/// not read, those of the action they did).
fn shown<R: Record>(access: &Access, action: Action, mut record: R) -> R {
    let scope = access
        .get(R::RESOURCE, Action::Read)
        .or_else(|| access.get(R::RESOURCE, action));
    if let Some(scope) = scope {
        record.redact(scope);
    }
    record
}

/// Where the caller's new records go unless told otherwise.
fn default_department<R: Record>(access: &Access, given: Option<Uuid>) -> Option<Uuid> {
    given.or_else(|| {
        access
            .get(R::RESOURCE, Action::Create)
            .and_then(|s| s.primary_department_id)
    })
}

impl Record for Account {
    fn place(&self) -> Place {
        (Some(self.owner_id), self.department_id)
    }
    fn attribute(&self, field: &str) -> Option<String> {
        match field {
            "industry" => self.industry.clone(),
            "lifecycle_status" => Some(self.lifecycle_status.as_str().to_string()),
            "grade" => self.grade.map(|g| g.as_str().to_string()),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        Account::redact(self, scope)
    }
    const KIND: &'static str = "account";
    const RESOURCE: Resource = Resource::Account;
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
    fn place(&self) -> Place {
        (Some(self.owner_id), self.department_id)
    }
    fn attribute(&self, field: &str) -> Option<String> {
        match field {
            "title" => self.title.clone(),
            "lifecycle_status" => Some(self.lifecycle_status.as_str().to_string()),
            "grade" => self.grade.map(|g| g.as_str().to_string()),
            _ => None,
        }
    }
    fn redact(&mut self, scope: &Scope) {
        Contact::redact(self, scope)
    }
    const KIND: &'static str = "contact";
    const RESOURCE: Resource = Resource::Contact;
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
    /// When asked for: every matching record in scope.
    pub total: Option<i64>,
    /// The sort key of the last row (before field rules), for exports to continue from.
    pub last: Option<(Uuid, chrono::DateTime<Utc>, chrono::DateTime<Utc>, String)>,
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
        access: &Access,
        id: Uuid,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
    ) -> Result<R> {
        let record = match self.cache.get::<R>(R::KIND, &id.to_string()).await {
            Cached::Present(record) => record,
            Cached::Deleted => return Err(ApiError::not_found(R::NOT_FOUND).into()),
            Cached::Miss => {
                let mut conn = self.pool.acquire().await?;
                let record = load(&mut conn)
                    .await?
                    .ok_or_else(|| ApiError::not_found(R::NOT_FOUND))?;
                self.cache
                    .put(R::KIND, &id.to_string(), record.version(), Some(&record))
                    .await;
                record
            }
        };
        authorize(access, Action::Read, &record)?;
        Ok(shown(access, Action::Read, record))
    }

    /// Created and updated events carry the whole record, so consumers need no call back, and
    /// who acted from where (`actor`), for the audit trail.
    async fn write<R: Record>(
        &self,
        tx: &mut PgConnection,
        access: &Access,
        verb: &str,
        record: &R,
        changes: Option<Changes>,
    ) -> Result<()> {
        let mut data = serde_json::Map::new();
        data.insert("actor".to_string(), access.actor());
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
        access: &Access,
        id: Uuid,
        expected_version: Option<i64>,
        load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<R>>,
        guard: impl AsyncFnOnce(&mut PgConnection) -> Result<()>,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let current = load(&mut tx)
            .await?
            .ok_or_else(|| ApiError::not_found(R::NOT_FOUND))?;
        authorize(access, Action::Delete, &current)?;
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
            // The record as it was, so the audit trail can show what was deleted.
            serde_json::json!({
                "id": id,
                "version": version,
                R::KIND: current,
                "actor": access.actor(),
            }),
        )
        .await?;
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
        self.write(&mut tx, access, "created", &account, None)
            .await?;
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
            .ok_or_else(|| ApiError::not_found("account"))?;
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
        self.write(&mut tx, access, "updated", &account, Some(changes))
            .await?;
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
        Ok(page(q, rows, scope, total, |a| {
            (a.id, a.created_at, a.updated_at, a.name.as_str())
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
        self.write(&mut tx, access, "created", &contact, None)
            .await?;
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
            .ok_or_else(|| ApiError::not_found("contact"))?;
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
        self.write(&mut tx, access, "updated", &contact, Some(changes))
            .await?;
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
        Ok(page(q, rows, scope, total, |c| {
            (c.id, c.created_at, c.updated_at, c.first_name.as_str())
        }))
    }
}

/// Cuts the extra row that tells whether a next page exists, makes its token (from the real
/// values: the cursor is made before field rules apply) and applies the field rules.
fn page<T: Record>(
    q: &ListQuery,
    mut rows: Vec<T>,
    scope: &Scope,
    total: Option<i64>,
    key: impl Fn(&T) -> (Uuid, chrono::DateTime<Utc>, chrono::DateTime<Utc>, &str),
) -> Page<T> {
    let more = rows.len() as i64 > q.page_size;
    rows.truncate(q.page_size as usize);
    let last = rows.last().map(|r| {
        let (id, created, updated, name) = key(r);
        (id, created, updated, name.to_string())
    });
    let next_page_token = more
        .then_some(last.as_ref())
        .flatten()
        .map(|(id, created, updated, name)| q.cursor_after(*id, *created, *updated, name));
    for row in &mut rows {
        row.redact(scope);
    }
    Page {
        items: rows,
        next_page_token,
        total,
        last,
    }
}

/// How long cache entries live at most (entries are replaced on every write anyway).
pub fn cache_ttl(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}
