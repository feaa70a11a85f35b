//! SQL for the organisation: the permission version, departments, roles with their grants and
//! field rules, and users' places (memberships, managers, role assignments). Writes run inside
//! the caller's transaction, which holds the permission-version lock
//! ([`lock_permission_version`]). The decision snapshot is [`crate::access::store`]'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::domain::{
    Action, DataScope, Department, FieldRule, Grant, MaskKind, Memberships, Resource, Role,
    UserOrg, Visibility,
};
use crate::error::{Error, Result};

pub const DEPARTMENT_NAME_CONSTRAINT: &str = "departments_sibling_name_key";
pub const ROLE_NAME_CONSTRAINT: &str = "roles_name_key";

fn corrupt(what: &str, value: &str) -> Error {
    Error::Corrupt(format!("{what} {value:?}"))
}

// --- permission version ------------------------------------------------------------------------

/// Locks the permission-version row for the rest of the transaction and reads it. Every
/// organisation write takes this lock first, so they run one at a time and always lock in the
/// same order (this row, then users, then the rest): no deadlocks between them.
#[tracing::instrument(name = "sql permission_version.lock", skip_all, fields(db.system = "postgresql"))]
pub async fn lock_permission_version(conn: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT version FROM permission_version FOR UPDATE")
            .fetch_one(conn)
            .await?,
    )
}

pub async fn set_permission_version(conn: &mut PgConnection, version: i64) -> Result<()> {
    sqlx::query("UPDATE permission_version SET version = $1")
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes the transaction read only, every statement seeing the same snapshot.
pub async fn set_read_only_snapshot(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn permission_version(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT version FROM permission_version")
        .fetch_one(conn)
        .await?)
}

// --- trees -------------------------------------------------------------------------------------

/// The three trees, by their table and parent column (constants, never input).
#[derive(Debug, Clone, Copy)]
pub enum Tree {
    Departments,
    Roles,
    Managers,
}

impl Tree {
    fn table_and_parent(self) -> (&'static str, &'static str) {
        match self {
            Tree::Departments => ("departments", "parent_id"),
            Tree::Roles => ("roles", "parent_role_id"),
            Tree::Managers => ("users", "manager_id"),
        }
    }
}

/// Would making `parent` the parent of `node` close a cycle, i.e. is `node` among `parent` and
/// its ancestors? `UNION` (not `UNION ALL`) ends the walk even on corrupt, cyclic data.
pub async fn is_ancestor_or_self(
    conn: &mut PgConnection,
    tree: Tree,
    node: Uuid,
    parent: Uuid,
) -> Result<bool> {
    let (table, column) = tree.table_and_parent();
    let sql = format!(
        "WITH RECURSIVE up (id, parent) AS (
             SELECT id, {column} FROM {table} WHERE id = $2
             UNION
             SELECT t.id, t.{column} FROM {table} t JOIN up ON t.id = up.parent
         )
         SELECT EXISTS (SELECT 1 FROM up WHERE id = $1)"
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(node)
        .bind(parent)
        .fetch_one(conn)
        .await?)
}

