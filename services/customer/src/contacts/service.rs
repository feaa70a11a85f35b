//! The use cases of contacts ([`Contacts`]): create, read, update, delete, list.
//!
//! Every write: one transaction that locks the row, checks the expected version, changes it and
//! enqueues its event in the outbox; after commit, the relay is woken and the cache is moved to
//! the new version ([`Records`]). Reads go through the versioned cache. A contact's account
//! must exist and be readable by the caller: it is read (and share-locked, so it cannot be
//! deleted meanwhile) through [`crate::accounts::store`], in the write's transaction.

use crm_access::{Access, Action};
use crm_errors::ApiError;
use crm_record::authz::{authorize_create, default_department, readable, shown};
use crm_record::now;
use crm_record::page::{Page, SortKey};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::{Contact, ContactPatch, NewContact};
use super::store;
use crate::accounts;
use crate::error::Result;
use crate::record::list::ListQuery;
use crate::record::service::Records;
use crate::record::store::Lock;

/// A contact the caller may read, share-locked until the transaction ends (so it cannot be
/// deleted or moved meanwhile), and at `account`: what a follow-up may be about. Anything else
/// is "no such contact at this account" on `contact_id`, so nothing is revealed.
pub async fn require_readable(
    tx: &mut PgConnection,
    access: &Access,
    id: Uuid,
    account: Uuid,
) -> Result<()> {
    let contact = store::get_contact(tx, id, Lock::Share).await?;
    let fits = contact.is_some_and(|c| c.account_id == account && readable(access, &c));
    if !fits {
        return Err(ApiError::invalid(vec![crm_errors::FieldViolation::new(
            "contact_id",
            "no such contact at this account",
        )])
        .into());
    }
    Ok(())
}

/// Contacts' use cases.
#[derive(Clone)]
pub struct Contacts {
    records: Records,
}

impl Contacts {
    pub fn new(records: Records) -> Self {
        Self { records }
    }

    pub async fn create(&self, access: &Access, new: NewContact) -> Result<Contact> {
        let department_id = default_department::<Contact>(access, new.department_id);
        authorize_create::<Contact>(
            access,
            (Some(new.owner_id), department_id),
            new.fields_set(),
        )?;
        let now = now();
        let id = Uuid::now_v7();
        let mut tx = self.records.pool().begin().await?;
        let custom = self
            .records
            .new_custom::<Contact>(&mut tx, access, id, &new.custom)
            .await?;
        let contact = Contact {
            id,
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
            custom,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        accounts::service::require_readable(&mut tx, access, contact.account_id).await?;
        self.records
            .enforce_rules(&mut tx, access, &contact)
            .await?;
        store::insert_contact(&mut tx, &contact).await?;
        self.records.write(&mut tx, access, &contact, None).await?;
        tx.commit().await?;
        self.records
            .committed(contact.id, contact.version, Some(&contact))
            .await;
        Ok(shown(access, Action::Create, contact))
    }

    pub async fn get(&self, access: &Access, id: Uuid) -> Result<Contact> {
        self.records
            .get(access, id, async |c| {
                store::get_contact(c, id, Lock::None).await
            })
            .await
    }

    pub async fn update(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: i64,
        patch: ContactPatch,
    ) -> Result<Contact> {
        self.records
            .update(
                access,
                expected_version,
                patch.fields_set(),
                async |tx| store::get_contact(tx, id, Lock::Update).await,
                async |tx, contact| {
                    if let Some(account_id) = patch.account_id.filter(|a| *a != contact.account_id)
                    {
                        accounts::service::require_readable(tx, access, account_id).await?;
                    }
                    let mut patch = patch;
                    let input = std::mem::take(&mut patch.custom);
                    let mut changes = contact.apply(patch);
                    self.records
                        .patch_custom::<Contact>(
                            tx,
                            access,
                            contact.id,
                            &mut contact.custom,
                            &input,
                            &mut changes,
                        )
                        .await?;
                    Ok(changes)
                },
                async |tx, contact| store::update_contact(tx, contact).await,
            )
            .await
    }

    pub async fn delete(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<i64> {
        self.records
            .delete::<Contact>(
                access,
                id,
                expected_version,
                async |c| store::get_contact(c, id, Lock::Update).await,
                async |_| Ok(()),
            )
            .await
    }

    /// A page of the contacts in the caller's READ scope (EXPORT for exports).
    pub async fn list(
        &self,
        access: &Access,
        action: Action,
        q: &ListQuery,
        with_total: bool,
    ) -> Result<Page<Contact>> {
        self.records
            .list(
                access,
                action,
                q,
                with_total,
                async |conn, q, scope| store::list_contacts(conn, q, scope).await,
                |c| SortKey {
                    id: c.id,
                    created_at: c.created_at,
                    updated_at: c.updated_at,
                    name: c.first_name.clone(),
                    time: None,
                },
            )
            .await
    }
}
