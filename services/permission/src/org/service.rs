//! The organisation's use cases ([`Org`]): departments, roles with their grants and field rules,
//! and users' places in the organisation.
//!
//! Every write is one [`OrgTx`]: it locks the permission-version row first, checks and changes,
//! enqueues exactly one event per change, and on commit sets the permission version one higher.
//! A write that changes nothing (setting what is already there) rolls back: no new version, no
//! event. Refusals happen before anything is written, and the transaction is dropped with them.

use crate::registry::service as registry;
use crm_errors::{ApiError, Code, FieldViolation};
use crm_events::outbox::{NewEvent, Outbox};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::domain::{
    Action, Department, DepartmentPatch, FieldRule, Grant, Memberships, NewDepartment, NewRole,
    Resource, Role, RolePatch, UserOrg,
};
use super::store::{self, Tree};
use crate::error::{Error, Result};
use crate::events::now;

fn invalid(field: &str, message: &str) -> Error {
    ApiError::invalid(vec![FieldViolation::new(field, message)]).into()
}

fn precondition(message: impl Into<String>) -> Error {
    ApiError::new(Code::FailedPrecondition, message).into()
}

fn already_exists(field: &str, message: &str) -> Error {
    let mut api = ApiError::new(Code::AlreadyExists, message);
    api.violations.push(FieldViolation::new(field, "is taken"));
    api.into()
}

/// One write on the organisation. Holds the permission-version lock from `begin` to the end.
pub struct OrgTx<'o> {
    tx: Transaction<'static, Postgres>,
    outbox: &'o Outbox,
    /// The version before this transaction.
    current: i64,
    changed: bool,
}

impl<'o> OrgTx<'o> {
    pub async fn begin(pool: &PgPool, outbox: &'o Outbox) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let current = store::lock_permission_version(&mut tx).await?;
        Ok(Self {
            tx,
            outbox,
            current,
            changed: false,
        })
    }

    /// The version this transaction commits (if it changes anything).
    pub fn next_version(&self) -> i64 {
        self.current + 1
    }

    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }

    /// Records one change: its event, with the permission version it produces added to `data`.
    pub async fn event(
        &mut self,
        event_type: &str,
        subject: Uuid,
        mut data: serde_json::Value,
    ) -> Result<()> {
        data["permission_version"] = self.next_version().into();
        crate::actor::stamp(&mut data);
        self.outbox
            .enqueue(
                &mut self.tx,
                NewEvent {
                    event_type: event_type.into(),
                    subject: subject.to_string(),
                    data,
                },
            )
            .await?;
        self.changed = true;
        Ok(())
    }

    /// Commits with the next permission version when something changed, otherwise rolls back.
    /// Returns the permission version now in force.
    pub async fn finish(mut self) -> Result<i64> {
        if !self.changed {
            self.tx.rollback().await?;
            return Ok(self.current);
        }
        let version = self.next_version();
        store::set_permission_version(&mut self.tx, version).await?;
        self.tx.commit().await?;
        self.outbox.notify_committed();
        metrics::counter!("crm_permission_org_changes_total").increment(1);
        Ok(version)
    }
}

/// A written record and the permission version in force after the write.
pub struct Written<T> {
    pub record: T,
    pub permission_version: i64,
}

/// Administration of departments, roles and users' places in the organisation.
#[derive(Clone)]
pub struct Org {
    pool: PgPool,
    outbox: Outbox,
}

impl Org {
    pub fn new(pool: PgPool, outbox: Outbox) -> Self {
        Self { pool, outbox }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn begin(&self) -> Result<OrgTx<'_>> {
        OrgTx::begin(&self.pool, &self.outbox).await
    }

    async fn finish<T>(tx: OrgTx<'_>, record: T) -> Result<Written<T>> {
        Ok(Written {
            permission_version: tx.finish().await?,
            record,
        })
    }

    // --- departments ---------------------------------------------------------------------------

    #[tracing::instrument(name = "create department", skip_all)]
    pub async fn create_department(&self, new: NewDepartment) -> Result<Written<Department>> {
        let mut tx = self.begin().await?;
        let department = create_department_in(&mut tx, new).await?;
        Self::finish(tx, department).await
    }

