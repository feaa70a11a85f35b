//! The demo organisation (`bootstrap.demo_org`) and the organisation part of bootstrap users
//! (`bootstrap.users[].roles` / `.department`, also what single sign-on's claim rules give).
//! Start-up work over [`crate::org`]: no aggregate of its own, no SQL of its own (it composes
//! the organisation's store and its steps in one [`OrgTx`]). The demo is for development and
//! demos only.
//!
//! Both are idempotent and safe with several replicas starting at once: each runs as one
//! [`OrgTx`], so replicas queue on the permission-version lock and the later ones find
//! everything in place (no event, no new version). What exists is never changed: a department is
//! found by its parent and name, a role by its name, and a role found is left as it is — once
//! seeded, the organisation belongs to its administrators, and a restart must not undo their
//! edits.

use std::collections::HashMap;

use uuid::Uuid;

use crate::auth::throttle::throttle_key;
use crate::error::Result;
use crate::org::domain::{
    Action, DataScope, FieldRule, Grant, MaskKind, Memberships, NewDepartment, NewRole, Resource,
    Visibility,
};
use crate::org::service::{self, Org, OrgTx};
use crate::org::store;
use crate::settings::BootstrapUser;

/// The departments, parents first: (name, parent name).
pub const DEMO_DEPARTMENTS: &[(&str, Option<&str>)] = &[
    ("Headquarters", None),
    ("Sales", Some("Headquarters")),
    ("East Sales", Some("Sales")),
    ("North Sales", Some("Sales")),
    ("Service", Some("Headquarters")),
];

/// A role of the demo organisation.
pub struct DemoRole {
    pub name: &'static str,
    pub description: &'static str,
    pub parent: Option<&'static str>,
    pub grants: Vec<Grant>,
    pub field_rules: Vec<FieldRule>,
}

/// The resources a sales team works with.
const SALES_RESOURCES: [Resource; 4] = [
    Resource::ACCOUNT,
    Resource::CONTACT,
    Resource::LEAD,
    Resource::OPPORTUNITY,
];

/// Who may change the data model (custom fields, layouts, rules): `crm_fields::CUSTOMIZATION`'s
/// name, registered by this service's migrations.
const CUSTOMIZATION: Resource = Resource::named("customization");

fn grants(resources: &[Resource], actions: &[Action], scope: DataScope) -> Vec<Grant> {
    resources
        .iter()
        .flat_map(|&resource| {
            actions.iter().map(move |&action| Grant {
                resource,
                action,
                scope,
            })
        })
        .collect()
}

fn masked(resources: &[Resource], field: &str, mask: MaskKind) -> Vec<FieldRule> {
    resources
        .iter()
        .map(|&resource| FieldRule {
            resource,
            field: field.into(),
            visibility: Visibility::ReadOnly,
            mask: Some(mask),
        })
        .collect()
}

/// The roles, parents first:
/// - `admin`: every action on every resource, all records;
/// - `sales_rep`: read, create and update their own accounts, contacts, leads, opportunities;
/// - `sales_manager` (inherits `sales_rep`): read, create, update, delete, export and assign
///   those in their departments and the departments below;
/// - `service_agent`: every action on tickets of their departments; reads contacts (all of
///   them: a ticket's customer may be anyone's), the phone number masked;
/// - `auditor`: reads everything, phone numbers and e-mail addresses masked.
pub fn demo_roles() -> Vec<DemoRole> {
    use Action::*;
    vec![
        DemoRole {
            name: "admin",
            description: "Everything on every record.",
            parent: None,
            grants: [
                grants(Resource::WELL_KNOWN, Action::ALL, DataScope::All),
                grants(
                    &[CUSTOMIZATION],
                    &[Read, Create, Update, Delete],
                    DataScope::All,
                ),
            ]
            .concat(),
            field_rules: Vec::new(),
        },
        DemoRole {
            name: "sales_rep",
            description: "Works their own accounts, contacts, leads and opportunities.",
            parent: None,
            grants: grants(&SALES_RESOURCES, &[Read, Create, Update], DataScope::Own),
            field_rules: Vec::new(),
        },
        DemoRole {
            name: "sales_manager",
            description: "A sales rep who also manages the records of their departments.",
            parent: Some("sales_rep"),
            grants: grants(
                &SALES_RESOURCES,
                &[Read, Create, Update, Delete, Export, Assign],
                DataScope::DepartmentAndChildren,
            ),
            field_rules: Vec::new(),
        },
        DemoRole {
            name: "service_agent",
            description: "Handles the tickets of their departments; reads contacts.",
            parent: None,
            grants: [
                grants(&[Resource::TICKET], Action::ALL, DataScope::Department),
                grants(&[Resource::CONTACT], &[Read], DataScope::All),
            ]
            .concat(),
            field_rules: masked(&[Resource::CONTACT], "phone", MaskKind::Phone),
        },
        DemoRole {
            name: "auditor",
            description: "Reads everything; phone numbers and e-mail addresses masked.",
            parent: None,
            grants: grants(Resource::WELL_KNOWN, &[Read], DataScope::All),
            field_rules: [
                masked(Resource::WELL_KNOWN, "phone", MaskKind::Phone),
                masked(Resource::WELL_KNOWN, "email", MaskKind::Email),
            ]
            .concat(),
        },
    ]
}

/// What a seed run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub departments_created: usize,
    pub roles_created: usize,
    /// The permission version in force afterwards.
    pub permission_version: i64,
}

