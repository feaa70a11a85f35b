//! SQL for decisions: the snapshot of one user's slice of the organisation, in one statement.
//! The permission version it carries is written by [`crate::org`]'s transactions.

use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::domain::{
    DepartmentEdge, FieldRuleRow, GrantRow, ReportEdge, RoleNode, ShareRow, SharingRuleRow,
    Snapshot, UserState,
};
use crate::error::{Error, Result};
use crate::org::domain::Resource;
use crate::users::domain::UserStatus;

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    permission_version: i64,
    status: Option<String>,
    assigned_role_ids: Vec<Uuid>,
    department_ids: Vec<Uuid>,
    primary_department_id: Option<Uuid>,
    departments: Json<Vec<DepartmentEdge>>,
    reports: Json<Vec<ReportEdge>>,
    roles: Json<Vec<RoleNode>>,
    grants: Json<Vec<GrantRow>>,
    field_rules: Json<Vec<FieldRuleRow>>,
    shares: Json<Vec<ShareRow>>,
    sharing_rules: Json<Vec<SharingRuleRow>>,
}

/// Everything a decision about `user_id` and `resource` needs, in ONE statement: one snapshot,
/// so the permission version returned is exactly the version of the data (a decision cached
/// under it is never older than it claims). Walks only the user's slice: the departments below
/// theirs, the users below them, their roles and the roles those inherit from — each a
/// recursive CTE, `UNION` so that even cyclic data ends.
#[tracing::instrument(name = "sql access.snapshot", skip_all, fields(db.system = "postgresql"))]
pub async fn load_snapshot(
    conn: &mut PgConnection,
    user_id: Uuid,
    resource: Resource,
) -> Result<Snapshot> {
    let row: SnapshotRow = sqlx::query_as(
        "WITH RECURSIVE
         memberships AS (
             SELECT department_id, is_primary FROM user_departments WHERE user_id = $1
         ),
         subtree (id, parent_id) AS (
             SELECT d.id, d.parent_id FROM departments d
              WHERE d.id IN (SELECT department_id FROM memberships)
             UNION
             SELECT d.id, d.parent_id FROM departments d JOIN subtree s ON d.parent_id = s.id
         ),
         below (user_id, manager_id) AS (
             SELECT u.id, u.manager_id FROM users u WHERE u.manager_id = $1
             UNION
             SELECT u.id, u.manager_id FROM users u JOIN below b ON u.manager_id = b.user_id
         ),
         assigned AS (
             SELECT role_id FROM user_roles WHERE user_id = $1
         ),
         lineage (id, name, parent_id) AS (
             SELECT r.id, r.name, r.parent_role_id FROM roles r
              WHERE r.id IN (SELECT role_id FROM assigned)
             UNION
             SELECT r.id, r.name, r.parent_role_id FROM roles r JOIN lineage l ON r.id = l.parent_id
         ),
         -- The user's departments and every one above them: a rule for a department reaches
         -- the members of the departments below it too.
         above (id, parent_id) AS (
             SELECT d.id, d.parent_id FROM departments d
              WHERE d.id IN (SELECT department_id FROM memberships)
             UNION
             SELECT d.id, d.parent_id FROM departments d JOIN above a ON d.id = a.parent_id
         ),
         rules AS (
             SELECT * FROM sharing_rules r
              WHERE r.resource = $2
                AND (r.grantee_department_id IN (SELECT id FROM above)
                     OR r.grantee_role_id IN (SELECT id FROM lineage))
         )
         SELECT
             (SELECT version FROM permission_version) AS permission_version,
             (SELECT status FROM users WHERE id = $1) AS status,
             ARRAY(SELECT role_id FROM assigned ORDER BY role_id) AS assigned_role_ids,
             ARRAY(SELECT department_id FROM memberships ORDER BY department_id) AS department_ids,
             (SELECT department_id FROM memberships WHERE is_primary) AS primary_department_id,
             (SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'parent_id', parent_id)), '[]')
                FROM subtree) AS departments,
             (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'user_id', user_id, 'manager_id', manager_id)), '[]')
                FROM below) AS reports,
             (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', id, 'name', name, 'parent_id', parent_id)), '[]')
                FROM lineage) AS roles,
             (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'role_id', g.role_id, 'resource', g.resource, 'action', g.action,
                         'scope', g.scope)), '[]')
                FROM role_grants g
               WHERE g.role_id IN (SELECT id FROM lineage) AND g.resource = $2) AS grants,
             (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'role_id', f.role_id, 'resource', f.resource, 'field', f.field,
                         'visibility', f.visibility, 'mask', f.mask)), '[]')
                FROM role_field_rules f
               WHERE f.role_id IN (SELECT id FROM lineage) AND f.resource = $2) AS field_rules,
             (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'record_id', sh.record_id, 'edit', sh.access = 'edit')), '[]')
                FROM record_shares sh
               WHERE sh.user_id = $1 AND sh.resource = $2) AS shares,
             (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'edit', r.access = 'edit', 'field', r.condition_field,
                         'equals', r.condition_equals,
                         'departments', (
                             WITH RECURSIVE below (id) AS (
                                 SELECT r.source_department_id WHERE r.source_department_id IS NOT NULL
                                 UNION
                                 SELECT d.id FROM departments d JOIN below b ON d.parent_id = b.id
                             )
                             SELECT coalesce(jsonb_agg(id), '[]') FROM below))), '[]')
                FROM rules r) AS sharing_rules",
    )
    .bind(user_id)
    .bind(resource.as_str())
    .fetch_one(conn)
    .await?;
    let state = match row.status.as_deref() {
        None => UserState::Unknown,
        Some(s) => match UserStatus::parse(s) {
            Some(UserStatus::Active) => UserState::Active,
            Some(UserStatus::Disabled) => UserState::Disabled,
            None => return Err(Error::Corrupt(format!("user status {s:?}"))),
        },
    };
    Ok(Snapshot {
        user_id,
        state,
        permission_version: row.permission_version,
        assigned_role_ids: row.assigned_role_ids,
        roles: row.roles.0,
        grants: row.grants.0,
        field_rules: row.field_rules.0,
        department_ids: row.department_ids,
        primary_department_id: row.primary_department_id,
        departments: row.departments.0,
        reports: row.reports.0,
        shares: row.shares.0,
        sharing_rules: row.sharing_rules.0,
    })
}