    pub async fn get_department(&self, id: Uuid) -> Result<Department> {
        let mut conn = self.pool.acquire().await?;
        store::get_department(&mut conn, id, false)
            .await?
            .ok_or_else(|| ApiError::not_found("department").into())
    }

    /// The whole tree and the permission version it was read at (one snapshot).
    pub async fn list_departments(&self) -> Result<(Vec<Department>, i64)> {
        let mut tx = self.read_only().await?;
        let departments = store::list_departments(&mut tx).await?;
        let version = store::permission_version(&mut tx).await?;
        tx.commit().await?;
        Ok((departments, version))
    }

    /// A read-only transaction whose statements all see the same snapshot.
    async fn read_only(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        store::set_read_only_snapshot(&mut tx).await?;
        Ok(tx)
    }

    #[tracing::instrument(name = "update department", skip_all)]
    pub async fn update_department(
        &self,
        id: Uuid,
        expected_version: i64,
        patch: DepartmentPatch,
    ) -> Result<Written<Department>> {
        let mut tx = self.begin().await?;
        let mut department = store::get_department(tx.conn(), id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("department"))?;
        ApiError::check_version(expected_version, department.version)?;
        if let Some(Some(parent)) = patch.parent_id
            && Some(parent) != department.parent_id
        {
            if store::get_department(tx.conn(), parent, false)
                .await?
                .is_none()
            {
                return Err(invalid("parent_id", "no such department"));
            }
            if store::is_ancestor_or_self(tx.conn(), Tree::Departments, id, parent).await? {
                return Err(precondition(
                    "a department cannot move under itself or one of its descendants",
                ));
            }
        }
        let changes = department.apply(patch);
        if changes.is_empty() {
            return Self::finish(tx, department).await;
        }
        department.version += 1;
        department.updated_at = now();
        match store::update_department(tx.conn(), &department).await {
            Err(err) if err.is_unique_violation(store::DEPARTMENT_NAME_CONSTRAINT) => {
                return Err(sibling_name_taken());
            }
            other => other?,
        }
        tx.event(
            "permission.department.updated",
            id,
            serde_json::json!({ "department": department, "changes": changes }),
        )
        .await?;
        Self::finish(tx, department).await
    }

    #[tracing::instrument(name = "delete department", skip_all)]
    pub async fn delete_department(&self, id: Uuid, expected_version: Option<i64>) -> Result<i64> {
        let mut tx = self.begin().await?;
        let department = store::get_department(tx.conn(), id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("department"))?;
        if let Some(expected) = expected_version {
            ApiError::check_version(expected, department.version)?;
        }
        let (children, members) = store::department_dependents(tx.conn(), id).await?;
        if children > 0 {
            return Err(precondition(format!(
                "the department has {children} child department(s): move or delete them first"
            )));
        }
        if members > 0 {
            return Err(precondition(format!(
                "the department has {members} member(s): move them to other departments first"
            )));
        }
        store::delete_department(tx.conn(), id).await?;
        tx.event(
            "permission.department.deleted",
            id,
            serde_json::json!({ "id": id, "name": department.name, "version": department.version }),
        )
        .await?;
        tx.finish().await
    }

    // --- roles ---------------------------------------------------------------------------------

    #[tracing::instrument(name = "create role", skip_all)]
    pub async fn create_role(&self, new: NewRole) -> Result<Written<Role>> {
        let mut tx = self.begin().await?;
        let role = create_role_in(&mut tx, new, Vec::new(), Vec::new()).await?;
        Self::finish(tx, role).await
    }

    pub async fn get_role(&self, id: Uuid) -> Result<Role> {
        let mut conn = self.pool.acquire().await?;
        store::get_role(&mut conn, id, false)
            .await?
            .ok_or_else(|| ApiError::not_found("role").into())
    }

    pub async fn list_roles(&self) -> Result<(Vec<Role>, i64)> {
        let mut tx = self.read_only().await?;
        let roles = store::list_roles(&mut tx).await?;
        let version = store::permission_version(&mut tx).await?;
        tx.commit().await?;
        Ok((roles, version))
    }

