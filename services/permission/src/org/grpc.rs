//! The gRPC edge of the organisation: `crm.permission.v1.OrgService`. Wire values become
//! validated domain values here (every violation of a request reported at once, with its field
//! path), and domain results go back as wire messages. The wire forms of the access vocabulary
//! ([`Resource`], [`Action`], [`DataScope`], [`Visibility`], [`MaskKind`]) are here too, for
//! every edge that speaks it ([`crate::access`], [`crate::sharing`]).

use crm_proto::permission as pb;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::domain::{
    self, Action, DataScope, Department, DepartmentPatch, FieldRule, Grant, MaskKind,
    NewDepartment, NewRole, Resource, Role, RolePatch, UserOrg, Visibility, field_name, field_rule,
    memberships, role_name,
};
use super::service::{Org, Written};
use crate::validation::Violations;
use crate::wire::{GrpcResult, ids, timestamp};

fn opt_id(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

// --- enums ----------------------------------------------------------------------------------

impl From<Action> for pb::Action {
    fn from(a: Action) -> Self {
        match a {
            Action::Read => pb::Action::Read,
            Action::Create => pb::Action::Create,
            Action::Update => pb::Action::Update,
            Action::Delete => pb::Action::Delete,
            Action::Export => pb::Action::Export,
            Action::Assign => pb::Action::Assign,
            Action::Approve => pb::Action::Approve,
        }
    }
}

impl From<DataScope> for pb::DataScope {
    fn from(s: DataScope) -> Self {
        match s {
            DataScope::Own => pb::DataScope::Own,
            DataScope::OwnAndSubordinates => pb::DataScope::OwnAndSubordinates,
            DataScope::Department => pb::DataScope::Department,
            DataScope::DepartmentAndChildren => pb::DataScope::DepartmentAndChildren,
            DataScope::All => pb::DataScope::All,
        }
    }
}

impl From<Visibility> for pb::FieldVisibility {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Hidden => pb::FieldVisibility::Hidden,
            Visibility::ReadOnly => pb::FieldVisibility::ReadOnly,
            Visibility::Editable => pb::FieldVisibility::Editable,
        }
    }
}

/// A rule's mask on the wire (UNSPECIFIED: none).
pub fn mask_pb(m: Option<MaskKind>) -> pb::MaskKind {
    match m {
        None => pb::MaskKind::Unspecified,
        Some(MaskKind::Phone) => pb::MaskKind::Phone,
        Some(MaskKind::Email) => pb::MaskKind::Email,
        Some(MaskKind::IdNumber) => pb::MaskKind::IdNumber,
    }
}

/// The enum names a violation lists, so the message says what is accepted.
fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> String {
    all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ")
}

/// `parsed`, or a violation listing the accepted names and `fallback` (a placeholder that
/// `into_result` never lets through).
fn one_of<T: Copy>(
    v: &mut Violations,
    field: &str,
    parsed: Option<T>,
    all: &[T],
    name: impl Fn(T) -> &'static str,
    fallback: T,
) -> T {
    parsed.unwrap_or_else(|| {
        v.add(field, format!("must be one of {}", names(all, name)));
        fallback
    })
}

/// A resource named on the wire (`resource_name`, else the old enum `raw`); a missing or
/// malformed name is a violation (the value returned then is a placeholder that `into_result`
/// never lets through). Whether the resource is registered is the store's to check.
pub fn parse_resource(v: &mut Violations, field: &str, name: &str, raw: i32) -> Resource {
    Resource::from_wire(name, raw).unwrap_or_else(|| {
        v.add(
            field,
            "must name a resource: 2 to 64 of a-z 0-9 _, starting with a letter",
        );
        Resource::ACCOUNT
    })
}

