use crm_errors::Code as ApiCode;
use crm_proto::permission as pb;
use tonic::Code;

use crate::helpers::{api_code, spawn_app, violated_fields};

#[tokio::test]
async fn memberships_have_exactly_one_primary() {
    let app = spawn_app().await;
    let hq = app.create_department("HQ", None).await;
    let sales = app.create_department("Sales", Some(&hq)).await;
    let service = app.create_department("Service", Some(&hq)).await;
    let ann = app.member("ann").await;
    let org = app.user_org(&ann.id).await;
    assert_eq!(
        (
            org.primary_department_id.as_str(),
            org.department_ids.len(),
            org.version
        ),
        ("", 0, 1)
    );

    let placed = app
        .org
        .clone()
        .set_user_departments(pb::SetUserDepartmentsRequest {
            user_id: ann.id.clone(),
            expected_version: 1,
            primary_department_id: sales.id.clone(),
            // Duplicates and the primary itself are dropped.
            other_department_ids: vec![service.id.clone(), sales.id.clone(), service.id.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    let org = placed.user_org.unwrap();
    assert_eq!(org.primary_department_id, sales.id);
    let mut both = vec![sales.id.clone(), service.id.clone()];
    both.sort();
    assert_eq!(org.department_ids, both);
    assert_eq!(org.version, 2);
    let primaries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_departments WHERE user_id = $1::uuid AND is_primary",
    )
    .bind(&ann.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(primaries, 1);

    // Swapping primary and other is a change; repeating it is not.
    let swap = pb::SetUserDepartmentsRequest {
        user_id: ann.id.clone(),
        expected_version: 2,
        primary_department_id: service.id.clone(),
        other_department_ids: vec![sales.id.clone()],
    };
    let swapped = app
        .org
        .clone()
        .set_user_departments(swap.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(swapped.user_org.as_ref().unwrap().version, 3);
    let again = app
        .org
        .clone()
        .set_user_departments(pb::SetUserDepartmentsRequest {
            expected_version: 3,
            ..swap
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.user_org.unwrap().version, 3);
    assert_eq!(again.permission_version, swapped.permission_version);
    // The account version is untouched: sign-in compares it.
    let user = app
        .users
        .clone()
        .get_user(pb::GetUserRequest { id: ann.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(user.version, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn manager_cycles_are_refused() {
    let app = spawn_app().await;
    let a = app.member("alpha").await;
    let b = app.member("bravo").await;
    let c = app.member("charlie").await;
    app.set_manager(&b, &a).await;
    app.set_manager(&c, &b).await;
    let before = app.org_fingerprint().await;
    for (user, manager) in [(&a, &a), (&a, &b), (&a, &c)] {
        let org = app.user_org(&user.id).await;
        let err = app
            .org
            .clone()
            .set_user_manager(pb::SetUserManagerRequest {
                user_id: user.id.clone(),
                expected_version: org.version,
                manager_id: manager.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::FailedPrecondition,
            "{} under {}",
            user.username,
            manager.username
        );
    }
    assert_eq!(app.org_fingerprint().await, before);
    // Clearing a manager is fine.
    let org = app.user_org(&c.id).await;
    let cleared = app
        .org
        .clone()
        .set_user_manager(pb::SetUserManagerRequest {
            user_id: c.id.clone(),
            expected_version: org.version,
            manager_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.user_org.unwrap().manager_id, "");
    app.shutdown().await;
}

#[tokio::test]
async fn bad_user_org_writes_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let hq = app.create_department("HQ", None).await;
    let role = app.create_role("rep", None).await;
    let ann = app.member("ann").await;
    app.place(&ann, &hq, &[]).await;
    app.assign(&ann, &role).await;
    let version = app.user_org(&ann.id).await.version;
    let before = app.org_fingerprint().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let mut org = app.org.clone();

    let err = org
        .set_user_departments(pb::SetUserDepartmentsRequest {
            user_id: ann.id.clone(),
            expected_version: version,
            primary_department_id: String::new(),
            other_department_ids: vec![hq.id.clone(), "zzz".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["primary_department_id", "other_department_ids[1]"]
    );
    let err = org
        .set_user_departments(pb::SetUserDepartmentsRequest {
            user_id: ann.id.clone(),
            expected_version: version,
            primary_department_id: unknown.clone(),
            other_department_ids: vec![hq.id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["primary_department_id"]);
    let err = org
        .set_user_departments(pb::SetUserDepartmentsRequest {
            user_id: unknown.clone(),
            expected_version: 1,
            primary_department_id: hq.id.clone(),
            other_department_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = org
        .set_user_departments(pb::SetUserDepartmentsRequest {
            user_id: ann.id.clone(),
            expected_version: version - 1,
            primary_department_id: hq.id.clone(),
            other_department_ids: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiCode::VersionConflict);

    let err = org
        .set_user_manager(pb::SetUserManagerRequest {
            user_id: ann.id.clone(),
            expected_version: version,
            manager_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["manager_id"]);
    let err = org
        .set_user_manager(pb::SetUserManagerRequest {
            user_id: "x".into(),
            expected_version: -1,
            manager_id: "y".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["user_id", "expected_version", "manager_id"]
    );

    let err = org
        .assign_role(pb::AssignRoleRequest {
            user_id: ann.id.clone(),
            expected_version: version,
            role_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["role_id"]);
    let err = org
        .assign_role(pb::AssignRoleRequest {
            user_id: unknown.clone(),
            expected_version: 1,
            role_id: role.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = org
        .unassign_role(pb::UnassignRoleRequest {
            user_id: ann.id.clone(),
            expected_version: version + 1,
            role_id: role.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), ApiCode::VersionConflict);
    let err = org
        .get_user_org(pb::GetUserOrgRequest {
            user_id: unknown.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(app.org_fingerprint().await, before, "nothing written");

    // Assigning a role held already, or unassigning one not held, changes nothing.
    let same = org
        .assign_role(pb::AssignRoleRequest {
            user_id: ann.id.clone(),
            expected_version: version,
            role_id: role.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.user_org.unwrap().version, version);
    org.unassign_role(pb::UnassignRoleRequest {
        user_id: ann.id.clone(),
        expected_version: version,
        role_id: unknown,
    })
    .await
    .unwrap();
    assert_eq!(app.org_fingerprint().await, before);
    app.shutdown().await;
}