    #[tracing::instrument(name = "update role", skip_all)]
    pub async fn update_role(
        &self,
        id: Uuid,
        expected_version: i64,
        patch: RolePatch,
    ) -> Result<Written<Role>> {
        let mut tx = self.begin().await?;
        let mut role = lock_role(&mut tx, id, expected_version).await?;
        if let Some(Some(parent)) = patch.parent_role_id
            && Some(parent) != role.parent_role_id
        {
            if store::get_role(tx.conn(), parent, false).await?.is_none() {
                return Err(invalid("parent_role_id", "no such role"));
            }
            if store::is_ancestor_or_self(tx.conn(), Tree::Roles, id, parent).await? {
                return Err(precondition(
                    "a role cannot inherit from itself or from a role that inherits from it",
                ));
            }
        }
        let changes = role.apply(patch);
        if changes.is_empty() {
            return Self::finish(tx, role).await;
        }
        role.version += 1;
        role.updated_at = now();
        match store::update_role(tx.conn(), &role).await {
            Err(err) if err.is_unique_violation(store::ROLE_NAME_CONSTRAINT) => {
                return Err(already_exists("name", "a role with this name exists"));
            }
            other => other?,
        }
        tx.event(
            "permission.role.updated",
            id,
            serde_json::json!({ "role": role, "changes": changes }),
        )
        .await?;
        Self::finish(tx, role).await
    }

    #[tracing::instrument(name = "delete role", skip_all)]
    pub async fn delete_role(&self, id: Uuid, expected_version: Option<i64>) -> Result<i64> {
        let mut tx = self.begin().await?;
        let role = store::get_role(tx.conn(), id, true)
            .await?
            .ok_or_else(|| ApiError::not_found("role"))?;
        if let Some(expected) = expected_version {
            ApiError::check_version(expected, role.version)?;
        }
        let (children, holders) = store::role_dependents(tx.conn(), id).await?;
        if children > 0 {
            return Err(precondition(format!(
                "{children} role(s) inherit from this role: re-parent or delete them first"
            )));
        }
        if holders > 0 {
            return Err(precondition(format!(
                "{holders} user(s) hold this role: unassign it first"
            )));
        }
        store::delete_role(tx.conn(), id).await?;
        tx.event(
            "permission.role.deleted",
            id,
            serde_json::json!({ "id": id, "name": role.name, "version": role.version }),
        )
        .await?;
        tx.finish().await
    }

    #[tracing::instrument(name = "set grant", skip_all)]
    pub async fn set_grant(
        &self,
        role_id: Uuid,
        expected_version: i64,
        grant: Grant,
    ) -> Result<Written<Role>> {
        let mut tx = self.begin().await?;
        let mut role = lock_role(&mut tx, role_id, expected_version).await?;
        registry::require_resource(tx.conn(), grant.resource, "grant.resource").await?;
        set_grant_in(&mut tx, &mut role, grant).await?;
        Self::finish(tx, role).await
    }

    #[tracing::instrument(name = "remove grant", skip_all)]
    pub async fn remove_grant(
        &self,
        role_id: Uuid,
        expected_version: i64,
        resource: Resource,
        action: Action,
    ) -> Result<Written<Role>> {
        let mut tx = self.begin().await?;
        let mut role = lock_role(&mut tx, role_id, expected_version).await?;
        let Some(index) = role
            .grants
            .iter()
            .position(|g| g.resource == resource && g.action == action)
        else {
            return Self::finish(tx, role).await;
        };
        let removed = role.grants.remove(index);
        store::delete_grant(tx.conn(), role_id, resource, action).await?;
        bump_role(&mut tx, &mut role).await?;
        tx.event(
            "permission.grant.removed",
            role_id,
            serde_json::json!({
                "role_id": role_id,
                "role_name": role.name,
                "grant": removed,
                "role_version": role.version,
            }),
        )
        .await?;
        Self::finish(tx, role).await
    }

    #[tracing::instrument(name = "set field rule", skip_all)]
    pub async fn set_field_rule(
        &self,
        role_id: Uuid,
        expected_version: i64,
        rule: FieldRule,
    ) -> Result<Written<Role>> {
        let mut tx = self.begin().await?;
        let mut role = lock_role(&mut tx, role_id, expected_version).await?;
        registry::require_rule_field(
            tx.conn(),
            rule.resource,
            &rule.field,
            rule.mask,
            ("rule.resource", "rule.field"),
        )
        .await?;
        set_field_rule_in(&mut tx, &mut role, rule).await?;
        Self::finish(tx, role).await
    }

