//! Sharing beyond the roles' data scopes (`crm.permission.v1.SharingService`): one record with
//! one user, or a rule giving a department's members or a role's holders the records of another
//! department, or the records matching a condition.
//!
//! Sharing widens the records of actions a grant already gives (see
//! [`super::decision`]): it never grants an action. Every change goes through an [`OrgTx`], so
//! it moves the permission version and is evented like any organisation change — gateways see
//! it within a second.

use chrono::{DateTime, Utc};
use crm_errors::{ApiError, Code};
use crm_proto::permission as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::model::Resource;
use super::service::{Org, OrgTx};
use crate::domain::Violations;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordShare {
    pub resource: Resource,
    pub record_id: Uuid,
    pub user_id: Uuid,
    pub edit: bool,
    pub created_at: DateTime<Utc>,
}

/// Who a rule gives access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    Department(Uuid),
    Role(Uuid),
}

/// Which records a rule shares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Department(Uuid),
    Condition { field: String, equals: String },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SharingRule {
    pub id: Uuid,
    pub name: String,
    pub resource: Resource,
    pub edit: bool,
    pub grantee: Grantee,
    pub source: Source,
    pub created_at: DateTime<Utc>,
}

fn access_str(edit: bool) -> &'static str {
    if edit { "edit" } else { "read" }
}

fn now() -> DateTime<Utc> {
    crate::service::now()
}

/// `READ` → false, `EDIT` → true.
fn access(v: &mut Violations, field: &str, raw: i32) -> bool {
    match pb::ShareAccess::try_from(raw) {
        Ok(pb::ShareAccess::Read) => false,
        Ok(pb::ShareAccess::Edit) => true,
        _ => {
            v.add(field, "must be READ or EDIT");
            false
        }
    }
}

fn access_pb(edit: bool) -> i32 {
    if edit {
        pb::ShareAccess::Edit as i32
    } else {
        pb::ShareAccess::Read as i32
    }
}

/// Sharing records of the audit trail means nothing: refused.
fn shareable(v: &mut Violations, field: &str, raw: i32) -> Resource {
    let resource = v.resource(field, raw);
    if matches!(resource, Resource::Audit | Resource::Organisation) {
        v.add(field, "only records of the services can be shared");
    }
    resource
}

// --- use cases ------------------------------------------------------------------------------

async fn require(tx: &mut OrgTx<'_>, sql: &str, id: Uuid, field: &str) -> Result<()> {
    let found: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    if found.is_none() {
        return Err(ApiError::invalid(vec![crm_errors::FieldViolation::new(
            field,
            "does not exist",
        )])
        .into());
    }
    Ok(())
}

