use crm_errors::Code as ApiCode;
use crm_proto::permission as pb;
use pb::{Action, DataScope, FieldVisibility, MaskKind, Resource};
use tonic::Code;

use crate::helpers::{api_code, spawn_app, violated_fields};

#[tokio::test]
async fn roles_carry_their_grants_and_field_rules() {
    let app = spawn_app().await;
    let rep = app.create_role(" Sales_Rep ", None).await;
    assert_eq!((rep.name.as_str(), rep.version), ("sales_rep", 1));
    let manager = app.create_role("sales_manager", Some(&rep)).await;
    assert_eq!(manager.parent_role_id, rep.id);

    let v0 = app.permission_version().await;
    app.grant(&rep, Resource::Lead, Action::Read, DataScope::Own)
        .await;
    app.grant(&rep, Resource::Account, Action::Read, DataScope::Own)
        .await;
    let r = app
        .grant(
            &rep,
            Resource::Lead,
            Action::Read,
            DataScope::OwnAndSubordinates,
        )
        .await;
    assert_eq!(r.permission_version, v0 + 3);
    let r = app
        .field_rule(
            &rep,
            Resource::Contact,
            "phone",
            FieldVisibility::ReadOnly,
            MaskKind::Phone,
        )
        .await;
    let role = r.role.unwrap();
    assert_eq!(role.version, 5, "every grant and rule bumps the role");
    assert_eq!(
        role.grants,
        [
            pb::Grant {
                resource: Resource::Account as i32,
                resource_name: "account".into(),
                action: Action::Read as i32,
                scope: DataScope::Own as i32,
            },
            pb::Grant {
                resource: Resource::Lead as i32,
                resource_name: "lead".into(),
                action: Action::Read as i32,
                scope: DataScope::OwnAndSubordinates as i32,
            },
        ],
        "sorted, the second grant for lead/read rescoped the first"
    );
    assert_eq!(role.field_rules.len(), 1);
    assert_eq!(app.role(&rep.id).await, role);

    // Setting what is there already is no change; removing what is not there neither.
    let same = app
        .grant(
            &rep,
            Resource::Lead,
            Action::Read,
            DataScope::OwnAndSubordinates,
        )
        .await;
    assert_eq!(same.role.as_ref().unwrap().version, 5);
    assert_eq!(same.permission_version, v0 + 4);
    let mut org = app.org.clone();
    let none = org
        .remove_grant(pb::RemoveGrantRequest {
            role_id: rep.id.clone(),
            expected_version: 5,
            resource: Resource::Ticket as i32,
            resource_name: String::new(),
            action: Action::Approve as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.permission_version, v0 + 4);
    let removed = org
        .remove_grant(pb::RemoveGrantRequest {
            role_id: rep.id.clone(),
            expected_version: 5,
            resource: Resource::Account as i32,
            resource_name: String::new(),
            action: Action::Read as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.role.unwrap().grants.len(), 1);
    let removed = org
        .remove_field_rule(pb::RemoveFieldRuleRequest {
            role_id: rep.id.clone(),
            expected_version: 6,
            resource: Resource::Contact as i32,
            resource_name: String::new(),
            field: "phone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(removed.role.unwrap().field_rules.is_empty());
    assert_eq!(removed.permission_version, v0 + 6);

    let list = org
        .list_roles(pb::ListRolesRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = list.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["sales_manager", "sales_rep"]);
    assert_eq!(list.permission_version, v0 + 6);
    app.shutdown().await;
}

#[tokio::test]
async fn role_inheritance_cycles_are_refused() {
    let app = spawn_app().await;
    let a = app.create_role("base", None).await;
    let b = app.create_role("middle", Some(&a)).await;
    let c = app.create_role("top", Some(&b)).await;
    let before = app.org_fingerprint().await;
    for (target, parent) in [(&a, &a), (&a, &b), (&a, &c)] {
        let err = app
            .org
            .clone()
            .update_role(pb::UpdateRoleRequest {
                id: target.id.clone(),
                expected_version: target.version,
                parent_role_id: Some(parent.id.clone()),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::FailedPrecondition,
            "{} under {}",
            target.name,
            parent.name
        );
    }
    assert_eq!(app.org_fingerprint().await, before);
    // Re-parenting without a cycle, and clearing the parent, are fine.
    let r = app
        .org
        .clone()
        .update_role(pb::UpdateRoleRequest {
            id: c.id.clone(),
            expected_version: 1,
            description: Some("  The top one ".into()),
            parent_role_id: Some(a.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(
        (r.parent_role_id.as_str(), r.description.as_str()),
        (a.id.as_str(), "The top one")
    );
    let r = app
        .org
        .clone()
        .update_role(pb::UpdateRoleRequest {
            id: b.id.clone(),
            expected_version: 1,
            parent_role_id: Some(String::new()),
            name: Some("middle_renamed".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(
        (r.parent_role_id.as_str(), r.name.as_str(), r.version),
        ("", "middle_renamed", 2)
    );
    app.shutdown().await;
}

#[tokio::test]
async fn roles_with_heirs_or_holders_cannot_be_deleted() {
    let app = spawn_app().await;
    let base = app.create_role("base", None).await;
    let heir = app.create_role("heir", Some(&base)).await;
    app.grant(&base, Resource::Lead, Action::Read, DataScope::All)
        .await;
    let user = app.member("holder").await;
    app.assign(&user, &heir).await;
    let before = app.org_fingerprint().await;
    for (role, message) in [(&base, "inherit"), (&heir, "hold")] {
        let err = app
            .org
            .clone()
            .delete_role(pb::DeleteRoleRequest {
                id: role.id.clone(),
                expected_version: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains(message), "{}", err.message());
    }
    assert_eq!(app.org_fingerprint().await, before);
    let org = app.user_org(&user.id).await;
    app.org
        .clone()
        .unassign_role(pb::UnassignRoleRequest {
            user_id: user.id.clone(),
            expected_version: org.version,
            role_id: heir.id.clone(),
        })
        .await
        .unwrap();
    for role in [&heir, &base] {
        app.org
            .clone()
            .delete_role(pb::DeleteRoleRequest {
                id: role.id.clone(),
                expected_version: 0,
            })
            .await
            .unwrap();
    }
    assert_eq!(app.count("roles").await, 0);
    assert_eq!(
        app.count("role_grants").await,
        0,
        "grants go with their role"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bad_role_writes_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let role = app.create_role("agent", None).await;
    let before = app.org_fingerprint().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let mut org = app.org.clone();

    let err = org
        .create_role(pb::CreateRoleRequest {
            name: "".into(),
            description: "d".repeat(501),
            parent_role_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["name", "description", "parent_role_id"]
    );
    let err = org
        .create_role(pb::CreateRoleRequest {
            name: "Has Space".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["name"]);
    let err = org
        .create_role(pb::CreateRoleRequest {
            name: "orphan".into(),
            parent_role_id: unknown.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["parent_role_id"]);
    let err = org
        .create_role(pb::CreateRoleRequest {
            name: "AGENT".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // Grants: bad enum values (unspecified and unknown numbers), each named by its path.
    let err = org
        .set_grant(pb::SetGrantRequest {
            role_id: role.id.clone(),
            expected_version: 1,
            grant: Some(pb::Grant {
                resource: 0,
                resource_name: String::new(),
                action: 99,
                scope: -1,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["grant.resource", "grant.action", "grant.scope"]
    );
    let err = org
        .set_grant(pb::SetGrantRequest {
            role_id: role.id.clone(),
            expected_version: 0,
            grant: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["expected_version", "grant"]);
    let ok_grant = Some(pb::Grant {
        resource: Resource::Ticket as i32,
        resource_name: String::new(),
        action: Action::Read as i32,
        scope: DataScope::Department as i32,
    });
    let err = org
        .set_grant(pb::SetGrantRequest {
            role_id: unknown.clone(),
            expected_version: 1,
            grant: ok_grant.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = org
        .set_grant(pb::SetGrantRequest {
            role_id: role.id.clone(),
            expected_version: 2,
            grant: ok_grant,
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiCode::VersionConflict);
    let err = org
        .remove_grant(pb::RemoveGrantRequest {
            role_id: role.id.clone(),
            expected_version: 1,
            resource: 42,
            resource_name: String::new(),
            action: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["resource", "action"]);

    // Field rules: a mask needs READ_ONLY; names are snake_case; visibility is required.
    let rule = |visibility: FieldVisibility, mask: i32, field: &str| pb::SetFieldRuleRequest {
        role_id: role.id.clone(),
        expected_version: 1,
        rule: Some(pb::FieldRule {
            resource: Resource::Contact as i32,
            resource_name: String::new(),
            field: field.into(),
            visibility: visibility as i32,
            mask,
        }),
    };
    for (request, fields) in [
        (
            rule(FieldVisibility::Editable, MaskKind::Phone as i32, "phone"),
            vec!["rule.mask"],
        ),
        (
            rule(FieldVisibility::Hidden, MaskKind::Email as i32, "email"),
            vec!["rule.mask"],
        ),
        (
            rule(FieldVisibility::Unspecified, 0, "Phone Number"),
            vec!["rule.visibility", "rule.field"],
        ),
        (
            rule(FieldVisibility::ReadOnly, 17, "phone"),
            vec!["rule.mask"],
        ),
    ] {
        let err = org.set_field_rule(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&err), fields);
    }
    let err = org
        .set_field_rule(pb::SetFieldRuleRequest {
            role_id: role.id.clone(),
            expected_version: 1,
            rule: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["rule"]);

    let err = org
        .update_role(pb::UpdateRoleRequest {
            id: role.id.clone(),
            expected_version: 1,
            name: Some("".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["name"]);
    let err = org
        .update_role(pb::UpdateRoleRequest {
            id: role.id.clone(),
            expected_version: 1,
            parent_role_id: Some(unknown.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["parent_role_id"]);
    let err = org
        .delete_role(pb::DeleteRoleRequest {
            id: role.id.clone(),
            expected_version: 9,
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiCode::VersionConflict);
    let err = org
        .get_role(pb::GetRoleRequest {
            id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.org_fingerprint().await, before, "nothing written");
    app.shutdown().await;
}