    #[tracing::instrument(name = "remove field rule", skip_all)]
    pub async fn remove_field_rule(
        &self,
        role_id: Uuid,
        expected_version: i64,
        resource: Resource,
        field: &str,
    ) -> Result<Written<Role>> {
        let mut tx = self.begin().await?;
        let mut role = lock_role(&mut tx, role_id, expected_version).await?;
        let Some(index) = role
            .field_rules
            .iter()
            .position(|r| r.resource == resource && r.field == field)
        else {
            return Self::finish(tx, role).await;
        };
        let removed = role.field_rules.remove(index);
        store::delete_field_rule(tx.conn(), role_id, resource, field).await?;
        bump_role(&mut tx, &mut role).await?;
        tx.event(
            "permission.field_rule.removed",
            role_id,
            serde_json::json!({
                "role_id": role_id,
                "role_name": role.name,
                "rule": removed,
                "role_version": role.version,
            }),
        )
        .await?;
        Self::finish(tx, role).await
    }

    // --- users in the organisation -------------------------------------------------------------

    pub async fn get_user_org(&self, user_id: Uuid) -> Result<UserOrg> {
        let mut conn = self.pool.acquire().await?;
        store::get_user_org(&mut conn, user_id, false)
            .await?
            .ok_or_else(|| ApiError::not_found("user").into())
    }

    #[tracing::instrument(name = "set user departments", skip_all)]
    pub async fn set_user_departments(
        &self,
        user_id: Uuid,
        expected_version: i64,
        memberships: Memberships,
    ) -> Result<Written<UserOrg>> {
        let mut tx = self.begin().await?;
        let mut org = lock_user_org(&mut tx, user_id, expected_version).await?;
        // Unknown departments are reported per field, like any other invalid input.
        let wanted = memberships.all();
        let existing = store::existing_departments(tx.conn(), &wanted).await?;
        let mut violations = Vec::new();
        if let Some(primary) = memberships.primary
            && !existing.contains(&primary)
        {
            violations.push(FieldViolation::new(
                "primary_department_id",
                "no such department",
            ));
        }
        for (i, id) in memberships.others.iter().enumerate() {
            if !existing.contains(id) {
                violations.push(FieldViolation::new(
                    format!("other_department_ids[{i}]"),
                    "no such department",
                ));
            }
        }
        if !violations.is_empty() {
            return Err(ApiError::invalid(violations).into());
        }
        set_user_departments_in(&mut tx, &mut org, memberships).await?;
        Self::finish(tx, org).await
    }

    #[tracing::instrument(name = "set user manager", skip_all)]
    pub async fn set_user_manager(
        &self,
        user_id: Uuid,
        expected_version: i64,
        manager: Option<Uuid>,
    ) -> Result<Written<UserOrg>> {
        let mut tx = self.begin().await?;
        let mut org = lock_user_org(&mut tx, user_id, expected_version).await?;
        if org.manager_id == manager {
            return Self::finish(tx, org).await;
        }
        if let Some(manager) = manager {
            if manager == user_id {
                return Err(precondition("a user cannot be their own manager"));
            }
            if !store::user_exists(tx.conn(), manager).await? {
                return Err(invalid("manager_id", "no such user"));
            }
            if store::is_ancestor_or_self(tx.conn(), Tree::Managers, user_id, manager).await? {
                return Err(precondition(
                    "the manager reports to this user (directly or not): that would be a cycle",
                ));
            }
        }
        let previous = org.manager_id;
        store::set_manager(tx.conn(), user_id, manager).await?;
        org.manager_id = manager;
        bump_user_org(&mut tx, &mut org).await?;
        tx.event(
            "permission.user.manager_changed",
            user_id,
            serde_json::json!({
                "user_id": user_id,
                "manager_id": manager,
                "previous_manager_id": previous,
                "version": org.version,
            }),
        )
        .await?;
        Self::finish(tx, org).await
    }

    #[tracing::instrument(name = "assign role", skip_all)]
    pub async fn assign_role(
        &self,
        user_id: Uuid,
        expected_version: i64,
        role_id: Uuid,
    ) -> Result<Written<UserOrg>> {
        let mut tx = self.begin().await?;
        let mut org = lock_user_org(&mut tx, user_id, expected_version).await?;
        let role = store::get_role(tx.conn(), role_id, false)
            .await?
            .ok_or_else(|| invalid("role_id", "no such role"))?;
        assign_role_in(&mut tx, &mut org, &role).await?;
        Self::finish(tx, org).await
    }