pub fn parse_action(v: &mut Violations, field: &str, raw: i32) -> Action {
    let parsed = match pb::Action::try_from(raw) {
        Ok(pb::Action::Read) => Some(Action::Read),
        Ok(pb::Action::Create) => Some(Action::Create),
        Ok(pb::Action::Update) => Some(Action::Update),
        Ok(pb::Action::Delete) => Some(Action::Delete),
        Ok(pb::Action::Export) => Some(Action::Export),
        Ok(pb::Action::Assign) => Some(Action::Assign),
        Ok(pb::Action::Approve) => Some(Action::Approve),
        Ok(pb::Action::Unspecified) | Err(_) => None,
    };
    one_of(
        v,
        field,
        parsed,
        Action::ALL,
        |a| pb::Action::from(a).as_str_name(),
        Action::Read,
    )
}

pub fn parse_data_scope(v: &mut Violations, field: &str, raw: i32) -> DataScope {
    let parsed = match pb::DataScope::try_from(raw) {
        Ok(pb::DataScope::Own) => Some(DataScope::Own),
        Ok(pb::DataScope::OwnAndSubordinates) => Some(DataScope::OwnAndSubordinates),
        Ok(pb::DataScope::Department) => Some(DataScope::Department),
        Ok(pb::DataScope::DepartmentAndChildren) => Some(DataScope::DepartmentAndChildren),
        Ok(pb::DataScope::All) => Some(DataScope::All),
        Ok(pb::DataScope::Unspecified) | Err(_) => None,
    };
    one_of(
        v,
        field,
        parsed,
        DataScope::ALL,
        |s| pb::DataScope::from(s).as_str_name(),
        DataScope::Own,
    )
}

/// `None` (and a violation) for UNSPECIFIED and unknown numbers.
pub fn parse_visibility(v: &mut Violations, field: &str, raw: i32) -> Option<Visibility> {
    let parsed = match pb::FieldVisibility::try_from(raw) {
        Ok(pb::FieldVisibility::Hidden) => Some(Visibility::Hidden),
        Ok(pb::FieldVisibility::ReadOnly) => Some(Visibility::ReadOnly),
        Ok(pb::FieldVisibility::Editable) => Some(Visibility::Editable),
        Ok(pb::FieldVisibility::Unspecified) | Err(_) => None,
    };
    if parsed.is_none() {
        v.add(
            field,
            format!(
                "must be one of {}",
                names(Visibility::ALL, |x| pb::FieldVisibility::from(x)
                    .as_str_name())
            ),
        );
    }
    parsed
}

/// UNSPECIFIED is "no mask"; unknown numbers are violations.
pub fn parse_mask(v: &mut Violations, field: &str, raw: i32) -> Option<MaskKind> {
    match pb::MaskKind::try_from(raw) {
        Ok(pb::MaskKind::Unspecified) => None,
        Ok(pb::MaskKind::Phone) => Some(MaskKind::Phone),
        Ok(pb::MaskKind::Email) => Some(MaskKind::Email),
        Ok(pb::MaskKind::IdNumber) => Some(MaskKind::IdNumber),
        Err(_) => {
            v.add(field, "unknown mask kind");
            None
        }
    }
}

/// A delete's version: 0 means "whatever it is now".
fn delete_version(v: &mut Violations, field: &str, raw: i64) -> Option<i64> {
    if raw < 0 {
        v.add(field, "must be the version you read, or 0");
    }
    (raw != 0).then_some(raw)
}

/// A reference in a patch: `None` unchanged, `Some(None)` cleared by "", else a UUID.
fn patch_ref(v: &mut Violations, field: &str, raw: Option<String>) -> Option<Option<Uuid>> {
    raw.map(|s| v.optional_uuid(field, &s))
}

// --- records --------------------------------------------------------------------------------

impl From<Department> for pb::Department {
    fn from(d: Department) -> Self {
        pb::Department {
            id: d.id.to_string(),
            name: d.name,
            parent_id: opt_id(d.parent_id),
            version: d.version,
            created_at: Some(timestamp(d.created_at)),
            updated_at: Some(timestamp(d.updated_at)),
        }
    }
}

impl From<Grant> for pb::Grant {
    fn from(g: Grant) -> Self {
        pb::Grant {
            resource: g.resource.to_pb() as i32,
            resource_name: g.resource.to_string(),
            action: pb::Action::from(g.action) as i32,
            scope: pb::DataScope::from(g.scope) as i32,
        }
    }
}

