use crm_errors::Code as ApiCode;
use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::{api_code, spawn_app, violated_fields};

#[tokio::test]
async fn departments_form_a_tree_listed_parents_first() {
    let app = spawn_app().await;
    let v0 = app.permission_version().await;
    let hq = app.create_department("  Headquarters ", None).await;
    assert_eq!(hq.name, "Headquarters");
    assert_eq!((hq.parent_id.as_str(), hq.version), ("", 1));
    let sales = app.create_department("Sales", Some(&hq)).await;
    let north = app.create_department("North Sales", Some(&sales)).await;
    let east = app.create_department("East Sales", Some(&sales)).await;
    let service = app.create_department("Service", Some(&hq)).await;
    assert_eq!(
        app.permission_version().await,
        v0 + 5,
        "one version per change"
    );

    let list = app
        .org
        .clone()
        .list_departments(pb::ListDepartmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = list.departments.iter().map(|d| d.name.as_str()).collect();
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
    assert_eq!(list.permission_version, v0 + 5);
    let got = app
        .org
        .clone()
        .get_department(pb::GetDepartmentRequest {
            id: east.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, east);
    assert_eq!(north.parent_id, sales.id);
    assert_eq!(service.parent_id, hq.id);
    app.shutdown().await;
}

#[tokio::test]
async fn moving_a_department_under_its_own_subtree_is_refused() {
    let app = spawn_app().await;
    let hq = app.create_department("HQ", None).await;
    let sales = app.create_department("Sales", Some(&hq)).await;
    let east = app.create_department("East", Some(&sales)).await;
    let before = app.org_fingerprint().await;
    for (what, target, new_parent) in [
        ("under itself", &sales, &sales),
        ("under its child", &sales, &east),
        ("under its grandchild", &hq, &east),
    ] {
        let err = app
            .org
            .clone()
            .update_department(pb::UpdateDepartmentRequest {
                id: target.id.clone(),
                expected_version: target.version,
                name: None,
                parent_id: Some(new_parent.id.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{what}");
        assert_eq!(api_code(&err), ApiCode::FailedPrecondition, "{what}");
    }
    assert_eq!(app.org_fingerprint().await, before, "nothing written");

    // Moving East up to HQ is fine, and so is making Sales a root; a rename too.
    let moved = app
        .org
        .clone()
        .update_department(pb::UpdateDepartmentRequest {
            id: east.id.clone(),
            expected_version: 1,
            name: Some("East Region".into()),
            parent_id: Some(hq.id.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let moved_dept = moved.department.unwrap();
    assert_eq!(moved_dept.parent_id, hq.id);
    assert_eq!(moved_dept.name, "East Region");
    assert_eq!(moved_dept.version, 2);
    assert_eq!(moved.permission_version, before.0 + 1);
    let root = app
        .org
        .clone()
        .update_department(pb::UpdateDepartmentRequest {
            id: sales.id.clone(),
            expected_version: 1,
            name: None,
            parent_id: Some(String::new()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(root.department.unwrap().parent_id, "");
    // Now Sales is no longer above HQ's subtree: HQ may move under Sales.
    app.org
        .clone()
        .update_department(pb::UpdateDepartmentRequest {
            id: hq.id.clone(),
            expected_version: 1,
            name: None,
            parent_id: Some(sales.id.clone()),
        })
        .await
        .unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn departments_with_children_or_members_cannot_be_deleted() {
    let app = spawn_app().await;
    let hq = app.create_department("HQ", None).await;
    let sales = app.create_department("Sales", Some(&hq)).await;
    let rita = app.member("rita").await;
    app.place(&rita, &sales, &[]).await;
    let before = app.org_fingerprint().await;
    for (department, message) in [(&hq, "child"), (&sales, "member")] {
        let err = app
            .org
            .clone()
            .delete_department(pb::DeleteDepartmentRequest {
                id: department.id.clone(),
                expected_version: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        assert!(err.message().contains(message), "{}", err.message());
    }
    assert_eq!(app.org_fingerprint().await, before, "nothing written");

    // Without the member, Sales goes; then HQ, a leaf now.
    let org = app.user_org(&rita.id).await;
    app.org
        .clone()
        .set_user_departments(pb::SetUserDepartmentsRequest {
            user_id: rita.id.clone(),
            expected_version: org.version,
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted = app
        .org
        .clone()
        .delete_department(pb::DeleteDepartmentRequest {
            id: sales.id.clone(),
            expected_version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.id, sales.id);
    assert_eq!(deleted.permission_version, before.0 + 2);
    app.org
        .clone()
        .delete_department(pb::DeleteDepartmentRequest {
            id: hq.id.clone(),
            expected_version: 0,
        })
        .await
        .unwrap();
    let err = app
        .org
        .clone()
        .get_department(pb::GetDepartmentRequest { id: hq.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_department_writes_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let hq = app.create_department("HQ", None).await;
    app.create_department("Sales", Some(&hq)).await;
    let before = app.org_fingerprint().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let mut org = app.org.clone();

    let err = org
        .create_department(pb::CreateDepartmentRequest {
            name: "   ".into(),
            parent_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["name", "parent_id"]);
    let err = org
        .create_department(pb::CreateDepartmentRequest {
            name: "x".repeat(101),
            parent_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["name"]);
    let err = org
        .create_department(pb::CreateDepartmentRequest {
            name: "Orphan".into(),
            parent_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["parent_id"]);
    // Sibling names are unique regardless of case; the same name elsewhere is fine.
    let err = org
        .create_department(pb::CreateDepartmentRequest {
            name: "SALES".into(),
            parent_id: hq.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(violated_fields(&err), ["name"]);

    let err = org
        .update_department(pb::UpdateDepartmentRequest {
            id: unknown.clone(),
            expected_version: 1,
            name: Some("X".into()),
            parent_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = org
        .update_department(pb::UpdateDepartmentRequest {
            id: hq.id.clone(),
            expected_version: 7,
            name: Some("Head Office".into()),
            parent_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(api_code(&err), ApiCode::VersionConflict);
    let err = org
        .update_department(pb::UpdateDepartmentRequest {
            id: "nope".into(),
            expected_version: 0,
            name: Some(String::new()),
            parent_id: Some("nope".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["id", "expected_version", "name", "parent_id"]
    );
    let err = org
        .update_department(pb::UpdateDepartmentRequest {
            id: hq.id.clone(),
            expected_version: 1,
            name: None,
            parent_id: Some(unknown.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["parent_id"]);
    let err = org
        .delete_department(pb::DeleteDepartmentRequest {
            id: unknown.clone(),
            expected_version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = org
        .delete_department(pb::DeleteDepartmentRequest {
            id: hq.id.clone(),
            expected_version: 3,
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiCode::VersionConflict);
    assert_eq!(app.org_fingerprint().await, before, "nothing written");

    // An update that changes nothing is no change: same version, no event.
    let same = org
        .update_department(pb::UpdateDepartmentRequest {
            id: hq.id.clone(),
            expected_version: 1,
            name: Some("HQ".into()),
            parent_id: Some(String::new()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.department.unwrap().version, 1);
    assert_eq!(same.permission_version, before.0);
    assert_eq!(app.org_fingerprint().await, before);
    app.shutdown().await;
}
