use std::time::Duration;

use crm_events::outbox::Outbox;
use crm_permission::org::Org;
use crm_permission::seed::{Seeded, ensure_bootstrap_org, seed_demo_org};
use crm_permission::settings::BootstrapUser;
use crm_proto::permission as pb;
use pb::{Action, DecisionReason, FieldVisibility, MaskKind, Resource};

use crate::helpers::{PASSWORD, eventually, spawn_with};

fn bootstrap_user(username: &str, roles: &[&str], department: Option<&str>) -> BootstrapUser {
    BootstrapUser {
        username: username.into(),
        password: PASSWORD.to_string().into(),
        display_name: String::new(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        department: department.map(String::from),
    }
}

/// `bootstrap.demo_org` seeds departments and roles, bootstrap users get their roles and
/// departments, names that match nothing are skipped, and seeding again changes nothing.
#[tokio::test]
async fn the_demo_organisation_is_seeded_once_and_bootstrap_users_are_placed() {
    let app = spawn_with(|s| {
        s.bootstrap.demo_org = true;
        s.bootstrap.users = vec![
            bootstrap_user("admin", &["admin"], Some("Headquarters")),
            bootstrap_user("mgr", &["sales_manager"], Some("sales")),
            bootstrap_user("Rita", &["sales_rep", "no_such_role"], Some("East Sales")),
            bootstrap_user("sam", &["service_agent", "auditor"], Some("Nowhere")),
        ];
    })
    .await;
    let user = |name: &'static str| {
        let db = app.db.clone();
        async move {
            let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
                .bind(name)
                .fetch_one(&db)
                .await
                .unwrap();
            pb::User {
                id: id.to_string(),
                username: name.into(),
                ..Default::default()
            }
        }
    };
    eventually(
        Duration::from_secs(20),
        "bootstrap users placed",
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_roles")
                .fetch_one(&app.db)
                .await
                .unwrap()
                == 5
        },
    )
    .await;

    let departments = app
        .org
        .clone()
        .list_departments(pb::ListDepartmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = departments
        .departments
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Headquarters",
            "Sales",
            "East Sales",
            "North Sales",
            "Service"
        ]
    );
    let by_name = |name: &str| {
        departments
            .departments
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .clone()
    };
    let roles = app
        .org
        .clone()
        .list_roles(pb::ListRolesRequest {})
        .await
        .unwrap()
        .into_inner()
        .roles;
    let role_names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        role_names,
        [
            "admin",
            "auditor",
            "sales_manager",
            "sales_rep",
            "service_agent"
        ]
    );
    let rep = roles.iter().find(|r| r.name == "sales_rep").unwrap();
    let manager = roles.iter().find(|r| r.name == "sales_manager").unwrap();
    assert_eq!(manager.parent_role_id, rep.id);
    assert_eq!(
        roles[0].grants.len(),
        8 * 7 + 4,
        "admin: everything (the audit trail and the organisation too), and the data model \
         (customization: read, create, update, delete)"
    );

    let admin = user("admin").await;
    let mgr = user("mgr").await;
    let rita = user("rita").await;
    let sam = user("sam").await;
    // admin: all on everything.
    for resource in [Resource::Account, Resource::Ticket, Resource::Contract] {
        for action in [Action::Read, Action::Delete, Action::Approve] {
            assert!(app.compile(&admin, resource, action).await.all);
        }
    }
    // mgr (sales_manager in Sales): the Sales subtree, plus own through sales_rep.
    let sales = by_name("Sales");
    let scope = app
        .compile(&mgr, Resource::Opportunity, Action::Export)
        .await;
    let mut subtree = vec![
        sales.id.clone(),
        by_name("East Sales").id,
        by_name("North Sales").id,
    ];
    subtree.sort();
    assert_eq!(scope.department_ids, subtree);
    assert_eq!(scope.owner_ids, [mgr.id.as_str()]);
    assert!(
        !app.check(&mgr, Resource::Ticket, Action::Read, None)
            .await
            .allowed
    );
    // rita (sales_rep in East Sales): her own leads; may create, not delete.
    let rita_org = app.user_org(&rita.id).await;
    assert_eq!(rita_org.primary_department_id, by_name("East Sales").id);
    let own = app.compile(&rita, Resource::Lead, Action::Read).await;
    assert_eq!(own.owner_ids, [rita.id.as_str()]);
    assert!(own.department_ids.is_empty());
    assert!(
        app.check(&rita, Resource::Lead, Action::Create, None)
            .await
            .allowed
    );
    let delete = app.check(&rita, Resource::Lead, Action::Delete, None).await;
    assert_eq!(delete.reason, DecisionReason::NoGrant as i32);
    // sam (service_agent + auditor, department unknown: none set): reads all contacts, phone
    // masked by both roles; email masked by auditor only, so unrestricted through the agent.
    assert_eq!(app.user_org(&sam.id).await.primary_department_id, "");
    let contacts = app.compile(&sam, Resource::Contact, Action::Read).await;
    assert!(contacts.all);
    assert_eq!(
        contacts.fields,
        [pb::FieldAccess {
            field: "phone".into(),
            visibility: FieldVisibility::ReadOnly as i32,
            mask: MaskKind::Phone as i32,
        }]
    );
    // Tickets of his departments (none) and his own: agent's department scope is just "own".
    let tickets = app.compile(&sam, Resource::Ticket, Action::Update).await;
    assert_eq!(tickets.owner_ids, [sam.id.as_str()]);
    assert!(tickets.department_ids.is_empty());

    // Seeding and placing again changes nothing: no new version, no event.
    let version = app.permission_version().await;
    let events = app.count("event_outbox").await;
    let org = Org::new(
        app.db.clone(),
        Outbox::new(crm_permission::EVENT_SOURCE, &app.topic),
    );
    assert_eq!(
        seed_demo_org(&org).await.unwrap(),
        Seeded {
            departments_created: 0,
            roles_created: 0,
            permission_version: version,
        }
    );
    assert_eq!(
        ensure_bootstrap_org(&org, &app.settings.bootstrap.users)
            .await
            .unwrap(),
        version
    );
    assert_eq!(app.count("event_outbox").await, events);
    app.shutdown().await;
}