// --- departments -------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct DepartmentRow {
    id: Uuid,
    name: String,
    parent_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<DepartmentRow> for Department {
    fn from(r: DepartmentRow) -> Self {
        Department {
            id: r.id,
            name: r.name,
            parent_id: r.parent_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const DEPARTMENT_COLUMNS: &str = "id, name, parent_id, version, created_at, updated_at";

#[tracing::instrument(name = "sql departments.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_department(conn: &mut PgConnection, d: &Department) -> Result<()> {
    sqlx::query(
        "INSERT INTO departments (id, name, parent_id, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(d.id)
    .bind(&d.name)
    .bind(d.parent_id)
    .bind(d.version)
    .bind(d.created_at)
    .bind(d.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "sql departments.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_department(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<Department>> {
    let sql = format!(
        "SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<DepartmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Into::into))
}

/// The child of `parent` (a root when `None`) with this name, ignoring case.
pub async fn find_department(
    conn: &mut PgConnection,
    parent: Option<Uuid>,
    name: &str,
) -> Result<Option<Department>> {
    let sql = format!(
        "SELECT {DEPARTMENT_COLUMNS} FROM departments
          WHERE parent_id IS NOT DISTINCT FROM $1 AND lower(name) = lower($2)"
    );
    let row: Option<DepartmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(parent)
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Departments with this name anywhere in the tree, ignoring case (for bootstrap settings, which
/// name a department rather than give its id).
pub async fn departments_named(conn: &mut PgConnection, name: &str) -> Result<Vec<Department>> {
    let sql = format!(
        "SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE lower(name) = lower($1) ORDER BY id"
    );
    let rows: Vec<DepartmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The whole tree: parents before children, siblings by name (the path of lower-cased names
/// sorts that way).
#[tracing::instrument(name = "sql departments.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_departments(conn: &mut PgConnection) -> Result<Vec<Department>> {
    let rows: Vec<DepartmentRow> = sqlx::query_as(
        "WITH RECURSIVE tree AS (
             SELECT d.*, ARRAY[lower(d.name), d.id::text] AS path
               FROM departments d WHERE d.parent_id IS NULL
             UNION ALL
             SELECT d.*, t.path || ARRAY[lower(d.name), d.id::text]
               FROM departments d JOIN tree t ON d.parent_id = t.id
         )
         SELECT id, name, parent_id, version, created_at, updated_at FROM tree ORDER BY path",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[tracing::instrument(name = "sql departments.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_department(conn: &mut PgConnection, d: &Department) -> Result<()> {
    sqlx::query(
        "UPDATE departments SET name = $2, parent_id = $3, version = $4, updated_at = $5
          WHERE id = $1",
    )
    .bind(d.id)
    .bind(&d.name)
    .bind(d.parent_id)
    .bind(d.version)
    .bind(d.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many child departments and members a department has.
pub async fn department_dependents(conn: &mut PgConnection, id: Uuid) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM departments WHERE parent_id = $1),
                (SELECT count(*) FROM user_departments WHERE department_id = $1)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}

#[tracing::instrument(name = "sql departments.delete", skip_all, fields(db.system = "postgresql"))]
pub async fn delete_department(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM departments WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Which of `ids` exist.
pub async fn existing_departments(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM departments WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(conn)
            .await?,
    )
}

// --- roles -------------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct RoleRow {
    id: Uuid,
    name: String,
    description: Option<String>,
    parent_role_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    grants: Json<Vec<GrantJson>>,
    field_rules: Json<Vec<FieldRuleJson>>,
}

#[derive(serde::Deserialize)]
struct GrantJson {
    resource: String,
    action: String,
    scope: String,
}

#[derive(serde::Deserialize)]
struct FieldRuleJson {
    resource: String,
    field: String,
    visibility: String,
    mask: Option<String>,
}

fn resource(s: &str) -> Result<Resource> {
    Resource::parse(s).ok_or_else(|| corrupt("resource", s))
}

impl TryFrom<RoleRow> for Role {
    type Error = Error;
    fn try_from(r: RoleRow) -> Result<Self> {
        let mut grants = r
            .grants
            .0
            .into_iter()
            .map(|g| {
                Ok(Grant {
                    resource: resource(&g.resource)?,
                    action: Action::parse(&g.action).ok_or_else(|| corrupt("action", &g.action))?,
                    scope: DataScope::parse(&g.scope).ok_or_else(|| corrupt("scope", &g.scope))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        grants.sort();
        let mut field_rules = r
            .field_rules
            .0
            .into_iter()
            .map(|f| {
                Ok(FieldRule {
                    resource: resource(&f.resource)?,
                    visibility: Visibility::parse(&f.visibility)
                        .ok_or_else(|| corrupt("visibility", &f.visibility))?,
                    mask: f
                        .mask
                        .map(|m| MaskKind::parse(&m).ok_or_else(|| corrupt("mask", &m)))
                        .transpose()?,
                    field: f.field,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        field_rules.sort();
        Ok(Role {
            id: r.id,
            name: r.name,
            description: r.description,
            parent_role_id: r.parent_role_id,
            grants,
            field_rules,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A role with its grants and field rules, aggregated in the same statement.
const ROLE_SELECT: &str = "SELECT r.id, r.name, r.description, r.parent_role_id, r.version,
        r.created_at, r.updated_at,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'resource', g.resource, 'action', g.action, 'scope', g.scope)), '[]')
           FROM role_grants g WHERE g.role_id = r.id) AS grants,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'resource', f.resource, 'field', f.field, 'visibility', f.visibility,
                    'mask', f.mask)), '[]')
           FROM role_field_rules f WHERE f.role_id = r.id) AS field_rules
   FROM roles r";

#[tracing::instrument(name = "sql roles.select", skip_all, fields(db.system = "postgresql"))]
pub async fn get_role(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Role>> {
    let sql = format!(
        "{ROLE_SELECT} WHERE r.id = $1{}",
        if lock { " FOR UPDATE OF r" } else { "" }
    );
    let row: Option<RoleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(Role::try_from).transpose()
}

pub async fn find_role(conn: &mut PgConnection, name: &str) -> Result<Option<Role>> {
    let sql = format!("{ROLE_SELECT} WHERE r.name = $1");
    let row: Option<RoleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .fetch_optional(conn)
        .await?;
    row.map(Role::try_from).transpose()
}

#[tracing::instrument(name = "sql roles.list", skip_all, fields(db.system = "postgresql"))]
pub async fn list_roles(conn: &mut PgConnection) -> Result<Vec<Role>> {
    let sql = format!("{ROLE_SELECT} ORDER BY r.name");
    let rows: Vec<RoleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?;
    rows.into_iter().map(Role::try_from).collect()
}

#[tracing::instrument(name = "sql roles.insert", skip_all, fields(db.system = "postgresql"))]
pub async fn insert_role(conn: &mut PgConnection, r: &Role) -> Result<()> {
    sqlx::query(
        "INSERT INTO roles (id, name, description, parent_role_id, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.parent_role_id)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the role's own columns (its grants and rules have their own statements).
#[tracing::instrument(name = "sql roles.update", skip_all, fields(db.system = "postgresql"))]
pub async fn update_role(conn: &mut PgConnection, r: &Role) -> Result<()> {
    sqlx::query(
        "UPDATE roles SET name = $2, description = $3, parent_role_id = $4, version = $5,
                          updated_at = $6
          WHERE id = $1",
    )
    .bind(r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.parent_role_id)
    .bind(r.version)
    .bind(r.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many roles inherit from a role, and how many users hold it.
pub async fn role_dependents(conn: &mut PgConnection, id: Uuid) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM roles WHERE parent_role_id = $1),
                (SELECT count(*) FROM user_roles WHERE role_id = $1)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// Deletes a role; its grants and field rules go with it (ON DELETE CASCADE).
#[tracing::instrument(name = "sql roles.delete", skip_all, fields(db.system = "postgresql"))]
pub async fn delete_role(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn upsert_grant(conn: &mut PgConnection, role_id: Uuid, g: &Grant) -> Result<()> {
    sqlx::query(
        "INSERT INTO role_grants (role_id, resource, action, scope) VALUES ($1, $2, $3, $4)
         ON CONFLICT (role_id, resource, action) DO UPDATE SET scope = EXCLUDED.scope",
    )
    .bind(role_id)
    .bind(g.resource.as_str())
    .bind(g.action.as_str())
    .bind(g.scope.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_grant(
    conn: &mut PgConnection,
    role_id: Uuid,
    resource: Resource,
    action: Action,
) -> Result<()> {
    sqlx::query("DELETE FROM role_grants WHERE role_id = $1 AND resource = $2 AND action = $3")
        .bind(role_id)
        .bind(resource.as_str())
        .bind(action.as_str())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn upsert_field_rule(
    conn: &mut PgConnection,
    role_id: Uuid,
    f: &FieldRule,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO role_field_rules (role_id, resource, field, visibility, mask)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (role_id, resource, field)
         DO UPDATE SET visibility = EXCLUDED.visibility, mask = EXCLUDED.mask",
    )
    .bind(role_id)
    .bind(f.resource.as_str())
    .bind(&f.field)
    .bind(f.visibility.as_str())
    .bind(f.mask.map(MaskKind::as_str))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_field_rule(
    conn: &mut PgConnection,
    role_id: Uuid,
    resource: Resource,
    field: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM role_field_rules WHERE role_id = $1 AND resource = $2 AND field = $3")
        .bind(role_id)
        .bind(resource.as_str())
        .bind(field)
        .execute(conn)
        .await?;
    Ok(())
}

// --- users in the organisation -----------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct UserOrgRow {
    id: Uuid,
    manager_id: Option<Uuid>,
    org_version: i64,
    primary_department_id: Option<Uuid>,
    department_ids: Vec<Uuid>,
    role_ids: Vec<Uuid>,
}

/// A user's place in the organisation; `lock` locks the user's row for update.
#[tracing::instrument(name = "sql users.select_org", skip_all, fields(db.system = "postgresql"))]
pub async fn get_user_org(
    conn: &mut PgConnection,
    user_id: Uuid,
    lock: bool,
) -> Result<Option<UserOrg>> {
    let sql = format!(
        "SELECT u.id, u.manager_id, u.org_version,
                (SELECT department_id FROM user_departments
                  WHERE user_id = u.id AND is_primary) AS primary_department_id,
                ARRAY(SELECT department_id FROM user_departments
                       WHERE user_id = u.id ORDER BY department_id) AS department_ids,
                ARRAY(SELECT role_id FROM user_roles
                       WHERE user_id = u.id ORDER BY role_id) AS role_ids
           FROM users u WHERE u.id = $1{}",
        if lock { " FOR UPDATE OF u" } else { "" }
    );
    let row: Option<UserOrgRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| UserOrg {
        user_id: r.id,
        primary_department_id: r.primary_department_id,
        department_ids: r.department_ids,
        manager_id: r.manager_id,
        role_ids: r.role_ids,
        version: r.org_version,
    }))
}

pub async fn set_org_version(conn: &mut PgConnection, user_id: Uuid, version: i64) -> Result<()> {
    sqlx::query("UPDATE users SET org_version = $2 WHERE id = $1")
        .bind(user_id)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces every membership of the user.
pub async fn replace_memberships(
    conn: &mut PgConnection,
    user_id: Uuid,
    m: &Memberships,
) -> Result<()> {
    sqlx::query("DELETE FROM user_departments WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    if let Some(primary) = m.primary {
        sqlx::query(
            "INSERT INTO user_departments (user_id, department_id, is_primary)
             SELECT $1, d, d = $2 FROM unnest($3::uuid[]) AS d",
        )
        .bind(user_id)
        .bind(primary)
        .bind(m.all())
        .execute(conn)
        .await?;
    }
    Ok(())
}

pub async fn set_manager(
    conn: &mut PgConnection,
    user_id: Uuid,
    manager: Option<Uuid>,
) -> Result<()> {
    sqlx::query("UPDATE users SET manager_id = $2 WHERE id = $1")
        .bind(user_id)
        .bind(manager)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_user_role(
    conn: &mut PgConnection,
    user_id: Uuid,
    role_id: Uuid,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO user_roles (user_id, role_id, assigned_at) VALUES ($1, $2, $3)")
        .bind(user_id)
        .bind(role_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_user_role(conn: &mut PgConnection, user_id: Uuid, role_id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2")
        .bind(user_id)
        .bind(role_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn user_exists(conn: &mut PgConnection, user_id: Uuid) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user_id)
            .fetch_one(conn)
            .await?,
    )
}

/// Users by (normalised) username, for bootstrap settings.
pub async fn user_ids_by_username(
    conn: &mut PgConnection,
    usernames: &[String],
) -> Result<BTreeMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> =
        sqlx::query_as("SELECT username, id FROM users WHERE username = ANY($1)")
            .bind(usernames)
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}