impl From<FieldRule> for pb::FieldRule {
    fn from(f: FieldRule) -> Self {
        pb::FieldRule {
            resource: f.resource.to_pb() as i32,
            resource_name: f.resource.to_string(),
            field: f.field,
            visibility: pb::FieldVisibility::from(f.visibility) as i32,
            mask: mask_pb(f.mask) as i32,
        }
    }
}

impl From<Role> for pb::Role {
    fn from(r: Role) -> Self {
        pb::Role {
            id: r.id.to_string(),
            name: r.name,
            description: r.description.unwrap_or_default(),
            parent_role_id: opt_id(r.parent_role_id),
            grants: r.grants.into_iter().map(Into::into).collect(),
            field_rules: r.field_rules.into_iter().map(Into::into).collect(),
            version: r.version,
            created_at: Some(timestamp(r.created_at)),
            updated_at: Some(timestamp(r.updated_at)),
        }
    }
}

impl From<UserOrg> for pb::UserOrg {
    fn from(u: UserOrg) -> Self {
        pb::UserOrg {
            user_id: u.user_id.to_string(),
            primary_department_id: opt_id(u.primary_department_id),
            department_ids: ids(u.department_ids),
            manager_id: opt_id(u.manager_id),
            role_ids: ids(u.role_ids),
            version: u.version,
        }
    }
}

impl From<Written<Department>> for pb::DepartmentResponse {
    fn from(w: Written<Department>) -> Self {
        pb::DepartmentResponse {
            department: Some(w.record.into()),
            permission_version: w.permission_version,
        }
    }
}

impl From<Written<Role>> for pb::RoleResponse {
    fn from(w: Written<Role>) -> Self {
        pb::RoleResponse {
            role: Some(w.record.into()),
            permission_version: w.permission_version,
        }
    }
}

impl From<Written<UserOrg>> for pb::UserOrgResponse {
    fn from(w: Written<UserOrg>) -> Self {
        pb::UserOrgResponse {
            user_org: Some(w.record.into()),
            permission_version: w.permission_version,
        }
    }
}

// --- OrgService -----------------------------------------------------------------------------

pub struct OrgApi {
    org: Org,
}

