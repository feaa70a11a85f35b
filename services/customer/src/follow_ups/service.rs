//! The use cases of follow-ups ([`FollowUps`]): create, read, update, delete, list.
//!
//! Every write: one transaction that locks the row, checks the expected version, changes it and
//! enqueues its event in the outbox; after commit, the relay is woken and the cache is moved to
//! the new version ([`Records`]). Its account (and contact) must be readable by the caller:
//! checked and share-locked in the write's transaction.

use crm_access::{Access, Action};
use crm_record::authz::{authorize_create, default_department, shown};
use crm_record::now;
use crm_record::page::{Page, SortKey};
use uuid::Uuid;

use super::domain::{FollowUp, FollowUpPatch, NewFollowUp, check_times};
use super::store;
use crate::error::Result;
use crate::record::list::ListQuery;
use crate::record::service::Records;
use crate::record::store::Lock;
use crate::validation::Violations;
use crate::{accounts, contacts};

/// Follow-ups' use cases.
#[derive(Clone)]
pub struct FollowUps {
    records: Records,
}

impl FollowUps {
    pub fn new(records: Records) -> Self {
        Self { records }
    }

    pub async fn create(&self, access: &Access, new: NewFollowUp) -> Result<FollowUp> {
        let now = now();
        let occurred_at = new.occurred_at.unwrap_or(now);
        let mut v = Violations::default();
        check_times(&mut v, occurred_at, new.next_follow_up_at, now);
        v.into_result()?;
        let department_id = default_department::<FollowUp>(access, new.department_id);
        authorize_create::<FollowUp>(
            access,
            (Some(new.owner_id), department_id),
            new.fields_set(),
        )?;
        let follow_up = FollowUp {
            id: Uuid::now_v7(),
            account_id: new.account_id,
            contact_id: new.contact_id,
            kind: new.kind,
            subject: new.subject,
            content: new.content,
            outcome: new.outcome,
            occurred_at,
            next_follow_up_at: new.next_follow_up_at,
            owner_id: new.owner_id,
            department_id,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.records.pool().begin().await?;
        accounts::service::require_readable(&mut tx, access, follow_up.account_id).await?;
        if let Some(contact) = follow_up.contact_id {
            contacts::service::require_readable(&mut tx, access, contact, follow_up.account_id)
                .await?;
        }
        store::insert_follow_up(&mut tx, &follow_up).await?;
        self.records
            .write(&mut tx, access, &follow_up, None)
            .await?;
        tx.commit().await?;
        self.records
            .committed(follow_up.id, follow_up.version, Some(&follow_up))
            .await;
        Ok(shown(access, Action::Create, follow_up))
    }

    pub async fn get(&self, access: &Access, id: Uuid) -> Result<FollowUp> {
        self.records
            .get(access, id, async |c| {
                store::get_follow_up(c, id, Lock::None).await
            })
            .await
    }

    pub async fn update(
        &self,
        access: &Access,
        id: Uuid,
        expected_version: i64,
        patch: FollowUpPatch,
    ) -> Result<FollowUp> {
        self.records
            .update(
                access,
                expected_version,
                patch.fields_set(),
                async |tx| store::get_follow_up(tx, id, Lock::Update).await,
                async |tx, follow_up| {
                    if let Some(Some(contact)) =
                        patch.contact_id.filter(|c| *c != follow_up.contact_id)
                    {
                        contacts::service::require_readable(
                            tx,
                            access,
                            contact,
                            follow_up.account_id,
                        )
                        .await?;
                    }
                    let times_change =
                        patch.occurred_at.is_some() || patch.next_follow_up_at.is_some();
                    let changes = follow_up.apply(patch);
                    if times_change {
                        // Checked on the result: moving one time may break the rule with the
                        // other.
                        let mut v = Violations::default();
                        check_times(
                            &mut v,
                            follow_up.occurred_at,
                            follow_up.next_follow_up_at,
                            now(),
                        );
                        v.into_result()?;
                    }
                    Ok(changes)
                },
                async |tx, follow_up| store::update_follow_up(tx, follow_up).await,
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
            .delete::<FollowUp>(
                access,
                id,
                expected_version,
                async |c| store::get_follow_up(c, id, Lock::Update).await,
                async |_| Ok(()),
            )
            .await
    }

    /// A page of the follow-ups in the caller's READ scope (EXPORT for exports).
    pub async fn list(
        &self,
        access: &Access,
        action: Action,
        q: &ListQuery,
        with_total: bool,
    ) -> Result<Page<FollowUp>> {
        self.records
            .list(
                access,
                action,
                q,
                with_total,
                async |conn, q, scope| store::list_follow_ups(conn, q, scope).await,
                |f| SortKey {
                    id: f.id,
                    created_at: f.created_at,
                    updated_at: f.updated_at,
                    name: f.subject.clone(),
                    time: Some(f.occurred_at),
                },
            )
            .await
    }
}