impl Org {
    pub async fn share_record(
        &self,
        resource: Resource,
        record_id: Uuid,
        user_id: Uuid,
        edit: bool,
    ) -> Result<(RecordShare, i64)> {
        let mut tx = self.begin().await?;
        require(
            &mut tx,
            "SELECT id FROM users WHERE id = $1",
            user_id,
            "user_id",
        )
        .await?;
        let share = RecordShare {
            resource,
            record_id,
            user_id,
            edit,
            created_at: now(),
        };
        let previous: Option<String> = sqlx::query_scalar(
            "SELECT access FROM record_shares
              WHERE resource = $1 AND record_id = $2 AND user_id = $3 FOR UPDATE",
        )
        .bind(resource.as_str())
        .bind(record_id)
        .bind(user_id)
        .fetch_optional(tx.conn())
        .await?;
        if previous.as_deref() != Some(access_str(edit)) {
            sqlx::query(
                "INSERT INTO record_shares (resource, record_id, user_id, access, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (resource, record_id, user_id) DO UPDATE SET access = $4",
            )
            .bind(resource.as_str())
            .bind(record_id)
            .bind(user_id)
            .bind(access_str(edit))
            .bind(share.created_at)
            .execute(tx.conn())
            .await?;
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
        let removed = sqlx::query(
            "DELETE FROM record_shares WHERE resource = $1 AND record_id = $2 AND user_id = $3",
        )
        .bind(resource.as_str())
        .bind(record_id)
        .bind(user_id)
        .execute(tx.conn())
        .await?
        .rows_affected();
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
        let rows: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT user_id, access, created_at FROM record_shares
              WHERE resource = $1 AND record_id = $2 ORDER BY created_at, user_id",
        )
        .bind(resource.as_str())
        .bind(record_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, access, created_at)| RecordShare {
                resource,
                record_id,
                user_id,
                edit: access == "edit",
                created_at,
            })
            .collect())
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
            Grantee::Department(id) => {
                require(
                    &mut tx,
                    "SELECT id FROM departments WHERE id = $1",
                    id,
                    "grantee_department_id",
                )
                .await?
            }
            Grantee::Role(id) => {
                require(
                    &mut tx,
                    "SELECT id FROM roles WHERE id = $1",
                    id,
                    "grantee_role_id",
                )
                .await?
            }
        }
        if let Source::Department(id) = &source {
            require(
                &mut tx,
                "SELECT id FROM departments WHERE id = $1",
                *id,
                "source_department_id",
            )
            .await?;
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
        let (grantee_department, grantee_role) = match rule.grantee {
            Grantee::Department(d) => (Some(d), None),
            Grantee::Role(r) => (None, Some(r)),
        };
        let (source_department, field, equals) = match &rule.source {
            Source::Department(d) => (Some(*d), None, None),
            Source::Condition { field, equals } => {
                (None, Some(field.clone()), Some(equals.clone()))
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO sharing_rules (id, name, resource, access, grantee_department_id,
                                        grantee_role_id, source_department_id, condition_field,
                                        condition_equals, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(rule.id)
        .bind(&rule.name)
        .bind(resource.as_str())
        .bind(access_str(edit))
        .bind(grantee_department)
        .bind(grantee_role)
        .bind(source_department)
        .bind(field)
        .bind(equals)
        .bind(rule.created_at)
        .execute(tx.conn())
        .await;
        if let Err(sqlx::Error::Database(e)) = &inserted
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
        let removed = sqlx::query("DELETE FROM sharing_rules WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?
            .rows_affected();
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
        type Row = (
            Uuid,
            String,
            String,
            String,
            Option<Uuid>,
            Option<Uuid>,
            Option<Uuid>,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, resource, access, grantee_department_id, grantee_role_id,
                    source_department_id, condition_field, condition_equals, created_at
               FROM sharing_rules ORDER BY resource, name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(
                |(id, name, resource, access, gd, gr, sd, field, equals, created_at)| {
                    let corrupt = || crate::error::Error::Corrupt(format!("sharing rule {id}"));
                    Ok(SharingRule {
                        id,
                        name,
                        resource: Resource::parse(&resource).ok_or_else(corrupt)?,
                        edit: access == "edit",
                        grantee: match (gd, gr) {
                            (Some(d), None) => Grantee::Department(d),
                            (None, Some(r)) => Grantee::Role(r),
                            _ => return Err(corrupt()),
                        },
                        source: match (sd, field, equals) {
                            (Some(d), None, None) => Source::Department(d),
                            (None, Some(field), Some(equals)) => {
                                Source::Condition { field, equals }
                            }
                            _ => return Err(corrupt()),
                        },
                        created_at,
                    })
                },
            )
            .collect()
    }
}

// --- gRPC -----------------------------------------------------------------------------------

fn share_pb(s: RecordShare) -> pb::RecordShare {
    pb::RecordShare {
        resource: pb::Resource::from(s.resource) as i32,
        record_id: s.record_id.to_string(),
        user_id: s.user_id.to_string(),
        access: access_pb(s.edit),
        created_at: Some(crate::grpc::timestamp(s.created_at)),
    }
}

fn rule_pb(r: SharingRule) -> pb::SharingRule {
    let (grantee_department_id, grantee_role_id) = match r.grantee {
        Grantee::Department(d) => (d.to_string(), String::new()),
        Grantee::Role(id) => (String::new(), id.to_string()),
    };
    let (source_department_id, condition) = match r.source {
        Source::Department(d) => (d.to_string(), None),
        Source::Condition { field, equals } => {
            (String::new(), Some(pb::RecordCondition { field, equals }))
        }
    };
    pb::SharingRule {
        id: r.id.to_string(),
        name: r.name,
        resource: pb::Resource::from(r.resource) as i32,
        access: access_pb(r.edit),
        grantee_department_id,
        grantee_role_id,
        source_department_id,
        condition,
        created_at: Some(crate::grpc::timestamp(r.created_at)),
    }
}

pub struct SharingApi {
    org: Org,
}

impl SharingApi {
    pub fn new(org: Org) -> Self {
        Self { org }
    }
}

type GrpcResult<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::sharing_service_server::SharingService for SharingApi {
    async fn share_record(
        &self,
        request: Request<pb::ShareRecordRequest>,
    ) -> GrpcResult<pb::RecordShareResponse> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let resource = shareable(&mut v, "resource", r.resource);
            let record_id = v.id("record_id", &r.record_id);
            let user_id = v.id("user_id", &r.user_id);
            let edit = access(&mut v, "access", r.access);
            v.into_result()?;
            let (share, permission_version) = self
                .org
                .share_record(resource, record_id, user_id, edit)
                .await?;
            Ok(Response::new(pb::RecordShareResponse {
                share: Some(share_pb(share)),
                permission_version,
            }))
        })
        .await
    }

    async fn unshare_record(
        &self,
        request: Request<pb::UnshareRecordRequest>,
    ) -> GrpcResult<pb::UnshareRecordResponse> {
        let caller = request.extensions().get::<crm_identity::Caller>().cloned();
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let resource = shareable(&mut v, "resource", r.resource);
            let record_id = v.id("record_id", &r.record_id);
            let user_id = v.id("user_id", &r.user_id);
            v.into_result()?;
            let permission_version = self
                .org
                .unshare_record(resource, record_id, user_id)
                .await?;
            Ok(Response::new(pb::UnshareRecordResponse {
                permission_version,
            }))
        })
        .await
    }

    async fn list_record_shares(
        &self,
        request: Request<pb::ListRecordSharesRequest>,
    ) -> GrpcResult<pb::ListRecordSharesResponse> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let resource = shareable(&mut v, "resource", r.resource);
        let record_id = v.id("record_id", &r.record_id);
        v.into_result()?;
        let shares = self.org.record_shares(resource, record_id).await?;
        Ok(Response::new(pb::ListRecordSharesResponse {
            shares: shares.into_iter().map(share_pb).collect(),
        }))
    }

    async fn create_sharing_rule(
        &self,
        request: Request<pb::CreateSharingRuleRequest>,
    ) -> GrpcResult<pb::SharingRuleResponse> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let name = v.required("name", &r.name, 100);
        let resource = shareable(&mut v, "resource", r.resource);
        let edit = access(&mut v, "access", r.access);
        let grantee = match (
            r.grantee_department_id.is_empty(),
            r.grantee_role_id.is_empty(),
        ) {
            (false, true) => Some(Grantee::Department(
                v.id("grantee_department_id", &r.grantee_department_id),
            )),
            (true, false) => Some(Grantee::Role(v.id("grantee_role_id", &r.grantee_role_id))),
            _ => {
                v.add(
                    "grantee_department_id",
                    "give exactly one of grantee_department_id and grantee_role_id",
                );
                None
            }
        };
        let source = match (r.source_department_id.is_empty(), r.condition) {
            (false, None) => Some(Source::Department(
                v.id("source_department_id", &r.source_department_id),
            )),
            (true, Some(c)) => {
                let field = v.field_name("condition.field", &c.field);
                if c.equals.is_empty() {
                    v.add("condition.equals", "must not be empty");
                }
                Some(Source::Condition {
                    field,
                    equals: c.equals,
                })
            }
            _ => {
                v.add(
                    "source_department_id",
                    "give exactly one of source_department_id and condition",
                );
                None
            }
        };
        v.into_result()?;
        let (Some(grantee), Some(source)) = (grantee, source) else {
            unreachable!("reported as violations above");
        };
        let (rule, permission_version) = self
            .org
            .create_sharing_rule(name, resource, edit, grantee, source)
            .await?;
        Ok(Response::new(pb::SharingRuleResponse {
            rule: Some(rule_pb(rule)),
            permission_version,
        }))
    }

    async fn delete_sharing_rule(
        &self,
        request: Request<pb::DeleteSharingRuleRequest>,
    ) -> GrpcResult<pb::DeleteResponse> {
        let mut v = Violations::default();
        let id = v.id("id", &request.get_ref().id);
        v.into_result()?;
        let permission_version = self.org.delete_sharing_rule(id).await?;
        Ok(Response::new(pb::DeleteResponse {
            id: id.to_string(),
            permission_version,
        }))
    }

    async fn list_sharing_rules(
        &self,
        _request: Request<pb::ListSharingRulesRequest>,
    ) -> GrpcResult<pb::ListSharingRulesResponse> {
        let rules = self.org.sharing_rules().await?;
        Ok(Response::new(pb::ListSharingRulesResponse {
            rules: rules.into_iter().map(rule_pb).collect(),
        }))
    }
}