    #[tracing::instrument(name = "unassign role", skip_all)]
    pub async fn unassign_role(
        &self,
        user_id: Uuid,
        expected_version: i64,
        role_id: Uuid,
    ) -> Result<Written<UserOrg>> {
        let mut tx = self.begin().await?;
        let mut org = lock_user_org(&mut tx, user_id, expected_version).await?;
        let Some(index) = org.role_ids.iter().position(|r| *r == role_id) else {
            // Not held (or no such role): nothing to do, which is what was asked.
            return Self::finish(tx, org).await;
        };
        org.role_ids.remove(index);
        store::delete_user_role(tx.conn(), user_id, role_id).await?;
        bump_user_org(&mut tx, &mut org).await?;
        tx.event(
            "permission.assignment.removed",
            user_id,
            serde_json::json!({ "user_id": user_id, "role_id": role_id, "version": org.version }),
        )
        .await?;
        Self::finish(tx, org).await
    }
}

fn sibling_name_taken() -> Error {
    already_exists(
        "name",
        "a department with this name exists under the same parent",
    )
}

/// Locks a role and checks the version its writer read.
async fn lock_role(tx: &mut OrgTx<'_>, id: Uuid, expected_version: i64) -> Result<Role> {
    let role = store::get_role(tx.conn(), id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    ApiError::check_version(expected_version, role.version)?;
    Ok(role)
}

async fn bump_role(tx: &mut OrgTx<'_>, role: &mut Role) -> Result<()> {
    role.version += 1;
    role.updated_at = now();
    store::update_role(tx.conn(), role).await
}

/// Locks a user's row and checks the organisation version its writer read.
async fn lock_user_org(
    tx: &mut OrgTx<'_>,
    user_id: Uuid,
    expected_version: i64,
) -> Result<UserOrg> {
    let org = store::get_user_org(tx.conn(), user_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    ApiError::check_version(expected_version, org.version)?;
    Ok(org)
}

async fn bump_user_org(tx: &mut OrgTx<'_>, org: &mut UserOrg) -> Result<()> {
    org.version += 1;
    store::set_org_version(tx.conn(), org.user_id, org.version).await
}

// The steps below run inside a caller's OrgTx, so the demo seed composes them into one
// transaction. Each records its event; none checks versions (their callers do).

/// Creates a department under an existing parent (or as a root).
pub(crate) async fn create_department_in(
    tx: &mut OrgTx<'_>,
    new: NewDepartment,
) -> Result<Department> {
    if let Some(parent) = new.parent_id
        && store::get_department(tx.conn(), parent, false)
            .await?
            .is_none()
    {
        return Err(invalid("parent_id", "no such department"));
    }
    let now = now();
    let department = Department {
        id: Uuid::now_v7(),
        name: new.name,
        parent_id: new.parent_id,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    match store::insert_department(tx.conn(), &department).await {
        Err(err) if err.is_unique_violation(store::DEPARTMENT_NAME_CONSTRAINT) => {
            return Err(sibling_name_taken());
        }
        other => other?,
    }
    tx.event(
        "permission.department.created",
        department.id,
        serde_json::json!({ "department": department }),
    )
    .await?;
    Ok(department)
}

/// Creates a role with its initial grants and field rules (the RPC starts with none; the demo
/// seed gives them at once, so one `permission.role.created` event describes the whole role).
pub(crate) async fn create_role_in(
    tx: &mut OrgTx<'_>,
    new: NewRole,
    mut grants: Vec<Grant>,
    mut field_rules: Vec<FieldRule>,
) -> Result<Role> {
    if let Some(parent) = new.parent_role_id
        && store::get_role(tx.conn(), parent, false).await?.is_none()
    {
        return Err(invalid("parent_role_id", "no such role"));
    }
    let now = now();
    let role = Role {
        id: Uuid::now_v7(),
        name: new.name,
        description: new.description,
        parent_role_id: new.parent_role_id,
        grants: {
            grants.sort();
            grants.dedup_by_key(|g| (g.resource, g.action));
            grants
        },
        field_rules: {
            field_rules.sort();
            field_rules.dedup_by(|a, b| (a.resource, &a.field) == (b.resource, &b.field));
            field_rules
        },
        version: 1,
        created_at: now,
        updated_at: now,
    };
    match store::insert_role(tx.conn(), &role).await {
        Err(err) if err.is_unique_violation(store::ROLE_NAME_CONSTRAINT) => {
            return Err(already_exists("name", "a role with this name exists"));
        }
        other => other?,
    }
    for grant in &role.grants {
        store::upsert_grant(tx.conn(), role.id, grant).await?;
    }
    for rule in &role.field_rules {
        store::upsert_field_rule(tx.conn(), role.id, rule).await?;
    }
    tx.event(
        "permission.role.created",
        role.id,
        serde_json::json!({ "role": role }),
    )
    .await?;
    Ok(role)
}

/// Adds or rescopes a grant of `role` (already locked); nothing when it is already so.
pub(crate) async fn set_grant_in(tx: &mut OrgTx<'_>, role: &mut Role, grant: Grant) -> Result<()> {
    let existing = role
        .grants
        .iter_mut()
        .find(|g| g.resource == grant.resource && g.action == grant.action);
    let previous_scope = match existing {
        Some(g) if g.scope == grant.scope => return Ok(()),
        Some(g) => Some(std::mem::replace(&mut g.scope, grant.scope)),
        None => {
            role.grants.push(grant);
            role.grants.sort();
            None
        }
    };
    store::upsert_grant(tx.conn(), role.id, &grant).await?;
    bump_role(tx, role).await?;
    tx.event(
        "permission.grant.set",
        role.id,
        serde_json::json!({
            "role_id": role.id,
            "role_name": role.name,
            "grant": grant,
            "previous_scope": previous_scope,
            "role_version": role.version,
        }),
    )
    .await
}

pub(crate) async fn set_field_rule_in(
    tx: &mut OrgTx<'_>,
    role: &mut Role,
    rule: FieldRule,
) -> Result<()> {
    let existing = role
        .field_rules
        .iter_mut()
        .find(|r| r.resource == rule.resource && r.field == rule.field);
    let previous = match existing {
        Some(r) if *r == rule => return Ok(()),
        Some(r) => Some(std::mem::replace(r, rule.clone())),
        None => {
            role.field_rules.push(rule.clone());
            role.field_rules.sort();
            None
        }
    };
    store::upsert_field_rule(tx.conn(), role.id, &rule).await?;
    bump_role(tx, role).await?;
    tx.event(
        "permission.field_rule.set",
        role.id,
        serde_json::json!({
            "role_id": role.id,
            "role_name": role.name,
            "rule": rule,
            "previous": previous,
            "role_version": role.version,
        }),
    )
    .await
}

/// Replaces a user's memberships (departments already known to exist).
pub(crate) async fn set_user_departments_in(
    tx: &mut OrgTx<'_>,
    org: &mut UserOrg,
    memberships: Memberships,
) -> Result<()> {
    let departments = memberships.all();
    if org.primary_department_id == memberships.primary && org.department_ids == departments {
        return Ok(());
    }
    let previous_primary = org.primary_department_id;
    let previous = std::mem::replace(&mut org.department_ids, departments);
    org.primary_department_id = memberships.primary;
    store::replace_memberships(tx.conn(), org.user_id, &memberships).await?;
    bump_user_org(tx, org).await?;
    tx.event(
        "permission.user.departments_changed",
        org.user_id,
        serde_json::json!({
            "user_id": org.user_id,
            "primary_department_id": org.primary_department_id,
            "department_ids": org.department_ids,
            "previous_primary_department_id": previous_primary,
            "previous_department_ids": previous,
            "version": org.version,
        }),
    )
    .await
}

pub(crate) async fn assign_role_in(
    tx: &mut OrgTx<'_>,
    org: &mut UserOrg,
    role: &Role,
) -> Result<()> {
    if org.role_ids.contains(&role.id) {
        return Ok(());
    }
    store::insert_user_role(tx.conn(), org.user_id, role.id, now()).await?;
    org.role_ids.push(role.id);
    org.role_ids.sort();
    bump_user_org(tx, org).await?;
    tx.event(
        "permission.assignment.added",
        org.user_id,
        serde_json::json!({
            "user_id": org.user_id,
            "role_id": role.id,
            "role_name": role.name,
            "version": org.version,
        }),
    )
    .await
}
