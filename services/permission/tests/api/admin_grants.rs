//! Administration checks its caller's own grant: a call made for a user (with their access
//! context) needs the user's `organisation` grant for the action — READ to list, CREATE / UPDATE /
//! DELETE to change, a single read READ or the grant of the change it precedes — else
//! PERMISSION_DENIED and nothing changes; a change made for a user names them as its actor.

use std::time::Duration;

use crm_access::{Access, Action, Resource, Scope};
use crm_proto::permission as pb;
use crm_proto::permission::api_client_service_client::ApiClientServiceClient;
use crm_proto::permission::sharing_service_client::SharingServiceClient;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{PASSWORD, Signed, TestApp, spawn_app};

fn sharing(app: &TestApp) -> SharingServiceClient<Signed> {
    SharingServiceClient::new(crm_testkit::identity::signed(
        app.unsigned.clone(),
        "permission",
    ))
}

fn api_clients(app: &TestApp) -> ApiClientServiceClient<Signed> {
    ApiClientServiceClient::new(crm_testkit::identity::signed(
        app.unsigned.clone(),
        "permission",
    ))
}

/// A request made for `access`'s user (their context, signed by the test client).
fn as_user<T>(access: &Access, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    access.to_metadata(request.metadata_mut());
    request
}

/// `user` holding every organisation grant except `needed` (any one of which would do).
fn without(user: Uuid, needed: &[Action]) -> Access {
    Action::ALL
        .iter()
        .filter(|action| !needed.contains(action))
        .fold(Access::new(user), |access, &action| {
            access.with(Resource::ORGANISATION, action, Scope::everything())
        })
}

#[track_caller]
fn refused<T: std::fmt::Debug>(method: &str, answer: Result<tonic::Response<T>, tonic::Status>) {
    match answer {
        Err(status) => assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{method}: {status:?}"
        ),
        Ok(ok) => panic!("{method} was allowed: {ok:?}"),
    }
}

/// What the refused calls are tried on: real records, so a missing check would change them.
struct Fixture {
    department: pb::Department,
    other_department: pb::Department,
    role: pb::Role,
    member: pb::User,
    manager: pb::User,
    rule: pb::SharingRule,
    client: pb::ApiClient,
}

async fn fixture(app: &TestApp) -> Fixture {
    let department = app.create_department("HQ", None).await;
    let other_department = app.create_department("Sales", Some(&department)).await;
    let role = app.create_role("rep", None).await;
    let member = app.member("member").await;
    let manager = app.member("manager").await;
    let rule = sharing(app)
        .create_sharing_rule(pb::CreateSharingRuleRequest {
            name: "HQ sees Sales".into(),
            resource_name: "account".into(),
            access: pb::ShareAccess::Read as i32,
            grantee_department_id: department.id.clone(),
            source_department_id: other_department.id.clone(),
            ..Default::default()
        })
        .await
        .expect("create sharing rule")
        .into_inner()
        .rule
        .unwrap();
    let client = api_clients(app)
        .create_api_client(pb::CreateApiClientRequest {
            client_id: "erp".into(),
            name: "ERP".into(),
            scopes: vec!["account:read".into()],
            requests_per_window: 100,
        })
        .await
        .expect("create api client")
        .into_inner()
        .client
        .unwrap();
    Fixture {
        department,
        other_department,
        role,
        member,
        manager,
        rule,
        client,
    }
}

