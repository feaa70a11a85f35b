//! The gRPC edge of decisions: `crm.permission.v1.AccessService`. The question (user, resource,
//! action, record) is validated here, every violation at once; the answers go back as wire
//! messages.

use crm_proto::permission as pb;
use tonic::{Request, Response};
use uuid::Uuid;

use super::domain::{self, CompiledScope, Explanation, GrantMatch, Reason, RecordRef};
use super::service::Access;
use crate::org::domain::{Action, Resource};
use crate::org::grpc::{mask_pb, parse_action, parse_resource};
use crate::validation::Violations;
use crate::wire::{GrpcResult, ids};

impl From<Reason> for pb::DecisionReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Granted => pb::DecisionReason::Granted,
            Reason::NoGrant => pb::DecisionReason::NoGrant,
            Reason::OutOfScope => pb::DecisionReason::OutOfScope,
            Reason::UserDisabled => pb::DecisionReason::UserDisabled,
            Reason::UnknownUser => pb::DecisionReason::UnknownUser,
        }
    }
}

impl From<CompiledScope> for pb::CompiledScope {
    fn from(c: CompiledScope) -> Self {
        pb::CompiledScope {
            primary_department_id: c
                .primary_department_id
                .map(|d| d.to_string())
                .unwrap_or_default(),
            all: c.scope.all,
            owner_ids: ids(c.scope.owner_ids),
            department_ids: ids(c.scope.department_ids),
            record_ids: ids(c.scope.record_ids),
            conditions: c
                .scope
                .conditions
                .into_iter()
                .map(|(field, equals)| pb::RecordCondition { field, equals })
                .collect(),
            fields: c
                .fields
                .into_iter()
                .map(|(field, access)| pb::FieldAccess {
                    field,
                    visibility: pb::FieldVisibility::from(access.visibility) as i32,
                    mask: mask_pb(access.mask) as i32,
                })
                .collect(),
            permission_version: c.permission_version,
        }
    }
}

fn role_ref(r: domain::RoleRef) -> pb::RoleRef {
    pb::RoleRef {
        id: r.id.to_string(),
        name: r.name,
    }
}

impl From<GrantMatch> for pb::GrantMatch {
    fn from(g: GrantMatch) -> Self {
        pb::GrantMatch {
            assigned_role: Some(role_ref(g.assigned_role)),
            granting_role: Some(role_ref(g.granting_role)),
            scope: pb::DataScope::from(g.scope) as i32,
            covers_record: g.covers_record,
        }
    }
}

impl From<Explanation> for pb::Explanation {
    fn from(e: Explanation) -> Self {
        let permission_version = e.compiled.permission_version;
        pb::Explanation {
            allowed: e.allowed,
            reason: pb::DecisionReason::from(e.reason) as i32,
            summary: e.summary,
            roles: e.roles.into_iter().map(role_ref).collect(),
            grants: e.grants.into_iter().map(Into::into).collect(),
            scope: Some(e.compiled.into()),
            permission_version,
        }
    }
}

fn record(v: &mut Violations, record: Option<pb::RecordRef>) -> Option<RecordRef> {
    record.map(|r| RecordRef {
        owner_id: v.optional_uuid("record.owner_id", &r.owner_id),
        department_id: v.optional_uuid("record.department_id", &r.department_id),
        id: v.optional_uuid("record.record_id", &r.record_id),
        attributes: r.attributes.into_iter().collect(),
    })
}
pub struct AccessApi {
    access: Access,
}

impl AccessApi {
    pub fn new(access: Access) -> Self {
        Self { access }
    }
}

/// The question every decision RPC asks: who, on what, doing what.
fn question(
    v: &mut Violations,
    user_id: &str,
    (resource_name, resource): (&str, i32),
    action: i32,
) -> (Uuid, Resource, Action) {
    (
        v.id("user_id", user_id),
        parse_resource(v, "resource", resource_name, resource),
        parse_action(v, "action", action),
    )
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for AccessApi {
    async fn check(&self, request: Request<pb::CheckRequest>) -> GrpcResult<pb::CheckResponse> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let (user_id, resource, action) =
            question(&mut v, &r.user_id, (&r.resource_name, r.resource), r.action);
        let record = record(&mut v, r.record);
        v.into_result()?;
        let d = self.access.check(user_id, resource, action, record).await?;
        Ok(Response::new(pb::CheckResponse {
            allowed: d.allowed,
            reason: pb::DecisionReason::from(d.reason) as i32,
            permission_version: d.permission_version,
        }))
    }

    async fn compile_scope(
        &self,
        request: Request<pb::CompileScopeRequest>,
    ) -> GrpcResult<pb::CompiledScope> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let (user_id, resource, action) =
            question(&mut v, &r.user_id, (&r.resource_name, r.resource), r.action);
        v.into_result()?;
        Ok(Response::new(
            self.access
                .compile_scope(user_id, resource, action)
                .await?
                .into(),
        ))
    }

    async fn explain(&self, request: Request<pb::ExplainRequest>) -> GrpcResult<pb::Explanation> {
        let r = request.into_inner();
        let mut v = Violations::default();
        let (user_id, resource, action) =
            question(&mut v, &r.user_id, (&r.resource_name, r.resource), r.action);
        let record = record(&mut v, r.record);
        v.into_result()?;
        Ok(Response::new(
            self.access
                .explain(user_id, resource, action, record)
                .await?
                .into(),
        ))
    }

    async fn get_permission_version(
        &self,
        _: Request<pb::GetPermissionVersionRequest>,
    ) -> GrpcResult<pb::PermissionVersion> {
        Ok(Response::new(pb::PermissionVersion {
            permission_version: self.access.permission_version().await?,
        }))
    }
}
