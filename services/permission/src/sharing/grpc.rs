//! The gRPC edge of sharing: `crm.permission.v1.SharingService`. Wire values become validated
//! values here (every violation at once); results go back as wire messages. Who may call what is
//! checked here ([`crate::actor`]): a user needs the `organisation` grant for the action (READ to
//! list, CREATE / UPDATE / DELETE to change), and the events name them as the actor.

use crm_proto::permission as pb;
use tonic::{Request, Response};

use super::domain::{Grantee, RecordShare, SharingRule, Source};
use super::service::Sharing;
use crate::org::domain::{Resource, field_name};
use crate::org::grpc::parse_resource;
use crate::validation::Violations;
use crate::wire::{GrpcResult, timestamp};

/// `READ` → false, `EDIT` → true.
fn parse_access(v: &mut Violations, field: &str, raw: i32) -> bool {
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
fn shareable(v: &mut Violations, field: &str, name: &str, raw: i32) -> Resource {
    let resource = parse_resource(v, field, name, raw);
    if matches!(resource, Resource::AUDIT | Resource::ORGANISATION) {
        v.add(field, "only records of the services can be shared");
    }
    resource
}

fn share_pb(s: RecordShare) -> pb::RecordShare {
    pb::RecordShare {
        resource: s.resource.to_pb() as i32,
        resource_name: s.resource.to_string(),
        record_id: s.record_id.to_string(),
        user_id: s.user_id.to_string(),
        access: access_pb(s.edit),
        created_at: Some(timestamp(s.created_at)),
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
        resource: r.resource.to_pb() as i32,
        resource_name: r.resource.to_string(),
        access: access_pb(r.edit),
        grantee_department_id,
        grantee_role_id,
        source_department_id,
        condition,
        created_at: Some(timestamp(r.created_at)),
    }
}

pub struct SharingApi {
    sharing: Sharing,
}

impl SharingApi {
    pub fn new(sharing: Sharing) -> Self {
        Self { sharing }
    }
}

#[tonic::async_trait]
impl pb::sharing_service_server::SharingService for SharingApi {
    async fn share_record(
        &self,
        request: Request<pb::ShareRecordRequest>,
    ) -> GrpcResult<pb::RecordShareResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let resource = shareable(&mut v, "resource", &r.resource_name, r.resource);
            let record_id = v.id("record_id", &r.record_id);
            let user_id = v.id("user_id", &r.user_id);
            let edit = parse_access(&mut v, "access", r.access);
            v.into_result()?;
            let (share, permission_version) = self
                .sharing
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
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let resource = shareable(&mut v, "resource", &r.resource_name, r.resource);
            let record_id = v.id("record_id", &r.record_id);
            let user_id = v.id("user_id", &r.user_id);
            v.into_result()?;
            let permission_version = self
                .sharing
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
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Read, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let resource = shareable(&mut v, "resource", &r.resource_name, r.resource);
            let record_id = v.id("record_id", &r.record_id);
            v.into_result()?;
            let shares = self.sharing.record_shares(resource, record_id).await?;
            Ok(Response::new(pb::ListRecordSharesResponse {
                shares: shares.into_iter().map(share_pb).collect(),
            }))
        })
        .await
    }

    async fn create_sharing_rule(
        &self,
        request: Request<pb::CreateSharingRuleRequest>,
    ) -> GrpcResult<pb::SharingRuleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Create, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let name = v.required("name", &r.name, 100);
            let resource = shareable(&mut v, "resource", &r.resource_name, r.resource);
            let edit = parse_access(&mut v, "access", r.access);
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
                    let field = field_name(&mut v, "condition.field", &c.field);
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
                .sharing
                .create_sharing_rule(name, resource, edit, grantee, source)
                .await?;
            Ok(Response::new(pb::SharingRuleResponse {
                rule: Some(rule_pb(rule)),
                permission_version,
            }))
        })
        .await
    }

    async fn delete_sharing_rule(
        &self,
        request: Request<pb::DeleteSharingRuleRequest>,
    ) -> GrpcResult<pb::DeleteResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Delete, async move {
            let mut v = Violations::default();
            let id = v.id("id", &request.get_ref().id);
            v.into_result()?;
            let permission_version = self.sharing.delete_sharing_rule(id).await?;
            Ok(Response::new(pb::DeleteResponse {
                id: id.to_string(),
                permission_version,
            }))
        })
        .await
    }

    async fn list_sharing_rules(
        &self,
        request: Request<pb::ListSharingRulesRequest>,
    ) -> GrpcResult<pb::ListSharingRulesResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Read, async move {
            let rules = self.sharing.sharing_rules().await?;
            Ok(Response::new(pb::ListSharingRulesResponse {
                rules: rules.into_iter().map(rule_pb).collect(),
            }))
        })
        .await
    }
}
