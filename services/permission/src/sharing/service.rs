//! The use cases of sharing ([`Sharing`]): sharing a record with a user and taking it back,
//! creating and deleting sharing rules, and listing both. Every change is an organisation write
//! ([`OrgTx`]): it moves the permission version and makes one event.

use crate::registry::service as registry;
use crm_errors::{ApiError, Code};
use uuid::Uuid;

use super::domain::{Grantee, RecordShare, SharingRule, Source, access_str};
use super::store;
use crate::error::{Error, Result};
use crate::events::now;
use crate::org::domain::Resource;
use crate::org::service::{Org, OrgTx};

/// Refuses a reference to something that does not exist.
fn require(found: bool, field: &str) -> Result<()> {
    if !found {
        return Err(ApiError::invalid(vec![crm_errors::FieldViolation::new(
            field,
            "does not exist",
        )])
        .into());
    }
    Ok(())
}

/// Sharing of records and sharing rules, written as organisation changes.
#[derive(Clone)]
pub struct Sharing {
    org: Org,
}

impl Sharing {
    pub fn new(org: Org) -> Self {
        Self { org }
    }

    async fn begin(&self) -> Result<OrgTx<'_>> {
        self.org.begin().await
    }

    pub async fn share_record(
        &self,
        resource: Resource,
        record_id: Uuid,
        user_id: Uuid,
        edit: bool,
    ) -> Result<(RecordShare, i64)> {
        let mut tx = self.begin().await?;
        registry::require_resource(tx.conn(), resource, "resource").await?;
        require(store::user_exists(tx.conn(), user_id).await?, "user_id")?;
        let share = RecordShare {
            resource,
            record_id,
            user_id,
            edit,
            created_at: now(),
        };
        let previous = store::lock_share(tx.conn(), resource, record_id, user_id).await?;
        if previous.as_deref() != Some(access_str(edit)) {
            store::upsert_share(tx.conn(), &share).await?;
            tx.event(
                "permission.record.shared",
                record_id,
                serde_json::json!({ "share": share, "previous_access": previous }),
            )
            .await?;
        }
        let version = tx.finish().await?;
        Ok((share, version))
    }

    pub async fn unshare_record(
        &self,
        resource: Resource,
        record_id: Uuid,
        user_id: Uuid,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        registry::require_resource(tx.conn(), resource, "resource").await?;
        let removed = store::delete_share(tx.conn(), resource, record_id, user_id).await?;
        if removed > 0 {
            tx.event(
                "permission.record.unshared",
                record_id,
                serde_json::json!({ "resource": resource, "record_id": record_id,
                                    "user_id": user_id }),
            )
            .await?;
        }
        tx.finish().await
    }

    pub async fn record_shares(
        &self,
        resource: Resource,
        record_id: Uuid,
    ) -> Result<Vec<RecordShare>> {
        let mut conn = self.org.pool().acquire().await?;
        registry::require_resource(&mut conn, resource, "resource").await?;
        store::list_shares(&mut conn, resource, record_id).await
    }

    pub async fn create_sharing_rule(
        &self,
        name: String,
        resource: Resource,
        edit: bool,
        grantee: Grantee,
        source: Source,
    ) -> Result<(SharingRule, i64)> {
        let mut tx = self.begin().await?;
        match grantee {
            Grantee::Department(id) => require(
                store::department_exists(tx.conn(), id).await?,
                "grantee_department_id",
            )?,
            Grantee::Role(id) => {
                require(store::role_exists(tx.conn(), id).await?, "grantee_role_id")?
            }
        }
        registry::require_resource(tx.conn(), resource, "resource").await?;
        match &source {
            Source::Department(id) => require(
                store::department_exists(tx.conn(), *id).await?,
                "source_department_id",
            )?,
            Source::Condition { field, .. } => {
                registry::require_condition_field(tx.conn(), resource, field, "condition.field")
                    .await?
            }
        }
        let rule = SharingRule {
            id: Uuid::now_v7(),
            name,
            resource,
            edit,
            grantee,
            source,
            created_at: now(),
        };
        let inserted = store::insert_rule(tx.conn(), &rule).await;
        if let Err(Error::Db(sqlx::Error::Database(e))) = &inserted
            && e.code().as_deref() == Some("23505")
        {
            let mut api = ApiError::new(Code::AlreadyExists, "a sharing rule of that name exists");
            api.violations.push(crm_errors::FieldViolation::new(
                "name",
                "is taken for this resource",
            ));
            return Err(api.into());
        }
        inserted?;
        tx.event(
            "permission.sharing_rule.created",
            rule.id,
            serde_json::json!({ "rule": rule }),
        )
        .await?;
        let version = tx.finish().await?;
        Ok((rule, version))
    }

    pub async fn delete_sharing_rule(&self, id: Uuid) -> Result<i64> {
        let mut tx = self.begin().await?;
        let removed = store::delete_rule(tx.conn(), id).await?;
        if removed == 0 {
            return Err(ApiError::not_found("sharing rule").into());
        }
        tx.event(
            "permission.sharing_rule.deleted",
            id,
            serde_json::json!({ "id": id }),
        )
        .await?;
        tx.finish().await
    }

    pub async fn sharing_rules(&self) -> Result<Vec<SharingRule>> {
        let mut conn = self.org.pool().acquire().await?;
        store::list_rules(&mut conn).await
    }
}