/// Creates whatever of the demo organisation is missing, in one transaction.
#[tracing::instrument(name = "seed demo organisation", skip_all)]
pub async fn seed_demo_org(org: &Org) -> Result<Seeded> {
    let mut tx = org.begin().await?;
    let mut seeded = Seeded::default();
    let mut departments: HashMap<&str, Uuid> = HashMap::new();
    for &(name, parent) in DEMO_DEPARTMENTS {
        let parent_id = parent.map(|p| departments[p]);
        let id = match store::find_department(tx.conn(), parent_id, name).await? {
            Some(found) => found.id,
            None => {
                seeded.departments_created += 1;
                let new = NewDepartment {
                    name: name.into(),
                    parent_id,
                };
                service::create_department_in(&mut tx, new).await?.id
            }
        };
        departments.insert(name, id);
    }
    let mut roles: HashMap<&str, Uuid> = HashMap::new();
    for role in demo_roles() {
        let id = match store::find_role(tx.conn(), role.name).await? {
            Some(found) => found.id,
            None => {
                seeded.roles_created += 1;
                let new = NewRole {
                    name: role.name.into(),
                    description: Some(role.description.into()),
                    // A parent renamed or deleted by an administrator: inherit nothing.
                    parent_role_id: role.parent.and_then(|p| roles.get(p).copied()),
                };
                service::create_role_in(&mut tx, new, role.grants, role.field_rules)
                    .await?
                    .id
            }
        };
        roles.insert(role.name, id);
    }
    seeded.permission_version = tx.finish().await?;
    if seeded.departments_created + seeded.roles_created > 0 {
        tracing::info!(?seeded, "demo organisation seeded");
    }
    Ok(seeded)
}

/// Gives bootstrap users their configured roles and primary department, when missing. A name
/// that matches nothing (or, for departments, more than one) is logged and skipped; it does not
/// stop the service.
#[tracing::instrument(name = "bootstrap user organisation", skip_all)]
pub async fn ensure_bootstrap_org(org: &Org, users: &[BootstrapUser]) -> Result<i64> {
    let wanted: Vec<&BootstrapUser> = users
        .iter()
        .filter(|u| !u.roles.is_empty() || u.department.is_some())
        .collect();
    if wanted.is_empty() {
        let mut conn = org.pool().acquire().await?;
        return store::permission_version(&mut conn).await;
    }
    let mut tx = org.begin().await?;
    let usernames: Vec<String> = wanted.iter().map(|u| throttle_key(&u.username)).collect();
    let ids = store::user_ids_by_username(tx.conn(), &usernames).await?;
    for (entry, username) in wanted.into_iter().zip(&usernames) {
        let Some(&user_id) = ids.get(username) else {
            tracing::error!(%username, "bootstrap user does not exist; roles and department skipped");
            continue;
        };
        place_user(&mut tx, user_id, username, entry).await?;
    }
    tx.finish().await
}

async fn place_user(
    tx: &mut OrgTx<'_>,
    user_id: Uuid,
    username: &str,
    entry: &BootstrapUser,
) -> Result<()> {
    let Some(mut user_org) = store::get_user_org(tx.conn(), user_id, true).await? else {
        return Ok(());
    };
    for name in &entry.roles {
        match store::find_role(tx.conn(), &name.trim().to_lowercase()).await? {
            Some(role) => service::assign_role_in(tx, &mut user_org, &role).await?,
            None => {
                tracing::error!(%username, role = %name, "bootstrap role does not exist; skipped")
            }
        }
    }
    if let Some(name) = &entry.department
        && user_org.primary_department_id.is_none()
    {
        match store::departments_named(tx.conn(), name.trim())
            .await?
            .as_slice()
        {
            [department] => {
                let mut memberships = Memberships {
                    primary: Some(department.id),
                    others: user_org.department_ids.clone(),
                };
                memberships.others.retain(|d| *d != department.id);
                service::set_user_departments_in(tx, &mut user_org, memberships).await?;
            }
            [] => {
                tracing::error!(%username, department = %name, "bootstrap department does not exist; skipped")
            }
            _ => {
                tracing::error!(%username, department = %name, "bootstrap department name is ambiguous; skipped")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::domain::{field_rule, role_name};

    #[test]
    fn demo_roles_are_valid_and_parents_come_first() {
        let roles = demo_roles();
        let mut seen: Vec<&str> = Vec::new();
        for role in &roles {
            let mut v = crate::validation::Violations::default();
            assert_eq!(role_name(&mut v, "name", role.name), role.name);
            if let Some(parent) = role.parent {
                assert!(seen.contains(&parent), "{} before its parent", role.name);
            }
            for rule in &role.field_rules {
                field_rule(
                    &mut v,
                    "",
                    rule.resource,
                    &rule.field,
                    Some(rule.visibility),
                    rule.mask,
                );
            }
            assert!(v.0.is_empty(), "{}", role.name);
            seen.push(role.name);
        }
        let admin = &roles[0];
        assert_eq!(
            admin.grants.len(),
            Resource::WELL_KNOWN.len() * Action::ALL.len() + 4,
            "every action on the well-known resources, and the data model"
        );
        let manager = roles.iter().find(|r| r.name == "sales_manager").unwrap();
        assert!(manager.grants.iter().any(|g| g.action == Action::Export));
        assert!(manager.grants.iter().any(|g| g.action == Action::Assign));
    }

    #[test]
    fn departments_come_after_their_parents() {
        for (i, (_, parent)) in DEMO_DEPARTMENTS.iter().enumerate() {
            if let Some(parent) = parent {
                assert!(DEMO_DEPARTMENTS[..i].iter().any(|(n, _)| n == parent));
            }
        }
    }
}