impl OrgApi {
    pub fn new(org: Org) -> Self {
        Self { org }
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, Status> {
    let mut v = Violations::default();
    let id = v.id(field, raw);
    v.into_result()?;
    Ok(id)
}

#[tonic::async_trait]
impl pb::org_service_server::OrgService for OrgApi {
    async fn create_department(
        &self,
        request: Request<pb::CreateDepartmentRequest>,
    ) -> GrpcResult<pb::DepartmentResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Create, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let new = NewDepartment {
                name: v.required("name", &r.name, domain::MAX_DEPARTMENT_NAME),
                parent_id: v.optional_uuid("parent_id", &r.parent_id),
            };
            v.into_result()?;
            Ok(Response::new(self.org.create_department(new).await?.into()))
        })
        .await
    }

    async fn get_department(
        &self,
        request: Request<pb::GetDepartmentRequest>,
    ) -> GrpcResult<pb::Department> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped_any(
            caller,
            &[
                crm_access::Action::Read,
                crm_access::Action::Update,
                crm_access::Action::Delete,
            ],
            async move {
                let id = parse_id("id", &request.get_ref().id)?;
                Ok(Response::new(self.org.get_department(id).await?.into()))
            },
        )
        .await
    }

    async fn list_departments(
        &self,
        request: Request<pb::ListDepartmentsRequest>,
    ) -> GrpcResult<pb::ListDepartmentsResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Read, async move {
            let (departments, permission_version) = self.org.list_departments().await?;
            Ok(Response::new(pb::ListDepartmentsResponse {
                departments: departments.into_iter().map(Into::into).collect(),
                permission_version,
            }))
        })
        .await
    }

    async fn update_department(
        &self,
        request: Request<pb::UpdateDepartmentRequest>,
    ) -> GrpcResult<pb::DepartmentResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.id("id", &r.id);
            let expected = v.version("expected_version", r.expected_version);
            let patch = DepartmentPatch {
                name: r
                    .name
                    .map(|n| v.required("name", &n, domain::MAX_DEPARTMENT_NAME)),
                parent_id: patch_ref(&mut v, "parent_id", r.parent_id),
            };
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .update_department(id, expected, patch)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn delete_department(
        &self,
        request: Request<pb::DeleteDepartmentRequest>,
    ) -> GrpcResult<pb::DeleteResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Delete, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.id("id", &r.id);
            let expected = delete_version(&mut v, "expected_version", r.expected_version);
            v.into_result()?;
            let permission_version = self.org.delete_department(id, expected).await?;
            Ok(Response::new(pb::DeleteResponse {
                id: id.to_string(),
                permission_version,
            }))
        })
        .await
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> GrpcResult<pb::RoleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Create, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let new = NewRole {
                name: role_name(&mut v, "name", &r.name),
                description: v.optional("description", &r.description, domain::MAX_DESCRIPTION),
                parent_role_id: v.optional_uuid("parent_role_id", &r.parent_role_id),
            };
            v.into_result()?;
            Ok(Response::new(self.org.create_role(new).await?.into()))
        })
        .await
    }

    async fn get_role(&self, request: Request<pb::GetRoleRequest>) -> GrpcResult<pb::Role> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped_any(
            caller,
            &[
                crm_access::Action::Read,
                crm_access::Action::Update,
                crm_access::Action::Delete,
            ],
            async move {
                let id = parse_id("id", &request.get_ref().id)?;
                Ok(Response::new(self.org.get_role(id).await?.into()))
            },
        )
        .await
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> GrpcResult<pb::ListRolesResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Read, async move {
            let (roles, permission_version) = self.org.list_roles().await?;
            Ok(Response::new(pb::ListRolesResponse {
                roles: roles.into_iter().map(Into::into).collect(),
                permission_version,
            }))
        })
        .await
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> GrpcResult<pb::RoleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.id("id", &r.id);
            let expected = v.version("expected_version", r.expected_version);
            let patch = RolePatch {
                name: r.name.map(|n| role_name(&mut v, "name", &n)),
                description: r
                    .description
                    .map(|d| v.optional("description", &d, domain::MAX_DESCRIPTION)),
                parent_role_id: patch_ref(&mut v, "parent_role_id", r.parent_role_id),
            };
            v.into_result()?;
            Ok(Response::new(
                self.org.update_role(id, expected, patch).await?.into(),
            ))
        })
        .await
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> GrpcResult<pb::DeleteResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Delete, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let id = v.id("id", &r.id);
            let expected = delete_version(&mut v, "expected_version", r.expected_version);
            v.into_result()?;
            let permission_version = self.org.delete_role(id, expected).await?;
            Ok(Response::new(pb::DeleteResponse {
                id: id.to_string(),
                permission_version,
            }))
        })
        .await
    }

    async fn set_grant(
        &self,
        request: Request<pb::SetGrantRequest>,
    ) -> GrpcResult<pb::RoleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let role_id = v.id("role_id", &r.role_id);
            let expected = v.version("expected_version", r.expected_version);
            let grant = match r.grant {
                Some(g) => Grant {
                    resource: parse_resource(
                        &mut v,
                        "grant.resource",
                        &g.resource_name,
                        g.resource,
                    ),
                    action: parse_action(&mut v, "grant.action", g.action),
                    scope: parse_data_scope(&mut v, "grant.scope", g.scope),
                },
                None => {
                    v.add("grant", "is required");
                    Grant {
                        resource: Resource::ACCOUNT,
                        action: Action::Read,
                        scope: DataScope::Own,
                    }
                }
            };
            v.into_result()?;
            Ok(Response::new(
                self.org.set_grant(role_id, expected, grant).await?.into(),
            ))
        })
        .await
    }

    async fn remove_grant(
        &self,
        request: Request<pb::RemoveGrantRequest>,
    ) -> GrpcResult<pb::RoleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let role_id = v.id("role_id", &r.role_id);
            let expected = v.version("expected_version", r.expected_version);
            let resource = parse_resource(&mut v, "resource", &r.resource_name, r.resource);
            let action = parse_action(&mut v, "action", r.action);
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .remove_grant(role_id, expected, resource, action)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn set_field_rule(
        &self,
        request: Request<pb::SetFieldRuleRequest>,
    ) -> GrpcResult<pb::RoleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let role_id = v.id("role_id", &r.role_id);
            let expected = v.version("expected_version", r.expected_version);
            let rule = match r.rule {
                Some(f) => {
                    let resource =
                        parse_resource(&mut v, "rule.resource", &f.resource_name, f.resource);
                    let visibility = parse_visibility(&mut v, "rule.visibility", f.visibility);
                    let mask = parse_mask(&mut v, "rule.mask", f.mask);
                    field_rule(&mut v, "rule.", resource, &f.field, visibility, mask)
                }
                None => {
                    v.add("rule", "is required");
                    FieldRule {
                        resource: Resource::ACCOUNT,
                        field: String::new(),
                        visibility: Visibility::Hidden,
                        mask: None,
                    }
                }
            };
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .set_field_rule(role_id, expected, rule)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn remove_field_rule(
        &self,
        request: Request<pb::RemoveFieldRuleRequest>,
    ) -> GrpcResult<pb::RoleResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let role_id = v.id("role_id", &r.role_id);
            let expected = v.version("expected_version", r.expected_version);
            let resource = parse_resource(&mut v, "resource", &r.resource_name, r.resource);
            let field = field_name(&mut v, "field", &r.field);
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .remove_field_rule(role_id, expected, resource, &field)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn get_user_org(
        &self,
        request: Request<pb::GetUserOrgRequest>,
    ) -> GrpcResult<pb::UserOrg> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped_any(
            caller,
            &[crm_access::Action::Read, crm_access::Action::Update],
            async move {
                let id = parse_id("user_id", &request.get_ref().user_id)?;
                Ok(Response::new(self.org.get_user_org(id).await?.into()))
            },
        )
        .await
    }

    async fn set_user_departments(
        &self,
        request: Request<pb::SetUserDepartmentsRequest>,
    ) -> GrpcResult<pb::UserOrgResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let user_id = v.id("user_id", &r.user_id);
            let expected = v.version("expected_version", r.expected_version);
            let memberships =
                memberships(&mut v, &r.primary_department_id, &r.other_department_ids);
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .set_user_departments(user_id, expected, memberships)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn set_user_manager(
        &self,
        request: Request<pb::SetUserManagerRequest>,
    ) -> GrpcResult<pb::UserOrgResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let user_id = v.id("user_id", &r.user_id);
            let expected = v.version("expected_version", r.expected_version);
            let manager = v.optional_uuid("manager_id", &r.manager_id);
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .set_user_manager(user_id, expected, manager)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> GrpcResult<pb::UserOrgResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let user_id = v.id("user_id", &r.user_id);
            let expected = v.version("expected_version", r.expected_version);
            let role_id = v.id("role_id", &r.role_id);
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .assign_role(user_id, expected, role_id)
                    .await?
                    .into(),
            ))
        })
        .await
    }

    async fn unassign_role(
        &self,
        request: Request<pb::UnassignRoleRequest>,
    ) -> GrpcResult<pb::UserOrgResponse> {
        let caller = crate::actor::caller(&request);
        crate::actor::scoped(caller, crm_access::Action::Update, async move {
            let r = request.into_inner();
            let mut v = Violations::default();
            let user_id = v.id("user_id", &r.user_id);
            let expected = v.version("expected_version", r.expected_version);
            let role_id = v.id("role_id", &r.role_id);
            v.into_result()?;
            Ok(Response::new(
                self.org
                    .unassign_role(user_id, expected, role_id)
                    .await?
                    .into(),
            ))
        })
        .await
    }
}
