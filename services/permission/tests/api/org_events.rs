use std::time::Duration;

use crm_proto::permission as pb;
use pb::{Action, DataScope, FieldVisibility, MaskKind, Resource};

use crate::helpers::spawn_app;

/// Every change publishes exactly one event carrying the permission version it produced, and
/// the versions returned by the writes increase by one per change; writes that change nothing
/// publish nothing.
#[tokio::test]
async fn each_change_publishes_one_event_and_moves_the_version_by_one() {
    let app = spawn_app().await;
    let v0 = app.permission_version().await;
    let mut returned = Vec::new();

    let hq = app.create_department("HQ", None).await;
    returned.push(app.permission_version().await);
    let sales = app.create_department("Sales", Some(&hq)).await;
    returned.push(app.permission_version().await);
    let moved = app
        .org
        .clone()
        .update_department(pb::UpdateDepartmentRequest {
            id: sales.id.clone(),
            expected_version: 1,
            name: Some("Sales & Marketing".into()),
            parent_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    returned.push(moved.permission_version);
    let role = app.create_role("rep", None).await;
    returned.push(app.permission_version().await);
    returned.push(
        app.grant(&role, Resource::Lead, Action::Read, DataScope::Own)
            .await
            .permission_version,
    );
    // Again: no change, no event.
    app.grant(&role, Resource::Lead, Action::Read, DataScope::Own)
        .await;
    returned.push(
        app.field_rule(
            &role,
            Resource::Lead,
            "phone",
            FieldVisibility::ReadOnly,
            MaskKind::Phone,
        )
        .await
        .permission_version,
    );
    let user = app.member("ursula").await; // not an organisation change: no version
    returned.push(app.assign(&user, &role).await.permission_version);
    app.assign(&user, &role).await; // held already: nothing
    app.place(&user, &sales, &[]).await;
    returned.push(app.permission_version().await);
    let boss = app.member("boss").await;
    app.set_manager(&user, &boss).await;
    returned.push(app.permission_version().await);
    let expected: Vec<i64> = (v0 + 1..=v0 + 9).collect();
    assert_eq!(returned, expected);

    let expected_types = [
        "permission.department.created",
        "permission.department.created",
        "permission.department.updated",
        "permission.role.created",
        "permission.grant.set",
        "permission.field_rule.set",
        "permission.assignment.added",
        "permission.user.departments_changed",
        "permission.user.manager_changed",
    ];
    // Two user.created events come with them.
    let events = crm_testkit::collect_events(
        &app.brokers,
        &app.topic,
        expected_types.len() + 2,
        Duration::from_secs(60),
    )
    .await;
    let org_events: Vec<_> = events
        .iter()
        .map(|(e, _)| e)
        .filter(|e| e.event_type != "permission.user.created")
        .collect();
    let mut by_version: Vec<_> = org_events
        .iter()
        .map(|e| {
            (
                e.data["permission_version"].as_i64().unwrap(),
                e.event_type.as_str(),
            )
        })
        .collect();
    by_version.sort();
    assert_eq!(
        by_version,
        expected
            .iter()
            .copied()
            .zip(expected_types)
            .collect::<Vec<_>>(),
        "exactly one event per change, none for the no-ops"
    );
    assert_eq!(events.len(), expected_types.len() + 2, "no duplicates");

    let updated = org_events
        .iter()
        .find(|e| e.event_type == "permission.department.updated")
        .unwrap();
    assert_eq!(updated.subject, sales.id);
    assert_eq!(
        updated.data["changes"]["name"],
        serde_json::json!({ "old": "Sales", "new": "Sales & Marketing" })
    );
    let grant = org_events
        .iter()
        .find(|e| e.event_type == "permission.grant.set")
        .unwrap();
    assert_eq!(grant.subject, role.id);
    assert_eq!(
        grant.data["grant"],
        serde_json::json!({ "resource": "lead", "action": "read", "scope": "own" })
    );
    let assigned = org_events
        .iter()
        .find(|e| e.event_type == "permission.assignment.added")
        .unwrap();
    assert_eq!(assigned.subject, user.id);
    assert_eq!(assigned.data["role_name"], "rep");
    app.shutdown().await;
}