/// Roles an administrator changed are left alone by the seed; a deleted department comes back.
#[tokio::test]
async fn the_seed_never_overwrites_what_exists() {
    let app = spawn_with(|s| s.bootstrap.demo_org = true).await;
    eventually(
        Duration::from_secs(20),
        "demo organisation seeded",
        || async { app.count("roles").await == 5 },
    )
    .await;
    let roles = app
        .org
        .clone()
        .list_roles(pb::ListRolesRequest {})
        .await
        .unwrap()
        .into_inner()
        .roles;
    let auditor = roles.iter().find(|r| r.name == "auditor").unwrap();
    app.org
        .clone()
        .remove_grant(pb::RemoveGrantRequest {
            role_id: auditor.id.clone(),
            expected_version: auditor.version,
            resource: Resource::Contract as i32,
            resource_name: String::new(),
            action: Action::Read as i32,
        })
        .await
        .unwrap();
    let north = app
        .org
        .clone()
        .list_departments(pb::ListDepartmentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .departments
        .into_iter()
        .find(|d| d.name == "North Sales")
        .unwrap();
    app.org
        .clone()
        .delete_department(pb::DeleteDepartmentRequest {
            id: north.id,
            expected_version: 0,
        })
        .await
        .unwrap();
    let org = Org::new(
        app.db.clone(),
        Outbox::new(crm_permission::EVENT_SOURCE, &app.topic),
    );
    let seeded = seed_demo_org(&org).await.unwrap();
    assert_eq!((seeded.departments_created, seeded.roles_created), (1, 0));
    let auditor = app.role(&auditor.id).await;
    assert!(
        !auditor
            .grants
            .iter()
            .any(|g| g.resource == Resource::Contract as i32),
        "the administrator's removal stands"
    );
    app.shutdown().await;
}