#[tokio::test]
async fn administration_without_the_organisation_grant_is_refused() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let mallory = app.member("mallory").await;
    let mallory: Uuid = mallory.id.parse().unwrap();
    let before = app.org_fingerprint().await;
    let clients_before: Vec<(String, i64)> =
        sqlx::query_as("SELECT client_id, version FROM api_clients ORDER BY client_id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let (mut org, mut shares, mut clients, mut users) = (
        app.org.clone(),
        sharing(&app),
        api_clients(&app),
        app.users.clone(),
    );
    let read = without(mallory, &[Action::Read]);
    let create = without(mallory, &[Action::Create]);
    let update = without(mallory, &[Action::Update]);
    let delete = without(mallory, &[Action::Delete]);
    // A single read is also allowed with the grant of the change it precedes.
    let get = without(mallory, &[Action::Read, Action::Update, Action::Delete]);
    let get_for_update = without(mallory, &[Action::Read, Action::Update]);
    let version = 1;

    // OrgService.
    refused(
        "CreateDepartment",
        org.create_department(as_user(
            &create,
            pb::CreateDepartmentRequest {
                name: "Rogue".into(),
                parent_id: String::new(),
            },
        ))
        .await,
    );
    refused(
        "GetDepartment",
        org.get_department(as_user(
            &get,
            pb::GetDepartmentRequest {
                id: f.department.id.clone(),
            },
        ))
        .await,
    );
    refused(
        "ListDepartments",
        org.list_departments(as_user(&read, pb::ListDepartmentsRequest {}))
            .await,
    );
    refused(
        "UpdateDepartment",
        org.update_department(as_user(
            &update,
            pb::UpdateDepartmentRequest {
                id: f.department.id.clone(),
                expected_version: version,
                name: Some("Renamed".into()),
                parent_id: None,
            },
        ))
        .await,
    );
    refused(
        "DeleteDepartment",
        org.delete_department(as_user(
            &delete,
            pb::DeleteDepartmentRequest {
                id: f.other_department.id.clone(),
                expected_version: 0,
            },
        ))
        .await,
    );
    refused(
        "CreateRole",
        org.create_role(as_user(
            &create,
            pb::CreateRoleRequest {
                name: "rogue".into(),
                ..Default::default()
            },
        ))
        .await,
    );
    refused(
        "GetRole",
        org.get_role(as_user(
            &get,
            pb::GetRoleRequest {
                id: f.role.id.clone(),
            },
        ))
        .await,
    );
    refused(
        "ListRoles",
        org.list_roles(as_user(&read, pb::ListRolesRequest {}))
            .await,
    );
    refused(
        "UpdateRole",
        org.update_role(as_user(
            &update,
            pb::UpdateRoleRequest {
                id: f.role.id.clone(),
                expected_version: version,
                name: Some("renamed".into()),
                ..Default::default()
            },
        ))
        .await,
    );
    refused(
        "DeleteRole",
        org.delete_role(as_user(
            &delete,
            pb::DeleteRoleRequest {
                id: f.role.id.clone(),
                expected_version: 0,
            },
        ))
        .await,
    );
    refused(
        "SetGrant",
        org.set_grant(as_user(
            &update,
            pb::SetGrantRequest {
                role_id: f.role.id.clone(),
                expected_version: version,
                grant: Some(pb::Grant {
                    resource: pb::Resource::Organisation as i32,
                    resource_name: "organisation".into(),
                    action: pb::Action::Update as i32,
                    scope: pb::DataScope::All as i32,
                }),
            },
        ))
        .await,
    );
    refused(
        "RemoveGrant",
        org.remove_grant(as_user(
            &update,
            pb::RemoveGrantRequest {
                role_id: f.role.id.clone(),
                expected_version: version,
                resource: pb::Resource::Account as i32,
                resource_name: "account".into(),
                action: pb::Action::Read as i32,
            },
        ))
        .await,
    );
    refused(
        "SetFieldRule",
        org.set_field_rule(as_user(
            &update,
            pb::SetFieldRuleRequest {
                role_id: f.role.id.clone(),
                expected_version: version,
                rule: Some(pb::FieldRule {
                    resource: pb::Resource::Account as i32,
                    resource_name: "account".into(),
                    field: "phone".into(),
                    visibility: pb::FieldVisibility::Hidden as i32,
                    mask: pb::MaskKind::Unspecified as i32,
                }),
            },
        ))
        .await,
    );
    refused(
        "RemoveFieldRule",
        org.remove_field_rule(as_user(
            &update,
            pb::RemoveFieldRuleRequest {
                role_id: f.role.id.clone(),
                expected_version: version,
                resource: pb::Resource::Account as i32,
                resource_name: "account".into(),
                field: "phone".into(),
            },
        ))
        .await,
    );
    refused(
        "GetUserOrg",
        org.get_user_org(as_user(
            &get_for_update,
            pb::GetUserOrgRequest {
                user_id: f.member.id.clone(),
            },
        ))
        .await,
    );
    refused(
        "SetUserDepartments",
        org.set_user_departments(as_user(
            &update,
            pb::SetUserDepartmentsRequest {
                user_id: f.member.id.clone(),
                expected_version: version,
                primary_department_id: f.department.id.clone(),
                other_department_ids: vec![],
            },
        ))
        .await,
    );
    refused(
        "SetUserManager",
        org.set_user_manager(as_user(
            &update,
            pb::SetUserManagerRequest {
                user_id: f.member.id.clone(),
                expected_version: version,
                manager_id: f.manager.id.clone(),
            },
        ))
        .await,
    );
    refused(
        "AssignRole",
        org.assign_role(as_user(
            &update,
            pb::AssignRoleRequest {
                user_id: f.member.id.clone(),
                expected_version: version,
                role_id: f.role.id.clone(),
            },
        ))
        .await,
    );
    refused(
        "UnassignRole",
        org.unassign_role(as_user(
            &update,
            pb::UnassignRoleRequest {
                user_id: f.member.id.clone(),
                expected_version: version,
                role_id: f.role.id.clone(),
            },
        ))
        .await,
    );

    // SharingService.
    refused(
        "ShareRecord",
        shares
            .share_record(as_user(
                &update,
                pb::ShareRecordRequest {
                    resource_name: "account".into(),
                    record_id: Uuid::now_v7().to_string(),
                    user_id: f.member.id.clone(),
                    access: pb::ShareAccess::Edit as i32,
                    ..Default::default()
                },
            ))
            .await,
    );
    refused(
        "UnshareRecord",
        shares
            .unshare_record(as_user(
                &update,
                pb::UnshareRecordRequest {
                    resource_name: "account".into(),
                    record_id: Uuid::now_v7().to_string(),
                    user_id: f.member.id.clone(),
                    ..Default::default()
                },
            ))
            .await,
    );
    refused(
        "ListRecordShares",
        shares
            .list_record_shares(as_user(
                &read,
                pb::ListRecordSharesRequest {
                    resource_name: "account".into(),
                    record_id: Uuid::now_v7().to_string(),
                    ..Default::default()
                },
            ))
            .await,
    );
    refused(
        "CreateSharingRule",
        shares
            .create_sharing_rule(as_user(
                &create,
                pb::CreateSharingRuleRequest {
                    name: "rogue".into(),
                    resource_name: "account".into(),
                    access: pb::ShareAccess::Edit as i32,
                    grantee_department_id: f.other_department.id.clone(),
                    source_department_id: f.department.id.clone(),
                    ..Default::default()
                },
            ))
            .await,
    );
    refused(
        "DeleteSharingRule",
        shares
            .delete_sharing_rule(as_user(
                &delete,
                pb::DeleteSharingRuleRequest {
                    id: f.rule.id.clone(),
                },
            ))
            .await,
    );
    refused(
        "ListSharingRules",
        shares
            .list_sharing_rules(as_user(&read, pb::ListSharingRulesRequest {}))
            .await,
    );

    // ApiClientService.
    refused(
        "CreateApiClient",
        clients
            .create_api_client(as_user(
                &create,
                pb::CreateApiClientRequest {
                    client_id: "rogue".into(),
                    name: "Rogue".into(),
                    scopes: vec!["account:read".into()],
                    requests_per_window: 100,
                },
            ))
            .await,
    );
    refused(
        "GetApiClient",
        clients
            .get_api_client(as_user(
                &get_for_update,
                pb::GetApiClientRequest {
                    id: f.client.id.clone(),
                },
            ))
            .await,
    );
    refused(
        "RotateApiClientSecret",
        clients
            .rotate_api_client_secret(as_user(
                &update,
                pb::RotateApiClientSecretRequest {
                    id: f.client.id.clone(),
                },
            ))
            .await,
    );
    refused(
        "SetApiClientStatus",
        clients
            .set_api_client_status(as_user(
                &update,
                pb::SetApiClientStatusRequest {
                    id: f.client.id.clone(),
                    status: pb::UserStatus::Disabled as i32,
                },
            ))
            .await,
    );

    // UserService.
    refused(
        "SetPassword",
        users
            .set_password(as_user(
                &update,
                pb::SetPasswordRequest {
                    id: f.member.id.clone(),
                    password: PASSWORD.into(),
                },
            ))
            .await,
    );

    // Nothing changed, and no event was written.
    assert_eq!(app.org_fingerprint().await, before);
    let clients_after: Vec<(String, i64)> =
        sqlx::query_as("SELECT client_id, version FROM api_clients ORDER BY client_id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(clients_after, clients_before);
    let rules = shares
        .list_sharing_rules(pb::ListSharingRulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(rules.len(), 1, "{rules:?}");

    // The read before a change is allowed with the change's grant alone.
    for needed in [Action::Update, Action::Delete] {
        let access = Access::new(mallory).with(Resource::ORGANISATION, needed, Scope::everything());
        org.get_department(as_user(
            &access,
            pb::GetDepartmentRequest {
                id: f.department.id.clone(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("GetDepartment with {needed:?}: {e:?}"));
        org.get_role(as_user(
            &access,
            pb::GetRoleRequest {
                id: f.role.id.clone(),
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("GetRole with {needed:?}: {e:?}"));
    }
    let updater =
        Access::new(mallory).with(Resource::ORGANISATION, Action::Update, Scope::everything());
    org.get_user_org(as_user(
        &updater,
        pb::GetUserOrgRequest {
            user_id: f.member.id.clone(),
        },
    ))
    .await
    .expect("GetUserOrg with UPDATE");
    clients
        .get_api_client(as_user(
            &updater,
            pb::GetApiClientRequest {
                id: f.client.id.clone(),
            },
        ))
        .await
        .expect("GetApiClient with UPDATE");
    app.shutdown().await;
}

#[tokio::test]
async fn changes_made_for_a_user_name_them_as_the_actor() {
    let app = spawn_app().await;
    let admin = app.member("admin").await;
    let member = app.member("member").await;
    let access = Access::new(admin.id.parse().unwrap())
        .with(Resource::ORGANISATION, Action::Create, Scope::everything())
        .with(Resource::ORGANISATION, Action::Update, Scope::everything());

    let department = app
        .org
        .clone()
        .create_department(as_user(
            &access,
            pb::CreateDepartmentRequest {
                name: "HQ".into(),
                parent_id: String::new(),
            },
        ))
        .await
        .expect("create department with organisation CREATE")
        .into_inner()
        .department
        .unwrap();
    let client = api_clients(&app)
        .create_api_client(as_user(
            &access,
            pb::CreateApiClientRequest {
                client_id: "erp".into(),
                name: "ERP".into(),
                scopes: vec!["account:read".into()],
                requests_per_window: 100,
            },
        ))
        .await
        .expect("create api client with organisation CREATE")
        .into_inner()
        .client
        .unwrap();
    app.users
        .clone()
        .set_password(as_user(
            &access,
            pb::SetPasswordRequest {
                id: member.id.clone(),
                password: PASSWORD.into(),
            },
        ))
        .await
        .expect("set password with organisation UPDATE");
    // A service calling as itself is named as the actor.
    let by_service = app.create_department("Sales", Some(&department)).await;

    let events =
        crm_testkit::collect_events(&app.brokers, &app.topic, 6, Duration::from_secs(60)).await;
    let event = |event_type: &str, subject: &str| {
        events
            .iter()
            .map(|(e, _)| e)
            .find(|e| e.event_type == event_type && e.subject == subject)
            .unwrap_or_else(|| panic!("no {event_type} about {subject} in {events:?}"))
    };
    for (event_type, subject) in [
        ("permission.department.created", &department.id),
        ("permission.api_client.created", &client.id),
        ("permission.user.password_changed", &member.id),
    ] {
        let e = event(event_type, subject);
        assert_eq!(
            e.data["actor"]["user_id"],
            admin.id.as_str(),
            "{event_type}: {}",
            e.data
        );
    }
    let e = event("permission.department.created", &by_service.id);
    assert_eq!(
        e.data["actor"],
        serde_json::json!({ "service": crm_testkit::identity::TEST_PRINCIPAL }),
        "{}",
        e.data
    );
    app.shutdown().await;
}
