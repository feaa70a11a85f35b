//! The use cases of accounts ([`Accounts`]): create, read, update, delete, list.
//!
//! Every write: one transaction that locks the row, checks the expected version, changes it and
//! enqueues its event in the outbox; after commit, the relay is woken and the cache is moved to
//! the new version ([`Records`]). Reads go through the versioned cache. Deleting an account
//! asks [`crate::contacts::store`] whether contacts still point at it, in the same transaction.

use crm_access::{Access, Action};
use crm_errors::{ApiError, Code};
use crm_record::authz::{authorize_create, default_department, readable, shown};
use crm_record::now;
use crm_record::page::{Page, SortKey};
use sqlx::PgConnection;
use uuid::Uuid;

use super::domain::{Account, AccountPatch, NewAccount};
use super::store;
use crate::contacts;
use crate::error::Result;
use crate::record::list::ListQuery;
use crate::record::service::Records;
use crate::record::store::Lock;

/// An account the caller may read, share-locked until the transaction ends (so it cannot be
/// deleted meanwhile): what a contact or a follow-up may be attached to. One the caller may not
/// read is "no such account" too, on `account_id`, so nothing attached reveals an account.
pub async fn require_readable(tx: &mut PgConnection, access: &Access, id: Uuid) -> Result<()> {
    let account = store::get_account(tx, id, Lock::Share).await?;
    let visible = account.is_some_and(|a| readable(access, &a));
    if !visible {
        return Err(ApiError::invalid(vec![crm_errors::FieldViolation::new(
            "account_id",
            "no such account",
        )])
        .into());
    }
    Ok(())
}

/// Accounts' use cases.
#[derive(Clone)]
pub struct Accounts {
    records: Records,
}

impl Accounts {
    pub fn new(records: Records) -> Self {
        Self { records }
    }

    pub async fn create(&self, access: &Access, new: NewAccount) -> Result<Account> {
        let department_id = default_department::<Account>(access, new.department_id);
        authorize_create::<Account>(
            access,
            (Some(new.owner_id), department_id),
            new.fields_set(),
        )?;
        let now = now();
        let id = Uuid::now_v7();
        let mut tx = self.records.pool().begin().await?;
        let custom = self
            .records
            .new_custom::<Account>(&mut tx, access, id, &new.custom)
            .await?;
        let account = Account {
            id,
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
            custom,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.records
            .enforce_rules(&mut tx, access, &account)
            .await?;
        store::insert_account(&mut tx, &account).await?;
        self.records.write(&mut tx, access, &account, None).await?;
        tx.commit().await?;
        self.records
            .committed(account.id, account.version, Some(&account))
            .await;
        Ok(shown(access, Action::Create, account))
    }

    pub async fn get(&self, access: &Access, id: Uuid) -> Result<Account> {
        self.records
            .get(access, id, async |c| {
                store::get_account(c, id, Lock::None).await
            })
            .await
    }

    pub async fn update(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: i64,
        patch: AccountPatch,
    ) -> Result<Account> {
        self.records
            .update(
                access,
                expected_version,
                patch.fields_set(),
                async |tx| store::get_account(tx, id, Lock::Update).await,
                async |tx, account| {
                    let mut patch = patch;
                    let input = std::mem::take(&mut patch.custom);
                    let mut changes = account.apply(patch);
                    self.records
                        .patch_custom::<Account>(
                            tx,
                            access,
                            account.id,
                            &mut account.custom,
                            &input,
                            &mut changes,
                        )
                        .await?;
                    Ok(changes)
                },
                async |tx, account| store::update_account(tx, account).await,
            )
            .await
    }

    /// Refuses while the account still has contacts: deleting it would orphan them.
    pub async fn delete(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<i64> {
        self.records
            .delete::<Account>(
                access,
                id,
                expected_version,
                async |c| store::get_account(c, id, Lock::Update).await,
                async |c| {
                    let n = contacts::store::live_contacts_of(c, id).await?;
                    if n > 0 {
                        return Err(ApiError::new(
                            Code::FailedPrecondition,
                            format!(
                                "the account still has {n} contact(s): delete or move them first"
                            ),
                        )
                        .into());
                    }
                    Ok(())
                },
            )
            .await
    }

    /// A page of the accounts in the caller's READ scope (EXPORT for exports).
    pub async fn list(
        &self,
        access: &Access,
        action: Action,
        q: &ListQuery,
        with_total: bool,
    ) -> Result<Page<Account>> {
        self.records
            .list(
                access,
                action,
                q,
                with_total,
                async |conn, q, scope| store::list_accounts(conn, q, scope).await,
                |a| SortKey {
                    id: a.id,
                    created_at: a.created_at,
                    updated_at: a.updated_at,
                    name: a.name.clone(),
                    time: None,
                },
            )
            .await
    }
}
